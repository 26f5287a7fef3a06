/**
 * The transaction manager: the table of server transactions (cells) and client transactions,
 * the stateful proxy core of RFC 3261 §16 (forking, reply selection, CANCEL, hop-by-hop ACK),
 * and local UAC transactions. The script functions of modules/tm call into it.
 */
import { randomBytes } from 'node:crypto';
import { branchMark, clusterRole } from '../core/cluster-role.js';
import type { CoreApi, Origin, ReplyRoute } from '../core/api.js';
import type { MsgContext, Proto } from '../core/context.js';
import { E_BAD_ADDRESS, E_LOOP, E_SEND } from '../core/core.js';
import { L_DBG, L_ERR, L_WARN } from '../core/log.js';
import { destinationUri, loopHash } from '../core/via.js';
import type { SendTarget } from '../net/transports.js';
import type { SipMessage } from '../sip/message.js';
import type { Via } from '../sip/headers.js';
import { detach } from '../sip/util.js';
import { generateTag } from '../sip/reply.js';
import type { TmApi, TmCompletion, TmE2eAck } from './api.js';
import { Cell, type CellBranch } from './cell.js';
import type { ClientTransaction, ClientTxUser } from './client-transaction.js';
import type { TmTimers } from './config.js';
import { buildCancel } from './hop-by-hop.js';
import { InviteClientTransaction } from './invite-client-transaction.js';
import { InviteServerTransaction } from './invite-server-transaction.js';
import { clientKey, clientKeyOfReply, e2eKey, serverKey } from './matching.js';
import { NonInviteClientTransaction } from './non-invite-client-transaction.js';
import { NonInviteServerTransaction } from './non-invite-server-transaction.js';
import { Admission, txCost } from './overload.js';
import { pickBranch, upstreamCode } from './reply-selection.js';
import { MapTable, type TransactionTable } from './transaction-table.js';
import type { TxTransport } from './transport.js';

export interface TmOptions {
  timers: TmTimers;
  /** SER's noisy_ctimer: when 0, an INVITE ringing on its only branch is dropped silently at fr_inv_timer */
  noisyCtimer: boolean;
  /** §16.3 step 4: answer 482 to a request that comes back unchanged; off, a loop ends by Max-Forwards (483) as in SER */
  loopDetect?: boolean;
  /** live server transactions allowed (tm's max_transactions); 0 or absent: no count limit */
  maxTransactions?: number;
  /** percent of V8's heap limit the live transactions may take by their estimated size (max_heap); 0 or absent: no limit */
  maxHeapPercent?: number;
}

/** what sl_reply_error() sends for a transaction refused under overload (RFC 3261 §21.5.4) */
export const E_OVERLOAD = { code: 503, reason: 'Service Unavailable' };

export interface TmStats {
  total: number;
  local: number;
  replied_localy: number;
  completed: number[];
}

/** An explicit next hop: t_relay(host, port), t_relay_to_udp/tcp, t_replicate */
export interface RelayDest {
  host: string;
  port?: number;
  proto?: Proto;
}

const LOCAL_REASON: Record<number, string> = {
  408: 'Request Timeout',
  487: 'Request Terminated',
  500: 'Server Internal Error',
  503: 'Service Unavailable',
};

/** One entry of the destination set */
interface Destination {
  uri: string;
  dstUri?: string;
}

export class TransactionManager implements TmApi {
  readonly server: TransactionTable<Cell> = new MapTable<Cell>();
  readonly clients: TransactionTable<ClientTransaction> = new MapTable<ClientTransaction>();

  /** INVITE cells that relayed a 2xx, by Call-ID/From-tag/CSeq, for the ACK callbacks */
  private readonly accepted = new Map<string, Cell>();

  private readonly completedCbs: ((ev: TmCompletion) => void)[] = [];
  private readonly e2eAckCbs: ((ev: TmE2eAck) => void)[] = [];
  readonly stats: TmStats = { total: 0, local: 0, replied_localy: 0, completed: [0, 0, 0, 0, 0, 0, 0] };
  /** completed cells still in the table (SER's "waiting") */
  waiting = 0;
  /** local UAC transactions not yet finished */
  localActive = 0;
  private seq = 0;
  /**
   * makes our branches unique across restarts; with several workers it starts with the
   * worker mark (`w<k>-`) so replies are steered to the worker owning the transaction
   */
  private readonly instance = (() => {
    const role = clusterRole();
    return (role ? branchMark(role.index) : '') + randomBytes(3).toString('hex');
  })();
  /** origin of the reply being processed, for onreply_route's context */
  private replyOrigin: Origin | undefined;

  /** refuses new transactions past max_transactions or max_heap */
  readonly admission: Admission;

  constructor(
    readonly core: CoreApi,
    readonly opts: TmOptions,
  ) {
    this.admission = new Admission({
      maxTransactions: opts.maxTransactions ?? 0,
      maxHeapPercent: opts.maxHeapPercent ?? 0,
      onChange: (why, detail) =>
        // at L_ERR, both: an operator must see overload at the default debug level
        core.log.log(
          L_ERR,
          why === undefined
            ? `tm: accepting new transactions again (${detail})`
            : `ERROR: tm: ${why === 'count' ? 'max_transactions' : 'max_heap'} reached (${detail}): new transactions are refused with 503`,
        ),
    });
  }

  // ------------------------------------------------------------------ TmApi

  onCompleted(fn: (ev: TmCompletion) => void): void {
    this.completedCbs.push(fn);
  }

  onE2eAck(fn: (ev: TmE2eAck) => void): void {
    this.e2eAckCbs.push(fn);
  }

  hasTransaction(ctx: MsgContext): boolean {
    return ctx.tmCell !== undefined;
  }

  /** the transaction of a context (the request's, or the one failure_route runs for) */
  cellOf(ctx: MsgContext): Cell | undefined {
    return ctx.tmCell as Cell | undefined; // kept on the context (MsgContext.tmCell)
  }

  get current(): number {
    return this.server.size + this.localActive;
  }

  // ------------------------------------------------------------------ script: t_on_failure / t_on_reply

  arm(ctx: MsgContext, kind: 'failure' | 'reply', route: string): void {
    const cell = this.cellOf(ctx);
    if (cell) {
      if (kind === 'failure') cell.onFailure = route;
      else cell.onReply = route;
      return;
    }
    let a = ctx.tmArmed;
    if (!a) {
      a = {};
      ctx.tmArmed = a;
    }
    a[kind] = route;
  }

  // ------------------------------------------------------------------ cells

  private origin(ctx: MsgContext): Origin {
    return { src: ctx.src, dst: ctx.dst, connId: (ctx as { connId?: number }).connId };
  }

  /** `cost`: what admit() counted for it (0 for a CANCEL's, which is never refused) */
  private createCell(ctx: MsgContext, lookupKey: string, cost = 0): Cell {
    const msg = ctx.msg;
    // built from slices of the request text, the key as it is would keep that text alive
    const key = detach(lookupKey);
    const origin = this.origin(ctx);
    // the way back needs the top Via's address fields only: a copy, so that the transaction
    // in its wait state does not keep the request (and its whole text) alive
    const back = replyRoute(msg);
    const out: TxTransport = {
      reliable: ctx.src.proto !== 'udp',
      send: (d) => this.core.sendToOrigin(back, origin, d),
    };
    const t = this.opts.timers;
    const uas =
      msg.method === 'INVITE'
        ? new InviteServerTransaction(out, this.core.timers, t)
        : new NonInviteServerTransaction(out, this.core.timers, t);
    const cell = new Cell(++this.seq, key, ctx, origin, uas, this.core.clock.now());
    cell.cost = cost;
    const a = ctx.tmArmed;
    if (a) {
      cell.onFailure = a.failure;
      cell.onReply = a.reply;
    }
    uas.onTerminated = () => this.release(cell);
    this.server.set(key, cell);
    ctx.tmCell = cell;
    this.stats.total++;
    return cell;
  }

  private release(cell: Cell): void {
    if (this.server.get(cell.key) === cell) this.server.delete(cell.key);
    this.admission.give(cell.cost);
    cell.cost = 0;
    cell.guard?.cancel();
    if (cell.finalSent) this.waiting--;
    const k = cell.acceptedKey;
    if (cell.relayed2xx && k !== undefined && this.accepted.get(k) === cell) this.accepted.delete(k);
  }

  /** "tm can handle only one transaction per request" (seed 003) */
  private alreadyInProcess(): number {
    this.core.log.log(L_ERR, 'ERROR: t_newtran: transaction already in process');
    return -1;
  }

  /**
   * May a new server transaction start? Its estimated cost when it may, -1 when not: the
   * script's t_relay/t_newtran fails and sl_reply_error() answers 503 (SER's answered 500
   * once its shared memory ran out).
   */
  private admit(ctx: MsgContext): number {
    const cost = txCost(ctx.msg.raw.length);
    if (this.admission.take(this.server.size, cost)) return cost;
    ctx.lastError = E_OVERLOAD;
    return -1;
  }

  /** An ACK for a non-2xx final reply of ours ends at its INVITE transaction. */
  private absorbAck(msg: SipMessage): boolean {
    const inv = this.server.get(serverKey(msg));
    if (!inv || inv.uas.lastCode < 300) return false;
    return (inv.uas as InviteServerTransaction).receiveAck();
  }

  // ------------------------------------------------------------------ script: t_newtran

  /**
   * t_newtran(): 1 for a new transaction; 0 for a retransmission (its last reply is re-sent
   * and the script ends) or an ACK that belonged to a transaction; -1 when one exists already.
   */
  newtran(ctx: MsgContext): number {
    const msg = ctx.msg;
    if (ctx.tmCell !== undefined) return this.alreadyInProcess();
    if (msg.method === 'ACK') return this.absorbAck(msg) ? 0 : 1;
    const key = serverKey(msg);
    const old = this.server.get(key);
    if (old) {
      old.uas.receiveRequest();
      return 0;
    }
    const cost = this.admit(ctx);
    if (cost < 0) return -1;
    const cell = this.createCell(ctx, key, cost);
    // a transaction the script never answers must not stay forever
    const t = this.opts.timers;
    cell.guard = this.core.timers.add((cell.isInvite ? t.frInv : t.fr) + t.wait, () => {
      if (!cell.finalSent && cell.pending === 0) cell.uas.terminate();
    });
    return 1;
  }

  // ------------------------------------------------------------------ script: t_reply

  /** t_reply(code, reason): a stateful reply to the transaction of this context */
  reply(ctx: MsgContext, code: number, reason: string): number {
    const cell = this.cellOf(ctx);
    if (!cell) {
      this.core.log.log(
        L_ERR,
        'ERROR: t_reply: cannot send a t_reply to a message for which no T-state has been established',
      );
      return -1;
    }
    if (cell.method === 'ACK') return -1;
    if (cell.finalSent || (code < 200 && cell.uas.isFinal)) {
      this.core.log.log(L_WARN, `WARNING: t_reply: transaction already replied, ${code} not sent`);
      return -1;
    }
    return this.localReply(cell, code, reason, ctx) ? 1 : -1;
  }

  private localReply(cell: Cell, code: number, reason: string, rctx?: MsgContext): boolean {
    if (code >= 200 && cell.finalSent) return false;
    const ctx = rctx ?? cell.ctx;
    if (!ctx) return false; // shed: the final reply went already
    if (cell.localTag === undefined) cell.localTag = generateTag();
    let data: Buffer;
    try {
      data = this.core.buildReply(ctx, code, reason, code === 100 ? undefined : { toTag: cell.localTag });
    } catch (e) {
      this.core.log.log(L_ERR, `ERROR: tm: cannot build a ${code} reply: ${(e as Error).message}`);
      return false;
    }
    cell.uas.sendReply(code, data);
    if (code >= 200) {
      this.stats.replied_localy++;
      this.completed(cell, code, reason, undefined);
    }
    return true;
  }

  // ------------------------------------------------------------------ script: t_relay

  /**
   * t_relay() and friends in a request route: the request becomes a transaction and goes to
   * every URI of the destination set (or to `dest`). 1: relayed; 0: a retransmission or an
   * ACK absorbed, or an error already answered statefully (the script ends); -1: error.
   */
  relay(ctx: MsgContext, dest?: RelayDest): number | Promise<number> {
    const msg = ctx.msg;
    if (ctx.routeKind === 'failure') return this.relayFromFailure(ctx, dest);
    if (msg.method === 'ACK') return this.relayAck(ctx, dest);
    if (msg.method === 'CANCEL') {
      const r = this.cancel(ctx);
      if (r !== undefined) return r;
      // SER: a CANCEL we have no INVITE for goes on statelessly
      return this.core.forwardRequest(ctx, dest);
    }
    if (ctx.tmCell !== undefined) return this.alreadyInProcess();
    const key = serverKey(msg);
    const old = this.server.get(key);
    if (old) {
      // a retransmission: the transaction answers it
      old.uas.receiveRequest();
      return 0;
    }
    const cost = this.admit(ctx);
    if (cost < 0) return -1;
    const cell = this.createCell(ctx, key, cost);
    // §16.2: a stateful proxy answers an INVITE with 100 at once, so the UAC stops retransmitting
    if (cell.isInvite) this.localReply(cell, 100, 'trying -- your call is important to us');
    const mf = maxForwards(msg);
    if (mf === 0) {
      // §16.3 step 3
      this.localReply(cell, 483, 'Too Many Hops');
      return 0;
    }
    const dests: Destination[] = [{ uri: ctx.ruri, dstUri: ctx.dstUri }];
    for (const b of ctx.branches) dests.push({ uri: b.uri, dstUri: b.dstUri });
    const forked = (n: number): number => {
      if (n > 0) return 1;
      // SER's kill_transaction: the error goes upstream statefully, the script ends
      const e = ctx.lastError ?? { code: 500, reason: 'Server Internal Error' };
      this.localReply(cell, e.code, e.reason);
      return 0;
    };
    const n = this.fork(cell, ctx, dests, dest, false);
    return typeof n === 'number' ? forked(n) : n.then(forked);
  }

  /** failure_route: only the branches appended since the failure are sent (seed 003) */
  private async relayFromFailure(ctx: MsgContext, dest?: RelayDest): Promise<number> {
    const cell = this.cellOf(ctx);
    if (!cell) return -1;
    if (cell.cancelled || cell.got6xx || cell.finalSent) {
      this.core.log.log(L_WARN, 'WARNING: t_relay: no new branches after a CANCEL, a 6xx or a final reply');
      return -1;
    }
    const dests: Destination[] = ctx.branches.map((b) => ({ uri: b.uri, dstUri: b.dstUri }));
    if (dests.length === 0 && dest) dests.push({ uri: ctx.ruri, dstUri: ctx.dstUri });
    if (dests.length === 0) {
      this.core.log.log(L_ERR, 'ERROR: t_relay: no branch appended in failure_route');
      return -1;
    }
    ctx.branches = [];
    // header edits failure_route made go into the new branches (SER applies its lumps)
    cell.outBase = undefined;
    const n = await this.fork(cell, ctx, dests, dest, false);
    return n > 0 ? 1 : -1;
  }

  /** t_replicate(host, port): a copy of the request to another server; its replies stop here */
  async replicate(ctx: MsgContext, dest: RelayDest): Promise<number> {
    const msg = ctx.msg;
    if (msg.method === 'ACK' || msg.method === 'CANCEL') return this.core.forwardRequest(ctx, dest);
    let cell = this.cellOf(ctx);
    if (!cell) {
      const key = serverKey(msg);
      const old = this.server.get(key);
      if (old) {
        old.uas.receiveRequest();
        return 0;
      }
      const cost = this.admit(ctx);
      if (cost < 0) return -1;
      cell = this.createCell(ctx, key, cost);
      cell.replicateOnly = true;
    }
    const n = await this.fork(cell, ctx, [{ uri: ctx.ruri }], dest, true);
    return n > 0 ? 1 : -1;
  }

  private relayAck(ctx: MsgContext, dest?: RelayDest): Promise<number> | number {
    const msg = ctx.msg;
    if (this.absorbAck(msg)) return 0;
    // an ACK for a 2xx: end to end, forwarded statelessly (§16.7 / §17)
    const inv = this.e2eAckCbs.length > 0 ? this.accepted.get(e2eKey(msg)) : undefined;
    const ev: TmE2eAck = {
      request: msg,
      flags: ctx.flags,
      src: ctx.src,
      ruri: ctx.ruri,
      ctx,
      inviteFlags: inv?.flags,
    };
    for (const fn of this.e2eAckCbs) {
      try {
        fn(ev);
      } catch (e) {
        this.core.log.err(`tm: e2e ACK callback failed: ${(e as Error)?.stack ?? e}`);
      }
    }
    return this.core.forwardRequest(ctx, dest);
  }

  /**
   * A CANCEL from upstream (§16.10): matched to its INVITE by branch, answered 200, relayed to
   * every pending branch. undefined when no INVITE transaction matches.
   */
  private cancel(ctx: MsgContext): number | undefined {
    const msg = ctx.msg;
    const inv = this.server.get(serverKey(msg, 'INVITE'));
    if (!inv) return undefined;
    const key = serverKey(msg);
    const own = this.server.get(key);
    if (own) {
      own.uas.receiveRequest();
      return 0;
    }
    if (ctx.tmCell !== undefined) return this.alreadyInProcess();
    const cc = this.createCell(ctx, key);
    this.localReply(cc, 200, 'canceling');
    this.cancelCell(inv);
    return 1;
  }

  private cancelCell(inv: Cell): void {
    inv.cancelled = true;
    if (inv.finalSent) return;
    this.cancelPending(inv);
    if (inv.branches.length === 0) this.localReply(inv, 487, 'Request Terminated');
  }

  /** CANCEL every branch of an INVITE still without a final reply (§16.7 step 10, §16.10) */
  private cancelPending(cell: Cell, except?: CellBranch): void {
    if (!cell.isInvite) return;
    for (const b of cell.branches) {
      if (b === except || b.code !== 0) continue;
      if (b.tx.provisional) this.sendCancel(b);
      else {
        b.cancelWanted = true;
        b.tx.stopRetransmissions();
      }
    }
  }

  private sendCancel(b: CellBranch): void {
    if (b.cancelSent) return;
    b.cancelSent = true;
    this.cancelTx(b.tx, b.target, b.branch);
  }

  /** a CANCEL for a pending INVITE client transaction, in its own non-INVITE transaction */
  private cancelTx(inv: ClientTransaction, target: SendTarget, branch: string): void {
    let data: Buffer;
    try {
      data = buildCancel(inv.sent);
    } catch {
      return;
    }
    const out = this.transportTo(target);
    const user: ClientTxUser = { onReply() {}, onTimeout() {}, onTransportError() {} };
    const tx = new NonInviteClientTransaction(data, out, this.core.timers, this.opts.timers, user);
    const k = clientKey(branch, 'CANCEL');
    this.clients.set(k, tx);
    tx.onTerminated = () => {
      if (this.clients.get(k) === tx) this.clients.delete(k);
    };
    tx.start();
  }

  // ------------------------------------------------------------------ forking

  private transportTo(target: SendTarget): TxTransport {
    return { reliable: target.proto !== 'udp', send: (d) => this.core.send(target, d) };
  }

  /** A destination's target: at once for a numeric host, else a promise of the DNS answer. */
  private resolve(
    d: Destination,
    dest: RelayDest | undefined,
  ): SendTarget | undefined | Promise<SendTarget | undefined> {
    let uri = d.dstUri ?? d.uri;
    if (dest) uri = destinationUri(dest);
    const pick = (ts: SendTarget[]) => (dest?.proto ? ts.find((t) => t.proto === dest.proto) : ts[0]);
    try {
      const now = this.core.resolveUriNow(uri);
      if (now) return pick(now);
      return this.core.resolveUri(uri).then(pick, () => undefined);
    } catch {
      return undefined;
    }
  }

  /** the request as it leaves us, before Request-URI and Via: the script's edits, Max-Forwards decremented (§16.6 step 3) */
  private outBase(cell: Cell, req: SipMessage): SipMessage {
    if (cell.outBase) return cell.outBase;
    // whether the script touched Max-Forwards shows on the request, not on a fresh parse
    const mf = req.headerFields().find((f) => f.key === 'max-forwards');
    const m = req.clone();
    if (!mf) m.addHeader('Max-Forwards', '70');
    else if (mf.original) {
      // the script did not touch it (no mf_process_maxfwd_header): decrement here
      const n = Number.parseInt(mf.value.trim(), 10);
      if (n > 0) m.replaceHeader('Max-Forwards', String(n - 1));
    }
    cell.outBase = m;
    return m;
  }

  /** Start one client transaction per destination; how many went out. */
  private fork(
    cell: Cell,
    ctx: MsgContext,
    dests: Destination[],
    dest: RelayDest | undefined,
    replicate: boolean,
  ): number | Promise<number> {
    const found = dests.map((d) => this.resolve(d, dest));
    // numeric hosts need no DNS: the branches go out before this returns
    if (!found.some((t) => t instanceof Promise))
      return this.startBranches(cell, ctx, dests, found as (SendTarget | undefined)[], replicate);
    return Promise.all(found).then((targets) => {
      // a CANCEL that came while the names resolved has answered the request already
      if (cell.finalSent && !replicate) return 0;
      return this.startBranches(cell, ctx, dests, targets, replicate);
    });
  }

  private startBranches(
    cell: Cell,
    ctx: MsgContext,
    dests: Destination[],
    targets: (SendTarget | undefined)[],
    replicate: boolean,
  ): number {
    // the context's request is the cell's (failure_route's context shares it)
    const req = ctx.msg;
    const base = this.outBase(cell, req);
    const method = cell.method;
    let started = 0;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i];
      const target = targets[i];
      if (!target) {
        ctx.lastError = E_BAD_ADDRESS;
        this.core.log.log(L_ERR, `ERROR: t_relay: cannot resolve the destination of ${d.dstUri ?? d.uri}`);
        continue;
      }
      // §16.6 step 8: the first part of our branch is the loop-invariant hash (§16.3 step 4)
      const lh = loopHash(req, d.uri, 16);
      if (this.opts.loopDetect && isLoop(req, lh, this.core)) {
        ctx.lastError = E_LOOP;
        this.core.log.log(L_WARN, 'WARNING: t_relay: loop detected');
        continue;
      }
      const index = cell.branches.length;
      // flat: the template builds a chain of concatenations, kept with the branch for seconds
      const branch = detach(`z9hG4bK${lh}.${this.instance}${cell.id.toString(36)}.${index}`);
      const via = this.core.viaFor(target, branch);
      if (!via) {
        ctx.lastError = E_SEND;
        continue;
      }
      let data: Buffer;
      try {
        if (d.uri !== base.requestUri) base.setRuri(d.uri);
        base.addHeader('Via', via, 'top');
        // rr's double Record-Route depends on the socket this branch leaves from
        const undoHooks = this.core.beforeForward(ctx, target, base);
        if (target.proto !== 'udp') base.ensureContentLength();
        // a new Buffer: base is edited (our Via at least)
        data = base.serialize();
        undoHooks();
        base.removeTopVia();
      } catch (e) {
        this.core.log.log(
          L_ERR,
          `ERROR: t_relay: cannot build the branch to ${d.uri}: ${(e as Error).message}`,
        );
        ctx.lastError = E_SEND;
        continue;
      }
      const out = this.transportTo(target);
      const br: CellBranch = {
        index,
        target,
        branch,
        // assigned below: the user needs the branch record
        tx: undefined as unknown as ClientTransaction,
        code: 0,
        reason: '',
        reply: undefined,
        cancelWanted: cell.cancelled,
        cancelSent: false,
        replicate,
      };
      const user: ClientTxUser = {
        onReply: (msg) => this.onBranchReply(cell, br, msg),
        onTimeout: () => this.onBranchTimeout(cell, br),
        onTransportError: () => this.onBranchLocalFinal(cell, br, 503),
      };
      const t = this.opts.timers;
      const tx =
        method === 'INVITE'
          ? new InviteClientTransaction(data, out, this.core.timers, t, user)
          : new NonInviteClientTransaction(data, out, this.core.timers, t, user);
      (br as { tx: ClientTransaction }).tx = tx;
      const k = clientKey(branch, method);
      this.clients.set(k, tx);
      tx.onTerminated = () => {
        if (this.clients.get(k) === tx) this.clients.delete(k);
      };
      cell.branches.push(br);
      tx.start();
      started++;
    }
    return started;
  }

  // ------------------------------------------------------------------ replies from downstream

  /** The core offers every reply here first; true when a client transaction took it. */
  receiveReply(msg: SipMessage, origin: Origin): boolean {
    const k = clientKeyOfReply(msg);
    if (k === undefined) return false;
    const tx = this.clients.get(k);
    if (!tx) return false;
    this.replyOrigin = origin;
    try {
      tx.receiveReply(msg);
    } finally {
      this.replyOrigin = undefined;
    }
    return true;
  }

  private onBranchReply(cell: Cell, br: CellBranch, msg: SipMessage): void {
    const origin = this.replyOrigin;
    if (cell.onReply && origin && !br.replicate) {
      // onreply_route[n] sees every reply, with `status` and textops working on the reply
      const rctx = this.core.createContext(msg, origin, 'onreply');
      rctx.flags = cell.flags;
      const r = this.core.runRoute(rctx, 'onreply', cell.onReply);
      const after = () => {
        cell.flags = rctx.flags;
        // `drop` in onreply_route keeps a provisional reply from going upstream
        if (rctx.drop && msg.status < 200) return;
        this.afterReplyRoute(cell, br, msg);
      };
      if (r instanceof Promise)
        r.then(after).catch((e) =>
          this.core.log.err(`tm: reply processing failed: ${(e as Error)?.stack ?? e}`),
        );
      else after();
      return;
    }
    this.afterReplyRoute(cell, br, msg);
  }

  private afterReplyRoute(cell: Cell, br: CellBranch, msg: SipMessage): void {
    const code = msg.status;
    if (code < 200) {
      if (br.cancelWanted) this.sendCancel(br);
      // §16.7 step 5: "Any provisional response other than a 100 (Trying) MUST be forwarded"
      if (code === 100 || br.replicate || cell.replicateOnly || cell.finalSent) return;
      this.relayUpstream(cell, msg);
      return;
    }
    if (code < 300) {
      if (br.code === 0) br.code = code;
      if (br.replicate || cell.replicateOnly) {
        this.checkDone(cell);
        return;
      }
      if (!cell.isInvite) {
        if (cell.finalSent) return;
        this.relayUpstream(cell, msg);
        return;
      }
      // every 2xx of an INVITE goes upstream at once (§16.7 step 5); when the transaction
      // already sent a non-2xx upstream, the 2xx still goes, statelessly by its Via
      if (cell.uas.state === 'proceeding' || cell.uas.state === 'accepted') this.relayUpstream(cell, msg);
      else this.core.forwardReply(msg).catch(() => {});
      if (!cell.relayed2xx) {
        cell.relayed2xx = true;
        // completed() keeps the key of an INVITE before the request is shed
        const req = cell.request;
        if (cell.acceptedKey === undefined && req) cell.acceptedKey = detach(e2eKey(req));
        if (cell.acceptedKey !== undefined) this.accepted.set(cell.acceptedKey, cell);
      }
      // §16.7 step 10: the other branches are cancelled
      this.cancelPending(cell, br);
      return;
    }
    if (br.code !== 0) return; // this branch already ended (Timer C, transport error)
    br.code = code;
    br.reason = msg.reason;
    br.reply = msg;
    if (code >= 600 && cell.isInvite && !cell.got6xx) {
      // §16.7 step 6: a 6xx ends the fork, the other branches are cancelled
      cell.got6xx = true;
      this.cancelPending(cell, br);
    }
    this.checkDone(cell);
  }

  private onBranchTimeout(cell: Cell, br: CellBranch): void {
    const o = this.opts;
    if (br.tx instanceof InviteClientTransaction && br.tx.provisional) {
      // fr_inv_timer (Timer C) after a provisional reply
      const silent =
        !o.noisyCtimer && cell.branches.length === 1 && !cell.onFailure && !cell.cancelled && !br.replicate;
      if (silent) {
        // SER: a phone ringing on the only branch may ring on; the transaction is let go
        this.core.log.log(L_DBG, 'DBG: tm: fr_inv_timer: transaction silently dropped');
        br.code = 408;
        cell.guard?.cancel();
        cell.guard = this.core.timers.add(o.timers.wait, () => cell.uas.terminate());
        return;
      }
      this.sendCancel(br);
    }
    this.onBranchLocalFinal(cell, br, 408);
  }

  private onBranchLocalFinal(cell: Cell, br: CellBranch, code: number): void {
    if (br.code !== 0) return;
    // a branch of a cancelled INVITE that never answered counts as terminated
    const c = cell.cancelled && cell.isInvite ? 487 : code;
    br.code = c;
    br.reason = LOCAL_REASON[c] ?? 'Request Timeout';
    br.reply = undefined;
    this.checkDone(cell);
  }

  /** every branch has its final reply: run failure_route or send the best reply upstream */
  private checkDone(cell: Cell): void {
    if (cell.finalSent || cell.inFailure || cell.pending > 0) return;
    if (cell.replicateOnly) {
      // nothing goes upstream: the request was answered by the script (e.g. save())
      if (!cell.guard?.active)
        cell.guard = this.core.timers.add(this.opts.timers.wait, () => cell.uas.terminate());
      return;
    }
    const codes = cell.branches.map((b) => (b.replicate ? 0 : b.code));
    const idx = pickBranch(codes);
    if (idx < 0) return;
    cell.pickedCode = codes[idx];
    if (cell.onFailure && !cell.cancelled && !cell.got6xx) {
      this.runFailure(cell).catch((e) =>
        this.core.log.err(`tm: failure processing failed: ${(e as Error)?.stack ?? e}`),
      );
      return;
    }
    this.sendBest(cell);
  }

  private async runFailure(cell: Cell): Promise<void> {
    const name = cell.onFailure!;
    // before the final reply the cell has its request (shed() comes after it)
    const rctx = cell.ctx;
    if (!rctx) return;
    // armed once: failure_route must call t_on_failure again for another round (serial forking)
    cell.onFailure = undefined;
    cell.inFailure = true;
    const fctx = this.core.createContext(rctx.msg, cell.origin, 'failure');
    fctx.flags = cell.flags;
    fctx.ruri = cell.ruri;
    const avps = rctx.avps;
    for (const [k, v] of avps) fctx.avps.set(k, [...v]);
    fctx.tmCell = cell;
    try {
      await this.core.runRoute(fctx, 'failure', name);
    } catch (e) {
      this.core.log.err(`tm: failure_route[${name}] failed: ${(e as Error)?.stack ?? e}`);
    }
    cell.flags = fctx.flags;
    cell.inFailure = false;
    if (cell.finalSent) return;
    if (cell.pending > 0) return; // new branches went out
    // nothing new: the best reply so far goes upstream (or failure_route set another one up)
    this.checkDone(cell);
  }

  private sendBest(cell: Cell): void {
    const codes = cell.branches.map((b) => (b.replicate ? 0 : b.code));
    const idx = pickBranch(codes);
    if (idx < 0) return;
    const best = cell.branches[idx];
    const code = upstreamCode(best.code);
    if (!best.reply || code !== best.code) {
      this.localReply(cell, code, code === best.code ? best.reason : (LOCAL_REASON[code] ?? best.reason));
      return;
    }
    const reply = best.reply;
    if (code === 401 || code === 407) {
      // §16.7 step 7: "the proxy MUST collect any WWW-Authenticate and Proxy-Authenticate
      // header field values from all other 401 (Unauthorized) and 407 ... and add them to this response"
      for (const b of cell.branches) {
        if (b === best || !b.reply || (b.code !== 401 && b.code !== 407)) continue;
        for (const h of ['WWW-Authenticate', 'Proxy-Authenticate'])
          for (const v of b.reply.headers(h)) reply.addHeader(h, v);
      }
    }
    this.relayUpstream(cell, reply);
  }

  /** Send a downstream reply upstream: our Via off (§16.7 step 9), through the server transaction. */
  private relayUpstream(cell: Cell, msg: SipMessage): void {
    try {
      msg.removeTopVia();
      if (cell.origin.src.proto !== 'udp') msg.ensureContentLength();
    } catch {
      return;
    }
    const data = msg.serialize();
    cell.uas.sendReply(msg.status, data);
    if (msg.status >= 200) this.completed(cell, msg.status, msg.reason, msg);
  }

  private completed(cell: Cell, code: number, reason: string, reply: SipMessage | undefined): void {
    if (cell.finalSent) return;
    cell.finalSent = true;
    cell.finalCode = code;
    cell.completedAt = this.core.clock.now();
    // no branch can start after a final reply: the downstream copy need not live until wt_timer
    cell.outBase = undefined;
    cell.guard?.cancel();
    this.waiting++;
    this.stats.completed[Math.floor(code / 100)]++;
    // a final reply upstream ends every other branch (§16.7 step 10)
    if (code >= 200) this.cancelPending(cell);
    const ctx = cell.ctx;
    if (!ctx) return;
    if (this.completedCbs.length > 0) {
      const ev: TmCompletion = {
        request: ctx.msg,
        flags: cell.flags,
        src: ctx.src,
        ruri: cell.ruri,
        code,
        reason,
        reply,
        ctx,
        createdAt: cell.createdAt,
        completedAt: cell.completedAt,
      };
      for (const fn of this.completedCbs) {
        try {
          fn(ev);
        } catch (e) {
          this.core.log.err(`tm: completion callback failed: ${(e as Error)?.stack ?? e}`);
        }
      }
    }
    // a 2xx that comes later on another branch still goes in the ACK index (afterReplyRoute)
    if (cell.isInvite && cell.acceptedKey === undefined) cell.acceptedKey = detach(e2eKey(ctx.msg));
    cell.shed();
  }

  // ------------------------------------------------------------------ local UAC (t_uac_dlg)

  /** Send a request as a local client transaction; resolves with its final reply. */
  async uac(r: UacRequest): Promise<UacResult> {
    let target: SendTarget | undefined;
    try {
      target = (await this.core.resolveUri(r.outbound ?? r.ruri))[0];
    } catch {
      target = undefined;
    }
    if (!target) return { code: 478, reason: 'Unresolvable destination' };
    const branch = `z9hG4bK${this.instance}u${(++this.seq).toString(36)}`;
    const via = this.core.viaFor(target, branch);
    if (!via) return { code: 500, reason: 'No socket toward the destination' };
    const method = r.method.toUpperCase();
    const lines = [`${method} ${r.ruri} SIP/2.0`, `Via: ${via}`];
    const has = (...names: string[]) =>
      r.headers.some((h) => names.includes(h.slice(0, h.indexOf(':')).trim().toLowerCase()));
    for (const h of r.headers) {
      const name = h.slice(0, h.indexOf(':')).trim().toLowerCase();
      if (name === 'content-length' || name === 'l') continue;
      if ((name === 'from' || name === 'f') && !/;\s*tag\s*=/i.test(h))
        lines.push(`${h};tag=${generateTag()}`);
      else lines.push(h);
    }
    if (!has('call-id', 'i')) lines.push(`Call-ID: ${randomBytes(8).toString('hex')}@${target.ip}`);
    if (!has('cseq')) lines.push(`CSeq: ${1 + (this.seq % 1000)} ${method}`);
    if (!has('max-forwards')) lines.push('Max-Forwards: 70');
    const body = Buffer.from(r.body ?? '', 'utf8');
    lines.push(`Content-Length: ${body.length}`);
    const data = Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
    this.stats.total++;
    this.stats.local++;
    const out = this.transportTo(target);
    if (method === 'ACK') {
      // an ACK has no transaction: sent once
      const ok = await out.send(data);
      return ok ? { code: 200, reason: 'ACK sent' } : { code: 503, reason: 'Service Unavailable' };
    }
    this.localActive++;
    return new Promise<UacResult>((resolve) => {
      let done = false;
      const finish = (res: UacResult) => {
        if (done) return;
        done = true;
        this.localActive--;
        this.stats.completed[Math.floor(res.code / 100)]++;
        resolve(res);
      };
      const user: ClientTxUser = {
        onReply: (msg) => {
          if (msg.status >= 200) finish({ code: msg.status, reason: msg.reason, reply: msg });
        },
        onTimeout: () => {
          // Timer C of a ringing local INVITE: cancel it like a proxy branch
          if (tx.provisional) this.cancelTx(tx, target!, branch);
          finish({ code: 408, reason: 'Request Timeout' });
        },
        onTransportError: () => finish({ code: 503, reason: 'Service Unavailable' }),
      };
      const t = this.opts.timers;
      const tx =
        method === 'INVITE'
          ? new InviteClientTransaction(data, out, this.core.timers, t, user)
          : new NonInviteClientTransaction(data, out, this.core.timers, t, user);
      const k = clientKey(branch, method);
      this.clients.set(k, tx);
      tx.onTerminated = () => {
        if (this.clients.get(k) === tx) this.clients.delete(k);
      };
      tx.start();
    });
  }
}

/** Max-Forwards as received: undefined when absent or unreadable */
function maxForwards(msg: SipMessage): number | undefined {
  const f = msg.headerFields().find((x) => x.key === 'max-forwards');
  if (!f?.original) return undefined;
  const n = Number.parseInt(f.value.trim(), 10);
  return Number.isNaN(n) ? undefined : n;
}

function isLoop(msg: SipMessage, lh: string, core: CoreApi): boolean {
  const prefix = `z9hG4bK${lh}.`;
  for (const v of msg.vias) if (v.branch?.startsWith(prefix) && core.isOurVia(v)) return true;
  return false;
}

/** A request the server itself sends (FIFO t_uac_dlg). */
export interface UacRequest {
  method: string;
  ruri: string;
  /** next hop instead of the Request-URI's (no Route header is added, as in SER) */
  outbound?: string;
  /** complete header lines; From and To are required, Call-ID, CSeq, From-tag, Max-Forwards are added when missing */
  headers: string[];
  body?: string;
}

export interface UacResult {
  code: number;
  reason: string;
  reply?: SipMessage;
}

/** the top Via's address fields, copied: a reply's way back (§18.2.2) without the request */
function replyRoute(msg: SipMessage): ReplyRoute {
  let v: Via | undefined;
  try {
    v = msg.topVia;
  } catch {
    v = undefined; // unparsable: answered to the source
  }
  if (!v) return { topVia: undefined };
  return {
    topVia: {
      host: detach(v.host),
      port: v.port,
      rport: v.rport,
      rportValue: v.rportValue,
      transport: detach(v.transport),
    },
  };
}
