/**
 * The per-message context that the compiled script and every action work on:
 * the message, its flags, the current Request-URI, the destination set, AVPs.
 */
import type { SipMessage } from '../sip/message.js';
import type { RouteKind } from './module.js';

export type Proto = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

export interface Endpoint {
  readonly ip: string;
  readonly port: number;
  readonly proto: Proto;
  /** 4 or 6 */
  readonly af: 4 | 6;
}

/** One entry of the destination set besides the Request-URI (SER's branches). */
export interface Branch {
  uri: string;
  /** q-value times 1000 (SER's qvalue_t), -1 when none was given */
  q: number;
  /** outbound destination (`dst_uri`), when it differs from the URI */
  dstUri?: string;
}

export type AvpValue = string | number;

export interface MsgContext {
  readonly msg: SipMessage;
  /** the kind of block currently running */
  routeKind: RouteKind;
  /** script flags, bit n is flag n (0–31) */
  flags: number;
  /** the current Request-URI: starts as the message's and changes with rewrite* actions */
  ruri: string;
  /** where the message came from and the local socket it arrived on */
  readonly src: Endpoint;
  readonly dst: Endpoint;
  /** the destination set beyond the Request-URI */
  branches: Branch[];
  /** q of the Request-URI itself in the destination set (-1: none) */
  ruriQ: number;
  /** forced next hop for the Request-URI branch (SER's dst_uri / $du) */
  dstUri: string | undefined;
  /** attribute-value pairs, name → values (latest first) */
  readonly avps: Map<string, AvpValue[]>;
  /** the last internal error, for sl_reply_error(): SIP code and reason */
  lastError: { code: number; reason: string } | undefined;
  /** set by `drop`: a reply is not forwarded, a branch is not sent */
  drop: boolean;
  /**
   * tm's slots for this message (its transaction, and t_on_failure/t_on_reply armed before
   * there is one). Fields, not WeakMaps keyed by the context: a WeakMap entry per message
   * costs every GC ephemeron work (docs/performance.md).
   */
  tmCell?: unknown;
  tmArmed?: { failure?: string; reply?: string };
}

/**
 * The values of one AVP without creating the context's AVP map: `ctx.avps` makes the map on
 * first use, and most messages never set an AVP, so a read on the hot path (every local reply
 * asks for append_to_reply's lines) must not allocate one.
 */
export function avpOf(ctx: MsgContext, name: string): AvpValue[] | undefined {
  const peek = (ctx as { peekAvp?: (n: string) => AvpValue[] | undefined }).peekAvp;
  return peek !== undefined ? peek.call(ctx, name) : ctx.avps.get(name);
}

/** AVP holding header lines for the next local reply (textops' append_to_reply), latest first */
export const REPLY_HF_AVP = 'textops/reply_hf';

/** The header lines queued by append_to_reply(), in the order the script added them. */
export function replyHeaders(ctx: MsgContext): string[] {
  const v = avpOf(ctx, REPLY_HF_AVP);
  if (v === undefined || v.length === 0) return [];
  const out: string[] = [];
  for (let i = v.length - 1; i >= 0; i--) out.push(String(v[i]));
  return out;
}
