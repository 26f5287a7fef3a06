/** permissions: allow_trusted over the trusted table, db_mode 0 and 1, trusted_reload/trusted_dump, on every backend. */
import assert from 'node:assert/strict';
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
        await (p.state as TrustedState).db.close();
        assert.equal((await mg.trusted_reload.run(p.state, [])).code, 500);
        assert.equal(await p.call(from('172.16.0.9', 'udp'), 'allow_trusted'), 1, 'cache still in use');
      } finally {
        await permissions.destroy?.(p.state);
      }
    });

    it('db_mode 0 with a failing database: false, logged', async () => {
      const { core, sink } = fakeCore();
      const p = await load(permissions, core, { db_url: t.url });
      await (p.state as TrustedState).db.close();
      assert.equal(await p.call(from('192.168.0.10', 'udp'), 'allow_trusted'), -1);
      assert.match(sink.lines.join('\n'), /allow_trusted\(\): query failed/);
    });
  });
}
