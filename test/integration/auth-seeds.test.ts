/**
 * The seeds' scripts that use auth: they load as far as this project's auth, auth_db and
 * uri go (what is left is other modules), 003 Example 2-16 fails at start-up as INDEX.md
 * expects, and the registrar of 003 Example 3-10 authenticates with its own secret on two
 * servers (the replication set-up the example is about).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { modules } from '../../src/modules/index.js';
import { check } from '../../src/script/checker.js';
import { parseConfig, stripElisions } from '../../src/script/parser.js';
import { createRegistry } from '../../src/script/registry.js';
import { answer, exchange, makeSubscribers } from './auth-helpers.test.js';
import { haveSeeds, SEED_CONFIGS, SER_JS, type Ser, seedScript, startSer, UdpPeer } from './harness.js';
import { request } from './harness.js';

const OURS = new Set([
  'www_authorize',
  'proxy_authorize',
  'www_challenge',
  'proxy_challenge',
  'consume_credentials',
  'append_rpid_hf',
  'is_rpid_user_e164',
  'check_to',
  'check_from',
  'is_user',
  'has_totag',
  'does_uri_exist',
]);
const OUR_MODULES = ['auth', 'auth_db', 'uri', 'uri_db'];

/** the checker's errors that concern auth, auth_db, uri or uri_db */
function authErrors(file: string): string[] {
  let text = readFileSync(join(SEED_CONFIGS, file), 'utf8');
  const fragment = file.includes('-fragment');
  if (fragment) text = stripElisions(text);
  const ast = parseConfig(text, file, { fragment });
  const res = check(ast, createRegistry(modules), text, { partial: fragment });
  return res.errors
    .filter((e) => {
      const code: string = e.code;
      if (code === 'module-not-available')
        return OUR_MODULES.some((m) => e.message.includes(`module '${m}'`));
      const fn = /function '([^']+)'/.exec(e.message)?.[1] ?? '';
      if (code === 'unknown-function') return OURS.has(fn);
      // fragments leave out the loadmodule lines of what they call
      if (code === 'function-not-loaded') return !fragment && OURS.has(fn);
      return code !== 'duplicate-block';
    })
    .map((e) => `${e.code}: ${e.message}`);
}

describe('seed scripts using auth', { skip: !haveSeeds && 'seed folder missing' }, () => {
  for (const f of [
    '003-ex3-10-replicate.cfg',
    '003-ex3-8-pstn-gateway.cfg',
    '004-openser-nat-mediaproxy.cfg',
    '000-garr-auth-mysql-modules-fragment.cfg',
    '000-garr-register-auth-route2-fragment.cfg',
    '003-from-domain-auth-policy-fragment.cfg',
  ]) {
    it(`${f}: nothing of auth, auth_db, uri or uri_db is missing or rejected`, () => {
      assert.deepEqual(authErrors(f), []);
    });
  }

  it('003-ex2-16 (pre-0.8.11 layout): ser -c stops at modparam("auth", "db_url", …) with file:line:column', () => {
    const file = join(SEED_CONFIGS, '003-ex2-16-module-parameters.cfg');
    const r = spawnSync(process.execPath, [SER_JS, '-c', '-f', file], { encoding: 'utf8', timeout: 15000 });
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /003-ex2-16-module-parameters\.cfg:22:18: module 'auth' has no parameter 'db_url'/,
    );
    assert.match(r.stderr, /function 'proxy_authorize' is exported by module 'auth_db', which is not loaded/);
  });
});

describe("003 Example 3-10 registrar: two servers with the seed's secret", {
  skip: !haveSeeds && 'seed folder missing',
}, () => {
  let primary: Ser;
  let backup: Ser;
  let phone: UdpPeer;
  before(async () => {
    const url = `sqlite://${join(mkdtempSync(join(tmpdir(), 'ser-ex310-')), 'ser.db')}`;
    await makeSubscribers(url, { jiri: 'heslo' }, 'foo.bar');
    // without tm in this build: the t_replicate block goes; the auth part is verbatim
    const text = seedScript('003-ex3-10-replicate.cfg')
      .replace(/^loadmodule "modules\/tm\/tm\.so"\n/m, '')
      .replace(/if \(!src_ip==backup\.foo\.bar\) \{\nt_replicate\("backup\.foo\.bar", "5060"\);\n\};\n/, '')
      .replace(
        /^(loadmodule "modules\/auth_db\/auth_db\.so"\n)/m,
        `$1modparam("auth_db", "db_url", "${url}")\n`,
      );
    assert.doesNotMatch(text, /t_replicate/);
    primary = await startSer(text);
    backup = await startSer(text);
    phone = await UdpPeer.open();
  });
  after(async () => {
    phone.close();
    await primary.stop();
    await backup.stop();
  });

  const reg = (port: number, extra: string[], cseq: number) =>
    request('REGISTER', `sip:127.0.0.1:${port}`, { ip: '127.0.0.1', port: phone.port }, [
      'To: <sip:jiri@foo.bar>',
      'From: <sip:jiri@foo.bar>;tag=j',
      `Contact: <sip:jiri@127.0.0.1:${phone.port}>`,
      'Call-ID: ex310@it',
      `CSeq: ${cseq} REGISTER`,
      ...extra,
    ]);

  it('401 with realm foo.bar and no qop (www_challenge("foo.bar", "0")); 200 on the answer', async () => {
    const c = await exchange(phone, reg(primary.port, [], 1), primary.port);
    assert.equal(c.status, 401);
    assert.equal(c.wwwAuthenticate[0]!.realm, 'foo.bar');
    assert.deepEqual(c.wwwAuthenticate[0]!.qop, []);
    const uri = `sip:127.0.0.1:${primary.port}`;
    const auth = answer({ user: 'jiri', password: 'heslo', challenge: c, method: 'REGISTER', uri });
    assert.equal((await exchange(phone, reg(primary.port, [auth], 2), primary.port)).status, 200);
  });

  it('a nonce of the primary is accepted by the backup (same secret)', async () => {
    const c = await exchange(phone, reg(primary.port, [], 3), primary.port);
    const uri = `sip:127.0.0.1:${backup.port}`;
    const auth = answer({ user: 'jiri', password: 'heslo', challenge: c, method: 'REGISTER', uri });
    assert.equal((await exchange(phone, reg(backup.port, [auth], 4), backup.port)).status, 200);
  });
});
