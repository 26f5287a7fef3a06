/**
 * db_url parsing as SER writes it in modparam("…", "db_url", "…"):
 *
 *   mysql://user:password@host[:port]/database      (SER's mysql module)
 *   sql://user:password@host[:port]/database        (older SER spelling, = mysql)
 *   postgres://… | postgresql://…                   (SER's postgres module)
 *   sqlite:///absolute/path.db                      (embedded; three slashes = absolute)
 *   sqlite://relative/path.db                       (relative to the working directory)
 *   sqlite::memory:  |  sqlite://:memory:           (in-memory, for tests)
 *
 * User and password are optional; `%XX` escapes in them are decoded (write a literal
 * `%` as `%25`). IPv6 hosts go in brackets: `mysql://ser@[::1]:3306/ser`.
 */
import { type Backend, DbError } from './errors.js';

interface DbUrlBase {
  /** the URL as given */
  readonly raw: string;
  /** the URL with the password replaced by *** (safe to log) */
  readonly masked: string;
  /** the scheme as written: mysql, sql, postgres, postgresql, sqlite */
  readonly scheme: string;
}

export interface ServerDbUrl extends DbUrlBase {
  readonly backend: 'mysql' | 'postgres';
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly database: string;
}

export interface SqliteDbUrl extends DbUrlBase {
  readonly backend: 'sqlite';
  /** ':memory:', an absolute path, or a path relative to the working directory */
  readonly path: string;
}

export type DbUrl = ServerDbUrl | SqliteDbUrl;

const SCHEMES: Readonly<Record<string, Backend>> = {
  mysql: 'mysql',
  sql: 'mysql',
  mariadb: 'mysql',
  postgres: 'postgres',
  postgresql: 'postgres',
  sqlite: 'sqlite',
  sqlite3: 'sqlite',
};

export const DEFAULT_PORTS: Readonly<Record<'mysql' | 'postgres', number>> = { mysql: 3306, postgres: 5432 };

const FORMS =
  'expected mysql://user:password@host[:port]/database, postgres://user:password@host[:port]/database, ' +
  'sqlite:///absolute/path.db, sqlite://relative/path.db or sqlite::memory:';

/**
 * The URL with any password replaced by `***`. Works on malformed URLs too
 * (`mysql:ser:heslo@localhost/ser` → `mysql:ser:***@localhost/ser`).
 */
export function maskDbUrl(url: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:(?:\/\/)?)(.*)$/s.exec(url);
  const prefix = m ? m[1] : '';
  const rest = m ? m[2] : url;
  // the authority ends at the first '/' after the last '@' that precedes a '/' (or the end)
  const slash = rest.indexOf('/', rest.lastIndexOf('@') + 1);
  const authEnd = slash < 0 ? rest.length : slash;
  const at = rest.lastIndexOf('@', authEnd);
  if (at < 0) return url;
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return url;
  return prefix + userinfo.slice(0, colon + 1) + '***' + rest.slice(at);
}

function fail(url: string, what: string): never {
  throw new DbError('url', `invalid db_url "${maskDbUrl(url)}": ${what}`, { url: maskDbUrl(url) });
}

function decode(url: string, s: string, what: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    fail(url, `bad %-escape in the ${what}`);
  }
}

/** Parses a db_url; throws DbError (code 'url') naming the URL (password masked) and the problem. */
export function parseDbUrl(url: string): DbUrl {
  if (typeof url !== 'string' || url.trim() === '') fail(String(url ?? ''), `the URL is empty; ${FORMS}`);
  const raw = url;
  url = url.trim();
  const masked = maskDbUrl(raw);
  const sm = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
  if (!sm) {
    if (url.startsWith('/'))
      fail(raw, `a bare directory path is SER's dbtext back-end, which is not supported; ${FORMS}`);
    fail(raw, `missing scheme; ${FORMS}`);
  }
  const scheme = sm[1].toLowerCase();
  const backend = SCHEMES[scheme];
  if (!backend) {
    if (scheme === 'dbtext') fail(raw, `SER's dbtext back-end is not supported; ${FORMS}`);
    fail(raw, `unsupported scheme "${sm[1]}:" (supported: mysql, sql, postgres, postgresql, sqlite)`);
  }
  const afterScheme = url.slice(sm[0].length);

  if (backend === 'sqlite') {
    if (afterScheme === ':memory:' || afterScheme === '//:memory:') {
      return { backend, scheme, raw, masked, path: ':memory:' };
    }
    if (!afterScheme.startsWith('//')) fail(raw, `missing "//" after "${sm[1]}:"; ${FORMS}`);
    const path = afterScheme.slice(2);
    if (path === '' || path === '/') fail(raw, 'missing the database file path');
    if (path.includes('\0')) fail(raw, 'NUL character in the file path');
    if (/[?#]/.test(path)) fail(raw, 'query strings and fragments are not supported in a sqlite URL');
    return { backend, scheme, raw, masked, path: decode(raw, path, 'file path') };
  }

  if (!afterScheme.startsWith('//')) {
    fail(raw, `missing "//" after "${sm[1]}:"; expected ${scheme}://user:password@host[:port]/database`);
  }
  const rest = afterScheme.slice(2);
  if (/[?#]/.test(rest)) fail(raw, 'query strings and fragments are not supported');
  const slash = rest.indexOf('/', rest.lastIndexOf('@') + 1);
  if (slash < 0) fail(raw, 'missing "/database" after the host');
  const authority = rest.slice(0, slash);
  const database = rest.slice(slash + 1);
  if (database === '') fail(raw, 'missing the database name after "/"');
  if (database.includes('/')) fail(raw, `the database name "${database}" contains "/"`);

  let user: string | undefined;
  let password: string | undefined;
  let hostport = authority;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    hostport = authority.slice(at + 1);
    const colon = userinfo.indexOf(':');
    const u = colon < 0 ? userinfo : userinfo.slice(0, colon);
    if (u === '') fail(raw, 'empty user name before "@"');
    user = decode(raw, u, 'user name');
    if (colon >= 0) password = decode(raw, userinfo.slice(colon + 1), 'password');
  }

  let host: string;
  let portText: string | undefined;
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0) fail(raw, 'unterminated "[" in an IPv6 host');
    host = hostport.slice(1, close);
    const tail = hostport.slice(close + 1);
    if (tail !== '') {
      if (!tail.startsWith(':')) fail(raw, `unexpected "${tail}" after the IPv6 host`);
      portText = tail.slice(1);
    }
  } else {
    const colon = hostport.indexOf(':');
    host = colon < 0 ? hostport : hostport.slice(0, colon);
    if (colon >= 0) portText = hostport.slice(colon + 1);
  }
  if (host === '') fail(raw, 'missing host');
  if (/[\s/@]/.test(host)) fail(raw, `invalid host "${host}"`);
  let port: number = DEFAULT_PORTS[backend];
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      fail(raw, `invalid port "${portText}" (1-65535)`);
    }
    port = Number(portText);
  }
  return {
    backend,
    scheme,
    raw,
    masked,
    user,
    password,
    host,
    port,
    database: decode(raw, database, 'database name'),
  };
}
