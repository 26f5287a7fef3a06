/**
 * SQLite through better-sqlite3 (synchronous) behind the async interface. The file is
 * opened in WAL mode with a busy timeout. Statements and transactions are serialised
 * on the one connection, so a transaction's statements never interleave with others.
 * DATETIME columns come back as Dates (stored as UTC text).
 */
import Database from 'better-sqlite3';
import type { Db, OpenOptions, QueryResult, Queryable, Row } from './api.js';
import { BaseQueryable, Mutex, type NormParam, runTransaction } from './base.js';
import { DbError } from './errors.js';
import { listTablesSql } from './schema.js';
import { parseDateTime } from './sql.js';

interface Cached {
  readonly stmt: Database.Statement;
  readonly reader: boolean;
  readonly dateCols: readonly string[];
  readonly isInsert: boolean;
}

const CACHE_MAX = 256;

export function sqliteError(e: unknown, url: string, sql?: string): DbError {
  if (e instanceof DbError) return e;
  const code = (e as { code?: string }).code;
  const msg = e instanceof Error ? e.message : String(e);
  let kind: DbError['code'] = 'query';
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code?.startsWith('SQLITE_BUSY_')) kind = 'busy';
  else if (code?.startsWith('SQLITE_CONSTRAINT')) kind = 'constraint';
  else if (code?.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_NOTADB' || code === 'SQLITE_PERM')
    kind = 'connect';
  else if (/directory does not exist|unable to open/i.test(msg)) kind = 'connect';
  else if (e instanceof TypeError && /not open/.test(msg)) kind = 'closed';
  return new DbError(kind, `sqlite: ${msg}`, { backend: 'sqlite', url, sql, driverCode: code, cause: e });
}

export class SqliteDb extends BaseQueryable implements Db {
  readonly backend = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly cache = new Map<string, Cached>();
  private readonly mutex = new Mutex();
  private isClosed = false;

  constructor(
    readonly url: string,
    readonly path: string,
    opts: OpenOptions,
  ) {
    super();
    try {
      this.db = new Database(path, { timeout: opts.busyTimeoutMs ?? 5000 });
      if (path !== ':memory:') this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
    } catch (e) {
      throw sqliteError(e, url);
    }
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** journal mode in effect ('wal' for files) */
  journalMode(): string {
    return String(this.db.pragma('journal_mode', { simple: true }));
  }

  private prepare(sql: string): Cached {
    let c = this.cache.get(sql);
    if (c) {
      this.cache.delete(sql);
      this.cache.set(sql, c);
      return c;
    }
    const stmt = this.db.prepare(sql);
    const reader = stmt.reader;
    const dateCols = reader
      ? stmt
          .columns()
          .filter((col) => col.type !== null && /^(DATETIME|TIMESTAMP|DATE)$/i.test(col.type))
          .map((col) => col.name)
      : [];
    c = { stmt, reader, dateCols, isInsert: /^\s*(INSERT|REPLACE)\b/i.test(sql) };
    this.cache.set(sql, c);
    if (this.cache.size > CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
    return c;
  }

  /** one statement, synchronously, on the connection (the caller holds the lock) */
  private runNow(sql: string, params: NormParam[]): QueryResult<Row> {
    if (this.isClosed)
      throw new DbError('closed', 'the database is closed', { backend: 'sqlite', url: this.url, sql });
    try {
      const c = this.prepare(sql);
      if (c.reader) {
        const rows = c.stmt.all(...params) as Row[];
        if (c.dateCols.length) {
          for (const r of rows) {
            for (const k of c.dateCols) {
              const v = r[k];
              if (typeof v === 'string') r[k] = parseDateTime(v);
            }
          }
        }
        return { rows, affectedRows: 0 };
      }
      const info = c.stmt.run(...params);
      return c.isInsert
        ? { rows: [], affectedRows: info.changes, insertId: Number(info.lastInsertRowid) }
        : { rows: [], affectedRows: info.changes };
    } catch (e) {
      throw sqliteError(e, this.url, sql);
    }
  }

  protected async run(sql: string, params: NormParam[]): Promise<QueryResult<Row>> {
    const release = await this.mutex.lock();
    try {
      return this.runNow(sql, params);
    } finally {
      release();
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const release = await this.mutex.lock();
    try {
      return await runTransaction('sqlite', async (sql, params) => this.runNow(sql, params), fn);
    } finally {
      release();
    }
  }

  listTables(): Promise<string[]> {
    return listTablesSql(this);
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    const release = await this.mutex.lock();
    try {
      this.isClosed = true;
      this.cache.clear();
      this.db.close();
    } finally {
      release();
    }
  }
}
