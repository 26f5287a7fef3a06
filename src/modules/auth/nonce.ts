/**
 * Digest nonces. A nonce is self-contained, so any server that knows the `secret` can
 * check it without shared state (SER's replication: "replicas need the same secret and
 * synced clocks"):
 *
 *   8 hex  expiry time (Unix seconds)
 *   8 hex  random (with several workers the first byte names the issuing worker)
 *   8 hex  a sequence number of this process, from a random start
 *   32 hex SHA-256(secret-key, the 24 characters before), truncated to 128 bits
 *
 * 56 characters (SER's had 40). The sequence makes two nonces of one process differ by
 * construction: with 32 random bits alone, two of the nonces issued in the same second
 * coincided about once in nine minutes at 4,000 challenges/s, and with one-time nonces the second
 * user of a coinciding nonce was refused as a replay. SER signed with MD5(expiry + secret).
 * A key-prefixed hash is a sound MAC here because the signed part has a fixed length: length
 * extension, its known weakness, makes only longer messages, which verify() refuses. One
 * crypto.hash call costs about a third of an Hmac object, and a nonce is signed or checked
 * twice per registration.
 */
import { hash } from 'node:crypto';
import { randomHex } from '../../core/random.js';
import { safeEqual } from '../../sip/digest.js';

export const NONCE_LEN = 56;
/** the signed part: expiry, random, sequence */
const HEAD_LEN = 24;
const HEX = /^[0-9a-f]+$/;

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

export class NonceSigner {
  /** the secret as hex, so any bytes prefix the hashed string unambiguously */
  private readonly key: string;
  private seq = Number.parseInt(randomHex(4), 16);

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
    this.seq = (this.seq + 1) >>> 0;
    const head = hex8(expires) + rnd + hex8(this.seq);
    return head + this.mac(head);
  }

  /** The expiry of a nonce this secret signed, or undefined for a malformed or forged one. */
  verify(nonce: string): number | undefined {
    if (nonce.length !== NONCE_LEN || !HEX.test(nonce)) return undefined;
    if (!safeEqual(this.mac(nonce.slice(0, HEAD_LEN)), nonce.slice(HEAD_LEN))) return undefined;
    return Number.parseInt(nonce.slice(0, 8), 16);
  }
}

/** How the tracker judged one use of a nonce. */
export type NonceUse = 'ok' | 'retransmission' | 'replay';

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
 * Entries are kept in order of arrival (a ring), so the oldest are dropped without a walk:
 * walking a Map from its front, as this once did, crossed every entry deleted since its last
 * rehash (V8 leaves them as holes there), and digest REGISTER cost more the faster it came.
 */
export class NonceTracker {
  private floor = 0;
  /**
   * One entry per ring position, in the order of first use: the nonce's hash53, its expiry
   * (Unix s), the highest nonce-count seen (-1 without qop), the hash53 of the request that
   * used it last and when (ms). Typed arrays, not an object per entry in a Map: 100,000
   * entries that live for minutes were old-generation work for every GC, and a Map keyed by
   * 53-bit numbers (heap numbers, not small integers) cost a hashed lookup with cache misses
   * per use.
   */
  private readonly ringId: Float64Array;
  private readonly ringExp: Float64Array;
  private readonly ringNc: Float64Array;
  private readonly ringKey: Float64Array;
  private readonly ringAt: Float64Array;
  private head = 0;
  private count = 0;
  /** open addressing with linear probing: ring position + 1 per slot, 0 = empty */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly shift: number;

  private readonly max: number;

  constructor(max = 100_000) {
    this.max = Math.max(1, Math.floor(max));
    this.ringId = new Float64Array(this.max);
    this.ringExp = new Float64Array(this.max);
    this.ringNc = new Float64Array(this.max);
    this.ringKey = new Float64Array(this.max);
    this.ringAt = new Float64Array(this.max);
    // at most half full, so probe runs stay short
    let bits = 4;
    while (1 << bits < 2 * this.max) bits++;
    this.slots = new Int32Array(1 << bits);
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
  }

  get size(): number {
    return this.count;
  }

  /** `nc` as sent (8 hex digits) or undefined without qop; `now` in ms. */
  use(nonce: string, exp: number, nc: string | undefined, key: string, nowMs: number): NonceUse {
    this.prune(nowMs);
    const n = nc === undefined ? -1 : Number.parseInt(nc, 16);
    const id = hash53(nonce);
    const k = hash53(key);
    const at = this.find(id);
    if (at < 0) {
      if (exp <= this.floor) return 'replay';
      let free = ~at;
      if (this.count === this.max) {
        this.dropOldest(true);
        // the removal may have shifted entries into or past the free slot found above
        free = ~this.find(id);
      }
      const pos = (this.head + this.count) % this.max;
      this.ringId[pos] = id;
      this.ringExp[pos] = exp;
      this.ringNc[pos] = n;
      this.ringKey[pos] = k;
      this.ringAt[pos] = nowMs;
      this.count++;
      this.slots[free] = pos + 1;
      return 'ok';
    }
    const pos = this.slots[at] - 1;
    const seenNc = this.ringNc[pos];
    if (this.ringKey[pos] === k && seenNc === n && nowMs - this.ringAt[pos] < RETRANSMIT_MS)
      return 'retransmission';
    if (n >= 0 && seenNc >= 0 && n > seenNc) {
      this.ringNc[pos] = n;
      this.ringKey[pos] = k;
      this.ringAt[pos] = nowMs;
      return 'ok';
    }
    return 'replay';
  }

  /** the home slot of an id: Fibonacci hashing of its low 32 bits */
  private home(id: number): number {
    return Math.imul(id >>> 0, 0x9e3779b1) >>> this.shift;
  }

  /** the slot holding `id`, or the bitwise complement of the empty slot where it would go */
  private find(id: number): number {
    const slots = this.slots;
    for (let i = this.home(id); ; i = (i + 1) & this.mask) {
      const s = slots[i];
      if (s === 0) return ~i;
      if (this.ringId[s - 1] === id) return i;
    }
  }

  /** empties slot `i`, moving later entries of its probe run back so none becomes unreachable */
  private removeSlot(i: number): void {
    const slots = this.slots;
    const mask = this.mask;
    slots[i] = 0;
    for (let j = (i + 1) & mask; slots[j] !== 0; j = (j + 1) & mask) {
      const h = this.home(this.ringId[slots[j] - 1]);
      // the entry at j may fill the hole at i unless its home lies cyclically in (i, j]
      const stays = i <= j ? h > i && h <= j : h > i || h <= j;
      if (!stays) {
        slots[i] = slots[j];
        slots[j] = 0;
        i = j;
      }
    }
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
    const at = this.find(this.ringId[this.head]);
    if (at >= 0) this.removeSlot(at);
    this.head = (this.head + 1) % this.max;
    this.count--;
  }
}
