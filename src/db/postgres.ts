/**
 * PostgreSQL through pg (SER's postgres module; db_url postgres:// or postgresql://).
 * Sessions run with TimeZone=UTC; TIMESTAMP values are UTC Dates, BIGINT and NUMERIC
 * come back as numbers.
 */
import pg from 'pg';
import type { OpenOptions, QueryResult, Row } from './api.js';
import type { NormParam, RunOptions } from './base.js';
import { DbError } from './errors.js';
import { ServerDb } from './server.js';
import { parseDateTime } from './sql.js';
import type { ServerDbUrl } from './url.js';

const OID_INT8 = 20;
const OID_NUMERIC = 1700;
const OID_DATE = 1082;
const OID_TIMESTAMP = 1114;

const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (v: string) => unknown {
    if (format === undefined || format === 'text') {
      if (oid === OID_INT8 || oid === OID_NUMERIC) return (v) => Number(v);
      if (oid === OID_TIMESTAMP) return (v) => parseDateTime(v);
      if (oid === OID_DATE) return (v) => v;
    }
    return pg.types.getTypeParser(oid, format ?? 'text') as (v: string) => unknown;
  },
};

interface PgErr {
  code?: string;
  message?: string;
}

const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

export class PostgresDb extends ServerDb<pg.PoolClient> {
  readonly backend = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly guarded = new WeakSet<pg.PoolClient>();

  constructor(u: ServerDbUrl, opts: OpenOptions) {
    super(u.masked, opts);
    const queryTimeout = opts.queryTimeoutMs ?? 10000;
    this.pool = new pg.Pool({
      host: u.host,
      port: u.port,
      user: u.user,
      password: u.password,
      database: u.database,
      max: opts.poolSize ?? 5,
      idleTimeoutMillis: opts.idleTimeoutMs ?? 30000,
      connectionTimeoutMillis: Math.max(this.connectTimeoutMs, 0),
      // the server stops a statement we gave up on, too
      ...(queryTimeout > 0 ? { statement_timeout: queryTimeout } : {}),
      options: '-c TimeZone=UTC',
      application_name: 'ser',
      keepAlive: true,
      types: typeParsers,
    });
    // an idle pooled client whose server connection dies is reported here; unhandled it would crash the process
    this.pool.on('error', (e: PgErr) => this.warn(`postgres: idle pooled connection failed: ${e.message}`));
    this.pool.on('connect', (client) => this.guard(client));
  }

  private guard(client: pg.PoolClient): void {
    if (this.guarded.has(client)) return;
    this.guarded.add(client);
    // a checked-out client (e.g. between statements of a transaction) reports a lost connection with 'error'
    client.on('error', (e: PgErr) => this.warn(`postgres: connection failed: ${e.message}`));
  }

  protected async acquireRaw(): Promise<pg.PoolClient> {
    const c = await this.pool.connect();
    this.guard(c);
    return c;
  }

  protected release(conn: pg.PoolClient, destroy: boolean): void {
    try {
      conn.release(destroy ? true : undefined);
    } catch {
      // released twice (late connection after a timeout and an error): nothing to do
    }
  }

  protected async runOn(
    conn: pg.PoolClient,
    sql: string,
    params: NormParam[],
    opts?: RunOptions,
  ): Promise<QueryResult<Row>> {
    const r = await conn.query({ text: sql, values: params as unknown[] });
    const rows = (r.rows ?? []) as Row[];
    if (opts?.returningId) {
      const id = rows[0]?.[opts.returningId];
      return {
        rows: [],
        affectedRows: r.rowCount ?? 0,
        ...(id === undefined || id === null ? {} : { insertId: Number(id) }),
      };
    }
    const writes =
      r.command === 'INSERT' || r.command === 'UPDATE' || r.command === 'DELETE' || r.command === 'MERGE';
    return { rows, affectedRows: writes ? (r.rowCount ?? 0) : 0 };
  }

  protected toDbError(e: unknown, sql?: string): DbError {
    if (e instanceof DbError) return e;
    const err = (e ?? {}) as PgErr;
    const code = err.code ?? '';
    const msg = err.message || String(e);
    let kind: DbError['code'] = 'query';
    if (code === '57014') kind = 'timeout';
    else if (
      /timeout exceeded when trying to connect|Connection terminated due to connection timeout/i.test(msg)
    )
      kind = 'timeout';
    else if (
      code.startsWith('08') ||
      code.startsWith('28') ||
      code === '3D000' ||
      /^57P0[1-3]$/.test(code) ||
      code === '53300'
    )
      kind = 'connect';
    else if (
      NET_CODES.has(code) ||
      /Connection terminated|not queryable|Client was closed|ended the pool|Cannot use a pool after calling end/i.test(
        msg,
      )
    )
      kind = 'connect';
    else if (code.startsWith('23')) kind = 'constraint';
    return new DbError(kind, `postgres ${this.url}: ${msg}`, {
      backend: 'postgres',
      url: this.url,
      sql,
      driverCode: code || undefined,
      cause: e,
    });
  }

  protected isRetryable(e: DbError): boolean {
    if (e.code !== 'connect') return false;
    const code = String(e.driverCode ?? '');
    if (
      code.startsWith('28') ||
      code === '3D000' ||
      code === 'ECONNREFUSED' ||
      code === 'ENOTFOUND' ||
      code === '53300'
    )
      return false;
    return !/Cannot use a pool after calling end|ended the pool/i.test(e.message);
  }

  protected endPool(): Promise<void> {
    return this.pool.end();
  }
}
