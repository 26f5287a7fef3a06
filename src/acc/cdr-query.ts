/**
 * Reading calls back: the `cdr` table (serctl cdr, the acc_cdrs management command) and
 * seed 000's self-join over `acc`, which finds the same calls from the raw ACK and BYE
 * rows. The self-join is the GARR slide's query; only the date functions are translated
 * for SQLite and PostgreSQL (MySQL gets it as written, without the `ser.` schema prefix).
 */
import type { Backend, Condition, Queryable, Row } from '../db/index.js';

export interface CdrFilter {
  /** "user" or "user@domain": calls this user made or received */
  readonly user?: string;
  /** calls set up at or after this time */
  readonly since?: Date;
  readonly limit?: number;
}

export interface Call {
  readonly callId: string;
  readonly caller: string;
  readonly callee: string;
  readonly setup: Date | null;
  readonly start: Date | null;
  readonly end: Date | null;
  /** seconds */
  readonly duration: number;
  readonly durationMs: number;
  readonly code: number;
  readonly reason: string;
  readonly disposition: string;
  readonly hangup: string;
}

const asDate = (v: unknown): Date | null =>
  v instanceof Date ? v : typeof v === 'string' && v ? new Date(`${v.replace(' ', 'T')}Z`) : null;

function toCall(r: Row): Call {
  return {
    callId: String(r.sip_callid ?? ''),
    caller: String(r.caller ?? ''),
    callee: String(r.callee ?? ''),
    setup: asDate(r.setup_time),
    start: asDate(r.start_time),
    end: asDate(r.end_time),
    duration: Number(r.duration ?? 0),
    durationMs: Number(r.duration_ms ?? 0),
    code: Number(r.sip_code ?? 0),
    reason: String(r.sip_reason ?? ''),
    disposition: String(r.disposition ?? ''),
    hangup: String(r.hangup ?? ''),
  };
}

/** Calls from the cdr table, newest first. */
export async function queryCdrs(db: Queryable, f: CdrFilter = {}, table = 'cdr'): Promise<Call[]> {
  const where: Condition[] = [];
  if (f.since) where.push(['setup_time', '>=', f.since]);
  let sql = `SELECT * FROM ${db.quoteIdent(table)}`;
  const params: (string | Date | number)[] = [];
  const conds = where.map(([c, op, v]) => {
    params.push(v as Date);
    return `${db.quoteIdent(c)} ${op} ?`;
  });
  if (f.user) {
    const at = f.user.indexOf('@');
    const user = at < 0 ? f.user : f.user.slice(0, at);
    const domain = at < 0 ? undefined : f.user.slice(at + 1);
    const side = (who: 'caller' | 'callee') =>
      domain === undefined
        ? `${db.quoteIdent(`${who}_user`)} = ?`
        : `(${db.quoteIdent(`${who}_user`)} = ? AND ${db.quoteIdent(`${who}_domain`)} = ?)`;
    conds.push(`(${side('caller')} OR ${side('callee')})`);
    for (let i = 0; i < 2; i++) {
      params.push(user);
      if (domain !== undefined) params.push(domain);
    }
  }
  if (conds.length) sql += ` WHERE ${conds.join(' AND ')}`;
  sql += ` ORDER BY ${db.quoteIdent('setup_time')} DESC, ${db.quoteIdent('id')} DESC`;
  if (f.limit !== undefined) sql += ` LIMIT ${Math.max(0, Math.floor(f.limit))}`;
  const r = await db.query(sql, params);
  return r.rows.map(toCall);
}

/** Seed 000's query ("AAA – Accounting (2)"), for one backend. */
export function seedCallQuery(backend: Backend, table = 'acc'): string {
  const q = backend === 'mysql' ? (s: string) => `\`${s}\`` : (s: string) => `"${s}"`;
  const date = (c: string) => (backend === 'postgres' ? `CAST(${c} AS DATE)` : `DATE( ${c} )`);
  const time = (c: string) =>
    backend === 'postgres' ? `CAST(${c} AS TIME(0))` : backend === 'sqlite' ? `TIME( ${c} )` : `TIME( ${c} )`;
  const diff = (a: string, b: string) =>
    backend === 'mysql'
      ? `TIMEDIFF( ${a}, ${b} )`
      : backend === 'postgres'
        ? `(DATE_TRUNC('second', ${a}) - DATE_TRUNC('second', ${b}))`
        : `TIME( STRFTIME('%s', ${a}) - STRFTIME('%s', ${b}), 'unixepoch' )`;
  const t = backend === 'mysql' ? `\`${table}\`` : `"${table}"`;
  return `SELECT DISTINCT main.from_uri AS ${q('Chiamante')}, main.to_uri AS ${q('Chiamato')},
main.sip_callid AS ${q('Callid')}, ${date('main.time')} AS ${q('Data')},
${time('main.time')} AS ${q('Ora')} ,
${diff('byes.time', 'acks.time')} AS ${q('Durata')}

FROM ${t} AS main INNER JOIN ${t} AS acks ON (
main.time = acks.time
AND main.sip_callid = acks.sip_callid
AND ( acks.from_uri = main.from_uri OR acks.from_uri = main.to_uri )
AND ( acks.to_uri = main.to_uri OR acks.to_uri = main.from_uri )
AND main.sip_method = acks.sip_method
AND acks.sip_method = 'ACK' ) INNER JOIN ${t} AS byes ON (

acks.time <= byes.time
AND acks.sip_callid = byes.sip_callid
AND byes.sip_method = 'BYE' )

ORDER BY ${q('Ora')} DESC`;
}

export interface SeedCall {
  readonly caller: string;
  readonly callee: string;
  readonly callId: string;
  readonly date: string;
  readonly time: string;
  /** "HH:MM:SS" as the query returns it */
  readonly durata: string;
  /** the same in seconds */
  readonly duration: number;
}

/** "00:01:05" (or a PostgreSQL interval object / "1 day 02:00:00") → seconds */
function seconds(v: unknown): number {
  if (v && typeof v === 'object') {
    const o = v as Record<string, number>;
    return (o.days ?? 0) * 86400 + (o.hours ?? 0) * 3600 + (o.minutes ?? 0) * 60 + (o.seconds ?? 0);
  }
  const m = /^(-)?(?:(\d+) days? )?(\d+):(\d\d):(\d\d)/.exec(String(v ?? ''));
  if (!m) return 0;
  const s = Number(m[2] ?? 0) * 86400 + Number(m[3]) * 3600 + Number(m[4]) * 60 + Number(m[5]);
  return m[1] ? -s : s;
}

function hms(s: number): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(Math.floor(s / 3600))}:${p(Math.floor((s % 3600) / 60))}:${p(s % 60)}`;
}

const text = (v: unknown): string =>
  v instanceof Date ? v.toISOString().slice(0, 10) : v === null || v === undefined ? '' : String(v);

/** Runs seed 000's self-join; rows in the query's order (newest time of day first). */
export async function callsFromAcc(db: Queryable, table = 'acc'): Promise<SeedCall[]> {
  const r = await db.query(seedCallQuery(db.backend, table));
  return r.rows.map((row) => {
    const d = seconds(row.Durata);
    return {
      caller: text(row.Chiamante),
      callee: text(row.Chiamato),
      callId: text(row.Callid),
      date: text(row.Data),
      time: text(row.Ora),
      durata: hms(Math.abs(d)),
      duration: d,
    };
  });
}
