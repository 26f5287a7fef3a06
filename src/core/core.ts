import { clusterRole } from './cluster-role.js';
import { type DnsProto, SipResolver, type SipUriTarget } from '../net/dns.js';
import { ipFamily, normalizeIp } from '../net/ip.js';
import { type RecvInfo, type SendTarget, Transports } from '../net/transports.js';
import { nativeUdpUnavailable } from '../net/udp-native.js';
import type { CompiledScript } from '../script/compiler.js';
import { SipParseError } from '../sip/errors.js';
import type { Via } from '../sip/headers.js';
import { parseMessage, type SipMessage } from '../sip/message.js';
import { buildParseErrorReply, buildReply, generateTag } from '../sip/reply.js';
import { parseUri } from '../sip/uri.js';
import type { CoreApi, ForwardHook, Origin, ReplyExtras, ReplyRoute } from './api.js';
import type { CoreConfig } from './config.js';
import { type MsgContext, type Proto, replyHeaders } from './context.js';
import { HeapRelease } from './heap-release.js';
import { L_DBG, L_ERR, L_WARN, Logger, type LogSink, StderrSink } from './log.js';
import type { RouteKind } from './module.js';
import { MessageContext } from './msg-context.js';
import { Myself } from './myself.js';
import { type Clock, systemClock, TimerWheel } from './timer.js';
import { SERVER_HDR } from './version.js';
import { destinationUri, loopHash, replaceTopVia, viaDefaultPort, viaWithReceived } from './via.js';

/** SER's err2reason_phrase texts for sl_reply_error() */
export const E_BAD_ADDRESS = { code: 478, reason: 'Unresolvable destination (478/SL)' };
export const E_SEND = { code: 477, reason: 'Unfortunately error on sending to next hop occurred (477/SL)' };
export const E_LOOP = { code: 482, reason: 'Loop Detected' };

export interface CoreStats {
  rcv_requests: number;
  rcv_replies: number;
  fwd_requests: number;
  fwd_replies: number;
  drop_requests: number;
  drop_replies: number;
  err_requests: number;
  err_replies: number;
  bad_msgs: number;
  [k: string]: number;
}

export interface CoreOptions {
  clock?: Clock;
  logSink?: LogSink;
  resolver?: SipResolver;
}

/**
 * Stateless branch (RFC 3261 §16.11): the same for every retransmission of a request, and
 * the same again if the request comes back to us unchanged (a loop, §16.3 step 4); a
 * spiral (a new Request-URI) gets a new branch. See loopHash.
 */
function statelessBranch(msg: SipMessage, ruri: string): string {
  return `z9hG4bKsl${loopHash(msg, ruri, 20)}`;
}

const noop = () => {};

/**
 * The timer wheel's tick. Under load every tick holds some timer, so the tick is also how
 * often the event loop wakes for timers alone: at 10 ms, 100 wakeups a second cost 7-12 % of
 * the CPU of a call at 100-200 cps (bench A/B, three runs each). 50 ms puts T1's 500 ms
 * retransmission at 500-550 ms; Kamailio's tm ticks every 62.5 ms, SER's every 100 ms.
 */
export const TIMER_RESOLUTION_MS = 50;

/** what RFC 3263 resolution needs of a SIP URI; undefined for other schemes */
function uriTarget(uri: string): SipUriTarget | undefined {
  const u = parseUri(uri);
  if (u.kind !== 'sip' && u.kind !== 'sips') return undefined;
  let transport: string | undefined;
  let maddr: string | undefined;
  for (const p of u.params) {
    const n = p.name.toLowerCase();
    if (n === 'transport') transport ??= p.value;
    else if (n === 'maddr') maddr ??= p.value;
  }
  return { host: u.host, port: u.port, transport, maddr, secure: u.kind === 'sips' };
}

export class Core implements CoreApi {
  readonly log: Logger;
  readonly clock: Clock;
  readonly timers: TimerWheel;
  readonly myself = new Myself();
  readonly resolver: SipResolver;
  transports: Transports | undefined;
  script: CompiledScript | undefined;
  readonly stats: CoreStats = {
    rcv_requests: 0,
    rcv_replies: 0,
    fwd_requests: 0,
    fwd_replies: 0,
    drop_requests: 0,
    drop_replies: 0,
    err_requests: 0,
    err_replies: 0,
    bad_msgs: 0,
  };
  readonly statGroups = new Map<string, () => Record<string, number>>();
  private readonly filters: ((ctx: MsgContext) => boolean)[] = [];
  private replyHandler: ((msg: SipMessage, origin: Origin) => boolean) | undefined;
  readonly startedAt = new Date();

  constructor(
    readonly config: CoreConfig,
    opts: CoreOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.timers = new TimerWheel(this.clock, TIMER_RESOLUTION_MS);
    this.log = new Logger(config.debug, opts.logSink ?? new StderrSink());
    this.timers.onError = (e) => this.log.err(`timer callback failed: ${(e as Error)?.stack ?? e}`);
    this.resolver =
      opts.resolver ?? new SipResolver({ transports: config.disableTcp ? ['udp'] : ['udp', 'tcp'] });
    for (const a of config.aliases) this.myself.add(a.host, a.port);
    this.addStats('core', () => ({ ...this.stats }));
  }

  // ------------------------------------------------------------------ lifecycle

  async start(): Promise<void> {
    const c = this.config;
    this.transports = new Transports({
      listen: c.listen.map((l) => ({
        ...l,
        advertise: c.advertisedAddress,
        advertisePort: c.advertisedPort,
      })),
      onMessage: (data, info) => this.receive(data, info),
      onOversize: (partial, info) => this.onOversize(partial, info),
      onFramingError: (reason, _partial, info) =>
        this.log.once(
          L_WARN,
          `framing:${reason}`,
          `WARNING: tcp: ${reason} from ${info.src.ip}:${info.src.port}`,
        ),
      onError: (err, where) =>
        this.log.once(L_ERR, `net:${where}`, `ERROR: ${where}: ${(err as Error)?.message ?? err}`),
      maxBuffer: c.maxBuffer,
      shared: clusterRole() !== undefined,
      tcp: {
        idleTimeoutMs: c.tcpConnectionLifetime * 1000,
        maxConnections: c.tcpMaxConnections,
        connectTimeoutMs: c.tcpConnectTimeout * 1000,
      },
    });
    await this.transports.start();
    const impl = this.transports.udpImpl;
    if (impl === 'native') this.log.info('udp: native receive and send (native/ser_udp.node, recvmmsg)');
    else if (impl === 'dgram')
      this.log.info(
        `udp: node:dgram (${clusterRole() !== undefined ? 'sockets shared between workers' : `native addon: ${nativeUdpUnavailable() ?? 'not used'}`})`,
      );
    for (const s of this.transports.listening) {
      this.myself.addAddress(s.ip, s.port);
      if (s.address !== s.ip) this.myself.addAddress(s.address, s.advertisedPort);
    }
    this.addStats('net', (): Record<string, number> => {
      const st = this.transports?.getStats();
      if (!st) return {};
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(st.udp)) out[`udp_${k}`] = v;
      for (const [k, v] of Object.entries(st.tcp)) out[`tcp_${k}`] = v;
      return out;
    });
    this.timers.start();
    if (c.releaseIdleMemory) {
      this.heapRelease = new HeapRelease({ count: () => this.stats.rcv_requests + this.stats.rcv_replies });
      this.heapRelease.start();
    }
  }

  private heapRelease: HeapRelease | undefined;

  async stop(): Promise<void> {
    this.timers.stop();
    this.heapRelease?.stop();
    await this.transports?.close();
    this.resolver.close();
  }

  // ------------------------------------------------------------------ CoreApi

  isMyself(host: string, port: number): boolean {
    return this.myself.matches(host, port);
  }

  addRequestFilter(fn: (ctx: MsgContext) => boolean): void {
    this.filters.push(fn);
  }

  private readonly forwardHooks: ForwardHook[] = [];

  addForwardHook(fn: ForwardHook): void {
    this.forwardHooks.push(fn);
  }

  beforeForward(ctx: MsgContext, target: SendTarget, msg: SipMessage = ctx.msg): () => void {
    const hooks = this.forwardHooks;
    if (hooks.length === 0) return noop;
    const undo: (() => void)[] = [];
    for (const h of hooks) {
      const u = h(ctx, target, msg);
      if (u) undo.push(u);
    }
    return () => {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]();
    };
  }

  setReplyHandler(fn: (msg: SipMessage, origin: Origin) => boolean): void {
    this.replyHandler = fn;
  }

  addStats(group: string, read: () => Record<string, number>): void {
    this.statGroups.set(group, read);
  }

  private readonly apis = new Map<string, object>();

  provideApi(name: string, api: object): void {
    this.apis.set(name, api);
  }

  getApi<T extends object>(name: string): T | undefined {
    return this.apis.get(name) as T | undefined;
  }

  buildReply(ctx: MsgContext, code: number, reason: string, extras?: ReplyExtras): Buffer {
    const c = this.config;
    const msg = ctx.msg;
    // headers queued by textops' append_to_reply go into every local reply
    const queued = replyHeaders(ctx);
    const headers = queued.length > 0 ? [...(extras?.headers ?? []), ...queued] : extras?.headers;
    return buildReply(msg, code, reason, {
      // a 100 (Trying) needs no To-tag (RFC 3261 §8.2.6.2): tm's 100 goes without one
      toTag: extras?.toTag ?? (code === 100 ? undefined : generateTag()),
      headers,
      body: extras?.body,
      contentType: extras?.contentType,
      server: c.serverSignature ? (c.serverHeader ?? SERVER_HDR) : undefined,
      warning: c.sipWarning
        ? {
            ip: ctx.dst.ip,
            port: ctx.dst.port,
            pid: process.pid,
            srcIp: ctx.src.ip,
            srcPort: ctx.src.port,
            inUri: msg.ruri,
            outUri: ctx.ruri,
            viaCount: msg.vias.length,
          }
        : undefined,
    });
  }

  /**
   * RFC 3261 §18.2.2 for a request we received: over TCP back on its connection;
   * over UDP to the source address, at the rport when the client asked for it, else at
   * the Via port (SER without reply_to_via); with reply_to_via, to the Via sent-by.
   */
  sendToOrigin(msg: ReplyRoute, origin: Origin, data: Buffer): boolean {
    const t = this.transports;
    if (!t) return false;
    const proto = origin.src.proto;
    if (proto !== 'udp') {
      const r = t.send({ proto, ip: origin.src.ip, port: origin.src.port, connId: origin.connId }, data);
      if (r instanceof Promise) r.catch(() => {});
      return r !== false;
    }
    let ip = origin.src.ip;
    let port = origin.src.port;
    try {
      const v = msg.topVia;
      if (v) {
        if (this.config.replyToVia && ipFamily(v.host) !== 0) ip = v.host;
        if (v.rportValue !== undefined) port = v.rportValue;
        else if (!v.rport) port = v.port ?? viaDefaultPort(v.transport);
      }
    } catch {
      /* an unparsable Via: answer the source */
    }
    const r = t.send({ proto: 'udp', ip, port }, data);
    if (r instanceof Promise) r.catch(() => {});
    return r !== false;
  }

  send(target: SendTarget, data: Buffer): boolean | Promise<boolean> {
    if (!this.transports) return false;
    return this.transports.send(target, data);
  }

  async resolveUri(uri: string): Promise<SendTarget[]> {
    const q = uriTarget(uri);
    if (!q) return [];
    const targets = await this.resolver.resolve(q);
    return targets.map((t) => ({ proto: t.proto as Proto, ip: t.ip, port: t.port }));
  }

  /** `resolveUri` when no DNS lookup is needed (a numeric host); undefined otherwise. Throws on a bad URI. */
  resolveUriNow(uri: string): SendTarget[] | undefined {
    const q = uriTarget(uri);
    if (!q) return [];
    const targets = this.resolver.resolveNow(q);
    return targets?.map((t) => ({ proto: t.proto as Proto, ip: t.ip, port: t.port }));
  }

  viaFor(target: SendTarget, branch: string): string | undefined {
    const head = this.transports?.viaHead(target);
    return head === undefined ? undefined : head + branch;
  }

  // ------------------------------------------------------------------ receive pipeline

  /**
   * Multi-process model only (cluster-worker.ts): given a parsed UDP message, passes it to
   * the worker owning it and returns true, or returns false to process it here.
   */
  steer: ((msg: SipMessage, data: Buffer, info: RecvInfo) => boolean) | undefined;

  /** `steered`: the message was passed here by the worker that received it (no second steering) */
  receive(data: Buffer, info: RecvInfo, steered = false): void {
    let msg: SipMessage;
    try {
      msg = parseMessage(data, { datagram: info.src.proto === 'udp' });
    } catch (e) {
      this.onParseError(e, info);
      return;
    }
    if (this.steer && !steered && info.src.proto === 'udp' && this.steer(msg, data, info)) return;
    this.guarded(msg, info, () => (msg.isRequest ? this.onRequest(msg, info) : this.onReply(msg, info)));
  }

  /** Run a step of the pipeline; nothing a message causes may escape. */
  private guarded(msg: SipMessage, info: RecvInfo, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      // a header that fails its lazy parse is a bad message like any other
      if (e instanceof SipParseError) this.onParseError(e, info, msg);
      else this.log.err(`processing a message failed: ${(e as Error)?.stack ?? e}`);
    }
  }

  private onParseError(e: unknown, info: RecvInfo, msg?: SipMessage): void {
    this.stats.bad_msgs++;
    if (!(e instanceof SipParseError)) {
      this.log.err(`parser failure: ${(e as Error)?.stack ?? e}`);
      return;
    }
    this.log.once(
      L_WARN,
      `parse:${e.reason}`,
      `WARNING: bad message from ${info.src.ip}:${info.src.port}: ${e.reason} (logged once per reason)`,
    );
    // a reply is never answered; a request is, when enough of it was read (never an ACK)
    const isRequest = msg ? msg.isRequest : e.isRequest;
    if (!isRequest) return;
    let buf: Buffer | undefined;
    if (msg && msg.method !== 'ACK') {
      try {
        buf = buildReply(msg, 400, `Bad Request (${e.reason})`, {
          toTag: generateTag(),
          server: this.config.serverSignature ? SERVER_HDR : undefined,
        });
      } catch {
        buf = undefined;
      }
    } else if (!msg) {
      buf = buildParseErrorReply(e, { server: this.config.serverSignature ? SERVER_HDR : undefined });
    }
    if (!buf) return;
    this.sendToOrigin(msg ?? { topVia: undefined }, info, buf);
  }

  private onOversize(partial: Buffer, info: RecvInfo): void {
    this.stats.bad_msgs++;
    this.log.once(L_WARN, 'oversize', `WARNING: tcp: message too large from ${info.src.ip}:${info.src.port}`);
    // answer 513 when the headers we got are enough for a reply
    const end = partial.indexOf('\r\n\r\n');
    if (end < 0) return;
    try {
      const head = Buffer.concat([partial.subarray(0, end), Buffer.from('\r\nContent-Length: 0\r\n\r\n')]);
      const text = head.toString('latin1').replace(/\r\n(content-length|l)\s*:[^\r\n]*/gi, '');
      const m = parseMessage(Buffer.from(`${text}`, 'latin1'), { datagram: true });
      if (!m.isRequest || m.method === 'ACK') return;
      const buf = buildReply(m, 513, 'Message too large', { toTag: generateTag() });
      this.sendToOrigin(m, info, buf);
    } catch {
      /* not enough to answer */
    }
  }

  private onRequest(msg: SipMessage, info: RecvInfo): void {
    this.stats.rcv_requests++;
    const ctx = new MessageContext(msg, info.src, info.dst, 'request', info.connId);
    // every Via of a request is parsed here: a malformed one gets its 400 before the script
    const v = msg.vias[0];
    if (v && (this.config.dns || this.config.revDns) && ipFamily(v.host) === 0) {
      // dns=/rev_dns=: a Via host name that resolves to the source needs no received=
      void this.viaNameIsSource(v.host, info.src.ip)
        .catch(() => false)
        .then((same) => this.guarded(ctx.msg, info, () => this.afterVia(ctx, same)));
      return;
    }
    this.afterVia(ctx, false);
  }

  private afterVia(ctx: MessageContext, viaIsSource: boolean): void {
    const v = ctx.msg.topVia;
    if (v) {
      const fixed = viaIsSource
        ? v.rport && v.rportValue === undefined
          ? viaWithReceived(v, ctx.src.ip, ctx.src.port, false)
          : undefined
        : viaWithReceived(v, ctx.src.ip, ctx.src.port, false);
      if (fixed !== undefined) replaceTopVia(ctx.msg, fixed);
    }
    for (const f of this.filters) if (!f(ctx)) return;
    this.runScript(ctx, 'request', '0');
  }

  /** SER's dns / rev_dns check: does the Via host name stand for the source address? */
  private async viaNameIsSource(host: string, srcIp: string): Promise<boolean> {
    const src = normalizeIp(srcIp);
    if (this.config.dns) {
      const t = await this.resolver.addresses(host, 5060, 'udp');
      if (t.some((x) => normalizeIp(x.ip) === src)) return true;
    }
    if (this.config.revDns) {
      const names = await this.resolver.reverse(srcIp);
      if (names.some((n) => n.toLowerCase().replace(/\.$/, '') === host.toLowerCase())) return true;
    }
    return false;
  }

  runRoute(ctx: MsgContext, kind: RouteKind, name: string): number | Promise<number> {
    return this.runScript(ctx, kind, name);
  }

  hasRoute(kind: RouteKind, name: string): boolean {
    return this.script?.has(kind, name) ?? false;
  }

  createContext(msg: SipMessage, origin: Origin, kind: RouteKind): MsgContext {
    return new MessageContext(msg, origin.src, origin.dst, kind, origin.connId);
  }

  /** Run a route for a context; errors are logged and never escape. */
  runScript(
    ctx: MsgContext,
    kind: 'request' | 'failure' | 'onreply' | 'branch',
    name: string,
  ): number | Promise<number> {
    const script = this.script;
    if (!script) return 0;
    try {
      const r = script.run(kind, name, ctx);
      if (r instanceof Promise) {
        return r.catch((e) => {
          this.stats.err_requests++;
          this.log.err(`script ${kind}[${name}] failed: ${(e as Error)?.stack ?? e}`);
          return 0;
        });
      }
      return r;
    } catch (e) {
      if (e instanceof SipParseError) throw e;
      this.stats.err_requests++;
      this.log.err(`script ${kind}[${name}] failed: ${(e as Error)?.stack ?? e}`);
      return 0;
    }
  }

  /** force_rport(): add received/rport to the top Via now, so replies go to the source port. */
  forceRport(ctx: MsgContext): void {
    const v = ctx.msg.topVia;
    if (!v) return;
    const fixed = viaWithReceived(v, ctx.src.ip, ctx.src.port, true);
    if (fixed !== undefined) replaceTopVia(ctx.msg, fixed);
  }

  private onReply(msg: SipMessage, info: RecvInfo): void {
    this.stats.rcv_replies++;
    const origin: Origin = { src: info.src, dst: info.dst, connId: info.connId };
    if (this.replyHandler?.(msg, origin)) return;
    void this.forwardReply(msg);
  }

  /** Is this Via one we put in (host and port are ours)? */
  isOurVia(v: Via): boolean {
    return this.isMyself(v.host, v.port ?? viaDefaultPort(v.transport));
  }

  /** Stateless reply forwarding: strip our Via and send to the next one (RFC 3261 §16.7, §18.2.2). */
  async forwardReply(msg: SipMessage): Promise<boolean> {
    const vias = msg.vias;
    const top = vias[0];
    if (!top || !this.isOurVia(top)) {
      this.stats.drop_replies++;
      this.log.once(L_DBG, 'reply-not-ours', 'DBG: reply whose top Via is not ours dropped');
      return false;
    }
    const next = vias[1];
    if (!next) {
      this.stats.drop_replies++;
      return false;
    }
    msg.removeTopVia();
    const proto = next.transport.toLowerCase() as DnsProto;
    let ip = next.received ?? next.host;
    const port = next.rportValue ?? next.port ?? viaDefaultPort(next.transport);
    if (ipFamily(ip) === 0) {
      try {
        const t = await this.resolver.resolve({ host: ip, port, transport: proto });
        if (t.length === 0) throw new Error('no address');
        ip = t[0].ip;
      } catch {
        this.stats.drop_replies++;
        this.log.once(L_WARN, 'reply-dns', `WARNING: cannot resolve the Via host ${next.host} of a reply`);
        return false;
      }
    }
    if (proto !== 'udp') msg.ensureContentLength();
    const ok = await this.send({ proto: proto as Proto, ip: normalizeIp(ip), port }, msg.serialize());
    if (ok) this.stats.fwd_replies++;
    else this.stats.drop_replies++;
    return ok;
  }

  // ------------------------------------------------------------------ stateless request forwarding

  /**
   * SER's forward(): send the request statelessly (RFC 3261 §16.11) to `dest`, or to the
   * next hop of the destination URI / R-URI. Only the first URI of the destination set is used.
   */
  forwardRequest(
    ctx: MsgContext,
    dest?: { host: string; port?: number; proto?: Proto },
    asIs = false,
  ): number | Promise<number> {
    let uri = ctx.dstUri ?? ctx.ruri;
    if (dest) {
      uri = destinationUri(dest);
    }
    const pick = (ts: SendTarget[]) => (dest?.proto ? ts.filter((t) => t.proto === dest.proto) : ts);
    let now: SendTarget[] | undefined;
    try {
      now = this.resolveUriNow(uri);
    } catch {
      now = [];
    }
    // a numeric next hop costs no promise; a name waits for DNS
    if (now) return this.forwardTo(ctx, pick(now), asIs);
    return this.resolveUri(uri).then(
      (ts) => this.forwardTo(ctx, pick(ts), asIs),
      () => this.forwardTo(ctx, [], asIs),
    );
  }

  private forwardTo(ctx: MsgContext, targets: SendTarget[], asIs: boolean): number | Promise<number> {
    const msg = ctx.msg;
    const target = targets[0];
    if (!target) {
      ctx.lastError = E_BAD_ADDRESS;
      this.log.log(L_ERR, `ERROR: forward: cannot resolve the destination of ${ctx.dstUri ?? ctx.ruri}`);
      return -1;
    }
    let data: Buffer;
    if (asIs) {
      data = msg.serialize();
    } else {
      const branch = statelessBranch(msg, ctx.ruri);
      const via = this.viaFor(target, branch);
      if (!via) {
        ctx.lastError = E_SEND;
        return -1;
      }
      // a Via of ours with this very branch means the request came back to us: a loop
      for (const v of msg.vias) {
        if (v.branch === branch && this.isOurVia(v)) {
          ctx.lastError = E_LOOP;
          this.log.log(L_WARN, 'WARNING: forward: loop detected');
          return -1;
        }
      }
      const ruriChanged = ctx.ruri !== msg.ruri;
      if (ruriChanged) msg.setRuri(ctx.ruri);
      msg.addHeader('Via', via, 'top');
      const undoHooks = this.beforeForward(ctx, target);
      if (target.proto !== 'udp') msg.ensureContentLength();
      data = msg.serialize();
      // undo: the script may go on with the message (e.g. forward twice)
      undoHooks();
      msg.removeTopVia();
      if (ruriChanged) msg.setRuri(msg.ruri);
    }
    const sent = (ok: boolean): number => {
      if (!ok) {
        ctx.lastError = E_SEND;
        return -1;
      }
      this.stats.fwd_requests++;
      return 1;
    };
    const ok = this.send(target, data);
    return typeof ok === 'boolean' ? sent(ok) : ok.then(sent);
  }
}
