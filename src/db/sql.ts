/**
 * SQL text helpers shared by the backends: identifier quoting, the `?` placeholder
 * scanner (and its translation to PostgreSQL's $1, $2, …), parameter normalisation
 * and the statement builders behind select/insert/update/delete/replace.
 */
import type { Condition, DbParam, OrderBy, SelectOptions, Where } from './api.js';
import { type Backend, DbError } from './errors.js';

/** Quotes one identifier (or `schema.table`) for the backend: `name` on MySQL, "name" elsewhere. */
export function quoteIdent(backend: Backend, name: string): string {
  if (typeof name !== 'string' || name === '')
    throw new DbError('usage', 'empty SQL identifier', { backend });
  if (name.includes('\0')) throw new DbError('usage', 'NUL character in an SQL identifier', { backend });
  return name
    .split('.')
    .map((part) => {
      if (part === '') throw new DbError('usage', `invalid SQL identifier "${name}"`, { backend });
      return backend === 'mysql'
        ? '`' + part.replaceAll('`', '``') + '`'
        : '"' + part.replaceAll('"', '""') + '"';
    })
    .join('.');
}

/**
 * Positions of the `?` placeholders in `sql`, skipping string literals ('…', "…",
 * `…`, PostgreSQL $tag$…$tag$), and comments (-- …, # … on MySQL, /* … *\/).
 */
export function placeholderPositions(sql: string, backend: Backend): number[] {
  const out: number[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i];
    if (c === "'" || c === '"' || c === '`') {
      // quoted literal or identifier; a doubled quote is an escaped quote; MySQL also has backslash escapes
      i++;
      while (i < n) {
        if (backend === 'mysql' && sql[i] === '\\' && c !== '`') {
          i += 2;
          continue;
        }
        if (sql[i] === c) {
          if (sql[i + 1] === c) {
            i += 2;
            continue;
          }
          break;
        }
        i++;
      }
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      const e = sql.indexOf('\n', i);
      i = e < 0 ? n : e + 1;
    } else if (c === '#' && backend === 'mysql') {
      const e = sql.indexOf('\n', i);
      i = e < 0 ? n : e + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const e = sql.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
    } else if (c === '$' && backend === 'postgres') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (m && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? '')) {
        const e = sql.indexOf(m[0], i + m[0].length);
        i = e < 0 ? n : e + m[0].length;
      } else i++;
    } else {
      if (c === '?') out.push(i);
      i++;
    }
  }
  return out;
}

/**
 * Checks the number of `?` against the parameters and, for PostgreSQL, rewrites
 * them to $1, $2, …. Throws DbError 'usage' on a count mismatch.
 */
export function translatePlaceholders(sql: string, backend: Backend, paramCount: number): string {
  const pos = placeholderPositions(sql, backend);
  if (pos.length !== paramCount) {
    throw new DbError(
      'usage',
      `the statement has ${pos.length} "?" placeholder(s) but ${paramCount} parameter(s) were given`,
      { backend, sql },
    );
  }
  if (backend !== 'postgres' || pos.length === 0) return sql;
  let out = '';
  let last = 0;
  pos.forEach((p, k) => {
    out += sql.slice(last, p) + '$' + (k + 1);
    last = p + 1;
  });
  return out + sql.slice(last);
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** A Date as the UTC `YYYY-MM-DD HH:MM:SS[.mmm]` text all three backends accept for DATETIME/TIMESTAMP. */
export function formatDateTime(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new DbError('usage', 'invalid Date given as a parameter');
  const s =
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  const ms = d.getUTCMilliseconds();
  return ms === 0 ? s : `${s}.${pad(ms, 3)}`;
}

/** Parses a UTC `YYYY-MM-DD[ T]HH:MM:SS[.ffffff]` text; returns the text unchanged when it is not one. */
export function parseDateTime(s: string): Date | string {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$/.exec(s);
  if (!m) return s;
  const ms = m[7] ? Math.floor(Number(m[7].padEnd(6, '0')) / 1000) : 0;
  const d = new Date(
    Date.UTC(
      Number(m[1]),
      Number(m[2]) - 1,
      Number(m[3]),
      Number(m[4] ?? 0),
      Number(m[5] ?? 0),
      Number(m[6] ?? 0),
      ms,
    ),
  );
  if (Number(m[1]) < 100) d.setUTCFullYear(Number(m[1]));
  return Number.isNaN(d.getTime()) ? s : d;
}

/** Normalises parameters for the drivers: Date → UTC text, boolean → 1/0, undefined → null. */
export function normalizeParams(
  params: readonly DbParam[] | undefined,
): (string | number | bigint | Buffer | null)[] {
  if (!params) return [];
  if (!Array.isArray(params)) throw new DbError('usage', 'query parameters must be an array');
  return params.map((p) => {
    if (p === undefined || p === null) return null;
    if (p instanceof Date) return formatDateTime(p);
    if (typeof p === 'boolean') return p ? 1 : 0;
    if (typeof p === 'string' || typeof p === 'number' || typeof p === 'bigint' || Buffer.isBuffer(p))
      return p;
    if (p instanceof Uint8Array) return Buffer.from(p);
    throw new DbError('usage', `unsupported parameter type ${typeof p}`);
  });
}

export interface Built {
  readonly sql: string;
  readonly params: DbParam[];
}

const OPS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=', 'like']);

function conditions(where: Where | undefined): Condition[] {
  if (where === undefined) return [];
  if (Array.isArray(where)) return where as Condition[];
  if (typeof where !== 'object' || where === null)
    throw new DbError('usage', 'where must be an object or a list');
  return Object.entries(where).map(([k, v]) => [k, '=', v] as const);
}

export function buildWhere(backend: Backend, where: Where | undefined): Built {
  const conds = conditions(where);
  if (conds.length === 0) return { sql: '', params: [] };
  const parts: string[] = [];
  const params: DbParam[] = [];
  for (const c of conds) {
    if (!Array.isArray(c) || c.length !== 3) throw new DbError('usage', 'a condition is [column, op, value]');
    const [col, op, value] = c;
    if (!OPS.has(op)) throw new DbError('usage', `unknown operator "${op}"`, { backend });
    const q = quoteIdent(backend, col);
    if (value === null || value === undefined) {
      if (op === '=') parts.push(`${q} IS NULL`);
      else if (op === '<>' || op === '!=') parts.push(`${q} IS NOT NULL`);
      else throw new DbError('usage', `operator "${op}" cannot compare with NULL`, { backend });
    } else {
      parts.push(`${q} ${op === '!=' ? '<>' : op === 'like' ? 'LIKE' : op} ?`);
      params.push(value);
    }
  }
  return { sql: ' WHERE ' + parts.join(' AND '), params };
}

function orderClause(backend: Backend, order: SelectOptions['orderBy']): string {
  if (order === undefined) return '';
  const list: readonly OrderBy[] = Array.isArray(order) ? order : [order as OrderBy];
  if (list.length === 0) return '';
  return (
    ' ORDER BY ' +
    list
      .map((o) =>
        typeof o === 'string'
          ? quoteIdent(backend, o)
          : quoteIdent(backend, o.column) + (o.desc ? ' DESC' : ''),
      )
      .join(', ')
  );
}

function checkCount(n: number | undefined, what: string): void {
  if (n !== undefined && (!Number.isInteger(n) || n < 0))
    throw new DbError('usage', `${what} must be an integer >= 0`);
}

export function buildSelect(backend: Backend, table: string, opts: SelectOptions = {}): Built {
  const cols = opts.columns?.length ? opts.columns.map((c) => quoteIdent(backend, c)).join(', ') : '*';
  const w = buildWhere(backend, opts.where);
  checkCount(opts.limit, 'limit');
  checkCount(opts.offset, 'offset');
  let sql = `SELECT ${cols} FROM ${quoteIdent(backend, table)}${w.sql}${orderClause(backend, opts.orderBy)}`;
  if (opts.limit !== undefined) sql += ` LIMIT ${opts.limit}`;
  if (opts.offset !== undefined) {
    // MySQL and SQLite need a LIMIT before OFFSET
    if (opts.limit === undefined && backend === 'mysql') sql += ' LIMIT 18446744073709551615';
    if (opts.limit === undefined && backend === 'sqlite') sql += ' LIMIT -1';
    sql += ` OFFSET ${opts.offset}`;
  }
  return { sql, params: w.params };
}

export function buildCount(backend: Backend, table: string, where?: Where): Built {
  const w = buildWhere(backend, where);
  return { sql: `SELECT COUNT(*) AS n FROM ${quoteIdent(backend, table)}${w.sql}`, params: w.params };
}

function rowEntries(row: Readonly<Record<string, DbParam>>, what: string): [string, DbParam][] {
  if (typeof row !== 'object' || row === null || Array.isArray(row))
    throw new DbError('usage', `${what}: a row object is required`);
  const e = Object.entries(row).filter(([, v]) => v !== undefined);
  if (e.length === 0) throw new DbError('usage', `${what}: no columns given`);
  return e;
}

export function buildInsert(
  backend: Backend,
  table: string,
  row: Readonly<Record<string, DbParam>>,
  returning?: string,
): Built {
  const e = rowEntries(row, 'insert');
  let sql =
    `INSERT INTO ${quoteIdent(backend, table)} (${e.map(([k]) => quoteIdent(backend, k)).join(', ')}) ` +
    `VALUES (${e.map(() => '?').join(', ')})`;
  if (returning && backend === 'postgres') sql += ` RETURNING ${quoteIdent(backend, returning)}`;
  return { sql, params: e.map(([, v]) => v) };
}

export function buildUpdate(
  backend: Backend,
  table: string,
  where: Where,
  set: Readonly<Record<string, DbParam>>,
): Built {
  const e = rowEntries(set, 'update');
  const w = buildWhere(backend, where);
  return {
    sql: `UPDATE ${quoteIdent(backend, table)} SET ${e.map(([k]) => `${quoteIdent(backend, k)} = ?`).join(', ')}${w.sql}`,
    params: [...e.map(([, v]) => v), ...w.params],
  };
}

export function buildDelete(backend: Backend, table: string, where?: Where): Built {
  const w = buildWhere(backend, where);
  return { sql: `DELETE FROM ${quoteIdent(backend, table)}${w.sql}`, params: w.params };
}

/** INSERT … ON DUPLICATE KEY UPDATE (MySQL) / INSERT … ON CONFLICT (keys) DO UPDATE (PostgreSQL, SQLite). */
export function buildReplace(
  backend: Backend,
  table: string,
  row: Readonly<Record<string, DbParam>>,
  keys: readonly string[],
): Built {
  if (keys.length === 0) throw new DbError('usage', `replace into "${table}": no key columns`, { backend });
  const ins = buildInsert(backend, table, row);
  const cols = Object.keys(row).filter((k) => row[k] !== undefined);
  for (const k of keys) {
    if (!cols.includes(k))
      throw new DbError('usage', `replace into "${table}": key column "${k}" has no value`, { backend });
  }
  const rest = cols.filter((c) => !keys.includes(c));
  if (backend === 'mysql') {
    const upd = rest.length
      ? rest.map((c) => `${quoteIdent(backend, c)} = VALUES(${quoteIdent(backend, c)})`).join(', ')
      : `${quoteIdent(backend, keys[0])} = ${quoteIdent(backend, keys[0])}`;
    return { sql: `${ins.sql} ON DUPLICATE KEY UPDATE ${upd}`, params: ins.params };
  }
  const target = keys.map((k) => quoteIdent(backend, k)).join(', ');
  const action = rest.length
    ? 'DO UPDATE SET ' +
      rest.map((c) => `${quoteIdent(backend, c)} = excluded.${quoteIdent(backend, c)}`).join(', ')
    : 'DO NOTHING';
  return { sql: `${ins.sql} ON CONFLICT (${target}) ${action}`, params: ins.params };
}
