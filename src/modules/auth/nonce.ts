/**
 * Digest nonces. A nonce is self-contained, so any server that knows the `secret` can
 * check it without shared state (SER's replication: "replicas need the same secret and
 * synced clocks"):
 *
 *   8 hex  expiry time (Unix seconds)
 *   8 hex  random, so two nonces of the same second differ
 *   32 hex SHA-256(secret-key, the 16 characters before), truncated to 128 bits
 *
 * 48 characters like SER's. SER signed with MD5(expiry + secret). A key-prefixed hash is a
 * sound MAC here because the signed part has a fixed length: length extension, its known
 * weakness, makes only longer messages, which verify() refuses. One crypto.hash call costs
 * about a third of an Hmac object, and a nonce is signed or checked twice per registration.
 */
import { hash } from 'node:crypto';
import { randomHex } from '../../core/random.js';
import { safeEqual } from '../../sip/digest.js';

export const NONCE_LEN = 48;
const HEX = /^[0-9a-f]+$/;

export class NonceSigner {
  /** the secret as hex, so any bytes prefix the hashed string unambiguously */
  private readonly key: string;

  /**
   * `worker`: multi-process model, the index of the worker issuing nonces; it becomes the
   * first random byte so the worker that tracks a nonce's use can be told (cluster-role.ts)
   */
  constructor(
    secret: string | Buffer,
    private readonly worker?: number,
  ) {
    this.key = (typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret).toString('hex');
  }

  private mac(head: string): string {
    return hash('sha256', this.key + head, 'hex').slice(0, 32);
  }

  /** A new nonce valid until `expires` (Unix seconds). */
  issue(expires: number): string {
    let rnd = randomHex(4);
    if (this.worker !== undefined) rnd = (this.worker & 0xff).toString(16).padStart(2, '0') + rnd.slice(2);
    const head = (expires >>> 0).toString(16).padStart(8, '0') + rnd;
    return head + this.mac(head);
  }

  /** The expiry of a nonce this secret signed, or undefined for a malformed or forged one. */
  verify(nonce: string): number | undefined {
    if (nonce.length !== NONCE_LEN || !HEX.test(nonce)) return undefined;
    if (!safeEqual(this.mac(nonce.slice(0, 16)), nonce.slice(16))) return undefined;
    return Number.parseInt(nonce.slice(0, 8), 16);
  }
}

/** How the tracker judged one use of a nonce. */
export type NonceUse = 'ok' | 'retransmission' | 'replay';

interface Seen {
  /** expiry of the nonce (Unix seconds) */
  exp: number;
  /** highest nonce-count seen (qop requests), -1 for a request without qop */
  nc: number;
  /** the request that used it last (hash53 of Call-ID, CSeq, top Via branch) and when */
  key: number;
  atMs: number;
}

/**
 * A 53-bit hash of a string (two FNV-1a lanes), so that the tracker keeps numbers: the
 * strings it is given are slices of a whole request, and keeping one would pin the request
 * text (about 1 KB) for as long as the nonce is remembered. Not a MAC: the nonces it keys
 * were checked by NonceSigner first, and the request key only tells retransmissions apart.
 */
export function hash53(s: string): number {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  b ^= b >>> 15;
  return (b & 0x1fffff) * 0x100000000 + (a >>> 0);
}

/** A retransmission of the very request that used the nonce is accepted this long (64·T1). */
const RETRANSMIT_MS = 32_000;

/**
 * Replay protection beyond SER: remembers every nonce that authorized a request. With qop
 * the nonce-count must grow (RFC 2617 §3.2.2); without qop (RFC 2069 clients) a nonce
 * authorizes one request. A replayed header is refused even while the nonce is fresh; the
 * UA gets stale=true, so an honest one re-authenticates without asking its user.
 *
 * Retransmissions of the request that used the nonce (same Call-ID, CSeq and branch) are
 * not replays: a stateless REGISTER whose 200 was lost must not turn into a 401.
 *
 * Memory is bounded: past `max` entries the oldest is forgotten, and `floor` remembers
 * the latest expiry forgotten, so a forgotten nonce is treated as used, never as new.
 *
 * The order of arrival is kept in a ring beside the map. Walking the map from its oldest
 * entry instead, as this did before, crossed every entry deleted since the map was last
 * rehashed (V8 leaves them as holes at its front): once the map was full, each use walked
 * thousands of holes, and digest REGISTER cost more per request the faster they came.
 */
export class NonceTracker {
  private readonly seen = new Map<number, Seen>();
  private floor = 0;
  /** the ids of `seen` in the order they were added, and their expiries: a ring of `max` */
  private readonly ringId: Float64Array;
  private readonly ringExp: Float64Array;
  private head = 0;
  private count = 0;

  private readonly max: number;

  constructor(max = 100_000) {
    this.max = Math.max(1, Math.floor(max));
    this.ringId = new Float64Array(this.max);
    this.ringExp = new Float64Array(this.max);
  }

  get size(): number {
    return this.seen.size;
  }

  /** `nc` as sent (8 hex digits) or undefined without qop; `now` in ms. */
  use(nonce: string, exp: number, nc: string | undefined, key: string, nowMs: number): NonceUse {
    this.prune(nowMs);
    const n = nc === undefined ? -1 : Number.parseInt(nc, 16);
    const id = hash53(nonce);
    const k = hash53(key);
    const e = this.seen.get(id);
    if (e === undefined) {
      if (exp <= this.floor) return 'replay';
      if (this.count === this.max) this.dropOldest(true);
      this.seen.set(id, { exp, nc: n, key: k, atMs: nowMs });
      const tail = (this.head + this.count) % this.max;
      this.ringId[tail] = id;
      this.ringExp[tail] = exp;
      this.count++;
      return 'ok';
    }
    if (e.key === k && e.nc === n && nowMs - e.atMs < RETRANSMIT_MS) return 'retransmission';
    if (n >= 0 && e.nc >= 0 && n > e.nc) {
      e.nc = n;
      e.key = k;
      e.atMs = nowMs;
      return 'ok';
    }
    return 'replay';
  }

  /** drops a few of the oldest entries whose nonce has expired (from now on they can only be stale) */
  private prune(nowMs: number): void {
    const now = Math.floor(nowMs / 1000);
    for (let i = 0; i < 16 && this.count > 0 && this.ringExp[this.head] < now; i++) this.dropOldest(false);
  }

  /** `evicted`: forgotten while still valid, so its expiry raises the floor */
  private dropOldest(evicted: boolean): void {
    const exp = this.ringExp[this.head];
    if (evicted && exp > this.floor) this.floor = exp;
    this.seen.delete(this.ringId[this.head]);
    this.head = (this.head + 1) % this.max;
    this.count--;
  }
}
