/**
 * acc — transaction accounting (SER 0.9's acc module): reports transactions that took
 * `setflag(X); t_relay()` once, when tm completes them, to the log (log_flag) and to SQL
 * (db_flag); negative INVITE outcomes as missed calls (log_missed_flag, db_missed_flag);
 * the script actions acc_log_request / acc_db_request / acc_request report on the spot.
 * Beyond SER it correlates INVITE, ACK and BYE into calls in the `cdr` table.
 */
import { CdrCorrelator } from '../../acc/cdr.js';
import { type CdrFilter, queryCdrs } from '../../acc/cdr-query.js';
import { type AccRecord, accRow, buildRecord, type DigestCred, splitStatus } from '../../acc/record.js';
import type { CoreApi } from '../../core/api.js';
import type { Endpoint, MsgContext } from '../../core/context.js';
import { L_NOTICE, L_WARN } from '../../core/log.js';
import { defineModule, FixupError, type MgmtReply, type ParamValue } from '../../core/module.js';
import { DEFAULT_DB_URL, openDb, parseDbUrl } from '../../db/index.js';
import * as A from '../../script/args.js';
import type { SipMessage } from '../../sip/message.js';
import type { TmApi, TmCompletion, TmE2eAck } from '../../tm/api.js';
import { authorizedCredentials } from '../auth/credentials.js';
import { AccDbWriter, type DbOp } from './db-writer.js';
import {
  ACC_ACKED,
  ACC_ANSWERED,
  ACC_MISSED,
  ACC_REQUEST,
  checkLogFmt,
  DEFAULT_LOG_FMT,
  formatLine,
} from './log-fmt.js';

export interface AccConfig {
  logLevel: number;
  logFmt: string;
  logFlag: number;
  logMissedFlag: number;
  dbFlag: number;
  dbMissedFlag: number;
  reportAck: boolean;
  reportCancels: boolean;
  failedTransactions: boolean;
  tableAcc: string;
  tableMissed: string;
  cdr: boolean;
  cdrTable: string;
}

export interface AccStats {
  log_records: number;
  db_records: number;
  missed_calls: number;
  acks: number;
}

export interface AccState {
  readonly core: CoreApi;
  readonly cfg: AccConfig;
  readonly tm: TmApi | undefined;
  /** undefined when no database accounting is configured */
  readonly writer: AccDbWriter | undefined;
  readonly cdr: CdrCorrelator | undefined;
  readonly stats: AccStats;
  /** 2xx status of INVITEs by Call-ID/from-tag, for the status of their ACK report */
  readonly inviteStatus: Map<string, { code: number; reason: string }>;
  sweep: { cancel(): void } | undefined;
  /** Date.now() minus the core clock, taken at start */
  readonly clockOffset: number;
}

/** is flag `n` (1–31; 0 = off, as in SER) set in `flags` */
const flagged = (flags: number, n: number) => n > 0 && (flags & (1 << n)) !== 0;

/** the credentials www_authorize/proxy_authorize accepted for the request */
function digestOf(ctx: MsgContext | undefined): DigestCred | undefined {
  const c = ctx && authorizedCredentials(ctx);
  return c ? { username: c.username, realm: c.realm } : undefined;
}

function writeLog(st: AccState, lead: string, rec: AccRecord): void {
  st.stats.log_records++;
  if (st.core.log.enabled(st.cfg.logLevel))
    st.core.log.log(st.cfg.logLevel, formatLine(lead, st.cfg.logFmt, rec));
}

function writeDb(st: AccState, table: string, rec: AccRecord, missed: boolean): void {
  if (!st.writer) return;
  const op: DbOp = { op: 'insert', table, layout: 'acc', row: accRow(rec, missed) };
  st.writer.submit(op);
  st.stats.db_records++;
  if (missed) st.stats.missed_calls++;
}

/**
 * Wall-clock time of a tm clock reading. The offset is taken once, so durations are
 * differences of the monotonic clock and never jump with the system clock.
 */
function wallTime(st: AccState, t: number): Date {
  return new Date(st.clockOffset + t);
}

const statusKey = (m: SipMessage) => {
  try {
    return `${m.callId}\n${m.fromTag ?? ''}`;
  } catch {
    return '';
  }
};

/** SER's acc_onreply: one report when tm sent the final reply upstream. */
export function onCompleted(st: AccState, ev: TmCompletion): void {
  const rq = ev.request;
  const c = st.cfg;
  if (rq.method === 'CANCEL' && !c.reportCancels) return;
  const isInvite = rq.method === 'INVITE';
  let rec: AccRecord | undefined;
  const record = () => {
    rec ??= buildRecord({
      request: rq,
      ruri: ev.ruri,
      src: ev.src,
      code: ev.code,
      reason: ev.reason,
      time: wallTime(st, ev.completedAt),
      reply: ev.reply,
      digest: digestOf(ev.ctx),
    });
    return rec;
  };
  // missed calls are INVITEs that failed (SER's on_missed)
  if (isInvite && ev.code >= 300) {
    if (flagged(ev.flags, c.logMissedFlag)) writeLog(st, ACC_MISSED, record());
    if (flagged(ev.flags, c.dbMissedFlag)) writeDb(st, c.tableMissed, record(), true);
  }
  if (ev.code >= 200 && (ev.code < 300 || c.failedTransactions)) {
    if (flagged(ev.flags, c.logFlag)) writeLog(st, ACC_ANSWERED, record());
    if (flagged(ev.flags, c.dbFlag)) writeDb(st, c.tableAcc, record(), false);
  }
  // the ACK report carries the INVITE's status; kept only for a moment (bounded)
  if (
    isInvite &&
    ev.code < 300 &&
    c.reportAck &&
    (flagged(ev.flags, c.logFlag) || flagged(ev.flags, c.dbFlag))
  ) {
    if (st.inviteStatus.size >= 10_000) st.inviteStatus.clear();
    st.inviteStatus.set(statusKey(rq), { code: ev.code, reason: ev.reason });
  }
  if (!st.cdr) return;
  // calls are the INVITEs accounted to SQL; their BYE closes them whatever its flags
  if (isInvite && flagged(ev.flags, c.dbFlag) && rq.toTag === undefined) {
    st.cdr.invite(record(), wallTime(st, ev.createdAt));
  } else if (rq.method === 'BYE' && ev.code >= 200) {
    st.cdr.bye(record());
  }
}

/** SER's acc_onack: the ACK of a 2xx passed the proxy (report_ack). */
export function onE2eAck(st: AccState, ev: TmE2eAck): void {
  const key = statusKey(ev.request);
  const status = st.inviteStatus.get(key) ?? { code: 200, reason: 'OK' };
  st.inviteStatus.delete(key);
  const c = st.cfg;
  let rec: AccRecord | undefined;
  const record = () => {
    rec ??= buildRecord({
      request: ev.request,
      ruri: ev.ruri,
      src: ev.src,
      code: status.code,
      reason: status.reason,
      time: wallTime(st, st.core.clock.now()),
      digest: digestOf(ev.ctx),
    });
    return rec;
  };
  if (c.reportAck) {
    if (flagged(ev.flags, c.logFlag)) writeLog(st, ACC_ACKED, record());
    if (flagged(ev.flags, c.dbFlag)) writeDb(st, c.tableAcc, record(), false);
  }
  st.cdr?.ack(record());
}

/** The record of a script action: the request of the context, the comment as its status. */
function requestRecord(st: AccState, ctx: MsgContext, comment: string): AccRecord {
  const { code, reason } = splitStatus(comment);
  return buildRecord({
    request: ctx.msg,
    ruri: ctx.ruri,
    src: ctx.src as Endpoint,
    code,
    reason,
    time: wallTime(st, st.core.clock.now()),
    digest: digestOf(ctx),
  });
}

/** Retransmissions are only absorbed inside a transaction: say so once when there is none. */
function checkTransaction(st: AccState, ctx: MsgContext, fn: string): void {
  if (st.tm && !st.tm.hasTransaction(ctx)) {
    st.core.log.once(
      L_WARN,
      `acc:${fn}:notrans`,
      `WARNING: ${fn}: no transaction (call t_newtran() first): retransmissions will be reported again\n`,
    );
  }
}

export function accLogRequest(st: AccState, ctx: MsgContext, comment: string): number {
  if (ctx.msg.method === 'CANCEL' && !st.cfg.reportCancels) return 1;
  checkTransaction(st, ctx, 'acc_log_request');
  writeLog(st, ACC_REQUEST, requestRecord(st, ctx, comment));
  return 1;
}

export function accDbRequest(st: AccState, ctx: MsgContext, comment: string, table: string): number {
  if (!st.writer) {
    st.core.log.once(L_WARN, 'acc:nodb', 'ERROR: acc_db_request: no database (set db_url)\n');
    return -1;
  }
  if (ctx.msg.method === 'CANCEL' && !st.cfg.reportCancels) return 1;
  checkTransaction(st, ctx, 'acc_db_request');
  const rec = requestRecord(st, ctx, comment);
  writeDb(st, table, rec, table === st.cfg.tableMissed);
  return 1;
}

/**
 * SER's acc_request (0.8's name, seeds 001/003): a log report, and with SQL accounting in
 * use (db_flag or db_missed_flag set) a row as well: in missed_calls for a negative status
 * such as "404 Not Found" (the off-line callee of the missed-calls script), in acc otherwise.
 */
export function accRequest(st: AccState, ctx: MsgContext, comment: string): number {
  if (ctx.msg.method === 'CANCEL' && !st.cfg.reportCancels) return 1;
  checkTransaction(st, ctx, 'acc_request');
  const rec = requestRecord(st, ctx, comment);
  writeLog(st, ACC_REQUEST, rec);
  if (st.writer && (st.cfg.dbFlag > 0 || st.cfg.dbMissedFlag > 0)) {
    const missed = rec.code >= 300;
    writeDb(st, missed ? st.cfg.tableMissed : st.cfg.tableAcc, rec, missed);
  }
  return 1;
}

const flagParam = (name: string) => ({
  type: 'int' as const,
  default: 0,
  validate(v: ParamValue) {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 31)
      throw new FixupError(`${name} must be a flag number 0–31 (0: off)`);
  },
});
/** accepted so that SER configs name them; a RADIUS flag is refused until RADIUS accounting exists */
const radiusParam = (name: string) => ({
  type: 'int' as const,
  default: 0,
  validate(v: ParamValue) {
    if (Number(v) !== 0) {
      throw new FixupError(
        `${name}: RADIUS accounting is not available in this version yet; use log_flag/db_flag (or set ${name} to 0)`,
      );
    }
  },
});
const boolParam = (name: string, def: number) => ({
  type: 'int' as const,
  default: def,
  validate(v: ParamValue) {
    if (![0, 1].includes(Number(v))) throw new FixupError(`${name} must be 0 or 1`);
  },
});
const tableParam = (name: string, def: string) => ({
  type: 'string' as const,
  default: def,
  validate(v: ParamValue) {
    checkTable(String(v), name);
  },
});

function checkTable(v: string, what: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(v) || v.length > 64) {
    throw new FixupError(`${what}: invalid table name "${v}"`);
  }
  return v;
}

const PARAMS = {
  log_level: { type: 'int', default: L_NOTICE },
  log_fmt: {
    type: 'string',
    default: DEFAULT_LOG_FMT,
    validate(v: ParamValue) {
      checkLogFmt(String(v));
    },
  },
  log_flag: flagParam('log_flag'),
  log_missed_flag: flagParam('log_missed_flag'),
  db_flag: flagParam('db_flag'),
  db_missed_flag: flagParam('db_missed_flag'),
  radius_flag: radiusParam('radius_flag'),
  radius_missed_flag: radiusParam('radius_missed_flag'),
  radius_config: { type: 'string', default: '' },
  service_type: { type: 'int', default: 15 },
  report_ack: boolParam('report_ack', 1),
  report_cancels: boolParam('report_cancels', 0),
  failed_transactions: boolParam('failed_transactions', 0),
  early_media: boolParam('early_media', 0),
  db_url: {
    type: 'string',
    default: DEFAULT_DB_URL,
    validate(v: ParamValue) {
      try {
        parseDbUrl(String(v));
      } catch (e) {
        throw new FixupError((e as Error).message);
      }
    },
  },
  db_table_acc: tableParam('db_table_acc', 'acc'),
  db_table_missed_calls: tableParam('db_table_missed_calls', 'missed_calls'),
  /** not in SER: the records kept while the database is down */
  db_retry_interval: {
    type: 'int',
    default: 5,
    validate(v: ParamValue) {
      if (!(Number(v) >= 1)) throw new FixupError('db_retry_interval must be at least 1 second');
    },
  },
  spool_file: { type: 'string', default: '' },
  spool_max: {
    type: 'int',
    default: 100_000,
    validate(v: ParamValue) {
      if (!(Number(v) >= 1)) throw new FixupError('spool_max must be at least 1');
    },
  },
  cdr: boolParam('cdr', 1),
  cdr_table: tableParam('cdr_table', 'cdr'),
  cdr_timeout: {
    type: 'int',
    default: 14_400,
    validate(v: ParamValue) {
      if (!(Number(v) >= 1)) throw new FixupError('cdr_timeout must be at least 1 second');
    },
  },
} as const;

function parseSince(s: string | undefined, now: number): Date | undefined | 'bad' {
  if (s === undefined || s === '') return undefined;
  const rel = /^(\d+)\s*([smhd])$/.exec(s.trim());
  if (rel) {
    const mul = { s: 1, m: 60, h: 3600, d: 86400 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now - Number(rel[1]) * mul * 1000);
  }
  const iso = /^\d{4}-\d\d-\d\d([ T]\d\d:\d\d(:\d\d)?)?$/.test(s.trim())
    ? new Date(`${s.trim().replace(' ', 'T')}${s.includes(':') ? '' : 'T00:00:00'}Z`)
    : undefined;
  return iso && !Number.isNaN(iso.getTime()) ? iso : 'bad';
}

/** "[user] [since] [limit]" of the acc_cdrs command and serctl cdr */
export function cdrFilter(args: readonly string[], now = Date.now()): CdrFilter | string {
  const [user, sinceS, limitS] = args;
  const since = parseSince(sinceS, now);
  if (since === 'bad') return `bad time '${sinceS}' (YYYY-MM-DD[ HH:MM[:SS]] UTC, or 30m, 2h, 7d)`;
  if (limitS !== undefined && !/^\d+$/.test(limitS)) return `bad limit '${limitS}'`;
  return {
    user: user && user !== '-' ? user : undefined,
    since,
    limit: limitS === undefined ? 100 : Number(limitS),
  };
}

/**
 * Answered calls without an end in the cdr table (the server stopped during them): tracked
 * again so that their BYE closes them. Best effort: without the database they stay open.
 */
async function restoreOpenCalls(st: AccState, timeoutMs: number): Promise<void> {
  if (!st.writer || !st.cdr) return;
  try {
    const db = await st.writer.connection();
    if (!(await db.listTables()).includes(st.cfg.cdrTable)) return;
    const since = new Date(Date.now() - timeoutMs);
    const rows = await db.select(st.cfg.cdrTable, {
      columns: ['sip_callid', 'from_tag', 'to_tag', 'start_time'],
      where: [
        ['end_time', '=', null],
        ['start_time', '<>', null],
        ['setup_time', '>=', since],
      ],
      limit: 100_000,
    });
    for (const r of rows) {
      if (r.start_time instanceof Date) {
        st.cdr.restore(String(r.sip_callid), String(r.from_tag), String(r.to_tag), r.start_time);
      }
    }
    if (rows.length > 0)
      st.core.log.info(`acc: ${rows.length} open call(s) from before the start tracked again`);
  } catch (e) {
    st.core.log.warn(`acc: open calls not restored: ${(e as Error).message}`);
  }
}

function statsOf(st: AccState): Record<string, number> {
  const w = st.writer?.stats;
  return {
    ...st.stats,
    db_written: w?.written ?? 0,
    db_queued: w?.queued ?? 0,
    db_spooled: w?.spooled ?? 0,
    db_lost: w?.lost ?? 0,
    db_errors: w?.errors ?? 0,
    cdr_open: st.cdr?.stats.open ?? 0,
    cdr_calls: st.cdr?.stats.calls ?? 0,
    cdr_ended: st.cdr?.stats.ended ?? 0,
    cdr_timed_out: st.cdr?.stats.timedOut ?? 0,
  };
}

function reply(code: number, reason: string, body?: string, data?: unknown): MgmtReply {
  return { code, reason, body, data };
}

export default defineModule<AccState>({
  name: 'acc',
  deps: ['tm'],
  params: PARAMS,
  async init(core, params) {
    const num = (k: keyof typeof PARAMS) => Number(params[k]);
    const str = (k: keyof typeof PARAMS) => String(params[k]);
    for (const k of ['radius_flag', 'radius_missed_flag'] as const) PARAMS[k].validate(params[k] as number);
    const tm = core.getApi<TmApi>('tm');
    if (!tm) throw new FixupError('acc needs the tm module: loadmodule "tm.so" before acc');
    const cfg: AccConfig = {
      logLevel: num('log_level'),
      logFmt: checkLogFmt(str('log_fmt')),
      logFlag: num('log_flag'),
      logMissedFlag: num('log_missed_flag'),
      dbFlag: num('db_flag'),
      dbMissedFlag: num('db_missed_flag'),
      reportAck: num('report_ack') === 1,
      reportCancels: num('report_cancels') === 1,
      failedTransactions: num('failed_transactions') === 1,
      tableAcc: str('db_table_acc'),
      tableMissed: str('db_table_missed_calls'),
      cdr: num('cdr') === 1,
      cdrTable: str('cdr_table'),
    };
    const url = str('db_url');
    parseDbUrl(url); // a malformed db_url stops the start, an unreachable database does not
    const useDb = cfg.dbFlag > 0 || cfg.dbMissedFlag > 0 || params.db_url !== DEFAULT_DB_URL;
    const writer = useDb
      ? new AccDbWriter({
          open: () => openDb(url, { onWarning: (m) => core.log.warn(`acc: ${m}`) }),
          maxQueue: num('spool_max'),
          retryMs: num('db_retry_interval') * 1000,
          spoolFile: str('spool_file'),
          schedule: (ms, fn) => core.timers.add(ms, fn),
          warn: (t) => core.log.warn(t),
          error: (t) => core.log.err(t),
        })
      : undefined;
    const cdrTimeout = num('cdr_timeout') * 1000;
    const cdr =
      writer && cfg.cdr && cfg.dbFlag > 0
        ? new CdrCorrelator(
            {
              insert: (row) => writer.submit({ op: 'insert', table: cfg.cdrTable, layout: 'cdr', row }),
              update: (where, set) =>
                writer.submit({ op: 'update', table: cfg.cdrTable, layout: 'cdr', where, set }),
            },
            cdrTimeout,
          )
        : undefined;
    const st: AccState = {
      core,
      cfg,
      tm,
      writer,
      cdr,
      stats: { log_records: 0, db_records: 0, missed_calls: 0, acks: 0 },
      inviteStatus: new Map(),
      sweep: undefined,
      clockOffset: Date.now() - core.clock.now(),
    };
    tm.onCompleted((ev) => onCompleted(st, ev));
    tm.onE2eAck((ev) => {
      st.stats.acks++;
      onE2eAck(st, ev);
    });
    if (cdr) {
      const every = Math.min(60_000, cdrTimeout);
      const tick = () => {
        cdr.sweep(wallTime(st, core.clock.now()).getTime());
        st.sweep = core.timers.add(every, tick);
      };
      st.sweep = core.timers.add(every, tick);
    }
    // records spooled by an earlier run go out now; then calls left open by it are picked up
    if (writer) {
      void writer.flush().then(() => (cdr ? restoreOpenCalls(st, cdrTimeout) : undefined));
    }
    core.addStats('acc', () => statsOf(st));
    return st;
  },
  async destroy(st) {
    st.sweep?.cancel();
    await st.writer?.close();
  },
  functions: {
    acc_log_request: {
      signatures: [[A.str('comment')]],
      routes: ['request', 'failure'],
      run: (ctx, st, comment: string) => accLogRequest(st, ctx, comment),
    },
    acc_db_request: {
      signatures: [
        [
          A.str('comment'),
          { name: 'table', fixup: (a, env) => checkTable(A.str('table').fixup(a, env), 'acc_db_request') },
        ],
      ],
      routes: ['request', 'failure'],
      run: (ctx, st, comment: string, table: string) => accDbRequest(st, ctx, comment, table),
    },
    acc_request: {
      signatures: [[A.str('comment')]],
      routes: ['request', 'failure'],
      run: (ctx, st, comment: string) => accRequest(st, ctx, comment),
    },
  },
  mgmt: {
    acc_stats: {
      help: 'accounting statistics: records reported, database queue, spooled and lost records, calls',
      run(st) {
        const s = statsOf(st);
        return reply(
          200,
          'OK',
          Object.entries(s)
            .map(([k, v]) => `${k}=${v}`)
            .join('\n'),
          s,
        );
      },
    },
    acc_flush: {
      help: 'write the accounting records kept for the database now',
      async run(st) {
        if (!st.writer) return reply(400, 'no database accounting configured');
        const ok = await st.writer.flush();
        return ok
          ? reply(200, 'flushed')
          : reply(500, `database unavailable; ${st.writer.stats.queued} record(s) kept for the next try`);
      },
    },
    acc_cdrs: {
      help: 'acc_cdrs [user|-] [since: YYYY-MM-DD[ HH:MM[:SS]] or 30m/2h/7d] [limit]: calls from the cdr table',
      async run(st, args) {
        if (!st.writer || !st.cdr) return reply(400, 'call records need db_flag and cdr=1');
        const f = cdrFilter(args);
        if (typeof f === 'string') return reply(400, f);
        try {
          const calls = await queryCdrs(await st.writer.connection(), f, st.cfg.cdrTable);
          return reply(200, 'OK', calls.map(cdrLine).join('\n'), calls);
        } catch (e) {
          return reply(500, `cdr: ${(e as Error).message}`);
        }
      },
    },
  },
});

const iso = (d: Date | null) => (d ? d.toISOString().replace('T', ' ').slice(0, 19) : '-');

/** One call as the FIFO and serctl print it. */
export function cdrLine(c: {
  setup: Date | null;
  start: Date | null;
  caller: string;
  callee: string;
  duration: number;
  disposition: string;
  hangup: string;
  code: number;
  callId: string;
}): string {
  return `${iso(c.start ?? c.setup)} ${c.caller} -> ${c.callee} ${c.disposition} ${c.code} duration=${c.duration}s hangup=${c.hangup || '-'} call_id=${c.callId}`;
}
