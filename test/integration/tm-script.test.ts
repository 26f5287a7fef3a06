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
modparam("tm", "loop_detect", 1)
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

  it('with loop_detect, a request relayed back to us unchanged is a loop: 482', async () => {
    uac.send(request('OPTIONS', `sip:loop@127.0.0.1:${port}`, from()), port);
    const fin = await nextWhere(uac, (m) => !m.isRequest && m.status >= 200);
    assert.equal(fin.status, 482);
  });

  it('a reply that matches no transaction is forwarded statelessly by its Via', async () => {
    const r = [
      'SIP/2.0 200 OK',
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKnotours`,
      `Via: SIP/2.0/UDP 127.0.0.1:${uac.port};branch=z9hG4bKup`,
      'From: <sip:a@b>;tag=1',
      'To: <sip:c@d>;tag=2',
      'Call-ID: stray-1',
      'CSeq: 1 INVITE',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    uas.send(r, port);
    const got = await nextWhere(uac, isStatus(200));
    assert.equal(got.callId, 'stray-1');
    assert.equal(got.vias.length, 1);
  });
});

describe('a loop without loop_detect ends by Max-Forwards, as in SER (SCENARIOS S9.4, S21.22)', () => {
  let srv: RunningServer;
  let port: number;
  let uac: UdpPeer;
  before(async () => {
    port = await freePort();
    uac = await UdpPeer.open();
    srv = await startServer(parseSerArgs(['-f', 'mem.cfg', '-D']), {
      logSink: new MemorySink(),
      configText: `listen=udp:127.0.0.1:${port}
fork=no
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "maxfwd.so"
route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); break; };
  t_relay();
}
`,
    });
  });
  after(async () => {
    uac.close();
    await srv.stop();
  });
  it('MESSAGE to the proxy itself comes back as 483 and the server lives on', async () => {
    uac.send(
      request('MESSAGE', `sip:bob@127.0.0.1:${port}`, { ip: '127.0.0.1', port: uac.port }, [
        'Max-Forwards: 10',
      ]),
      port,
    );
    const fin = await nextWhere(uac, (m) => !m.isRequest && m.status >= 200, 5000);
    assert.equal(fin.status, 483);
    assert.equal(fin.vias.length, 1);
    uac.send(
      request('OPTIONS', `sip:x@127.0.0.1:${port}`, { ip: '127.0.0.1', port: uac.port }, ['Max-Forwards: 0']),
      port,
    );
    assert.equal((await nextWhere(uac, (m) => !m.isRequest && m.status >= 200)).status, 483);
  });
});
