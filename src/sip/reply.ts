/**
 * Local (stateless) replies, RFC 3261 §8.2.6: Via, From, To, Call-ID and CSeq are copied
 * from the request, a To-tag is added when missing, Content-Length is always present.
 */
import { randomBytes } from 'node:crypto';
import type { SipParseError } from './errors.js';
import type { SipMessage } from './message.js';
import { parseAddress } from './headers.js';

/** Values for SER's debugging Warning header (sip_warning). */
export interface ReplyWarning {
  /** our address (IP) and port the request arrived on */
  ip: string;
  port: number;
  pid: number;
  srcIp: string;
  srcPort: number;
  inUri: string;
  outUri: string;
  viaCount: number;
}

export interface ReplyOptions {
  /** To-tag to add when the request's To has none; generated when omitted */
  toTag?: string;
  /** extra header lines, as [name, value] pairs or complete `Name: value` lines */
  headers?: ReadonlyArray<readonly [string, string] | string>;
  body?: Buffer | string;
  /** Content-Type of the body */
  contentType?: string;
  /** value of a Server header */
  server?: string;
  warning?: ReplyWarning;
}

let tagSeq = 0;
const tagPrefix = randomBytes(6).toString('hex');

/** A fresh tag: a per-process random prefix and a counter. */
export function generateTag(): string {
  tagSeq = (tagSeq + 1) >>> 0;
  return `${tagPrefix}-${tagSeq.toString(16)}`;
}

/**
 * A To-tag for a reply to `req` that is the same for every retransmission of it (the ACK of
 * a stateless negative reply, or a repeated REGISTER, must see the same tag): `prefix`, a dot
 * and an FNV-1a hash (32 bits) of Call-ID, From-tag, CSeq number and top Via branch. It only
 * has to be stable, not secret: md5 cost 8 % of an OPTIONS and 4.6 % of a REGISTER.
 */
export function requestTag(prefix: string, req: SipMessage): string {
  let h = fnvMix(0x811c9dc5, req.callId);
  h = fnvMix(h, req.fromTag ?? '');
  // the CSeq number's decimal digits, last first, without making a string of them
  for (let n = req.cseq.seq; ; n = Math.floor(n / 10)) {
    h = Math.imul(h ^ (48 + (n % 10)), 0x01000193);
    if (n < 10) break;
  }
  h = Math.imul(h ^ 0x7c, 0x01000193);
  h = fnvMix(h, req.topVia?.branch ?? '');
  return `${prefix}.${(h >>> 0).toString(16).padStart(8, '0')}`;
}

function fnvMix(h0: number, s: string): number {
  let h = h0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  // a separator, so that "ab"+"c" and "a"+"bc" differ
  return Math.imul(h ^ 0x7c, 0x01000193);
}

function hasTag(to: string): boolean {
  try {
    return parseAddress(to, 'To').tag !== undefined;
  } catch {
    return /;\s*tag\s*=/i.test(to);
  }
}

function checkLine(s: string): string {
  // two indexOf scans: a regex test per header line showed as 2 % of a REGISTER
  if (s.indexOf('\n') >= 0 || s.indexOf('\r') >= 0)
    throw new RangeError('header text must not contain CR or LF');
  return s;
}

function sanitizeReason(reason: string): string {
  if (reason.indexOf('\r') < 0 && reason.indexOf('\n') < 0 && reason.indexOf('\0') < 0) return reason;
  return reason.replace(/[\r\n\0]/g, ' ');
}

/** the Server value checked last: it is the same for every reply, so it is checked once */
let serverChecked: string | undefined;

function finish(lines: string, opts: ReplyOptions | undefined): Buffer {
  let s = lines;
  const server = opts?.server;
  if (server !== undefined) {
    if (server !== serverChecked) serverChecked = checkLine(server);
    s += `Server: ${server}\r\n`;
  }
  const w = opts?.warning;
  if (w !== undefined) {
    // only the URIs can carry text from elsewhere (the script may rewrite the R-URI);
    // checked apart, before they are joined into a string the check would have to flatten
    s +=
      `Warning: 392 ${w.ip}:${w.port} "Noisy feedback tells: pid=${w.pid} req_src_ip=${w.srcIp} ` +
      `req_src_port=${w.srcPort} in_uri=${checkLine(w.inUri)} out_uri=${checkLine(w.outUri)} ` +
      `via_cnt==${w.viaCount}"\r\n`;
  }
  for (const h of opts?.headers ?? [])
    s += typeof h === 'string' ? `${checkLine(h)}\r\n` : `${checkLine(h[0])}: ${checkLine(h[1])}\r\n`;
  const body =
    opts?.body === undefined
      ? undefined
      : typeof opts.body === 'string'
        ? Buffer.from(opts.body, 'utf8')
        : opts.body;
  if (body !== undefined && body.length > 0 && opts?.contentType !== undefined)
    s += `Content-Type: ${checkLine(opts.contentType)}\r\n`;
  s += `Content-Length: ${body?.length ?? 0}\r\n\r\n`;
  const head = Buffer.from(s, 'latin1');
  return body !== undefined && body.length > 0 ? Buffer.concat([head, body]) : head;
}

function toWithTag(to: string, code: number, tag: string | undefined): string {
  if (hasTag(to)) return to;
  if (code === 100 && tag === undefined) return to;
  return `${to};tag=${tag ?? generateTag()}`;
}

/**
 * Builds a reply to `req`. Header lines are copied as received (values byte-for-byte);
 * the To-tag is added (except for 100 without an explicit tag) when the request's To has none.
 */
export function buildReply(req: SipMessage, code: number, reason: string, opts?: ReplyOptions): Buffer {
  if (!Number.isInteger(code) || code < 100 || code > 699) throw new RangeError('reply code must be 100–699');
  let s = `SIP/2.0 ${code} ${sanitizeReason(reason)}\r\n`;
  for (const f of req.headerFields()) {
    switch (f.key) {
      case 'via':
        s += `Via: ${f.value}\r\n`;
        break;
      case 'from':
        s += `From: ${f.value}\r\n`;
        break;
      case 'to':
        s += `To: ${toWithTag(f.value, code, opts?.toTag)}\r\n`;
        break;
      case 'call-id':
        s += `Call-ID: ${f.value}\r\n`;
        break;
      case 'cseq':
        s += `CSeq: ${f.value}\r\n`;
        break;
    }
  }
  return finish(s, opts);
}

/**
 * Builds a stateless error reply (400, or 505 for a bad version) from what the parser
 * collected before giving up; undefined when too little was collected or it was an ACK.
 */
export function buildParseErrorReply(err: SipParseError, opts?: ReplyOptions): Buffer | undefined {
  if (!err.canReply) return undefined;
  let s = `SIP/2.0 ${err.status} ${sanitizeReason(err.reason)}\r\n`;
  for (const v of err.via) s += `Via: ${v}\r\n`;
  s += `From: ${err.from}\r\n`;
  s += `To: ${toWithTag(err.to ?? '', err.status, opts?.toTag)}\r\n`;
  s += `Call-ID: ${err.callId}\r\n`;
  s += `CSeq: ${err.cseq}\r\n`;
  return finish(s, opts);
}
