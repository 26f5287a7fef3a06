/**
 * The accounting record: what SER's acc took from a transaction (fmt2strar in SER 0.9),
 * built once per report and then printed to the log, inserted into SQL, or correlated
 * into a call. Everything a header lacks is undefined here and "n/a" in the log.
 */
import type { Endpoint } from '../core/context.js';
import type { SipMessage } from '../sip/message.js';
import { parseUri } from '../sip/uri.js';

/** Digest credentials the auth module verified for the request. */
export interface DigestCred {
  readonly username: string;
  readonly realm: string;
}

export interface AccRecord {
  readonly method: string;
  /** Request-URI as received ("i-uri") */
  readonly iUri: string;
  /** Request-URI as the script left it, where the request went ("o-uri") */
  readonly oUri: string;
  /** From and To header bodies, as SER printed them */
  readonly from: string | undefined;
  readonly to: string | undefined;
  readonly fromUri: string | undefined;
  readonly toUri: string | undefined;
  readonly fromTag: string | undefined;
  readonly toTag: string | undefined;
  readonly fromUser: string | undefined;
  readonly fromDomain: string | undefined;
  readonly toUser: string | undefined;
  readonly callId: string | undefined;
  readonly cseq: number | undefined;
  /** final status: 0 when the script's comment carried none */
  readonly code: number;
  readonly reason: string;
  readonly time: Date;
  readonly srcIp: string;
  readonly srcPort: number;
  /** user and host of the Request-URI as received (SER's 'p' and 'D') */
  readonly ruriUser: string | undefined;
  readonly ruriDomain: string | undefined;
  readonly digest: DigestCred | undefined;
}

export interface RecordInput {
  /** the request the report is about */
  readonly request: SipMessage;
  /** the Request-URI the request was relayed to */
  readonly ruri: string;
  readonly src: Endpoint;
  readonly code: number;
  readonly reason: string;
  readonly time: Date;
  /** the final reply: its To carries the callee's tag */
  readonly reply?: SipMessage | undefined;
  readonly digest?: DigestCred | undefined;
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function userHost(uri: string | undefined): { user: string | undefined; host: string | undefined } {
  if (!uri) return { user: undefined, host: undefined };
  const u = safe(() => parseUri(uri));
  return { user: u?.user || undefined, host: u?.host || undefined };
}

/** "404 Not Found" → 404 / "Not Found"; a comment without a code keeps code 0. */
export function splitStatus(comment: string): { code: number; reason: string } {
  const m = /^\s*([1-6]\d\d)(?:\s+(.*))?$/s.exec(comment);
  if (!m) return { code: 0, reason: comment.trim() };
  return { code: Number(m[1]), reason: (m[2] ?? '').trim() };
}

export function buildRecord(i: RecordInput): AccRecord {
  const rq = i.request;
  const from = safe(() => rq.from);
  // SER took the To of the reply when there was one: it carries the to-tag
  const toMsg = i.reply && safe(() => i.reply!.to) ? i.reply : rq;
  const to = safe(() => toMsg.to);
  const fu = userHost(from?.uri);
  const ru = userHost(rq.ruri);
  const toHeader = toMsg.header('To');
  return {
    method: rq.method,
    iUri: rq.ruri,
    oUri: i.ruri || rq.ruri,
    from: rq.header('From'),
    to: toHeader,
    fromUri: from?.uri,
    toUri: to?.uri,
    fromTag: from?.tag,
    toTag: to?.tag,
    fromUser: fu.user,
    fromDomain: fu.host,
    toUser: userHost(to?.uri).user,
    callId: safe(() => rq.callId) || undefined,
    cseq: safe(() => rq.cseq.seq),
    code: i.code,
    reason: i.reason,
    time: i.time,
    srcIp: i.src.ip,
    srcPort: i.src.port,
    ruriUser: ru.user,
    ruriDomain: ru.host,
    digest: i.digest,
  };
}

/** "200 OK", or just the reason when there is no code */
export function statusText(r: AccRecord): string {
  if (r.code === 0) return r.reason;
  return r.reason ? `${r.code} ${r.reason}` : String(r.code);
}

export type DbRowValue = string | number | Date | null;

/**
 * The row of the acc / missed_calls tables. SER's username/domain columns name the caller
 * (From) in acc and the callee (Request-URI) in missed_calls, whose rows serweb shows
 * to the user who missed the call.
 */
export function accRow(r: AccRecord, missed: boolean): Record<string, DbRowValue> {
  const s = (v: string | undefined) => v ?? '';
  return {
    sip_from: s(r.from),
    sip_to: s(r.to),
    sip_status: r.code === 0 ? r.reason : String(r.code),
    sip_reason: r.code === 0 ? '' : r.reason,
    sip_method: r.method,
    i_uri: r.iUri,
    o_uri: r.oUri,
    from_uri: s(r.fromUri),
    to_uri: s(r.toUri),
    sip_callid: s(r.callId),
    sip_cseq: r.cseq ?? 0,
    username: s(missed ? r.ruriUser : r.fromUser),
    domain: s(missed ? r.ruriDomain : r.fromDomain),
    fromtag: s(r.fromTag),
    totag: s(r.toTag),
    ruri_user: s(r.ruriUser),
    ruri_domain: s(r.ruriDomain),
    src_ip: r.srcIp,
    src_port: r.srcPort,
    digest_username: s(r.digest?.username),
    digest_realm: s(r.digest?.realm),
    time: r.time,
  };
}
