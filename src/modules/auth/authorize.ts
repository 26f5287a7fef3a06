/**
 * The protocol half of www_authorize/proxy_authorize (SER's pre_auth/post_auth, which
 * auth_db and other credential stores call around their password lookup): pick the
 * credentials for the realm, check them, compute the expected response from the HA1 the
 * store gives, check the nonce, and record the result on the context.
 */
import { clusterBus, clusterRole, workerOfNonce } from '../../core/cluster-role.js';
import type { MsgContext } from '../../core/context.js';
import { L_DBG, L_ERR } from '../../core/log.js';
import type { Credentials } from '../../sip/headers.js';
import { computeHA2, computeResponse, digestHash, safeEqual } from '../../sip/digest.js';
import { parseUri } from '../../sip/uri.js';
import { AUTH_STALE_AVP, setAuthorized } from './credentials.js';
import type { AuthState } from './state.js';
import type { NonceUse } from './nonce.js';

/** Return values (OpenSER 1.x numbering; SER 0.9 only had true/false). */
export const AUTH_OK = 1;
export const AUTH_USER_UNKNOWN = -1;
export const AUTH_INVALID_PASSWORD = -2;
export const AUTH_STALE_NONCE = -3;
export const AUTH_NO_CREDENTIALS = -4;
export const AUTH_ERROR = -5;
/** beyond SER: a nonce that already authorized a request (replay) */
export const AUTH_NONCE_REUSED = -6;
/** the request was answered (400 Bad Credentials) and the script stops, as in SER */
export const AUTH_STOP = 0;

export type HfType = 'authorization' | 'proxy-authorization';

/** What a credential store returns for a digest username. */
export type Ha1Lookup =
  | { kind: 'ha1'; ha1: string }
  | { kind: 'unknown' }
  /** the store failed (database down): no reply, script gets AUTH_ERROR */
  | { kind: 'error' };

/**
 * Looks up the HA1 for the credentials: `user`/`domain` split from the username (domain is
 * the realm when the username has no '@'), `algorithm` the hash the UA used.
 */
export type Ha1Source = (q: {
  username: string;
  user: string;
  domain: string;
  realm: string;
  algorithm: string;
  ctx: MsgContext;
}) => Ha1Lookup | Promise<Ha1Lookup>;

/**
 * The realm when the script gives "": the host of the To URI for a REGISTER checked with
 * www_* (the domain being registered), of the From URI otherwise (the caller's domain),
 * as SER's get_realm() chose it.
 */
export function defaultRealm(ctx: MsgContext, hf: HfType): string | undefined {
  const msg = ctx.msg;
  try {
    const useTo = msg.method === 'REGISTER' && hf === 'authorization';
    const u = parseUri(useTo ? msg.to.uri : msg.from.uri);
    return u.host || undefined;
  } catch {
    return undefined;
  }
}

export function headerName(hf: HfType): string {
  return hf === 'authorization' ? 'Authorization' : 'Proxy-Authorization';
}

/** The credentials of that header type for the realm, and their index among those headers. */
export function findCredentials(
  ctx: MsgContext,
  hf: HfType,
  realm: string,
): { cred: Credentials; index: number } | undefined | 'bad' {
  let list: Credentials[];
  try {
    list = hf === 'authorization' ? ctx.msg.authorization : ctx.msg.proxyAuthorization;
  } catch {
    return 'bad';
  }
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c.scheme.toLowerCase() === 'digest' && c.realm === realm) return { cred: c, index: i };
  }
  return undefined;
}

/** RFC 2617 §3.2.2: what a well-formed Digest response must carry. */
function wellFormed(c: Credentials, algorithms: readonly string[]): string | undefined {
  if (!c.username) return 'no username';
  if (c.nonce === undefined) return 'no nonce';
  if (!c.response || !/^[0-9a-fA-F]+$/.test(c.response)) return 'bad response';
  if (c.uri === undefined) return 'no uri';
  const alg = c.algorithm ?? 'MD5';
  if (!algorithms.some((a) => a.toUpperCase() === alg.toUpperCase())) return `algorithm ${alg} not offered`;
  if (c.qop !== undefined) {
    const q = c.qop.toLowerCase();
    if (q !== 'auth' && q !== 'auth-int') return `qop ${c.qop} unknown`;
    if (!c.nc || !/^[0-9a-fA-F]{8}$/.test(c.nc)) return 'bad nc';
    if (!c.cnonce) return 'no cnonce';
  }
  return undefined;
}

function retransmissionKey(ctx: MsgContext): string {
  const m = ctx.msg;
  try {
    return `${m.callId}\n${m.cseq.seq}\n${m.topVia?.branch ?? ''}`;
  } catch {
    // a header the core let through but that does not parse: never equal to another request
    return `\n${Math.random()}`;
  }
}

/** Sends "400 Bad Credentials"; authorize then returns AUTH_STOP. */
export type Rejecter = (ctx: MsgContext, code: number, reason: string) => void;

/**
 * www_authorize / proxy_authorize for one request. `realmArg` is the script's realm ("" →
 * defaultRealm), `source` the credential store.
 */
export function authorize(
  st: AuthState,
  ctx: MsgContext,
  realmArg: string,
  hf: HfType,
  source: Ha1Source,
  reject: Rejecter,
): number | Promise<number> {
  const log = st.core.log;
  const msg = ctx.msg;
  const realm = realmArg || defaultRealm(ctx, hf);
  if (realm === undefined) {
    log.log(L_ERR, `ERROR: ${hf}: no realm: the script gives "" and the To/From URI has no host`);
    return AUTH_ERROR;
  }
  const found = findCredentials(ctx, hf, realm);
  if (found === 'bad') {
    reject(ctx, 400, 'Bad Credentials');
    return AUTH_STOP;
  }
  if (found === undefined) return AUTH_NO_CREDENTIALS;
  const c = found.cred;
  const bad = wellFormed(c, st.algorithms);
  if (bad !== undefined) {
    log.log(L_DBG, `auth: ${headerName(hf)} rejected: ${bad}`);
    reject(ctx, 400, 'Bad Credentials');
    return AUTH_STOP;
  }
  const username = c.username!;
  const nonce = c.nonce!;
  const expires = st.signer.verify(nonce);
  // a nonce we did not sign (another secret, tampered) can never succeed: challenge afresh
  if (expires === undefined) {
    log.log(L_DBG, `auth: nonce of ${username} was not issued with our secret`);
    return AUTH_INVALID_PASSWORD;
  }
  const at = username.indexOf('@');
  const user = at < 0 ? username : username.slice(0, at);
  const domain = at < 0 ? realm : username.slice(at + 1);
  const algorithm = c.algorithm ?? 'MD5';
  // a cached credential row and a nonce this process issued cost no promise
  const checkResponse = (stored: Ha1Lookup): number | Promise<number> => {
    if (stored.kind === 'error') return AUTH_ERROR;
    if (stored.kind === 'unknown') {
      log.log(L_DBG, `auth: user '${username}' (realm ${realm}) not found`);
      return AUTH_USER_UNKNOWN;
    }
    let ha1 = stored.ha1;
    if (algorithm.toUpperCase().endsWith('-SESS'))
      ha1 = digestHash(algorithm, `${ha1}:${nonce}:${c.cnonce ?? ''}`);
    const qop = c.qop?.toLowerCase();
    const ha2 = computeHA2(algorithm, msg.method, c.uri!, qop, qop === 'auth-int' ? msg.body : undefined);
    const want = computeResponse(algorithm, ha1, nonce, ha2, qop, c.nc, c.cnonce);
    if (!safeEqual(want, c.response!)) {
      log.log(L_DBG, `auth: wrong response from '${username}' (realm ${realm})`);
      return AUTH_INVALID_PASSWORD;
    }
    // ACK and CANCEL cannot be challenged: SER accepts them with an old nonce
    const unchallengeable = msg.method === 'ACK' || msg.method === 'CANCEL';
    const nowMs = st.wallMs();
    if (expires < Math.floor(nowMs / 1000) && !unchallengeable) {
      ctx.avps.set(AUTH_STALE_AVP, [1]);
      return AUTH_STALE_NONCE;
    }
    if (!st.nonceCount || unchallengeable) return accepted();
    const use = trackNonce(st, {
      nonce,
      exp: expires,
      nc: qop === undefined ? undefined : c.nc,
      key: retransmissionKey(ctx),
      nowMs,
    });
    return typeof use === 'string' ? afterUse(use) : use.then(afterUse);
  };
  const afterUse = (use: NonceUse): number => {
    if (use === 'replay') {
      log.log(L_DBG, `auth: nonce reused by '${username}' (nc ${c.nc ?? 'none'}): refused`);
      st.replays++;
      ctx.avps.set(AUTH_STALE_AVP, [1]);
      return AUTH_NONCE_REUSED;
    }
    return accepted();
  };
  const accepted = (): number => {
    setAuthorized(ctx, username, realm, `${hf}:${found.index}`);
    st.accepted++;
    return AUTH_OK;
  };
  const stored = source({ username, user, domain, realm, algorithm, ctx });
  return stored instanceof Promise ? stored.then(checkResponse) : checkResponse(stored);
}

/** One use of a nonce, as NonceTracker.use takes it. */
export interface NonceUseQuery {
  nonce: string;
  exp: number;
  nc: string | undefined;
  key: string;
  nowMs: number;
}

/** the cluster request topic answered by the worker that issued a nonce */
export const NONCE_TOPIC = 'auth.nonce';
/** an issuing worker that does not answer in time: the nonce counts as used (stale) */
const NONCE_ASK_MS = 1000;

/**
 * Judge one use of a nonce. With several workers the worker that issued the nonce (named
 * in it) keeps its uses, and is asked: a header replayed to any worker is refused.
 */
function trackNonce(st: AuthState, q: NonceUseQuery): NonceUse | Promise<NonceUse> {
  const role = clusterRole();
  const owner = role ? workerOfNonce(q.nonce) : undefined;
  const bus = clusterBus();
  if (role && bus && owner !== undefined && owner !== role.index && owner < role.count) {
    return bus
      .request(owner, NONCE_TOPIC, q, NONCE_ASK_MS)
      .then((r) => (r === 'ok' || r === 'retransmission' ? r : 'replay'));
  }
  return st.tracker.use(q.nonce, q.exp, q.nc, q.key, q.nowMs);
}
