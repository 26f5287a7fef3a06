/** usrloc: management commands (SER's FIFO formats), statistics, expiry, and db_mode 1/2/3 on every backend. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Backend } from '../../src/db/index.js';
import usrloc, { defaultMaxContacts, type Usrloc } from '../../src/modules/usrloc/index.js';
import { makeTestDb, probe, SKIP_EXTERNAL, type TestDb } from '../db/helpers.js';
import { regCore, register, replyContacts, setup } from './registrar-helpers.test.js';

const mg = usrloc.mgmt!;
const run = (ul: Usrloc, cmd: string, ...args: string[]) => mg[cmd].run(ul, args);

describe('usrloc management commands', () => {
  it('M5: ul_add (serweb/serctl format), ul_show_contact, ul_rm, then 404', async () => {
    const r = await setup();
    const ul = r.ul.state;
    await ul.domain('location');
    r.advance(12);
    const add = await run(ul, 'ul_add', 'location', 'newuser', 'sip:666@gateway.foo.bar', '0', '1.00');
    assert.equal(add.code, 200);
    assert.equal(add.reason, 'Added to table');
    assert.equal(add.body, "('newuser','sip:666@gateway.foo.bar') to 'location'");
    const show = await run(ul, 'ul_show_contact', 'location', 'newuser');
    assert.equal(show.code, 200);
    assert.equal(
      show.body,
      '<sip:666@gateway.foo.bar>;q=1.00;expires=1073741812',
      'permanent: 2^30 minus uptime',
    );
    // usable by lookup at once (M12), no DB involved
    const l = await r.lookup('sip:newuser@foo.bar');
    assert.equal(l.ret, 1);
    assert.equal(l.ctx.ruri, 'sip:666@gateway.foo.bar');
    const rm = await run(ul, 'ul_rm', 'location', 'newuser');
    assert.equal(rm.code, 200);
    assert.equal(rm.reason, 'user (location, newuser) deleted');
    const gone = await run(ul, 'ul_show_contact', 'location', 'newuser');
    assert.equal(gone.code, 404);
    assert.equal(gone.reason, 'Username newuser in table location not found');
  });

  it('M13: ul_show_contact lists registered contacts as <uri>;q=…;expires=<left>', async () => {
    const r = await setup();
    await r.save(register({ user: 'jiri', contacts: ['<sip:195.37.78.160:14519>'], expires: 1200 }));
    await r.save(
      register({
        user: 'jiri',
        contacts: ['<sip:7271@gateway.foo.bar>;q=0.5'],
        expires: 36000,
        callId: 'g@x',
      }),
    );
    r.advance(188);
    const show = await run(r.ul.state, 'ul_show_contact', 'location', 'jiri');
    assert.deepEqual(show.body?.split('\n'), [
      '<sip:7271@gateway.foo.bar>;q=0.50;expires=35812',
      '<sip:195.37.78.160:14519>;q=0.00;expires=1012',
    ]);
  });

  it('ul_add with an expiry, then it expires; bad arguments are 400; unknown table is 400', async () => {
    const r = await setup();
    const ul = r.ul.state;
    await ul.domain('location');
    assert.equal((await run(ul, 'ul_add', 'location', 'u', 'sip:u@1.2.3.4', '60', '0.5')).code, 200);
    assert.equal((await r.lookup('sip:u@x')).ctx.ruriQ, 500);
    r.advance(61);
    assert.equal((await r.lookup('sip:u@x')).ret, -2);
    assert.equal((await run(ul, 'ul_add', 'location', 'u', 'not a uri', '60', '0.5')).code, 400);
    assert.equal((await run(ul, 'ul_add', 'location', 'u', 'sip:u@h', 'x', '0.5')).code, 400);
    assert.equal((await run(ul, 'ul_add', 'location', 'u', 'sip:u@h', '60', '7')).code, 400);
    assert.equal((await run(ul, 'ul_add', 'location', 'u')).code, 400);
    const nt = await run(ul, 'ul_add', 'aliases', '1234', 'sip:john@foo.bar', '0', '1');
    assert.equal(nt.code, 400, 'serctl alias add fails unless the script uses lookup("aliases")');
    assert.match(nt.reason, /does not exist/);
  });

  it('ul_rm_contact removes one contact; 404 for an unknown user or contact', async () => {
    const r = await setup();
    await r.save(register({ contacts: ['<sip:a@10.0.0.1>', '<sip:a@10.0.0.2>'], expires: 600 }));
    const ul = r.ul.state;
    assert.equal((await run(ul, 'ul_rm_contact', 'location', 'alice', 'sip:a@10.0.0.1')).code, 200);
    assert.equal((await run(ul, 'ul_rm_contact', 'location', 'alice', 'sip:a@10.0.0.9')).code, 404);
    assert.equal((await run(ul, 'ul_rm_contact', 'location', 'bob', 'sip:a@10.0.0.2')).code, 404);
    assert.deepEqual(
      (await run(ul, 'ul_show_contact', 'location', 'alice')).body,
      '<sip:a@10.0.0.2>;q=0.00;expires=600',
    );
  });

  it('ul_stats and the usrloc statistics group: registered users and expired contacts per table', async () => {
    const r = await setup();
    const ul = r.ul.state;
    await ul.domain('aliases');
    await r.save(register({ user: 'a', contacts: ['<sip:a@10.0.0.1>'], expires: 60 }));
    await r.save(register({ user: 'b', contacts: ['<sip:b@10.0.0.1>', '<sip:b@10.0.0.2>'], expires: 600 }));
    r.advance(100);
    await ul.tick();
    const s = await run(ul, 'ul_stats');
    assert.equal(s.body, "Domain Registered Expired\n'aliases' 0 0\n'location' 1 1");
    const stats = (r.rc.core as unknown as { stats: Map<string, () => Record<string, number>> }).stats;
    const g = stats.get('usrloc')!();
    assert.equal(g.location_registered, 1);
    assert.equal(g.location_expired, 1);
    assert.equal(g.location_contacts, 2);
  });

  it('ul_dump lists every table, AOR and contact; ul_flush in db_mode 0 is a no-op', async () => {
    const r = await setup();
    await r.save(register({ contacts: ['<sip:a@10.0.0.1>'], expires: 600 }));
    const d = await run(r.ul.state, 'ul_dump');
    assert.match(d.body ?? '', /Domain: 'location' users=1 contacts=1/);
    assert.match(
      d.body ?? '',
      /AOR: alice\n {4}<sip:a@10\.0\.0\.1>;q=0\.00;expires=600 callid=reg-1@195\.37\.77\.100 cseq=1/,
    );
    assert.equal((await run(r.ul.state, 'ul_flush')).code, 200);
  });

  it('tables the script names (save/lookup fixups) exist from start-up; others do not (M6)', async () => {
    const rc = regCore();
    const first = await setup({}, {}, rc);
    first.reg.fixup('lookup', 'aliases');
    first.reg.fixup('save', 'mydomain1');
    const next = await setup(); // the next server started reads what its script declared
    assert.ok(next.ul.state.existing('aliases'));
    assert.ok(next.ul.state.existing('mydomain1'));
    assert.equal(
      (await run(next.ul.state, 'ul_add', 'aliases', '1234', 'sip:john.doe@foo.bar', '0', '1')).code,
      200,
    );
    const later = await setup();
    assert.equal(later.ul.state.existing('aliases'), undefined);
  });

  it('the expiry timer runs every timer_interval on the core timer wheel', async () => {
    const r = await setup({ timer_interval: 5 });
    await r.save(register({ contacts: ['<sip:a@10.0.0.1>'], expires: 2 }));
    r.advance(3);
    r.rc.clock.set(5001);
    r.rc.timers.advance();
    await new Promise((res) => setTimeout(res, 10));
    assert.equal(r.ul.state.existing('location')!.expired, 1);
    await r.ul.state.stop();
  });
});

// ---------------------------------------------------------------------- persistence

const BACKENDS: Backend[] = ['sqlite', 'mysql', 'postgres'];
const unreachable: Partial<Record<Backend, string>> = {};
for (const b of ['mysql', 'postgres'] as const) {
  const why = await probe(b);
  if (why) unreachable[b] = why;
}

for (const backend of BACKENDS) {
  const why = unreachable[backend];
  describe(`usrloc persistence on ${backend}`, { skip: why && SKIP_EXTERNAL ? why : undefined }, () => {
    let t: TestDb;
    before(async () => {
      if (why) throw new Error(why);
      t = await makeTestDb(backend);
    });
    after(async () => {
      await t?.cleanup();
    });

    it('db_mode 1 writes through: a new instance loads the bindings (and drops expired ones)', async () => {
      const a = await setup({ db_mode: 1, db_url: t.url });
      await a.save(register({ contacts: ['<sip:a@10.0.0.1>;q=0.7'], expires: 600 }));
      await a.save(register({ user: 'short', contacts: ['<sip:s@10.0.0.1>'], expires: 60 }));
      await a.ul.state.domain('aliases');
      await run(a.ul.state, 'ul_add', 'aliases', '1234', 'sip:john.doe@foo.bar', '0', '1');
      // no stop(): as after kill -9, nothing is flushed at exit
      const b = await setup({ db_mode: 1, db_url: t.url });
      b.advance(100);
      await b.ul.state.domain('aliases');
      const l = await b.lookup('sip:alice@iptel.org');
      assert.equal(l.ret, 1);
      assert.equal(l.ctx.ruri, 'sip:a@10.0.0.1');
      assert.equal(l.ctx.ruriQ, 700);
      assert.ok((await b.lookup('sip:short@iptel.org')).ret < 0, 'expired while down');
      assert.equal((await b.lookup('sip:1234@foo.bar', 'aliases')).ctx.ruri, 'sip:john.doe@foo.bar');
      const show = await run(b.ul.state, 'ul_show_contact', 'location', 'alice');
      assert.equal(show.body, '<sip:a@10.0.0.1>;q=0.70;expires=500');
      // removal is written through too
      await b.save(register({ contacts: ['*'], expires: 0, callId: 'z@z' }));
      const c = await setup({ db_mode: 1, db_url: t.url });
      assert.equal((await c.lookup('sip:alice@iptel.org')).ret, -1);
      for (const x of [a, b, c]) await x.ul.state.stop();
    });

    it('db_mode 2 writes back on the timer (and ul_flush); not before', async () => {
      const a = await setup({ db_mode: 2, db_url: t.url }, {}, regCore());
      await a.save(register({ user: 'wb', contacts: ['<sip:wb@10.0.0.1>'], expires: 600 }));
      const b = await setup({ db_mode: 2, db_url: t.url });
      assert.equal((await b.lookup('sip:wb@iptel.org')).ret, -1, 'not written yet');
      await a.ul.state.tick();
      const c = await setup({ db_mode: 2, db_url: t.url });
      assert.equal((await c.lookup('sip:wb@iptel.org')).ret, 1);
      await a.save(register({ user: 'wb2', contacts: ['<sip:wb2@10.0.0.1>'], expires: 600 }));
      assert.equal((await run(a.ul.state, 'ul_flush')).code, 200);
      const d = await setup({ db_mode: 2, db_url: t.url });
      assert.equal((await d.lookup('sip:wb2@iptel.org')).ret, 1);
      for (const x of [a, b, c, d]) await x.ul.state.stop();
    });

    it('db_mode 3 shares the database: a binding saved by one instance is found by another', async () => {
      const a = await setup({ db_mode: 3, db_url: t.url });
      const b = await setup({ db_mode: 3, db_url: t.url });
      const { reply } = await a.save(
        register({ user: 'shared', contacts: ['<sip:sh@10.0.0.1>'], expires: 600 }),
      );
      assert.equal(reply?.status, 200);
      const l = await b.lookup('sip:shared@iptel.org');
      assert.equal(l.ret, 1);
      assert.equal(l.ctx.ruri, 'sip:sh@10.0.0.1');
      const second = await b.save(
        register({ user: 'shared', contacts: ['<sip:sh@10.0.0.2>'], expires: 600, callId: 'b@b' }),
      );
      assert.equal(replyContacts(second.reply).length, 2, 'the 200 from b lists a binding made on a');
      await a.save(register({ user: 'shared', contacts: ['*'], expires: 0, callId: 'c@c' }));
      assert.equal((await b.lookup('sip:shared@iptel.org')).ret, -1);
      // expired rows are deleted by the timer
      await a.save(register({ user: 'old', contacts: ['<sip:o@10.0.0.1>'], expires: 60 }));
      a.advance(120);
      await a.ul.state.tick();
      const db = await t.open();
      assert.equal(await db.count('location', { username: 'old' }), 0);
      for (const x of [a, b]) await x.ul.state.stop();
    });
  });
}

describe('usrloc with an unreachable database', () => {
  for (const url of ['mysql://root@127.0.0.1:1/ser', 'postgres://root@127.0.0.1:1/ser']) {
    it(`db_mode 1 on ${url.split(':')[0]}: keeps serving from memory, logs, keeps the change for retry`, async () => {
      const r = await setup({ db_mode: 1, db_url: url });
      const { ret, reply } = await r.save(register({ contacts: ['<sip:a@10.0.0.1>'], expires: 600 }));
      assert.equal(ret, 1);
      assert.equal(reply?.status, 200);
      assert.equal((await r.lookup('sip:alice@iptel.org')).ret, 1);
      assert.ok(
        r.rc.sink.lines.some((l) => /ERROR: usrloc: .*(write-through|cannot find or create)/.test(l)),
      );
      assert.ok(
        r.ul.state.existing('location')!.dirty.size > 0 || !r.ul.state.existing('location')!.tableReady,
      );
      // right after a failure, REGISTERs do not wait for the database again
      const errors = r.ul.state.dbErrors;
      const again = await r.save(register({ contacts: ['<sip:a@10.0.0.2>'], expires: 600, callId: 'x@y' }));
      assert.equal(again.reply?.status, 200);
      assert.equal(r.ul.state.dbErrors, errors, 'no new attempt before the timer');
      await r.ul.state.tick(); // retries, fails again, never throws
      assert.ok(r.ul.state.dbErrors > errors);
      assert.ok(
        r.ul.state.existing('location')!.dirty.get('alice')?.size === 2,
        'both changes kept for retry',
      );
      await r.ul.state.stop();
    });
  }

  it('db_mode 3: save answers 500 and returns -1, lookup returns -3; nothing crashes', async () => {
    const r = await setup({ db_mode: 3, db_url: 'mysql://root@127.0.0.1:1/ser' });
    const { ret, reply } = await r.save(register({ contacts: ['<sip:a@10.0.0.1>'], expires: 600 }));
    assert.equal(ret, -1);
    assert.equal(reply?.status, 500);
    assert.equal((await r.lookup('sip:alice@iptel.org')).ret, -3);
    await r.ul.state.stop();
  });
});

describe('max_contacts_total: the bound on contacts in memory', () => {
  it('refuses new contacts past the bound with 500; refreshes, removals and replacements pass', async () => {
    const r = await setup({ max_contacts_total: 3 });
    const ul = r.ul.state;
    const reg = (user: string, contacts: string[], callId = `${user}@x`, cseq = 1, expires = 600) =>
      r.save(register({ user, contacts, expires, callId, cseq }));
    assert.equal((await reg('a', ['<sip:a@10.0.0.1>', '<sip:a2@10.0.0.1>'])).reply?.status, 200);
    assert.equal((await reg('b', ['<sip:b@10.0.0.2>'])).reply?.status, 200);
    assert.equal(ul.contactCount(), 3);
    // a new AOR: refused, nothing stored, the script sees -1
    const c = await reg('c', ['<sip:c@10.0.0.3>']);
    assert.equal(c.ret, -1);
    assert.equal(c.reply?.status, 500);
    assert.equal((await r.lookup('sip:c@iptel.org')).ret, -1);
    assert.equal(ul.contactCount(), 3);
    assert.equal(ul.refused, 1);
    // a second contact for a registered AOR is new too
    assert.equal((await reg('b', ['<sip:b9@10.0.0.2>'], 'b@x', 2)).reply?.status, 500);
    // a refresh of a stored contact adds nothing
    assert.equal((await reg('b', ['<sip:b@10.0.0.2>'], 'b@x', 3, 900)).reply?.status, 200);
    // one removed and one added in the same REGISTER: the count stays at the bound
    const swap = await r.save(
      register({
        user: 'a',
        contacts: ['<sip:a2@10.0.0.1>;expires=0', '<sip:a3@10.0.0.1>'],
        expires: 600,
        callId: 'a@x',
        cseq: 2,
      }),
    );
    assert.equal(swap.reply?.status, 200);
    assert.deepEqual(
      replyContacts(swap.reply)
        .map((h) => h.replace(/;.*/, ''))
        .sort(),
      ['<sip:a3@10.0.0.1>', '<sip:a@10.0.0.1>'],
    );
    // room again after a removal
    assert.equal((await reg('b', ['*'], 'b@x', 4, 0)).reply?.status, 200);
    assert.equal((await reg('c', ['<sip:c@10.0.0.3>'])).reply?.status, 200);
    const stats = (r.rc.core as unknown as { stats: Map<string, () => Record<string, number>> }).stats;
    assert.equal(stats.get('usrloc')?.().contacts_refused, 2);
    // the log says why once, not per REGISTER
    const lines = r.rc.sink.lines;
    assert.equal(
      lines.filter((l) => l.includes('ERROR: usrloc: 3 contacts in memory')).length,
      1,
      lines.join('\n'),
    );
    assert.equal(lines.filter((l) => l.includes('ERROR: save: cannot store')).length, 1, lines.join('\n'));
  });

  it('ul_add past the bound answers 500; the default bound comes from the heap limit', async () => {
    const r = await setup({ max_contacts_total: 1 });
    const ul = r.ul.state;
    await ul.domain('location');
    assert.equal((await run(ul, 'ul_add', 'location', 'u1', 'sip:1@gw', '0', '1')).code, 200);
    const full = await run(ul, 'ul_add', 'location', 'u2', 'sip:2@gw', '0', '1');
    assert.equal(full.code, 500);
    assert.match(full.reason, /memory full/);
    const dflt = await setup();
    assert.equal(dflt.ul.state.refused, 0);
    assert.ok(defaultMaxContacts() > 100_000, `${defaultMaxContacts()}`);
  });
});
