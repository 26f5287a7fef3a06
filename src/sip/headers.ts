/**
 * Parsers for the structured header fields. Each takes the field value (already unfolded)
 * and returns a plain object, or throws SipParseError with a short reason.
 */
import { SipParseError } from './errors.js';
import {
  findTopLevel,
  getParam,
  isToken,
  isWs,
  type NameAddr,
  type Param,
  parseDigits,
  parseNameAddr,
  parseParams,
  splitTopLevel,
  trimLws,
  unquote,
} from './util.js';

export interface Via {
  /** protocol name and version, e.g. 'SIP/2.0' */
  protocol: string;
  /** transport as written, e.g. 'UDP', 'TCP', 'TLS', 'SCTP', 'WS' */
  transport: string;
  /** sent-by host; an IPv6 reference keeps its brackets */
  host: string;
  /** sent-by port, undefined when absent */
  port: number | undefined;
  branch: string | undefined;
  received: string | undefined;
  /** true when an rport parameter is present (with or without value) */
  rport: boolean;
  /** rport value, undefined when absent or empty */
  rportValue: number | undefined;
  maddr: string | undefined;
  ttl: number | undefined;
  /** every parameter in order, including the ones above */
  params: Param[];
  /** this via-parm as written */
  raw: string;
}

function badVia(): SipParseError {
  return new SipParseError('Bad Via header');
}

/** Parses one via-parm (a single element of a Via value list). */
export function parseVia(raw: string): Via {
  const s = raw;
  const n = s.length;
  let i = 0;
  const parts: string[] = [];
  // sent-protocol: name SLASH version SLASH transport, LWS allowed around the slashes
  for (let k = 0; k < 3; k++) {
    while (i < n && isWs(s.charCodeAt(i))) i++;
    const st = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 47 || isWs(c) || c === 59) break;
      i++;
    }
    const tok = s.substring(st, i);
    if (!isToken(tok)) throw badVia();
    parts.push(tok);
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (k < 2) {
      if (s.charCodeAt(i) !== 47) throw badVia();
      i++;
    }
  }
  // sent-by
  let host: string;
  if (s.charCodeAt(i) === 91) {
    const e = s.indexOf(']', i);
    if (e < 0) throw badVia();
    host = s.substring(i, e + 1);
    i = e + 1;
  } else {
    const st = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 58 || c === 59 || isWs(c)) break;
      i++;
    }
    host = s.substring(st, i);
  }
  if (!validHost(host)) throw badVia();
  while (i < n && isWs(s.charCodeAt(i))) i++;
  let port: number | undefined;
  if (s.charCodeAt(i) === 58) {
    i++;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    const st = i;
    while (i < n && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
    port = parseDigits(s.substring(st, i), 5);
    if (port < 0 || port > 65535) throw new SipParseError('Bad Via port');
  }
  const params = parseParams(s, i, 'Via');
  const rp = getParam(params, 'rport');
  let rportValue: number | undefined;
  if (rp !== undefined && rp !== '') {
    rportValue = parseDigits(rp, 5);
    if (rportValue < 0 || rportValue > 65535) throw new SipParseError('Bad Via rport');
  }
  const ttlS = getParam(params, 'ttl');
  let ttl: number | undefined;
  if (ttlS !== undefined) {
    ttl = parseDigits(ttlS, 3);
    if (ttl < 0 || ttl > 255) throw new SipParseError('Bad Via ttl');
  }
  return {
    protocol: parts[0] === 'SIP' && parts[1] === '2.0' ? 'SIP/2.0' : `${parts[0]}/${parts[1]}`,
    transport: parts[2],
    host,
    port,
    branch: getParam(params, 'branch'),
    received: getParam(params, 'received'),
    rport: rp !== undefined,
    rportValue,
    maddr: getParam(params, 'maddr'),
    ttl,
    params,
    raw,
  };
}

/** hostname, IPv4 or [IPv6] — loose check: allowed characters and shape only. */
export function validHost(h: string): boolean {
  const n = h.length;
  if (n === 0) return false;
  if (h.charCodeAt(0) === 91) {
    if (h.charCodeAt(n - 1) !== 93 || n < 4) return false;
    for (let i = 1; i < n - 1; i++) {
      const c = h.charCodeAt(i);
      const hex = (c >= 48 && c <= 58) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) || c === 46;
      if (!hex) return false;
    }
    return h.indexOf(':') > 0;
  }
  for (let i = 0; i < n; i++) {
    const c = h.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46;
    if (!ok) return false;
  }
  return true;
}

export interface CSeq {
  /** sequence number, 0 … 2^31-1 */
  seq: number;
  method: string;
}

export function parseCSeq(raw: string): CSeq {
  const s = trimLws(raw);
  let i = 0;
  while (i < s.length && !isWs(s.charCodeAt(i))) i++;
  const seq = parseDigits(s.substring(0, i), 10);
  if (seq < 0 || seq > 0x7fffffff) throw new SipParseError('Bad CSeq number');
  const method = trimLws(s.substring(i));
  if (!isToken(method) || i === 0 || (i < s.length && !isWs(s.charCodeAt(i))))
    throw new SipParseError('Bad CSeq method');
  return { seq, method };
}

/** From / To: a name-addr with its tag. */
export interface Address extends NameAddr {
  tag: string | undefined;
}

export function parseAddress(raw: string, what: string): Address {
  const na = parseNameAddr(raw, what) as Address;
  na.tag = getParam(na.params, 'tag');
  if (na.tag === '') throw new SipParseError(`Bad ${what} tag`);
  return na;
}

export interface Contact extends NameAddr {
  /** true for `Contact: *` (then uri is '*') */
  star: boolean;
  /** expires parameter in seconds, undefined when absent */
  expires: number | undefined;
  /** q parameter, 0 … 1, undefined when absent */
  q: number | undefined;
}

/** Parses a full Contact value list (one header line or the joined lines). */
export function parseContacts(raw: string): Contact[] {
  const out: Contact[] = [];
  for (const item of splitTopLevel(raw)) out.push(parseContact(item));
  return out;
}

export function parseContact(item: string): Contact {
  if (item === '*')
    return {
      star: true,
      displayName: undefined,
      uri: '*',
      bracketed: false,
      params: [],
      raw: item,
      expires: undefined,
      q: undefined,
    };
  const c = parseNameAddr(item, 'Contact') as Contact;
  c.star = false;
  const e = getParam(c.params, 'expires');
  c.expires = e === undefined ? undefined : parseDelta(e, 'Contact expires');
  const q = getParam(c.params, 'q');
  c.q = q === undefined ? undefined : parseQ(q);
  return c;
}

/** q-value per RFC 3261 §20.10: "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ] */
export function parseQ(s: string): number {
  if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(s)) throw new SipParseError('Bad q value');
  return Number(s);
}

/** delta-seconds; values beyond 2^32-1 are clamped to 2^32-1 (RFC 3261 §20.19 spirit). */
export function parseDelta(s: string, what: string): number {
  const t = trimLws(s);
  if (t.length === 0) throw new SipParseError(`Bad ${what}`);
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c < 48 || c > 57) throw new SipParseError(`Bad ${what}`);
  }
  return Math.min(Number(t), 0xffffffff);
}

export interface ContentType {
  /** lower-case type/subtype, e.g. 'application/sdp' */
  mediaType: string;
  type: string;
  subtype: string;
  params: Param[];
  raw: string;
}

export function parseContentType(raw: string): ContentType {
  const s = trimLws(raw);
  const semi = s.indexOf(';');
  const mt = trimLws(semi < 0 ? s : s.substring(0, semi));
  const slash = mt.indexOf('/');
  if (slash < 0) throw new SipParseError('Bad Content-Type');
  const type = trimLws(mt.substring(0, slash)).toLowerCase();
  const subtype = trimLws(mt.substring(slash + 1)).toLowerCase();
  if (!isToken(type) || !isToken(subtype)) throw new SipParseError('Bad Content-Type');
  return {
    mediaType: `${type}/${subtype}`,
    type,
    subtype,
    params: semi < 0 ? [] : parseParams(s, semi, 'Content-Type'),
    raw,
  };
}

/** Credentials of an Authorization / Proxy-Authorization header. */
export interface Credentials {
  /** auth scheme as written, e.g. 'Digest' */
  scheme: string;
  /** every auth-param, lower-case name → unquoted value */
  params: Record<string, string>;
  username: string | undefined;
  realm: string | undefined;
  nonce: string | undefined;
  uri: string | undefined;
  response: string | undefined;
  algorithm: string | undefined;
  cnonce: string | undefined;
  opaque: string | undefined;
  qop: string | undefined;
  nc: string | undefined;
  raw: string;
}

/** A challenge of a WWW-Authenticate / Proxy-Authenticate header. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
  realm: string | undefined;
  nonce: string | undefined;
  opaque: string | undefined;
  algorithm: string | undefined;
  domain: string | undefined;
  /** qop options offered, e.g. ['auth', 'auth-int'] */
  qop: string[];
  stale: boolean;
  raw: string;
}

/** scheme and every auth-param (lower-case name → unquoted value) of a credentials or challenge value */
export function parseAuthParams(
  raw: string,
  what: string,
): { scheme: string; params: Record<string, string> } {
  const s = trimLws(raw);
  let i = 0;
  while (i < s.length && !isWs(s.charCodeAt(i))) i++;
  const scheme = s.substring(0, i);
  if (!isToken(scheme)) throw new SipParseError(`Bad ${what}`);
  const params: Record<string, string> = Object.create(null);
  for (const item of splitTopLevel(s.substring(i))) {
    const eq = item.indexOf('=');
    if (eq < 0) throw new SipParseError(`Bad ${what}`);
    const name = trimLws(item.substring(0, eq)).toLowerCase();
    if (!isToken(name)) throw new SipParseError(`Bad ${what}`);
    const v = trimLws(item.substring(eq + 1));
    if (v.charCodeAt(0) === 34 && (v.length < 2 || v.charCodeAt(v.length - 1) !== 34))
      throw new SipParseError(`Bad ${what}`);
    params[name] = unquote(v);
  }
  return { scheme, params };
}

/**
 * Credentials as a class with every field in place from the start: one object shape for all
 * of them, filled in one pass over the items. parseAuthParams, used here before, built a
 * dictionary of the params per header and then read it nine times (2.5 % of a digest
 * REGISTER's CPU).
 */
class ParsedCredentials implements Credentials {
  scheme = '';
  username: string | undefined = undefined;
  realm: string | undefined = undefined;
  nonce: string | undefined = undefined;
  uri: string | undefined = undefined;
  response: string | undefined = undefined;
  algorithm: string | undefined = undefined;
  cnonce: string | undefined = undefined;
  opaque: string | undefined = undefined;
  qop: string | undefined = undefined;
  nc: string | undefined = undefined;
  private all: Record<string, string> | undefined = undefined;
  constructor(
    readonly raw: string,
    private readonly what: string,
  ) {}

  /** every auth-param; rarely read, so built on demand */
  get params(): Record<string, string> {
    let p = this.all;
    if (p === undefined) this.all = p = parseAuthParams(this.raw, this.what).params;
    return p;
  }
}

export function parseCredentials(raw: string, what = 'Authorization'): Credentials {
  const c = new ParsedCredentials(raw, what);
  const n = raw.length;
  let i = 0;
  while (i < n && isWs(raw.charCodeAt(i))) i++;
  const a = i;
  while (i < n && !isWs(raw.charCodeAt(i))) i++;
  const scheme = raw.substring(a, i);
  if (!isToken(scheme)) throw new SipParseError(`Bad ${what}`);
  c.scheme = scheme;
  // items between top-level commas, as splitTopLevel cuts them; empty ones are skipped
  while (i < n) {
    const comma = findTopLevel(raw, 44, i);
    const end = comma < 0 ? n : comma;
    let s = i;
    let e = end;
    i = end + 1;
    while (s < e && isWs(raw.charCodeAt(s))) s++;
    while (e > s && isWs(raw.charCodeAt(e - 1))) e--;
    if (s === e) continue;
    const eq = raw.indexOf('=', s);
    if (eq < 0 || eq >= e) throw new SipParseError(`Bad ${what}`);
    let ne = eq;
    while (ne > s && isWs(raw.charCodeAt(ne - 1))) ne--;
    const name = raw.substring(s, ne).toLowerCase();
    if (!isToken(name)) throw new SipParseError(`Bad ${what}`);
    let vs = eq + 1;
    while (vs < e && isWs(raw.charCodeAt(vs))) vs++;
    let v: string;
    if (vs < e && raw.charCodeAt(vs) === 34) {
      if (e - vs < 2 || raw.charCodeAt(e - 1) !== 34) throw new SipParseError(`Bad ${what}`);
      v = raw.substring(vs + 1, e - 1);
      if (v.indexOf('\\') >= 0) v = unquote(raw.substring(vs, e));
    } else v = raw.substring(vs, e);
    switch (name) {
      case 'username':
        c.username = v;
        break;
      case 'realm':
        c.realm = v;
        break;
      case 'nonce':
        c.nonce = v;
        break;
      case 'uri':
        c.uri = v;
        break;
      case 'response':
        c.response = v;
        break;
      case 'algorithm':
        c.algorithm = v;
        break;
      case 'cnonce':
        c.cnonce = v;
        break;
      case 'opaque':
        c.opaque = v;
        break;
      case 'qop':
        c.qop = v;
        break;
      case 'nc':
        c.nc = v;
        break;
    }
  }
  return c;
}

export function parseChallenge(raw: string, what = 'WWW-Authenticate'): Challenge {
  const { scheme, params } = parseAuthParams(raw, what);
  const qop = params.qop === undefined ? [] : splitTopLevel(params.qop).map((q) => q.toLowerCase());
  return {
    scheme,
    params,
    realm: params.realm,
    nonce: params.nonce,
    opaque: params.opaque,
    algorithm: params.algorithm,
    domain: params.domain,
    qop,
    stale: (params.stale ?? '').toLowerCase() === 'true',
    raw,
  };
}

/** Option-tag lists (Require, Proxy-Require, Supported, Unsupported): tokens, order kept. */
export function parseOptionTags(values: readonly string[], what: string): string[] {
  const out: string[] = [];
  for (const v of values) {
    if (!isToken(v)) throw new SipParseError(`Bad ${what}`);
    out.push(v);
  }
  return out;
}

/** Route / Record-Route / Path entries: name-addrs. */
export function parseRouteList(values: readonly string[], what: string): NameAddr[] {
  const out: NameAddr[] = [];
  for (const v of values) {
    const na = parseNameAddr(v, what);
    if (!na.bracketed) throw new SipParseError(`Bad ${what}`);
    out.push(na);
  }
  return out;
}
