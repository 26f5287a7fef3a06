/**
 * The part of Queryable every backend shares: the select/insert/update/delete/replace
 * helpers, placeholder checking, parameter normalisation and transactions with
 * savepoints. A backend only supplies `run` (one statement on some connection) and
 * `transaction`.
 */
import type { DbParam, QueryResult, Queryable, Row, SelectOptions, Where, WriteResult } from './api.js';
import { type Backend, DbError, isDbError } from './errors.js';
import { tableKeyColumns, tableSerialColumn } from './schema.js';
import {
  buildCount,
  buildDelete,
  buildInsert,
  buildReplace,
  buildSelect,
  buildUpdate,
  normalizeParams,
  quoteIdent,
  translatePlaceholders,
} from './sql.js';

export type NormParam = string | number | bigint | Buffer | null;

export interface RunOptions {
  /** PostgreSQL: the statement ends in RETURNING <serial column>; report it as insertId */
  readonly returningId?: string;
}

export abstract class BaseQueryable implements Queryable {
  abstract readonly backend: Backend;

  /** Runs one statement whose placeholders are already translated and parameters normalised. */
  protected abstract run(sql: string, params: NormParam[], opts?: RunOptions): Promise<QueryResult<Row>>;
  abstract transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;

  quoteIdent(name: string): string {
    return quoteIdent(this.backend, name);
  }

  protected async prepared(
    sql: string,
    params: readonly DbParam[] | undefined,
    opts?: RunOptions,
  ): Promise<QueryResult<Row>> {
    if (typeof sql !== 'string' || sql.trim() === '')
      throw new DbError('usage', 'empty SQL statement', { backend: this.backend });
    const norm = normalizeParams(params);
    const text = translatePlaceholders(sql, this.backend, norm.length);
    return this.run(text, norm, opts);
  }

  async query<R = Row>(sql: string, params?: readonly DbParam[]): Promise<QueryResult<R>> {
    return (await this.prepared(sql, params)) as QueryResult<R>;
  }

  async exec(sql: string, params?: readonly DbParam[]): Promise<WriteResult> {
    const r = await this.prepared(sql, params);
    return r.insertId === undefined
      ? { affectedRows: r.affectedRows }
      : { affectedRows: r.affectedRows, insertId: r.insertId };
  }

  async select<R = Row>(table: string, opts?: SelectOptions): Promise<R[]> {
    const b = buildSelect(this.backend, table, opts);
    return (await this.prepared(b.sql, b.params)).rows as R[];
  }

  async selectOne<R = Row>(table: string, opts?: SelectOptions): Promise<R | undefined> {
    const rows = await this.select<R>(table, { ...opts, limit: 1 });
    return rows[0];
  }

  async count(table: string, where?: Where): Promise<number> {
    const b = buildCount(this.backend, table, where);
    const r = await this.prepared(b.sql, b.params);
    return Number(r.rows[0]?.n ?? 0);
  }

  async insert(table: string, row: Readonly<Record<string, DbParam>>): Promise<WriteResult> {
    const serial = this.backend === 'postgres' ? tableSerialColumn(table) : undefined;
    const b = buildInsert(this.backend, table, row, serial);
    const r = await this.prepared(b.sql, b.params, serial ? { returningId: serial } : undefined);
    return r.insertId === undefined
      ? { affectedRows: r.affectedRows }
      : { affectedRows: r.affectedRows, insertId: r.insertId };
  }

  async update(table: string, where: Where, set: Readonly<Record<string, DbParam>>): Promise<number> {
    const b = buildUpdate(this.backend, table, where, set);
    return (await this.prepared(b.sql, b.params)).affectedRows;
  }

  async delete(table: string, where?: Where): Promise<number> {
    const b = buildDelete(this.backend, table, where);
    return (await this.prepared(b.sql, b.params)).affectedRows;
  }

  async replace(
    table: string,
    row: Readonly<Record<string, DbParam>>,
    keys?: readonly string[],
  ): Promise<WriteResult> {
    const k = keys ?? tableKeyColumns(table);
    if (!k || k.length === 0) {
      throw new DbError('usage', `replace into "${table}": key columns unknown; pass them`, {
        backend: this.backend,
      });
    }
    const b = buildReplace(this.backend, table, row, k);
    await this.prepared(b.sql, b.params);
    // MySQL counts an updated row twice and an unchanged one as 0, PostgreSQL/SQLite DO NOTHING
    // as 0: report 1 on every backend, meaning "the row is there now"
    return { affectedRows: 1 };
  }
}

/** A statement runner bound to one connection (a transaction's). */
export type Runner = (sql: string, params: NormParam[], opts?: RunOptions) => Promise<QueryResult<Row>>;

/** The handle a transaction callback receives; nested transactions become savepoints. */
export class TxQueryable extends BaseQueryable {
  done = false;
  constructor(
    readonly backend: Backend,
    private readonly runner: Runner,
    private readonly depth: number,
  ) {
    super();
  }

  protected run(sql: string, params: NormParam[], opts?: RunOptions): Promise<QueryResult<Row>> {
    if (this.done) {
      return Promise.reject(
        new DbError('closed', 'the transaction is already finished', { backend: this.backend, sql }),
      );
    }
    return this.runner(sql, params, opts);
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    if (this.done)
      return Promise.reject(
        new DbError('closed', 'the transaction is already finished', { backend: this.backend }),
      );
    return runTransaction(this.backend, this.runner, fn, this.depth + 1);
  }
}

/** BEGIN / SAVEPOINT, run fn, COMMIT / RELEASE, or ROLLBACK on any rejection. */
export async function runTransaction<T>(
  backend: Backend,
  runner: Runner,
  fn: (tx: Queryable) => Promise<T>,
  depth = 0,
): Promise<T> {
  const sp = `ser_sp${depth}`;
  await runner(depth === 0 ? (backend === 'sqlite' ? 'BEGIN IMMEDIATE' : 'BEGIN') : `SAVEPOINT ${sp}`, []);
  const tx = new TxQueryable(backend, runner, depth);
  let result: T;
  try {
    result = await fn(tx);
  } catch (e) {
    tx.done = true;
    try {
      await runner(depth === 0 ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${sp}`, []);
      if (depth > 0) await runner(`RELEASE SAVEPOINT ${sp}`, []);
    } catch {
      // the connection is gone: the server rolls back by itself
    }
    throw e;
  }
  tx.done = true;
  try {
    await runner(depth === 0 ? 'COMMIT' : `RELEASE SAVEPOINT ${sp}`, []);
  } catch (e) {
    try {
      await runner(depth === 0 ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${sp}`, []);
    } catch {
      // ignore: the commit error is what matters
    }
    throw isDbError(e) ? e : new DbError('query', `COMMIT failed: ${String(e)}`, { backend, cause: e });
  }
  return result;
}

/**
 * Resolves or rejects like `p`, but rejects with `onTimeout()` after `ms` (0 = never).
 * A value that arrives late is handed to `onLate` (to release a connection).
 */
export function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  onTimeout: () => Error,
  onLate?: (v: T) => void,
): Promise<T> {
  if (!(ms > 0)) return p;
  return new Promise<T>((resolve, reject) => {
    let finished = false;
    const timer = setTimeout(() => {
      finished = true;
      reject(onTimeout());
    }, ms);
    p.then(
      (v) => {
        if (finished) onLate?.(v);
        else {
          finished = true;
          clearTimeout(timer);
          resolve(v);
        }
      },
      (e) => {
        if (!finished) {
          finished = true;
          clearTimeout(timer);
          reject(e);
        }
      },
    );
  });
}

/** A FIFO lock (SQLite: one statement or transaction at a time on the connection). */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => {
      release = r;
    });
    const prev = this.tail;
    this.tail = prev.then(() => next);
    return prev.then(() => release);
  }
}
