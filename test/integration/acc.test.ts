/**
 * acc over real sockets with real peers (SIPp) and real databases: seed 003 Example 3-9
 * (syslog accounting, with and without 10% UDP loss), the missed-calls script of §3.2.8,
 * call records with the SIPp pause as duration on SQLite, MariaDB and PostgreSQL, and a
 * database that is down while calls go on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { callsFromAcc, queryCdrs } from '../../src/acc/cdr-query.js';
import { type Backend, openDb } from '../../src/db/index.js';
import { fifoCall } from '../../src/mgmt/fifo-client.js';
import { makeTestDb, probe, SKIP_EXTERNAL } from '../db/helpers.js';
import { freePort, haveSeeds, request, type Ser, seedScript, sleep, startSer, UdpPeer } from './harness.js';
import { explain, haveSipp, type SippRun, sipp } from './proxy-sipp.js';

/** caller through the proxy (-rsa) to the callee's address */
function uac(serPort: number, uasPort: number, calls: number, extra: string[] = []) {
  return sipp(
    'acc-uac.xml',
    [
      `127.0.0.1:${uasPort}`,
      '-rsa',
      `127.0.0.1:${serPort}`,
      '-s',
      'callee',
      '-i',
      '127.0.0.1',
      '-p',
      '0',
      '-m',
      String(calls),
      '-timeout',
      '40s',
      '-timeout_error',
      ...extra,
    ],
    45_000,
  );
}
function uas(port: number, calls: number, extra: string[] = []) {
  return sipp('acc-uas.xml', ['-i', '127.0.0.1', '-p', String(port), '-m', String(calls), ...extra], 45_000);
}

async function runCalls(
  ser: Ser,
  calls: number,
  extra: string[] = [],
  uasExtra: string[] = [],
): Promise<SippRun> {
  const uasPort = await freePort();
  const b = uas(uasPort, calls, uasExtra);
  await sleep(300);
  const a = uac(ser.port, uasPort, calls, extra);
  const ra = await a.done;
  b.kill();
  await b.done;
  return ra;
}

const accLines = (ser: Ser, what: RegExp) =>
  ser
    .stderr()
    .split('\n')
    .filter((l) => l.includes('ACC: ') && what.test(l));

describe('seed 003 Example 3-9 (acc.cfg): syslog accounting through the proxy', {
  skip: (!haveSipp && 'sipp missing') || (!haveSeeds && 'seed configs missing'),
}, () => {
  let ser: Ser;
  after(async () => {
    await ser?.stop();
  });

  it("one call: exactly one INVITE and one BYE report (log_level 1), plus SER's report_ack line for the ACK", async () => {
    ser = await startSer(`debug=1\n${seedScript('003-ex3-9-accounting.cfg')}`);
    const r = await runCalls(ser, 1, ['-d', '200']);
    assert.equal(r.code, 0, explain('uac', r));
    await ser.waitLog(/transaction answered: method=BYE/, 5000);
    const inv = accLines(ser, /transaction answered: method=INVITE/);
    const bye = accLines(ser, /transaction answered: method=BYE/);
    const ack = accLines(ser, /request acknowledged: method=ACK/);
    assert.equal(inv.length, 1, ser.stderr());
    assert.equal(bye.length, 1, ser.stderr());
    assert.equal(ack.length, 1, ser.stderr());
    assert.match(
      inv[0],
      /ACC: transaction answered: method=INVITE, i-uri=sip:callee@127\.0\.0\.1:\d+, o-uri=sip:callee@127\.0\.0\.1:\d+, call_id=\S+, from=sipp <sip:caller@127\.0\.0\.1:\d+>;tag=\S+, status=200 OK$/,
    );
    assert.match(bye[0], /status=200 OK$/);
    await ser.stop();
  });

  it('10 calls with 10% UDP loss on both SIPp sides: still one INVITE and one BYE report per call', async () => {
    ser = await startSer(`debug=1\n${seedScript('003-ex3-9-accounting.cfg')}`);
    const r = await runCalls(ser, 10, ['-d', '100', '-lost', '10', '-r', '5'], ['-lost', '10']);
    const ok = r.stat('SuccessfulCall(C)');
    assert.ok(ok >= 8, explain('uac', r));
    await sleep(1500);
    const perCall = (re: RegExp) => {
      const n = new Map<string, number>();
      for (const l of accLines(ser, re)) {
        const id = /call_id=([^,]+)/.exec(l)?.[1] ?? '';
        n.set(id, (n.get(id) ?? 0) + 1);
      }
      return n;
    };
    const inv = perCall(/transaction answered: method=INVITE/);
    const bye = perCall(/transaction answered: method=BYE/);
    assert.ok(inv.size >= ok, `${inv.size} INVITE reports for ${ok} calls`);
    for (const [id, n] of inv) assert.equal(n, 1, `INVITE of ${id} reported ${n} times`);
    for (const [id, n] of bye) assert.equal(n, 1, `BYE of ${id} reported ${n} times`);
    assert.ok(bye.size >= ok, `${bye.size} BYE reports for ${ok} completed calls`);
    await ser.stop();
  });

  it('ACK and BYE that follow the Route set take the loose_route branch: not accounted (seed erratum)', async () => {
    ser = await startSer(`debug=1\n${seedScript('003-ex3-9-accounting.cfg')}`);
    const uasPort = await freePort();
    const b = sipp('proxy-uas.xml', ['-i', '127.0.0.1', '-p', String(uasPort), '-m', '1'], 30_000);
    await sleep(300);
    const a = sipp(
      'proxy-uac.xml',
      [
        `127.0.0.1:${uasPort}`,
        '-rsa',
        `127.0.0.1:${ser.port}`,
        '-s',
        'callee',
        '-i',
        '127.0.0.1',
        '-p',
        '0',
        '-m',
        '1',
        '-timeout',
        '20s',
        '-timeout_error',
      ],
      25_000,
    );
    const ra = await a.done;
    b.kill();
    assert.equal(ra.code, 0, explain('uac', ra));
    await sleep(300);
    assert.equal(accLines(ser, /method=INVITE/).length, 1);
    assert.equal(accLines(ser, /method=BYE|method=ACK/).length, 0, ser.stderr());
    await ser.stop();
  });
});

/** seed 003 §3.2.8's fragment inside a route with a registrar, reporting to SQL as well */
function missedCallsCfg(dbUrl: string): string {
  // acc's log_level defaults to 2 (L_NOTICE), as in SER
  return `debug=2
loadmodule "modules/sl/sl.so"
loadmodule "modules/tm/tm.so"
loadmodule "modules/usrloc/usrloc.so"
loadmodule "modules/registrar/registrar.so"
loadmodule "modules/acc/acc.so"
modparam("acc", "log_missed_flag", 3 )
modparam("acc", "db_missed_flag", 3)
modparam("acc", "db_url", "${dbUrl}")
route {
  if (method=="REGISTER") { save("location"); break; };
  if (!lookup("location")) {
    if ((method=="INVITE" || method=="ACK") && t_newtran() ) {
      t_reply("404", "Not Found");
      acc_request("404 Not Found");
      break;
    };
    sl_send_reply("404", "Not Found");
    break;
  } else {
    setflag(3);
    t_relay();
    break;
  };
}`;
}

describe('seed 003 §3.2.8: reporting missed calls', { skip: !haveSipp && 'sipp missing' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ser-acc-it-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('off-line callee: 404 and one missed_calls row (a retransmission adds none); MESSAGE: stateless 404, no row; on-line callee answering 486: one row', async () => {
    const url = `sqlite://${join(dir, 'mc.db')}`;
    const ser = await startSer(missedCallsCfg(url));
    const ua = await UdpPeer.open();
    try {
      const inv = request('INVITE', `sip:nobody@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port });
      ua.send(inv, ser.port);
      const r1 = await ua.nextMsg();
      assert.equal(r1.status, 404);
      ua.send(inv, ser.port); // retransmission: absorbed by the transaction
      const r2 = await ua.nextMsg();
      assert.equal(r2.status, 404);
      const msg = request('MESSAGE', `sip:nobody@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port });
      ua.send(msg, ser.port);
      assert.equal((await ua.nextMsg()).status, 404);

      // bob registers a SIPp callee that answers 486
      const bobPort = await freePort();
      const busy = sipp('proxy-uas-busy.xml', ['-i', '127.0.0.1', '-p', String(bobPort), '-m', '1'], 20_000);
      ua.send(
        request('REGISTER', `sip:127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port }, [
          `To: <sip:bob@127.0.0.1:${ser.port}>`,
          `From: <sip:bob@127.0.0.1:${ser.port}>;tag=reg1`,
          `Contact: <sip:bob@127.0.0.1:${bobPort}>;expires=60`,
        ]),
        ser.port,
      );
      assert.equal((await ua.nextMsg()).status, 200);
      await sleep(300);
      const call = request('INVITE', `sip:bob@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port });
      ua.send(call, ser.port);
      let fin: number | undefined;
      for (let i = 0; i < 5 && fin === undefined; i++) {
        const m = await ua.nextMsg(3000);
        if (m.status >= 200) fin = m.status;
      }
      assert.equal(fin, 486);
      busy.kill();
      await sleep(500);
      const lines = ser
        .stderr()
        .split('\n')
        .filter((l) => l.includes('ACC: '));
      assert.equal(
        lines.filter((l) => l.includes('request accounted: method=INVITE')).length,
        1,
        ser.stderr(),
      );
      assert.equal(lines.filter((l) => l.includes('call missed: method=INVITE')).length, 1, ser.stderr());
      const db = await openDb(url);
      const rows = await db.select('missed_calls', { orderBy: 'id' });
      await db.close();
      assert.deepEqual(
        rows.map((r) => `${r.sip_method} ${r.sip_status} ${r.sip_reason} ${r.username}`),
        ['INVITE 404 Not Found nobody', 'INVITE 486 Busy Here bob'],
      );
    } finally {
      ua.close();
      await ser.stop();
    }
  });
});

function cdrCfg(dbUrl: string, extra = ''): string {
  return `debug=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "acc.so"
modparam("acc", "db_url", "${dbUrl}")
modparam("acc", "db_flag", 2)
${extra}
route {
  if (loose_route()) { t_relay(); break; };
  setflag(2);
  if (method=="INVITE") record_route();
  if (!t_relay()) { sl_reply_error(); break; };
}`;
}

describe('call records: the SIPp pause between ACK and BYE is the duration', {
  skip: !haveSipp && 'sipp missing',
}, () => {
  for (const b of ['sqlite', 'mysql', 'postgres'] as Backend[]) {
    it(`${b}: cdr row and seed 000 query over acc agree`, async (t) => {
      if (b !== 'sqlite') {
        const why = await probe(b);
        if (why) {
          if (SKIP_EXTERNAL) return t.skip(why);
          throw new Error(why);
        }
      }
      const tdb = await makeTestDb(b);
      const fifo = `/tmp/ser_acc_fifo_${process.pid}_${b}`;
      const ser = await startSer(`fifo="${fifo}"\n${cdrCfg(tdb.url)}`);
      try {
        const r = await runCalls(ser, 1, ['-d', '2000']);
        assert.equal(r.code, 0, explain('uac', r));
        await sleep(500);
        const db = await tdb.open();
        const calls = await queryCdrs(db);
        assert.equal(calls.length, 1, JSON.stringify(calls));
        const c = calls[0];
        assert.equal(c.disposition, 'answered');
        assert.equal(c.hangup, 'caller');
        assert.equal(c.duration, 2, `duration ${c.durationMs} ms`);
        assert.ok(c.durationMs >= 2000 && c.durationMs < 2500, `duration ${c.durationMs} ms`);
        assert.match(c.caller, /^sip:caller@127\.0\.0\.1:\d+$/);
        assert.match(c.callee, /^sip:callee@127\.0\.0\.1:\d+$/);
        const seed = await callsFromAcc(db);
        assert.equal(seed.length, 1, JSON.stringify(seed));
        assert.equal(seed[0].callId, c.callId);
        assert.ok(Math.abs(seed[0].duration - c.duration) <= 1, `seed ${seed[0].durata}, cdr ${c.duration}s`);
        // the same call through the FIFO and JSON-RPC management command
        const f = await fifoCall(fifo, 'acc_cdrs', ['callee', '1h']);
        assert.equal(f.code, 200);
        assert.equal(f.body.length, 1);
        assert.match(
          f.body[0],
          /sip:caller@127\.0\.0\.1:\d+ -> sip:callee@127\.0\.0\.1:\d+ answered 200 duration=2s hangup=caller/,
        );
        const rpc = await rpcLine(`${fifo}.sock`, {
          jsonrpc: '2.0',
          id: 7,
          method: 'acc_cdrs',
          params: ['-', '1h', '5'],
        });
        assert.equal(rpc.id, 7);
        const data = (rpc.result as { data: { callId: string; duration: number }[] }).data;
        assert.equal(data.length, 1, JSON.stringify(rpc));
        assert.equal(data[0].callId, c.callId);
        assert.equal(data[0].duration, 2);
        const bad = await fifoCall(fifo, 'acc_cdrs', ['-', 'last week']);
        assert.equal(bad.code, 400);
        const stats = await fifoCall(fifo, 'acc_stats');
        assert.ok(stats.body.includes('db_lost=0'), stats.body.join('\n'));
        assert.ok(stats.body.includes('cdr_ended=1'), stats.body.join('\n'));
      } finally {
        await ser.stop();
        await tdb.cleanup();
      }
    });
  }
});

/** One JSON-RPC request over the unix socket: one line out, one line back. */
function rpcLine(path: string, req: unknown): Promise<{ id: unknown; result?: unknown; error?: unknown }> {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    let buf = '';
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error('rpc timeout'));
    }, 5000);
    c.on('connect', () => c.write(`${JSON.stringify(req)}\n`));
    c.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        c.destroy();
        resolve(JSON.parse(buf.slice(0, nl)));
      }
    });
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

/** A TCP relay to MariaDB that can be switched off and on: the database "goes down". */
class Relay {
  private server: Server | undefined;
  private readonly socks = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}
  async up(): Promise<void> {
    this.server = createServer((c) => {
      const s = connect(this.target, '127.0.0.1');
      this.socks.add(c).add(s);
      c.pipe(s).pipe(c);
      const end = () => {
        c.destroy();
        s.destroy();
      };
      c.on('error', end).on('close', end);
      s.on('error', end).on('close', end);
    });
    await new Promise<void>((res) => this.server!.listen(this.port, '127.0.0.1', () => res()));
  }
  async down(): Promise<void> {
    for (const s of this.socks) s.destroy();
    this.socks.clear();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    this.server = undefined;
  }
}

describe('database down during calls (MariaDB behind a relay)', { skip: !haveSipp && 'sipp missing' }, () => {
  it('records made while it is unreachable are kept and written when it returns', async (t) => {
    const why = await probe('mysql');
    if (why) {
      if (SKIP_EXTERNAL) return t.skip(why);
      throw new Error(why);
    }
    const tdb = await makeTestDb('mysql');
    const relay = new Relay(await freePort(), 3306);
    // the relay is not up: the database is unreachable from the start
    const url = tdb.url.replace(/:3306\//, `:${relay.port}/`);
    const ser = await startSer(cdrCfg(url, 'modparam("acc", "db_retry_interval", 1)'));
    try {
      const r = await runCalls(ser, 3, ['-d', '100', '-r', '5']);
      assert.equal(r.code, 0, explain('uac', r));
      await ser.waitLog(/acc: database write failed/, 5000);
      const direct = await tdb.open();
      assert.ok(!(await direct.listTables()).includes('acc'), 'nothing written yet');
      await relay.up();
      // the retry timer writes what was kept: 3 calls × (INVITE, ACK, BYE) in acc
      const t0 = Date.now();
      let n = 0;
      while (Date.now() - t0 < 10_000) {
        if ((await direct.listTables()).includes('acc')) n = await direct.count('acc');
        if (n >= 9) break;
        await sleep(200);
      }
      assert.equal(n, 9, ser.stderr().slice(-3000));
      await ser.waitLog(/acc: database back/, 5000);
      const calls = await queryCdrs(direct);
      assert.equal(calls.length, 3);
      for (const c of calls) assert.equal(c.hangup, 'caller');
    } finally {
      await ser.stop();
      await relay.down();
      await tdb.cleanup();
    }
  });
});

/** A reply to a received request, as a UAS sends it: every Via, From, To with a tag, Call-ID, CSeq. */
function uasReply(rq: import('../../src/sip/message.js').SipMessage, code: number, reason: string): string {
  const vias = rq.headers('Via').map((v) => `Via: ${v}`);
  const to = rq.header('To')!;
  return [
    `SIP/2.0 ${code} ${reason}`,
    ...vias,
    `From: ${rq.header('From')}`,
    `To: ${to}${/;tag=/.test(to) ? '' : ';tag=callee1'}`,
    `Call-ID: ${rq.callId}`,
    `CSeq: ${rq.header('CSeq')}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

describe('digest credentials in the accounting record', () => {
  it('an INVITE that passed proxy_authorize is recorded with digest_username and digest_realm', async () => {
    const { answer, makeSubscribers, REALM } = await import('./auth-helpers.test.js');
    const dir = mkdtempSync(join(tmpdir(), 'ser-acc-auth-'));
    const url = `sqlite://${join(dir, 'ser.db')}`;
    await makeSubscribers(url, { alice: 'secret1' });
    const ser = await startSer(`debug=2
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "acc.so"
modparam("auth", "secret", "acc-test-secret")
modparam("auth_db", "db_url", "${url}")
modparam("acc", "db_url", "${url}")
modparam("acc", "db_flag", 2)
modparam("acc", "log_flag", 2)
modparam("acc", "log_fmt", "mcsuR")
route {
  if (method=="INVITE" && !proxy_authorize("${REALM}", "subscriber")) { proxy_challenge("${REALM}", "0"); break; };
  setflag(2);
  t_relay();
}`);
    const caller = await UdpPeer.open();
    const callee = await UdpPeer.open();
    try {
      const ruri = `sip:bob@127.0.0.1:${callee.port}`;
      const from = { ip: '127.0.0.1', port: caller.port };
      const first = request('INVITE', ruri, from, [
        `From: <sip:alice@${REALM}>;tag=al1`,
        'Call-ID: acc-auth-1@it',
      ]);
      caller.send(first, ser.port);
      const ch = await caller.nextMsg(3000);
      assert.equal(ch.status, 407);
      const auth = answer({ user: 'alice', password: 'secret1', challenge: ch, method: 'INVITE', uri: ruri });
      caller.send(
        request('INVITE', ruri, from, [
          `From: <sip:alice@${REALM}>;tag=al1`,
          'Call-ID: acc-auth-1@it',
          'CSeq: 2 INVITE',
          auth,
        ]),
        ser.port,
      );
      const inv = await callee.nextMsg(3000);
      assert.equal(inv.method, 'INVITE');
      callee.send(uasReply(inv, 200, 'OK'), ser.port);
      let ok: number | undefined;
      for (let i = 0; i < 4 && ok === undefined; i++) {
        const m = await caller.nextMsg(3000);
        if (m.status >= 200) ok = m.status;
      }
      assert.equal(ok, 200);
      await ser.waitLog(/ACC: transaction answered: method=INVITE/, 3000);
      assert.match(
        ser.stderr(),
        /ACC: transaction answered: method=INVITE, call_id=acc-auth-1@it, status=200 OK, uid=alice, realm=test\.realm/,
      );
      let rows: Record<string, unknown>[] = [];
      for (let i = 0; i < 20 && rows.length === 0; i++) {
        const db = await openDb(url);
        if ((await db.listTables()).includes('acc')) rows = await db.select('acc');
        await db.close();
        if (rows.length === 0) await sleep(100);
      }
      assert.equal(rows.length, 1);
      assert.equal(rows[0].digest_username, 'alice');
      assert.equal(rows[0].digest_realm, REALM);
      assert.equal(rows[0].sip_callid, 'acc-auth-1@it');
    } finally {
      caller.close();
      callee.close();
      await ser.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
