/**
 * What modules see of the core: the services a SER module used from the core
 * (logging, replies, forwarding, sending, timers, myself, hooks into the pipeline).
 */
import type { SendTarget } from '../net/transports.js';
import type { Via } from '../sip/headers.js';
import type { SipMessage } from '../sip/message.js';
import type { CoreConfig } from './config.js';
import type { Endpoint, MsgContext, Proto } from './context.js';
import type { Logger } from './log.js';
import type { RouteKind } from './module.js';
import type { Myself } from './myself.js';
import type { Clock, TimerWheel } from './timer.js';

export interface ReplyExtras {
  /** complete header lines without CRLF, e.g. "Contact: <sip:a@b>" */
  headers?: string[];
  body?: Buffer | string;
  contentType?: string;
  /** To-tag to use when the request has none */
  toTag?: string;
}

/** see CoreApi.addForwardHook: `msg` is the copy being sent (ctx.msg for stateless forwarding) */
export type ForwardHook = (ctx: MsgContext, target: SendTarget, msg: SipMessage) => (() => void) | undefined;

/**
 * What the way back of a reply over UDP depends on (§18.2.2): the top Via's sent-by and
 * rport. A SipMessage is one; a transaction keeps a copy of these fields, not its request.
 */
export interface ReplyRoute {
  readonly topVia: Pick<Via, 'host' | 'port' | 'rport' | 'rportValue' | 'transport'> | undefined;
}

/** Where a received message came from, for answering it. */
export interface Origin {
  readonly src: Endpoint;
  readonly dst: Endpoint;
  readonly connId?: number;
}

export interface CoreApi {
  readonly log: Logger;
  readonly config: CoreConfig;
  readonly clock: Clock;
  readonly timers: TimerWheel;
  readonly myself: Myself;
  /** SER's `myself` for a host and effective port */
  isMyself(host: string, port: number): boolean;
  /** build a local reply to the context's request (Via, From, To+tag, Call-ID, CSeq, Server, Warning) */
  buildReply(ctx: MsgContext, code: number, reason: string, extras?: ReplyExtras): Buffer;
  /** send bytes as a reply to a received request (RFC 3261 §18.2.2, SER's reply_to_via) */
  sendToOrigin(msg: ReplyRoute, origin: Origin, data: Buffer): boolean;
  /** send bytes to a resolved target */
  send(target: SendTarget, data: Buffer): boolean | Promise<boolean>;
  /** resolve a SIP URI to transport targets (RFC 3263) */
  resolveUri(uri: string): Promise<SendTarget[]>;
  /** resolveUri without a promise when no DNS lookup is needed (numeric host); else undefined */
  resolveUriNow(uri: string): SendTarget[] | undefined;
  /** Via header value for a message leaving toward `target`, with the given branch */
  viaFor(target: SendTarget, branch: string): string | undefined;
  /** run before the script for each request: return false to stop processing (sl's ACK filter) */
  addRequestFilter(fn: (ctx: MsgContext) => boolean): void;
  /**
   * Called for each request about to leave toward `target` (a stateless forward, each tm
   * branch), after our Via is in and before the bytes are made: rr adds its second
   * Record-Route when the request leaves on another socket than it came in on. The hook
   * may edit `msg` (the message being sent: ctx.msg, or tm's copy of it) and returns how
   * to undo that edit, or undefined.
   */
  addForwardHook(fn: ForwardHook): void;
  /** run every forward hook for one outgoing request; call the returned function after serializing */
  beforeForward(ctx: MsgContext, target: SendTarget, msg?: SipMessage): () => void;
  /** replies are offered here first (tm); return true when claimed */
  setReplyHandler(fn: (msg: SipMessage, origin: Origin) => boolean): void;
  /** run a block of the script (failure_route, onreply_route …) for a context; errors are logged */
  runRoute(ctx: MsgContext, kind: RouteKind, name: string): number | Promise<number>;
  /** does the script have that block */
  hasRoute(kind: RouteKind, name: string): boolean;
  /** a context for a message that did not come through the request pipeline (a reply, a stored request) */
  createContext(msg: SipMessage, origin: Origin, kind: RouteKind): MsgContext;
  /**
   * SER's forward(): send a request statelessly to `dest` or the next hop of its destination
   * URI / Request-URI (tm relays ACKs for 2xx and CANCELs it has no transaction for this way)
   */
  forwardRequest(
    ctx: MsgContext,
    dest?: { host: string; port?: number; proto?: Proto },
    asIs?: boolean,
  ): number | Promise<number>;
  /** forward a reply statelessly by its Via (our Via removed); false when it could not go */
  forwardReply(msg: SipMessage): Promise<boolean>;
  /** is this Via one of ours (host and port are ours) */
  isOurVia(v: Via): boolean;
  /** statistics groups for serctl monitor, FIFO and /metrics */
  addStats(group: string, read: () => Record<string, number>): void;
  /**
   * Module-to-module interfaces (SER's `load_tm`/`find_export`): a module publishes an API
   * object under its name in init(); modules loaded after it fetch it in their own init().
   */
  provideApi(name: string, api: object): void;
  /** the API a loaded module published, or undefined when that module is not loaded (yet) */
  getApi<T extends object>(name: string): T | undefined;
}
