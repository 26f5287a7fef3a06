/**
 * The PSTN gateway guard of seed 003 Example 3-8 (scenario S8 of SCENARIOS.md), end to
 * end: the seed script as written, with only the gateway address moved to 127.0.0.10
 * (a port of its own) and the db_url pointed at the test database. Phones send from
 * 127.0.0.1; a UDP peer on 127.0.0.10 stands for the gateway and answers 200 to every
 * INVITE. Groups as in SCENARIOS.md: alice ∈ {local}, bob ∈ {local, ld}, carol ∈ {local,
 * ld, int}, 800 ∈ {free-pstn}. SQLite, MariaDB and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Backend, createSchema, type Db } from '../../src/db/index.js';
import { digestResponse } from '../../src/sip/digest.js';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { modules } from '../../src/modules/index.js';
import { makeTestDb, probe, SKIP_EXTERNAL, type TestDb } from '../db/helpers.js';
import { haveSeeds, type Ser, seedScript, sleep, startSer } from './harness.js';

const GW_IP = '127.0.0.10';
const PHONE_IP = '127.0.0.1';
/** ser listens here (the harness's default) */
const SER_IP = '127.0.0.1';

const unreachable: Partial<Record<Backend, string>> = {};
for (const b of ['mysql', 'postgres'] as const) {
  const why = await probe(b);
  if (why) unreachable[b] = why;
}
const skipOf = (b: Backend) =>
  !haveSeeds ? 'seed configs missing' : unreachable[b] && SKIP_EXTERNAL ? unreachable[b] : undefined;

/** Which of the script's modules this build has (tm, acc and rr are written in parallel). */
export const HAVE = { tm: 'tm' in modules, acc: 'acc' in modules, rr: 'rr' in modules };

/**
 * The seed script with the gateway at GW_IP:gwPort and both db_urls at the test database.
 * Where tm, acc or rr is missing from this build, the brief's stand-ins: stateless
 * forward for t_relay, a log line at level 1 showing the accounting flag for acc, and no
 * Record-Route for rr. With all three the script runs as written.
 */
export function pstnScript(url: string, gwPort: number): string {
  const s = seedScript('003-ex3-8-pstn-gateway.cfg')
    .replace(
      /modparam\("auth_db", "db_url",\s*"[^"]*"\)/,
      `modparam("auth_db", "db_url", "${url}")\nmodparam("group", "db_url", "${url}")`,
    )
    .replace('src_ip==192.168.0.10', `src_ip==${GW_IP}`)
    .replace('rewritehostport("192.168.0.10:5060")', `rewritehostport("${GW_IP}:${gwPort}")`);
  assert.ok(s.includes(`${GW_IP}:${gwPort}`) && s.includes(`"${url}"`), 'substitutions applied');
  return standIns(s);
}

/** The brief's stand-ins for the modules this build lacks (none when tm, acc and rr are in). */
export function standIns(script: string): string {
  let s = script;
  if (!HAVE.tm) {
    s = s
      .replace('loadmodule "modules/tm/tm.so"', '')
      .replace(
        'if (loose_route()) { t_relay(); break; };',
        'if (loose_route()) { forward(uri:host, uri:port); break; };',
      )
      .replace(/if \(!t_relay\(\)\) \{\s*sl_reply_error\(\);\s*break;\s*\};/, 'forward(uri:host, uri:port);');
  }
  if (!HAVE.acc) {
    s = s
      .replace('loadmodule "modules/acc/acc.so"', '')
      .replace(/modparam\("acc",[^\n]*\n/g, '')
      .replace('setflag(1);', 'setflag(1);\nif (isflagset(1)) { log(1, "accounting flag 1 set\\n"); };');
  }
  if (!HAVE.rr) {
    s = s
      .replace('loadmodule "modules/rr/rr.so"', '')
      .replace(/if \(loose_route\(\)\) \{[^}]*\};/, '')
      .replace('record_route();', '');
  }
  return s;
}

describe('S8.19: seed 001 Example 4-8 (malformed auth_db db_url)', {
  skip: !haveSeeds && 'seed configs missing',
}, () => {
  it('does not start, and says which module, parameter and URL are wrong', async () => {
    await assert.rejects(
      startSer(standIns(seedScript('001-ex4-8-pstn-gateway.cfg'))),
      // at modparam time (file:line:column) or at auth_db's init: either names module, URL and fault
      /auth_db.*invalid db_url "mysql:ser:\*\*\*@localhost\/ser": missing "\/\/"|'db_url' of module 'auth_db'.*missing "\/\/"/s,
    );
  });
});

/** A UDP endpoint that keeps what it receives; `autoAnswer` answers INVITEs with 200 as a gateway would. */
class Endpoint {
  readonly got: SipMessage[] = [];
  port = 0;
  private constructor(
    readonly sock: Socket,
    readonly ip: string,
  ) {}
  static async open(ip: string, autoAnswer = false): Promise<Endpoint> {
    const e = new Endpoint(createSocket('udp4'), ip);
    e.sock.on('message', (b, rinfo) => {
      let m: SipMessage;
      try {
        m = parseMessage(b, { datagram: true });
      } catch {
        return;
      }
      e.got.push(m);
      if (autoAnswer && m.isRequest && m.method !== 'ACK')
        e.sock.send(answer(b, 200, 'OK'), rinfo.port, rinfo.address);
    });
    await new Promise<void>((res) => e.sock.bind(0, ip, () => res()));
    e.port = e.sock.address().port;
    return e;
  }
  send(text: string, port: number): void {
    this.sock.send(Buffer.from(text, 'latin1'), port, SER_IP);
  }
  /** the messages of a call so far, after waiting up to `ms` for one that `until` accepts */
  async wait(callId: string, until: (m: SipMessage) => boolean, ms = 3000): Promise<SipMessage | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.got.find((m) => m.callId === callId && until(m));
      if (hit || Date.now() > end) return hit;
      await sleep(20);
    }
  }
  of(callId: string): SipMessage[] {
    return this.got.filter((m) => m.callId === callId);
  }
  close(): void {
    this.sock.close();
  }
}

/** A reply to a request's raw text: its Via, From, To (with a tag), Call-ID and CSeq lines. */
function answer(req: Buffer, code: number, reason: string): Buffer {
  const head = req.toString('latin1').split('\r\n\r\n')[0].split('\r\n').slice(1);
  const keep = head.filter((l) => /^(via|v|from|f|call-id|i|cseq)\s*:/i.test(l));
  const to = head.find((l) => /^(to|t)\s*:/i.test(l)) ?? 'To: <sip:x>';
  const lines = [
    `SIP/2.0 ${code} ${reason}`,
    ...keep,
    /;\s*tag=/i.test(to) ? to : `${to};tag=gw${randomBytes(3).toString('hex')}`,
    'Content-Length: 0',
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

let n = 0;
interface Creds {
  user: string;
  password: string;
  nonce: string;
}

function req(
  from: Endpoint,
  method: string,
  ruri: string,
  opts: {
    callId?: string;
    cseq?: number;
    creds?: Creds;
    extra?: string[];
    maxForwards?: number;
    toTag?: string;
  } = {},
): { text: string; callId: string } {
  n++;
  const callId = opts.callId ?? `pstn-${process.pid}-${n}-${randomBytes(3).toString('hex')}`;
  const user = opts.creds?.user ?? 'anon';
  const lines = [
    `${method} ${ruri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${from.ip}:${from.port};branch=z9hG4bK-pstn-${n}-${randomBytes(3).toString('hex')}`,
    `Max-Forwards: ${opts.maxForwards ?? 70}`,
    `From: <sip:${user}@${from.ip}>;tag=f${n}`,
    `To: <${ruri}>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
    `Call-ID: ${callId}`,
    `CSeq: ${opts.cseq ?? 1} ${method}`,
    `Contact: <sip:${user}@${from.ip}:${from.port}>`,
    ...(opts.extra ?? []),
  ];
  if (opts.creds) {
    const c = opts.creds;
    const response = digestResponse({
      username: c.user,
      realm: 'gateway',
      password: c.password,
      method,
      uri: ruri,
      nonce: c.nonce,
    });
    lines.push(
      `Proxy-Authorization: Digest username="${c.user}", realm="gateway", nonce="${c.nonce}", uri="${ruri}", response="${response}", algorithm=MD5`,
    );
  }
  lines.push('Content-Length: 0');
  return { text: `${lines.join('\r\n')}\r\n\r\n`, callId };
}

const isFinal = (m: SipMessage) => !m.isRequest && (m.status ?? 0) >= 200;

for (const backend of ['sqlite', 'mysql', 'postgres'] as Backend[]) {
  describe(`PSTN gateway guard, seed 003 Example 3-8 (${backend})`, { skip: skipOf(backend) }, () => {
    let t: TestDb;
    let db: Db;
    let ser: Ser;
    let phone: Endpoint;
    let gw: Endpoint;

    /** send and wait for the final reply to the phone, or for the request at the gateway */
    async function call(
      method: string,
      ruri: string,
      opts: Parameters<typeof req>[3] = {},
    ): Promise<{ callId: string; final?: SipMessage; atGw?: SipMessage }> {
      const r = req(phone, method, ruri, opts);
      const seq = opts.cseq ?? 1;
      // a retry with credentials keeps the Call-ID: the CSeq tells the answers apart
      const mine = (m: SipMessage) => m.cseq.seq === seq;
      const finalOf = (m: SipMessage) => isFinal(m) && mine(m);
      const reqOf = (m: SipMessage) => m.isRequest && m.method === method && mine(m);
      phone.send(r.text, ser.port);
      const final = await Promise.race([
        phone.wait(r.callId, finalOf),
        gw.wait(r.callId, reqOf).then(() => undefined),
      ]);
      const atGw = gw.of(r.callId).find(reqOf);
      return { callId: r.callId, final: final ?? phone.of(r.callId).find(finalOf), atGw };
    }

    /** the 407 challenge, then the same request with credentials */
    async function authed(method: string, ruri: string, user: string, password: string) {
      const first = await call(method, ruri);
      assert.equal(first.final?.status, 407, `${method} ${ruri}: expected a challenge`);
      const ch = first.final!.proxyAuthenticate[0];
      assert.equal(ch.realm, 'gateway');
      phone.send(req(phone, 'ACK', ruri, { callId: first.callId }).text, ser.port);
      return call(method, ruri, {
        callId: first.callId,
        cseq: 2,
        creds: { user, password, nonce: ch.nonce! },
      });
    }

    before(async () => {
      if (unreachable[backend]) throw new Error(unreachable[backend]);
      t = await makeTestDb(backend);
      db = await t.open();
      await createSchema(db);
      for (const [u, pw] of [
        ['alice', 'alicepw'],
        ['bob', 'bobpw'],
        ['carol', 'carolpw'],
      ]) {
        await db.insert('subscriber', {
          username: u,
          domain: 'gateway',
          password: pw,
          email_address: `${u}@test`,
        });
      }
      const groups: [string, string][] = [
        ['alice', 'local'],
        ['bob', 'local'],
        ['bob', 'ld'],
        ['carol', 'local'],
        ['carol', 'ld'],
        ['carol', 'int'],
        ['800', 'free-pstn'],
      ];
      for (const [username, grp] of groups)
        await db.insert('grp', { username, domain: 'gateway', grp, last_modified: new Date() });
      gw = await Endpoint.open(GW_IP, true);
      phone = await Endpoint.open(PHONE_IP);
      // debug=3 so that level-1 lines (acc's log_level 1) reach stderr
      ser = await startSer(`debug=3\n${pstnScript(t.url, gw.port)}`);
    });
    after(async () => {
      phone?.close();
      gw?.close();
      await ser?.stop();
      await t?.cleanup();
    });

    it('S8.1: Max-Forwards 0 → 483 Too Many Hops', async () => {
      const r = await call('INVITE', `sip:0612345@${PHONE_IP}`, { maxForwards: 0 });
      assert.equal(`${r.final?.status} ${r.final?.reason}`, '483 Too Many Hops');
    });

    it('S8.3: an INVITE to a non-PSTN URI → 403 Call cannot be served here', async () => {
      const r = await call('INVITE', `sip:alice@${PHONE_IP}:${ser.port}`);
      assert.equal(`${r.final?.status} ${r.final?.reason}`, '403 Call cannot be served here');
      assert.equal(r.atGw, undefined);
    });

    it('S8.4: a non-INVITE to a non-PSTN URI is forwarded statelessly to its host', async () => {
      const r = await call('BYE', `sip:alice@${GW_IP}:${gw.port}`);
      assert.ok(r.atGw, 'the BYE reached its host');
      assert.equal(phone.of(r.callId).filter((m) => m.status === 100).length, 0, 'no 100: stateless');
    });

    it('S8.5–S8.7: free destinations reach the gateway without authentication', async () => {
      for (const user of ['7123', '981234', '9812345678', '800']) {
        const r = await call('INVITE', `sip:${user}@${PHONE_IP}:${ser.port}`);
        assert.ok(r.atGw, `${user}: reached the gateway`);
        assert.equal(r.atGw.requestUri, `sip:${user}@${GW_IP}:${gw.port}`);
        assert.equal(r.atGw.hasHeader('proxy-authorization'), false);
        if (HAVE.rr) assert.ok(r.atGw.recordRoutes.length > 0, 'record-routed');
        const fin = await phone.wait(r.callId, isFinal);
        assert.equal(fin?.status, 200, `${user}: the gateway's 200 reaches the caller`);
        if (HAVE.tm)
          assert.ok(
            phone.of(r.callId).some((m) => m.status === 100),
            `${user}: t_relay answered 100`,
          );
      }
    });

    it('S8.8: the gateway itself (source address) needs no credentials', async () => {
      const r = req(gw, 'INVITE', `sip:0612345@${PHONE_IP}:${ser.port}`);
      gw.send(r.text, ser.port);
      const at = await gw.wait(
        r.callId,
        (m) => m.isRequest && m.method === 'INVITE' && m.requestUri.includes(`${GW_IP}:${gw.port}`),
      );
      assert.ok(at, 'relayed back to the gateway, as written');
    });

    it('S8.9/S8.10: a local call is challenged (realm gateway, no qop), then alice (local) gets through', async () => {
      const first = await call('INVITE', `sip:0612345@${PHONE_IP}:${ser.port}`);
      assert.equal(first.final?.status, 407);
      const ch = first.final!.proxyAuthenticate[0];
      assert.equal(ch.realm, 'gateway');
      assert.equal(ch.params.qop, undefined, 'no qop');
      assert.equal(first.atGw, undefined);
      const r = await authed('INVITE', `sip:0612345@${PHONE_IP}:${ser.port}`, 'alice', 'alicepw');
      assert.ok(r.atGw, 'alice: forwarded');
      assert.equal(r.atGw.requestUri, `sip:0612345@${GW_IP}:${gw.port}`);
      assert.equal(r.atGw.hasHeader('proxy-authorization'), true, 'no consume_credentials in the script');
    });

    it('S8.11: long distance needs group ld (alice 403, bob passes)', async () => {
      const a = await authed('INVITE', `sip:00441234@${PHONE_IP}:${ser.port}`, 'alice', 'alicepw');
      assert.equal(`${a.final?.status} ${a.final?.reason}`, '403  no permission for LD ');
      assert.equal(a.atGw, undefined);
      const b = await authed('INVITE', `sip:00441234@${PHONE_IP}:${ser.port}`, 'bob', 'bobpw');
      assert.ok(b.atGw, 'bob: forwarded');
    });

    it('S8.12: international needs group int (bob 403, carol passes)', async () => {
      const b = await authed('INVITE', `sip:000123456@${PHONE_IP}:${ser.port}`, 'bob', 'bobpw');
      assert.equal(`${b.final?.status} ${b.final?.reason}`, '403 International permissions needed');
      const c = await authed('INVITE', `sip:000123456@${PHONE_IP}:${ser.port}`, 'carol', 'carolpw');
      assert.ok(c.atGw, 'carol: forwarded');
    });

    it('S8.13: anything else is 403 Forbidden, even for carol', async () => {
      for (const user of ['12345', '+4930123']) {
        const r = await authed('INVITE', `sip:${user}@${PHONE_IP}:${ser.port}`, 'carol', 'carolpw');
        assert.equal(`${r.final?.status} ${r.final?.reason}`, '403 Forbidden', user);
      }
    });

    it('S8.14: a wrong password gets a new challenge', async () => {
      const r = await authed('INVITE', `sip:0612345@${PHONE_IP}:${ser.port}`, 'alice', 'wrong');
      assert.equal(r.final?.status, 407);
      assert.equal(r.atGw, undefined);
    });

    it('S8.15: group checks are for INVITE only: OPTIONS with credentials passes, without is challenged', async () => {
      const r = await authed('OPTIONS', `sip:000123456@${PHONE_IP}:${ser.port}`, 'alice', 'alicepw');
      assert.ok(r.atGw, 'alice OPTIONS to an international number: forwarded');
    });

    it('S8.16: an in-dialog BYE with our Route is relayed by loose_route, without authentication', async (t) => {
      if (!HAVE.rr) return t.skip('rr is not in this build');
      const r = await call('BYE', `sip:0612345@${GW_IP}:${gw.port}`, {
        extra: [`Route: <sip:${SER_IP}:${ser.port};lr=on>`],
        toTag: 'callee1',
      });
      assert.ok(r.atGw, `relayed to the Request-URI; caller got ${r.final?.status} ${r.final?.reason}`);
      assert.equal(r.atGw.hasHeader('route'), false, 'our own Route entry removed');
      assert.equal((await phone.wait(r.callId, isFinal))?.status, 200);
    });

    it('S8.17 (seed behaviour, 002): a preloaded Route set lets an INVITE reach the gateway unauthenticated', async (t) => {
      if (!HAVE.rr) return t.skip('rr is not in this build');
      // a Route set that goes on past us: loose_route comes before every check in the script
      const hole = await call('INVITE', `sip:0049301234@${GW_IP}:${gw.port}`, {
        extra: [`Route: <sip:${SER_IP}:${ser.port};lr=on>, <sip:${GW_IP}:${gw.port};lr>`],
      });
      assert.ok(hole.atGw, 'the hole 002 describes');
      assert.equal(hole.atGw.hasHeader('proxy-authorization'), false);
      // only our own entry on a dialog-initial request: loose_route is false (SER 0.9's
      // NOT_RR_DRIVEN for preloaded routes), so the checks apply
      const own = await call('INVITE', `sip:0049301234@${GW_IP}:${gw.port}`, {
        extra: [`Route: <sip:${SER_IP}:${ser.port};lr=on>`],
      });
      assert.equal(own.final?.status, 407);
      assert.equal(own.atGw, undefined);
    });

    it('S8.18: the ACK of a 407 or 403 is absorbed', async () => {
      const r = await authed('INVITE', `sip:000123456@${SER_IP}:${ser.port}`, 'alice', 'alicepw');
      assert.equal(r.final?.status, 403);
      phone.send(
        req(phone, 'ACK', `sip:000123456@${SER_IP}:${ser.port}`, { callId: r.callId, cseq: 2 }).text,
        ser.port,
      );
      await sleep(300);
      assert.equal(gw.of(r.callId).length, 0, 'nothing of this call reached the gateway');
    });

    it('accounting: the flag is set for calls past the PSTN check, not for refused ones', async () => {
      // acc logs answered transactions that carry log_flag; without acc, the stand-in logs the flag
      const lines = (callId: string) =>
        ser
          .stderr()
          .split('\n')
          .filter((l) =>
            HAVE.acc
              ? /ACC: transaction answered/.test(l) && l.includes(callId)
              : /accounting flag 1 set/.test(l),
          );
      const before = HAVE.acc ? 0 : lines('').length;
      const refused = await call('INVITE', `sip:alice@${SER_IP}:${ser.port}`);
      assert.equal(refused.final?.status, 403);
      const ok = await call('INVITE', `sip:7123@${SER_IP}:${ser.port}`);
      assert.ok(ok.atGw);
      assert.equal((await phone.wait(ok.callId, isFinal))?.status, 200);
      const end = Date.now() + 2000;
      while (lines(ok.callId).length === before && Date.now() < end) await sleep(20);
      const got = lines(ok.callId);
      assert.equal(got.length, before + 1, 'one accounting line, for the call that went to the gateway');
      if (HAVE.acc) {
        assert.match(
          got[0],
          /method=INVITE, i-uri=sip:7123@127\.0\.0\.1:\d+, o-uri=sip:7123@127\.0\.0\.10:\d+/,
        );
        assert.match(got[0], /status=200 OK/);
        assert.equal(lines(refused.callId).length, 0, 'the refused call is not accounted');
      }
    });

    it('M8 on a running guard: a membership granted in the table counts on the next call', async () => {
      const before1 = await authed('INVITE', `sip:00441234@${PHONE_IP}:${ser.port}`, 'alice', 'alicepw');
      assert.equal(before1.final?.status, 403);
      await db.insert('grp', { username: 'alice', domain: 'gateway', grp: 'ld', last_modified: new Date() });
      const after1 = await authed('INVITE', `sip:00441234@${PHONE_IP}:${ser.port}`, 'alice', 'alicepw');
      assert.ok(after1.atGw, 'alice now in ld: forwarded');
      await db.delete('grp', { username: 'alice', grp: 'ld' });
    });
  });
}

const SCEN = fileURLToPath(new URL('../../../test/integration/sipp/', import.meta.url));
const haveSipp = existsSync('/usr/bin/sipp');

/** last line of a SIPp -trace_stat file as column → number */
function sippStats(file: string): (col: string) => number {
  const rows = readFileSync(file, 'utf8').trim().split('\n');
  const head = rows[0].split(';');
  const last = rows[rows.length - 1].split(';');
  return (col) => Number(last[head.indexOf(col)]);
}

describe('PSTN gateway guard with SIPp callers and a SIPp gateway (SQLite)', {
  skip: (!haveSeeds || !haveSipp) && 'seeds or sipp missing',
}, () => {
  let t: TestDb;
  let ser: Ser;
  let gwPort = 0;
  const dir = mkdtempSync(join(tmpdir(), 'sipp-pstn-'));
  before(async () => {
    t = await makeTestDb('sqlite');
    const db = await t.open();
    await createSchema(db);
    for (const [u, pw] of [
      ['alice', 'alicepw'],
      ['carol', 'carolpw'],
    ]) {
      await db.insert('subscriber', { username: u, domain: 'gateway', password: pw });
    }
    for (const [username, grp] of [
      ['alice', 'local'],
      ['carol', 'local'],
      ['carol', 'ld'],
      ['carol', 'int'],
    ]) {
      await db.insert('grp', { username, domain: 'gateway', grp, last_modified: new Date() });
    }
    const probeSock = await Endpoint.open(GW_IP);
    gwPort = probeSock.port;
    probeSock.close();
    ser = await startSer(`debug=3\n${pstnScript(t.url, gwPort)}`);
  });
  after(async () => {
    await ser?.stop();
    await t?.cleanup();
  });

  const uac = (
    scenario: string,
    user: string,
    password: string,
    number: string,
    calls: number,
    tag: string,
  ) =>
    spawnSync(
      'sipp',
      [
        `${SER_IP}:${ser.port}`,
        '-sf',
        join(SCEN, scenario),
        '-s',
        number,
        '-au',
        user,
        '-ap',
        password,
        '-i',
        PHONE_IP,
        '-p',
        '0',
        '-m',
        String(calls),
        '-r',
        '10',
        '-timeout',
        '20s',
        '-timeout_error',
        '-trace_stat',
        '-stf',
        join(dir, `${tag}.csv`),
        '-nostdin',
      ],
      { encoding: 'utf8', timeout: 30_000, cwd: dir },
    );

  it('carol (int) makes 20 international calls through to the gateway; each is accounted once', async () => {
    const gw = spawn(
      'sipp',
      [
        '-sf',
        join(SCEN, 'proxy-uas.xml'),
        '-i',
        GW_IP,
        '-p',
        String(gwPort),
        '-m',
        '20',
        '-timeout',
        '25s',
        '-timeout_error',
        '-trace_stat',
        '-stf',
        join(dir, 'gw.csv'),
        '-nostdin',
      ],
      { stdio: 'ignore', cwd: dir },
    );
    const gwDone = new Promise<number | null>((res) => gw.on('exit', (c) => res(c)));
    await sleep(300);
    const r = uac('pstn-uac.xml', 'carol', 'carolpw', '000123456', 20, 'carol');
    const gwCode = await Promise.race([gwDone, sleep(15000).then(() => 'timeout')]);
    if (gwCode === 'timeout') gw.kill('SIGKILL');
    assert.equal(r.status, 0, `sipp uac failed:\n${r.stdout}\n${r.stderr}`);
    const st = sippStats(join(dir, 'carol.csv'));
    assert.equal(st('SuccessfulCall(C)'), 20);
    assert.equal(st('FailedCall(C)'), 0);
    assert.equal(gwCode, 0, 'the gateway saw 20 complete calls, Record-Route in, own Route removed');
    const acc = ser
      .stderr()
      .split('\n')
      .filter((l) => /ACC: transaction answered/.test(l));
    if (HAVE.acc) {
      assert.equal(acc.filter((l) => /method=INVITE/.test(l) && /000123456/.test(l)).length, 20);
      assert.equal(
        acc.filter((l) => /method=BYE/.test(l)).length,
        0,
        'in-dialog requests are loose-routed before setflag',
      );
    }
  });

  it('alice (local only) gets 403 for 10 international calls; the gateway sees none', () => {
    const r = uac('pstn-uac-denied.xml', 'alice', 'alicepw', '000123456', 10, 'alice');
    assert.equal(r.status, 0, `sipp uac failed:\n${r.stdout}\n${r.stderr}`);
    const st = sippStats(join(dir, 'alice.csv'));
    assert.equal(st('SuccessfulCall(C)'), 10);
    assert.equal(st('FailedCall(C)'), 0);
  });
});
