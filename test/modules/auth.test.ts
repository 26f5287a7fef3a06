/**
 * auth + auth_db with parsed requests and a real SQLite subscriber table: challenges,
 * nonces, the return values, qop auth-int, SHA-256, -sess, the row cache, consume_credentials,
 * Remote-Party-ID.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { credentials } from '../../src/cli/serctl.js';
import type { CoreApi } from '../../src/core/api.js';
import { L_DBG, Logger, MemorySink } from '../../src/core/log.js';
import { FixupError, type ParamValue } from '../../src/core/module.js';
import type { MessageContext } from '../../src/core/msg-context.js';
import { createSchema, openDb } from '../../src/db/index.js';
import auth, { parseAlgorithms, qopArg } from '../../src/modules/auth/index.js';
import {
  AUTH_ERROR,
  AUTH_INVALID_PASSWORD,
  AUTH_NO_CREDENTIALS,
  AUTH_NONCE_REUSED,
  AUTH_OK,
  AUTH_STALE_NONCE,
  AUTH_STOP,
  AUTH_USER_UNKNOWN,
} from '../../src/modules/auth/authorize.js';
import { authorizedCredentials } from '../../src/modules/auth/credentials.js';
import { hash53, NonceSigner, NonceTracker } from '../../src/modules/auth/nonce.js';
import type { AuthState } from '../../src/modules/auth/state.js';
import authDb, { type AuthDbState } from '../../src/modules/auth_db/index.js';
import { digestResponse, formatChallenge, safeEqual } from '../../src/sip/digest.js';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { buildReply } from '../../src/sip/reply.js';
import { ctxOf, load } from './helpers.js';

const REALM = 'iptel.org';

interface Rig {
  core: CoreApi;
  sent: SipMessage[];
  sink: MemorySink;
  auth: Awaited<ReturnType<typeof load<AuthState>>>;
  db: Awaited<ReturnType<typeof load<AuthDbState>>>;
  /** moves the auth module's wall clock */
  shift(sec: number): void;
  dbUrl: string;
}

async function rig(
  authParams: Record<string, ParamValue> = {},
  dbParams: Record<string, ParamValue> = {},
  users: Record<string, string> = { alice: 'secret', joe: 'cool' },
): Promise<Rig> {
  const dbUrl = `sqlite://${join(mkdtempSync(join(tmpdir(), 'ser-authu-')), 'ser.db')}`;
  const db = await openDb(dbUrl);
  await createSchema(db);
  for (const [u, pw] of Object.entries(users)) {
    const c = credentials(u, REALM, REALM, pw);
    await db.insert('subscriber', {
      username: u,
      domain: REALM,
      password: pw,
      ha1: c.ha1,
      ha1b: c.ha1b,
      rpid: u === 'alice' ? '<sip:+4930123456@iptel.org>' : null,
    });
  }
  await db.close();
  const sink = new MemorySink();
  const sent: SipMessage[] = [];
  const apis = new Map<string, object>();
  let now = 1_000;
  const core = {
    log: new Logger(L_DBG, sink),
    clock: { now: () => now },
    buildReply: (
      ctx: MessageContext,
      code: number,
      reason: string,
      x?: { headers?: string[]; toTag?: string },
    ) => buildReply(ctx.msg, code, reason, { headers: x?.headers, toTag: x?.toTag }),
    sendToOrigin: (_m: SipMessage, _o: unknown, b: Buffer) => {
      sent.push(parseMessage(b, { datagram: true }));
      return true;
    },
    addRequestFilter: () => {},
    addStats: () => {},
    provideApi: (n: string, a: object) => apis.set(n, a),
    getApi: (n: string) => apis.get(n),
  } as unknown as CoreApi;
  const a = await load(auth, core, { secret: 'shared-secret', ...authParams });
  let shift = 0;
  a.state.wallMs = () => Date.now() + shift * 1000;
  const d = await load(authDb, core, { db_url: dbUrl, ...dbParams });
  return {
    core,
    sent,
    sink,
    auth: a,
    db: d,
    dbUrl,
    shift: (s) => {
      shift += s;
      now += s * 1000;
    },
  };
}

let n = 0;
function req(method: string, extra: string[] = [], body = ''): MessageContext {
  n++;
  const given = new Set(extra.map((l) => l.slice(0, l.indexOf(':')).toLowerCase()));
  const defaults = [
    `Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-u${n}`,
    'From: <sip:alice@iptel.org>;tag=f1',
    `To: <sip:${method === 'REGISTER' ? 'alice' : 'bob'}@iptel.org>`,
    `Call-ID: u${n}@10.0.0.1`,
    `CSeq: ${n} ${method}`,
  ].filter((l) => !given.has(l.slice(0, l.indexOf(':')).toLowerCase()));
  const lines = [
    `${method} sip:${method === 'REGISTER' ? REALM : `bob@${REALM}`} SIP/2.0`,
    ...defaults,
    ...extra,
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  return ctxOf(Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1'));
}

/** challenge with www_challenge/proxy_challenge and return the challenge header */
async function challengeOf(r: Rig, kind: 'www' | 'proxy', qop: string, method = 'REGISTER') {
  await r.auth.call(req(method), `${kind}_challenge`, REALM, qop);
  const m = r.sent.at(-1)!;
  return kind === 'www' ? m.wwwAuthenticate : m.proxyAuthenticate;
}

function creds(o: {
  user?: string;
  password?: string;
  nonce: string;
  method?: string;
  uri?: string;
  qop?: string;
  nc?: number;
  algorithm?: string;
  body?: string;
  proxy?: boolean;
  realm?: string;
}): string {
  const method = o.method ?? 'REGISTER';
  const uri = o.uri ?? `sip:${REALM}`;
  const nc = o.qop ? (o.nc ?? 1).toString(16).padStart(8, '0') : undefined;
  const response = digestResponse({
    algorithm: o.algorithm,
    username: o.user ?? 'alice',
    realm: o.realm ?? REALM,
    password: o.password ?? 'secret',
    method,
    uri,
    nonce: o.nonce,
    qop: o.qop,
    nc,
    cnonce: o.qop ? 'abc123' : undefined,
    body: o.body,
  });
  let v = `Digest username="${o.user ?? 'alice'}", realm="${o.realm ?? REALM}", nonce="${o.nonce}", uri="${uri}", response="${response}"`;
  if (o.algorithm) v += `, algorithm=${o.algorithm}`;
  if (o.qop) v += `, qop=${o.qop}, nc=${nc}, cnonce="abc123"`;
  return `${o.proxy ? 'Proxy-Authorization' : 'Authorization'}: ${v}`;
}

describe('nonces', () => {
  it('carry their expiry and verify only with the same secret', () => {
    const s = new NonceSigner('a');
    const nonce = s.issue(0x5f000000);
    assert.match(nonce, /^5f000000[0-9a-f]{48}$/);
    assert.equal(s.verify(nonce), 0x5f000000);
    assert.equal(new NonceSigner('a').verify(nonce), 0x5f000000, 'another server with the same secret');
    assert.equal(new NonceSigner('b').verify(nonce), undefined);
    // the expiry cannot be moved without breaking the signature
    assert.equal(s.verify(`6f${nonce.slice(2)}`), undefined);
    assert.equal(s.verify('short'), undefined);
    assert.equal(s.verify(nonce.toUpperCase()), undefined);
    // nor the sequence number
    const seq = nonce.slice(16, 24);
    const other = seq === '00000000' ? '00000001' : '00000000';
    assert.equal(s.verify(`${nonce.slice(0, 16)}${other}${nonce.slice(24)}`), undefined);
  });

  it('never repeat within one process, even by the hundred thousand in one second', () => {
    // 32 random bits alone made two nonces of one second coincide about once in nine minutes
    // at 4,000 challenges/s; a one-time nonce handed to two phones refuses the second as a replay
    const s = new NonceSigner('k', 3);
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++) seen.add(s.issue(0x60000000));
    assert.equal(seen.size, 200_000);
    const one = s.issue(0x60000000);
    assert.equal(one.slice(8, 10), '03', 'the worker index leads the random part');
    assert.equal(s.verify(one), 0x60000000);
  });

  it('the tracker: nc must grow, no-qop nonces are single-use, retransmissions pass', () => {
    const t = new NonceTracker();
    assert.equal(t.use('n1', 100, '00000001', 'k1', 0), 'ok');
    assert.equal(t.use('n1', 100, '00000001', 'k1', 1000), 'retransmission');
    assert.equal(t.use('n1', 100, '00000001', 'k2', 1000), 'replay');
    assert.equal(t.use('n1', 100, '00000002', 'k2', 1000), 'ok');
    assert.equal(t.use('n1', 100, '00000002', 'k2', 40_000), 'replay', 'a late copy is no retransmission');
    assert.equal(t.use('n2', 100, undefined, 'k3', 0), 'ok');
    assert.equal(t.use('n2', 100, undefined, 'k4', 0), 'replay');
  });

  it('the tracker forgets the oldest past its size, and then refuses them rather than accept', () => {
    const t = new NonceTracker(10);
    for (let i = 0; i < 11; i++) assert.equal(t.use(`n${i}`, 100 + i, undefined, `k${i}`, 0), 'ok');
    assert.ok(t.size <= 10);
    assert.equal(t.use('n0', 100, undefined, 'other', 0), 'replay');
    assert.equal(t.use('fresh', 1000, undefined, 'k', 0), 'ok');
  });

  it('hash53 gives distinct safe integers for nearby nonces and request keys', () => {
    const s = new NonceSigner('k');
    const seen = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      const h = hash53(s.issue(0x60000000 + (i % 7)));
      assert.ok(Number.isSafeInteger(h) && h >= 0);
      seen.add(h);
    }
    assert.equal(seen.size, 20_000);
    assert.notEqual(hash53('call\n1\nz9hG4bK1'), hash53('call\n1\nz9hG4bK2'));
    assert.notEqual(hash53('ab'), hash53('ba'));
  });

  it('the tracker stays at its size through many turns of its ring, forgetting oldest first', () => {
    const t = new NonceTracker(10);
    for (let i = 0; i < 1000; i++) assert.equal(t.use(`n${i}`, 100 + i, undefined, `k${i}`, 0), 'ok');
    assert.equal(t.size, 10);
    // the last ten are remembered: their own request again is a retransmission, another a replay
    assert.equal(t.use('n999', 1099, undefined, 'k999', 1000), 'retransmission');
    assert.equal(t.use('n990', 1090, undefined, 'other', 1000), 'replay');
    // the forgotten ones are refused (the floor), not taken as new
    assert.equal(t.use('n989', 1089, undefined, 'k989', 1000), 'replay');
    assert.equal(t.use('n5', 105, undefined, 'k5', 1000), 'replay');
    // time passing empties it from the oldest: at 1095 s the nonces expiring before are gone
    assert.equal(t.use('late', 5000, undefined, 'k', 1_095_000), 'ok');
    assert.equal(t.size, 6, 'n995..n999 and late');
    assert.equal(
      t.use('n999', 1099, undefined, 'k999', 1_095_000),
      'replay',
      'too late for a retransmission',
    );
    assert.equal(new NonceTracker(0).use('a', 1, undefined, 'k', 0), 'ok', 'a size below 1 counts as 1');
  });

  it('the tracker judges as a plain map of nonces would, through eviction, pruning and probe runs', () => {
    // the reference: the rules of NonceTracker written with a Map and an arrival list
    class Reference {
      seen = new Map<string, { exp: number; nc: number; key: string; at: number }>();
      order: string[] = [];
      floor = 0;
      constructor(readonly max: number) {}
      drop(evicted: boolean): void {
        const id = this.order.shift() as string;
        const e = this.seen.get(id);
        if (evicted && e && e.exp > this.floor) this.floor = e.exp;
        this.seen.delete(id);
      }
      use(nonce: string, exp: number, nc: string | undefined, key: string, now: number): string {
        for (let i = 0; i < 16 && this.order.length > 0; i++) {
          const e = this.seen.get(this.order[0]);
          if (!e || e.exp >= Math.floor(now / 1000)) break;
          this.drop(false);
        }
        const n = nc === undefined ? -1 : Number.parseInt(nc, 16);
        const e = this.seen.get(nonce);
        if (!e) {
          if (exp <= this.floor) return 'replay';
          if (this.order.length === this.max) this.drop(true);
          this.seen.set(nonce, { exp, nc: n, key, at: now });
          this.order.push(nonce);
          return 'ok';
        }
        if (e.key === key && e.nc === n && now - e.at < 32_000) return 'retransmission';
        if (n >= 0 && e.nc >= 0 && n > e.nc) {
          Object.assign(e, { nc: n, key, at: now });
          return 'ok';
        }
        return 'replay';
      }
    }
    let seed = 7;
    const rnd = (k: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % k;
    };
    for (const max of [1, 3, 10, 37]) {
      const t = new NonceTracker(max);
      const ref = new Reference(max);
      let now = 0;
      for (let i = 0; i < 20_000; i++) {
        now += rnd(400);
        // a small pool of nonces, so uses repeat and the table fills, empties and wraps
        const nonce = `n${rnd(3 * max + 5)}`;
        const exp = 1 + Math.floor(now / 1000) + rnd(20);
        const nc = rnd(3) === 0 ? undefined : (rnd(6) + 1).toString(16).padStart(8, '0');
        const key = `k${rnd(4)}`;
        const want = ref.use(nonce, exp, nc, key, now);
        assert.equal(t.use(nonce, exp, nc, key, now), want, `max ${max}, use ${i} of ${nonce}`);
        assert.equal(t.size, ref.seen.size);
      }
    }
  });

  it('expired entries are pruned as time passes', () => {
    const t = new NonceTracker();
    t.use('old', 10, undefined, 'k', 0);
    t.use('new', 1000, undefined, 'k', 0);
    t.use('x', 1000, undefined, 'k', 20_000);
    assert.equal(t.size, 2);
  });
});

describe('digest helpers', () => {
  it('safeEqual compares hex case-insensitively and rejects other lengths', () => {
    assert.ok(safeEqual('abcDEF', 'ABCdef'));
    assert.ok(!safeEqual('abc', 'abcd'));
    assert.ok(!safeEqual('', 'a'));
    assert.ok(safeEqual('', ''));
    // only A-Z fold: characters 32 apart outside the letters stay different
    assert.ok(!safeEqual('@[', '`{'));
    assert.ok(!safeEqual('0', '\x10'));
    assert.ok(!safeEqual('abcdef0123', 'abcdef0124'), 'a difference in the last character');
    assert.ok(!safeEqual('bbcdef0123', 'abcdef0123'), 'a difference in the first character');
  });
  it('formatChallenge quotes realm and nonce, lists qop, adds stale', () => {
    assert.equal(
      formatChallenge({ realm: 'a"b', nonce: 'n', qop: ['auth', 'auth-int'], stale: true }),
      'Digest realm="a\\"b", nonce="n", qop="auth,auth-int", stale=true, algorithm=MD5',
    );
  });
});

describe('fixups and parameters', () => {
  const fix = (v: string) => qopArg().fixup({ kind: 'string', value: v, quote: '"' }, undefined as never);
  it('qop: SER "0"/"1" and the RFC names', () => {
    assert.deepEqual(fix('0'), []);
    assert.deepEqual(fix('1'), ['auth']);
    assert.deepEqual(fix('auth-int'), ['auth-int']);
    assert.deepEqual(fix('auth, auth-int'), ['auth', 'auth-int']);
    assert.throws(() => fix('2'), FixupError);
  });
  it('algorithms: RFC 8760 names, preferred first', () => {
    assert.deepEqual(parseAlgorithms('sha-256, MD5'), ['SHA-256', 'MD5']);
    assert.throws(() => parseAlgorithms('SHA-1'), /unknown digest algorithm "SHA-1"/);
    assert.throws(() => parseAlgorithms(''), FixupError);
  });
});

describe('www_challenge / proxy_challenge', () => {
  it('401 / 407 with the realm, a nonce valid for nonce_expire, qop and MD5', async () => {
    const r = await rig({ nonce_expire: 60 });
    const [w] = await challengeOf(r, 'www', '1');
    assert.equal(r.sent.at(-1)!.status, 401);
    assert.equal(w!.realm, REALM);
    assert.deepEqual(w!.qop, ['auth']);
    assert.equal(w!.algorithm, 'MD5');
    const exp = Number.parseInt(w!.nonce!.slice(0, 8), 16);
    assert.ok(Math.abs(exp - (Date.now() / 1000 + 60)) < 3);
    const [p] = await challengeOf(r, 'proxy', '0', 'INVITE');
    assert.equal(r.sent.at(-1)!.status, 407);
    assert.equal(r.sent.at(-1)!.reason, 'Proxy Authentication Required');
    assert.deepEqual(p!.qop, []);
  });

  it('realm "": the To host for www_* on REGISTER, the From host otherwise', async () => {
    const r = await rig();
    await r.auth.call(req('REGISTER', ['To: <sip:alice@reg.example>']), 'www_challenge', '', '0');
    assert.equal(r.sent.at(-1)!.wwwAuthenticate[0]!.realm, 'reg.example');
    await r.auth.call(req('INVITE', ['From: <sip:alice@from.example>;tag=1']), 'proxy_challenge', '', '0');
    assert.equal(r.sent.at(-1)!.proxyAuthenticate[0]!.realm, 'from.example');
    // SER's get_realm: To only for REGISTER checked with www_*; a proxy challenging a REGISTER uses From
    await r.auth.call(
      req('REGISTER', ['To: <sip:alice@reg.example>', 'From: <sip:alice@from.example>;tag=1']),
      'proxy_challenge',
      '',
      '0',
    );
    assert.equal(r.sent.at(-1)!.proxyAuthenticate[0]!.realm, 'from.example');
  });

  it('offers SHA-256 before MD5 when configured (RFC 8760), one header each', async () => {
    const r = await rig({ algorithms: 'SHA-256,MD5' });
    const ch = await challengeOf(r, 'www', '1');
    assert.deepEqual(
      ch.map((c) => c.algorithm),
      ['SHA-256', 'MD5'],
    );
    assert.notEqual(ch[0]!.nonce, ch[1]!.nonce);
  });
});

describe('www_authorize / proxy_authorize return values', () => {
  it('1 for good credentials; the username and realm are left for others', async () => {
    const r = await rig();
    const [c] = await challengeOf(r, 'www', '1');
    const ctx = req('REGISTER', [creds({ nonce: c!.nonce!, qop: 'auth' })]);
    assert.equal(await r.db.call(ctx, 'www_authorize', REALM, 'subscriber'), AUTH_OK);
    assert.deepEqual(authorizedCredentials(ctx), {
      username: 'alice',
      user: 'alice',
      domain: undefined,
      realm: REALM,
    });
  });

  it('-4 without credentials (or only for another realm), -1 unknown user, -2 wrong password', async () => {
    const r = await rig();
    const [c] = await challengeOf(r, 'www', '0');
    const nonce = c!.nonce!;
    assert.equal(await r.db.call(req('REGISTER'), 'www_authorize', REALM, 'subscriber'), AUTH_NO_CREDENTIALS);
    const other = req('REGISTER', [creds({ nonce, realm: 'elsewhere.org' })]);
    assert.equal(await r.db.call(other, 'www_authorize', REALM, 'subscriber'), AUTH_NO_CREDENTIALS);
    const unknown = req('REGISTER', [creds({ nonce, user: 'nobody' })]);
    assert.equal(await r.db.call(unknown, 'www_authorize', REALM, 'subscriber'), AUTH_USER_UNKNOWN);
    const wrong = req('REGISTER', [creds({ nonce, password: 'guess' })]);
    assert.equal(await r.db.call(wrong, 'www_authorize', REALM, 'subscriber'), AUTH_INVALID_PASSWORD);
    assert.equal(authorizedCredentials(wrong), undefined);
    // Proxy-Authorization is not looked at by www_authorize, and vice versa
    const px = req('INVITE', [creds({ nonce, method: 'INVITE', uri: `sip:bob@${REALM}`, proxy: true })]);
    assert.equal(await r.db.call(px, 'www_authorize', REALM, 'subscriber'), AUTH_NO_CREDENTIALS);
    assert.equal(await r.db.call(px, 'proxy_authorize', REALM, 'subscriber'), AUTH_OK);
  });

  it('unknown_user_code: 403 is sent for an unknown user and the script stops', async () => {
    const r = await rig({}, { unknown_user_code: 403 });
    const [c] = await challengeOf(r, 'www', '0');
    const ctx = req('REGISTER', [creds({ nonce: c!.nonce!, user: 'nobody' })]);
    assert.equal(await r.db.call(ctx, 'www_authorize', REALM, 'subscriber'), AUTH_STOP);
    assert.equal(r.sent.at(-1)!.status, 403);
    assert.throws(() => authDb.params!.unknown_user_code!.validate!(401), /must be 0, 403 or 404/);
  });

  it('-2 for a nonce signed with another secret', async () => {
    const r = await rig();
    const forged = new NonceSigner('other').issue(Math.floor(Date.now() / 1000) + 100);
    const ctx = req('REGISTER', [creds({ nonce: forged })]);
    assert.equal(await r.db.call(ctx, 'www_authorize', REALM, 'subscriber'), AUTH_INVALID_PASSWORD);
  });

  it('-3 for an expired nonce, and the next challenge says stale=true', async () => {
    const r = await rig({ nonce_expire: 10 });
    const [c] = await challengeOf(r, 'www', '1');
    r.shift(11);
    const ctx = req('REGISTER', [creds({ nonce: c!.nonce!, qop: 'auth' })]);
    assert.equal(await r.db.call(ctx, 'www_authorize', REALM, 'subscriber'), AUTH_STALE_NONCE);
    await r.auth.call(ctx, 'www_challenge', REALM, '1');
    assert.equal(r.sent.at(-1)!.wwwAuthenticate[0]!.stale, true);
    // ACK and CANCEL cannot be challenged: an old nonce still authorizes them
    const cancel = req('CANCEL', [
      creds({ nonce: c!.nonce!, method: 'CANCEL', uri: `sip:bob@${REALM}`, proxy: true }),
    ]);
    assert.equal(await r.db.call(cancel, 'proxy_authorize', REALM, 'subscriber'), AUTH_OK);
  });

  it('-6 for a replayed header (nc not growing, or a reused no-qop nonce); nonce_count=0 allows reuse as SER did', async () => {
    const r = await rig();
    const [c] = await challengeOf(r, 'www', '1');
    const h = creds({ nonce: c!.nonce!, qop: 'auth' });
    assert.equal(await r.db.call(req('REGISTER', [h]), 'www_authorize', REALM, 'subscriber'), AUTH_OK);
    const replay = req('REGISTER', [h]);
    assert.equal(await r.db.call(replay, 'www_authorize', REALM, 'subscriber'), AUTH_NONCE_REUSED);
    await r.auth.call(replay, 'www_challenge', REALM, '1');
    assert.equal(r.sent.at(-1)!.wwwAuthenticate[0]!.stale, true);
    const h2 = creds({ nonce: c!.nonce!, qop: 'auth', nc: 2 });
    assert.equal(await r.db.call(req('REGISTER', [h2]), 'www_authorize', REALM, 'subscriber'), AUTH_OK);

    const lax = await rig({ nonce_count: 0 });
    const [c2] = await challengeOf(lax, 'www', '0');
    const h3 = creds({ nonce: c2!.nonce! });
    assert.equal(await lax.db.call(req('REGISTER', [h3]), 'www_authorize', REALM, 'subscriber'), AUTH_OK);
    assert.equal(await lax.db.call(req('REGISTER', [h3]), 'www_authorize', REALM, 'subscriber'), AUTH_OK);
  });

  it('malformed credentials: 400 Bad Credentials and the script stops (0)', async () => {
    const r = await rig();
    for (const h of [
      `Authorization: Digest realm="${REALM}", nonce="x", uri="sip:a", response="00"`,
      `Authorization: Digest username="alice", realm="${REALM}", nonce="x", uri="sip:a", response="00", qop=auth`,
      `Authorization: Digest username="alice", realm="${REALM}", nonce="x", uri="sip:a", response="00", algorithm=SHA-256`,
      'Authorization: Digest realm',
    ]) {
      const before = r.sent.length;
      assert.equal(await r.db.call(req('REGISTER', [h]), 'www_authorize', REALM, 'subscriber'), AUTH_STOP, h);
      assert.equal(r.sent.length, before + 1);
      assert.equal(r.sent.at(-1)!.status, 400);
    }
  });

  it('qop=auth-int covers the body: a changed body fails', async () => {
    const r = await rig();
    const [c] = await challengeOf(r, 'proxy', 'auth-int', 'INVITE');
    const body = 'v=0\r\n';
    const h = creds({
      nonce: c!.nonce!,
      qop: 'auth-int',
      method: 'INVITE',
      uri: `sip:bob@${REALM}`,
      body,
      proxy: true,
    });
    assert.equal(await r.db.call(req('INVITE', [h], body), 'proxy_authorize', REALM, 'subscriber'), AUTH_OK);
    const h2 = creds({
      nonce: c!.nonce!,
      qop: 'auth-int',
      nc: 2,
      method: 'INVITE',
      uri: `sip:bob@${REALM}`,
      body,
      proxy: true,
    });
    assert.equal(
      await r.db.call(req('INVITE', [h2], 'v=1\r\n'), 'proxy_authorize', REALM, 'subscriber'),
      AUTH_INVALID_PASSWORD,
    );
  });

  it('SHA-256 and MD5-sess with calculate_ha1 (plain passwords); SHA-256 on stored MD5 HA1 is -5', async () => {
    const r = await rig({ algorithms: 'SHA-256,MD5-sess' }, { calculate_ha1: 1 });
    const [s] = await challengeOf(r, 'www', '1');
    const h = creds({ nonce: s!.nonce!, qop: 'auth', algorithm: 'SHA-256' });
    assert.equal(await r.db.call(req('REGISTER', [h]), 'www_authorize', REALM, 'subscriber'), AUTH_OK);
    const hs = creds({ nonce: s!.nonce!, qop: 'auth', nc: 2, algorithm: 'MD5-sess' });
    assert.equal(await r.db.call(req('REGISTER', [hs]), 'www_authorize', REALM, 'subscriber'), AUTH_OK);
    const md5Only = await rig({ algorithms: 'SHA-256' });
    const [m] = await challengeOf(md5Only, 'www', '1');
    const h2 = creds({ nonce: m!.nonce!, qop: 'auth', algorithm: 'SHA-256' });
    assert.equal(
      await md5Only.db.call(req('REGISTER', [h2]), 'www_authorize', REALM, 'subscriber'),
      AUTH_ERROR,
    );
  });

  it('calculate_ha1: the HA1 kept on a cached row serves only the same username, realm and algorithm', async () => {
    const r = await rig({}, { calculate_ha1: 1, cache_ttl: 60 });
    const [s] = await challengeOf(r, 'www', '1');
    const nonce = s!.nonce!;
    const reg = (o: { nc: number; realm?: string; user?: string; password?: string }) =>
      r.db.call(
        req('REGISTER', [creds({ nonce, qop: 'auth', ...o })]),
        'www_authorize',
        o.realm ?? REALM,
        'subscriber',
      );
    assert.equal(await reg({ nc: 1 }), AUTH_OK);
    assert.equal(await reg({ nc: 2 }), AUTH_OK, 'from the kept HA1');
    assert.equal(r.db.state.store.size, 1);
    // the same row under another realm and another spelling of the user: HA1 differs
    assert.equal(await reg({ nc: 3, realm: 'other.org' }), AUTH_OK);
    assert.equal(await reg({ nc: 4, user: `alice@${REALM}` }), AUTH_OK);
    // each answered from the cached row: a wrong HA1 would have sent it back to the database
    assert.equal(r.db.state.store.misses, 1);
    assert.equal(await reg({ nc: 5, password: 'wrong' }), AUTH_INVALID_PASSWORD);
    assert.equal(await reg({ nc: 6 }), AUTH_OK);
  });

  it('an MD5 answer is refused when only SHA-256 is offered', async () => {
    const r = await rig({ algorithms: 'SHA-256' }, { calculate_ha1: 1 });
    const [s] = await challengeOf(r, 'www', '1');
    const h = creds({ nonce: s!.nonce!, qop: 'auth', algorithm: 'MD5' });
    assert.equal(await r.db.call(req('REGISTER', [h]), 'www_authorize', REALM, 'subscriber'), AUTH_STOP);
  });

  it('"user@domain" usernames use the ha1b column', async () => {
    const r = await rig();
    const [c] = await challengeOf(r, 'www', '0');
    const h = creds({ nonce: c!.nonce!, user: `alice@${REALM}` });
    const ctx = req('REGISTER', [h]);
    assert.equal(await r.db.call(ctx, 'www_authorize', REALM, 'subscriber'), AUTH_OK);
    assert.equal(authorizedCredentials(ctx)?.user, 'alice');
    assert.equal(authorizedCredentials(ctx)?.domain, REALM);
  });

  it("use_domain=1 looks the user up in the realm's domain", async () => {
    const r = await rig({}, { use_domain: 1 });
    await r.auth.call(req('REGISTER', ['To: <sip:alice@other.org>']), 'www_challenge', 'other.org', '0');
    const c = r.sent.at(-1)!.wwwAuthenticate[0]!;
    const h = creds({ nonce: c.nonce!, realm: 'other.org' });
    assert.equal(
      await r.db.call(req('REGISTER', [h]), 'www_authorize', 'other.org', 'subscriber'),
      AUTH_USER_UNKNOWN,
    );
  });

  it('a database error is -5 with a logged reason, not an exception', async () => {
    const r = await rig();
    const [c] = await challengeOf(r, 'www', '0');
    const ctx = req('REGISTER', [creds({ nonce: c!.nonce! })]);
    assert.equal(await r.db.call(ctx, 'www_authorize', REALM, 'no_such_table'), AUTH_ERROR);
    assert.match(r.sink.lines.join('\n'), /cannot read table 'no_such_table'/);
    assert.equal(ctx.lastError?.code, 500);
  });
});

describe('other table layouts', () => {
  it("a table without the rpid column (Kamailio's subscriber) works, with one warning", async () => {
    const r = await rig();
    const db = await openDb(r.dbUrl);
    await db.exec(
      'CREATE TABLE ksub (id INTEGER PRIMARY KEY, username TEXT, domain TEXT, password TEXT, ha1 TEXT, ha1b TEXT)',
    );
    const c = credentials('kim', REALM, REALM, 'pw');
    await db.insert('ksub', { username: 'kim', domain: REALM, password: 'pw', ha1: c.ha1, ha1b: c.ha1b });
    await db.close();
    const [ch] = await challengeOf(r, 'www', '1');
    const h = (nc: number) => creds({ user: 'kim', password: 'pw', nonce: ch!.nonce!, qop: 'auth', nc });
    assert.equal(await r.db.call(req('REGISTER', [h(1)]), 'www_authorize', REALM, 'ksub'), AUTH_OK);
    r.db.state.store.flush();
    assert.equal(await r.db.call(req('REGISTER', [h(2)]), 'www_authorize', REALM, 'ksub'), AUTH_OK);
    assert.equal(r.sink.lines.filter((l) => /has no column 'rpid'/.test(l)).length, 1);
  });
});

describe('the subscriber cache', () => {
  it('a password changed in the database is used at once; the old one is refused after a flush', async () => {
    const r = await rig({}, { cache_ttl: 60 });
    const ok = async (pw: string, nc: number, nonce: string) =>
      r.db.call(
        req('REGISTER', [creds({ nonce, password: pw, qop: 'auth', nc })]),
        'www_authorize',
        REALM,
        'subscriber',
      );
    const [c] = await challengeOf(r, 'www', '1');
    const nonce = c!.nonce!;
    assert.equal(await ok('secret', 1, nonce), AUTH_OK);
    assert.equal(r.db.state.store.size, 1);
    const db = await openDb(r.dbUrl);
    await db.update('subscriber', { username: 'alice' }, credentials('alice', REALM, REALM, 'new-pw'));
    await db.close();
    // the cached row fails, the fresh one is read and succeeds
    assert.equal(await ok('new-pw', 2, nonce), AUTH_OK);
    // the old password: the cache now holds the new row
    assert.equal(await ok('secret', 3, nonce), AUTH_INVALID_PASSWORD);
    const flush = await authDb.mgmt!.auth_db_flush!.run(r.db.state, ['alice']);
    assert.equal(flush.code, 200);
    assert.equal(r.db.state.store.size, 0);
  });

  it('rows expire after cache_ttl', async () => {
    const r = await rig({}, { cache_ttl: 2 });
    const [c] = await challengeOf(r, 'www', '1');
    await r.db.call(
      req('REGISTER', [creds({ nonce: c!.nonce!, qop: 'auth' })]),
      'www_authorize',
      REALM,
      'subscriber',
    );
    assert.equal(
      r.db.state.store.cached('subscriber', 'alice', REALM)?.password,
      credentials('alice', REALM, REALM, 'secret').ha1,
    );
    r.shift(3);
    assert.equal(r.db.state.store.cached('subscriber', 'alice', REALM), undefined);
  });
});

describe('consume_credentials and Remote-Party-ID', () => {
  it('consume_credentials removes exactly the accepted header', async () => {
    const r = await rig();
    const [c] = await challengeOf(r, 'proxy', '0', 'INVITE');
    const mine = creds({ nonce: c!.nonce!, method: 'INVITE', uri: `sip:bob@${REALM}`, proxy: true });
    const other =
      'Proxy-Authorization: Digest username="x", realm="downstream.org", nonce="n", uri="sip:b", response="00"';
    const ctx = req('INVITE', [other, mine]);
    assert.equal(await r.auth.call(ctx, 'consume_credentials'), -1, 'nothing authorized yet');
    assert.equal(await r.db.call(ctx, 'proxy_authorize', REALM, 'subscriber'), AUTH_OK);
    assert.equal(await r.auth.call(ctx, 'consume_credentials'), 1);
    const out = parseMessage(ctx.msg.serialize(), { datagram: true });
    assert.deepEqual(
      out.proxyAuthorization.map((x) => x.realm),
      ['downstream.org'],
    );
    assert.equal(await r.auth.call(ctx, 'consume_credentials'), -1, 'only once');
  });

  it("append_rpid_hf adds the subscriber's rpid with prefix/suffix; is_rpid_user_e164", async () => {
    const r = await rig({ rpid_prefix: '"Alice" ', rpid_avp: 's:rpid' });
    const [c] = await challengeOf(r, 'proxy', '0', 'INVITE');
    const ctx = req('INVITE', [
      creds({ nonce: c!.nonce!, method: 'INVITE', uri: `sip:bob@${REALM}`, proxy: true }),
    ]);
    assert.equal(await r.auth.call(ctx, 'append_rpid_hf'), -1, 'no rpid before authorization');
    assert.equal(await r.db.call(ctx, 'proxy_authorize', REALM, 'subscriber'), AUTH_OK);
    assert.equal(await r.auth.call(ctx, 'is_rpid_user_e164'), 1);
    assert.equal(await r.auth.call(ctx, 'append_rpid_hf'), 1);
    assert.equal(
      ctx.msg.header('remote-party-id'),
      '"Alice" <sip:+4930123456@iptel.org>;party=calling;id-type=subscriber;screen=yes',
    );
    const ctx2 = req('INVITE');
    assert.equal(await r.auth.call(ctx2, 'append_rpid_hf', '<', '>'), -1);
  });
});
