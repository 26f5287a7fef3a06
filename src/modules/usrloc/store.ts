/**
 * The in-memory user location store: location domains ("tables") holding records
 * keyed by address-of-record, each with its contacts (bindings).
 *
 * Kept small on purpose: a contact is one plain object with numbers and strings
 * (user agents and sockets are interned, most phones of a site share a few values);
 * a record is an array of contacts; a domain is a Map from AOR to record.
 * Expiry is by absolute time: a contact whose `expires` has passed is invisible at
 * once and removed by the periodic sweep.
 */

/** SER's contact flags (ul FL_*): stored with the contact, in the `flags` column. */
export const FL_NAT = 1;
export const FL_PERMANENT = 128;

/** q in thousandths (SER's qvalue_t); this value: no q was given */
export const Q_UNSPECIFIED = -1;

/** seconds SER shows as the remaining time of a permanent contact, minus the uptime */
export const PERMANENT_SHOWN = 1 << 30;

export interface UContact {
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
}

export interface URecord {
  readonly aor: string;
  contacts: UContact[];
}

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

/**
 * A copy of a string that does not keep its source alive: values taken from a parsed
 * message are slices of the whole message text, and a stored contact must not pin it.
 */
export function detach(s: string): string;
export function detach(s: string | undefined): string | undefined;
export function detach(s: string | undefined): string | undefined {
  if (s === undefined || s.length < 13) return s;
  return Buffer.from(s, 'utf8').toString('utf8');
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

/** One location table. */
export class UDomain {
  readonly records = new Map<string, URecord>();
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

  get(aor: string): URecord | undefined {
    return this.records.get(aor);
  }

  /** The valid contacts of an AOR, in lookup order. */
  valid(aor: string, now: number, descTimeOrder = false): UContact[] {
    const r = this.records.get(aor);
    if (!r) return [];
    const out: UContact[] = [];
    for (const c of r.contacts) if (isValid(c, now)) out.push(c);
    return sortContacts(out, descTimeOrder);
  }

  markDirty(aor: string, uri: string): void {
    let s = this.dirty.get(aor);
    if (!s) this.dirty.set(aor, (s = new Set()));
    s.add(uri);
  }

  /** Adds or replaces the contact with the same URI. */
  put(aor: string, c: UContact): void {
    c.uri = detach(c.uri);
    c.callId = detach(c.callId);
    c.received = detach(c.received);
    c.path = detach(c.path);
    const r = this.records.get(aor);
    if (!r) {
      // an array literal of one: push() onto [] would reserve room for 17
      aor = detach(aor);
      this.records.set(aor, { aor, contacts: [c] });
      this.contactCount++;
      return;
    }
    const i = r.contacts.findIndex((x) => x.uri === c.uri);
    if (i >= 0) r.contacts[i] = c;
    else {
      r.contacts.push(c);
      this.contactCount++;
    }
  }

  /** Removes one contact; true when it was there. */
  remove(aor: string, uri: string): boolean {
    const r = this.records.get(aor);
    if (!r) return false;
    const i = r.contacts.findIndex((x) => x.uri === uri);
    if (i < 0) return false;
    r.contacts.splice(i, 1);
    this.contactCount--;
    if (r.contacts.length === 0) this.records.delete(aor);
    return true;
  }

  /** Removes every contact of an AOR; returns their URIs. */
  removeAll(aor: string): string[] {
    const r = this.records.get(aor);
    if (!r) return [];
    this.records.delete(aor);
    this.contactCount -= r.contacts.length;
    return r.contacts.map((c) => c.uri);
  }

  /**
   * Drops the contacts that expired by `now`; `onExpired` hears each (to delete it
   * from the database). Returns how many were dropped.
   */
  sweep(now: number, onExpired?: (aor: string, c: UContact) => void): number {
    let n = 0;
    for (const [aor, r] of this.records) {
      let keep = 0;
      const list = r.contacts;
      for (let i = 0; i < list.length; i++) {
        const c = list[i];
        if (isValid(c, now)) list[keep++] = c;
        else {
          n++;
          onExpired?.(aor, c);
        }
      }
      list.length = keep;
      if (keep === 0) this.records.delete(aor);
    }
    this.contactCount -= n;
    this.expired += n;
    return n;
  }
}
