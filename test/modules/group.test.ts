/** group: is_user_in over the grp table on SQLite, MariaDB and PostgreSQL; fixups; start-up checks. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FixupError } from '../../src/core/module.js';
import { type Backend, createSchema, type Db } from '../../src/db/index.js';
import { setAuthorized } from '../../src/modules/auth/credentials.js';
import group, { type GroupState } from '../../src/modules/group/index.js';
import { makeTestDb, probe, SKIP_EXTERNAL, type TestDb } from '../db/helpers.js';
import { ctxOf, fakeCore, invite, load } from './helpers.js';

const unreachable: Partial<Record<Backend, string>> = {};
for (const b of ['mysql', 'postgres'] as const) {
  const why = await probe(b);
  if (why) unreachable[b] = why;
}
const skipOf = (b: Backend) => (unreachable[b] && SKIP_EXTERNAL ? unreachable[b] : undefined);

/** SCENARIOS.md's fixture: alice ∈ {local}, bob ∈ {local, ld}, carol ∈ {local, ld, int}, 800 ∈ {free-pstn}. */
export async function seedGroups(db: Db, domain = 'foo.bar'): Promise<void> {
  const rows: [string, string][] = [
    ['alice', 'local'],
    ['bob', 'local'],
    ['bob', 'ld'],
    ['carol', 'local'],
    ['carol', 'ld'],
    ['carol', 'int'],
    ['800', 'free-pstn'],
  ];
  for (const [username, grp] of rows)
    await db.insert('grp', { username, domain, grp, last_modified: new Date() });
}

const req = (ruri: string, from = 'sip:alice@iptel.org', to = 'sip:jiri@iptel.org') => {
  const text = invite([], ruri)
    .toString('latin1')
    .replace('"alice" <sip:alice@iptel.org>', `<${from}>`)
    .replace('To: <sip:jiri@iptel.org>', `To: <${to}>`);
  return ctxOf(Buffer.from(text, 'latin1'));
};

describe('group fixups and parameters', () => {
  it('accepts the four header names in any case, rejects others and an empty group', async () => {
    const { core } = fakeCore();
    const t = await makeTestDb('sqlite');
    try {
      const db = await t.open();
      await createSchema(db, { tables: ['grp'] });
      const g = await load(group, core, { db_url: t.url });
      for (const h of ['Request-URI', 'request-uri', 'To', 'FROM', 'credentials', 'Credentials'])
        assert.doesNotThrow(() => g.fixup('is_user_in', h, 'x'), h);
      assert.throws(() => g.fixup('is_user_in', 'Contact', 'x'), FixupError);
      assert.throws(() => g.fixup('is_user_in', 'To', ''), /must not be empty/);
      await group.destroy?.(g.state);
    } finally {
      await t.cleanup();
    }
  });

  it('a malformed db_url or column name is a modparam error', () => {
    assert.throws(() => group.params!.db_url.validate!('mysql:ser:heslo@localhost/ser'), FixupError);
    assert.throws(() => group.params!.db_url.validate!('mysql:ser:heslo@localhost/ser'), /missing "\/\/"/);
    assert.doesNotThrow(() => group.params!.db_url.validate!('sql://ser:heslo@localhost/ser'));
    assert.throws(() => group.params!.user_column.validate!('user name'), FixupError);
    assert.throws(() => group.params!.table.validate!('grp; DROP TABLE x'), FixupError);
    assert.throws(() => group.params!.use_domain.validate!(2), FixupError);
  });

  it('a database server that does not answer at start-up is a warning; checks are false until it answers', async () => {
    const { core, sink } = fakeCore();
    // nothing listens on port 9 of 127.0.0.1: the connection is refused at once
    const g = await load(group, core, { db_url: 'mysql://ser@127.0.0.1:9/ser' });
    try {
      assert.match(
        sink.lines.join('\n'),
        /WARNING: group: database mysql:\/\/ser@127\.0\.0\.1:9\/ser not reachable at start-up/,
      );
      assert.equal(await g.call(req('sip:800@gw'), 'is_user_in', 'Request-URI', 'free-pstn'), -1);
      assert.equal((g.state as GroupState).errors, 1);
    } finally {
      await group.destroy?.(g.state);
    }
  });

  it('start-up fails with a clear message when the grp table is missing', async () => {
    const { core } = fakeCore();
    const t = await makeTestDb('sqlite');
    try {
      await assert.rejects(
        load(group, core, { db_url: t.url }),
        /group: table "grp" has no row in the version table/,
      );
    } finally {
      await t.cleanup();
    }
  });
});

for (const backend of ['sqlite', 'mysql', 'postgres'] as Backend[]) {
  describe(`is_user_in on ${backend}`, { skip: skipOf(backend) }, () => {
    let t: TestDb;
    let db: Db;
    before(async () => {
      if (unreachable[backend]) throw new Error(unreachable[backend]);
      t = await makeTestDb(backend);
      db = await t.open();
      await createSchema(db, { tables: ['grp'] });
      await seedGroups(db);
    });
    after(async () => {
      await t?.cleanup();
    });

    it('Request-URI, To, From: the user of that URI, domain ignored (use_domain 0)', async () => {
      const g = await load(group, fakeCore().core, { db_url: t.url });
      try {
        assert.equal(
          await g.call(req('sip:800@gw.example.com'), 'is_user_in', 'Request-URI', 'free-pstn'),
          1,
        );
        assert.equal(
          await g.call(req('sip:801@gw.example.com'), 'is_user_in', 'Request-URI', 'free-pstn'),
          -1,
        );
        assert.equal(await g.call(req('sip:x@y', 'sip:bob@a.b'), 'is_user_in', 'From', 'ld'), 1);
        assert.equal(await g.call(req('sip:x@y', 'sip:alice@a.b'), 'is_user_in', 'From', 'ld'), -1);
        assert.equal(
          await g.call(req('sip:x@y', 'sip:a@a.b', 'sip:carol@c.d'), 'is_user_in', 'To', 'int'),
          1,
        );
        // the current Request-URI counts, as after a rewrite
        const ctx = req('sip:bob@foo.bar');
        ctx.ruri = 'sip:800@192.168.0.10:5060';
        assert.equal(await g.call(ctx, 'is_user_in', 'Request-URI', 'free-pstn'), 1);
        // escaped user (RFC 3261 §19.1.4: %38 is '8')
        assert.equal(await g.call(req('sip:%3800@gw'), 'is_user_in', 'Request-URI', 'free-pstn'), 1);
        // no user in the URI, a tel: URI
        assert.equal(await g.call(req('sip:gw.example.com'), 'is_user_in', 'Request-URI', 'free-pstn'), -1);
        assert.equal(await g.call(req('tel:800'), 'is_user_in', 'Request-URI', 'free-pstn'), -1);
        assert.equal((g.state as GroupState).checks, 7, 'no query for URIs without a user');
      } finally {
        await group.destroy?.(g.state);
      }
    });

    it('Credentials without a successful authorization is false', async () => {
      const { core, sink } = fakeCore();
      const g = await load(group, core, { db_url: t.url });
      try {
        const ctx = req('sip:0612345@gw');
        ctx.msg.addHeader(
          'Proxy-Authorization',
          'Digest username="carol", realm="gateway", nonce="n", uri="sip:0612345@gw", response="00000000000000000000000000000000"',
        );
        assert.equal(await g.call(ctx, 'is_user_in', 'Credentials', 'int'), -1);
        assert.match(sink.lines.join('\n'), /no authorized credentials/);
      } finally {
        await group.destroy?.(g.state);
      }
    });

    it('Credentials: the user auth accepted; with use_domain the username domain or else the realm', async () => {
      const g = await load(group, fakeCore().core, { db_url: t.url });
      const gd = await load(group, fakeCore().core, { db_url: t.url, use_domain: 1 });
      try {
        const ctx = req('sip:0612345@gw', 'sip:mallory@foo.bar');
        // what auth's proxy_authorize leaves behind after accepting carol's credentials
        setAuthorized(ctx, 'carol', 'gateway', 'proxy-authorization:0');
        assert.equal(await g.call(ctx, 'is_user_in', 'Credentials', 'int'), 1);
        assert.equal(await g.call(ctx, 'is_user_in', 'credentials', 'int'), 1);
        assert.equal(
          await g.call(ctx, 'is_user_in', 'From', 'int'),
          -1,
          'the From user is not the one checked',
        );
        assert.equal(
          await gd.call(ctx, 'is_user_in', 'Credentials', 'int'),
          -1,
          'realm gateway is not foo.bar',
        );
        setAuthorized(ctx, 'carol@Foo.Bar', 'gateway', 'proxy-authorization:0');
        assert.equal(await gd.call(ctx, 'is_user_in', 'Credentials', 'int'), 1, 'user@domain username');
        setAuthorized(ctx, 'alice', 'gateway', 'proxy-authorization:0');
        assert.equal(await g.call(ctx, 'is_user_in', 'Credentials', 'int'), -1);
      } finally {
        await group.destroy?.(g.state);
        await group.destroy?.(gd.state);
      }
    });

    it('use_domain 1: user and domain must both match (domain case-insensitive)', async () => {
      const g = await load(group, fakeCore().core, { db_url: t.url, use_domain: 1 });
      try {
        assert.equal(await g.call(req('sip:bob@FOO.bar'), 'is_user_in', 'Request-URI', 'ld'), 1);
        assert.equal(await g.call(req('sip:bob@other.org'), 'is_user_in', 'Request-URI', 'ld'), -1);
      } finally {
        await group.destroy?.(g.state);
      }
    });

    it('a membership granted or revoked in the table counts at once (no cache)', async () => {
      const g = await load(group, fakeCore().core, { db_url: t.url });
      try {
        const ctx = () => req('sip:dave@foo.bar');
        assert.equal(await g.call(ctx(), 'is_user_in', 'Request-URI', 'int'), -1);
        await db.insert('grp', {
          username: 'dave',
          domain: 'foo.bar',
          grp: 'int',
          last_modified: new Date(),
        });
        assert.equal(await g.call(ctx(), 'is_user_in', 'Request-URI', 'int'), 1);
        await db.delete('grp', { username: 'dave' });
        assert.equal(await g.call(ctx(), 'is_user_in', 'Request-URI', 'int'), -1);
      } finally {
        await group.destroy?.(g.state);
      }
    });

    it('other table and column names', async () => {
      await db.exec(
        `CREATE TABLE ${db.quoteIdent('acl2')} (u VARCHAR(64) NOT NULL, d VARCHAR(64) NOT NULL, g VARCHAR(64) NOT NULL)`,
      );
      await db.insert('version', { table_name: 'acl2', table_version: 2 });
      await db.insert('acl2', { u: 'eve', d: 'x.org', g: 'vip' });
      const g = await load(group, fakeCore().core, {
        db_url: t.url,
        table: 'acl2',
        user_column: 'u',
        domain_column: 'd',
        group_column: 'g',
        use_domain: 1,
      });
      try {
        assert.equal(await g.call(req('sip:eve@x.org'), 'is_user_in', 'Request-URI', 'vip'), 1);
        assert.equal(await g.call(req('sip:eve@y.org'), 'is_user_in', 'Request-URI', 'vip'), -1);
      } finally {
        await group.destroy?.(g.state);
      }
    });

    it('a failing database answers false and is logged, never throws', async () => {
      const { core, sink } = fakeCore();
      const g = await load(group, core, { db_url: t.url });
      await (g.state as GroupState).db.close();
      assert.equal(await g.call(req('sip:800@gw'), 'is_user_in', 'Request-URI', 'free-pstn'), -1);
      assert.equal((g.state as GroupState).errors, 1);
      assert.match(sink.lines.join('\n'), /is_user_in\(\): query failed/);
    });
  });
}
