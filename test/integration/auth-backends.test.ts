/**
 * serctl add / passwd / rm as an operator runs them, against a running ser, on SQLite,
 * MariaDB and PostgreSQL: HA1/HA1b with SIP_DOMAIN as the realm, no clear-text password,
 * and auth_db's row cache never serves a changed or removed password.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { credentials } from '../../src/cli/serctl.js';
import type { Backend } from '../../src/db/index.js';
import { makeTestDb, probe, SKIP_EXTERNAL, type TestDb } from '../db/helpers.js';
import { AUTH_CFG, answer, exchange, REALM, register } from './auth-helpers.test.js';
import { type Ser, startSer, UdpPeer } from './harness.js';

const SERCTL = fileURLToPath(new URL('../../src/cli/serctl.js', import.meta.url));

function serctl(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SERCTL, ...args],
      { env: { PATH: process.env.PATH, ...env } as NodeJS.ProcessEnv, timeout: 15000 },
      (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 99) : 0, out, err }),
    );
  });
}

const unreachable: Partial<Record<Backend, string>> = {};
for (const b of ['mysql', 'postgres'] as const) {
  const why = await probe(b);
  if (why) unreachable[b] = why;
}
const skipOf = (b: Backend) => (unreachable[b] && SKIP_EXTERNAL ? unreachable[b] : undefined);

for (const backend of ['sqlite', 'mysql', 'postgres'] as Backend[]) {
  describe(`auth_db and serctl on ${backend}`, { skip: skipOf(backend) }, () => {
    let t: TestDb;
    let ser: Ser;
    let phone: UdpPeer;
    const fifo = `/tmp/ser_auth_fifo_${process.pid}_${randomBytes(4).toString('hex')}`;
    let env: Record<string, string>;
    let cseq = 1;
    /** 401 → answer → the final status */
    const login = async (user: string, password: string): Promise<number> => {
      const id = `l${cseq}`;
      const c = await exchange(phone, register(phone, user, [], cseq++, id), ser.port);
      assert.equal(c.status, 401);
      const auth = answer({ user, password, challenge: c, method: 'REGISTER', uri: `sip:${REALM}` });
      return (await exchange(phone, register(phone, user, [auth], cseq++, id), ser.port)).status ?? 0;
    };
    before(async () => {
      if (unreachable[backend]) throw new Error(unreachable[backend]);
      t = await makeTestDb(backend);
      env = { SER_DBURL: t.url, SIP_DOMAIN: REALM, SER_FIFO: fifo };
      const made = await serctl(['db', 'create'], env);
      assert.equal(made.code, 0, made.err);
      // cache_ttl 60: only the FIFO flush from serctl can make a change visible in time
      ser = await startSer(`fifo="${fifo}"\n${AUTH_CFG(t.url, 'modparam("auth_db", "cache_ttl", 60)')}`);
      phone = await UdpPeer.open();
    });
    after(async () => {
      phone?.close();
      await ser?.stop();
      await t?.cleanup();
    });

    it('serctl add stores HA1 and HA1b for the SIP_DOMAIN realm, no clear-text password', async () => {
      const r = await serctl(['add', 'alice', 'wonderland', 'alice@example.org'], env);
      assert.equal(r.code, 0, r.err);
      const db = await t.open();
      const row = await db.selectOne<Record<string, string>>('subscriber', { where: { username: 'alice' } });
      const want = credentials('alice', REALM, REALM, 'wonderland');
      assert.equal(row?.domain, REALM);
      assert.equal(row?.ha1, want.ha1);
      assert.equal(row?.ha1b, want.ha1b);
      assert.equal(row?.password, '');
    });

    it('REGISTER: 401, then 200 with the password; a wrong one gets 401', async () => {
      assert.equal(await login('alice', 'wonderland'), 200);
      assert.equal(await login('alice', 'wrong'), 401);
    });

    it('serctl passwd: the new password works at once and the old one is refused at once', async () => {
      assert.equal(await login('alice', 'wonderland'), 200, 'cached now');
      const r = await serctl(['passwd', 'alice', 'looking-glass'], env);
      assert.equal(r.code, 0, r.err);
      assert.equal(await login('alice', 'wonderland'), 401);
      assert.equal(await login('alice', 'looking-glass'), 200);
    });

    it('serctl rm: the user can no longer register', async () => {
      const r = await serctl(['rm', 'alice'], env);
      assert.equal(r.code, 0, r.err);
      assert.equal(await login('alice', 'looking-glass'), 401);
    });
  });
}
