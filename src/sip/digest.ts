/**
 * HTTP Digest computations for SIP authentication: RFC 2617 (MD5, MD5-sess, qop auth and
 * auth-int) and RFC 7616 / RFC 8760 (SHA-256, SHA-256-sess).
 */
import { hash } from 'node:crypto';

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

function hashName(alg: string): 'md5' | 'sha256' {
  const a = alg.toUpperCase();
  if (a === 'MD5' || a === 'MD5-SESS' || a === '') return 'md5';
  if (a === 'SHA-256' || a === 'SHA-256-SESS') return 'sha256';
  throw new RangeError(`unsupported digest algorithm ${alg}`);
}

function isSess(alg: string): boolean {
  return alg.toUpperCase().endsWith('-SESS');
}

/** Hex digest of `data` with the algorithm's hash (MD5 or SHA-256). */
export function digestHash(alg: string, data: string | Buffer): string {
  // crypto.hash: one call, no Hash object (several per authorized request)
  return hash(hashName(alg), data, 'hex');
}

/**
 * HA1. For the -sess variants pass nonce and cnonce: H(H(user:realm:password):nonce:cnonce).
 * `password` may instead be a precomputed H(user:realm:password) with `{ ha1: true }`.
 */
export function computeHA1(
  alg: string,
  username: string,
  realm: string,
  password: string,
  nonce = '',
  cnonce = '',
  opts?: { ha1?: boolean },
): string {
  const base = opts?.ha1 ? password : digestHash(alg, `${username}:${realm}:${password}`);
  return isSess(alg) ? digestHash(alg, `${base}:${nonce}:${cnonce}`) : base;
}

/** HA2 = H(method:uri) for qop auth or none, H(method:uri:H(body)) for auth-int. */
export function computeHA2(
  alg: string,
  method: string,
  uri: string,
  qop?: string,
  body?: Buffer | string,
): string {
  if (qop !== undefined && qop.toLowerCase() === 'auth-int')
    return digestHash(alg, `${method}:${uri}:${digestHash(alg, body ?? '')}`);
  return digestHash(alg, `${method}:${uri}`);
}

/** request-digest: with qop H(HA1:nonce:nc:cnonce:qop:HA2), without H(HA1:nonce:HA2) (RFC 2069 form). */
export function computeResponse(
  alg: string,
  ha1: string,
  nonce: string,
  ha2: string,
  qop?: string,
  nc?: string,
  cnonce?: string,
): string {
  if (qop === undefined || qop === '') return digestHash(alg, `${ha1}:${nonce}:${ha2}`);
  return digestHash(alg, `${ha1}:${nonce}:${nc ?? ''}:${cnonce ?? ''}:${qop}:${ha2}`);
}

export interface DigestInput {
  algorithm?: string;
  username: string;
  realm: string;
  password: string;
  /** true when `password` is already HA1 (H(user:realm:password)) */
  passwordIsHA1?: boolean;
  method: string;
  uri: string;
  nonce: string;
  qop?: string;
  nc?: string;
  cnonce?: string;
  body?: Buffer | string;
}

/** The whole computation: the expected `response` value for these credentials. */
export function digestResponse(d: DigestInput): string {
  const alg = d.algorithm ?? 'MD5';
  const ha1 = computeHA1(alg, d.username, d.realm, d.password, d.nonce, d.cnonce, { ha1: d.passwordIsHA1 });
  const ha2 = computeHA2(alg, d.method, d.uri, d.qop, d.body);
  return computeResponse(alg, ha1, d.nonce, ha2, d.qop, d.nc, d.cnonce);
}

/**
 * Compares a received value with the expected one, ASCII case-insensitively, in time that
 * depends only on the lengths (a forger learns nothing from where they differ). Lengths are
 * public: a response's length is fixed by its algorithm. A plain loop: hashing both sides
 * into Buffers for crypto.timingSafeEqual cost more than the rest of the check.
 */
export function safeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    // fold A-Z to a-z without a data-dependent branch: +32 when 65 <= c <= 90
    diff |=
      (x + (((((64 - x) & (x - 91)) >>> 31) & 1) << 5)) ^ (y + (((((64 - y) & (y - 91)) >>> 31) & 1) << 5));
  }
  return diff === 0;
}

export interface ChallengeInput {
  realm: string;
  nonce: string;
  /** qop options to offer, e.g. ['auth'] or ['auth', 'auth-int']; none for RFC 2069 clients */
  qop?: readonly string[];
  algorithm?: string;
  stale?: boolean;
  opaque?: string;
}

/** A Digest challenge value for WWW-Authenticate / Proxy-Authenticate (RFC 2617 §3.2.1). */
export function formatChallenge(c: ChallengeInput): string {
  const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  let v = `Digest realm=${q(c.realm)}, nonce=${q(c.nonce)}`;
  if (c.opaque !== undefined) v += `, opaque=${q(c.opaque)}`;
  if (c.qop && c.qop.length > 0) v += `, qop=${q(c.qop.join(','))}`;
  if (c.stale) v += ', stale=true';
  v += `, algorithm=${c.algorithm ?? 'MD5'}`;
  return v;
}
