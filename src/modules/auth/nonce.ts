/**
 * Digest nonces. A nonce is self-contained, so any server that knows the `secret` can
 * check it without shared state (SER's replication: "replicas need the same secret and
 * synced clocks"):
 *
 *   8 hex  expiry time (Unix seconds)
 *   8 hex  random, so two nonces of the same second differ
 *   32 hex HMAC-SHA-256(secret, the 16 characters before), truncated to 128 bits
 *
 * 48 characters like SER's. SER signed with MD5(expiry + secret); an HMAC is the sound way
 * to key a hash, and the nonce stays opaque to the UA either way.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { randomHex } from '../../core/random.js';

export const NONCE_LEN = 48;

export class NonceSigner {
  private readonly key: Buffer;

  /**
   * `worker`: multi-process model, the index of the worker issuing nonces; it becomes the
   * first random byte so the worker that tracks a nonce's use can be told (cluster-role.ts)
   */
  constructor(
    secret: string | Buffer,
    private readonly worker?: number,
  ) {
    this.key = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  }

  private mac(head: string): string {
    return createHmac('sha256', this.key).update(head).digest('hex').slice(0, 32);
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
    if (nonce.length !== NONCE_LEN || !/^[0-9a-f]+$/.test(nonce)) return undefined;
    const head = nonce.slice(0, 16);
    const want = Buffer.from(this.mac(head), 'latin1');
    const got = Buffer.from(nonce.slice(16), 'latin1');
    if (!timingSafeEqual(want, got)) return undefined;
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
  /** the request that used it last (Call-ID, CSeq, top Via branch) and when */
  key: string;
  atMs: number;
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
 * Memory is bounded: past `max` entries the oldest are forgotten, and `floor` remembers
 * the latest expiry forgotten, so a forgotten nonce is treated as used, never as new.
 */
export class NonceTracker {
  private readonly seen = new Map<string, Seen>();
  private floor = 0;

  constructor(private readonly max = 100_000) {}

  get size(): number {
    return this.seen.size;
  }

  /** `nc` as sent (8 hex digits) or undefined without qop; `now` in ms. */
  use(nonce: string, exp: number, nc: string | undefined, key: string, nowMs: number): NonceUse {
    this.prune(nowMs);
    const n = nc === undefined ? -1 : Number.parseInt(nc, 16);
    const e = this.seen.get(nonce);
    if (e === undefined) {
      if (exp <= this.floor) return 'replay';
      this.seen.set(nonce, { exp, nc: n, key, atMs: nowMs });
      if (this.seen.size > this.max) this.evict();
      return 'ok';
    }
    if (e.key === key && e.nc === n && nowMs - e.atMs < RETRANSMIT_MS) return 'retransmission';
    if (n >= 0 && e.nc >= 0 && n > e.nc) {
      e.nc = n;
      e.key = key;
      e.atMs = nowMs;
      return 'ok';
    }
    return 'replay';
  }

  /** drops a few entries whose nonce has expired (they can only be stale from now on) */
  private prune(nowMs: number): void {
    const now = Math.floor(nowMs / 1000);
    let k = 0;
    for (const [n, e] of this.seen) {
      if (e.exp >= now || k++ >= 16) break;
      this.seen.delete(n);
    }
  }

  private evict(): void {
    const target = Math.floor(this.max * 0.9);
    for (const [n, e] of this.seen) {
      if (this.seen.size <= target) break;
      if (e.exp > this.floor) this.floor = e.exp;
      this.seen.delete(n);
    }
  }
}
