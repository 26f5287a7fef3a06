/**
 * What a successful www_authorize/proxy_authorize leaves on the message context, for the
 * modules that act on the authenticated identity (uri's check_to/check_from/is_user, group's
 * is_user_in("Credentials", …), acc's digest_username/digest_realm columns).
 *
 * It lives in reserved AVPs, like textops' REPLY_HF_AVP: the context travels with the
 * request into tm's transaction, failure_route and acc without any extra plumbing.
 * Read it with authorizedCredentials(ctx); never write the AVPs directly.
 */
import { avpOf, type MsgContext } from '../../core/context.js';

/** digest username exactly as the UA sent it (may be "user@domain") */
export const AUTH_USER_AVP = 'auth/username';
/** realm of the credentials that were accepted */
export const AUTH_REALM_AVP = 'auth/realm';
/** which header carried them: "authorization" or "proxy-authorization", then ":" and the index */
export const AUTH_HF_AVP = 'auth/hf';
/** set by an authorize call that found a stale or reused nonce; the next challenge says stale=true */
export const AUTH_STALE_AVP = 'auth/stale';

export interface AuthorizedCredentials {
  /** the digest username as sent (SER's digest.username.whole) */
  username: string;
  /** its user part: before '@' when the username has one (SER's digest.username.user) */
  user: string;
  /** the domain part of a "user@domain" username, else undefined */
  domain: string | undefined;
  /** the realm of the accepted credentials */
  realm: string;
}

/** The credentials the last successful authorization of this request accepted, if any. */
export function authorizedCredentials(ctx: MsgContext): AuthorizedCredentials | undefined {
  const u = avpOf(ctx, AUTH_USER_AVP);
  const r = avpOf(ctx, AUTH_REALM_AVP);
  if (!u || u.length === 0 || !r || r.length === 0) return undefined;
  const username = String(u[0]);
  const at = username.indexOf('@');
  return {
    username,
    user: at < 0 ? username : username.slice(0, at),
    domain: at < 0 ? undefined : username.slice(at + 1),
    realm: String(r[0]),
  };
}

/** Records an accepted authorization (auth module only). */
export function setAuthorized(ctx: MsgContext, username: string, realm: string, hf: string): void {
  ctx.avps.set(AUTH_USER_AVP, [username]);
  ctx.avps.set(AUTH_REALM_AVP, [realm]);
  ctx.avps.set(AUTH_HF_AVP, [hf]);
  ctx.avps.delete(AUTH_STALE_AVP);
}
