/**
 * Digest authentication over real sockets (SQLite): REGISTER 401 → 200, wrong password,
 * unknown user (401, or 403 with unknown_user_code), check_to, replay, retransmission, stale nonce, proxy_authorize + 407.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request, type Ser, sleep, startSer, UdpPeer } from './harness.js';
import { AUTH_CFG, answer, exchange, makeSubscribers, REALM, register } from './auth-helpers.test.js';

describe('auth + auth_db over UDP (SQLite)', () => {
  let ser: Ser;
  let phone: UdpPeer;
  let dbUrl: string;
  before(async () => {
    dbUrl = `sqlite://${join(mkdtempSync(join(tmpdir(), 'ser-auth-')), 'ser.db')}`;
    await makeSubscribers(dbUrl, { alice: 'wonderland', joe: 'cool' });
    ser = await startSer(AUTH_CFG(dbUrl));
    phone = await UdpPeer.open();
  });
  after(async () => {
    phone.close();
    await ser.stop();
  });

  it('REGISTER without credentials: 401 with realm, a 56-hex nonce, qop="auth", algorithm=MD5', async () => {
    const r = await exchange(phone, register(phone, 'alice'), ser.port);
    assert.equal(r.status, 401);
    const ch = r.wwwAuthenticate;
    assert.equal(ch.length, 1);
    assert.equal(ch[0]!.realm, REALM);
    assert.match(ch[0]!.nonce!, /^[0-9a-f]{56}$/);
    assert.deepEqual(ch[0]!.qop, ['auth']);
    assert.equal(ch[0]!.algorithm, 'MD5');
    assert.equal(ch[0]!.stale, false);
    assert.ok(r.toTag, 'the 401 carries a To-tag');
  });

  it('answered with the right password: 200 and the binding is stored', async () => {
    const c = await exchange(phone, register(phone, 'alice', [], 1, 'ok'), ser.port);
    const auth = answer({
      user: 'alice',
      password: 'wonderland',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    const r = await exchange(phone, register(phone, 'alice', [auth], 2, 'ok'), ser.port);
    assert.equal(r.status, 200);
    assert.equal(r.headers('contact').length, 1);
  });

  it('a wrong password gets a new 401 (not stale)', async () => {
    const c = await exchange(phone, register(phone, 'alice', [], 1, 'bad'), ser.port);
    const auth = answer({
      user: 'alice',
      password: 'guess',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    const r = await exchange(phone, register(phone, 'alice', [auth], 2, 'bad'), ser.port);
    assert.equal(r.status, 401);
    assert.equal(r.wwwAuthenticate[0]!.stale, false);
  });

  it('an unknown user gets a new 401', async () => {
    const c = await exchange(phone, register(phone, 'mallory', [], 1, 'unk'), ser.port);
    const auth = answer({
      user: 'mallory',
      password: 'x',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    const r = await exchange(phone, register(phone, 'mallory', [auth], 2, 'unk'), ser.port);
    assert.equal(r.status, 401);
  });

  it('check_to: joe with his own valid credentials cannot register as alice (403)', async () => {
    const c = await exchange(phone, register(phone, 'alice', [], 1, 'joe'), ser.port);
    const auth = answer({
      user: 'joe',
      password: 'cool',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    const r = await exchange(phone, register(phone, 'alice', [auth], 2, 'joe'), ser.port);
    assert.equal(r.status, 403);
    const auth2 = answer({
      user: 'joe',
      password: 'cool',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
      nc: 2,
    });
    const own = await exchange(phone, register(phone, 'joe', [auth2], 3, 'joe'), ser.port);
    assert.equal(own.status, 200, 'the same nonce with a higher nc works for his own AOR');
  });

  it('a captured Authorization header replayed in a new request is refused with stale=true', async () => {
    const c = await exchange(phone, register(phone, 'alice', [], 1, 'rp'), ser.port);
    const auth = answer({
      user: 'alice',
      password: 'wonderland',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    const first = register(phone, 'alice', [auth], 2, 'rp');
    assert.equal((await exchange(phone, first, ser.port)).status, 200);
    // the very same datagram again is a retransmission, not a replay
    assert.equal((await exchange(phone, first, ser.port)).status, 200);
    // the header in another request (an attacker's REGISTER) is a replay
    const r = await exchange(phone, register(phone, 'alice', [auth], 3, 'rp-attacker'), ser.port);
    assert.equal(r.status, 401);
    assert.equal(r.wwwAuthenticate[0]!.stale, true);
    // nc 2 with the same nonce is fine: the counter grew
    const next = answer({
      user: 'alice',
      password: 'wonderland',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
      nc: 2,
    });
    assert.equal((await exchange(phone, register(phone, 'alice', [next], 4, 'rp'), ser.port)).status, 200);
  });

  it('proxy_authorize with an empty realm: 407 for the From domain, then through; check_from', async () => {
    const inv = (extra: string[], from = 'alice') =>
      request('INVITE', `sip:bob@${REALM}`, { ip: '127.0.0.1', port: phone.port }, [
        `From: <sip:${from}@${REALM}>;tag=i1`,
        `Call-ID: inv-${from}-${phone.port}@it`,
        ...extra,
      ]);
    const c = await exchange(phone, inv([]), ser.port);
    assert.equal(c.status, 407);
    const ch = c.proxyAuthenticate[0]!;
    assert.equal(ch.realm, REALM, 'realm "" → the From host');
    assert.deepEqual(ch.qop, [], 'qop "0": RFC 2069 style challenge');
    const auth = answer({
      user: 'alice',
      password: 'wonderland',
      challenge: c,
      method: 'INVITE',
      uri: `sip:bob@${REALM}`,
    });
    const r = await exchange(phone, inv([auth, 'CSeq: 2 INVITE']), ser.port);
    assert.equal(r.status, 488);
    assert.equal(r.reason, 'Authenticated');
    // without qop a nonce authorizes one request: reuse → 407 stale=true
    const again = await exchange(phone, inv([auth, 'CSeq: 3 INVITE']), ser.port);
    assert.equal(again.status, 407);
    assert.equal(again.proxyAuthenticate[0]!.stale, true);
    // alice's credentials with joe in From
    const c2 = await exchange(phone, inv([], 'joe'), ser.port);
    const a2 = answer({
      user: 'alice',
      password: 'wonderland',
      challenge: c2,
      method: 'INVITE',
      uri: `sip:bob@${REALM}`,
    });
    const r2 = await exchange(phone, inv([a2, 'CSeq: 2 INVITE'], 'joe'), ser.port);
    assert.equal(r2.status, 403);
  });

  it('the ACK to a 407 is absorbed (nothing comes back, the server stays up)', async () => {
    const c = await exchange(
      phone,
      request('INVITE', `sip:bob@${REALM}`, { ip: '127.0.0.1', port: phone.port }, [
        `From: <sip:alice@${REALM}>;tag=a1`,
      ]),
      ser.port,
    );
    assert.equal(c.status, 407);
    const ack = request('ACK', `sip:bob@${REALM}`, { ip: '127.0.0.1', port: phone.port }, [
      `From: <sip:alice@${REALM}>;tag=a1`,
      `To: <sip:bob@${REALM}>;tag=${c.toTag}`,
      `Call-ID: ${c.callId}`,
      `CSeq: ${c.cseq.seq} ACK`,
      `Via: ${c.header('via')}`,
    ]);
    phone.send(ack, ser.port);
    assert.equal(await phone.next(500), undefined);
  });

  it('malformed credentials: 400 Bad Credentials (or a new 401), never a crash', async () => {
    const r = await exchange(
      phone,
      register(phone, 'alice', [`Authorization: Digest realm="${REALM}", nonce="x"`], 9, 'malformed'),
      ser.port,
    );
    assert.equal(r.status, 400);
    const n = 'a'.repeat(48);
    const bad = [
      'Authorization: Basic YWxpY2U6d29uZGVybGFuZA==',
      `Authorization: Digest username="alice", realm="${REALM}", nonce="${n}", uri="sip:x", response="zz"`,
      `Authorization: Digest username="alice", realm="${REALM}", nonce="${n}", uri="sip:x", response="00", qop=auth, nc=zz, cnonce="c"`,
      `Authorization: Digest username="alice", realm="${REALM}", nonce="${'f'.repeat(3000)}", uri="sip:x", response="00"`,
      `Authorization: Digest username="alice", realm="${REALM}", nonce="${n}", uri="sip:x", response="00", algorithm=SHA-512`,
      `Authorization: Digest username="alice", realm="${REALM}, nonce="${n}"`,
      `Authorization: Digest username="", realm="${REALM}", nonce="${n}", uri="sip:x", response="00"`,
    ];
    let cseq = 10;
    for (const h of bad) {
      const r = await exchange(phone, register(phone, 'alice', [h], cseq++, 'malformed'), ser.port);
      assert.ok(r.status === 400 || r.status === 401, `${h} → ${r.status}`);
    }
    const ok = await exchange(phone, register(phone, 'alice', [], cseq, 'malformed'), ser.port);
    assert.equal(ok.status, 401);
  });
});

describe('nonce expiry and a shared secret', () => {
  let a: Ser;
  let b: Ser;
  let phone: UdpPeer;
  before(async () => {
    const dbUrl = `sqlite://${join(mkdtempSync(join(tmpdir(), 'ser-auth-')), 'ser.db')}`;
    await makeSubscribers(dbUrl, { alice: 'wonderland' });
    a = await startSer(AUTH_CFG(dbUrl, 'modparam("auth", "nonce_expire", 1)'));
    b = await startSer(AUTH_CFG(dbUrl, 'modparam("auth_db", "unknown_user_code", 403)'));
    phone = await UdpPeer.open();
  });
  after(async () => {
    phone.close();
    await a.stop();
    await b.stop();
  });

  it('the same secret on two servers: a nonce from one is accepted by the other', async () => {
    const c = await exchange(phone, register(phone, 'alice', [], 1, 'x'), b.port);
    const auth = answer({
      user: 'alice',
      password: 'wonderland',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    const r = await exchange(phone, register(phone, 'alice', [auth], 2, 'x'), a.port);
    assert.equal(r.status, 200);
  });

  it('unknown_user_code 403: an unknown user gets 403 at once instead of a new challenge', async () => {
    const c = await exchange(phone, register(phone, 'mallory', [], 1, 'u403'), b.port);
    const auth = answer({
      user: 'mallory',
      password: 'x',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    const r = await exchange(phone, register(phone, 'mallory', [auth], 2, 'u403'), b.port);
    assert.equal(r.status, 403);
    // a known user with a wrong password still gets a new challenge
    const c2 = await exchange(phone, register(phone, 'alice', [], 3, 'u403'), b.port);
    const bad = answer({
      user: 'alice',
      password: 'nope',
      challenge: c2,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    assert.equal((await exchange(phone, register(phone, 'alice', [bad], 4, 'u403'), b.port)).status, 401);
  });

  it('an expired nonce with the right password gets 401 stale=true', async () => {
    const c = await exchange(phone, register(phone, 'alice', [], 1, 'st'), a.port);
    await sleep(2100);
    const auth = answer({
      user: 'alice',
      password: 'wonderland',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    const r = await exchange(phone, register(phone, 'alice', [auth], 2, 'st'), a.port);
    assert.equal(r.status, 401);
    assert.equal(r.wwwAuthenticate[0]!.stale, true);
    // a wrong password with an expired nonce is not stale: it is wrong
    const bad = answer({
      user: 'alice',
      password: 'nope',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    const r2 = await exchange(phone, register(phone, 'alice', [bad], 3, 'st'), a.port);
    assert.equal(r2.status, 401);
    assert.equal(r2.wwwAuthenticate[0]!.stale, false);
  });
});
