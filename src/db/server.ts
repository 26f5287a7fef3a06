/**
 * What the MariaDB/MySQL and PostgreSQL backends share: a connection pool, a time
 * limit on getting a connection and on each statement, one retry on a fresh
 * connection when the pooled one turned out to be dead (server restarted, the
 * connection was killed), and transactions on one dedicated connection.
 */
import type { Db, OpenOptions, QueryResult, Queryable, Row } from './api.js';
import { BaseQueryable, type NormParam, type RunOptions, runTransaction, withTimeout } from './base.js';
import { type Backend, DbError } from './errors.js';
import { listTablesSql } from './schema.js';

export abstract class ServerDb<C> extends BaseQueryable implements Db {
  abstract override readonly backend: Backend;
  protected isClosed = false;
  protected readonly connectTimeoutMs: number;
  protected readonly queryTimeoutMs: number;
  protected readonly warn: (m: string) => void;

  constructor(
    readonly url: string,
    opts: OpenOptions,
  ) {
    super();
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.queryTimeoutMs = opts.queryTimeoutMs ?? 10000;
    this.warn = opts.onWarning ?? (() => {});
  }

  /** get a pooled connection (driver promise; may never settle) */
  protected abstract acquireRaw(): Promise<C>;
  /** give it back; destroy = close it instead (broken, or a statement timed out on it) */
  protected abstract release(conn: C, destroy: boolean): void;
  /** run one statement on the connection */
  protected abstract runOn(
    conn: C,
    sql: string,
    params: NormParam[],
    opts?: RunOptions,
  ): Promise<QueryResult<Row>>;
  /** driver error → DbError */
  protected abstract toDbError(e: unknown, sql?: string): DbError;
  /** the connection is unusable after this error, and a new connection may succeed */
  protected abstract isRetryable(e: DbError): boolean;
  protected abstract endPool(): Promise<void>;

  get closed(): boolean {
    return this.isClosed;
  }

  protected closedError(sql?: string): DbError {
    return new DbError('closed', 'the database handle is closed', {
      backend: this.backend,
      url: this.url,
      sql,
    });
  }

  protected async acquire(): Promise<C> {
    if (this.isClosed) throw this.closedError();
    try {
      return await withTimeout(
        this.acquireRaw(),
        this.connectTimeoutMs,
        () =>
          new DbError(
            'timeout',
            `${this.backend}: no connection to ${this.url} within ${this.connectTimeoutMs} ms`,
            {
              backend: this.backend,
              url: this.url,
            },
          ),
        (late) => this.release(late, false),
      );
    } catch (e) {
      throw this.toDbError(e);
    }
  }

  /** run on a connection with the statement time limit; destroys the connection when it failed at connection level */
  protected async runTimed(
    conn: C,
    sql: string,
    params: NormParam[],
    opts?: RunOptions,
  ): Promise<QueryResult<Row>> {
    try {
      return await withTimeout(
        this.runOn(conn, sql, params, opts),
        this.queryTimeoutMs,
        () =>
          new DbError('timeout', `${this.backend}: statement took longer than ${this.queryTimeoutMs} ms`, {
            backend: this.backend,
            url: this.url,
            sql,
          }),
      );
    } catch (e) {
      throw this.toDbError(e, sql);
    }
  }

  protected async run(sql: string, params: NormParam[], opts?: RunOptions): Promise<QueryResult<Row>> {
    for (let attempt = 0; ; attempt++) {
      const conn = await this.acquire();
      try {
        const r = await this.runTimed(conn, sql, params, opts);
        this.release(conn, false);
        return r;
      } catch (e) {
        const err = e as DbError;
        const broken = err.code === 'timeout' || err.code === 'connect';
        this.release(conn, broken);
        if (attempt === 0 && this.isRetryable(err) && !this.isClosed) {
          this.warn(`${this.backend}: ${err.message}; retrying on a new connection`);
          continue;
        }
        throw err;
      }
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    let broken = false;
    try {
      return await runTransaction(
        this.backend,
        async (sql, params, opts) => {
          try {
            return await this.runTimed(conn, sql, params, opts);
          } catch (e) {
            const err = e as DbError;
            if (err.code === 'timeout' || err.code === 'connect') broken = true;
            throw err;
          }
        },
        fn,
      );
    } finally {
      this.release(conn, broken);
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
    this.isClosed = true;
    try {
      await this.endPool();
    } catch (e) {
      this.warn(`${this.backend}: closing the pool: ${String(e)}`);
    }
  }
}
