import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DbError, isDbError, maskDbUrl, openDb, parseDbUrl } from '../../src/db/index.js';

function urlError(url: string, re: RegExp): void {
  assert.throws(
    () => parseDbUrl(url),
    (e: unknown) => {
      assert.ok(isDbError(e), 'a DbError');
      assert.equal(e.code, 'url');
      assert.match(e.message, re);
      return true;
    },
  );
}

describe('db_url parsing', () => {
  it('mysql://user:pass@host/db with the default port', () => {
    const u = parseDbUrl('mysql://ser:heslo@localhost/ser');
    assert.deepEqual(
      {
        backend: u.backend,
        ...(u.backend !== 'sqlite'
          ? { user: u.user, password: u.password, host: u.host, port: u.port, database: u.database }
          : {}),
      },
      { backend: 'mysql', user: 'ser', password: 'heslo', host: 'localhost', port: 3306, database: 'ser' },
    );
    assert.equal(u.masked, 'mysql://ser:***@localhost/ser');
  });

  it('sql:// is the old spelling of mysql, with an explicit port', () => {
    const u = parseDbUrl('sql://ser:secret@dbhost:3307/ser');
    assert.equal(u.backend, 'mysql');
    assert.equal(u.scheme, 'sql');
    assert.ok(u.backend === 'mysql' && u.port === 3307 && u.host === 'dbhost');
  });

  it('postgres:// and postgresql:// with default port 5432', () => {
    for (const s of ['postgres', 'postgresql']) {
      const u = parseDbUrl(`${s}://ser:pw@10.0.0.1/ser`);
      assert.ok(u.backend === 'postgres');
      assert.equal(u.port, 5432);
      assert.equal(u.host, '10.0.0.1');
    }
  });

  it('user and password are optional; %-escapes are decoded; last @ separates the host', () => {
    const a = parseDbUrl('mysql://dbhost/ser');
    assert.ok(a.backend === 'mysql' && a.user === undefined && a.password === undefined);
    const b = parseDbUrl('mysql://ser@dbhost/ser');
    assert.ok(b.backend === 'mysql' && b.user === 'ser' && b.password === undefined);
    const c = parseDbUrl('postgres://ser:p%40ss%3Aw@dbhost/ser');
    assert.ok(c.backend === 'postgres' && c.password === 'p@ss:w');
    const d = parseDbUrl('mysql://ser:p@ss@dbhost/ser');
    assert.ok(d.backend === 'mysql' && d.password === 'p@ss' && d.host === 'dbhost');
    assert.equal(d.masked, 'mysql://ser:***@dbhost/ser');
  });

  it('IPv6 hosts in brackets', () => {
    const u = parseDbUrl('mysql://ser:x@[::1]:3306/ser');
    assert.ok(u.backend === 'mysql' && u.host === '::1' && u.port === 3306);
  });

  it('sqlite absolute, relative and in-memory forms', () => {
    const abs = parseDbUrl('sqlite:///var/lib/ser/ser.db');
    assert.ok(abs.backend === 'sqlite' && abs.path === '/var/lib/ser/ser.db');
    const rel = parseDbUrl('sqlite://data/ser.db');
    assert.ok(rel.backend === 'sqlite' && rel.path === 'data/ser.db');
    for (const m of ['sqlite::memory:', 'sqlite://:memory:']) {
      const u = parseDbUrl(m);
      assert.ok(u.backend === 'sqlite' && u.path === ':memory:');
    }
  });

  it("rejects seed 001's malformed mysql:ser:heslo@localhost/ser, naming the URL with the password masked", () => {
    assert.throws(
      () => parseDbUrl('mysql:ser:heslo@localhost/ser'),
      (e: unknown) => {
        assert.ok(e instanceof DbError);
        assert.equal(e.code, 'url');
        assert.match(e.message, /mysql:ser:\*\*\*@localhost\/ser/);
        assert.match(e.message, /missing "\/\/" after "mysql:"/);
        assert.doesNotMatch(e.message, /heslo/);
        return true;
      },
    );
  });

  it('rejects other malformed URLs with the reason', () => {
    urlError('', /empty/);
    urlError('oracle://u:p@h/db', /unsupported scheme "oracle:"/);
    urlError('/home/rco/ser/db', /dbtext/);
    urlError('mysql://ser:pw@localhost', /missing "\/database"/);
    urlError('mysql://ser:pw@localhost/', /missing the database name/);
    urlError('mysql://ser:pw@/ser', /missing host/);
    urlError('mysql://ser:pw@localhost:99999/ser', /invalid port "99999"/);
    urlError('mysql://ser:pw@localhost:abc/ser', /invalid port "abc"/);
    urlError('postgres://ser:pw@h/a/b', /contains "\/"/);
    urlError('mysql://:pw@h/ser', /empty user name/);
    urlError('sqlite:ser.db', /missing "\/\/"/);
    urlError('sqlite://', /missing the database file path/);
    urlError('mysql://ser:pw@h/ser?ssl=1', /query strings/);
  });

  it('never shows the password of a malformed URL', () => {
    assert.throws(
      () => parseDbUrl('mysql://ser:topsecret@h:0/ser'),
      (e: Error) => !e.message.includes('topsecret'),
    );
    assert.equal(maskDbUrl('postgres://a:b@h/d'), 'postgres://a:***@h/d');
    assert.equal(maskDbUrl('sqlite:///x.db'), 'sqlite:///x.db');
  });

  it('openDb rejects (does not throw synchronously) on a bad URL', async () => {
    const p = openDb('mysql:ser:heslo@localhost/ser');
    assert.ok(p instanceof Promise);
    await assert.rejects(p, (e: unknown) => isDbError(e) && e.code === 'url');
  });
});
