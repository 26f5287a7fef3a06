/**
 * usrloc: the location service. Location domains in memory (db_mode 0), written
 * through to the database before the reply (1), written back every timer_interval
 * (2), or kept in the database only so that several servers can share it (3).
 *
 * Failures of the database never take the server down: in modes 1 and 2 the
 * change stays in memory, is logged, and is retried by the timer; in mode 3 the
 * operation rejects and the script function returns a negative value.
 */
import type { CoreApi } from '../../core/api.js';
import { L_ERR } from '../../core/log.js';
import type { TimerHandle } from '../../core/timer.js';
import { createTable, type Db, isDbError, openDb, type Queryable, type Row } from '../../db/index.js';
import {
  FL_PERMANENT,
  intern,
  isValid,
  Q_UNSPECIFIED,
  sortContacts,
  type UContact,
  UDomain,
} from './store.js';

export type DbMode = 0 | 1 | 2 | 3;

export interface UsrlocOptions {
  dbUrl: string;
  dbMode: DbMode;
  /** seconds between timer runs (expiry sweep, write-back, retries) */
  timerInterval: number;
  useDomain: boolean;
  /**
   * Contacts memory may hold, all tables together (modes 0–2); a change that would add
   * more is refused. 0 or absent: no limit.
   */
  maxContacts?: number;
  /** wall clock in unix milliseconds (tests move it) */
  now?: () => number;
  /** for tests: an already open database instead of dbUrl */
  db?: Db;
}

/** A change to the bindings of one AOR. */
export interface Change {
  /** contacts to add or replace (by URI) */
  readonly put: readonly UContact[];
  /** contact URIs to remove */
  readonly del: readonly string[];
}

const KEYS = ['username', 'domain', 'contact'] as const;
/** DB expires of a permanent contact (SER's "never": the epoch) */
const NEVER = new Date(0);

export class Usrloc {
  readonly domains = new Map<string, UDomain>();
  /** tables the script names (save/lookup): they exist from the start */
  readonly declared = new Set<string>();
  readonly mode: DbMode;
  db: Db | undefined;
  private opening = new Map<string, Promise<UDomain>>();
  private timer: TimerHandle | undefined;
  private running = false;
  private stopped = false;
  private locks = new Map<string, Promise<void>>();
  readonly startedAt: number;
  nowMs: () => number;
  /** DB failures seen (for ul_stats and tests) */
  dbErrors = 0;
  /** new contacts refused because memory held maxContacts */
  refused = 0;
  private readonly maxContacts: number;
  /**
   * Modes 1/2: after a failure the database is left alone until this time (ms) and
   * REGISTERs are answered from memory at once; the timer retries.
   */
  dbDownUntil = 0;
  /** AORs compare case-sensitively (registrar's case_sensitive sets it) */
  caseSensitive = false;

  constructor(
    readonly core: CoreApi,
    readonly opts: UsrlocOptions,
  ) {
    this.mode = opts.dbMode;
    this.maxContacts = opts.maxContacts && opts.maxContacts > 0 ? opts.maxContacts : Number.POSITIVE_INFINITY;
    this.nowMs = opts.now ?? Date.now;
    this.startedAt = this.nowMs();
    this.db = opts.db;
  }

  /** An AOR as the tables key it (lower case unless case_sensitive). */
  normalizeAor(aor: string): string {
    return this.caseSensitive ? aor : aor.toLowerCase();
  }

  /** unix seconds */
  now(): number {
    return this.nowMs() / 1000;
  }

  /** seconds since start (SER printed permanent contacts as 2^30 minus this) */
  uptime(): number {
    return (this.nowMs() - this.startedAt) / 1000;
  }

  // ------------------------------------------------------------------ lifecycle

  async start(tables: Iterable<string>): Promise<void> {
    if (this.mode !== 0 && !this.db) {
      // a malformed URL is a configuration error; an unreachable server is not
      this.db = await openDb(this.opts.dbUrl, {
        connectTimeoutMs: 3000,
        queryTimeoutMs: 10000,
        onWarning: (m) => this.core.log.warn(`WARNING: usrloc: ${m}`),
      });
    }
    for (const t of tables) {
      this.declared.add(t);
      await this.domain(t);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.core.timers.add(this.opts.timerInterval * 1000, () => {
      void this.tick().finally(() => this.schedule());
    });
  }

  /** One timer run: expiry, write-back / retries, loads that failed at start. */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.dbDownUntil = 0;
    try {
      const now = this.now();
      for (const d of this.domains.values()) {
        d.sweep(now);
        if (this.mode === 1 || this.mode === 2) {
          if (!d.loaded) await this.load(d);
          await this.flushDomain(d);
        }
        if (this.mode !== 0) await this.deleteExpiredRows(d, now);
      }
    } finally {
      this.running = false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    if (this.mode === 1 || this.mode === 2) {
      for (const d of this.domains.values()) await this.flushDomain(d);
    }
    if (this.db && !this.opts.db) await this.db.close().catch(() => {});
  }

  // ------------------------------------------------------------------ domains

  /** The domain of that name, created (and loaded from the database) on first use. */
  domain(name: string): Promise<UDomain> {
    const d = this.domains.get(name);
    if (d) return Promise.resolve(d);
    let p = this.opening.get(name);
    if (!p) {
      p = this.openDomain(name).finally(() => this.opening.delete(name));
      this.opening.set(name, p);
    }
    return p;
  }

  /** A domain that exists already (the script names it, or it was used), else undefined. */
  existing(name: string): UDomain | undefined {
    return this.domains.get(name);
  }

  private async openDomain(name: string): Promise<UDomain> {
    const d = new UDomain(name);
    if (this.mode === 1 || this.mode === 2) await this.load(d);
    else if (this.mode === 3) await this.ensureTable(d);
    this.domains.set(name, d);
    return d;
  }

  private async ensureTable(d: UDomain): Promise<boolean> {
    if (d.tableReady || !this.db) return d.tableReady;
    try {
      const tables = await this.db.listTables();
      if (!tables.includes(d.name)) await createTable(this.db, 'location', d.name);
      d.tableReady = true;
    } catch (e) {
      this.dbFailed(`cannot find or create table '${d.name}'`, e);
    }
    return d.tableReady;
  }

  /** Modes 1/2: read the table into memory; what memory has already wins. */
  private async load(d: UDomain): Promise<void> {
    if (!(await this.ensureTable(d)) || !this.db) return;
    let rows: Row[];
    try {
      rows = await this.db.select(d.name);
    } catch (e) {
      this.dbFailed(`cannot load table '${d.name}'`, e);
      return;
    }
    const now = this.now();
    let n = 0;
    for (const r of rows) {
      const { aor, c } = this.fromRow(r);
      if (!isValid(c, now)) continue;
      if (d.find(aor, c.uri) || d.dirty.get(aor)?.has(c.uri)) continue;
      d.put(aor, c);
      n++;
    }
    d.loaded = true;
    this.core.log.info(`usrloc: table '${d.name}': ${n} contact(s) loaded from the database`);
  }

  // ------------------------------------------------------------------ reading

  /**
   * The valid contacts of an AOR from memory, synchronously, when memory holds the table
   * (modes 0–2, once the table is open); undefined otherwise (use `contacts`).
   */
  contactsNow(table: string, aor: string, descTimeOrder = false): UContact[] | undefined {
    if (this.mode === 3) return undefined;
    const d = this.domains.get(table);
    return d ? d.valid(aor, this.now(), descTimeOrder) : undefined;
  }

  /** The valid contacts of an AOR in lookup order. Mode 3 reads the database (rejects on failure). */
  async contacts(table: string, aor: string, descTimeOrder = false): Promise<UContact[]> {
    const d = await this.domain(table);
    if (this.mode !== 3) return d.valid(aor, this.now(), descTimeOrder);
    return sortContacts(await this.readRows(d, aor), descTimeOrder);
  }

  private async readRows(d: UDomain, aor: string): Promise<UContact[]> {
    const db = this.requireDb(d);
    if (!(await this.ensureTable(d))) throw new Error(`table '${d.name}' is not available`);
    const [username, domain] = this.split(aor);
    const rows = await db.select(d.name, { where: { username, domain } });
    const now = this.now();
    const out: UContact[] = [];
    for (const r of rows) {
      const { c } = this.fromRow(r);
      if (isValid(c, now)) out.push(c);
    }
    return out;
  }

  /**
   * Runs `fn` alone for this AOR (mode 3: no other change of the same AOR by this
   * server in between; in memory the work is synchronous anyway).
   */
  async exclusive<T>(table: string, aor: string, fn: () => Promise<T>): Promise<T> {
    if (this.mode !== 3) return fn();
    const key = `${table}\0${aor}`;
    const prev = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const chain = prev.then(() => mine);
    this.locks.set(key, chain);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === chain) this.locks.delete(key);
    }
  }

  // ------------------------------------------------------------------ writing

  /**
   * Applies a change. Memory modes: at once in memory; mode 1 then writes it
   * (a failure is logged, kept dirty and retried by the timer; never rejected);
   * mode 2 marks it for the next write-back. Mode 3: written to the database in
   * one transaction; rejects when that fails.
   */
  async apply(table: string, aor: string, ch: Change): Promise<void> {
    const d = await this.domain(table);
    if (this.mode === 3) {
      const db = this.requireDb(d);
      if (!(await this.ensureTable(d))) throw new Error(`table '${d.name}' is not available`);
      await this.writeRows(db, d, aor, ch.put, ch.del);
      return;
    }
    await this.applyIn(d, table, aor, ch);
  }

  /**
   * `apply` without a promise when memory holds the table: modes 0 and 2 return undefined
   * once memory has the change; mode 1 returns the promise of its database write; with
   * several workers, also the promise that every other worker has the change. Returns
   * false when the table is not open in memory (use `apply`).
   */
  applyNow(table: string, aor: string, ch: Change): Promise<void> | undefined | false {
    if (this.mode === 3) return false;
    const d = this.domains.get(table);
    if (!d) return false;
    return this.applyIn(d, table, aor, ch);
  }

  private applyIn(d: UDomain, table: string, aor: string, ch: Change): Promise<void> | undefined {
    if (ch.put.length > 0) this.admit(d, aor, ch);
    for (const uri of ch.del) d.remove(aor, uri);
    for (const c of ch.put) d.put(aor, c);
    const replicated = this.onChange?.(table, aor, ch);
    if (this.mode === 0) return replicated;
    for (const uri of ch.del) d.markDirty(aor, uri);
    for (const c of ch.put) d.markDirty(aor, c.uri);
    if (this.mode === 1) {
      const written = this.flushKeys(d, aor, [...ch.del, ...ch.put.map((c) => c.uri)]);
      return replicated ? Promise.all([replicated, written]).then(() => undefined) : written;
    }
    return replicated;
  }

  /** Contacts in memory, all tables. */
  contactCount(): number {
    let n = 0;
    for (const d of this.domains.values()) n += d.contactCount;
    return n;
  }

  /**
   * The bound on memory (max_contacts_total): throws, before anything changed, when the change
   * would leave more contacts than allowed. Refreshes and removals always pass, so phones
   * already registered keep working while a flood of new AORs is refused.
   */
  private admit(d: UDomain, aor: string, ch: Change): void {
    if (this.maxContacts === Number.POSITIVE_INFINITY) return;
    const total = this.contactCount();
    if (total + ch.put.length <= this.maxContacts) return;
    let added = 0;
    for (const c of ch.put) if (!d.find(aor, c.uri)) added++;
    for (const uri of ch.del) if (d.find(aor, uri)) added--;
    if (added <= 0 || total + added <= this.maxContacts) return;
    this.refused++;
    // once a minute at most: a flood of new AORs must not flood the log as well
    this.core.log.every(
      60_000,
      L_ERR,
      'usrloc-full',
      `ERROR: usrloc: ${total} contacts in memory, max_contacts_total is ${this.maxContacts}: new contacts are refused`,
    );
    throw new Error(`location memory full (usrloc max_contacts_total ${this.maxContacts})`);
  }

  /**
   * Multi-process model: told of every change applied in memory here (modes 0–2), so the
   * other workers can apply it too (docs/process-model.md).
   */
  onChange: ((table: string, aor: string, ch: Change) => Promise<void> | undefined) | undefined;

  /** A change another worker applied: memory only, that worker writes the database. */
  async applyReplica(table: string, aor: string, ch: Change): Promise<void> {
    if (this.mode === 3) return;
    const d = await this.domain(table);
    for (const uri of ch.del) d.remove(aor, uri);
    for (const c of ch.put) d.put(aor, c);
  }

  /** Every binding in memory as changes, for a restarted worker. */
  snapshot(): { table: string; aor: string; put: UContact[]; del: string[] }[] {
    const out: { table: string; aor: string; put: UContact[]; del: string[] }[] = [];
    for (const d of this.domains.values())
      for (const aor of d.aors()) out.push({ table: d.name, aor, put: d.all(aor), del: [] });
    return out;
  }

  /** Removes every binding of an AOR; returns how many there were. */
  async removeAll(table: string, aor: string): Promise<number> {
    if (this.mode === 3) {
      const d = await this.domain(table);
      const db = this.requireDb(d);
      const [username, domain] = this.split(aor);
      return db.delete(d.name, { username, domain });
    }
    const d = await this.domain(table);
    const uris = d.removeAll(aor);
    if (uris.length > 0) await this.apply(table, aor, { put: [], del: uris });
    return uris.length;
  }

  /** ul_flush: write every pending change now (modes 1, 2). */
  async flush(): Promise<boolean> {
    let ok = true;
    if (this.mode === 1 || this.mode === 2) {
      for (const d of this.domains.values()) ok = (await this.flushDomain(d)) && ok;
    }
    return ok;
  }

  /** Writes the dirty contacts of a domain in one transaction; false when it failed. */
  async flushDomain(d: UDomain): Promise<boolean> {
    if (d.dirty.size === 0 || !this.db) return true;
    if (!(await this.ensureTable(d))) return false;
    const batch = [...d.dirty];
    d.dirty.clear();
    const db = this.db;
    try {
      await db.transaction(async (tx) => {
        for (const [aor, uris] of batch) await this.writeCurrent(tx, d, aor, uris);
      });
      return true;
    } catch (e) {
      // keep them for the next run, unless they changed again meanwhile (then they are in dirty)
      for (const [aor, uris] of batch) for (const u of uris) d.markDirty(aor, u);
      this.dbFailed(`write-back of table '${d.name}' failed (${batch.length} AOR(s) kept for retry)`, e);
      return false;
    }
  }

  /** Mode 1: write the given contacts of one AOR now. */
  private async flushKeys(d: UDomain, aor: string, uris: string[]): Promise<void> {
    // the database failed a moment ago: the change stays dirty for the timer, no waiting
    if (this.nowMs() < this.dbDownUntil) return;
    if (!this.db || !(await this.ensureTable(d))) return;
    const set = new Set(uris);
    const pending = d.dirty.get(aor);
    if (pending) for (const u of set) pending.delete(u);
    if (pending?.size === 0) d.dirty.delete(aor);
    try {
      if (set.size === 1) await this.writeCurrent(this.db, d, aor, set);
      else await this.db.transaction((tx) => this.writeCurrent(tx, d, aor, set));
    } catch (e) {
      for (const u of set) d.markDirty(aor, u);
      this.dbFailed(
        `write-through of '${aor}' to table '${d.name}' failed (kept in memory, retried later)`,
        e,
      );
    }
  }

  /** Makes the rows of these contact URIs match memory: replace if present, delete if gone. */
  private async writeCurrent(q: Queryable, d: UDomain, aor: string, uris: Iterable<string>): Promise<void> {
    const put: UContact[] = [];
    const del: string[] = [];
    for (const u of uris) {
      const c = d.find(aor, u);
      if (c) put.push(c);
      else del.push(u);
    }
    await this.writeRowsOn(q, d, aor, put, del);
  }

  private async writeRows(db: Db, d: UDomain, aor: string, put: readonly UContact[], del: readonly string[]) {
    if (put.length + del.length <= 1) return this.writeRowsOn(db, d, aor, put, del);
    return db.transaction((tx) => this.writeRowsOn(tx, d, aor, put, del));
  }

  private async writeRowsOn(
    q: Queryable,
    d: UDomain,
    aor: string,
    put: readonly UContact[],
    del: readonly string[],
  ) {
    const [username, domain] = this.split(aor);
    for (const uri of del) await q.delete(d.name, { username, domain, contact: uri });
    for (const c of put) await q.replace(d.name, this.toRow(username, domain, c), KEYS);
  }

  private async deleteExpiredRows(d: UDomain, now: number): Promise<void> {
    if (!this.db || !d.tableReady) return;
    try {
      await this.db.delete(d.name, [
        ['expires', '<', new Date(Math.floor(now) * 1000)],
        ['expires', '>', NEVER],
      ]);
    } catch (e) {
      this.dbFailed(`cannot delete expired contacts of table '${d.name}'`, e);
    }
  }

  // ------------------------------------------------------------------ rows

  /** AOR → [username, domain] columns (the domain only with use_domain). */
  split(aor: string): [string, string] {
    if (!this.opts.useDomain) return [aor, ''];
    const at = aor.lastIndexOf('@');
    return at < 0 ? [aor, ''] : [aor.slice(0, at), aor.slice(at + 1)];
  }

  private toRow(
    username: string,
    domain: string,
    c: UContact,
  ): Record<string, string | number | Date | null> {
    const permanent = c.expires === 0;
    return {
      username,
      domain,
      contact: c.uri,
      received: c.received ?? null,
      path: c.path ?? null,
      expires: permanent ? NEVER : new Date(Math.round(c.expires * 1000)),
      q: c.q === Q_UNSPECIFIED ? -1 : c.q / 1000,
      callid: c.callId,
      cseq: c.cseq,
      last_modified: new Date(c.lastModified),
      flags: c.flags | (permanent ? FL_PERMANENT : 0),
      user_agent: c.userAgent,
      socket: c.socket ?? null,
    };
  }

  fromRow(r: Row): { aor: string; c: UContact } {
    const username = String(r.username ?? '');
    const domain = String(r.domain ?? '');
    const aor = this.opts.useDomain && domain !== '' ? `${username}@${domain}` : username;
    const exp = r.expires instanceof Date ? r.expires.getTime() : Date.parse(String(r.expires));
    const flags = Number(r.flags ?? 0);
    const permanent = (flags & FL_PERMANENT) !== 0 || exp <= 0 || Number.isNaN(exp);
    const q = Number(r.q ?? -1);
    const lm =
      r.last_modified instanceof Date ? r.last_modified.getTime() : Date.parse(String(r.last_modified));
    return {
      aor,
      c: {
        uri: String(r.contact),
        expires: permanent ? 0 : exp / 1000,
        q: q < 0 ? Q_UNSPECIFIED : Math.round(q * 1000),
        callId: String(r.callid ?? ''),
        cseq: Number(r.cseq ?? 0),
        userAgent: intern(String(r.user_agent ?? '')),
        received: r.received == null || r.received === '' ? undefined : String(r.received),
        path: r.path == null || r.path === '' ? undefined : String(r.path),
        socket: r.socket == null || r.socket === '' ? undefined : intern(String(r.socket)),
        flags: permanent ? flags | FL_PERMANENT : flags,
        lastModified: Number.isNaN(lm) ? 0 : lm,
      },
    };
  }

  // ------------------------------------------------------------------ errors

  private requireDb(d: UDomain): Db {
    if (!this.db) throw new Error(`usrloc: no database for table '${d.name}'`);
    return this.db;
  }

  private dbFailed(what: string, e: unknown): void {
    this.dbErrors++;
    if (this.mode !== 3) this.dbDownUntil = this.nowMs() + this.opts.timerInterval * 1000;
    const msg = isDbError(e) ? `${e.code}: ${e.message}` : String((e as Error)?.message ?? e);
    this.core.log.err(`ERROR: usrloc: ${what}: ${msg}`);
  }
}
