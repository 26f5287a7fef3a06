/**
 * tm under overload (max_transactions, max_heap): new transactions are refused with 503 by
 * the script's sl_reply_error(), what is under way goes on, the server keeps answering, and
 * it admits again once transactions have ended. A UAS that never answers holds each INVITE
 * for fr_timer, the flood an operator fears.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { request, type Ser, sleep, startSer, UdpPeer } from './harness.js';
import { drain, nextWhere } from './tm-helpers.js';

// fr_timer 1-2 s and retr_timer1 20 ms (Timer H = 64*T1 = 1.28 s): a refused flood clears in seconds
const cfg = (sink: number, params: string) => `fork=no
loadmodule "sl.so"
loadmodule "tm.so"
modparam("tm", "retr_timer1", 20)
${params}
route {
  if (method=="OPTIONS") { sl_send_reply("200", "alive"); break; };
  if (!t_relay("127.0.0.1", "${sink}")) { sl_reply_error(); };
}
`;

const from = (p: UdpPeer) => ({ ip: '127.0.0.1', port: p.port });
/** messages a helper may look through: all of a flood's */
const FLOOD = 100_000;

/** statuses of every reply the peer gets within ms, by Call-ID */
async function collect(peer: UdpPeer, ms: number): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const m of await drain(peer, ms, FLOOD)) {
    const l = out.get(m.callId) ?? [];
    l.push(m.status);
    out.set(m.callId, l);
  }
  return out;
}

/** the next message satisfying pred, however many others (a flood's 408s) come first */
const until = (peer: UdpPeer, pred: (m: SipMessage) => boolean) => nextWhere(peer, pred, 3000, FLOOD);

async function alive(ser: Ser, uac: UdpPeer): Promise<SipMessage> {
  uac.send(request('OPTIONS', `sip:ping@127.0.0.1:${ser.port}`, from(uac)), ser.port);
  return until(uac, (m) => !m.isRequest && m.method === 'OPTIONS');
}

/**
 * A UAC, a second UA (`probe`) whose socket the UAC's flood of replies does not fill, a UAS
 * that never answers, and the server relaying to it; closed after the suite.
 */
function fixture(params: string, nodeArgs?: string[]) {
  const f = {} as { ser: Ser; uac: UdpPeer; probe: UdpPeer; sink: UdpPeer };
  before(async () => {
    f.uac = await UdpPeer.open();
    f.probe = await UdpPeer.open();
    f.sink = await UdpPeer.open();
    f.ser = await startSer(cfg(f.sink.port, params), { nodeArgs });
  });
  after(async () => {
    f.uac.close();
    f.probe.close();
    f.sink.close();
    await f.ser.stop();
  });
  return f;
}

describe('tm max_transactions', () => {
  const f = fixture('modparam("tm", "max_transactions", 3)\nmodparam("tm", "fr_timer", 1)');

  it('refuses the fourth live transaction with 503, answers retransmissions and OPTIONS, and admits again', async () => {
    const { ser, uac } = f;
    const uri = `sip:callee@127.0.0.1:${ser.port}`;
    const invites = [1, 2, 3].map(() => request('INVITE', uri, from(uac)));
    for (const m of invites) {
      uac.send(m, ser.port);
      assert.equal((await nextWhere(uac, () => true)).status, 100);
    }
    const fourth = request('INVITE', uri, from(uac));
    uac.send(fourth, ser.port);
    const refused = await nextWhere(uac, () => true);
    assert.equal(refused.status, 503);
    assert.equal(refused.reason, 'Service Unavailable');
    assert.equal(refused.callId, parseMessage(Buffer.from(fourth, 'latin1')).callId);
    await ser.waitLog(
      /ERROR: tm: max_transactions reached \(3 live transactions, about [\d.]+ MB of the [\d.]+ MB max_heap allows\): new transactions are refused with 503/,
    );
    // a retransmission of a live one is its transaction's business, not a new one
    uac.send(invites[0], ser.port);
    const again = await nextWhere(uac, () => true);
    assert.equal(again.status, 100);
    assert.equal(again.callId, parseMessage(Buffer.from(invites[0], 'latin1')).callId);
    assert.equal((await alive(ser, uac)).status, 200);
    // fr_timer (1 s) ends the three with 408; Timer H (1.28 s) removes them
    const ended = await collect(uac, 3000);
    assert.equal([...ended.values()].filter((s) => s.includes(408)).length, 3);
    uac.send(request('INVITE', uri, from(uac)), ser.port);
    assert.equal((await nextWhere(uac, (m) => m.status !== 408)).status, 100);
    await ser.waitLog(/tm: accepting new transactions again/);
  });
});

describe('tm max_heap', () => {
  // a heap limit of 51 MB (48 MB old space, three 1 MB semi-spaces): 4,000 unanswered
  // INVITEs of 2 KB would take some 50 MB and kill the process; the default max_heap (50 %)
  // lets about 2,000 live at once
  const f = fixture('modparam("tm", "fr_timer", 2)', ['--max-old-space-size=48', '--max-semi-space-size=1']);

  it('refuses a flood past its share of the heap with 503, stays up and admits again once it ends', async () => {
    const { ser, uac, probe } = f;
    const uri = `sip:callee@127.0.0.1:${ser.port}`;
    const body = `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=x-pad:${'p'.repeat(1500)}\r\n`;
    const replies = collect(uac, 6500);
    const n = 4000;
    for (let i = 0; i < n; i++) {
      uac.send(request('INVITE', uri, from(uac), ['Content-Type: application/sdp'], body), ser.port);
      // about 1,000/s for 4 s: fr_timer + Timer H (3.3 s) would keep 3,300 alive, past the budget
      if (i % 10 === 9) await sleep(10);
    }
    const got = await replies;
    let trying = 0;
    let refused = 0;
    for (const s of got.values()) {
      if (s.includes(100)) trying++;
      if (s.includes(503)) refused++;
    }
    assert.ok(trying > 500, `${trying} admitted`);
    assert.ok(refused > 500, `${refused} refused, ${trying} admitted\n${ser.stderr()}`);
    // our socket may drop a few replies among the 408s that fr_timer sends and Timer G repeats
    assert.ok(trying + refused >= 0.9 * n, `INVITEs answered: ${trying} + ${refused} of ${n}`);
    await ser.waitLog(
      /tm: max_heap reached \(\d+ live transactions, about [\d.]+ MB of the [\d.]+ MB max_heap allows\)/,
    );
    assert.equal(ser.proc.exitCode, null);
    assert.equal((await alive(ser, probe)).status, 200);
    // fr_timer (2 s) and Timer H (1.28 s) end the admitted ones: a new INVITE is admitted
    await sleep(3500);
    let ok: SipMessage | undefined;
    for (let i = 0; i < 20 && !ok; i++) {
      const m = request('INVITE', uri, from(probe));
      const id = parseMessage(Buffer.from(m, 'latin1')).callId;
      probe.send(m, ser.port);
      const r = await until(probe, (x) => x.callId === id);
      if (r.status === 100) ok = r;
      else await sleep(250);
    }
    assert.ok(ok, 'an INVITE admitted after the flood');
    await ser.waitLog(/tm: accepting new transactions again/);
  });
});
