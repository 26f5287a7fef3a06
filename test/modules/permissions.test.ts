/** permissions: allow_trusted over the trusted table, db_mode 0 and 1, trusted_reload/trusted_dump, on every backend. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Endpoint } from '../../src/core/context.js';
import { FixupError } from '../../src/core/module.js';
import { MessageContext } from '../../src/core/msg-context.js';
import { type Backend, createSchema, type Db } from '../../src/db/index.js';
import permissions, { type TrustedState } from '../../src/modules/permissions/index.js';
import { parseMessage } from '../../src/sip/message.js';
import { makeTestDb, probe, SKIP_EXTERNAL, type TestDb } from '../db/helpers.js';
import { DST, fakeCore, invite, load } from './helpers.js';

const unreachable: Partial<Record<Backend, string>> = {};
for (const b of ['mysql', 'postgres'] as const) {
  const why = await probe(b);
  if (why) unreachable[b] = why;
}
const skipOf = (b: Backend) => (unreachable[b] && SKIP_EXTERNAL ? unreachable[b] : undefined);

function from(ip: string, proto: Endpoint['proto'], fromUri = 'sip:alice@iptel.org'): MessageContext {
  const text = invite().toString('latin1').replace('"alice" <sip:alice@iptel.org>', `<${fromUri}>`);
  return new MessageContext(
    parseMessage(Buffer.from(text, 'latin1'), { datagram: proto === 'udp' }),
    { ip, port: 5060, proto, af: ip.includes(':') ? 6 : 4 },
    DST,
    'request',
  );
}

const mg = permissions.mgmt!;

describe('permissions parameters', () => {
  it('db_mode is 0 or 1; names are identifiers; db_url must parse', () => {
    assert.throws(() => permissions.params!.db_mode.validate!(3), FixupError);
    assert.throws(() => permissions.params!.source_col.validate!('src ip'), FixupError);
    assert.throws(() => permissions.params!.db_url.validate!('postgres:/x'), FixupError);
  });
});

for (const backend of ['sqlite', 'mysql', 'postgres'] as Backend[]) {
  describe(`allow_trusted on ${backend}`, { skip: skipOf(backend) }, () => {
    let t: TestDb;
    let db: Db;
    before(async () => {
      if (unreachable[backend]) throw new Error(unreachable[backend]);
      t = await makeTestDb(backend);
      db = await t.open();
      await createSchema(db, { tables: ['trusted'] });
      const rows: [string, string, string][] = [
        ['192.168.0.10', 'any', ''], // the PSTN gateway: anything it sends
        ['10.0.0.1', 'udp', '^sip:.*@garr\\.it$'],
        ['10.0.0.2', 'tcp', ''],
        ['10.0.0.3', 'any', '(unclosed'],
        ['10.0.0.3', 'udp', '^sip:ok@'],
        ['2001:db8::1', 'any', ''],
      ];
      for (const [src_ip, proto, from_pattern] of rows)
        await db.insert('trusted', { src_ip, proto, from_pattern });
    });
    after(async () => {
      await t?.cleanup();
    });

    for (const mode of [0, 1]) {
      it(`db_mode ${mode}: source IP, transport and From pattern`, async () => {
        const { core, sink } = fakeCore();
        const p = await load(permissions, core, { db_url: t.url, db_mode: mode });
        try {
          assert.equal(await p.call(from('192.168.0.10', 'udp'), 'allow_trusted'), 1);
          assert.equal(await p.call(from('192.168.0.10', 'tcp'), 'allow_trusted'), 1);
          assert.equal(await p.call(from('192.168.0.11', 'udp'), 'allow_trusted'), -1);
          assert.equal(await p.call(from('10.0.0.1', 'udp', 'sip:x@garr.it'), 'allow_trusted'), 1);
          assert.equal(await p.call(from('10.0.0.1', 'udp', 'sip:x@GARR.IT'), 'allow_trusted'), 1);
          assert.equal(await p.call(from('10.0.0.1', 'udp', 'sip:x@garr.it.evil'), 'allow_trusted'), -1);
          assert.equal(await p.call(from('10.0.0.1', 'tcp', 'sip:x@garr.it'), 'allow_trusted'), -1);
          assert.equal(await p.call(from('10.0.0.2', 'tcp'), 'allow_trusted'), 1);
          assert.equal(await p.call(from('10.0.0.2', 'udp'), 'allow_trusted'), -1);
          // a row with a broken pattern is skipped (and logged once); the other row still counts
          assert.equal(await p.call(from('10.0.0.3', 'udp', 'sip:ok@x'), 'allow_trusted'), 1);
          assert.equal(await p.call(from('10.0.0.3', 'udp', 'sip:no@x'), 'allow_trusted'), -1);
          assert.match(sink.lines.join('\n'), /"\(unclosed" is not a valid regular expression/);
          assert.equal(await p.call(from('2001:db8::1', 'udp'), 'allow_trusted'), 1);
        } finally {
          await permissions.destroy?.(p.state);
        }
      });
    }

    it('db_mode 1 keeps its cache until trusted_reload; trusted_dump lists the rows', async () => {
      const p = await load(permissions, fakeCore().core, { db_url: t.url, db_mode: 1 });
      try {
        await db.insert('trusted', { src_ip: '172.16.0.9', proto: 'any', from_pattern: '' });
        assert.equal(await p.call(from('172.16.0.9', 'udp'), 'allow_trusted'), -1);
        const r = await mg.trusted_reload.run(p.state, []);
        assert.equal(r.code, 200);
        assert.equal(await p.call(from('172.16.0.9', 'udp'), 'allow_trusted'), 1);
        const dump = await mg.trusted_dump.run(p.state, []);
        assert.ok(dump.body?.split('\n').includes('10.0.0.1 udp ^sip:.*@garr\\.it$'), dump.body);
        assert.ok(dump.body?.split('\n').includes('192.168.0.10 any *'), dump.body);
        await db.delete('trusted', { src_ip: '172.16.0.9' });
        await (p.state as TrustedState).db!.close();
        assert.equal((await mg.trusted_reload.run(p.state, [])).code, 500);
        assert.equal(await p.call(from('172.16.0.9', 'udp'), 'allow_trusted'), 1, 'cache still in use');
      } finally {
        await permissions.destroy?.(p.state);
      }
    });

    it('db_mode 0 with a failing database: false, logged', async () => {
      const { core, sink } = fakeCore();
      const p = await load(permissions, core, { db_url: t.url });
      await (p.state as TrustedState).db!.close();
      assert.equal(await p.call(from('192.168.0.10', 'udp'), 'allow_trusted'), -1);
      assert.match(sink.lines.join('\n'), /allow_trusted\(\): query failed/);
    });
  });
}

describe('allow_trusted without a db_url', () => {
  it('needs no database and trusts nobody (SER: the trusted table is off)', async () => {
    const { core, sink } = fakeCore();
    const p = await load(permissions, core, {});
    assert.equal(await p.call(from('192.168.0.10', 'udp'), 'allow_trusted'), -1);
    assert.match(sink.lines.join('\n'), /no db_url: no peer is trusted/);
    assert.equal((await mg.trusted_dump.run(p.state, [])).body, '');
    await permissions.destroy?.(p.state);
  });
});

describe('allow_routing (permissions.allow / permissions.deny)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'perm-rules-'));
  const allow = join(dir, 'pstn.allow');
  const deny = join(dir, 'pstn.deny');
  writeFileSync(
    allow,
    [
      '# From : Request-URI',
      'ALL : "^sip:361[0-9]*@abc\\.com$" EXCEPT "^sip:3619@abc\\.com$", \\',
      '      "^sip:3618@abc\\.com$"',
      '"^sip:boss@abc\\.com$" : ALL   # the boss calls anywhere',
      '',
    ].join('\n'),
  );
  writeFileSync(deny, 'ALL : "^sip:00", "^sip:361"\n');
  const ctx = (fromUri: string, ruri: string, branches: string[] = []) => {
    const c = from('10.0.0.1', 'udp', fromUri);
    c.ruri = ruri;
    for (const uri of branches) c.branches.push({ uri, q: -1 });
    return c;
  };

  it('allow file first, then deny file, else allowed; EXCEPT and line continuation', async () => {
    const p = await load(permissions, fakeCore().core, {
      default_allow_file: allow,
      default_deny_file: deny,
    });
    try {
      const check = (f: string, r: string, b?: string[]) => p.call(ctx(f, r, b), 'allow_routing');
      assert.equal(await check('sip:x@abc.com', 'sip:3612@abc.com'), 1, 'allowed by the first rule');
      assert.equal(await check('sip:x@abc.com', 'sip:3619@abc.com'), -1, 'EXCEPT, then denied by ^sip:361');
      assert.equal(await check('sip:x@abc.com', 'sip:3618@abc.com'), -1, 'EXCEPT on the continued line');
      assert.equal(await check('sip:x@abc.com', 'sip:0044123@gw'), -1, 'denied');
      assert.equal(await check('sip:BOSS@abc.com', 'sip:0044123@gw'), 1, 'allow wins; case-insensitive');
      assert.equal(await check('sip:x@abc.com', 'sip:555@abc.com'), 1, 'no rule: allowed');
      assert.equal(await check('sip:x@abc.com', 'sip:3612@abc.com', ['sip:0044@gw']), -1, 'a denied branch');
      // the three forms of the call
      assert.equal(await p.call(ctx('sip:x@abc.com', 'sip:0049@gw'), 'allow_routing', join(dir, 'pstn')), -1);
      assert.equal(await p.call(ctx('sip:x@abc.com', 'sip:0049@gw'), 'allow_routing', allow, deny), -1);
      assert.equal(
        await p.call(ctx('sip:x@abc.com', 'sip:0049@gw'), 'allow_routing', join(dir, 'none')),
        1,
        'no files: allowed',
      );
    } finally {
      await permissions.destroy?.(p.state);
    }
  });

  it('check_all_branches 0 looks at the Request-URI only', async () => {
    const p = await load(permissions, fakeCore().core, {
      default_allow_file: allow,
      default_deny_file: deny,
      check_all_branches: 0,
    });
    assert.equal(await p.call(ctx('sip:x@abc.com', 'sip:3612@abc.com', ['sip:0044@gw']), 'allow_routing'), 1);
    await permissions.destroy?.(p.state);
  });

  it('a rule file with a syntax error is a load-time error naming file and line', async () => {
    const bad = join(dir, 'bad.allow');
    writeFileSync(bad, '# ok\nALL "^sip:1"\n');
    const p = await load(permissions, fakeCore().core, {});
    assert.throws(() => p.fixup('allow_routing', bad, deny), new RegExp(`${bad}:2: ':' expected`));
    writeFileSync(bad, 'ALL : "^sip:(1"\n');
    assert.throws(() => p.fixup('allow_routing', bad, deny), /bad\.allow:1: invalid regular expression/);
    writeFileSync(bad, 'ALL : "^sip:1\n');
    assert.throws(() => p.fixup('allow_routing', bad, deny), /unterminated string/);
    await assert.rejects(
      load(permissions, fakeCore().core, { default_allow_file: bad }),
      /permissions: .*unterminated/,
    );
    await permissions.destroy?.(p.state);
  });
});
