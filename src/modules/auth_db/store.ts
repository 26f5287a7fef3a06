/**
 * The subscriber lookup of auth_db with a short-lived cache. Every REGISTER and INVITE of a
 * busy proxy asks for the same few rows again and again; a few seconds of cache takes that
 * load off the database. It never serves a stale password: serctl add/passwd/rm flush it
 * through the FIFO (auth_db_flush), and a response that fails against a cached row is
 * checked again against a fresh one before the request is refused.
 */
import { BoundedMap } from '../../core/bounded-map.js';
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
}

interface Entry {
  row: SubscriberRow | null;
  atMs: number;
}

export class SubscriberStore {
  private readonly cache: BoundedMap<string, Entry>;
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
  ) {
    this.cache = new BoundedMap(Math.max(1, o.cacheMax));
  }

  private key(table: string, user: string, domain: string): string {
    return `${table}\n${user}\n${this.o.useDomain ? domain.toLowerCase() : ''}`;
  }

  /** the cached row (null: known not to exist), or undefined when not cached or too old */
  cached(table: string, user: string, domain: string): SubscriberRow | null | undefined {
    if (this.o.cacheMs <= 0) return undefined;
    const k = this.key(table, user, domain);
    const e = this.cache.get(k);
    if (e === undefined) return undefined;
    if (this.nowMs() - e.atMs >= this.o.cacheMs) {
      this.cache.delete(k);
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
      // the newest entry; past cacheMax the oldest goes
      this.cache.set(this.key(table, user, domain), { row, atMs: this.nowMs() });
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
    this.cache.delete(this.key(table, user, domain));
  }

  /** forgets every cached row (all of them, or those of one user) */
  flush(user?: string): number {
    if (user === undefined) {
      const n = this.cache.size;
      this.cache.clear();
      return n;
    }
    let n = 0;
    const at = user.indexOf('@');
    const name = at < 0 ? user : user.slice(0, at);
    for (const k of [...this.cache.keys()]) {
      const [, u] = k.split('\n');
      if (u === name) {
        this.cache.delete(k);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.cache.size;
  }
}
