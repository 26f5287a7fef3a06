/** uri / uri_db: check_to, check_from, is_user, has_totag, does_uri_exist (SQLite). */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createSchema, openDb } from '../../src/db/index.js';
import { setAuthorized } from '../../src/modules/auth/credentials.js';
import { uri, uriDb } from '../../src/modules/uri/index.js';
import { ctxOf, fakeCore, load } from './helpers.js';

function msg(o: { to?: string; from?: string; ruri?: string } = {}) {
  const lines = [
    `INVITE ${o.ruri ?? 'sip:bob@iptel.org'} SIP/2.0`,
    'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1',
    `From: ${o.from ?? '<sip:alice@iptel.org>;tag=1'}`,
    `To: ${o.to ?? '<sip:bob@iptel.org>'}`,
    'Call-ID: c@x',
    'CSeq: 1 INVITE',
    'Content-Length: 0',
  ];
  return ctxOf(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`));
}

describe('uri: identity checks against the authorized credentials', () => {
  it('check_to / check_from compare user parts case-insensitively; -1 when nothing was authorized', async () => {
    const m = await load(uri, fakeCore().core);
    const ctx = msg({ to: '<sip:Alice@iptel.org>', from: '"A" <sip:alice@other.org>;tag=2' });
    assert.equal(await m.call(ctx, 'check_to'), -1);
    setAuthorized(ctx, 'alice', 'iptel.org', 'authorization:0');
    assert.equal(await m.call(ctx, 'check_to'), 1);
    assert.equal(await m.call(ctx, 'check_from'), 1);
    const joe = msg({ to: '<sip:alice@iptel.org>' });
    setAuthorized(joe, 'joe', 'iptel.org', 'authorization:0');
    assert.equal(await m.call(joe, 'check_to'), -1);
    assert.equal(await m.call(joe, 'check_from'), -1);
    // "user@domain" digest usernames compare by their user part; escapes in the URI are undone
    const esc = msg({ to: '<sip:ali%63e@iptel.org>' });
    setAuthorized(esc, 'alice@iptel.org', 'iptel.org', 'authorization:0');
    assert.equal(await m.call(esc, 'check_to'), 1);
    // no user part in To
    const nouser = msg({ to: '<sip:iptel.org>' });
    setAuthorized(nouser, 'alice', 'iptel.org', 'authorization:0');
    assert.equal(await m.call(nouser, 'check_to'), -1);
  });

  it('is_user(name) is exact; has_totag', async () => {
    const m = await load(uri, fakeCore().core);
    const ctx = msg({ to: '<sip:bob@iptel.org>;tag=abc' });
    assert.equal(await m.call(ctx, 'is_user', 'alice'), -1);
    setAuthorized(ctx, 'alice', 'iptel.org', 'authorization:0');
    assert.equal(await m.call(ctx, 'is_user', 'alice'), 1);
    assert.equal(await m.call(ctx, 'is_user', 'Alice'), -1);
    assert.equal(await m.call(ctx, 'has_totag'), 1);
    assert.equal(await m.call(msg(), 'has_totag'), -1);
  });

  it('does_uri_exist: a subscriber with the R-URI user (and domain with use_domain); -1 on DB error', async () => {
    const url = `sqlite://${join(mkdtempSync(join(tmpdir(), 'ser-uri-')), 'ser.db')}`;
    const db = await openDb(url);
    await createSchema(db);
    await db.insert('subscriber', { username: 'bob', domain: 'iptel.org' });
    await db.close();
    const m = await load(uriDb, fakeCore().core, { db_url: url });
    assert.equal(await m.call(msg(), 'does_uri_exist'), 1);
    assert.equal(await m.call(msg({ ruri: 'sip:carol@iptel.org' }), 'does_uri_exist'), -1);
    assert.equal(await m.call(msg({ ruri: 'sip:bob@other.org' }), 'does_uri_exist'), 1);
    const d = await load(uriDb, fakeCore().core, { db_url: url, use_domain: 1 });
    assert.equal(await d.call(msg({ ruri: 'sip:bob@other.org' }), 'does_uri_exist'), -1);
    assert.equal(await d.call(msg({ ruri: 'sip:bob@IPTEL.org' }), 'does_uri_exist'), 1);
    const { core, sink } = fakeCore();
    const bad = await load(uriDb, core, { db_url: url, subscriber_table: 'nope' });
    const ctx = msg();
    assert.equal(await bad.call(ctx, 'does_uri_exist'), -1);
    assert.equal(ctx.lastError?.code, 500);
    assert.match(sink.lines.join('\n'), /cannot read table 'nope'/);
    for (const x of [m, d, bad]) await uriDb.destroy?.(x.state);
  });
});
