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
import { nextWhere } from './tm-helpers.js';

// fr_timer 1-2 s and retr_timer1 20 ms (Timer H = 64*T1 = 1.28 s): a refused flood clears in seconds
const cfg = (sink: number, params: string) => `fork=no
loadmodule "sl.so"
loadmodule "tm.so"
modparam("tm", "retr_timer1", 20)
modparam("tm", "retr_timer2", 40)
${params}
route {
  if (method=="OPTIONS") { sl_send_reply("200", "alive"); break; };
  if (!t_relay("127.0.0.1", "${sink}")) { sl_reply_error(); };
}
`;

const from = (p: UdpPeer) => ({ ip: '127.0.0.1', port: p.port });

/** statuses of every reply the peer got within ms, by Call-ID (first final or provisional) */
async function collect(peer: UdpPeer, ms: number): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  const end = Date.now() + ms;
  for (let i = 0; i < 100_000; i++) {
    const left = end - Date.now();
    if (left <= 0) break;
    const b = await peer.next(left);
    if (!b) break;
    const m = parseMessage(b, { datagram: true });
    const l = out.get(m.callId) ?? [];
    l.push(m.status);
    out.set(m.callId, l);
  }
  return out;
}

/** the next message satisfying pred, skipping any number of others (a flood's 408s) */
async function until(peer: UdpPeer, pred: (m: SipMessage) => boolean, ms = 3000): Promise<SipMessage> {
  const end = Date.now() + ms;
  for (let i = 0; i < 100_000; i++) {
    const left = end - Date.now();
    if (left <= 0) break;
    const b = await peer.next(left);
    if (!b) break;
    const m = parseMessage(b, { datagram: true });
    if (pred(m)) return m;
  }
  throw new Error(`no matching message within ${ms} ms`);
}

async function alive(ser: Ser, uac: UdpPeer): Promise<SipMessage> {
  uac.send(request('OPTIONS', `sip:ping@127.0.0.1:${ser.port}`, from(uac)), ser.port);
  return until(uac, (m) => !m.isRequest && m.method === 'OPTIONS');
}

describe('tm max_transactions', () => {
  let ser: Ser;
  let uac: UdpPeer;
  let sink: UdpPeer;
  before(async () => {
    uac = await UdpPeer.open();
    sink = await UdpPeer.open();
    ser = await startSer(
      cfg(sink.port, 'modparam("tm", "max_transactions", 3)\nmodparam("tm", "fr_timer", 1)'),
    );
  });
  after(async () => {
    uac.close();
    sink.close();
    await ser.stop();
  });

  it('refuses the fourth live transaction with 503, answers retransmissions and OPTIONS, and admits again', async () => {
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
  let ser: Ser;
  let uac: UdpPeer;
  let sink: UdpPeer;
  before(async () => {
    uac = await UdpPeer.open();
    sink = await UdpPeer.open();
    // a heap limit of 51 MB (48 MB old space, three 1 MB semi-spaces): 4,000 unanswered
    // INVITEs of 2 KB would take some 50 MB and kill the process; the default max_heap (50 %)
    // lets about 2,000 live at once
    ser = await startSer(cfg(sink.port, 'modparam("tm", "fr_timer", 2)'), {
      nodeArgs: ['--max-old-space-size=48', '--max-semi-space-size=1'],
    });
  });
  after(async () => {
    uac.close();
    sink.close();
    await ser.stop();
  });

  it('refuses a flood past its share of the heap with 503, stays up and admits again once it ends', async () => {
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
    assert.equal((await alive(ser, uac)).status, 200);
    // fr_timer (2 s) and Timer H (1.28 s) end the admitted ones: a new INVITE is admitted
    await sleep(3500);
    let ok: SipMessage | undefined;
    for (let i = 0; i < 20 && !ok; i++) {
      const m = request('INVITE', uri, from(uac));
      const id = parseMessage(Buffer.from(m, 'latin1')).callId;
      uac.send(m, ser.port);
      const r = await until(uac, (x) => x.callId === id);
      if (r.status === 100) ok = r;
      else await sleep(250);
    }
    assert.ok(ok, 'an INVITE admitted after the flood');
    await ser.waitLog(/tm: accepting new transactions again/);
  });
});
