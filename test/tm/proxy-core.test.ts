/**
 * The proxy core of the transaction manager on a ManualClock with a captured transport:
 * every timer of a forwarded request (A/B, E/F, Timer C with CANCEL, G/H upstream) and the
 * CANCEL and failure_route paths, deterministic to the millisecond.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { CoreApi, Origin } from '../../src/core/api.js';
import type { Endpoint, MsgContext } from '../../src/core/context.js';
import { L_DBG, Logger, MemorySink } from '../../src/core/log.js';
import type { RouteKind } from '../../src/core/module.js';
import { MessageContext } from '../../src/core/msg-context.js';
import type { SendTarget } from '../../src/net/transports.js';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { buildReply } from '../../src/sip/reply.js';
import { TransactionManager } from '../../src/tm/tm.js';
import { Clocked, TIMERS } from './helpers.js';

const SRC: Endpoint = { ip: '10.0.0.2', port: 5060, proto: 'udp', af: 4 };
const ME: Endpoint = { ip: '10.0.0.9', port: 5060, proto: 'udp', af: 4 };

interface Sent {
  at: number;
  msg: SipMessage;
  to?: SendTarget;
}

/** The parts of the core tm uses: sends are recorded, the next hop is the URI's host:port. */
class FakeCore {
  readonly c = new Clocked();
  readonly up: Sent[] = [];
  readonly down: Sent[] = [];
  readonly stateless: Sent[] = [];
  readonly routes = new Map<string, (ctx: MsgContext) => number | Promise<number>>();
  readonly sink = new MemorySink();
  readonly api: CoreApi;
  constructor() {
    const self = this;
    const p = (d: Buffer) => parseMessage(d, { datagram: true });
    this.api = {
      log: new Logger(L_DBG, this.sink),
      clock: this.c.clock,
      timers: this.c.wheel,
      buildReply: (ctx: MsgContext, code: number, reason: string, x?: { toTag?: string }) =>
        buildReply(ctx.msg, code, reason, { toTag: x?.toTag }),
      sendToOrigin(_m: SipMessage, _o: Origin, d: Buffer) {
        self.up.push({ at: self.c.clock.now(), msg: p(d) });
        return true;
      },
      send(to: SendTarget, d: Buffer) {
        self.down.push({ at: self.c.clock.now(), msg: p(d), to });
        return true;
      },
      async resolveUri(uri: string) {
        const m = /@?([\d.]+):(\d+)/.exec(uri);
        return m ? [{ proto: 'udp', ip: m[1], port: Number(m[2]) }] : [];
      },
      // as if every host were a name: the branches wait for the (immediate) DNS answer
      resolveUriNow: () => undefined,
      viaFor: (t: SendTarget, branch: string) =>
        `SIP/2.0/${t.proto.toUpperCase()} 10.0.0.9:5060;branch=${branch}`,
      isOurVia: (v: { host: string }) => v.host === '10.0.0.9',
      createContext: (msg: SipMessage, o: Origin, kind: RouteKind) =>
        new MessageContext(msg, o.src, o.dst, kind),
      runRoute: (ctx: MsgContext, kind: RouteKind, name: string) =>
        self.routes.get(`${kind}:${name}`)?.(ctx) ?? 1,
      hasRoute: (kind: RouteKind, name: string) => self.routes.has(`${kind}:${name}`),
      async forwardRequest(ctx: MsgContext) {
        self.stateless.push({ at: self.c.clock.now(), msg: ctx.msg });
        return 1;
      },
      // no rr here: nothing to add to a branch before it is serialized
      beforeForward: () => () => {},
      async forwardReply(msg: SipMessage) {
        self.stateless.push({ at: self.c.clock.now(), msg });
        return true;
      },
    } as unknown as CoreApi;
  }
}

function invite(branch = 'z9hG4bKup1', method = 'INVITE'): MessageContext {
  const text = [
    `${method} sip:bob@10.0.0.3:5060 SIP/2.0`,
    `Via: SIP/2.0/UDP 10.0.0.2:5060;branch=${branch}`,
    'Max-Forwards: 70',
    'From: <sip:alice@a.org>;tag=fa',
    'To: <sip:bob@b.org>',
    'Call-ID: cid-1',
    `CSeq: 1 ${method}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return new MessageContext(parseMessage(Buffer.from(text), { datagram: true }), SRC, ME, 'request');
}

/** a reply from the next hop to the request it got */
function answer(req: SipMessage, code: number, tag = 'tb'): SipMessage {
  const b = buildReply(req, code, 'R', { toTag: code > 100 ? tag : undefined });
  return parseMessage(b, { datagram: true });
}

const origin: Origin = { src: { ip: '10.0.0.3', port: 5060, proto: 'udp', af: 4 }, dst: ME };

function setup(noisy = true) {
  const f = new FakeCore();
  const tm = new TransactionManager(f.api, { timers: TIMERS, noisyCtimer: noisy });
  return { f, tm };
}

const codes = (s: Sent[]) => s.map((x) => (x.msg.isRequest ? x.msg.method : x.msg.status));

describe('proxy core on a ManualClock', () => {
  it('INVITE: 100 upstream at once, Timer A downstream, Timer B (fr_timer) → 408 upstream, no CANCEL', async () => {
    const { f, tm } = setup();
    const ctx = invite();
    assert.equal(await tm.relay(ctx), 1);
    assert.deepEqual(codes(f.up), [100]);
    assert.equal(f.down[0].msg.method, 'INVITE');
    assert.equal(f.down[0].msg.maxForwards, 69);
    f.c.advance(30_010);
    assert.deepEqual(
      f.down.map((d) => d.at),
      [0, 500, 1500, 3500, 7500, 15500],
    );
    assert.deepEqual(codes(f.up), [100, 408]);
    // the 408 is retransmitted (Timer G) until the ACK
    f.c.advance(600);
    assert.deepEqual(codes(f.up), [100, 408, 408]);
    assert.equal(tm.newtran(invite('z9hG4bKup1', 'ACK')), 0, 'the ACK ends at the transaction');
    f.c.advance(10_000);
    assert.equal(f.up.length, 3);
    assert.ok(!f.down.some((d) => d.msg.method === 'CANCEL'));
  });

  it('Timer C (fr_inv_timer) after a 180: CANCEL to the branch and 408 upstream; the 487 is ACKed', async () => {
    const { f, tm } = setup();
    await tm.relay(invite());
    const out = f.down[0].msg;
    f.c.advance(100);
    assert.ok(tm.receiveReply(answer(out, 180), origin));
    assert.deepEqual(codes(f.up), [100, 180]);
    f.c.advance(119_990);
    assert.equal(f.down.length, 1, 'no retransmission after the provisional');
    f.c.advance(20);
    assert.deepEqual(codes(f.down), ['INVITE', 'CANCEL']);
    assert.equal(f.down[1].msg.topVia?.branch, out.topVia?.branch);
    assert.deepEqual(codes(f.up), [100, 180, 408]);
    tm.receiveReply(answer(f.down[1].msg, 200), origin);
    tm.receiveReply(answer(out, 487), origin);
    assert.deepEqual(codes(f.down), ['INVITE', 'CANCEL', 'ACK']);
    assert.deepEqual(codes(f.up), [100, 180, 408], 'the 487 stays here');
  });

  it('noisy_ctimer 0: the ringing single branch is dropped silently, freed after wt_timer', async () => {
    const { f, tm } = setup(false);
    await tm.relay(invite());
    tm.receiveReply(answer(f.down[0].msg, 180), origin);
    f.c.advance(120_010);
    assert.deepEqual(codes(f.down), ['INVITE']);
    assert.deepEqual(codes(f.up), [100, 180]);
    assert.equal(tm.server.size, 1);
    f.c.advance(5010);
    assert.equal(tm.server.size, 0);
  });

  it('non-INVITE: Timer E to T2 downstream, nothing upstream until Timer F → 408', async () => {
    const { f, tm } = setup();
    await tm.relay(invite('z9hG4bKo1', 'OPTIONS'));
    assert.equal(f.up.length, 0, 'no 100 for non-INVITE');
    f.c.advance(30_010);
    assert.deepEqual(
      f.down.map((d) => d.at),
      [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500],
    );
    assert.deepEqual(codes(f.up), [408]);
    // Timer J: the transaction stays wt_timer to answer retransmissions, then goes
    assert.equal(await tm.relay(invite('z9hG4bKo1', 'OPTIONS')), 0);
    assert.deepEqual(codes(f.up), [408, 408]);
    f.c.advance(5010);
    assert.equal(tm.server.size, 0);
  });

  it('CANCEL before any provisional: 200 at once, the CANCEL waits for the first 1xx (§9.1)', async () => {
    const { f, tm } = setup();
    await tm.relay(invite());
    const out = f.down[0].msg;
    assert.equal(await tm.relay(invite('z9hG4bKup1', 'CANCEL')), 1);
    assert.deepEqual(codes(f.up), [100, 200]);
    assert.equal(f.up[1].msg.cseq.method, 'CANCEL');
    f.c.advance(3000);
    assert.deepEqual(codes(f.down), ['INVITE'], 'retransmissions stop, no CANCEL yet');
    tm.receiveReply(answer(out, 180), origin);
    assert.deepEqual(codes(f.down), ['INVITE', 'CANCEL']);
    assert.deepEqual(codes(f.up), [100, 200, 180]);
    tm.receiveReply(answer(out, 487), origin);
    assert.deepEqual(codes(f.up), [100, 200, 180, 487]);
    // a retransmitted CANCEL gets its 200 again
    await tm.relay(invite('z9hG4bKup1', 'CANCEL'));
    assert.deepEqual(codes(f.up), [100, 200, 180, 487, 200]);
  });

  it('a cancelled branch that never answers counts as 487, not 408', async () => {
    const { f, tm } = setup();
    await tm.relay(invite());
    await tm.relay(invite('z9hG4bKup1', 'CANCEL'));
    f.c.advance(30_010);
    assert.deepEqual(codes(f.up), [100, 200, 487]);
  });

  it('failure_route: armed once, new branch from it, flags written back, completion reported once', async () => {
    const { f, tm } = setup();
    const done: number[] = [];
    const flags: number[] = [];
    tm.onCompleted((e) => {
      done.push(e.code);
      flags.push(e.flags);
    });
    let runs = 0;
    f.routes.set('failure:1', (ctx) => {
      runs++;
      ctx.flags |= 4;
      ctx.branches.push({ uri: 'sip:carol@10.0.0.4:5060', q: -1 });
      return tm.relay(ctx);
    });
    const ctx = invite();
    tm.arm(ctx, 'failure', '1');
    await tm.relay(ctx);
    tm.receiveReply(answer(f.down[0].msg, 486), origin);
    await new Promise((r) => setImmediate(r));
    assert.equal(runs, 1);
    const second = f.down.find((d) => d.msg.method === 'INVITE' && d.msg.ruri === 'sip:carol@10.0.0.4:5060');
    assert.ok(second, 'the new branch went out');
    assert.deepEqual(codes(f.up), [100], 'the 486 was not relayed');
    tm.receiveReply(answer(second.msg, 404), origin);
    await new Promise((r) => setImmediate(r));
    assert.equal(runs, 1, 'not re-armed: runs once');
    assert.deepEqual(codes(f.up), [100, 404], 'the best of 486 and 404');
    assert.deepEqual(done, [404]);
    assert.deepEqual(flags, [4]);
  });
});

describe('a completed transaction in its wait state (wt_timer)', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  const collect = async () => {
    await new Promise((r) => setImmediate(r));
    gc();
  };
  /** relays an INVITE the test keeps no reference to; a WeakRef to its parsed request */
  async function relayed(tm: TransactionManager, branch: string): Promise<WeakRef<SipMessage>> {
    const ctx = invite(branch);
    assert.equal(await tm.relay(ctx), 1);
    return new WeakRef(ctx.msg);
  }

  it('lets go of the request once a non-2xx went upstream, and still answers retransmissions and a late 2xx', async () => {
    const { f, tm } = setup();
    const acks: (number | undefined)[] = [];
    tm.onE2eAck((ev) => acks.push(ev.inviteFlags));
    const weak = await relayed(tm, 'z9hG4bKshed1');
    tm.receiveReply(answer(f.down[0].msg, 180), origin);
    await collect();
    assert.ok(weak.deref() !== undefined, 'a pending transaction keeps its request');
    // Timer C: CANCEL down, 408 up
    f.c.advance(120_010);
    assert.deepEqual(codes(f.up), [100, 180, 408]);
    await collect();
    assert.equal(weak.deref(), undefined, 'completed: nothing holds the request any more');
    // the wait state works from what was kept: the retransmitted INVITE gets the 408 again
    assert.equal(tm.newtran(invite('z9hG4bKshed1')), 0);
    assert.deepEqual(codes(f.up), [100, 180, 408, 408]);
    // the callee answered before the CANCEL reached it: its 2xx still goes up (statelessly)
    // and is indexed for its ACK
    tm.receiveReply(answer(f.down[0].msg, 200), origin);
    assert.equal(f.stateless.at(-1)?.msg.status, 200);
    await tm.relay(invite('z9hG4bKack2', 'ACK'));
    assert.deepEqual(acks, [0], 'the ACK for the late 2xx found its INVITE');
  });

  it('a 2xx: the request goes, the ACK index and the completion report keep working', async () => {
    const { f, tm } = setup();
    const done: string[] = [];
    tm.onCompleted((ev) => done.push(`${ev.code} ${ev.request.method} ${ev.request.callId}`));
    const acks: (number | undefined)[] = [];
    tm.onE2eAck((ev) => acks.push(ev.inviteFlags));
    const weak = await relayed(tm, 'z9hG4bKshed2');
    tm.receiveReply(answer(f.down[0].msg, 200), origin);
    assert.deepEqual(codes(f.up), [100, 200]);
    assert.deepEqual(done, ['200 INVITE cid-1']);
    await collect();
    assert.equal(weak.deref(), undefined);
    const ack = invite('z9hG4bKack1', 'ACK');
    await tm.relay(ack);
    assert.deepEqual(acks, [0], 'the ACK for the 2xx found its INVITE');
    // a retransmitted 2xx from downstream still goes upstream
    tm.receiveReply(answer(f.down[0].msg, 200), origin);
    assert.equal(f.up.length + f.stateless.filter((x) => x.msg.status === 200).length, 3);
  });
});

describe('serial forking over two failure_routes (seed 003 Example 2-21 shape)', () => {
  it('failure_route[1] re-arms failure_route[2], which answers with t_reply', async () => {
    const { f, tm } = setup();
    const order: string[] = [];
    f.routes.set('failure:1', (ctx) => {
      order.push('1');
      ctx.branches.push({ uri: 'sip:carol@10.0.0.4:5060', q: -1 });
      tm.arm(ctx, 'failure', '2');
      return tm.relay(ctx);
    });
    f.routes.set('failure:2', (ctx) => {
      order.push('2');
      // no new branch: t_relay fails, the script answers itself
      return Promise.resolve(tm.relay(ctx)).then((r) => {
        assert.equal(r, -1);
        return tm.reply(ctx, 480, 'Temporarily Unavailable');
      });
    });
    const ctx = invite();
    tm.arm(ctx, 'failure', '1');
    await tm.relay(ctx);
    tm.receiveReply(answer(f.down[0].msg, 486), origin);
    await new Promise((r) => setImmediate(r));
    const carol = f.down.find((d) => d.msg.ruri === 'sip:carol@10.0.0.4:5060');
    assert.ok(carol);
    f.c.advance(30_010); // carol never answers: fr_timer, 408
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['1', '2']);
    assert.deepEqual(codes(f.up), [100, 480]);
    assert.equal(f.up[1].msg.reason, 'Temporarily Unavailable');
  });
});

describe('Max-Forwards and loops in the proxy core', () => {
  const withMf = (mf: string | undefined, branch: string) => {
    const ctx = invite(branch, 'OPTIONS');
    if (mf === undefined) ctx.msg.removeHeader('max-forwards');
    else ctx.msg.replaceHeader('Max-Forwards', mf);
    // a fresh parse: the header counts as received
    return new MessageContext(parseMessage(ctx.msg.serialize(), { datagram: true }), SRC, ME, 'request');
  };

  it('decrements a received Max-Forwards, adds 70 when missing, keeps what the script set', async () => {
    const { f, tm } = setup();
    await tm.relay(withMf('5', 'z9hG4bKm1'));
    assert.equal(f.down[0].msg.maxForwards, 4);
    await tm.relay(withMf(undefined, 'z9hG4bKm2'));
    assert.equal(f.down[1].msg.maxForwards, 70);
    const ctx = withMf('5', 'z9hG4bKm3');
    ctx.msg.replaceHeader('Max-Forwards', '4'); // mf_process_maxfwd_header did it
    await tm.relay(ctx);
    assert.equal(f.down[2].msg.maxForwards, 4);
  });

  it('Max-Forwards 0 is answered 483 and not forwarded', async () => {
    const { f, tm } = setup();
    assert.equal(await tm.relay(withMf('0', 'z9hG4bKm4')), 0);
    assert.deepEqual(codes(f.up), [483]);
    assert.equal(f.down.length, 0);
  });

  it('the 100 Trying carries no To-tag; the final reply a stable one', async () => {
    const { f, tm } = setup();
    await tm.relay(invite('z9hG4bKt1'));
    assert.equal(f.up[0].msg.toTag, undefined);
    f.c.advance(30_010);
    assert.ok(f.up[1].msg.toTag);
    await tm.relay(invite('z9hG4bKt1'));
    assert.equal(f.up[2].msg.toTag, f.up[1].msg.toTag);
  });
});
