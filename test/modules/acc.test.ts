/**
 * acc: the record fields, SER's log line and log_fmt, the flags that select reports, the
 * SQL rows of acc/missed_calls, the script actions, and the call records. Transactions are
 * fed to acc's handlers as tm reports them (TmCompletion / TmE2eAck); the databases are real.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { callsFromAcc, queryCdrs } from '../../src/acc/cdr-query.js';
import type { CoreApi } from '../../src/core/api.js';
import { L_DBG, Logger, MemorySink } from '../../src/core/log.js';
import type { ParamValue } from '../../src/core/module.js';
import { MessageContext } from '../../src/core/msg-context.js';
import { systemClock, TimerWheel } from '../../src/core/timer.js';
import { type Backend, type Db, openDb } from '../../src/db/index.js';
import acc, { type AccState, cdrFilter } from '../../src/modules/acc/index.js';
import { setAuthorized } from '../../src/modules/auth/credentials.js';
import { checkLogFmt } from '../../src/modules/acc/log-fmt.js';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import type { TmApi, TmCompletion, TmE2eAck } from '../../src/tm/api.js';
import { makeTestDb, probe, SKIP_EXTERNAL } from '../db/helpers.js';
import { DST, load, SRC } from './helpers.js';

function msg(lines: string[]): SipMessage {
  return parseMessage(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), { datagram: true });
}

const CALLID = 'e9e3a6f0@195.37.77.100';
function request(
  method: string,
  opts: { toTag?: string; fromTag?: string; cseq?: number; ruri?: string } = {},
) {
  const ruri = opts.ruri ?? 'sip:bob@iptel.org';
  return msg([
    `${method} ${ruri} SIP/2.0`,
    'Via: SIP/2.0/UDP 195.37.77.100:5040;branch=z9hG4bK-a1',
    'Max-Forwards: 70',
    `From: "Alice" <sip:alice@iptel.org>;tag=${opts.fromTag ?? 'a-tag'}`,
    `To: <sip:bob@iptel.org>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
    `Call-ID: ${CALLID}`,
    `CSeq: ${opts.cseq ?? 1} ${method === 'ACK' ? 'ACK' : method}`,
    'Content-Length: 0',
  ]);
}
function replyTo(rq: SipMessage, code: number, reason: string, toTag = 'b-tag'): SipMessage {
  return msg([
    `SIP/2.0 ${code} ${reason}`,
    'Via: SIP/2.0/UDP 195.37.77.100:5040;branch=z9hG4bK-a1',
    `From: ${rq.header('From')}`,
    rq.toTag ? `To: ${rq.header('To')}` : `To: ${rq.header('To')};tag=${toTag}`,
    `Call-ID: ${CALLID}`,
    `CSeq: ${rq.cseq.seq} ${rq.method}`,
    'Content-Length: 0',
  ]);
}

interface Harness {
  st: AccState;
  sink: MemorySink;
  core: CoreApi;
  timers: TimerWheel;
  stats: Map<string, () => Record<string, number>>;
  hasTrans: Set<MessageContext>;
  call(ctx: MessageContext, name: string, ...args: string[]): Promise<number>;
  complete(rq: SipMessage, code: number, reason: string, o?: Partial<TmCompletion>): void;
  ack(rq: SipMessage, flags: number): void;
  close(): Promise<void>;
}

const F = (...n: number[]) => n.reduce((a, b) => a | (1 << b), 0);

async function harness(params: Record<string, ParamValue> = {}): Promise<Harness> {
  const sink = new MemorySink();
  const timers = new TimerWheel(systemClock, 10);
  timers.start();
  const stats = new Map<string, () => Record<string, number>>();
  const done: ((e: TmCompletion) => void)[] = [];
  const acks: ((e: TmE2eAck) => void)[] = [];
  const hasTrans = new Set<MessageContext>();
  const tm: TmApi = {
    onCompleted: (fn) => done.push(fn),
    onE2eAck: (fn) => acks.push(fn),
    hasTransaction: (ctx) => hasTrans.has(ctx as MessageContext),
  };
  const core = {
    log: new Logger(L_DBG, sink),
    clock: systemClock,
    timers,
    getApi: (n: string) => (n === 'tm' ? tm : undefined),
    addStats: (g: string, f: () => Record<string, number>) => stats.set(g, f),
  } as unknown as CoreApi;
  const m = await load(acc, core, params);
  const st = m.state;
  return {
    st,
    sink,
    core,
    timers,
    stats,
    hasTrans,
    call: (ctx, name, ...args) => m.call(ctx, name, ...args),
    complete(rq, code, reason, o = {}) {
      const now = systemClock.now();
      const ctx = new MessageContext(rq, SRC, DST);
      const ev: TmCompletion = {
        request: rq,
        flags: 0,
        src: SRC,
        ruri: 'sip:bob@10.0.0.7:5062',
        code,
        reason,
        reply: code >= 200 ? replyTo(rq, code, reason) : undefined,
        ctx,
        createdAt: now - 1500,
        completedAt: now,
        ...o,
      };
      for (const f of done) f(ev);
    },
    ack(rq, flags) {
      const ctx = new MessageContext(rq, SRC, DST);
      for (const f of acks) f({ request: rq, flags, src: SRC, ruri: rq.ruri, ctx });
    },
    async close() {
      await acc.destroy?.(st);
      timers.stop();
    },
  };
}

const accLines = (h: Harness) => h.sink.lines.filter((l) => l.includes('ACC: '));

describe('acc: log reports (log_flag, log_missed_flag, log_fmt)', () => {
  it('a flagged INVITE answered 200 gives one SER line with the default log_fmt "miocfs"', async () => {
    const h = await harness({ log_flag: 1, log_level: 1 });
    h.complete(request('INVITE'), 200, 'OK', { flags: F(1) });
    const lines = accLines(h);
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /^0\(\d+\) ACC: transaction answered: method=INVITE, i-uri=sip:bob@iptel\.org, o-uri=sip:bob@10\.0\.0\.7:5062, call_id=e9e3a6f0@195\.37\.77\.100, from="Alice" <sip:alice@iptel\.org>;tag=a-tag, status=200 OK\n$/,
    );
    // without the flag: nothing
    h.complete(request('INVITE'), 200, 'OK', { flags: F(2) });
    assert.equal(accLines(h).length, 1);
    await h.close();
  });

  it('log_level: the line is logged at that level (hidden when debug is lower)', async () => {
    const h = await harness({ log_flag: 1, log_level: 3 });
    h.core.log.debug = 2;
    h.complete(request('INVITE'), 200, 'OK', { flags: F(1) });
    assert.equal(accLines(h).length, 0);
    h.core.log.debug = 3;
    h.complete(request('INVITE'), 200, 'OK', { flags: F(1) });
    assert.equal(accLines(h).length, 1);
    await h.close();
  });

  it('log_fmt selects and orders the fields; missing values print n/a', async () => {
    const h = await harness({ log_flag: 1, log_fmt: 'cdrtnSI' });
    h.complete(request('MESSAGE', { cseq: 7 }), 202, 'Accepted', { flags: F(1) });
    assert.equal(
      accLines(h)[0].replace(/^0\(\d+\) /, ''),
      `ACC: transaction answered: call_id=${CALLID}, totag=b-tag, fromtag=a-tag, to=<sip:bob@iptel.org>;tag=b-tag, cseq=7, code=202, src_ip=195.37.77.100\n`,
    );
    h.complete(request('OPTIONS'), 200, 'OK', { flags: F(1), reply: undefined });
    assert.match(accLines(h)[1], /totag=n\/a/, 'a locally generated reply: no To-tag known');
    await h.close();
  });

  it('an unknown log_fmt letter is refused with the letters that exist', () => {
    assert.throws(() => checkLogFmt('mio?'), /unknown letter '\?'/);
    assert.throws(() => acc.params!.log_fmt.validate!('mQ'), /unknown letter 'Q'/);
    assert.equal(checkLogFmt('miocfs'), 'miocfs');
  });

  it('a 486 is no answered report (failed_transactions=0) but a missed call under log_missed_flag', async () => {
    const h = await harness({ log_flag: 1, log_missed_flag: 3 });
    h.complete(request('INVITE'), 486, 'Busy Here', { flags: F(1, 3) });
    const l = accLines(h);
    assert.equal(l.length, 1);
    assert.match(l[0], /ACC: call missed: method=INVITE, .*status=486 Busy Here\n$/);
    // a failed non-INVITE is no missed call
    h.complete(request('MESSAGE'), 404, 'Not Found', { flags: F(1, 3) });
    assert.equal(accLines(h).length, 1);
    await h.close();
    const h2 = await harness({ log_flag: 1, failed_transactions: 1 });
    h2.complete(request('INVITE'), 486, 'Busy Here', { flags: F(1) });
    assert.match(accLines(h2)[0], /transaction answered: .*status=486 Busy Here/);
    await h2.close();
  });

  it('CANCEL is reported only with report_cancels=1; e2e ACKs only with report_ack=1', async () => {
    const h = await harness({ log_flag: 1, report_ack: 0 });
    h.complete(request('CANCEL'), 200, 'OK', { flags: F(1) });
    h.ack(request('ACK', { toTag: 'b-tag' }), F(1));
    assert.equal(accLines(h).length, 0);
    await h.close();
    const h2 = await harness({ log_flag: 1, report_cancels: 1 });
    h2.complete(request('CANCEL'), 200, 'OK', { flags: F(1) });
    h2.ack(request('ACK', { toTag: 'b-tag' }), F(1));
    const l = accLines(h2);
    assert.equal(l.length, 2);
    assert.match(l[1], /ACC: request acknowledged: method=ACK, .*status=200 OK/);
    await h2.close();
  });

  it('acc_log_request / acc_request report the request with the comment as status', async () => {
    const h = await harness({ log_missed_flag: 3 });
    const ctx = new MessageContext(request('INVITE'), SRC, DST);
    h.hasTrans.add(ctx);
    assert.equal(await h.call(ctx, 'acc_request', '404 Not Found'), 1);
    assert.equal(await h.call(ctx, 'acc_log_request', 'call to voicemail'), 1);
    const l = accLines(h);
    assert.match(l[0], /ACC: request accounted: method=INVITE, .*status=404 Not Found\n$/);
    assert.match(l[1], /status=call to voicemail\n$/);
    assert.ok(!h.sink.lines.some((x) => x.includes('no transaction')));
    // outside a transaction the operator is told once that retransmissions repeat the report
    const bare = new MessageContext(request('INVITE'), SRC, DST);
    await h.call(bare, 'acc_request', '404 Not Found');
    await h.call(bare, 'acc_request', '404 Not Found');
    assert.equal(h.sink.lines.filter((x) => x.includes('no transaction')).length, 1);
    await h.close();
  });

  it('the radius flags are refused with a clear message; db_url syntax errors are load errors', () => {
    assert.throws(() => acc.params!.radius_flag.validate!(1), /RADIUS accounting is not available/);
    acc.params!.radius_flag.validate!(0);
    assert.throws(() => acc.params!.db_url.validate!('mysql:ser:heslo@localhost/ser'), /invalid db_url/);
    assert.throws(() => acc.params!.log_flag.validate!(32), /flag number/);
  });
});

describe('acc: SQL records', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const sqliteUrl = () => {
    const d = mkdtempSync(join(tmpdir(), 'ser-acc-'));
    dirs.push(d);
    return `sqlite://${join(d, 'ser.db')}`;
  };

  it('db_flag: a row in acc with SER fields and ours; missed_calls under db_missed_flag', async () => {
    const url = sqliteUrl();
    const h = await harness({ db_url: url, db_flag: 2, db_missed_flag: 3 });
    const inv = request('INVITE');
    const ctx = new MessageContext(inv, SRC, DST);
    setAuthorized(ctx, 'alice', 'iptel.org', 'authorization:0');
    h.complete(inv, 200, 'OK', { flags: F(2), ctx });
    h.complete(request('INVITE', { fromTag: 'x2' }), 486, 'Busy Here', { flags: F(2, 3) });
    assert.equal(await h.st.writer!.flush(), true);
    const db = await openDb(url);
    const rows = await db.select('acc', { orderBy: 'id' });
    assert.equal(rows.length, 1, 'a 486 is not in acc without failed_transactions');
    const r = rows[0];
    assert.equal(r.sip_method, 'INVITE');
    assert.equal(r.from_uri, 'sip:alice@iptel.org');
    assert.equal(r.to_uri, 'sip:bob@iptel.org');
    assert.equal(r.sip_callid, CALLID);
    assert.equal(Number(r.sip_cseq), 1);
    assert.equal(r.sip_status, '200');
    assert.equal(r.sip_reason, 'OK');
    assert.equal(r.fromtag, 'a-tag');
    assert.equal(r.totag, 'b-tag');
    assert.equal(r.i_uri, 'sip:bob@iptel.org');
    assert.equal(r.o_uri, 'sip:bob@10.0.0.7:5062');
    assert.equal(r.src_ip, '195.37.77.100');
    assert.equal(Number(r.src_port), 5040);
    assert.equal(r.ruri_user, 'bob');
    assert.equal(r.ruri_domain, 'iptel.org');
    assert.equal(r.username, 'alice', 'acc: the caller');
    assert.equal(r.digest_username, 'alice');
    assert.equal(r.digest_realm, 'iptel.org');
    assert.ok(r.time instanceof Date && Math.abs(r.time.getTime() - Date.now()) < 60_000);
    const mc = await db.select('missed_calls');
    assert.equal(mc.length, 1);
    assert.equal(mc[0].sip_status, '486');
    assert.equal(mc[0].sip_reason, 'Busy Here');
    assert.equal(mc[0].username, 'bob', 'missed_calls: the callee');
    await db.close();
    await h.close();
  });

  it('acc_request("404 Not Found") writes one missed_calls row; acc_db_request writes to the named table', async () => {
    const url = sqliteUrl();
    const h = await harness({ db_url: url, db_missed_flag: 3, log_missed_flag: 3 });
    const ctx = new MessageContext(request('INVITE'), SRC, DST);
    h.hasTrans.add(ctx);
    await h.call(ctx, 'acc_request', '404 Not Found');
    await h.call(ctx, 'acc_db_request', 'voicemail', 'vm_calls');
    assert.equal(await h.st.writer!.flush(), true);
    const db = await openDb(url);
    const mc = await db.select('missed_calls');
    assert.equal(mc.length, 1);
    assert.equal(mc[0].sip_status, '404');
    assert.equal(mc[0].sip_reason, 'Not Found');
    assert.ok(!(await db.listTables()).includes('acc'), 'nothing went to acc');
    const vm = await db.select('vm_calls');
    assert.equal(vm.length, 1);
    assert.equal(vm[0].sip_status, 'voicemail');
    await db.close();
    await h.close();
  });

  it('acc_db_request refuses a bad table name at load time', async () => {
    const h = await harness({ db_url: sqliteUrl(), db_flag: 2 });
    assert.throws(
      () =>
        acc.functions!.acc_db_request.signatures[0][1].fixup(
          { kind: 'string', value: 'a b', quote: '"' },
          { routeKind: 'request', routeExists: () => true, modules: new Set() },
        ),
      /invalid table name/,
    );
    await h.close();
  });

  it('values longer than the column are cut, not refused (a long From never blocks the queue)', async () => {
    const url = sqliteUrl();
    const h = await harness({ db_url: url, db_flag: 2 });
    const rq = request('INVITE', { fromTag: 'x'.repeat(300) });
    h.complete(rq, 200, 'OK', { flags: F(2) });
    assert.equal(await h.st.writer!.flush(), true);
    const db = await openDb(url);
    const [r] = await db.select('acc');
    assert.equal(String(r.fromtag).length, 128);
    await db.close();
    await h.close();
  });
});

describe('acc: database down — records kept, retried, spooled across a restart', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('records made while the database cannot be opened are written when it comes back, in order', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ser-acc-'));
    dirs.push(d);
    // the directory of the SQLite file does not exist yet: every open fails
    const url = `sqlite://${join(d, 'later', 'ser.db')}`;
    const h = await harness({ db_url: url, db_flag: 2, db_retry_interval: 1, cdr: 0 });
    for (let i = 1; i <= 5; i++) h.complete(request('INVITE', { cseq: i }), 200, 'OK', { flags: F(2) });
    await new Promise((r) => setTimeout(r, 100));
    const s1 = h.stats.get('acc')!();
    assert.equal(s1.db_written, 0);
    assert.equal(s1.db_queued, 5);
    assert.equal(s1.db_spooled, 5);
    assert.equal(s1.db_lost, 0);
    assert.ok(s1.db_errors >= 1);
    assert.ok(
      h.sink.lines.some((l) => l.includes('database write failed') && l.includes('retrying every 1 s')),
    );
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(d, 'later'));
    // the retry timer writes them (bounded wait)
    const t0 = Date.now();
    while (h.stats.get('acc')!().db_written < 5 && Date.now() - t0 < 5000)
      await new Promise((r) => setTimeout(r, 50));
    const s2 = h.stats.get('acc')!();
    assert.equal(s2.db_written, 5);
    assert.equal(s2.db_queued, 0);
    const db = await openDb(url);
    const rows = await db.select('acc', { orderBy: 'id' });
    assert.deepEqual(
      rows.map((r) => Number(r.sip_cseq)),
      [1, 2, 3, 4, 5],
    );
    // written in one multi-row INSERT: every value is bound in its place
    assert.ok(rows.every((r) => r.time instanceof Date && r.sip_callid === CALLID && r.totag === 'b-tag'));
    await db.close();
    await h.close();
  });

  it('with spool_file, records still queued at shutdown are written by the next start', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ser-acc-'));
    dirs.push(d);
    const url = `sqlite://${join(d, 'later', 'ser.db')}`;
    const spool = join(d, 'acc.spool');
    const h = await harness({ db_url: url, db_flag: 2, spool_file: spool, db_retry_interval: 60 });
    h.complete(request('INVITE', { cseq: 11 }), 200, 'OK', { flags: F(2) });
    h.complete(request('BYE', { cseq: 12, toTag: 'b-tag' }), 200, 'OK', { flags: F(2) });
    await new Promise((r) => setTimeout(r, 50));
    await h.close();
    assert.ok(h.sink.lines.some((l) => l.includes('left in') && l.includes('acc.spool')));
    assert.equal(h.stats.get('acc')!().db_lost, 0);
    const { mkdirSync, readFileSync } = await import('node:fs');
    // acc INVITE, cdr insert, acc BYE, cdr update
    assert.equal(readFileSync(spool, 'utf8').trim().split('\n').length, 4);
    mkdirSync(join(d, 'later'));
    const h2 = await harness({ db_url: url, db_flag: 2, spool_file: spool });
    const t0 = Date.now();
    while (h2.stats.get('acc')!().db_written < 4 && Date.now() - t0 < 5000)
      await new Promise((r) => setTimeout(r, 20));
    const db = await openDb(url);
    const rows = await db.select('acc', { orderBy: 'id' });
    assert.deepEqual(
      rows.map((r) => `${r.sip_method} ${r.sip_cseq}`),
      ['INVITE 11', 'BYE 12'],
    );
    assert.ok(rows[0].time instanceof Date);
    const [call] = await queryCdrs(db);
    assert.equal(call.hangup, 'caller', 'the call was closed by the spooled BYE');
    assert.equal(readFileSync(spool, 'utf8'), '', 'the spool file is emptied once written');
    await db.close();
    await h2.close();
  });

  it('without spool_file, a full queue counts lost records (spool_max)', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ser-acc-'));
    dirs.push(d);
    const h = await harness({
      db_url: `sqlite://${join(d, 'nodir', 'ser.db')}`,
      db_flag: 2,
      spool_max: 3,
      db_retry_interval: 60,
      cdr: 0,
    });
    for (let i = 0; i < 5; i++) h.complete(request('INVITE', { cseq: i }), 200, 'OK', { flags: F(2) });
    const s = h.stats.get('acc')!();
    assert.equal(s.db_lost, 2);
    assert.equal(s.db_queued, 3);
    assert.ok(h.sink.lines.some((l) => l.includes('accounting queue full (3)')));
    await h.close();
    assert.equal(h.stats.get('acc')!().db_lost, 5, 'the 3 queued ones are lost at shutdown, and said so');
  });
});

async function callScenario(h: Harness, pauseMs: number, byeFromCallee = false): Promise<void> {
  const inv = request('INVITE');
  const now = systemClock.now();
  h.complete(inv, 200, 'OK', { flags: F(2), createdAt: now - 800, completedAt: now });
  h.ack(request('ACK', { toTag: 'b-tag' }), F(2));
  const bye = byeFromCallee
    ? msg([
        'BYE sip:alice@195.37.77.100:5040 SIP/2.0',
        'Via: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bK-b1',
        'Max-Forwards: 70',
        'From: <sip:bob@iptel.org>;tag=b-tag',
        'To: "Alice" <sip:alice@iptel.org>;tag=a-tag',
        `Call-ID: ${CALLID}`,
        'CSeq: 1 BYE',
        'Content-Length: 0',
      ])
    : request('BYE', { toTag: 'b-tag', cseq: 2 });
  // the BYE completes `pauseMs` after the call started
  h.complete(bye, 200, 'OK', { flags: F(2), createdAt: now + pauseMs - 5, completedAt: now + pauseMs });
}

describe('acc: call records (cdr) and seed 000 self-join', () => {
  const backends: Backend[] = ['sqlite', 'mysql', 'postgres'];
  for (const b of backends) {
    it(`${b}: INVITE 200 + ACK + BYE → one call with start, end, duration, who hung up; the seed query agrees`, async (t) => {
      if (b !== 'sqlite') {
        const why = await probe(b);
        if (why) {
          if (SKIP_EXTERNAL) return t.skip(why);
          throw new Error(why);
        }
      }
      const tdb = await makeTestDb(b);
      const h = await harness({ db_url: tdb.url, db_flag: 2 });
      try {
        await callScenario(h, 3200);
        assert.equal(await h.st.writer!.flush(), true);
        const db: Db = await tdb.open();
        const calls = await queryCdrs(db);
        assert.equal(calls.length, 1);
        const c = calls[0];
        assert.equal(c.callId, CALLID);
        assert.equal(c.caller, 'sip:alice@iptel.org');
        assert.equal(c.callee, 'sip:bob@iptel.org');
        assert.equal(c.disposition, 'answered');
        assert.equal(c.code, 200);
        assert.equal(c.hangup, 'caller');
        assert.equal(c.durationMs, 3200);
        assert.equal(c.duration, 3);
        assert.ok(c.start && c.end && c.setup);
        assert.ok(
          Math.abs(c.end.getTime() - c.start.getTime() - 3200) <= 1000,
          'DATETIME may keep whole seconds',
        );
        // the same call from the raw acc rows with seed 000's query
        const seed = await callsFromAcc(db);
        assert.equal(seed.length, 1, JSON.stringify(seed));
        assert.equal(seed[0].callId, CALLID);
        assert.equal(seed[0].caller, 'sip:alice@iptel.org');
        assert.equal(seed[0].callee, 'sip:bob@iptel.org');
        assert.ok(Math.abs(seed[0].duration - c.duration) <= 1, `${seed[0].durata} vs ${c.duration}s`);
        assert.match(seed[0].durata, /^00:00:0[234]$/);
        // acc has the three transactions the query joins
        const methods = (await db.select('acc', { orderBy: 'id' })).map((r) => r.sip_method);
        assert.deepEqual(methods, ['INVITE', 'ACK', 'BYE']);
      } finally {
        await h.close();
        await tdb.cleanup();
      }
    });
  }

  it('the callee hanging up, a busy callee, filters by user and time, the timeout', async () => {
    const tdb = await makeTestDb('sqlite');
    const h = await harness({ db_url: tdb.url, db_flag: 2, cdr_timeout: 1 });
    try {
      await callScenario(h, 1000, true);
      h.complete(request('INVITE', { fromTag: 'busy1' }), 486, 'Busy Here', { flags: F(2) });
      // answered, never ended: the sweep closes it as a timeout
      h.complete(request('INVITE', { fromTag: 'long1' }), 200, 'OK', { flags: F(2) });
      h.st.cdr!.sweep(Date.now() + 1500);
      assert.equal(await h.st.writer!.flush(), true);
      const db = await tdb.open();
      const calls = await queryCdrs(db);
      assert.equal(calls.length, 3);
      const byHang = Object.fromEntries(calls.map((c) => [`${c.disposition}/${c.hangup}`, c]));
      assert.ok(byHang['answered/callee'], JSON.stringify(calls));
      assert.equal(byHang['answered/callee'].durationMs, 1000);
      assert.equal(byHang['busy/'].code, 486);
      assert.equal(byHang['busy/'].duration, 0);
      assert.equal(byHang['answered/timeout'].duration, 2);
      assert.equal(h.stats.get('acc')!().cdr_timed_out, 1);
      assert.equal((await queryCdrs(db, { user: 'bob' })).length, 3);
      assert.equal((await queryCdrs(db, { user: 'carol' })).length, 0);
      assert.equal((await queryCdrs(db, { user: 'alice@iptel.org' })).length, 3);
      assert.equal((await queryCdrs(db, { since: new Date(Date.now() + 3_600_000) })).length, 0);
      assert.equal((await queryCdrs(db, { limit: 1 })).length, 1);
      // the management command
      const r = await acc.mgmt!.acc_cdrs.run(h.st, ['bob', '1h']);
      assert.equal(r.code, 200);
      assert.equal((r.data as unknown[]).length, 3);
      assert.match(
        r.body!,
        /sip:alice@iptel\.org -> sip:bob@iptel\.org answered 200 duration=1s hangup=callee/,
      );
      const bad = await acc.mgmt!.acc_cdrs.run(h.st, ['bob', 'yesterday']);
      assert.equal(bad.code, 400);
      assert.match(bad.reason, /bad time 'yesterday'/);
    } finally {
      await h.close();
      await tdb.cleanup();
    }
  });

  it('a call open when the server stopped is closed by its BYE after the restart', async () => {
    const tdb = await makeTestDb('sqlite');
    try {
      const h1 = await harness({ db_url: tdb.url, db_flag: 2 });
      const now = systemClock.now();
      h1.complete(request('INVITE'), 200, 'OK', { flags: F(2), createdAt: now - 100, completedAt: now });
      assert.equal(await h1.st.writer!.flush(), true);
      await h1.close();
      const h2 = await harness({ db_url: tdb.url, db_flag: 2 });
      const t0 = Date.now();
      while (h2.st.cdr!.stats.open === 0 && Date.now() - t0 < 3000)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(h2.st.cdr!.stats.open, 1);
      assert.ok(h2.sink.lines.some((l) => l.includes('1 open call(s) from before the start')));
      await new Promise((r) => setTimeout(r, 1100));
      h2.complete(request('BYE', { toTag: 'b-tag', cseq: 2 }), 200, 'OK');
      assert.equal(await h2.st.writer!.flush(), true);
      const [c] = await queryCdrs(await tdb.open());
      assert.equal(c.hangup, 'caller');
      assert.ok(c.durationMs >= 1000 && c.durationMs < 3000, String(c.durationMs));
      await h2.close();
    } finally {
      await tdb.cleanup();
    }
  });

  it('cdrFilter parses user, since (absolute or relative) and limit', () => {
    const now = Date.UTC(2026, 0, 2, 12, 0, 0);
    assert.deepEqual(cdrFilter(['alice', '2h', '5'], now), {
      user: 'alice',
      since: new Date(now - 7_200_000),
      limit: 5,
    });
    assert.deepEqual(cdrFilter(['-', '2026-01-01'], now), {
      user: undefined,
      since: new Date(Date.UTC(2026, 0, 1)),
      limit: 100,
    });
    assert.equal(typeof cdrFilter(['a', 'x']), 'string');
    assert.equal(typeof cdrFilter(['a', '1h', 'ten']), 'string');
  });
});

function serctl(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string; err: string }> {
  const bin = fileURLToPath(new URL('../../src/cli/serctl.js', import.meta.url));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { PATH: process.env.PATH, ...env }, timeout: 15000 },
      (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : 99) : 0, out, err }),
    );
  });
}

describe('serctl cdr', () => {
  it('lists the calls (filter by user, --since, --limit, --json); --from-acc gives the seed query answer', async () => {
    const tdb = await makeTestDb('sqlite');
    const h = await harness({ db_url: tdb.url, db_flag: 2 });
    try {
      await callScenario(h, 2000);
      assert.equal(await h.st.writer!.flush(), true);
      const env = { SER_DBURL: tdb.url };
      const all = await serctl(['cdr'], env);
      assert.equal(all.code, 0, all.err);
      assert.match(
        all.out,
        /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d sip:alice@iptel\.org -> sip:bob@iptel\.org answered 200 duration=2s hangup=caller call_id=e9e3a6f0@195\.37\.77\.100\n$/,
      );
      const bob = await serctl(['cdr', 'bob', '--since', '1h', '--json'], env);
      assert.equal(bob.code, 0, bob.err);
      const calls = JSON.parse(bob.out);
      assert.equal(calls.length, 1);
      assert.equal(calls[0].durationMs, 2000);
      const nobody = await serctl(['cdr', 'carol'], env);
      assert.equal(nobody.code, 4);
      const future = await serctl(['cdr', '--since=2999-01-01'], env);
      assert.equal(future.code, 0);
      assert.equal(future.out, '');
      const bad = await serctl(['cdr', '--since', 'tomorrow'], env);
      assert.equal(bad.code, 1);
      assert.match(bad.err, /bad time 'tomorrow'/);
      const seed = await serctl(['cdr', '--from-acc'], env);
      assert.equal(seed.code, 0, seed.err);
      assert.match(seed.out, /Chiamante.*Chiamato.*Callid.*Data.*Ora.*Durata/);
      assert.match(
        seed.out,
        /sip:alice@iptel\.org .*sip:bob@iptel\.org .*e9e3a6f0@195\.37\.77\.100 .*00:00:0[12]/,
      );
    } finally {
      await h.close();
      await tdb.cleanup();
    }
  });
});

describe('acc: statistics and management', () => {
  it('acc_stats lists the counters; acc_flush without a database is a 400', async () => {
    const h = await harness({ log_flag: 1 });
    h.complete(request('INVITE'), 200, 'OK', { flags: F(1) });
    const r = await acc.mgmt!.acc_stats.run(h.st, []);
    assert.equal(r.code, 200);
    assert.match(r.body!, /^log_records=1$/m);
    assert.match(r.body!, /^db_lost=0$/m);
    assert.equal((await acc.mgmt!.acc_flush.run(h.st, [])).code, 400);
    await h.close();
  });
});
