/**
 * The exec module through the running server: seed 003 Example 2-20 (exec redirect)
 * and the URI-rewriting exercise of Example 2-10.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveSeeds, request, type Ser, seedScript, sleep, startSer, UdpPeer } from './harness.js';

describe('exec redirect (seed 003 Example 2-20)', {
  skip: !haveSeeds && 'shared/seed-configs not found',
}, () => {
  let ser: Ser;
  let ua: UdpPeer;
  const dir = mkdtempSync(join(tmpdir(), 'ser-exec-'));
  const out = join(dir, 'exectest.txt');
  before(async () => {
    // the seed writes /tmp/exectest.txt: point it at a private file
    ser = await startSer(seedScript('003-ex2-20-exec-redirect.cfg').replaceAll('/tmp/exectest.txt', out));
    ua = await UdpPeer.open();
  });
  after(async () => {
    ua.close();
    await ser.stop();
  });

  it('dumps the source IP and the request, then redirects to the URIs the command printed', async () => {
    const inv = request('INVITE', `sip:x@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port });
    ua.send(inv, ser.port);
    const r = await ua.nextMsg(5000);
    assert.equal(r.status, 300);
    assert.deepEqual(
      r.contacts.map((c) => c.uri),
      ['sip:mra@iptel.org', 'sip:mrb@iptel.org'],
    );
    const dump = readFileSync(out, 'latin1');
    assert.equal(dump.split('\n')[0], '127.0.0.1');
    assert.ok(dump.includes(`INVITE sip:x@127.0.0.1:${ser.port} SIP/2.0`));
    assert.ok(dump.includes('Call-ID: '));
  });

  it('a retransmission runs both commands again and gets a new 300', async () => {
    const inv = request('INVITE', `sip:y@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port });
    ua.send(inv, ser.port);
    assert.equal((await ua.nextMsg(5000)).status, 300);
    await sleep(50);
    assert.ok(readFileSync(out, 'latin1').includes('sip:y@'));
    unlinkSync(out);
    ua.send(inv, ser.port);
    assert.equal((await ua.nextMsg(5000)).status, 300);
    // stateless: exec_msg ran again and wrote the file anew
    assert.ok(readFileSync(out, 'latin1').includes('sip:y@'));
  });
});

describe('URI rewriting exercise (seed 003 Example 2-10)', {
  skip: !haveSeeds && 'shared/seed-configs not found',
}, () => {
  let ser: Ser;
  let ua: UdpPeer;
  let target: UdpPeer;
  before(async () => {
    target = await UdpPeer.open();
    ua = await UdpPeer.open();
    // the fragment in a route; foo.bar stands for the test host: an alias resolving to loopback
    const body = seedScript('003-ex2-10-uri-rewriting-exercise-fragment.cfg')
      .replace('sip:2234@foo.bar', `sip:2234@127.0.0.1:${target.port}`)
      .replace(
        'forward(uri:host, uri:port);',
        'if (uri == "sip:134@127.0.0.1:' +
          target.port +
          '") { forward(uri:host, uri:port); } else { log(1, "unexpected uri\\n"); };',
      );
    ser = await startSer(`loadmodule "exec.so"\nloadmodule "sl.so"\nroute {\n${body}\n}`);
  });
  after(async () => {
    ua.close();
    target.close();
    await ser.stop();
  });

  it('ends at sip:134@host whatever the incoming R-URI', async () => {
    for (const ruri of ['sip:anything@127.0.0.1', 'sip:9999@127.0.0.1']) {
      ua.send(request('INVITE', ruri, { ip: '127.0.0.1', port: ua.port }), ser.port);
      const m = await target.nextMsg(5000);
      assert.equal(m.ruri, `sip:134@127.0.0.1:${target.port}`);
    }
  });
});
