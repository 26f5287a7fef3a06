/**
 * Every failure of the database layer is a DbError: a rejected promise, never an
 * uncaught exception or an 'error' event. Script-facing code turns it into a false
 * (negative) return with `isDbError`.
 */

/** What went wrong, independent of the backend. */
export type DbErrorCode =
  /** the db_url is malformed or names an unsupported backend */
  | 'url'
  /** the server cannot be reached, refused the login, or the connection was lost */
  | 'connect'
  /** connecting or the query took longer than the configured timeout */
  | 'timeout'
  /** a unique / primary-key / not-null constraint was violated */
  | 'constraint'
  /** SQLite: the database file stayed locked for longer than the busy timeout */
  | 'busy'
  /** any other error reported by the server for a statement (syntax, unknown table, …) */
  | 'query'
  /** the Db (or the transaction) was already closed / finished */
  | 'closed'
  /** a SER table is missing or its row in `version` differs from what the code expects */
  | 'schema'
  /** a wrong call into this API: placeholder count, empty identifier, missing key columns, … */
  | 'usage';

export type Backend = 'sqlite' | 'mysql' | 'postgres';

export interface DbErrorInfo {
  backend?: Backend;
  /** the db_url with its password masked */
  url?: string;
  sql?: string;
  /** the driver's or server's own code (e.g. 'ER_NO_SUCH_TABLE', '42P01', 'SQLITE_BUSY') */
  driverCode?: string | number;
  cause?: unknown;
}

export class DbError extends Error {
  override name = 'DbError';
  readonly code: DbErrorCode;
  readonly backend: Backend | undefined;
  readonly url: string | undefined;
  readonly sql: string | undefined;
  readonly driverCode: string | number | undefined;

  constructor(code: DbErrorCode, message: string, info: DbErrorInfo = {}) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.code = code;
    this.backend = info.backend;
    this.url = info.url;
    this.sql = info.sql;
    this.driverCode = info.driverCode;
  }
}

export function isDbError(e: unknown): e is DbError {
  return e instanceof DbError;
}

/**
 * Runs a database operation for a script function: resolves to its value, or to
 * `fallback` (SER's negative return) when it failed with a DbError. Other errors
 * (programming errors) are re-thrown.
 */
export async function orFalse<T, F = false>(
  p: Promise<T>,
  fallback: F = false as F,
  onError?: (e: DbError) => void,
): Promise<T | F> {
  try {
    return await p;
  } catch (e) {
    if (isDbError(e)) {
      onError?.(e);
      return fallback;
    }
    throw e;
  }
}
