/**
 * The subscriber lookup of auth_db with a short-lived cache. Every REGISTER and INVITE of a
 * busy proxy asks for the same few rows again and again; a few seconds of cache takes that
 * load off the database. It never serves a stale password: serctl add/passwd/rm flush it
 * through the FIFO (auth_db_flush), and a response that fails against a cached row is
 * checked again against a fresh one before the request is refused.
 */
import { BoundedMap } from '../../core/bounded-map.js';
import { detach } from '../../sip/util.js';
import { buildSelect, type Db, type DbParam, isDbError, type Row } from '../../db/index.js';

export interface StoreOptions {
  userColumn: string;
  domainColumn: string;
  passwordColumn: string;
  passwordColumn2: string;
  rpidColumn: string;
  useDomain: boolean;
  /** how long a row is reused, ms; 0 disables the cache */
  cacheMs: number;
  /** most rows kept */
  cacheMax: number;
}

export interface SubscriberRow {
  password: string;
  password2: string;
  rpid: string | undefined;
  /** calculate_ha1: the last HA1 computed from this row, and for which credentials */
  ha1Memo?: { algorithm: string; username: string; realm: string; ha1: string };
}

interface Entry {
  row: SubscriberRow | null;
  atMs: number;
}

export class SubscriberStore {
  /**
   * Per table, keyed by the user name alone (or "user\ndomain" with use_domain): looked up
   * by the slice of the request itself, no concatenated key to flatten and hash per request.
   */
  private readonly caches = new Map<string, BoundedMap<string, Entry>>();
  /** the SELECT per table (and column count), built once: the statement never changes */
  private readonly selects = new Map<string, string>();
  hits = 0;
  misses = 0;

  constructor(
    readonly db: Db,
    readonly o: StoreOptions,
    private readonly nowMs: () => number,
    /** told once when the rpid column turns out not to exist */
    private readonly onNoRpid?: (why: string) => void,
  ) {}

  private key(user: string, domain: string): string {
    return this.o.useDomain ? `${user}\n${domain.toLowerCase()}` : user;
  }

  private tableCache(table: string): BoundedMap<string, Entry> {
    let c = this.caches.get(table);
    if (c === undefined) {
      c = new BoundedMap(Math.max(1, this.o.cacheMax));
      this.caches.set(table, c);
    }
    return c;
  }

  /** the cached row (null: known not to exist), or undefined when not cached or too old */
  cached(table: string, user: string, domain: string): SubscriberRow | null | undefined {
    if (this.o.cacheMs <= 0) return undefined;
    const cache = this.caches.get(table);
    if (cache === undefined) return undefined;
    const k = this.key(user, domain);
    const e = cache.get(k);
    if (e === undefined) return undefined;
    if (this.nowMs() - e.atMs >= this.o.cacheMs) {
      cache.delete(k);
      return undefined;
    }
    this.hits++;
    return e.row;
  }

  /** reads the row from the database (and caches it); rejects with the DbError */
  async fetch(table: string, user: string, domain: string): Promise<SubscriberRow | null> {
    this.misses++;
    const o = this.o;
    const columns = [o.passwordColumn, o.passwordColumn2];
    if (o.rpidColumn) columns.push(o.rpidColumn);
    let r: Row | undefined;
    try {
      r = await this.selectRow(table, columns, user, domain);
    } catch (e) {
      // tables of other layouts (Kamailio's subscriber) have no rpid column: do without it
      if (!o.rpidColumn || !isDbError(e) || !e.message.includes(o.rpidColumn) || !this.onNoRpid) throw e;
      r = await this.selectRow(table, columns.slice(0, 2), user, domain);
      this.onNoRpid(`table '${table}' has no column '${o.rpidColumn}': Remote-Party-ID is not loaded`);
      o.rpidColumn = '';
    }
    const row: SubscriberRow | null = r
      ? {
          password: String(r[o.passwordColumn] ?? ''),
          password2: String(r[o.passwordColumn2] ?? ''),
          rpid: o.rpidColumn && r[o.rpidColumn] != null ? String(r[o.rpidColumn]) : undefined,
        }
      : null;
    if (o.cacheMs > 0) {
      // the newest entry; past cacheMax the oldest goes. A copied key: the user name is a
      // slice of the request and would keep its whole text
      this.tableCache(table).set(detach(this.key(user, domain)), { row, atMs: this.nowMs() });
    }
    return row;
  }

  private async selectRow(
    table: string,
    cols: string[],
    user: string,
    domain: string,
  ): Promise<Row | undefined> {
    const o = this.o;
    const k = `${cols.length}\n${table}`;
    let sql = this.selects.get(k);
    if (sql === undefined) {
      const where: Record<string, DbParam> = { [o.userColumn]: '' };
      if (o.useDomain) where[o.domainColumn] = '';
      sql = buildSelect(this.db.backend, table, { columns: [...new Set(cols)], where, limit: 1 }).sql;
      this.selects.set(k, sql);
    }
    // the placeholders in the order of `where` above
    return (await this.db.query(sql, o.useDomain ? [user, domain] : [user])).rows[0];
  }

  invalidate(table: string, user: string, domain: string): void {
    this.caches.get(table)?.delete(this.key(user, domain));
  }

  /** forgets every cached row (all of them, or those of one user) */
  flush(user?: string): number {
    if (user === undefined) {
      const n = this.size;
      this.caches.clear();
      return n;
    }
    let n = 0;
    const at = user.indexOf('@');
    const name = at < 0 ? user : user.slice(0, at);
    for (const cache of this.caches.values()) {
      for (const k of [...cache.keys()]) {
        const nl = k.indexOf('\n');
        if ((nl < 0 ? k : k.slice(0, nl)) === name) {
          cache.delete(k);
          n++;
        }
      }
    }
    return n;
  }

  get size(): number {
    let n = 0;
    for (const c of this.caches.values()) n += c.size;
    return n;
  }
}
