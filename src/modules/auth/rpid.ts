/**
 * Remote-Party-ID (draft-ietf-sip-privacy, as SER 0.9 and OpenSER 1.1 used it): the caller
 * identity the credential store keeps for the subscriber (subscriber.rpid), which auth_db
 * puts in the rpid AVP on a successful authorization. append_rpid_hf() adds it, wrapped in
 * the configured prefix and suffix, to the request being relayed.
 */
import type { MsgContext } from '../../core/context.js';
import { parseNameAddr } from '../../sip/util.js';
import { parseUri } from '../../sip/uri.js';
import type { AuthState } from './state.js';

export function rpidOf(st: AuthState, ctx: MsgContext): string | undefined {
  const v = ctx.avps.get(st.rpidAvp);
  if (!v || v.length === 0) return undefined;
  const s = String(v[0]);
  return s === '' ? undefined : s;
}

/** append_rpid_hf([prefix, suffix]): 1 when added, -1 when the caller has no RPID. */
export function appendRpid(st: AuthState, ctx: MsgContext, prefix?: string, suffix?: string): number {
  const rpid = rpidOf(st, ctx);
  if (rpid === undefined) return -1;
  ctx.msg.addHeader('Remote-Party-ID', `${prefix ?? st.rpidPrefix}${rpid}${suffix ?? st.rpidSuffix}`);
  return 1;
}

/** is_rpid_user_e164(): the user part of the RPID URI is +digits (E.164, 2–15 digits). */
export function isRpidUserE164(st: AuthState, ctx: MsgContext): number {
  const rpid = rpidOf(st, ctx);
  if (rpid === undefined) return -1;
  let uri = rpid;
  try {
    if (rpid.includes('<')) uri = parseNameAddr(rpid, 'Remote-Party-ID').uri;
    const u = parseUri(uri);
    return /^\+\d{2,15}$/.test(u.user ?? '') ? 1 : -1;
  } catch {
    return -1;
  }
}
