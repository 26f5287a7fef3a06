/**
 * The SER database schema for SQLite, MariaDB/MySQL and PostgreSQL.
 *
 * Sources: the table list of the SER admin guide (003 §6.6, "Used Database Tables")
 * and `show tables` of the MySQL set-up (001); the columns named there and in the
 * seeds' examples (serctl acl output: grp user/grp/last_modified; the accounting
 * SQL: acc from_uri/to_uri/sip_callid/sip_method/time; subscriber phplib_id,
 * username, password, first_name, email_address, ha1; usr_preferences attributes).
 * Everything else follows SER 0.9's ser_mysql.sh layout as we know it; tables the
 * seeds list without columns (reserved, phonebook, pending, event, active_sessions,
 * config, silo, domain, trusted) are SER 0.9's layout entirely.
 *
 * Differences from SER 0.9, on purpose:
 * - the user column is `username` everywhere (SER ≤ 0.8.x called it `user`);
 * - location/aliases have a `path` column (version 7; 0.9 was 6), user_agent is 255 wide;
 * - acc/missed_calls have an `id` key and sip_cseq, sip_reason, src_ip, src_port,
 *   ruri_user, ruri_domain, digest_username, digest_realm (version 3; 0.9 was 2);
 *   caller_UUID/callee_UUID are spelled lower case;
 * - no zero dates ('0000-00-00'): datetime columns default to CURRENT_TIMESTAMP (UTC);
 * - subscriber/pending password is 64 wide (0.9: 25), phplib_id is NULL-able and unique.
 *
 * EXTRA_TABLES are ours (acc's `cdr`): known for their layout, created on first use.
 */
import type { Db, Queryable } from './api.js';
import { type Backend, DbError } from './errors.js';
import { quoteIdent } from './sql.js';

export type ColumnType = 'varchar' | 'text' | 'int' | 'bigint' | 'float' | 'datetime' | 'blob' | 'serial';

export interface ColumnDef {
  readonly name: string;
  readonly type: ColumnType;
  /** varchar width */
  readonly length?: number;
  /** NULL allowed (default: NOT NULL) */
  readonly nullable?: boolean;
  /** a literal default, or the keyword CURRENT_TIMESTAMP */
  readonly default?: string | number | { readonly sql: 'CURRENT_TIMESTAMP' };
}

export interface IndexDef {
  /** suffix; the index is named <table>_<name> */
  readonly name: string;
  readonly columns: readonly string[];
  readonly unique?: boolean;
}

export interface TableDef {
  readonly name: string;
  /** the row this table gets in `version` */
  readonly version: number;
  readonly columns: readonly ColumnDef[];
  readonly primaryKey?: readonly string[];
  readonly indexes?: readonly IndexDef[];
  readonly comment: string;
}

const NOW = { sql: 'CURRENT_TIMESTAMP' } as const;
const vc = (name: string, length: number, def: string | null = ''): ColumnDef =>
  def === null
    ? { name, type: 'varchar', length, nullable: true }
    : { name, type: 'varchar', length, default: def };
const int = (name: string, def = 0): ColumnDef => ({ name, type: 'int', default: def });
const dt = (name: string): ColumnDef => ({ name, type: 'datetime', default: NOW });
const serial = (name: string): ColumnDef => ({ name, type: 'serial' });

/** subscriber and pending share this layout (SER 0.9). */
const subscriberColumns: ColumnDef[] = [
  vc('phplib_id', 32, null),
  vc('username', 64),
  vc('domain', 128),
  vc('password', 64),
  vc('first_name', 25),
  vc('last_name', 45),
  vc('phone', 15),
  vc('email_address', 50),
  dt('datetime_created'),
  dt('datetime_modified'),
  vc('confirmation', 64),
  vc('flag', 1, 'o'),
  vc('sendnotification', 50),
  vc('greeting', 50),
  vc('ha1', 128),
  vc('ha1b', 128),
  vc('allow_find', 1, '0'),
  vc('timezone', 128, null),
  vc('rpid', 128, null),
  { name: 'domn', type: 'int', nullable: true },
  vc('uuid', 64, null),
];

/** location and aliases share this layout ("same layout as location"). */
const locationColumns: ColumnDef[] = [
  vc('username', 64),
  vc('domain', 128),
  vc('contact', 255),
  vc('received', 255, null),
  vc('path', 255, null),
  { name: 'expires', type: 'datetime', default: '1970-01-01 00:00:00' },
  { name: 'q', type: 'float', default: 1.0 },
  vc('callid', 255, 'Default-Call-ID'),
  int('cseq', 42),
  dt('last_modified'),
  int('replicate'),
  int('state'),
  int('flags'),
  vc('user_agent', 255),
  vc('socket', 128, null),
];

/** acc and missed_calls share this layout. */
const accColumns: ColumnDef[] = [
  serial('id'),
  vc('sip_from', 255),
  vc('sip_to', 255),
  vc('sip_status', 128),
  vc('sip_reason', 128),
  vc('sip_method', 16),
  vc('i_uri', 255),
  vc('o_uri', 255),
  vc('from_uri', 255),
  vc('to_uri', 255),
  vc('sip_callid', 255),
  int('sip_cseq'),
  vc('username', 64),
  vc('domain', 128),
  vc('fromtag', 128),
  vc('totag', 128),
  vc('ruri_user', 64),
  vc('ruri_domain', 128),
  vc('src_ip', 50),
  int('src_port'),
  vc('digest_username', 64),
  vc('digest_realm', 128),
  dt('time'),
  dt('timestamp'),
  vc('caller_uuid', 64),
  vc('callee_uuid', 64),
  vc('caller_deleted', 1, '0'),
  vc('callee_deleted', 1, '0'),
];

export const SER_TABLES: readonly TableDef[] = [
  {
    name: 'version',
    version: 0,
    comment: 'version number of each table definition (SER: table_name, table_version)',
    columns: [vc('table_name', 64), int('table_version')],
    primaryKey: ['table_name'],
  },
  {
    name: 'subscriber',
    version: 5,
    comment: 'users: credentials (password or ha1/ha1b) and profile (auth_db, serweb)',
    columns: subscriberColumns,
    primaryKey: ['username', 'domain'],
    indexes: [
      { name: 'phplib_id', columns: ['phplib_id'], unique: true },
      { name: 'username', columns: ['username'] },
    ],
  },
  {
    name: 'location',
    version: 7,
    comment: 'user contacts (usrloc/registrar)',
    columns: locationColumns,
    primaryKey: ['username', 'domain', 'contact'],
  },
  {
    name: 'aliases',
    version: 7,
    comment: 'alternative user names (lookup("aliases")), same layout as location',
    columns: locationColumns,
    primaryKey: ['username', 'domain', 'contact'],
  },
  {
    name: 'grp',
    version: 2,
    comment: 'group membership (group: is_user_in)',
    columns: [vc('username', 64), vc('domain', 128), vc('grp', 50), dt('last_modified')],
    primaryKey: ['username', 'domain', 'grp'],
  },
  {
    name: 'acc',
    version: 3,
    comment: 'accounted transactions (acc with db_flag)',
    columns: accColumns,
    primaryKey: ['id'],
    indexes: [
      { name: 'callid', columns: ['sip_callid'] },
      { name: 'user', columns: ['username', 'domain'] },
      { name: 'time', columns: ['time'] },
    ],
  },
  {
    name: 'missed_calls',
    version: 3,
    comment: 'missed calls (acc with log_missed_flag), shown by serweb',
    columns: accColumns,
    primaryKey: ['id'],
    indexes: [
      { name: 'callid', columns: ['sip_callid'] },
      { name: 'user', columns: ['username', 'domain'] },
    ],
  },
  {
    name: 'domain',
    version: 1,
    comment: 'served domains (domain: is_uri_host_local, is_from_local) - SER 0.9 layout',
    columns: [vc('domain', 128), dt('last_modified')],
    primaryKey: ['domain'],
  },
  {
    name: 'trusted',
    version: 1,
    comment: 'trusted peers (permissions: allow_trusted) - SER 0.9 layout',
    columns: [vc('src_ip', 39), vc('proto', 4), vc('from_pattern', 64)],
    primaryKey: ['src_ip', 'proto', 'from_pattern'],
  },
  {
    name: 'usr_preferences',
    version: 2,
    comment: 'per-user attributes (avpops: avp_db_load/avp_db_store), e.g. fw_voicemail',
    columns: [
      vc('uuid', 64),
      vc('username', 100),
      vc('domain', 128),
      vc('attribute', 32),
      int('type'),
      vc('value', 128),
      dt('modified'),
    ],
    primaryKey: ['username', 'domain', 'attribute', 'value'],
    indexes: [{ name: 'uuid', columns: ['uuid', 'attribute'] }],
  },
  {
    name: 'silo',
    version: 3,
    comment: 'undelivered instant messages (msilo) - SER 0.9 layout',
    columns: [
      serial('mid'),
      vc('src_addr', 255),
      vc('dst_addr', 255),
      vc('r_uri', 255),
      vc('username', 64),
      vc('domain', 128),
      int('inc_time'),
      int('exp_time'),
      vc('ctype', 32, 'text/plain'),
      { name: 'body', type: 'blob' },
    ],
    primaryKey: ['mid'],
    indexes: [{ name: 'user', columns: ['username', 'domain'] }],
  },
  {
    name: 'reserved',
    version: 1,
    comment: 'reserved user names serweb refuses - SER 0.9 layout',
    columns: [vc('username', 64)],
    primaryKey: ['username'],
  },
  {
    name: 'phonebook',
    version: 1,
    comment: "users' personal phonebooks (serweb) - SER 0.9 layout",
    columns: [
      serial('id'),
      vc('username', 64),
      vc('domain', 128),
      vc('fname', 32),
      vc('lname', 32),
      vc('sip_uri', 128),
    ],
    primaryKey: ['id'],
    indexes: [{ name: 'user', columns: ['username', 'domain'] }],
  },
  {
    name: 'pending',
    version: 4,
    comment: 'unconfirmed subscriptions (serweb), same layout as subscriber',
    columns: subscriberColumns,
    primaryKey: ['username', 'domain'],
    indexes: [
      { name: 'phplib_id', columns: ['phplib_id'], unique: true },
      { name: 'username', columns: ['username'] },
    ],
  },
  {
    name: 'active_sessions',
    version: 1,
    comment: 'serweb web sessions - SER 0.9 layout',
    columns: [
      vc('sid', 32),
      vc('name', 32),
      { name: 'val', type: 'text', nullable: true },
      vc('changed', 14),
    ],
    primaryKey: ['name', 'sid'],
    indexes: [{ name: 'changed', columns: ['changed'] }],
  },
  {
    name: 'event',
    version: 1,
    comment: 'extra service subscriptions ("currently unused") - SER 0.9 layout',
    columns: [serial('id'), vc('username', 64), vc('domain', 128), vc('uri', 255), vc('description', 128)],
    primaryKey: ['id'],
  },
  {
    name: 'config',
    version: 1,
    comment: 'attribute-value pairs ("currently not used") - SER 0.9 layout',
    columns: [vc('attribute', 32), vc('value', 128), vc('username', 64), vc('domain', 128), dt('modified')],
    indexes: [{ name: 'user', columns: ['username', 'domain', 'attribute'] }],
  },
];

/**
 * Tables of ours, not SER's: created by the module that fills them when first used, not by
 * `serctl db create`, and listed by `serctl db show` under the other tables.
 */
export const EXTRA_TABLES: readonly TableDef[] = [
  {
    name: 'cdr',
    version: 1,
    comment: 'calls correlated by acc from INVITE, ACK and BYE (not in SER: seed 000 did it by hand)',
    columns: [
      serial('id'),
      vc('sip_callid', 255),
      vc('from_tag', 128),
      vc('to_tag', 128),
      vc('caller', 255),
      vc('callee', 255),
      vc('caller_user', 64),
      vc('caller_domain', 128),
      vc('callee_user', 64),
      vc('callee_domain', 128),
      vc('i_uri', 255),
      vc('src_ip', 50),
      vc('digest_username', 64),
      vc('digest_realm', 128),
      { name: 'setup_time', type: 'datetime', default: NOW },
      { name: 'start_time', type: 'datetime', nullable: true },
      { name: 'end_time', type: 'datetime', nullable: true },
      int('duration'),
      { name: 'duration_ms', type: 'bigint', default: 0 },
      int('sip_code'),
      vc('sip_reason', 128),
      vc('disposition', 16),
      vc('hangup', 16),
    ],
    primaryKey: ['id'],
    indexes: [
      { name: 'callid', columns: ['sip_callid'] },
      { name: 'caller', columns: ['caller_user', 'caller_domain'] },
      { name: 'callee', columns: ['callee_user', 'callee_domain'] },
      { name: 'start', columns: ['setup_time'] },
    ],
  },
];

const BY_NAME = new Map([...SER_TABLES, ...EXTRA_TABLES].map((t) => [t.name, t]));
const SER_NAMES = new Set(SER_TABLES.map((t) => t.name));
/** extra table names created with a SER layout (per-domain tables: save("mydomain1")) */
const ALIASES = new Map<string, TableDef>();

/** The layout of a SER table, or of a table created from one with createTable(db, layout, name). */
export function tableDef(name: string): TableDef | undefined {
  return BY_NAME.get(name) ?? ALIASES.get(name);
}

/** Primary key of a known table (replace() uses it when no keys are given). */
export function tableKeyColumns(name: string): readonly string[] | undefined {
  return tableDef(name)?.primaryKey;
}

/** The serial (auto-increment) column of a known table. */
export function tableSerialColumn(name: string): string | undefined {
  return tableDef(name)?.columns.find((c) => c.type === 'serial')?.name;
}

/** Makes `name` use the layout of the SER table `layout` (per-domain tables). */
export function registerTableLayout(name: string, layout: string): TableDef {
  const base = BY_NAME.get(layout);
  if (!base || layout === 'version') throw new DbError('usage', `unknown SER table layout "${layout}"`);
  const def: TableDef = { ...base, name };
  if (name !== layout) ALIASES.set(name, def);
  return def;
}

function columnType(b: Backend, c: ColumnDef): string {
  switch (c.type) {
    case 'varchar':
      return `VARCHAR(${c.length ?? 255})`;
    case 'text':
      return 'TEXT';
    case 'int':
      return b === 'mysql' ? 'INT' : 'INTEGER';
    case 'bigint':
      return 'BIGINT';
    case 'float':
      return b === 'postgres' ? 'DOUBLE PRECISION' : b === 'mysql' ? 'DOUBLE' : 'REAL';
    case 'datetime':
      return b === 'postgres' ? 'TIMESTAMP' : 'DATETIME';
    case 'blob':
      return b === 'postgres' ? 'BYTEA' : b === 'mysql' ? 'MEDIUMBLOB' : 'BLOB';
    case 'serial':
      return b === 'postgres'
        ? 'SERIAL'
        : b === 'mysql'
          ? 'INT UNSIGNED NOT NULL AUTO_INCREMENT'
          : 'INTEGER PRIMARY KEY AUTOINCREMENT';
  }
}

function columnSql(b: Backend, c: ColumnDef): string {
  let s = `${quoteIdent(b, c.name)} ${columnType(b, c)}`;
  if (c.type === 'serial') return b === 'postgres' ? `${s} NOT NULL` : s;
  s += c.nullable ? ' NULL' : ' NOT NULL';
  if (c.default !== undefined) {
    const d = c.default;
    s +=
      ' DEFAULT ' +
      (typeof d === 'object' ? d.sql : typeof d === 'number' ? String(d) : `'${d.replaceAll("'", "''")}'`);
  }
  return s;
}

/** The CREATE TABLE (and CREATE INDEX) statements of a table for a backend. */
export function createTableSql(b: Backend, t: TableDef): string[] {
  const q = (n: string) => quoteIdent(b, n);
  const parts = t.columns.map((c) => columnSql(b, c));
  const sqliteInlinePk =
    b === 'sqlite' &&
    t.primaryKey?.length === 1 &&
    t.columns.some((c) => c.type === 'serial' && c.name === t.primaryKey?.[0]);
  if (t.primaryKey?.length && !sqliteInlinePk) parts.push(`PRIMARY KEY (${t.primaryKey.map(q).join(', ')})`);
  const out: string[] = [];
  const idxName = (i: IndexDef) => `${t.name}_${i.name}`.replaceAll('.', '_');
  if (b === 'mysql') {
    for (const i of t.indexes ?? [])
      parts.push(`${i.unique ? 'UNIQUE ' : ''}INDEX ${q(idxName(i))} (${i.columns.map(q).join(', ')})`);
  }
  out.push(
    `CREATE TABLE IF NOT EXISTS ${q(t.name)} (\n  ${parts.join(',\n  ')}\n)` +
      (b === 'mysql' ? ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4' : ''),
  );
  if (b !== 'mysql') {
    for (const i of t.indexes ?? []) {
      out.push(
        `CREATE ${i.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${q(idxName(i))} ON ${q(t.name)} (${i.columns.map(q).join(', ')})`,
      );
    }
  }
  return out;
}

function pick(names: readonly string[] | undefined): TableDef[] {
  if (!names) return [...SER_TABLES];
  return names.map((n) => {
    const t = tableDef(n);
    if (!t)
      throw new DbError(
        'usage',
        `"${n}" is not a SER table (known: ${SER_TABLES.map((x) => x.name).join(', ')})`,
      );
    return t;
  });
}

async function setVersion(db: Queryable, table: string, version: number): Promise<void> {
  await db.replace('version', { table_name: table, table_version: version }, ['table_name']);
}

/**
 * Creates the SER tables that do not exist yet (all of them, or `tables`) and their
 * rows in `version`. Idempotent. Backs `serctl db create`.
 */
export async function createSchema(
  db: Queryable,
  opts: { tables?: readonly string[] } = {},
): Promise<string[]> {
  const tables = pick(opts.tables);
  const version = BY_NAME.get('version')!;
  return underSchemaLock(db, async (q) => {
    for (const s of createTableSql(q.backend, version)) await q.exec(s);
    const done: string[] = [];
    for (const t of tables) {
      if (t.name === 'version') continue;
      for (const s of createTableSql(q.backend, t)) await q.exec(s);
      await setVersion(q, t.name, t.version);
      done.push(t.name);
    }
    return done;
  });
}

/**
 * Creates one table named `name` with the layout of the SER table `layout`
 * (SER's per-domain tables: "create separate subscriber and location database table
 * for each domain served"), with its `version` row. Needs the version table.
 */
export async function createTable(db: Queryable, layout: string, name = layout): Promise<void> {
  const t = registerTableLayout(name, layout);
  const version = BY_NAME.get('version')!;
  await underSchemaLock(db, async (q) => {
    for (const s of createTableSql(q.backend, version)) await q.exec(s);
    for (const s of createTableSql(q.backend, t)) await q.exec(s);
    await setVersion(q, name, t.version);
  });
}

/** any fixed number: the key of PostgreSQL's advisory lock around schema creation */
const SCHEMA_LOCK_KEY = 0x5e7_5c4e;

/**
 * PostgreSQL fails all but one of several CREATE TABLE IF NOT EXISTS of the same table that
 * run at once (a duplicate key in pg_type): the workers of one server starting together, or
 * two servers on one database, would each find the table missing and race. There the
 * statements run in one transaction that first takes an advisory lock, so the others wait
 * and then find the table there. MySQL and SQLite serialize the statements themselves.
 */
function underSchemaLock<T>(db: Queryable, fn: (q: Queryable) => Promise<T>): Promise<T> {
  if (db.backend !== 'postgres') return fn(db);
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(?)', [SCHEMA_LOCK_KEY]);
    return fn(tx);
  });
}

/** Drops the SER tables and ours (all, including version, or `tables`). Backs `serctl db drop`. */
export async function dropSchema(db: Queryable, opts: { tables?: readonly string[] } = {}): Promise<void> {
  const tables = opts.tables ? pick(opts.tables) : [...EXTRA_TABLES, ...SER_TABLES];
  const present = new Set(await listTablesOf(db));
  for (const t of tables) {
    await db.exec(`DROP TABLE IF EXISTS ${db.quoteIdent(t.name)}`);
    if (opts.tables && t.name !== 'version' && present.has('version'))
      await db.delete('version', { table_name: t.name });
  }
}

async function listTablesOf(db: Queryable): Promise<string[]> {
  if ('listTables' in db && typeof (db as Db).listTables === 'function') return (db as Db).listTables();
  return listTablesSql(db);
}

/** Table names in the current database / schema. */
export async function listTablesSql(db: Queryable): Promise<string[]> {
  const sql =
    db.backend === 'sqlite'
      ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
      : db.backend === 'mysql'
        ? 'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name'
        : 'SELECT tablename AS name FROM pg_catalog.pg_tables WHERE schemaname = current_schema() ORDER BY tablename';
  const r = await db.query<{ name?: string; NAME?: string }>(sql);
  return r.rows.map((x) => String(x.name ?? x.NAME));
}

export interface TableStatus {
  readonly name: string;
  readonly present: boolean;
  /** its row in `version`, null when there is none */
  readonly version: number | null;
  /** the version this code expects */
  readonly expected: number;
  readonly comment: string;
}

export interface SchemaStatus {
  readonly backend: Backend;
  readonly tables: TableStatus[];
  /** tables in the database that are not SER tables (e.g. per-domain tables) with their version row */
  readonly other: { name: string; version: number | null }[];
  /** every SER table is present with the expected version */
  readonly ok: boolean;
}

/** Which SER tables exist and their versions. Backs `serctl db show`. */
export async function schemaStatus(db: Queryable): Promise<SchemaStatus> {
  const present = new Set(await listTablesOf(db));
  const versions = new Map<string, number>();
  if (present.has('version')) {
    for (const r of await db.select<{ table_name: string; table_version: number }>('version')) {
      versions.set(r.table_name, Number(r.table_version));
    }
  }
  const tables = SER_TABLES.map((t) => ({
    name: t.name,
    present: present.has(t.name),
    version: t.name === 'version' ? (present.has('version') ? 0 : null) : (versions.get(t.name) ?? null),
    expected: t.version,
    comment: t.comment,
  }));
  const other = [...present]
    .filter((n) => !SER_NAMES.has(n))
    .map((n) => ({ name: n, version: versions.get(n) ?? null }));
  return {
    backend: db.backend,
    tables,
    other,
    ok: tables.every((t) => t.present && t.version === t.expected),
  };
}

/** The table's row in `version` (SER's table_version()), null when the table or the row is missing. */
export async function tableVersion(db: Queryable, table: string): Promise<number | null> {
  try {
    const r = await db.selectOne<{ table_version: number }>('version', {
      columns: ['table_version'],
      where: { table_name: table },
    });
    return r ? Number(r.table_version) : null;
  } catch (e) {
    if (e instanceof DbError && e.code === 'query') return null;
    throw e;
  }
}

/**
 * What a module does at start-up: rejects with DbError 'schema' unless `table`'s
 * version row equals `expected` (default: the version of its SER layout).
 */
export async function checkTableVersion(db: Queryable, table: string, expected?: number): Promise<void> {
  const want = expected ?? tableDef(table)?.version;
  if (want === undefined) throw new DbError('usage', `no expected version known for table "${table}"`);
  const v = await tableVersion(db, table);
  if (v !== want) {
    throw new DbError(
      'schema',
      v === null
        ? `table "${table}" has no row in the version table (create the schema: serctl db create)`
        : `table "${table}" has version ${v}, expected ${want}`,
      { backend: db.backend },
    );
  }
}
