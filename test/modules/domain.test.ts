/** domain: is_from_local / is_uri_host_local / is_domain_local, db_mode 0 and 1, domain_reload/domain_dump, on every backend. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FixupError } from '../../src/core/module.js';
import { type Backend, createSchema, type Db } from '../../src/db/index.js';
import domain, { type DomainState } from '../../src/modules/domain/index.js';
import { makeTestDb, probe, SKIP_EXTERNAL, type TestDb } from '../db/helpers.js';
import { ctxOf, fakeCore, invite, load } from './helpers.js';

const unreachable: Partial<Record<Backend, string>> = {};
for (const b of ['mysql', 'postgres'] as const) {
  const why = await probe(b);
  if (why) unreachable[b] = why;
}
const skipOf = (b: Backend) => (unreachable[b] && SKIP_EXTERNAL ? unreachable[b] : undefined);

const req = (ruri: string, from = 'sip:alice@iptel.org') =>
  ctxOf(
    Buffer.from(
      invite([], ruri).toString('latin1').replace('"alice" <sip:alice@iptel.org>', `<${from}>`),
      'latin1',
    ),
  );

const mg = domain.mgmt!;

describe('domain fixups and parameters', () => {
  it('is_domain_local needs a quoted pseudo-variable that exists', async () => {
    const t = await makeTestDb('sqlite');
    try {
      const db = await t.open();
      await createSchema(db, { tables: ['domain'] });
      const d = await load(domain, fakeCore().core, { db_url: t.url });
      assert.doesNotThrow(() => d.fixup('is_domain_local', '$fd'));
      assert.throws(() => d.fixup('is_domain_local', '$nosuch'), /unknown pseudo-variable/);
      assert.throws(() => d.fixup('is_domain_local', ''), FixupError);
      await domain.destroy?.(d.state);
    } finally {
      await t.cleanup();
    }
  });
  it('db_mode is 0 or 1; db_url must parse', () => {
    assert.throws(() => domain.params!.db_mode.validate!(2), FixupError);
    assert.throws(() => domain.params!.db_url.validate!('mysql:ser:heslo@localhost/ser'), FixupError);
  });
});

for (const backend of ['sqlite', 'mysql', 'postgres'] as Backend[]) {
  describe(`domain on ${backend}`, { skip: skipOf(backend) }, () => {
    let t: TestDb;
    let db: Db;
    before(async () => {
      if (unreachable[backend]) throw new Error(unreachable[backend]);
      t = await makeTestDb(backend);
      db = await t.open();
      await createSchema(db, { tables: ['domain'] });
      for (const d of ['foo.bar', 'Example.COM'])
        await db.insert('domain', { domain: d, last_modified: new Date() });
    });
    after(async () => {
      await t?.cleanup();
    });

    for (const mode of [0, 1]) {
      it(`db_mode ${mode}: R-URI host, From host and pseudo-variables, case-insensitive`, async () => {
        const d = await load(domain, fakeCore().core, { db_url: t.url, db_mode: mode });
        try {
          assert.equal(await d.call(req('sip:jiri@FOO.bar'), 'is_uri_host_local'), 1);
          assert.equal(await d.call(req('sip:jiri@example.com:5070'), 'is_uri_host_local'), 1);
          assert.equal(await d.call(req('sip:jiri@iptel.org'), 'is_uri_host_local'), -1);
          assert.equal(await d.call(req('sip:x@iptel.org', 'sip:a@foo.bar'), 'is_from_local'), 1);
          assert.equal(await d.call(req('sip:x@foo.bar', 'sip:a@evil.org'), 'is_from_local'), -1);
          assert.equal(await d.call(req('sip:x@iptel.org', 'sip:a@foo.bar'), 'is_domain_local', '$fd'), 1);
          assert.equal(await d.call(req('sip:x@iptel.org', 'sip:a@foo.bar'), 'is_domain_local', '$rd'), -1);
          // a rewritten R-URI is what counts
          const ctx = req('sip:x@iptel.org');
          ctx.ruri = 'sip:x@example.com';
          assert.equal(await d.call(ctx, 'is_uri_host_local'), 1);
          // an AVP that is not set has no value: false
          assert.equal(await d.call(req('sip:x@foo.bar'), 'is_domain_local', '$avp(s:dom)'), -1);
          ctx.avps.set('s:dom', ['foo.bar']);
          assert.equal(await d.call(ctx, 'is_domain_local', '$avp(s:dom)'), 1);
        } finally {
          await domain.destroy?.(d.state);
        }
      });
    }

    it('db_mode 1 answers from memory until domain_reload; db_mode 0 sees changes at once', async () => {
      const cached = await load(domain, fakeCore().core, { db_url: t.url, db_mode: 1 });
      const direct = await load(domain, fakeCore().core, { db_url: t.url, db_mode: 0 });
      try {
        await db.insert('domain', { domain: 'new.org', last_modified: new Date() });
        assert.equal(await direct.call(req('sip:a@new.org'), 'is_uri_host_local'), 1);
        assert.equal(await cached.call(req('sip:a@new.org'), 'is_uri_host_local'), -1, 'not reloaded yet');
        const r = await mg.domain_reload.run(cached.state, []);
        assert.equal(r.code, 200);
        assert.equal(r.body, '3 domain(s) loaded');
        assert.equal(await cached.call(req('sip:a@new.org'), 'is_uri_host_local'), 1);
        const dump = await mg.domain_dump.run(cached.state, []);
        assert.deepEqual(dump.body?.split('\n'), ['example.com', 'foo.bar', 'new.org']);
        const dump0 = await mg.domain_dump.run(direct.state, []);
        assert.deepEqual(dump0.data, ['Example.COM', 'foo.bar', 'new.org']);
        const r0 = await mg.domain_reload.run(direct.state, []);
        assert.equal(r0.code, 200);
        await db.delete('domain', { domain: 'new.org' });
        assert.equal(await direct.call(req('sip:a@new.org'), 'is_uri_host_local'), -1);
        // after the database closes: reload fails with 500, the cache keeps answering
        await (cached.state as DomainState).db.close();
        const bad = await mg.domain_reload.run(cached.state, []);
        assert.equal(bad.code, 500);
        assert.equal(await cached.call(req('sip:a@new.org'), 'is_uri_host_local'), 1);
      } finally {
        await domain.destroy?.(direct.state);
      }
    });

    it('db_mode 0 with a failing database: false, logged', async () => {
      const { core, sink } = fakeCore();
      const d = await load(domain, core, { db_url: t.url });
      await (d.state as DomainState).db.close();
      assert.equal(await d.call(req('sip:a@foo.bar'), 'is_uri_host_local'), -1);
      assert.match(sink.lines.join('\n'), /domain: query failed/);
    });
  });
}
