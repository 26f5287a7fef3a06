/**
 * group, domain and permissions in a running ser over real sockets, with the tables
 * changed by serctl as an operator would: domain add/rm (the running ser reloads its
 * cache through the FIFO), acl grant/revoke (counted at once), trusted peers reloaded
 * with trusted_reload. SQLite, MariaDB and PostgreSQL. Plus the start-up errors.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type Backend, createSchema, type Db } from '../../src/db/index.js';
import { makeTestDb, probe, SKIP_EXTERNAL, type TestDb } from '../db/helpers.js';
import { request, type Ser, startSer, UdpPeer } from './harness.js';

const SERCTL = fileURLToPath(new URL('../../src/cli/serctl.js', import.meta.url));

const unreachable: Partial<Record<Backend, string>> = {};
for (const b of ['mysql', 'postgres'] as const) {
  const why = await probe(b);
  if (why) unreachable[b] = why;
}
const skipOf = (b: Backend) => (unreachable[b] && SKIP_EXTERNAL ? unreachable[b] : undefined);

/** sipsak's OPTIONS to `uri` through ser (-p: outbound proxy); its exit code and output */
function sipsak(uri: string, port: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'sipsak',
      ['-v', '-s', uri, '-p', `127.0.0.1:${port}`, '-H', '127.0.0.1'],
      { timeout: 15000 },
      (e, out) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 99) : 0, out }),
    );
  });
}

function serctl(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SERCTL, ...args],
      { env: { PATH: process.env.PATH, PW: '', ...env }, timeout: 15000 },
      (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 99) : 0, out, err }),
    );
  });
}

const CFG = (url: string, fifo: string) => `
fifo="${fifo}"
loadmodule "modules/sl/sl.so"
loadmodule "modules/group/group.so"
loadmodule "modules/domain/domain.so"
loadmodule "modules/permissions/permissions.so"
modparam("group", "db_url", "${url}")
modparam("domain", "db_url", "${url}")
modparam("domain", "db_mode", 1)
modparam("permissions", "db_url", "${url}")
modparam("permissions", "db_mode", 1)
route {
  if (allow_trusted()) { sl_send_reply("200", "Trusted"); break; };
  if (!is_uri_host_local()) { sl_send_reply("403", "Not Local"); break; };
  if (!is_from_local()) { sl_send_reply("403", "Foreign From"); break; };
  if (is_user_in("Request-URI", "free-pstn")) { sl_send_reply("200", "Free"); break; };
  if (is_user_in("From", "ld")) { sl_send_reply("200", "LD"); break; };
  sl_send_reply("404", "No Group");
}
`;

/** status and reason of ser's answer to one request from `peer` */
async function ask(peer: UdpPeer, ser: Ser, ruri: string, from = 'sip:alice@foo.bar'): Promise<string> {
  peer.send(
    request('INVITE', ruri, { ip: peer.ip, port: peer.port }, [
      `From: <${from}>;tag=${randomBytes(4).toString('hex')}`,
    ]),
    ser.port,
  );
  const m = await peer.nextMsg(3000);
  return `${m.status} ${m.reason}`;
}

for (const backend of ['sqlite', 'mysql', 'postgres'] as Backend[]) {
  describe(`group, domain, permissions in a running ser (${backend})`, { skip: skipOf(backend) }, () => {
    let t: TestDb;
    let db: Db;
    let ser: Ser;
    let phone: UdpPeer;
    let gw: UdpPeer;
    const fifo = `/tmp/ser_perm_fifo_${process.pid}_${backend}`;
    const env = () => ({ SER_DBURL: t.url, SER_FIFO: fifo, SIP_DOMAIN: 'foo.bar' });
    before(async () => {
      if (unreachable[backend]) throw new Error(unreachable[backend]);
      t = await makeTestDb(backend);
      db = await t.open();
      await createSchema(db);
      await db.insert('grp', {
        username: '800',
        domain: 'foo.bar',
        grp: 'free-pstn',
        last_modified: new Date(),
      });
      // the gateway stands at 127.0.0.10 and is trusted over UDP
      await db.insert('trusted', { src_ip: '127.0.0.10', proto: 'udp', from_pattern: '' });
      ser = await startSer(CFG(t.url, fifo));
      phone = await UdpPeer.open('127.0.0.1');
      gw = await UdpPeer.open('127.0.0.10');
    });
    after(async () => {
      phone?.close();
      gw?.close();
      await ser?.stop();
      await t?.cleanup();
    });

    it('a trusted source passes whatever it sends; others do not', async () => {
      assert.equal(await ask(gw, ser, 'sip:0612345@elsewhere.org', 'sip:x@anywhere'), '200 Trusted');
      assert.equal(await ask(phone, ser, 'sip:0612345@elsewhere.org'), '403 Not Local');
    });

    it('serctl domain add/rm: the running ser reloads its domain cache', async () => {
      assert.equal(await ask(phone, ser, 'sip:800@foo.bar'), '403 Not Local');
      const add = await serctl(['domain', 'add', 'Foo.Bar'], env());
      assert.equal(add.code, 0, add.err);
      assert.match(add.out, /domain table reloaded by the running ser/);
      assert.equal(await ask(phone, ser, 'sip:800@foo.bar'), '200 Free');
      assert.equal(await ask(phone, ser, 'sip:800@FOO.BAR:5060'), '200 Free');
      assert.equal(await ask(phone, ser, 'sip:800@foo.bar', 'sip:alice@evil.org'), '403 Foreign From');
      const dump = await serctl(['fifo', 'domain_dump'], env());
      assert.equal(dump.out, 'foo.bar\n');
      const rm = await serctl(['domain', 'rm', 'foo.bar'], env());
      assert.equal(rm.code, 0, rm.err);
      assert.equal(await ask(phone, ser, 'sip:800@foo.bar'), '403 Not Local');
      assert.equal((await serctl(['domain', 'add', 'foo.bar'], env())).code, 0);
    });

    it('sipsak: an OPTIONS for a free number is answered once its domains are local', async (t) => {
      if (!existsSync('/usr/bin/sipsak')) return t.skip('sipsak missing');
      const before = await sipsak('sip:800@localhost', ser.port);
      assert.equal(before.code, 1, before.out);
      assert.match(before.out, /^SIP\/2\.0 403 Not Local/m);
      // sipsak's From is sip:sipsak@127.0.0.1: that domain must be local as well
      for (const d of ['localhost', '127.0.0.1'])
        assert.equal((await serctl(['domain', 'add', d], env())).code, 0);
      const after = await sipsak('sip:800@localhost', ser.port);
      assert.equal(after.code, 0, after.out);
      assert.match(after.out, /^SIP\/2\.0 200 Free/m);
      for (const d of ['localhost', '127.0.0.1'])
        assert.equal((await serctl(['domain', 'rm', d], env())).code, 0);
    });

    it('serctl acl grant/revoke (M8) takes effect on the next request', async () => {
      assert.equal(await ask(phone, ser, 'sip:0049301234@foo.bar', 'sip:bob@foo.bar'), '404 No Group');
      assert.equal((await serctl(['add', 'bob', 'bobpw', 'bob@foo.bar'], env())).code, 0);
      const g = await serctl(['acl', 'grant', 'bob', 'ld'], env());
      assert.equal(g.code, 0, g.err);
      assert.match(g.out, /\| bob +\| ld +\| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\|/);
      assert.equal(await ask(phone, ser, 'sip:0049301234@foo.bar', 'sip:bob@foo.bar'), '200 LD');
      assert.equal((await serctl(['acl', 'revoke', 'bob', 'ld'], env())).code, 0);
      assert.equal(await ask(phone, ser, 'sip:0049301234@foo.bar', 'sip:bob@foo.bar'), '404 No Group');
    });

    it('trusted_reload picks up a new trusted peer', async () => {
      const other = await UdpPeer.open('127.0.0.11');
      try {
        assert.equal(await ask(other, ser, 'sip:1@nowhere.org'), '403 Not Local');
        await db.insert('trusted', { src_ip: '127.0.0.11', proto: 'any', from_pattern: '^sip:pbx@' });
        assert.equal(await ask(other, ser, 'sip:1@nowhere.org', 'sip:pbx@x'), '403 Not Local', 'cached');
        const r = await serctl(['fifo', 'trusted_reload'], env());
        assert.equal(r.code, 0, r.out);
        assert.equal(await ask(other, ser, 'sip:1@nowhere.org', 'sip:pbx@x'), '200 Trusted');
        assert.equal(await ask(other, ser, 'sip:1@nowhere.org', 'sip:someone@x'), '403 Not Local');
      } finally {
        other.close();
      }
    });
  });
}

describe('start-up errors', () => {
  it('a malformed db_url is a load-time error with file:line:column', async () => {
    await assert.rejects(
      startSer(
        'loadmodule "sl.so"\nloadmodule "group.so"\nmodparam("group", "db_url", "mysql:ser:heslo@localhost/ser")\nroute { break; }\n',
      ),
      /ser\.cfg:\d+:\d+.*parameter 'db_url' of module 'group'.*missing "\/\/"/s,
    );
  });
  it('a database without the grp table stops start-up, naming the table and the fix', async () => {
    const t = await makeTestDb('sqlite');
    try {
      await assert.rejects(
        startSer(
          `loadmodule "sl.so"\nloadmodule "group.so"\nmodparam("group", "db_url", "${t.url}")\nroute { break; }\n`,
        ),
        /init of module 'group' failed: group: table "grp" has no row in the version table \(create the schema: serctl db create\)/,
      );
    } finally {
      await t.cleanup();
    }
  });
});
