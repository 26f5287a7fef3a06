/**
 * tm over real UDP sockets: t_relay of an INVITE (100 Trying, 180/200 relayed, ACK for the
 * 2xx passing end to end) and of a BYE, with the TmApi callbacks acc depends on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseSerArgs } from '../../src/cli/ser.js';
import { MemorySink } from '../../src/core/log.js';
import { type RunningServer, startServer } from '../../src/core/server.js';
import type { TmApi, TmCompletion, TmE2eAck } from '../../src/tm/api.js';
import { freePort, request, UdpPeer } from './harness.js';
import { isReq, isStatus, nextWhere, replyFor } from './tm-helpers.js';

describe('t_relay end to end over UDP with the TmApi callbacks', () => {
  let srv: RunningServer;
  let port: number;
  let uac: UdpPeer;
  let uas: UdpPeer;
  const completions: TmCompletion[] = [];
  const acks: TmE2eAck[] = [];
  let api: TmApi;

  before(async () => {
    port = await freePort();
    uac = await UdpPeer.open();
    uas = await UdpPeer.open();
    srv = await startServer(parseSerArgs(['-f', 'mem.cfg', '-D']), {
      logSink: new MemorySink(),
      configText: `listen=udp:127.0.0.1:${port}
fork=no
loadmodule "sl.so"
loadmodule "tm.so"
route {
  setflag(3);
  if (!t_relay()) { sl_reply_error(); };
}
`,
    });
    api = srv.core.getApi<TmApi>('tm')!;
    api.onCompleted((e) => completions.push(e));
    api.onE2eAck((e) => acks.push(e));
  });
  after(async () => {
    uac.close();
    uas.close();
    await srv.stop();
  });

  it('relays an INVITE: 100 at once, 180 and 200 upstream, the ACK for the 200 downstream', async () => {
    const ruri = `sip:bob@127.0.0.1:${uas.port}`;
    const inv = request('INVITE', ruri, { ip: '127.0.0.1', port: uac.port });
    uac.send(inv, port);
    const trying = await nextWhere(uac, () => true);
    assert.equal(trying.status, 100);
    const fwd = await nextWhere(uas, isReq('INVITE'));
    assert.equal(fwd.vias.length, 2, 'our Via on top of the UAC one');
    assert.equal(fwd.vias[0].port, port);
    assert.match(fwd.vias[0].branch ?? '', /^z9hG4bK/);
    assert.equal(fwd.maxForwards, 69, 'Max-Forwards decremented');
    uas.send(replyFor(fwd, 180, 'Ringing'), port);
    const ringing = await nextWhere(uac, isStatus(180));
    assert.equal(ringing.vias.length, 1, 'our Via removed');
    uas.send(replyFor(fwd, 200, 'OK', [`Contact: <sip:bob@127.0.0.1:${uas.port}>`]), port);
    const ok = await nextWhere(uac, isStatus(200));
    assert.equal(ok.toTag, 'uas1');
    assert.equal(completions.length, 1);
    assert.equal(completions[0].code, 200);
    assert.equal(completions[0].request.method, 'INVITE');
    assert.ok(completions[0].flags & (1 << 3), 'flags as the script left them');
    assert.equal(completions[0].ruri, ruri);
    assert.ok(api.hasTransaction(completions[0].ctx));
    // the ACK for the 2xx is a new transaction: forwarded, reported once
    const okm = ok;
    const ack = request('ACK', ruri, { ip: '127.0.0.1', port: uac.port }, [
      `From: ${okm.header('from')}`,
      `To: ${okm.header('to')}`,
      `Call-ID: ${okm.callId}`,
      `CSeq: ${okm.cseq.seq} ACK`,
    ]);
    uac.send(ack, port);
    const fack = await nextWhere(uas, isReq('ACK'));
    assert.equal(fack.callId, okm.callId);
    assert.equal(acks.length, 1);
    assert.equal(acks[0].request.method, 'ACK');
    assert.equal(acks[0].inviteFlags, completions[0].flags, 'the INVITE transaction is found');
  });

  it('relays a BYE statefully and reports its completion', async () => {
    const ruri = `sip:bob@127.0.0.1:${uas.port}`;
    const before = completions.length;
    uac.send(request('BYE', ruri, { ip: '127.0.0.1', port: uac.port }), port);
    const fwd = await nextWhere(uas, isReq('BYE'));
    uas.send(replyFor(fwd, 200, 'OK'), port);
    const ok = await nextWhere(uac, isStatus(200));
    assert.equal(ok.cseq.method, 'BYE');
    assert.equal(completions.length, before + 1);
    assert.equal(completions.at(-1)!.code, 200);
    assert.equal(completions.at(-1)!.reply?.status, 200);
  });
});
