/**
 * www_challenge / proxy_challenge: a 401 with WWW-Authenticate or a 407 with
 * Proxy-Authenticate carrying a fresh nonce (RFC 3261 §22.1, §22.3).
 */
import { avpOf, type MsgContext } from '../../core/context.js';
import { L_ERR } from '../../core/log.js';
import { formatChallenge } from '../../sip/digest.js';
import { defaultRealm } from './authorize.js';
import { AUTH_STALE_AVP } from './credentials.js';
import type { AuthState } from './state.js';

export type ChallengeKind = 'www' | 'proxy';

/** A local reply of the auth module; its To-tag lets the ACK to a 407 be absorbed. */
export function authReply(
  st: AuthState,
  ctx: MsgContext,
  code: number,
  reason: string,
  headers: string[] = [],
): boolean {
  const msg = ctx.msg;
  if (msg.method === 'ACK') return true;
  let buf: Buffer;
  try {
    buf = st.core.buildReply(ctx, code, reason, {
      headers,
      toTag: `${st.tagPrefix}.${(st.challenges + st.accepted).toString(16)}`,
    });
  } catch (e) {
    st.core.log.log(L_ERR, `ERROR: auth: cannot build the ${code} reply: ${(e as Error).message}`);
    return false;
  }
  return st.core.sendToOrigin(
    msg,
    { src: ctx.src, dst: ctx.dst, connId: (ctx as { connId?: number }).connId },
    buf,
  );
}

/** The header lines of a challenge: one per offered algorithm, the preferred first. */
export function challengeHeaders(
  st: AuthState,
  ctx: MsgContext,
  kind: ChallengeKind,
  realm: string,
  qop: readonly string[],
): string[] {
  const stale = (avpOf(ctx, AUTH_STALE_AVP)?.length ?? 0) > 0;
  const name = kind === 'www' ? 'WWW-Authenticate' : 'Proxy-Authenticate';
  const expires = Math.floor(st.wallMs() / 1000) + st.nonceExpire;
  return st.algorithms.map(
    (algorithm) =>
      `${name}: ${formatChallenge({ realm, nonce: st.signer.issue(expires), qop, algorithm, stale })}`,
  );
}

/** Sends the challenge. SER returns 1 when it went out, -1 otherwise (-5: no realm). */
export function challenge(
  st: AuthState,
  ctx: MsgContext,
  kind: ChallengeKind,
  realmArg: string,
  qop: readonly string[],
): number {
  const realm = realmArg || defaultRealm(ctx, kind === 'www' ? 'authorization' : 'proxy-authorization');
  if (realm === undefined) {
    st.core.log.log(L_ERR, `ERROR: ${kind}_challenge: no realm given and no host in the URI to take it from`);
    return -5;
  }
  const headers = challengeHeaders(st, ctx, kind, realm, qop);
  const ok =
    kind === 'www'
      ? authReply(st, ctx, 401, 'Unauthorized', headers)
      : authReply(st, ctx, 407, 'Proxy Authentication Required', headers);
  if (!ok) return -1;
  st.challenges++;
  return 1;
}
