/**
 * The same behaviour on every backend: SQLite (a file in a temp dir), MariaDB and
 * PostgreSQL (a database created for the run and dropped afterwards).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type Backend,
  type Db,
  type DbError,
  checkTableVersion,
  createSchema,
  createTable,
  dropSchema,
  isDbError,
  schemaStatus,
  tableVersion,
} from '../../src/db/index.js';
import { SKIP_EXTERNAL, type TestDb, makeTestDb, probe, sleep } from './helpers.js';

const isCode = (code: DbError['code']) => (e: unknown) => {
  assert.ok(isDbError(e), `expected a DbError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  return true;
};

const BACKENDS: Backend[] = ['sqlite', 'mysql', 'postgres'];
const unreachable: Partial<Record<Backend, string>> = {};
for (const b of ['mysql', 'postgres'] as const) {
  const why = await probe(b);
  if (why) unreachable[b] = why;
}

for (const backend of BACKENDS) {
  const why = unreachable[backend];
  if (why && SKIP_EXTERNAL) {
    describe(`${backend} backend`, { skip: why }, () => {});
    continue;
  }
  if (why) {
    describe(`${backend} backend`, () => {
      it('server is reachable', () => {
        assert.fail(why);
      });
    });
    continue;
  }

  describe(`${backend} backend`, () => {
    let t: TestDb;
    let db: Db;
    before(async () => {
      t = await makeTestDb(backend);
      db = await t.open({ poolSize: 2 });
    });
    after(async () => {
      await t.cleanup();
    });

    it('creates, shows and drops the SER schema', async () => {
      let st = await schemaStatus(db);
      assert.equal(st.ok, false);
      assert.ok(st.tables.every((x) => !x.present));
      const created = await createSchema(db);
      assert.equal(created.length, 16);
      await createSchema(db); // idempotent
      st = await schemaStatus(db);
      assert.ok(st.ok, JSON.stringify(st.tables.filter((x) => !x.present || x.version !== x.expected)));
      assert.equal(st.tables.find((x) => x.name === 'location')?.version, 7);
      assert.equal(st.tables.find((x) => x.name === 'subscriber')?.version, 5);
      const tables = await db.listTables();
      for (const n of ['subscriber', 'location', 'acc', 'version', 'usr_preferences', 'trusted'])
        assert.ok(tables.includes(n), n);
      await dropSchema(db);
      assert.deepEqual(await db.listTables(), []);
      await createSchema(db);
    });

    it('does CRUD with the helpers: insert, select (where/order/limit), update, count, delete', async () => {
      const exp = new Date(Date.UTC(2030, 5, 1, 12, 0, 0));
      await db.insert('location', {
        username: 'joe',
        domain: 'foo.bar',
        contact: 'sip:joe@1.2.3.4',
        expires: exp,
        q: 0.5,
        user_agent: 'x',
      });
      await db.insert('location', {
        username: 'joe',
        domain: 'foo.bar',
        contact: 'sip:joe@5.6.7.8',
        expires: exp,
        q: 1,
        received: 'sip:9.9.9.9:5060',
      });
      await db.insert('location', {
        username: 'ann',
        domain: 'foo.bar',
        contact: 'sip:ann@1.1.1.1',
        expires: exp,
      });
      const rows = await db.select('location', {
        columns: ['contact', 'q', 'expires', 'received', 'cseq'],
        where: { username: 'joe', domain: 'foo.bar' },
        orderBy: { column: 'q', desc: true },
      });
      assert.deepEqual(
        rows.map((r) => r.contact),
        ['sip:joe@5.6.7.8', 'sip:joe@1.2.3.4'],
      );
      assert.equal(rows[1].q, 0.5);
      assert.equal(rows[1].cseq, 42, 'SER default cseq');
      assert.ok(rows[0].expires instanceof Date, 'DATETIME comes back as a Date');
      assert.equal((rows[0].expires as Date).toISOString(), exp.toISOString());
      assert.equal(rows[1].received, null);
      assert.deepEqual(
        (
          await db.select('location', {
            columns: ['contact'],
            where: [
              ['received', '=', null],
              ['username', '=', 'joe'],
            ],
          })
        ).map((r) => r.contact),
        ['sip:joe@1.2.3.4'],
      );
      assert.deepEqual(
        (await db.select('location', { columns: ['contact'], where: [['received', '!=', null]] })).map(
          (r) => r.contact,
        ),
        ['sip:joe@5.6.7.8'],
      );
      assert.equal(
        (await db.select('location', { orderBy: 'contact', limit: 1, offset: 1 }))[0].contact,
        'sip:joe@1.2.3.4',
      );
      assert.equal(await db.count('location', [['q', '<', 1]]), 1);
      assert.equal(await db.update('location', { username: 'joe' }, { flags: 6, cseq: 7 }), 2);
      const one = await db.selectOne('location', { where: { contact: 'sip:joe@1.2.3.4' } });
      assert.equal(one?.flags, 6);
      assert.equal(await db.selectOne('location', { where: { username: 'nobody' } }), undefined);
      assert.equal(await db.delete('location', { username: 'joe', contact: 'sip:joe@5.6.7.8' }), 1);
      assert.equal(await db.count('location'), 2);
      assert.equal(await db.delete('location'), 2);
      assert.equal(await db.count('location'), 0);
    });

    it('replace() inserts, then updates the row with the same primary key', async () => {
      const row = {
        username: 'bob',
        domain: 'd',
        contact: 'sip:bob@h',
        expires: new Date(Date.UTC(2031, 0, 1)),
        cseq: 1,
      };
      await db.replace('location', row);
      await db.replace('location', { ...row, cseq: 2, user_agent: 'phone/2' });
      const rows = await db.select('location', { where: { username: 'bob' } });
      assert.equal(rows.length, 1);
      assert.equal(rows[0].cseq, 2);
      assert.equal(rows[0].user_agent, 'phone/2');
      await db.replace('grp', { username: 'bob', domain: 'd', grp: 'ld' });
      await db.replace('grp', { username: 'bob', domain: 'd', grp: 'ld' });
      assert.equal(await db.count('grp', { username: 'bob' }), 1);
      await assert.rejects(db.replace('no_such_layout', { a: 1 }), isCode('usage'));
      await db.delete('location');
    });

    it('returns insert ids of serial columns (acc) and round-trips values', async () => {
      const a = await db.insert('acc', {
        sip_method: 'INVITE',
        sip_callid: 'c1@h',
        sip_status: '200',
        sip_reason: 'OK',
        from_uri: 'sip:a@x',
        to_uri: 'sip:b@x',
        fromtag: 'ft',
        totag: 'tt',
        sip_cseq: 10,
        src_ip: '10.0.0.1',
        src_port: 5060,
        ruri_user: 'b',
        ruri_domain: 'x',
        digest_username: 'a',
        digest_realm: 'x',
      });
      const b = await db.insert('acc', { sip_method: 'BYE', sip_callid: 'c1@h' });
      assert.ok(typeof a.insertId === 'number' && a.insertId > 0);
      assert.equal(b.insertId, (a.insertId as number) + 1);
      const rows = await db.select('acc', { where: { sip_callid: 'c1@h' }, orderBy: 'id' });
      assert.deepEqual(
        rows.map((r) => r.sip_method),
        ['INVITE', 'BYE'],
      );
      assert.ok(rows[0].time instanceof Date);
      assert.ok(
        Math.abs((rows[0].time as Date).getTime() - Date.now()) < 120_000,
        'time defaults to now in UTC',
      );
      // BLOB with every byte value, and 4-byte UTF-8
      const body = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const s = await db.insert('silo', {
        src_addr: 'sip:a@x',
        dst_addr: 'sip:b@x',
        r_uri: 'sip:b@x',
        username: 'b',
        domain: 'x',
        body,
      });
      const silo = await db.selectOne('silo', { where: { mid: s.insertId } });
      assert.ok(Buffer.isBuffer(silo?.body));
      assert.ok(body.equals(silo.body as Buffer));
      assert.equal(silo.ctype, 'text/plain');
      await db.insert('subscriber', { username: 'jiří', domain: 'x', first_name: 'Jiří 😀', ha1: 'h' });
      assert.equal(
        (await db.selectOne('subscriber', { where: { username: 'jiří' } }))?.first_name,
        'Jiří 😀',
      );
      const n = await db.query<{ n: number; big: number; s: string }>(
        `SELECT (SELECT COUNT(*) FROM ${db.quoteIdent('acc')}) AS n, 9007199254740991 AS big, ? AS s`,
        ['x?y'],
      );
      assert.deepEqual(n.rows[0], { n: 2, big: 9007199254740991, s: 'x?y' });
    });

    it('translates placeholders, skipping ? inside string literals', async () => {
      const r = await db.query<{ a: string; b: string | number; c: string | number }>(
        "SELECT '?' AS a, ? AS b, ? AS c",
        ['one', 2],
      );
      assert.equal(r.rows[0].a, '?');
      assert.equal(String(r.rows[0].b), 'one');
      assert.equal(Number(r.rows[0].c), 2);
      await assert.rejects(db.query('SELECT ?', []), isCode('usage'));
    });

    it('quotes identifiers: reserved words and odd names work', async () => {
      const name = 'odd "name` x';
      await db.exec(
        `CREATE TABLE ${db.quoteIdent(name)} (${db.quoteIdent('select')} INTEGER, ${db.quoteIdent('time')} VARCHAR(10))`,
      );
      await db.insert(name, { select: 1, time: 'noon' });
      assert.deepEqual(await db.select(name, { where: { select: 1 } }), [{ select: 1, time: 'noon' }]);
      await db.exec(`DROP TABLE ${db.quoteIdent(name)}`);
    });

    it('maps failures to DbError codes and keeps working', async () => {
      await db.insert('domain', { domain: 'foo.bar' });
      await assert.rejects(db.insert('domain', { domain: 'foo.bar' }), isCode('constraint'));
      await assert.rejects(db.insert('grp', { username: null, domain: 'd', grp: 'g' }), isCode('constraint'));
      await assert.rejects(db.select('no_such_table'), (e: unknown) => {
        isCode('query')(e);
        assert.match((e as DbError).sql ?? '', /no_such_table/);
        assert.equal((e as DbError).backend, backend);
        return true;
      });
      await assert.rejects(db.query('SELEC 1'), isCode('query'));
      assert.equal(await db.count('domain'), 1);
    });

    it('rolls a transaction back when the callback rejects, commits when it resolves', async () => {
      const boom = new Error('boom');
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.insert('grp', { username: 'tx', domain: 'd', grp: 'a' });
          assert.equal(await tx.count('grp', { username: 'tx' }), 1, 'visible inside');
          throw boom;
        }),
        (e) => e === boom,
      );
      assert.equal(await db.count('grp', { username: 'tx' }), 0, 'rolled back');

      let leaked: Parameters<Parameters<Db['transaction']>[0]>[0] | undefined;
      const v = await db.transaction(async (tx) => {
        leaked = tx;
        await tx.insert('grp', { username: 'tx', domain: 'd', grp: 'a' });
        // a nested transaction is a savepoint: its rollback keeps the outer work
        await assert.rejects(
          tx.transaction(async (inner) => {
            await inner.insert('grp', { username: 'tx', domain: 'd', grp: 'b' });
            throw new Error('inner');
          }),
          /inner/,
        );
        await tx.transaction(async (inner) => inner.insert('grp', { username: 'tx', domain: 'd', grp: 'c' }));
        return 42;
      });
      assert.equal(v, 42);
      assert.deepEqual(
        (await db.select('grp', { columns: ['grp'], where: { username: 'tx' }, orderBy: 'grp' })).map(
          (r) => r.grp,
        ),
        ['a', 'c'],
      );
      await assert.rejects(leaked!.count('grp'), isCode('closed'));
      // a failing statement inside rolls back too and surfaces as DbError
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.insert('grp', { username: 'tx2', domain: 'd', grp: 'a' });
          await tx.insert('grp', { username: 'tx2', domain: 'd', grp: 'a' });
        }),
        isCode('constraint'),
      );
      assert.equal(await db.count('grp', { username: 'tx2' }), 0);
    });

    it('keeps other statements out of a running transaction', async () => {
      const tx = db.transaction(async (t) => {
        await t.insert('reserved', { username: 'in-tx' });
        await sleep(50);
        throw new Error('rollback');
      });
      await sleep(5);
      await db.insert('reserved', { username: 'outside' });
      await assert.rejects(tx, /rollback/);
      assert.deepEqual(
        (await db.select('reserved')).map((r) => r.username),
        ['outside'],
      );
    });

    it('four connections creating the same table at once all succeed (workers starting together)', async () => {
      const dbs = await Promise.all([1, 2, 3, 4].map(() => t.open({ poolSize: 1 })));
      try {
        const r = await Promise.allSettled(dbs.map((d) => createTable(d, 'location', 'racedomain')));
        assert.deepEqual(
          r.filter((x) => x.status === 'rejected').map((x) => String((x as PromiseRejectedResult).reason)),
          [],
        );
        assert.equal(await tableVersion(db, 'racedomain'), 7);
        await db.replace('racedomain', { username: 'r', domain: '', contact: 'sip:r@h', q: 0.5 });
        assert.equal(await db.count('racedomain'), 1);
      } finally {
        for (const d of dbs) await d.close();
        await dropSchema(db, { tables: ['racedomain'] });
      }
    });

    it('supports per-domain tables and checks table versions', async () => {
      await createTable(db, 'location', 'mydomain1');
      await db.replace('mydomain1', { username: 'a', domain: '', contact: 'sip:a@h', q: 0.1 });
      await db.replace('mydomain1', { username: 'a', domain: '', contact: 'sip:a@h', q: 0.9 });
      assert.equal((await db.selectOne('mydomain1'))?.q, 0.9);
      const st = await schemaStatus(db);
      assert.deepEqual(st.other, [{ name: 'mydomain1', version: 7 }]);
      await checkTableVersion(db, 'location');
      await checkTableVersion(db, 'mydomain1');
      await db.update('version', { table_name: 'location' }, { table_version: 6 });
      await assert.rejects(
        checkTableVersion(db, 'location'),
        (e: unknown) => isCode('schema')(e) && /version 6, expected 7/.test((e as Error).message),
      );
      assert.equal(await tableVersion(db, 'nope'), null);
      await db.update('version', { table_name: 'location' }, { table_version: 7 });
      await dropSchema(db, { tables: ['mydomain1'] });
      assert.equal(await tableVersion(db, 'mydomain1'), null);
    });

    it('runs many statements concurrently through a small pool', async () => {
      const p = await t.open({ poolSize: 2 });
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, i) => p.query<{ v: number }>('SELECT ? AS v', [i])),
      );
      assert.deepEqual(
        results.map((r) => Number(r.rows[0].v)),
        Array.from({ length: 30 }, (_, i) => i),
      );
      await p.close();
      assert.ok(p.closed);
      await assert.rejects(p.query('SELECT 1'), isCode('closed'));
    });

    if (backend === 'sqlite') {
      it('opens files in WAL mode; a locked file fails with busy after the busy timeout', async () => {
        const r = await db.query<{ journal_mode: string }>('PRAGMA journal_mode');
        assert.equal(r.rows[0].journal_mode, 'wal');
        const other = await t.open({ busyTimeoutMs: 100 });
        let t0 = 0;
        await db.transaction(async (tx) => {
          await tx.insert('reserved', { username: 'locker' });
          t0 = Date.now();
          await assert.rejects(other.insert('reserved', { username: 'blocked' }), isCode('busy'));
        });
        assert.ok(Date.now() - t0 >= 90, 'waited for the busy timeout');
        await other.insert('reserved', { username: 'after' });
        assert.equal(await db.count('reserved', { username: 'after' }), 1);
      });

      it('fails to open a file in a missing directory with a connect DbError naming the URL', async () => {
        const { openDb } = await import('../../src/db/index.js');
        await assert.rejects(openDb('sqlite:///nonexistent-dir-ser/x/ser.db'), (e: unknown) => {
          isCode('connect')(e);
          assert.match((e as Error).message, /directory does not exist|unable to open/i);
          return true;
        });
      });
    } else {
      it('reconnects after the server kills the pooled connection', async () => {
        const warnings: string[] = [];
        const p = await t.open({ poolSize: 1, onWarning: (m) => warnings.push(m) });
        const idSql = backend === 'mysql' ? 'SELECT CONNECTION_ID() AS id' : 'SELECT pg_backend_pid() AS id';
        const id1 = Number((await p.query<{ id: number }>(idSql)).rows[0].id);
        assert.equal(
          Number((await p.query<{ id: number }>(idSql)).rows[0].id),
          id1,
          'the pool reuses the connection',
        );
        if (backend === 'mysql') await t.admin!.exec(`KILL ${id1}`);
        else await t.admin!.query('SELECT pg_terminate_backend(?)', [id1]);
        // straight away: the pooled connection is dead, the query must still succeed
        const id2 = Number((await p.query<{ id: number }>(idSql)).rows[0].id);
        assert.notEqual(id2, id1);
        // and once more after the driver noticed
        await sleep(100);
        if (backend === 'mysql') await t.admin!.exec(`KILL ${id2}`);
        else await t.admin!.query('SELECT pg_terminate_backend(?)', [id2]);
        await sleep(200);
        assert.equal(await p.count('version', { table_name: 'location' }), 1);
      });

      it('a connection killed inside a transaction fails that transaction only', async () => {
        const p = await t.open({ poolSize: 1, onWarning: () => {} });
        const idSql = backend === 'mysql' ? 'SELECT CONNECTION_ID() AS id' : 'SELECT pg_backend_pid() AS id';
        await assert.rejects(
          p.transaction(async (tx) => {
            const id = Number((await tx.query<{ id: number }>(idSql)).rows[0].id);
            await tx.insert('reserved', { username: 'killed-tx' });
            if (backend === 'mysql') await t.admin!.exec(`KILL ${id}`);
            else await t.admin!.query('SELECT pg_terminate_backend(?)', [id]);
            await sleep(200);
            await tx.insert('reserved', { username: 'killed-tx2' });
          }),
          isCode('connect'),
        );
        assert.equal(await p.count('reserved', [['username', 'like', 'killed%']]), 0);
      });

      it('stops a statement at the query timeout and keeps the pool usable', async () => {
        const p = await t.open({ poolSize: 1, queryTimeoutMs: 300 });
        const t0 = Date.now();
        await assert.rejects(
          p.query(backend === 'mysql' ? 'SELECT SLEEP(3)' : 'SELECT pg_sleep(3)'),
          isCode('timeout'),
        );
        const took = Date.now() - t0;
        assert.ok(took >= 250 && took < 1500, `rejected after ${took} ms`);
        assert.equal(await p.count('version', { table_name: 'acc' }), 1);
      });
    }
  });
}
