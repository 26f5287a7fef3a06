/**
 * MariaDB / MySQL through mysql2 (SER's mysql module; db_url mysql:// or sql://).
 * Sessions run with time_zone '+00:00' and utf8mb4; DATETIME values are UTC Dates.
 */
import mysql from 'mysql2';
import type { OpenOptions, QueryResult, Row } from './api.js';
import type { NormParam } from './base.js';
import { DbError } from './errors.js';
import { ServerDb } from './server.js';
import type { ServerDbUrl } from './url.js';

/** server errors that mean "the connection is not usable" (numbers from the MySQL/MariaDB manuals) */
const CONNECT_ERRNOS = new Set([
  1040, // ER_CON_COUNT_ERROR
  1042, // ER_BAD_HOST_ERROR
  1043, // ER_HANDSHAKE_ERROR
  1044, // ER_DBACCESS_DENIED_ERROR
  1045, // ER_ACCESS_DENIED_ERROR
  1049, // ER_BAD_DB_ERROR
  1053, // ER_SERVER_SHUTDOWN
  1077, // ER_NORMAL_SHUTDOWN
  1152, // ER_ABORTING_CONNECTION
  1927, // ER_CONNECTION_KILLED (MariaDB)
  2006, // CR_SERVER_GONE_ERROR
  2013, // CR_SERVER_LOST
  4031, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
]);
/** …and of those, the ones a new connection will not fix */
const NO_RETRY_ERRNOS = new Set([1044, 1045, 1049]);
const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CONNECTION_KILLED',
]);
const CONSTRAINT_ERRNOS = new Set([1048, 1062, 1364, 1451, 1452, 1557, 1586, 3819, 4025]);
const TIMEOUT_ERRNOS = new Set([1969, 3024]); // ER_STATEMENT_TIMEOUT (MariaDB), ER_QUERY_TIMEOUT (MySQL)

interface MyErr {
  code?: string;
  errno?: number;
  fatal?: boolean;
  message?: string;
}

export class MysqlDb extends ServerDb<mysql.PoolConnection> {
  readonly backend = 'mysql' as const;
  private readonly pool: mysql.Pool;

  constructor(u: ServerDbUrl, opts: OpenOptions) {
    super(u.masked, opts);
    this.pool = mysql.createPool({
      host: u.host,
      port: u.port,
      user: u.user,
      password: u.password,
      database: u.database,
      connectionLimit: opts.poolSize ?? 5,
      maxIdle: opts.poolSize ?? 5,
      idleTimeout: opts.idleTimeoutMs ?? 30000,
      connectTimeout: this.connectTimeoutMs > 0 ? this.connectTimeoutMs : 10000,
      waitForConnections: true,
      queueLimit: 0,
      enableKeepAlive: true,
      keepAliveInitialDelay: 10000,
      timezone: 'Z',
      dateStrings: false,
      decimalNumbers: true,
      charset: 'utf8mb4_general_ci',
      multipleStatements: false,
    });
    this.pool.on('connection', (conn) => {
      // a pooled connection that dies while idle emits 'error'; without a listener it would crash the process
      conn.on('error', (e: MyErr) => this.warn(`mysql: pooled connection failed: ${e.message ?? String(e)}`));
      conn.query("SET time_zone = '+00:00'", (e: MyErr | null) => {
        if (e) this.warn(`mysql: SET time_zone failed: ${e.message}`);
      });
    });
    (this.pool as unknown as NodeJS.EventEmitter).on('error', (e: MyErr) =>
      this.warn(`mysql: pool: ${e.message}`),
    );
  }

  protected acquireRaw(): Promise<mysql.PoolConnection> {
    return new Promise((resolve, reject) => {
      this.pool.getConnection((err, conn) => (err ? reject(err) : resolve(conn)));
    });
  }

  protected release(conn: mysql.PoolConnection, destroy: boolean): void {
    try {
      if (destroy) conn.destroy();
      else conn.release();
    } catch {
      // already gone
    }
  }

  protected runOn(conn: mysql.PoolConnection, sql: string, params: NormParam[]): Promise<QueryResult<Row>> {
    return new Promise((resolve, reject) => {
      conn.query({ sql, values: params }, (err: MyErr | null, result: unknown) => {
        if (err) return reject(err);
        if (Array.isArray(result)) return resolve({ rows: result as Row[], affectedRows: 0 });
        const h = result as mysql.ResultSetHeader;
        const insertId = h.insertId ? Number(h.insertId) : undefined;
        resolve(
          insertId === undefined
            ? { rows: [], affectedRows: h.affectedRows }
            : { rows: [], affectedRows: h.affectedRows, insertId },
        );
      });
    });
  }

  protected toDbError(e: unknown, sql?: string): DbError {
    if (e instanceof DbError) return e;
    const err = (e ?? {}) as MyErr;
    const msg = err.message || String(e);
    let kind: DbError['code'] = 'query';
    if (err.errno !== undefined && TIMEOUT_ERRNOS.has(err.errno)) kind = 'timeout';
    else if (err.code === 'PROTOCOL_SEQUENCE_TIMEOUT') kind = 'timeout';
    else if (err.code === 'ETIMEDOUT') kind = 'timeout';
    else if (
      err.fatal ||
      (err.errno !== undefined && CONNECT_ERRNOS.has(err.errno)) ||
      (err.code !== undefined && NET_CODES.has(err.code)) ||
      /closed state|Pool is closed/.test(msg)
    ) {
      kind = 'connect';
    } else if (err.errno !== undefined && CONSTRAINT_ERRNOS.has(err.errno)) kind = 'constraint';
    return new DbError(kind, `mysql ${this.url}: ${msg}`, {
      backend: 'mysql',
      url: this.url,
      sql,
      driverCode: err.code ?? err.errno,
      cause: e,
    });
  }

  protected isRetryable(e: DbError): boolean {
    if (e.code !== 'connect') return false;
    const cause = (e.cause ?? {}) as MyErr;
    if (cause.errno !== undefined && NO_RETRY_ERRNOS.has(cause.errno)) return false;
    return (
      cause.code !== 'ENOTFOUND' &&
      cause.code !== 'ECONNREFUSED' &&
      !/Pool is closed/.test(cause.message ?? '')
    );
  }

  protected endPool(): Promise<void> {
    return new Promise((resolve) => {
      this.pool.end(() => resolve());
    });
  }
}
