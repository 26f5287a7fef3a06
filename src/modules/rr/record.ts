/**
 * Record-Route (RFC 3261 §16.6 step 4): the URI this proxy puts into a request so that the
 * dialog's later requests come back through it, built from the socket the request used.
 */
import type { CoreApi } from '../../core/api.js';
import type { MsgContext, Proto } from '../../core/context.js';
import type { SendTarget } from '../../net/transports.js';
import type { SipMessage } from '../../sip/message.js';

export interface RrOptions {
  /** `;lr=on` instead of `;lr` (enable_full_lr) */
  readonly fullLr: boolean;
  /** `;ftag=` with the From tag (append_fromtag) */
  readonly appendFromtag: boolean;
  /** a second Record-Route when the request leaves on another socket (enable_double_rr) */
  readonly doubleRr: boolean;
}

/** A local socket's address as written in Via / Record-Route. */
export interface SocketAddr {
  proto: Proto;
  /** host[:port], IPv6 in brackets */
  hostport: string;
}

/**
 * What record_route() left on a message: enough to add the outbound half of a double
 * Record-Route at send time and to add parameters later (add_rr_param).
 */
export interface RrMark {
  /** the inbound socket (the one the request arrived on) */
  readonly inbound: SocketAddr | undefined;
  /** a preset URI (record_route_preset): never doubled */
  readonly preset: string | undefined;
  /** extra URI parameters, each starting with ';' */
  params: string;
  /** the From tag at the time of record_route() */
  readonly ftag: string | undefined;
}

/** record_route()'s mark: it lives on the message itself (a field, not a WeakMap entry per message) */
export function markOf(msg: SipMessage): RrMark | undefined {
  return msg.rrMark as RrMark | undefined;
}

/** The local socket a message toward `target` leaves from, as Via writes it. */
export function socketToward(core: CoreApi, target: SendTarget): SocketAddr | undefined {
  // viaFor gives "SIP/2.0/PROTO host[:port];branch=x": the address part is what we need
  const via = core.viaFor(target, 'x');
  if (via === undefined) return undefined;
  const sp = via.indexOf(' ');
  const semi = via.indexOf(';', sp);
  if (sp < 0 || semi < 0) return undefined;
  return { proto: target.proto, hostport: via.slice(sp + 1, semi) };
}

/** The socket the context's request arrived on (the reply path's mirror image). */
export function inboundSocket(core: CoreApi, ctx: MsgContext): SocketAddr | undefined {
  return socketToward(core, { proto: ctx.dst.proto, ip: ctx.src.ip, port: ctx.src.port });
}

function lrParam(o: RrOptions): string {
  return o.fullLr ? ';lr=on' : ';lr';
}

/** `;ftag=…` when asked for and the From has a tag */
function ftagParam(o: RrOptions, mark: RrMark): string {
  return o.appendFromtag && mark.ftag !== undefined ? `;ftag=${mark.ftag}` : '';
}

/** The Record-Route URI for a socket (no user part: a loose router does not need one). */
export function rrUri(sock: SocketAddr, o: RrOptions, mark: RrMark, r2: boolean): string {
  const transport = sock.proto === 'udp' ? '' : `;transport=${sock.proto}`;
  return `sip:${sock.hostport}${transport}${r2 ? ';r2=on' : ''}${ftagParam(o, mark)}${mark.params}${lrParam(o)}`;
}

/** The URI record_route_preset() writes: the operator's address with our parameters. */
export function presetUri(preset: string, o: RrOptions, mark: RrMark): string {
  const base = /^sips?:/i.test(preset) ? preset : `sip:${preset}`;
  return `${base}${ftagParam(o, mark)}${mark.params}${lrParam(o)}`;
}

function headerValue(mark: RrMark, o: RrOptions): string | undefined {
  if (mark.preset !== undefined) return `<${presetUri(mark.preset, o, mark)}>`;
  if (mark.inbound === undefined) return undefined;
  return `<${rrUri(mark.inbound, o, mark, false)}>`;
}

function fromTag(msg: SipMessage): string | undefined {
  try {
    return msg.fromTag;
  } catch {
    return undefined;
  }
}

/**
 * Adds our Record-Route above every other one (SER puts it first in the message). A second
 * call for the same message changes nothing: one proxy needs one entry per pass.
 */
export function addRecordRoute(
  msg: SipMessage,
  o: RrOptions,
  inbound: SocketAddr | undefined,
  preset?: string,
  params = '',
): boolean {
  if (msg.rrMark !== undefined) return true;
  const mark: RrMark = { inbound, preset, params, ftag: fromTag(msg) };
  const value = headerValue(mark, o);
  if (value === undefined) return false;
  msg.rrMark = mark;
  msg.addHeader('Record-Route', value, 'top');
  return true;
}

/** Index, among all Record-Route values, of the one record_route() added (it is the topmost one). */
function ownIndex(msg: SipMessage, value: string): number {
  const all = msg.values('record-route');
  return all.indexOf(value);
}

/** add_rr_param() after record_route(): rewrite our entry with the new parameters. */
export function addParamToRecordRoute(msg: SipMessage, o: RrOptions, param: string): boolean {
  const mark = markOf(msg);
  if (!mark) return false;
  const old = headerValue(mark, o);
  mark.params += param;
  if (old === undefined) return true;
  const i = ownIndex(msg, old);
  if (i >= 0) msg.removeHeaderValue('record-route', i);
  msg.addHeader('Record-Route', headerValue(mark, o)!, 'top');
  return true;
}

/**
 * The forward hook of enable_double_rr: when the request leaves on another socket than
 * it arrived on (another transport, another address family or interface), the callee would
 * reach us at an address the caller cannot and the other way round, so both are recorded:
 * the outbound one first (the callee's side), then the inbound one; both marked `;r2=on`
 * so that loose_route() removes them together.
 */
export function doubleRecordRoute(
  core: CoreApi,
  o: RrOptions,
  ctx: MsgContext,
  target: SendTarget,
  msg: SipMessage,
): (() => void) | undefined {
  // record_route() marked the script's message; `msg` may be a copy of it (tm's branches)
  const mark = markOf(ctx.msg) ?? markOf(msg);
  if (!mark || mark.preset !== undefined || mark.inbound === undefined) return undefined;
  const out = socketToward(core, target);
  if (out === undefined) return undefined;
  if (out.proto === mark.inbound.proto && out.hostport === mark.inbound.hostport) return undefined;
  const single = headerValue(mark, o)!;
  const i = ownIndex(msg, single);
  if (i < 0) return undefined;
  const inboundValue = `<${rrUri(mark.inbound, o, mark, true)}>`;
  const outboundValue = `<${rrUri(out, o, mark, true)}>`;
  msg.removeHeaderValue('record-route', i);
  msg.addHeader('Record-Route', inboundValue, 'top');
  msg.addHeader('Record-Route', outboundValue, 'top');
  return () => {
    msg.removeHeaderValue('record-route', 0);
    msg.removeHeaderValue('record-route', 0);
    msg.addHeader('Record-Route', single, 'top');
  };
}
