/**
 * FIFO t_uac_dlg (seed 003 Example 4-10: an IM-style NOTIFY from a shell script) and t_stats,
 * against a running ser and a UDP peer as the receiver.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fifoCall } from '../../src/mgmt/fifo-client.js';
import { type Ser, startSer, UdpPeer } from './harness.js';
import { isReq, nextWhere, replyFor } from './tm-helpers.js';

const SERCTL = fileURLToPath(new URL('../../src/cli/serctl.js', import.meta.url));

describe('t_uac_dlg and t_stats over the FIFO', () => {
  const fifo = `/tmp/ser_tm_uac_${process.pid}_${randomBytes(4).toString('hex')}`;
  let ser: Ser;
  let peer: UdpPeer;
  before(async () => {
    peer = await UdpPeer.open();
    ser = await startSer(`fifo="${fifo}"
loadmodule "sl.so"
loadmodule "tm.so"
modparam("tm", "fr_timer", 1)
route { t_relay(); }
`);
  });
  after(async () => {
    peer.close();
    await ser.stop();
  });

  it('sends the NOTIFY of Example 4-10 and answers with the final reply', async () => {
    const ruri = `sip:receiver@127.0.0.1:${peer.port}`;
    const call = fifoCall(fifo, 't_uac_dlg', [
      'NOTIFY',
      ruri,
      '.',
      'From: sip:originator@foo.bar',
      `To: ${ruri}`,
      'foo: bar_special_header',
      'x: y',
      'p_header: p_value',
      'Contact: <sip:devnull@192.168.0.100:9>',
      '',
      'Content-Type: text/plain; charset=UTF-8',
      '.',
      'Hello world!!!! $@',
      '.',
    ]);
    const n = await nextWhere(peer, isReq('NOTIFY'));
    assert.equal(n.ruri, ruri);
    assert.equal(n.header('foo'), 'bar_special_header');
    assert.equal(n.header('x'), 'y');
    assert.equal(n.header('p_header'), 'p_value');
    assert.equal(n.header('content-type'), 'text/plain; charset=UTF-8');
    assert.equal(n.body.toString(), 'Hello world!!!! $@\r\n');
    assert.ok(n.fromTag, 'a From-tag is generated');
    assert.ok(n.callId.length > 0);
    assert.equal(n.cseq.method, 'NOTIFY');
    assert.equal(n.maxForwards, 70);
    assert.equal(n.vias.length, 1);
    peer.send(replyFor(n, 202, 'Accepted'), ser.port);
    const r = await call;
    assert.equal(r.code, 202);
    assert.equal(r.reason, 'Accepted');
    assert.ok(r.body.some((l) => /^To: .*;tag=uas1$/.test(l)));
  });

  it('answers 408 when the destination never replies (fr_timer)', async () => {
    const silent = await UdpPeer.open();
    try {
      const ruri = `sip:x@127.0.0.1:${silent.port}`;
      const r = await fifoCall(
        fifo,
        't_uac_dlg',
        ['OPTIONS', ruri, '.', 'From: <sip:a@b>', `To: <${ruri}>`, '.'],
        {
          timeoutMs: 5000,
        },
      );
      assert.equal(r.code, 408);
    } finally {
      silent.close();
    }
  });

  it('refuses bad input with 400', async () => {
    const ruri = `sip:receiver@127.0.0.1:${peer.port}`;
    const noFrom = await fifoCall(fifo, 't_uac_dlg', ['MESSAGE', ruri, '.', `To: ${ruri}`, '.']);
    assert.equal(noFrom.code, 400);
    assert.match(noFrom.reason, /From/);
    const badUri = await fifoCall(fifo, 't_uac_dlg', [
      'MESSAGE',
      'not a uri',
      '.',
      'From: <sip:a@b>',
      'To: <sip:c@d>',
      '.',
    ]);
    assert.equal(badUri.code, 400);
    const noBodyType = await fifoCall(fifo, 't_uac_dlg', [
      'MESSAGE',
      ruri,
      '.',
      'From: <sip:a@b>',
      'To: <sip:c@d>',
      '.',
      'hi',
      '.',
    ]);
    assert.equal(noBodyType.code, 400);
    assert.match(noBodyType.reason, /Content-Type/);
  });

  it('t_stats reports the local transactions as serctl monitor reads them', async () => {
    const r = await fifoCall(fifo, 't_stats');
    assert.equal(r.code, 200);
    assert.match(r.body[0], /^Current: \d+ \(\d+ waiting\) Total: 2 \(2 local\)$/);
    assert.match(r.body[2], /^Completion status 6xx: 0, 5xx: 0, 4xx: 1, 3xx: 0,2xx: 1$/);
  });

  it('serctl monitor prints the Transaction Statistics block from tm', async () => {
    const out = await new Promise<string>((res) =>
      execFile(
        process.execPath,
        [SERCTL, 'monitor', '--count', '1'],
        { env: { PATH: process.env.PATH, SER_FIFO: fifo }, timeout: 10_000 },
        (_e, o) => res(o),
      ),
    );
    assert.match(
      out,
      /Transaction Statistics\nCurrent: \d+ \(\d+ waiting\) Total: 2 \(2 local\)\nReplied localy: 0\n/,
    );
    assert.match(out, /Completion status 6xx: 0, 5xx: 0, 4xx: 1, 3xx: 0,2xx: 1/);
  });
});
