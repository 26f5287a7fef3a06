/**
 * loose_route(): Route processing of a proxy (RFC 3261 §16.4 and §16.12), as SER's rr does it.
 */
import type { CoreApi } from '../../core/api.js';
import { avpOf, type MsgContext } from '../../core/context.js';
import { SipParseError } from '../../sip/errors.js';
import type { NameAddr } from '../../sip/message.js';
import { parseUri, type SipUri, uriParam } from '../../sip/uri.js';
import type { Param } from '../../sip/util.js';

/** SER's return codes: a request routed by its Route set is RR_DRIVEN, otherwise NOT_RR_DRIVEN */
export const RR_DRIVEN = 1;
export const NOT_RR_DRIVEN = -1;

/** The parameters of our own Route entry that loose_route() consumed, for check_route_param / is_direction. */
export const ROUTE_PARAMS_AVP = 'rr/route_params';

function effectivePort(u: SipUri): number {
  if (u.port !== undefined) return u.port;
  const t = uriParam(u, 'transport')?.toLowerCase();
  return u.kind === 'sips' || t === 'tls' ? 5061 : 5060;
}

function isOurs(core: CoreApi, u: SipUri): boolean {
  if (u.kind !== 'sip' && u.kind !== 'sips') return false;
  // maddr names the host that really handles the URI (RFC 3261 §19.1.1)
  const maddr = uriParam(u, 'maddr');
  if (maddr !== undefined && !core.isMyself(maddr, effectivePort(u))) return false;
  return core.isMyself(u.host, effectivePort(u));
}

function paramsText(params: readonly Param[]): string {
  let s = '';
  for (const p of params) s += p.value === undefined ? `;${p.name}` : `;${p.name}=${p.value}`;
  return s;
}

function rememberParams(ctx: MsgContext, u: SipUri): void {
  ctx.avps.set(ROUTE_PARAMS_AVP, [paramsText(u.params)]);
}

/** the request starts a dialog (no To tag): its Route set was put there by the caller */
function isPreloaded(ctx: MsgContext): boolean {
  try {
    return ctx.msg.toTag === undefined;
  } catch {
    return true;
  }
}

/**
 * RFC 3261 §16.4 and §16.12:
 * 1. A Request-URI that is a URI we put into a Record-Route means the previous hop was a
 *    strict router: the real target is the last Route entry, which moves to the Request-URI.
 * 2. A first Route entry that is ours is removed (both of a double Record-Route pair).
 * 3. What remains decides the next hop: a loose router (`;lr`) becomes the destination
 *    (dst_uri, the Request-URI unchanged); a strict one moves to the Request-URI and the
 *    Request-URI goes to the end of the Route set (§16.6 step 6).
 * Returns 1 when the request is routed by its Route set, -1 when it has no Route or when
 * a dialog-initial request carried nothing but our own entry (SER's NOT_RR_DRIVEN).
 */
export function looseRoute(core: CoreApi, ctx: MsgContext): number {
  const msg = ctx.msg;
  let routes: NameAddr[];
  try {
    routes = msg.routes;
  } catch (e) {
    if (e instanceof SipParseError) {
      core.log.err(`ERROR: loose_route: ${e.reason}`);
      return NOT_RR_DRIVEN;
    }
    throw e;
  }
  if (routes.length === 0) return NOT_RR_DRIVEN;

  let ruri: SipUri;
  try {
    ruri = parseUri(ctx.ruri);
  } catch {
    core.log.err('ERROR: loose_route: bad Request-URI');
    return NOT_RR_DRIVEN;
  }
  let parsed: SipUri[];
  try {
    parsed = routes.map((r) => parseUri(r.uri));
  } catch {
    core.log.err('ERROR: loose_route: bad URI in Route');
    return NOT_RR_DRIVEN;
  }

  let strictFixed = false;
  // §16.4: only a URI of ours that carries `lr` can be one we recorded; a request addressed
  // to our domain (a user here) keeps its Request-URI
  if (isOurs(core, ruri) && uriParam(ruri, 'lr') !== undefined) {
    const last = routes.length - 1;
    rememberParams(ctx, ruri);
    ctx.ruri = routes[last].uri;
    msg.removeHeaderValue('route', last);
    routes = routes.slice(0, last);
    parsed = parsed.slice(0, last);
    strictFixed = true;
  }

  if (routes.length > 0 && isOurs(core, parsed[0])) {
    const first = parsed[0];
    rememberParams(ctx, first);
    msg.removeHeaderValue('route', 0);
    routes = routes.slice(1);
    parsed = parsed.slice(1);
    // the second half of a double Record-Route is ours as well
    if (uriParam(first, 'r2') !== undefined && routes.length > 0 && isOurs(core, parsed[0])) {
      msg.removeHeaderValue('route', 0);
      routes = routes.slice(1);
      parsed = parsed.slice(1);
    }
    if (routes.length === 0) {
      // no next hop in the Route set: the Request-URI leads
      return strictFixed || !isPreloaded(ctx) ? RR_DRIVEN : NOT_RR_DRIVEN;
    }
  } else if (routes.length === 0) {
    return strictFixed ? RR_DRIVEN : NOT_RR_DRIVEN;
  }

  const next = parsed[0];
  if (uriParam(next, 'lr') !== undefined) {
    ctx.dstUri = routes[0].uri;
  } else {
    // §16.6 step 6: the next hop is a strict router
    msg.addHeader('Route', `<${ctx.ruri}>`, 'bottom');
    ctx.ruri = routes[0].uri;
    msg.removeHeaderValue('route', 0);
  }
  return RR_DRIVEN;
}

/** SER's is_direction(): the From tag recorded in our Route entry tells which side sent the request. */
export function direction(ctx: MsgContext): 'downstream' | 'upstream' | undefined {
  const params = avpOf(ctx, ROUTE_PARAMS_AVP)?.[0];
  if (params === undefined) return undefined;
  const m = /;ftag=([^;]*)/i.exec(String(params));
  if (!m) return undefined;
  let from: string | undefined;
  try {
    from = ctx.msg.fromTag;
  } catch {
    return undefined;
  }
  return from === m[1] ? 'downstream' : 'upstream';
}
