/**
 * The stateful proxy over real sockets: hop-by-hop ACK, CANCEL, fr_inv_timer, parallel
 * forking with reply selection, serial forking from failure_route, onreply_route,
 * t_newtran (seed 003 Example 2-18) and a UDP → TCP transport change.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseSerArgs } from '../../src/cli/ser.js';
import { MemorySink } from '../../src/core/log.js';
import { type RunningServer, startServer } from '../../src/core/server.js';
import { messageLength, parseMessage, type SipMessage } from '../../src/sip/message.js';
import type { TmState } from '../../src/modules/tm/index.js';
import { freePort, haveSeeds, request, type Ser, seedScript, startSer, TcpPeer, UdpPeer } from './harness.js';
import { drain, isReq, isStatus, nextWhere, replyFor } from './tm-helpers.js';

function ackFor(inv: string, final: SipMessage): string {
  const m = parseMessage(Buffer.from(inv, 'latin1'), { datagram: true });
  return [
    `ACK ${m.ruri} SIP/2.0`,
    `Via: ${m.header('via')}`,
    'Max-Forwards: 70',
    `From: ${m.header('from')}`,
    `To: ${final.header('to')}`,
    `Call-ID: ${m.callId}`,
    `CSeq: ${m.cseq.seq} ACK`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function cancelFor(inv: string): string {
  const m = parseMessage(Buffer.from(inv, 'latin1'), { datagram: true });
  return [
    `CANCEL ${m.ruri} SIP/2.0`,
    `Via: ${m.header('via')}`,
    'Max-Forwards: 70',
    `From: ${m.header('from')}`,
    `To: ${m.header('to')}`,
    `Call-ID: ${m.callId}`,
    `CSeq: ${m.cseq.seq} CANCEL`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

describe('tm as a stateful proxy', () => {
  let srv: RunningServer;
  let port: number;
  let uac: UdpPeer;
  let uas1: UdpPeer;
  let uas2: UdpPeer;
  const sink = new MemorySink();
  let tcpPort: number;
  let tcpServer: Server;
  const tcpIn: SipMessage[] = [];
  let tcpSock: Socket | undefined;

  before(async () => {
    port = await freePort();
    uac = await UdpPeer.open();
    uas1 = await UdpPeer.open();
    uas2 = await UdpPeer.open();
    // a TCP UAS: parses what arrives, keeps the connection for its replies
    tcpServer = createServer((s) => {
      tcpSock = s;
      let buf = Buffer.alloc(0);
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        for (let i = 0; i < 10; i++) {
          const n = messageLength(buf);
          if (n <= 0 || n > buf.length) break;
          tcpIn.push(parseMessage(buf.subarray(0, n)));
          buf = buf.subarray(n);
        }
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => tcpServer.listen(0, '127.0.0.1', () => r()));
    tcpPort = (tcpServer.address() as { port: number }).port;
    const a = `sip:a@127.0.0.1:${uas1.port}`;
    const b = `sip:b@127.0.0.1:${uas2.port}`;
    srv = await startServer(parseSerArgs(['-f', 'mem.cfg', '-D']), {
      logSink: sink,
      configText: `debug=3
listen=udp:127.0.0.1:${port}
listen=tcp:127.0.0.1:${port}
fork=no
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "textops.so"
modparam("tm", "fr_timer", 2)
modparam("tm", "fr_inv_timer", 1)
modparam("tm", "noisy_ctimer", 1)
route {
  if (method == "ACK") { t_relay(); break; };
  if (uri =~ "^sip:fork") { rewriteuri("${a}"); append_branch("${b}"); }
  else if (uri =~ "^sip:serial") { rewriteuri("${a}"); t_on_failure("1"); }
  else if (uri =~ "^sip:onreply") { rewriteuri("${a}"); t_on_reply("1"); }
  else if (uri =~ "^sip:tcp") { t_relay_to_tcp("127.0.0.1", "${tcpPort}"); break; }
  else if (uri =~ "^sip:nowhere") { rewriteuri("sip:x@no-such-host.invalid"); }
  else { rewriteuri("${a}"); };
  if (!t_relay()) { sl_reply_error(); };
}
failure_route[1] {
  if (t_check_status("486")) {
    log(1, "serial fork after 486\\n");
    append_branch("${b}");
    t_relay();
  };
}
onreply_route[1] {
  if (status =~ "18[0-9]") { append_hf("X-Seen: ringing\\r\\n"); };
  log(1, "onreply status seen\\n");
}
`,
    });
  });
  after(async () => {
    uac.close();
    uas1.close();
    uas2.close();
    tcpSock?.destroy();
    tcpServer.close();
    await srv.stop();
  });

  const inv = (user: string) =>
    request('INVITE', `sip:${user}@127.0.0.1:${port}`, { ip: '127.0.0.1', port: uac.port });

  it('a non-2xx final: ACK generated toward the branch, the upstream ACK absorbed, retransmissions handled', async () => {
    const i = inv('plain');
    uac.send(i, port);
    assert.equal((await nextWhere(uac, () => true)).status, 100);
    const f = await nextWhere(uas1, isReq('INVITE'));
    uas1.send(replyFor(f, 486, 'Busy Here'), port);
    const hop = await nextWhere(uas1, isReq('ACK'));
    assert.equal(hop.topVia?.branch, f.topVia?.branch, 'the ACK of a non-2xx is hop-by-hop: our branch');
    assert.equal(hop.vias.length, 1);
    assert.equal(hop.toTag, 'uas1');
    const busy = await nextWhere(uac, isStatus(486));
    assert.equal(busy.vias.length, 1);
    // the UAS did not see our ACK: it retransmits, we ACK again and do not relay it again
    uas1.send(replyFor(f, 486, 'Busy Here'), port);
    await nextWhere(uas1, isReq('ACK'));
    // the UAC did not see the 486: its INVITE retransmission gets the 486 again
    uac.send(i, port);
    assert.equal((await nextWhere(uac, () => true)).status, 486);
    uac.send(ackFor(i, busy), port);
    const late = await drain(uas1, 300);
    assert.deepEqual(
      late.map((m) => m.method),
      [],
      'the upstream ACK ends at the proxy',
    );
    // after the ACK (Confirmed) a late INVITE retransmission is absorbed
    uac.send(i, port);
    assert.equal((await drain(uac, 200)).length, 0);
  });

  it('CANCEL: 200 at once, CANCEL to the branch, its 487 relayed', async () => {
    const i = inv('plain');
    uac.send(i, port);
    await nextWhere(uac, isStatus(100));
    const f = await nextWhere(uas1, isReq('INVITE'));
    uas1.send(replyFor(f, 180, 'Ringing'), port);
    await nextWhere(uac, isStatus(180));
    uac.send(cancelFor(i), port);
    const c200 = await nextWhere(uac, isStatus(200));
    assert.equal(c200.cseq.method, 'CANCEL');
    const c = await nextWhere(uas1, isReq('CANCEL'));
    assert.equal(c.topVia?.branch, f.topVia?.branch);
    assert.equal(c.header('cseq'), `${f.cseq.seq} CANCEL`);
    uas1.send(replyFor(c, 200, 'OK'), port);
    uas1.send(replyFor(f, 487, 'Request Terminated'), port);
    const t = await nextWhere(uac, isStatus(487));
    assert.equal(t.cseq.method, 'INVITE');
    uac.send(ackFor(i, t), port);
    await nextWhere(uas1, isReq('ACK'));
  });

  it('a CANCEL without a transaction is forwarded statelessly', async () => {
    const i = inv('plain');
    uac.send(cancelFor(i), port);
    const c = await nextWhere(uas1, isReq('CANCEL'));
    assert.equal(c.vias.length, 2);
  });

  it('fr_inv_timer after a provisional: CANCEL to the branch and 408 upstream', async () => {
    const i = inv('plain');
    uac.send(i, port);
    const f = await nextWhere(uas1, isReq('INVITE'));
    uas1.send(replyFor(f, 183, 'Session Progress'), port);
    await nextWhere(uac, isStatus(183));
    const c = await nextWhere(uas1, isReq('CANCEL'), 3000);
    assert.equal(c.topVia?.branch, f.topVia?.branch);
    const t = await nextWhere(uac, isStatus(408), 3000);
    assert.equal(t.cseq.method, 'INVITE');
    uac.send(ackFor(i, t), port);
    // the UAS answers the CANCEL; its 487 is ACKed and goes no further
    uas1.send(replyFor(c, 200, 'OK'), port);
    uas1.send(replyFor(f, 487, 'Request Terminated'), port);
    await nextWhere(uas1, isReq('ACK'));
    assert.equal((await drain(uac, 200)).length, 0);
  });

  it('Timer A on the running wheel: an unanswered INVITE goes again at 0.5 s and 1.5 s', async () => {
    const i = inv('plain');
    uac.send(i, port);
    const f = await nextWhere(uas1, isReq('INVITE'));
    const again = (await drain(uas1, 1800)).filter(
      (m) => m.method === 'INVITE' && m.topVia?.branch === f.topVia?.branch,
    );
    assert.ok(again.length >= 2, `${again.length} retransmission(s) in 1.8 s`);
    uas1.send(replyFor(f, 486, 'Busy Here'), port);
    await nextWhere(uas1, isReq('ACK'));
    const busy = await nextWhere(uac, isStatus(486));
    uac.send(ackFor(i, busy), port);
  });

  it('fr_timer with no reply at all: 408 upstream, no CANCEL', async () => {
    uac.send(request('OPTIONS', `sip:plain@127.0.0.1:${port}`, { ip: '127.0.0.1', port: uac.port }), port);
    const t = await nextWhere(uac, isStatus(408), 4000);
    assert.equal(t.cseq.method, 'OPTIONS');
    const seen = await drain(uas1, 50);
    assert.ok(
      seen.every((m) => m.method === 'OPTIONS'),
      'only retransmissions of the request',
    );
  });

  it('parallel fork: both branches get the INVITE; a 6xx cancels the other and wins', async () => {
    const i = inv('fork');
    uac.send(i, port);
    const f1 = await nextWhere(uas1, isReq('INVITE'));
    const f2 = await nextWhere(uas2, isReq('INVITE'));
    assert.notEqual(f1.topVia?.branch, f2.topVia?.branch);
    assert.equal(f1.ruri, `sip:a@127.0.0.1:${uas1.port}`);
    assert.equal(f2.ruri, `sip:b@127.0.0.1:${uas2.port}`);
    uas1.send(replyFor(f1, 180, 'Ringing'), port);
    await nextWhere(uac, isStatus(180));
    uas2.send(replyFor(f2, 603, 'Decline', [], 'uas2'), port);
    await nextWhere(uas2, isReq('ACK'));
    const c = await nextWhere(uas1, isReq('CANCEL'));
    assert.equal(c.topVia?.branch, f1.topVia?.branch);
    uas1.send(replyFor(c, 200, 'OK'), port);
    uas1.send(replyFor(f1, 487, 'Request Terminated'), port);
    const fin = await nextWhere(uac, (m) => !m.isRequest && m.status >= 200);
    assert.equal(fin.status, 603);
    uac.send(ackFor(i, fin), port);
  });

  it('parallel fork: 401 and 407 are merged with all challenges; a 503 becomes 500', async () => {
    const i = inv('fork');
    uac.send(i, port);
    const f1 = await nextWhere(uas1, isReq('INVITE'));
    const f2 = await nextWhere(uas2, isReq('INVITE'));
    uas1.send(replyFor(f1, 401, 'Unauthorized', ['WWW-Authenticate: Digest realm="a", nonce="1"']), port);
    uas2.send(
      replyFor(f2, 407, 'Proxy Authentication Required', ['Proxy-Authenticate: Digest realm="b", nonce="2"']),
      port,
    );
    const fin = await nextWhere(uac, (m) => !m.isRequest && m.status >= 200);
    assert.equal(fin.status, 401);
    assert.match(fin.header('www-authenticate') ?? '', /realm="a"/);
    assert.match(fin.header('proxy-authenticate') ?? '', /realm="b"/);
    uac.send(ackFor(i, fin), port);
    const i2 = inv('plain');
    uac.send(i2, port);
    const f = await nextWhere(uas1, isReq('INVITE'));
    uas1.send(replyFor(f, 503, 'Service Unavailable'), port);
    const e = await nextWhere(uac, (m) => !m.isRequest && m.status >= 200);
    assert.equal(e.status, 500);
    uac.send(ackFor(i2, e), port);
  });

  it('a 2xx on one branch is relayed at once and the other branch is cancelled', async () => {
    uac.send(inv('fork'), port);
    const f1 = await nextWhere(uas1, isReq('INVITE'));
    const f2 = await nextWhere(uas2, isReq('INVITE'));
    uas2.send(replyFor(f2, 180, 'Ringing', [], 'uas2'), port);
    uas1.send(replyFor(f1, 200, 'OK'), port);
    const ok = await nextWhere(uac, isStatus(200));
    assert.equal(ok.toTag, 'uas1');
    const c = await nextWhere(uas2, isReq('CANCEL'));
    uas2.send(replyFor(c, 200, 'OK'), port);
    uas2.send(replyFor(f2, 487, 'Request Terminated', [], 'uas2'), port);
    await nextWhere(uas2, isReq('ACK'));
    assert.equal((await drain(uac, 200)).filter((m) => m.status === 487).length, 0);
  });

  it('failure_route: serial forking after a 486 (t_check_status, append_branch, t_relay)', async () => {
    uac.send(inv('serial'), port);
    const f1 = await nextWhere(uas1, isReq('INVITE'));
    uas1.send(replyFor(f1, 486, 'Busy Here'), port);
    const f2 = await nextWhere(uas2, isReq('INVITE'));
    assert.equal(f2.ruri, `sip:b@127.0.0.1:${uas2.port}`);
    uas2.send(replyFor(f2, 200, 'OK', [], 'uas2'), port);
    const fin = await nextWhere(uac, (m) => !m.isRequest && m.status >= 200);
    assert.equal(fin.status, 200, 'the 486 never went upstream');
    assert.ok(sink.lines.some((l) => l.includes('serial fork after 486')));
  });

  it('onreply_route sees every reply with `status`, and textops edits the relayed reply', async () => {
    uac.send(inv('onreply'), port);
    const f = await nextWhere(uas1, isReq('INVITE'));
    uas1.send(replyFor(f, 180, 'Ringing'), port);
    const r = await nextWhere(uac, isStatus(180));
    assert.equal(r.header('x-seen'), 'ringing');
    uas1.send(replyFor(f, 200, 'OK'), port);
    const ok = await nextWhere(uac, isStatus(200));
    assert.equal(ok.header('x-seen'), undefined);
    assert.ok(sink.lines.filter((l) => l.includes('onreply status seen')).length >= 2);
  });

  it('an unresolvable destination is answered statefully with 478', async () => {
    const i = inv('nowhere');
    uac.send(i, port);
    const fin = await nextWhere(uac, (m) => !m.isRequest && m.status >= 200, 6000);
    assert.equal(fin.status, 478);
    uac.send(ackFor(i, fin), port);
  });

  it('UDP → TCP: relayed over TCP with a TCP Via, the reply comes back over UDP', async () => {
    uac.send(inv('tcp'), port);
    await nextWhere(uac, isStatus(100));
    const end = Date.now() + 3000;
    while (tcpIn.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const f = tcpIn.shift();
    assert.ok(f, 'INVITE over TCP');
    assert.equal(f.method, 'INVITE');
    assert.equal(f.topVia?.transport, 'TCP');
    assert.ok(f.hasHeader('content-length'));
    tcpSock!.write(replyFor(f, 200, 'OK'));
    const ok = await nextWhere(uac, isStatus(200));
    assert.equal(ok.vias.length, 1);
  });

  it('TCP → UDP: a request over TCP goes to a UDP branch, replies come back on the connection', async () => {
    const c = await TcpPeer.open(port);
    try {
      const i = request('INVITE', `sip:plain@127.0.0.1:${port}`, {
        ip: '127.0.0.1',
        port: c.localPort,
        proto: 'TCP',
      });
      c.write(i);
      const f = await nextWhere(uas1, isReq('INVITE'));
      assert.equal(f.topVia?.transport, 'UDP');
      assert.equal(f.vias[1].transport, 'TCP');
      uas1.send(replyFor(f, 486, 'Busy Here'), port);
      await nextWhere(uas1, isReq('ACK'));
      const text = await c.waitFor((t) => t.includes('SIP/2.0 486'));
      assert.match(text, /^SIP\/2\.0 100 /);
      assert.match(text, /SIP\/2\.0 486 Busy Here/);
      // over TCP the 486 is not retransmitted (no Timer G)
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(c.data.toString('latin1').match(/SIP\/2\.0 486/g)?.length, 1);
    } finally {
      c.close();
    }
  });

  it('t_stats counts what happened', () => {
    const st = srv.states.get('tm') as TmState;
    const s = srv.core.statGroups.get('tm')!();
    assert.ok(s.total >= 10);
    assert.ok(s.completed_2xx >= 3);
    assert.ok(s.completed_4xx >= 3);
    assert.ok(s.completed_6xx >= 1);
    assert.ok(s.replied_localy >= 2);
    assert.ok(st.tm.current >= 0);
  });
});

describe('noisy_ctimer 0 (SER default): a ringing single branch is dropped silently at fr_inv_timer', () => {
  let srv: RunningServer;
  let port: number;
  let uac: UdpPeer;
  let uas: UdpPeer;
  before(async () => {
    port = await freePort();
    uac = await UdpPeer.open();
    uas = await UdpPeer.open();
    srv = await startServer(parseSerArgs(['-f', 'mem.cfg', '-D']), {
      logSink: new MemorySink(),
      configText: `listen=udp:127.0.0.1:${port}
fork=no
loadmodule "tm.so"
modparam("tm", "fr_inv_timer", 1)
modparam("tm", "wt_timer", 1)
route { rewritehostport("127.0.0.1:${uas.port}"); t_relay(); }
`,
    });
  });
  after(async () => {
    uac.close();
    uas.close();
    await srv.stop();
  });
  it('no CANCEL, no 408; a late 200 still reaches the caller', async () => {
    uac.send(request('INVITE', `sip:x@127.0.0.1:${port}`, { ip: '127.0.0.1', port: uac.port }), port);
    const f = await nextWhere(uas, isReq('INVITE'));
    uas.send(replyFor(f, 180, 'Ringing'), port);
    await nextWhere(uac, isStatus(180));
    const seen = await drain(uas, 1500);
    assert.deepEqual(
      seen.map((m) => m.method),
      [],
      'no CANCEL',
    );
    assert.equal((await drain(uac, 100)).length, 0, 'no 408');
    uas.send(replyFor(f, 200, 'OK'), port);
    const ok = await nextWhere(uac, isStatus(200));
    assert.equal(ok.vias.length, 1);
  });
});

describe('stateful UA server (seed 003 Example 2-18)', {
  skip: !haveSeeds && 'shared/seed-configs not found',
}, () => {
  let ser: Ser;
  let ua: UdpPeer;
  before(async () => {
    ser = await startSer(`debug=3\n${seedScript('003-ex2-18-stateful-uas.cfg')}`);
    ua = await UdpPeer.open();
  });
  after(async () => {
    ua.close();
    await ser.stop();
  });

  it('answers 409 / 699 statefully; a retransmission gets the same reply and no new transaction', async () => {
    const i = request('INVITE', `sip:a@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port });
    ua.send(i, ser.port);
    const r = await ua.nextMsg();
    assert.equal(r.status, 409);
    assert.equal(r.reason, 'Bizzar Error');
    ua.send(i, ser.port);
    const again = await ua.nextMsg();
    assert.equal(again.status, 409);
    assert.equal(again.toTag, r.toTag);
    // the ACK ends at the transaction: nothing comes back, no new "New Transaction" line
    ua.send(ackFor(i, r), ser.port);
    const other = request('INVITE', `sip:b@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port });
    ua.send(other, ser.port);
    const r2 = await ua.nextMsg();
    assert.equal(r2.status, 699);
    assert.equal(r2.reason, "I don't want to chat with you");
    await ser.waitLog(/New Transaction Arrived[\s\S]*New Transaction Arrived/);
    assert.equal(ser.stderr().match(/New Transaction Arrived/g)?.length, 2);
  });

  it('sipsak gets the 409 for sip:anna@ (the regex a@ matches anna@)', {
    skip: !existsSync('/usr/bin/sipsak') && 'sipsak missing',
  }, async () => {
    const out = await new Promise<string>((res) =>
      execFile('sipsak', ['-vv', '-s', `sip:anna@127.0.0.1:${ser.port}`], { timeout: 10_000 }, (_e, o) =>
        res(o),
      ),
    );
    assert.match(out, /SIP\/2\.0 409 Bizzar Error/);
    assert.match(out, /final received/);
  });
});
