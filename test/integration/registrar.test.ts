/**
 * Registration over real sockets: a `ser` process with usrloc + registrar, phones as
 * UdpPeers, sipsak -U and a SIPp REGISTER scenario. Requests for registered users
 * are forwarded statelessly to the phone (tm is not used here).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request, type Ser, startSer, UdpPeer } from './harness.js';
import { REGISTRAR_CFG, reg, replyTo } from './registrar-helpers.test.js';

describe('registrar over UDP: add, refresh, remove, *, 423, fetch, lookup', () => {
  let ser: Ser;
  let phoneA: UdpPeer;
  let phoneC: UdpPeer;
  let caller: UdpPeer;
  before(async () => {
    ser = await startSer(REGISTRAR_CFG());
    phoneA = await UdpPeer.open();
    phoneC = await UdpPeer.open('127.0.0.2');
    caller = await UdpPeer.open();
  });
  after(async () => {
    for (const p of [phoneA, phoneC, caller]) p.close();
    await ser.stop();
  });
  const callId = (s: string) => `Call-ID: ${s}@it`;

  it('S1.1 add: 200 lists the binding with its expires', async () => {
    const r = await replyTo(phoneA, reg(phoneA, 'alice', ['Expires: 600', callId('a')]), ser.port);
    assert.equal(r.status, 200);
    assert.deepEqual(r.headers('contact'), [`<sip:alice@127.0.0.1:${phoneA.port}>;expires=600`]);
    assert.ok(r.header('date'));
  });

  it('S1.6 (stateless) an INVITE for the registered user reaches the phone with the contact as R-URI', async () => {
    caller.send(
      request('INVITE', `sip:alice@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: caller.port }),
      ser.port,
    );
    const m = await phoneA.nextMsg();
    assert.equal(m.method, 'INVITE');
    assert.equal(m.ruri, `sip:alice@127.0.0.1:${phoneA.port}`);
  });

  it('S1.5 an unregistered user gets 404 from the script', async () => {
    const r = await replyTo(
      caller,
      request('INVITE', `sip:carol@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: caller.port }),
      ser.port,
    );
    assert.equal(r.status, 404);
  });

  it('S1.2 a second phone: both listed; refresh with a higher CSeq', async () => {
    const contactC = `<sip:alice@127.0.0.2:${phoneC.port}>`;
    let r = await replyTo(phoneC, reg(phoneC, 'alice', ['Expires: 300', callId('c')], contactC), ser.port);
    assert.equal(r.headers('contact').length, 2);
    r = await replyTo(
      phoneC,
      reg(phoneC, 'alice', ['Expires: 900', callId('c'), 'CSeq: 2 REGISTER'], contactC),
      ser.port,
    );
    assert.ok(r.headers('contact').includes(`<sip:alice@127.0.0.2:${phoneC.port}>;expires=900`));
  });

  it('fetch: a REGISTER without Contact lists the bindings', async () => {
    const r = await replyTo(phoneA, reg(phoneA, 'alice', [callId('f')], ''), ser.port);
    assert.equal(r.status, 200);
    assert.equal(r.headers('contact').length, 2);
  });

  it('423 with Min-Expires below min_expires', async () => {
    const r = await replyTo(phoneA, reg(phoneA, 'alice', ['Expires: 10', callId('s')]), ser.port);
    assert.equal(r.status, 423);
    assert.equal(r.header('min-expires'), '60');
  });

  it('S1.3 expires=0 removes one binding', async () => {
    const r = await replyTo(
      phoneA,
      reg(
        phoneA,
        'alice',
        [callId('a'), 'CSeq: 5 REGISTER'],
        `<sip:alice@127.0.0.1:${phoneA.port}>;expires=0`,
      ),
      ser.port,
    );
    // phoneC's binding alone is left; its remaining time counts down from the 900 it was
    // refreshed to a few tests ago (a loaded machine may have crossed a second since)
    const left = r.headers('contact');
    assert.equal(left.length, 1, left.join('\n'));
    const m = /^<sip:alice@127\.0\.0\.2:(\d+)>;expires=(\d+)$/.exec(left[0]);
    assert.ok(m, left[0]);
    assert.equal(Number(m[1]), phoneC.port);
    assert.ok(Number(m[2]) <= 900 && Number(m[2]) >= 890, left[0]);
  });

  it('S1.4 Contact: * with Expires: 0 removes all; then the user is 404', async () => {
    const r = await replyTo(phoneA, reg(phoneA, 'alice', ['Expires: 0', callId('x')], '*'), ser.port);
    assert.equal(r.status, 200);
    assert.deepEqual(r.headers('contact'), []);
    const n = await replyTo(
      caller,
      request('INVITE', `sip:alice@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: caller.port }),
      ser.port,
    );
    assert.equal(n.status, 404);
  });

  it('three contacts of one AOR come out by q in the 302 (lookup + sl destination set)', async () => {
    const contacts = ['<sip:q3@10.0.0.1>;q=0.3', '<sip:q9@10.0.0.2>;q=0.9', '<sip:q5@10.0.0.3>;q=0.5'];
    const r = await replyTo(
      phoneA,
      request('REGISTER', 'sip:127.0.0.1', { ip: '127.0.0.1', port: phoneA.port }, [
        'To: <sip:qq@127.0.0.1>',
        `Contact: ${contacts.join(', ')}`,
        'Expires: 600',
      ]),
      ser.port,
    );
    assert.equal(r.status, 200);
    const ask = () =>
      replyTo(
        caller,
        request('MESSAGE', `sip:qq@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: caller.port }),
        ser.port,
      );
    // with several workers the 200 came only once every worker had the binding
    const m = await ask();
    assert.equal(m.status, 302);
    assert.deepEqual(
      m.contacts.map((c) => [c.uri, c.q]),
      [
        ['sip:q9@10.0.0.2', 0.9],
        ['sip:q5@10.0.0.3', 0.5],
        ['sip:q3@10.0.0.1', 0.3],
      ],
    );
  });

  it('bad requests: tel: To is 400, * with a contact is 400', async () => {
    let r = await replyTo(
      phoneA,
      request('REGISTER', 'sip:127.0.0.1', { ip: '127.0.0.1', port: phoneA.port }, ['To: <tel:+4930123>']),
      ser.port,
    );
    assert.equal(r.status, 400);
    r = await replyTo(
      phoneA,
      reg(phoneA, 'bob', ['Expires: 0'], `*, <sip:bob@127.0.0.1:${phoneA.port}>`),
      ser.port,
    );
    assert.equal(r.status, 400);
  });

  it('sipsak -U registers and removes a binding through the server', () => {
    const res = spawnSync(
      'sipsak',
      ['-U', '-vv', '-H', '127.0.0.1', '-x', '120', '-s', `sip:sak@127.0.0.1:${ser.port}`],
      {
        timeout: 15000,
        encoding: 'utf8',
      },
    );
    assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /registering user sak.*OK/s);
  });

  it('SIPp: 50 users register (REGISTER scenario), each is then found by lookup', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipp-reg-'));
    const xml = join(dir, 'register.xml');
    writeFileSync(
      xml,
      `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:sipp[call_number]@[remote_ip]>;tag=[call_number]
      To: <sip:sipp[call_number]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:sipp[call_number]@[local_ip]:[local_port]>
      Expires: 300
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" />
</scenario>
`,
    );
    const res = spawnSync(
      'sipp',
      [
        '-sf',
        xml,
        '-m',
        '50',
        '-r',
        '200',
        '-i',
        '127.0.0.1',
        '-nostdin',
        '-timeout',
        '20s',
        `127.0.0.1:${ser.port}`,
      ],
      { timeout: 30000, encoding: 'utf8', cwd: dir },
    );
    assert.equal(res.status, 0, `sipp failed: ${res.stdout?.slice(-2000)}\n${res.stderr}`);
    // every call number 1..50 registered
    for (const i of [1, 25, 50]) {
      const m = await replyTo(
        caller,
        request('MESSAGE', `sip:sipp${i}@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: caller.port }),
        ser.port,
      );
      assert.equal(m.status, 302, `sipp${i}`);
      assert.match(m.contacts[0].uri, new RegExp(`^sip:sipp${i}@127\\.0\\.0\\.1:\\d+$`));
    }
  });
});
