/**
 * The database layer: `openDb(db_url)` gives a Db with the same async interface on
 * SQLite (embedded, the default), MariaDB/MySQL and PostgreSQL. See docs/database.md.
 */
import { isAbsolute, resolve } from 'node:path';
import type { Db, OpenOptions } from './api.js';
import { parseDbUrl } from './url.js';

export type * from './api.js';
export { DbError, isDbError, orFalse } from './errors.js';
export type { Backend, DbErrorCode } from './errors.js';
export { maskDbUrl, parseDbUrl, DEFAULT_PORTS } from './url.js';
export type { DbUrl, ServerDbUrl, SqliteDbUrl } from './url.js';
export { buildSelect, quoteIdent, translatePlaceholders } from './sql.js';
export {
  SER_TABLES,
  checkTableVersion,
  createSchema,
  createTable,
  createTableSql,
  dropSchema,
  schemaStatus,
  tableDef,
  tableVersion,
} from './schema.js';
export type { ColumnDef, IndexDef, SchemaStatus, TableDef, TableStatus } from './schema.js';

/** the db_url used when a module is given none: an SQLite file in the working directory */
export const DEFAULT_DB_URL = 'sqlite://ser.db';

/**
 * Opens a database by SER db_url. Rejects with DbError ('url' for a malformed URL,
 * 'connect' when an SQLite file cannot be opened). MariaDB/PostgreSQL pools connect
 * lazily: the first statement connects (use `ping()` to check at start-up), so the
 * server can start while the database is down and carries on once it is back.
 */
export async function openDb(url: string, opts: OpenOptions = {}): Promise<Db> {
  const u = parseDbUrl(url);
  // drivers load on first use: a server that never opens MariaDB or PostgreSQL does not carry
  // mysql2 and pg in memory (several MB of RSS per process)
  switch (u.backend) {
    case 'sqlite': {
      const path =
        u.path === ':memory:' || isAbsolute(u.path) ? u.path : resolve(opts.baseDir ?? process.cwd(), u.path);
      const { SqliteDb } = await import('./sqlite.js');
      return new SqliteDb(u.masked, path, opts);
    }
    case 'mysql': {
      const { MysqlDb } = await import('./mysql.js');
      return new MysqlDb(u, opts);
    }
    case 'postgres': {
      const { PostgresDb } = await import('./postgres.js');
      return new PostgresDb(u, opts);
    }
  }
}
