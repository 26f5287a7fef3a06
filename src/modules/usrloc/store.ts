/**
 * The in-memory user location store: location domains ("tables") holding records
 * keyed by address-of-record, each with its contacts (bindings).
 *
 * Kept small on purpose (docs/performance.md, memory): a stored contact is one object of
 * a single class (Binding) with small integers and strings (user agents and sockets are
 * interned, most phones of a site share a few values); the contacts of an AOR are a chain
 * of Bindings, and a domain is a Map from AOR to the first one. No record object and no
 * array per AOR: most AORs have one contact, and those two cost more than the contact.
 * Expiry is by absolute time: a contact whose `expires` has passed is invisible at
 * once and removed by the periodic sweep.
 */
import { detach } from '../../sip/util.js';

/** SER's contact flags (ul FL_*): stored with the contact, in the `flags` column. */
export const FL_NAT = 1;
export const FL_PERMANENT = 128;

/** q in thousandths (SER's qvalue_t); this value: no q was given */
export const Q_UNSPECIFIED = -1;

/** seconds SER shows as the remaining time of a permanent contact, minus the uptime */
export const PERMANENT_SHOWN = 1 << 30;

/** A contact (binding): the fields of a stored one, without its link to the next. */
export type UContact = Omit<Binding, 'update'>;

const interned = new Map<string, string>();
/** One shared copy of a string that repeats across many contacts (user agent, socket). */
export function intern(s: string): string {
  if (s.length > 200) return s;
  const hit = interned.get(s);
  if (hit !== undefined) return hit;
  if (interned.size > 10000) interned.clear();
  interned.set(s, s);
  return s;
}

export function isPermanent(c: UContact): boolean {
  return c.expires === 0 || (c.flags & FL_PERMANENT) !== 0;
}

/** Is the contact still valid at `now` (unix seconds)? */
export function isValid(c: UContact, now: number): boolean {
  return isPermanent(c) || c.expires > now;
}

/** Seconds left, as the 200 OK and ul_show_contact print them (never below 0). */
export function remaining(c: UContact, now: number, uptime = 0): number {
  if (isPermanent(c)) return PERMANENT_SHOWN - Math.floor(uptime);
  return Math.max(0, Math.round(c.expires - now));
}

/**
 * The order lookup() uses: highest q first (unspecified q ranks below any explicit
 * one, as SER's Q_UNSPECIFIED does), then the most recently modified; with
 * `descTimeOrder` only the modification time counts (SER's desc_time_order).
 */
export function sortContacts(list: UContact[], descTimeOrder = false): UContact[] {
  return list.sort((a, b) => {
    if (!descTimeOrder && a.q !== b.q) return b.q - a.q;
    return b.lastModified - a.lastModified;
  });
}

/**
 * A stored contact. The store copies what it is given into one of these, so every stored
 * contact has the same shape, whole-second expiry (a small integer, as SER's time_t) and
 * strings that do not pin the message they came from. The link to the AOR's next contact
 * is private: spreading or serialising a Binding gives the UContact fields only.
 * (Exported only as the UContact type.)
 */
class Binding {
  /** the contact URI as registered */
  uri: string;
  /** absolute expiry, unix seconds; 0 for a permanent contact (FL_PERMANENT) */
  expires: number;
  /** thousandths, Q_UNSPECIFIED when the REGISTER gave none */
  q: number;
  callId: string;
  cseq: number;
  userAgent: string;
  /** source address of the REGISTER for NATed phones (sip:ip:port), when known */
  received: string | undefined;
  /** RFC 3327 Path of the REGISTER, when one was given */
  path: string | undefined;
  /** the local socket the REGISTER came in on, "udp:1.2.3.4:5060" */
  socket: string | undefined;
  /** FL_NAT, FL_PERMANENT, … */
  flags: number;
  /** when the binding was last written, unix milliseconds */
  lastModified: number;
  #next: Binding | undefined = undefined;

  constructor(c: UContact) {
    this.uri = detach(c.uri);
    // 0 stays 0 (permanent); otherwise the nearest whole second
    this.expires = Math.round(c.expires);
    this.q = c.q;
    this.callId = detach(c.callId);
    this.cseq = c.cseq;
    this.userAgent = c.userAgent;
    this.received = detach(c.received);
    this.path = detach(c.path);
    this.socket = c.socket;
    this.flags = c.flags;
    this.lastModified = c.lastModified;
  }

  /**
   * A re-registration of the same URI: the stored object takes the new values, so a
   * refresh leaves nothing new behind for the GC (strings are copied only when they change).
   */
  update(c: UContact): void {
    this.expires = Math.round(c.expires);
    this.q = c.q;
    if (c.callId !== this.callId) this.callId = detach(c.callId);
    this.cseq = c.cseq;
    this.userAgent = c.userAgent;
    if (c.received !== this.received) this.received = detach(c.received);
    if (c.path !== this.path) this.path = detach(c.path);
    this.socket = c.socket;
    this.flags = c.flags;
    this.lastModified = c.lastModified;
  }

  static next(b: Binding): Binding | undefined {
    return b.#next;
  }

  static link(b: Binding, next: Binding | undefined): void {
    b.#next = next;
  }
}

/** One location table. */
export class UDomain {
  /** AOR → its first contact (the others follow through Binding.next) */
  private readonly records = new Map<string, Binding>();
  /** contacts removed by expiry since start (SER's "Expired" column) */
  expired = 0;
  /** contacts in memory */
  contactCount = 0;
  /** AOR → contact URIs changed in memory and not yet in the database */
  readonly dirty = new Map<string, Set<string>>();
  /** the database rows were loaded (memory modes 1 and 2) */
  loaded = false;
  /** the database table was found or created */
  tableReady = false;

  constructor(readonly name: string) {}

  /** registered AORs (SER's "users") */
  get size(): number {
    return this.records.size;
  }

  /** Has the AOR any contact in memory (expired ones included until the sweep)? */
  has(aor: string): boolean {
    return this.records.has(aor);
  }

  /** The AORs in memory. */
  aors(): IterableIterator<string> {
    return this.records.keys();
  }

  /** Every contact of an AOR in memory, expired ones included, in storage order. */
  all(aor: string): UContact[] {
    const out: UContact[] = [];
    for (let b = this.records.get(aor); b !== undefined; b = Binding.next(b)) out.push(b);
    return out;
  }

  /** The contact of an AOR with exactly this URI. */
  find(aor: string, uri: string): UContact | undefined {
    for (let b = this.records.get(aor); b !== undefined; b = Binding.next(b)) if (b.uri === uri) return b;
    return undefined;
  }

  /** The valid contacts of an AOR, in lookup order. */
  valid(aor: string, now: number, descTimeOrder = false): UContact[] {
    const out: UContact[] = [];
    for (let b = this.records.get(aor); b !== undefined; b = Binding.next(b))
      if (isValid(b, now)) out.push(b);
    return out.length > 1 ? sortContacts(out, descTimeOrder) : out;
  }

  markDirty(aor: string, uri: string): void {
    let s = this.dirty.get(aor);
    if (!s) this.dirty.set(aor, (s = new Set()));
    s.add(uri);
  }

  /** Adds the contact, or updates the stored one with the same URI (the store keeps its own copy). */
  put(aor: string, c: UContact): void {
    const head = this.records.get(aor);
    if (head === undefined) {
      this.records.set(detach(aor), new Binding(c));
      this.contactCount++;
      return;
    }
    let last = head;
    for (let b: Binding | undefined = head; b !== undefined; b = Binding.next(b)) {
      if (b === c) return;
      if (b.uri === c.uri) {
        b.update(c);
        return;
      }
      last = b;
    }
    Binding.link(last, new Binding(c));
    this.contactCount++;
  }

  /** Removes one contact; true when it was there. */
  remove(aor: string, uri: string): boolean {
    let prev: Binding | undefined;
    for (let b = this.records.get(aor); b !== undefined; prev = b, b = Binding.next(b)) {
      if (b.uri !== uri) continue;
      const next = Binding.next(b);
      if (prev !== undefined) Binding.link(prev, next);
      else if (next !== undefined) this.records.set(aor, next);
      else this.records.delete(aor);
      this.contactCount--;
      return true;
    }
    return false;
  }

  /** Removes every contact of an AOR; returns their URIs. */
  removeAll(aor: string): string[] {
    const uris: string[] = [];
    for (let b = this.records.get(aor); b !== undefined; b = Binding.next(b)) uris.push(b.uri);
    this.records.delete(aor);
    this.contactCount -= uris.length;
    return uris;
  }

  /**
   * Drops the contacts that expired by `now`; `onExpired` hears each (to delete it
   * from the database). Returns how many were dropped.
   */
  sweep(now: number, onExpired?: (aor: string, c: UContact) => void): number {
    let n = 0;
    for (const [aor, head] of this.records) {
      let first: Binding | undefined;
      let last: Binding | undefined;
      for (let b: Binding | undefined = head; b !== undefined; ) {
        const next = Binding.next(b);
        if (isValid(b, now)) {
          if (last === undefined) first = b;
          else Binding.link(last, b);
          last = b;
        } else {
          n++;
          onExpired?.(aor, b);
        }
        b = next;
      }
      if (last !== undefined) Binding.link(last, undefined);
      // deleting or setting the current key while iterating a Map is allowed
      if (first === undefined) this.records.delete(aor);
      else if (first !== head) this.records.set(aor, first);
    }
    this.contactCount -= n;
    this.expired += n;
    return n;
  }
}
