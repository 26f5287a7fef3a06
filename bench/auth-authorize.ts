/**
 * www_authorize() per second without the network: each authenticated REGISTER is parsed
 * and checked (nonce HMAC, subscriber row, MD5 response, nonce-count), 1000 users in an
 * SQLite subscriber table; with auth_db's row cache on and off, HA1 stored or computed.
 * Run: node dist/bench/auth-authorize.js [count]   (a few seconds)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '../src/cli/serctl.js';
import type { CoreApi } from '../src/core/api.js';
import type { Endpoint } from '../src/core/context.js';
import { Logger, MemorySink } from '../src/core/log.js';
import type { ModuleDef, ParamValue } from '../src/core/module.js';
import { MessageContext } from '../src/core/msg-context.js';
import { createSchema, openDb } from '../src/db/index.js';
import auth from '../src/modules/auth/index.js';
import type { AuthState } from '../src/modules/auth/state.js';
import authDb, { type AuthDbState, dbAuthorize } from '../src/modules/auth_db/index.js';
import { digestResponse } from '../src/sip/digest.js';
import { parseMessage } from '../src/sip/message.js';

const SRC: Endpoint = { ip: '198.51.100.7', port: 5060, proto: 'udp', af: 4 };
const DST: Endpoint = { ip: '192.0.2.1', port: 5060, proto: 'udp', af: 4 };
const REALM = 'bench.test';
const USERS = 1000;

function withDefaults(def: ModuleDef<unknown>, p: Record<string, ParamValue>) {
  const out: Record<string, ParamValue> = {};
  for (const [k, s] of Object.entries(def.params ?? {})) if (s.default !== undefined) out[k] = s.default;
  return { ...out, ...p };
}

function registerText(i: number, nonce: string): Buffer {
  const user = `user${String(i % USERS).padStart(4, '0')}`;
  const uri = `sip:${REALM}`;
  const response = digestResponse({
    username: user,
    realm: REALM,
    password: 'pw',
    method: 'REGISTER',
    uri,
    nonce,
  });
  return Buffer.from(
    [
      `REGISTER ${uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-a${i};rport`,
      'Max-Forwards: 70',
      `From: <sip:${user}@${REALM}>;tag=a-${i}`,
      `To: <sip:${user}@${REALM}>`,
      `Call-ID: a-${i}@198.51.100.7`,
      'CSeq: 2 REGISTER',
      `Contact: <sip:${user}@198.51.100.7:5060>`,
      `Authorization: Digest username="${user}", realm="${REALM}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
}

async function run(label: string, n: number, url: string, dbParams: Record<string, ParamValue>) {
  const apis = new Map<string, object>();
  const core = {
    log: new Logger(1, new MemorySink()),
    clock: { now: () => performance.now() },
    addRequestFilter: () => {},
    addStats: () => {},
    provideApi: (k: string, a: object) => apis.set(k, a),
    getApi: (k: string) => apis.get(k),
  } as unknown as CoreApi;
  const a = (await auth.init!(core, withDefaults(auth as ModuleDef<unknown>, { secret: 's' }))) as AuthState;
  const d = (await authDb.init!(
    core,
    withDefaults(authDb as ModuleDef<unknown>, { db_url: url, ...dbParams }),
  )) as AuthDbState;
  // one nonce per request, as SIPp's REGISTER-401-REGISTER does (no-qop nonces are single-use)
  const exp = Math.floor(Date.now() / 1000) + 300;
  const msgs = Array.from({ length: n }, (_, i) => registerText(i, a.signer.issue(exp)));
  const t0 = performance.now();
  for (const b of msgs) {
    const ctx = new MessageContext(parseMessage(b, { datagram: true }), SRC, DST, 'request');
    if ((await dbAuthorize(d, ctx, REALM, 'subscriber', 'authorization')) !== 1) throw new Error('refused');
  }
  const ms = performance.now() - t0;
  console.log(
    `${label.padEnd(40)} ${String(Math.round((n / ms) * 1000)).padStart(8)} authorizations/s  (${n} in ${ms.toFixed(0)} ms)`,
  );
  await d.store.db.close();
}

const N = Number(process.argv[2] ?? 20000);
const dir = mkdtempSync(join(tmpdir(), 'ser-bench-auth-'));
try {
  const url = `sqlite://${join(dir, 'ser.db')}`;
  const db = await openDb(url);
  await createSchema(db);
  await db.transaction(async (tx) => {
    for (let i = 0; i < USERS; i++) {
      const u = `user${String(i).padStart(4, '0')}`;
      await tx.insert('subscriber', {
        username: u,
        domain: REALM,
        password: 'pw',
        ...credentials(u, REALM, REALM, 'pw'),
      });
    }
  });
  await db.close();
  await run('(warm-up)', Math.min(N, 5000), url, {});
  await run('stored HA1, row cache (5 s)', N, url, {});
  await run('stored HA1, no cache (SQLite every time)', N, url, { cache_ttl: 0 });
  await run('calculate_ha1, row cache', N, url, { calculate_ha1: 1 });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
