import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DbError,
  SER_TABLES,
  createTableSql,
  orFalse,
  quoteIdent,
  translatePlaceholders,
} from '../../src/db/index.js';
import { buildReplace, buildSelect, buildUpdate, formatDateTime, parseDateTime } from '../../src/db/sql.js';

describe('placeholders', () => {
  it('translates ? to $1… for PostgreSQL and leaves them for MySQL/SQLite', () => {
    const sql = 'SELECT * FROM location WHERE username = ? AND domain = ? AND q > ?';
    assert.equal(
      translatePlaceholders(sql, 'postgres', 3),
      'SELECT * FROM location WHERE username = $1 AND domain = $2 AND q > $3',
    );
    assert.equal(translatePlaceholders(sql, 'mysql', 3), sql);
    assert.equal(translatePlaceholders(sql, 'sqlite', 3), sql);
  });

  it('skips ? inside literals, quoted identifiers, comments and dollar quotes', () => {
    const sql = `SELECT '?', 'it''s ?', "a?b", x -- what?\n, /* ? */ ?, $$?$$, $t$ ? $t$ FROM t WHERE c = ?`;
    assert.equal(
      translatePlaceholders(sql, 'postgres', 2),
      `SELECT '?', 'it''s ?', "a?b", x -- what?\n, /* ? */ $1, $$?$$, $t$ ? $t$ FROM t WHERE c = $2`,
    );
    // MySQL: backslash escapes and # comments
    assert.equal(
      translatePlaceholders("SELECT 'a\\'?', `q?` # ?\n, ?", 'mysql', 1),
      "SELECT 'a\\'?', `q?` # ?\n, ?",
    );
  });

  it('rejects a parameter count mismatch with a usage DbError', () => {
    assert.throws(
      () => translatePlaceholders('SELECT ?', 'sqlite', 2),
      (e: unknown) => e instanceof DbError && e.code === 'usage',
    );
    assert.throws(() => translatePlaceholders('SELECT 1', 'postgres', 1), /0 "\?" placeholder\(s\) but 1/);
  });
});

describe('identifiers and builders', () => {
  it('quotes per dialect and escapes the quote character', () => {
    assert.equal(quoteIdent('mysql', 'time'), '`time`');
    assert.equal(quoteIdent('postgres', 'we"ird'), '"we""ird"');
    assert.equal(quoteIdent('mysql', 'a`b'), '`a``b`');
    assert.equal(quoteIdent('sqlite', 'ser.acc'), '"ser"."acc"');
    assert.throws(
      () => quoteIdent('sqlite', ''),
      (e: unknown) => e instanceof DbError && e.code === 'usage',
    );
  });

  it('builds select with where, IS NULL, operators, order and limit', () => {
    const b = buildSelect('postgres', 'location', {
      columns: ['contact', 'expires'],
      where: [
        ['username', '=', 'joe'],
        ['received', '=', null],
        ['expires', '>', 5],
        ['socket', '!=', null],
      ],
      orderBy: [{ column: 'q', desc: true }, 'contact'],
      limit: 10,
    });
    assert.equal(
      b.sql,
      'SELECT "contact", "expires" FROM "location" WHERE "username" = ? AND "received" IS NULL AND "expires" > ? ' +
        'AND "socket" IS NOT NULL ORDER BY "q" DESC, "contact" LIMIT 10',
    );
    assert.deepEqual(b.params, ['joe', 5]);
    assert.match(buildSelect('sqlite', 't', { offset: 5 }).sql, /LIMIT -1 OFFSET 5$/);
    assert.throws(() => buildSelect('sqlite', 't', { limit: -1 }), /limit/);
  });

  it('builds update and the per-dialect upsert', () => {
    const u = buildUpdate('mysql', 'grp', { username: 'a' }, { grp: 'ld' });
    assert.equal(u.sql, 'UPDATE `grp` SET `grp` = ? WHERE `username` = ?');
    assert.deepEqual(u.params, ['ld', 'a']);
    const row = { username: 'a', domain: 'd', q: 1 };
    assert.match(
      buildReplace('mysql', 'l', row, ['username', 'domain']).sql,
      /ON DUPLICATE KEY UPDATE `q` = VALUES\(`q`\)$/,
    );
    assert.match(
      buildReplace('postgres', 'l', row, ['username', 'domain']).sql,
      /ON CONFLICT \("username", "domain"\) DO UPDATE SET "q" = excluded."q"$/,
    );
    assert.match(buildReplace('sqlite', 'l', { username: 'a' }, ['username']).sql, /DO NOTHING$/);
    assert.throws(() => buildReplace('sqlite', 'l', row, ['contact']), /key column "contact" has no value/);
  });

  it('formats Dates as UTC text and parses them back', () => {
    const d = new Date(Date.UTC(2005, 0, 2, 3, 4, 5));
    assert.equal(formatDateTime(d), '2005-01-02 03:04:05');
    assert.equal(formatDateTime(new Date(Date.UTC(2005, 0, 2, 3, 4, 5, 67))), '2005-01-02 03:04:05.067');
    assert.equal((parseDateTime('2005-01-02 03:04:05') as Date).getTime(), d.getTime());
    assert.equal((parseDateTime('2005-01-02 03:04:05.123456') as Date).getUTCMilliseconds(), 123);
    assert.equal(parseDateTime('not a date'), 'not a date');
  });
});

describe('schema DDL', () => {
  it('has every SER table the seeds list, plus domain, trusted, usr_preferences', () => {
    const names = SER_TABLES.map((t) => t.name).sort();
    for (const n of [
      'acc',
      'active_sessions',
      'aliases',
      'config',
      'event',
      'grp',
      'location',
      'missed_calls',
      'pending',
      'phonebook',
      'reserved',
      'silo',
      'subscriber',
      'version',
      'domain',
      'trusted',
      'usr_preferences',
    ]) {
      assert.ok(names.includes(n), n);
    }
    const cols = (t: string) => SER_TABLES.find((x) => x.name === t)!.columns.map((c) => c.name);
    for (const c of [
      'username',
      'domain',
      'password',
      'ha1',
      'ha1b',
      'email_address',
      'first_name',
      'last_name',
      'phone',
      'datetime_created',
      'rpid',
    ]) {
      assert.ok(cols('subscriber').includes(c), `subscriber.${c}`);
    }
    for (const c of [
      'username',
      'domain',
      'contact',
      'received',
      'expires',
      'q',
      'callid',
      'cseq',
      'last_modified',
      'flags',
      'user_agent',
      'socket',
      'path',
    ]) {
      assert.ok(cols('location').includes(c), `location.${c}`);
    }
    for (const c of [
      'sip_method',
      'from_uri',
      'to_uri',
      'fromtag',
      'totag',
      'sip_callid',
      'sip_cseq',
      'sip_status',
      'sip_reason',
      'time',
      'src_ip',
      'ruri_user',
      'ruri_domain',
      'digest_username',
      'digest_realm',
    ]) {
      assert.ok(cols('acc').includes(c), `acc.${c}`);
      assert.ok(cols('missed_calls').includes(c), `missed_calls.${c}`);
    }
  });

  it('emits dialect-specific types, keys and indexes', () => {
    const acc = SER_TABLES.find((t) => t.name === 'acc')!;
    const my = createTableSql('mysql', acc);
    assert.equal(my.length, 1, 'MySQL indexes go inside CREATE TABLE');
    assert.match(my[0], /`id` INT UNSIGNED NOT NULL AUTO_INCREMENT/);
    assert.match(my[0], /INDEX `acc_callid` \(`sip_callid`\)/);
    assert.match(my[0], /ENGINE=InnoDB/);
    const pg = createTableSql('postgres', acc);
    assert.match(pg[0], /"id" SERIAL NOT NULL/);
    assert.match(pg[0], /"time" TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP/);
    assert.ok(pg.includes('CREATE INDEX IF NOT EXISTS "acc_callid" ON "acc" ("sip_callid")'));
    const lite = createTableSql('sqlite', acc);
    assert.match(lite[0], /"id" INTEGER PRIMARY KEY AUTOINCREMENT/);
    assert.doesNotMatch(lite[0], /PRIMARY KEY \("id"\)/);
    const loc = createTableSql('sqlite', SER_TABLES.find((t) => t.name === 'location')!);
    assert.match(loc[0], /PRIMARY KEY \("username", "domain", "contact"\)/);
  });
});

describe('orFalse', () => {
  it('turns a DbError into false and passes other errors on', async () => {
    assert.equal(await orFalse(Promise.reject(new DbError('query', 'x'))), false);
    assert.equal(await orFalse(Promise.resolve(3)), 3);
    await assert.rejects(orFalse(Promise.reject(new TypeError('bug'))), TypeError);
  });
});
