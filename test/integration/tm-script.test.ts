/**
 * tm's script functions on a running server: t_newtran twice, t_reply without a transaction,
 * t_relay(host, port), t_replicate, RFC 2543 retransmission matching, loop detection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseSerArgs } from '../../src/cli/ser.js';
import { MemorySink } from '../../src/core/log.js';
import { type RunningServer, startServer } from '../../src/core/server.js';
import { freePort, request, UdpPeer } from './harness.js';
import { drain, isReq, isStatus, nextWhere, replyFor } from './tm-helpers.js';

describe('tm script functions', () => {
  let srv: RunningServer;
  let port: number;
  let uac: UdpPeer;
  let uas: UdpPeer;
  let copy: UdpPeer;
  const sink = new MemorySink();

  before(async () => {
    port = await freePort();
    uac = await UdpPeer.open();
    uas = await UdpPeer.open();
    copy = await UdpPeer.open();
    srv = await startServer(parseSerArgs(['-f', 'mem.cfg', '-D']), {
      logSink: sink,
      configText: `debug=3
listen=udp:127.0.0.1:${port}
fork=no
loadmodule "sl.so"
loadmodule "tm.so"
route {
  if (uri =~ "^sip:twice") {
    if (!t_reply("500", "no transaction yet")) { log(1, "t_reply refused\\n"); };
    if (t_newtran()) {
      if (!t_newtran()) { log(1, "second t_newtran refused\\n"); };
      t_reply("200", "only once");
    };
    break;
  };
  if (uri =~ "^sip:replicate") {
    t_replicate("127.0.0.1", "${copy.port}");
    sl_send_reply("200", "stored");
    break;
  };
  if (uri =~ "^sip:loop") { rewritehostport("127.0.0.1:${port}"); t_relay(); break; };
  if (uri =~ "^sip:old") { t_relay("127.0.0.1", "${uas.port}"); break; };
  t_relay("127.0.0.1", "${uas.port}");
}
`,
    });
  });
  after(async () => {
    uac.close();
    uas.close();
    copy.close();
    await srv.stop();
  });

  const from = () => ({ ip: '127.0.0.1', port: uac.port });

  it('a second t_newtran in one run is refused; t_reply needs a transaction', async () => {
    const m = request('MESSAGE', `sip:twice@127.0.0.1:${port}`, from());
    uac.send(m, port);
    const r = await nextWhere(uac, () => true);
    assert.equal(r.status, 200);
    assert.equal(r.reason, 'only once');
    assert.ok(sink.lines.some((l) => l.includes('ERROR: t_newtran: transaction already in process')));
    assert.ok(sink.lines.some((l) => l.includes('second t_newtran refused')));
    assert.ok(sink.lines.some((l) => l.includes('t_reply refused')));
    // a retransmission ends the script at t_newtran: the same reply, no second run
    const runs = sink.lines.filter((l) => l.includes('second t_newtran refused')).length;
    uac.send(m, port);
    const again = await nextWhere(uac, () => true);
    assert.equal(again.toTag, r.toTag);
    assert.equal(sink.lines.filter((l) => l.includes('second t_newtran refused')).length, runs);
  });

  it('t_replicate sends a copy whose replies stop at the proxy', async () => {
    uac.send(request('REGISTER', `sip:replicate@127.0.0.1:${port}`, from()), port);
    const r = await nextWhere(uac, () => true);
    assert.equal(r.reason, 'stored');
    const c = await nextWhere(copy, isReq('REGISTER'));
    assert.equal(c.vias.length, 2);
    copy.send(replyFor(c, 200, 'OK'), port);
    assert.equal((await drain(uac, 300)).length, 0);
  });

  it('RFC 2543 requests (no magic cookie) match their transaction too', async () => {
    const m = request('OPTIONS', `sip:old@127.0.0.1:${port}`, from(), [
      `Via: SIP/2.0/UDP 127.0.0.1:${uac.port};branch=oldstyle1`,
    ]);
    uac.send(m, port);
    const f = await nextWhere(uas, isReq('OPTIONS'));
    uas.send(replyFor(f, 200, 'OK'), port);
    await nextWhere(uac, isStatus(200));
    uac.send(m, port);
    const again = await nextWhere(uac, isStatus(200));
    assert.equal(again.toTag, 'uas1');
    assert.equal((await drain(uas, 200)).length, 0, 'the retransmission did not go downstream');
  });

  it('a request relayed back to us unchanged is a loop: 482', async () => {
    uac.send(request('OPTIONS', `sip:loop@127.0.0.1:${port}`, from()), port);
    const fin = await nextWhere(uac, (m) => !m.isRequest && m.status >= 200);
    assert.equal(fin.status, 482);
  });
});
