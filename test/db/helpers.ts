/**
 * Test databases: an SQLite file in a temp dir, or a fresh MariaDB/PostgreSQL database
 * `ser_test_<pid>_<n>` created through the admin URL and dropped afterwards.
 * Admin URLs: SER_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/test) and
 * SER_TEST_PG_URL (default postgres://root@127.0.0.1:5432/test). An unreachable
 * server fails the tests unless SER_TEST_SKIP_EXTERNAL_DB=1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Backend, type Db, type OpenOptions, openDb, parseDbUrl } from '../../src/db/index.js';

export const ADMIN_URLS: Record<'mysql' | 'postgres', string> = {
  mysql: process.env.SER_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
  postgres: process.env.SER_TEST_PG_URL ?? 'postgres://root@127.0.0.1:5432/test',
};
export const SKIP_EXTERNAL = process.env.SER_TEST_SKIP_EXTERNAL_DB === '1';

let counter = 0;

export interface TestDb {
  readonly url: string;
  open(opts?: OpenOptions): Promise<Db>;
  /** an admin connection on the server (kills connections), undefined for SQLite */
  readonly admin: Db | undefined;
  cleanup(): Promise<void>;
}

/** Returns undefined when the server is unreachable; `reason` says why. */
export async function probe(backend: 'mysql' | 'postgres'): Promise<string | undefined> {
  const db = await openDb(ADMIN_URLS[backend], { connectTimeoutMs: 3000, queryTimeoutMs: 5000, poolSize: 1 });
  try {
    await db.ping();
    return undefined;
  } catch (e) {
    const name = backend === 'mysql' ? 'MariaDB/MySQL' : 'PostgreSQL';
    return (
      `${name} is not reachable at ${parseDbUrl(ADMIN_URLS[backend]).masked} (${(e as Error).message}). ` +
      'Start it with `sudo scripts/db-services.sh`, point SER_TEST_' +
      (backend === 'mysql' ? 'MYSQL' : 'PG') +
      '_URL at another server, or set SER_TEST_SKIP_EXTERNAL_DB=1 to skip these tests.'
    );
  } finally {
    await db.close();
  }
}

export async function makeTestDb(backend: Backend): Promise<TestDb> {
  const opened: Db[] = [];
  const open = async (url: string, opts?: OpenOptions) => {
    const db = await openDb(url, { connectTimeoutMs: 3000, queryTimeoutMs: 10000, ...opts });
    opened.push(db);
    return db;
  };
  if (backend === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'ser-db-'));
    const url = `sqlite://${join(dir, 'ser.db')}`;
    return {
      url,
      admin: undefined,
      open: (opts) => open(url, opts),
      cleanup: async () => {
        for (const d of opened) await d.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const name = `ser_test_${process.pid}_${++counter}`;
  const admin = await openDb(ADMIN_URLS[backend], { connectTimeoutMs: 3000, poolSize: 2 });
  await admin.exec(`CREATE DATABASE ${admin.quoteIdent(name)}`);
  const u = parseDbUrl(ADMIN_URLS[backend]);
  if (u.backend === 'sqlite') throw new Error('unreachable');
  const auth = u.user
    ? encodeURIComponent(u.user) + (u.password ? ':' + encodeURIComponent(u.password) : '') + '@'
    : '';
  const url = `${u.scheme}://${auth}${u.host.includes(':') ? `[${u.host}]` : u.host}:${u.port}/${name}`;
  return {
    url,
    admin,
    open: (opts) => open(url, opts),
    cleanup: async () => {
      for (const d of opened) await d.close();
      if (backend === 'postgres') {
        await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()',
          [name],
        );
      }
      await admin.exec(`DROP DATABASE IF EXISTS ${admin.quoteIdent(name)}`);
      await admin.close();
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
