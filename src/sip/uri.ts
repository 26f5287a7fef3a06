/**
 * SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966); any other scheme is kept opaque.
 * Parsing keeps every part as written (case, escapes, parameter order) and records the
 * offsets of user, password, host and port so the rewrite helpers can change one part
 * and leave every other byte alone.
 */
import { SipParseError } from './errors.js';
import { validHost } from './headers.js';
import type { Param } from './util.js';
import { indexOfIn, parseDigits } from './util.js';

export type UriKind = 'sip' | 'sips' | 'tel' | 'other';

/** Offsets in `raw`; -1 when the part is absent. `*End` is exclusive. */
export interface UriSpans {
  userStart: number;
  userEnd: number;
  passStart: number;
  passEnd: number;
  /** index of '@' */
  at: number;
  hostStart: number;
  hostEnd: number;
  /** digits of the port (the ':' before is at portStart-1) */
  portStart: number;
  portEnd: number;
}

export interface SipUri {
  /** scheme as written */
  scheme: string;
  kind: UriKind;
  /** user part as written (escapes kept); for tel: the number */
  user: string | undefined;
  password: string | undefined;
  /** host as written; an IPv6 reference keeps its brackets; '' for tel and other schemes */
  host: string;
  port: number | undefined;
  /** ;params in order, as written (flag params have value undefined) */
  params: Param[];
  /** ?headers in order, as written */
  headers: Param[];
  /** for other schemes: everything after the ':' */
  opaque: string;
  raw: string;
  spans: UriSpans;
}

function bad(what = 'Bad URI'): SipParseError {
  return new SipParseError(what);
}

const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*$/;

/** Parses a URI; throws SipParseError (only) when it is malformed. */
export function parseUri(raw: string): SipUri {
  if (typeof raw !== 'string') throw bad();
  const colon = raw.indexOf(':');
  if (colon <= 0) throw bad('Bad URI scheme');
  const scheme = raw.substring(0, colon);
  if (!SCHEME_RE.test(scheme)) throw bad('Bad URI scheme');
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 32 || c === 127 || c === 60 || c === 62 || c === 34 || c > 255) throw bad();
  }
  const low = scheme.toLowerCase();
  const spans: UriSpans = {
    userStart: -1,
    userEnd: -1,
    passStart: -1,
    passEnd: -1,
    at: -1,
    hostStart: -1,
    hostEnd: -1,
    portStart: -1,
    portEnd: -1,
  };
  const u: SipUri = {
    scheme,
    kind: 'other',
    user: undefined,
    password: undefined,
    host: '',
    port: undefined,
    params: [],
    headers: [],
    opaque: raw.substring(colon + 1),
    raw,
    spans,
  };
  if (low === 'sip' || low === 'sips') {
    u.kind = low;
    parseSip(u, colon + 1);
  } else if (low === 'tel') {
    u.kind = 'tel';
    const semi = raw.indexOf(';', colon + 1);
    const e = semi < 0 ? raw.length : semi;
    const num = raw.substring(colon + 1, e);
    if (
      num.length === 0 ||
      !/^(\+[0-9().-]*[0-9][0-9().-]*|[0-9A-Fa-f*#().-]*[0-9A-Fa-f*#][0-9A-Fa-f*#().-]*)$/.test(num)
    )
      throw bad('Bad tel URI');
    u.user = num;
    spans.userStart = colon + 1;
    spans.userEnd = e;
    u.params = parseUriParams(raw, e, raw.length);
  } else if (u.opaque.length === 0) throw bad();
  return u;
}

function checkEscapes(s: string, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    if (s.charCodeAt(i) === 37) {
      if (i + 2 >= to) throw bad('Bad URI escape');
      if (!isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) throw bad('Bad URI escape');
      i += 2;
    }
  }
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function parseSip(u: SipUri, start: number): void {
  const s = u.raw;
  const n = s.length;
  const sp = u.spans;
  const at = s.indexOf('@', start);
  let h = start;
  if (at >= 0) {
    const pc = s.indexOf(':', start);
    const userEnd = pc >= 0 && pc < at ? pc : at;
    if (userEnd === start) throw bad('Bad URI user');
    sp.userStart = start;
    sp.userEnd = userEnd;
    u.user = s.substring(start, userEnd);
    if (userEnd < at) {
      sp.passStart = userEnd + 1;
      sp.passEnd = at;
      u.password = s.substring(userEnd + 1, at);
    }
    checkEscapes(s, start, at);
    sp.at = at;
    h = at + 1;
  }
  let i = h;
  if (s.charCodeAt(i) === 91) {
    const e = s.indexOf(']', i);
    if (e < 0) throw bad('Bad URI host');
    i = e + 1;
  } else {
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 58 || c === 59 || c === 63) break;
      i++;
    }
  }
  u.host = s.substring(h, i);
  if (!validHost(u.host)) throw bad('Bad URI host');
  sp.hostStart = h;
  sp.hostEnd = i;
  if (s.charCodeAt(i) === 58) {
    const ps = ++i;
    while (i < n && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
    const port = parseDigits(s.substring(ps, i), 5);
    if (port < 0 || port > 65535) throw bad('Bad URI port');
    u.port = port;
    sp.portStart = ps;
    sp.portEnd = i;
  }
  if (i < n && s.charCodeAt(i) !== 59 && s.charCodeAt(i) !== 63) throw bad('Bad URI host');
  const q = s.indexOf('?', i);
  const pe = q < 0 ? n : q;
  u.params = parseUriParams(s, i, pe);
  if (q >= 0) {
    checkEscapes(s, q, n);
    for (const part of s.substring(q + 1).split('&')) {
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.substring(0, eq);
      if (name.length === 0) throw bad('Bad URI header');
      u.headers.push({ name, value: eq < 0 ? undefined : part.substring(eq + 1) });
    }
  }
}

function parseUriParams(s: string, from: number, to: number): Param[] {
  const out: Param[] = [];
  if (from >= to) return out;
  if (s.charCodeAt(from) !== 59) throw bad('Bad URI parameter');
  checkEscapes(s, from, to);
  let i = from + 1;
  for (;;) {
    let e = s.indexOf(';', i);
    if (e < 0 || e > to) e = to;
    const eq = indexOfIn(s, 61, i, e);
    const hasV = eq >= 0;
    const name = s.substring(i, hasV ? eq : e);
    if (name.length === 0) throw bad('Bad URI parameter');
    out.push({ name, value: hasV ? s.substring(eq + 1, e) : undefined });
    if (e >= to) return out;
    i = e + 1;
  }
}

/** Renders a URI from its parts (the inverse of parseUri for a URI built by hand). */
export function formatUri(
  u: Pick<SipUri, 'scheme' | 'user' | 'password' | 'host' | 'port' | 'params' | 'headers'> & {
    opaque?: string;
  },
): string {
  const low = u.scheme.toLowerCase();
  let s = `${u.scheme}:`;
  if (low !== 'sip' && low !== 'sips' && low !== 'tel') return s + (u.opaque ?? '');
  if (u.user !== undefined && u.user !== '') {
    s += u.user;
    if (low !== 'tel') {
      if (u.password !== undefined) s += `:${u.password}`;
      s += '@';
    }
  }
  if (low !== 'tel') {
    s += u.host.indexOf(':') >= 0 && u.host.charCodeAt(0) !== 91 ? `[${u.host}]` : u.host;
    if (u.port !== undefined) s += `:${u.port}`;
  }
  for (const p of u.params) s += p.value === undefined ? `;${p.name}` : `;${p.name}=${p.value}`;
  let sep = '?';
  for (const h of u.headers) {
    s += h.value === undefined ? `${sep}${h.name}` : `${sep}${h.name}=${h.value}`;
    sep = '&';
  }
  return s;
}

// ------------------------------------------------------------------ comparison

const RESERVED = ';/?:@&=+$,';

/** Decodes %XX escapes of non-reserved characters; escapes of reserved ones are kept (upper-cased). */
export function unescapeUnreserved(s: string): string {
  if (s.indexOf('%') < 0) return s;
  return s.replace(/%([0-9A-Fa-f]{2})/g, (m, hx: string) => {
    const ch = String.fromCharCode(Number.parseInt(hx, 16));
    return RESERVED.includes(ch) ? m.toUpperCase() : ch;
  });
}

function normHost(h: string): string {
  const l = h.toLowerCase();
  if (l.charCodeAt(0) === 91) {
    try {
      return new URL(`http://${l}/`).hostname;
    } catch {
      return l;
    }
  }
  return l;
}

function paramMap(ps: readonly Param[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const p of ps) {
    const k = unescapeUnreserved(p.name).toLowerCase();
    if (!m.has(k)) m.set(k, unescapeUnreserved(p.value ?? '').toLowerCase());
  }
  return m;
}

const MUST_MATCH = ['user', 'ttl', 'method', 'maddr', 'transport'];

/**
 * URI equivalence per RFC 3261 §19.1.4 for sip/sips (RFC 3966 for tel; other schemes:
 * case-insensitive scheme, exact rest). A URI that does not parse is equal to nothing.
 */
export function uriEquals(a: string | SipUri, b: string | SipUri): boolean {
  let ua: SipUri;
  let ub: SipUri;
  try {
    ua = typeof a === 'string' ? parseUri(a) : a;
    ub = typeof b === 'string' ? parseUri(b) : b;
  } catch {
    return false;
  }
  if (ua.kind !== ub.kind) return false;
  if (ua.kind === 'other')
    return ua.scheme.toLowerCase() === ub.scheme.toLowerCase() && ua.opaque === ub.opaque;
  if (ua.kind === 'tel') {
    const num = (x: string | undefined) =>
      unescapeUnreserved(x ?? '')
        .replace(/[-.()]/g, '')
        .toLowerCase();
    if (num(ua.user) !== num(ub.user)) return false;
    const pa = paramMap(ua.params);
    const pb = paramMap(ub.params);
    if (pa.size !== pb.size) return false;
    for (const [k, v] of pa) if (pb.get(k) !== v) return false;
    return true;
  }
  // userinfo: case-sensitive, escapes decoded
  if ((ua.user === undefined) !== (ub.user === undefined)) return false;
  if (ua.user !== undefined && unescapeUnreserved(ua.user) !== unescapeUnreserved(ub.user ?? ''))
    return false;
  if ((ua.password === undefined) !== (ub.password === undefined)) return false;
  if (ua.password !== undefined && unescapeUnreserved(ua.password) !== unescapeUnreserved(ub.password ?? ''))
    return false;
  if (normHost(ua.host) !== normHost(ub.host)) return false;
  if (ua.port !== ub.port) return false;
  const pa = paramMap(ua.params);
  const pb = paramMap(ub.params);
  for (const k of MUST_MATCH) if (pa.get(k) !== pb.get(k)) return false;
  for (const [k, v] of pa) {
    const w = pb.get(k);
    if (w !== undefined && w !== v) return false;
  }
  // headers: all must be present in both and match
  if (ua.headers.length !== ub.headers.length) return false;
  const ha = new Map<string, string>();
  for (const h of ua.headers)
    ha.set(unescapeUnreserved(h.name).toLowerCase(), unescapeUnreserved(h.value ?? ''));
  for (const h of ub.headers) {
    const v = ha.get(unescapeUnreserved(h.name).toLowerCase());
    if (v === undefined || v !== unescapeUnreserved(h.value ?? '')) return false;
  }
  return true;
}

// ------------------------------------------------------------------ rewrite helpers

function splice(s: string, from: number, to: number, ins: string): string {
  return s.substring(0, from) + ins + s.substring(to);
}

/** Sets (or with '' removes, together with the password) the user part; everything else kept. */
export function setUriUser(uri: string, user: string): string {
  const u = parseUri(uri);
  const sp = u.spans;
  if (u.kind === 'tel') {
    if (user === '') throw bad('Bad tel URI');
    return splice(uri, sp.userStart, sp.userEnd, user);
  }
  if (u.kind === 'other') throw bad('Cannot rewrite user of this URI');
  if (user === '') return sp.at < 0 ? uri : splice(uri, sp.userStart, sp.at + 1, '');
  if (sp.at < 0) return splice(uri, sp.hostStart, sp.hostStart, `${user}@`);
  return splice(uri, sp.userStart, sp.userEnd, user);
}

/** Sets (or with '' removes) the password; needs a user part. */
export function setUriPassword(uri: string, password: string): string {
  const u = parseUri(uri);
  const sp = u.spans;
  if (u.kind !== 'sip' && u.kind !== 'sips') throw bad('Cannot rewrite password of this URI');
  if (sp.passStart >= 0)
    return password === ''
      ? splice(uri, sp.passStart - 1, sp.passEnd, '')
      : splice(uri, sp.passStart, sp.passEnd, password);
  if (password === '') return uri;
  if (sp.at < 0) throw bad('URI has no user');
  return splice(uri, sp.userEnd, sp.userEnd, `:${password}`);
}

/** Sets the host (an IPv6 address gets brackets). */
export function setUriHost(uri: string, host: string): string {
  const u = parseUri(uri);
  if (u.kind !== 'sip' && u.kind !== 'sips') throw bad('Cannot rewrite host of this URI');
  const h = host.indexOf(':') >= 0 && host.charCodeAt(0) !== 91 ? `[${host}]` : host;
  if (!validHost(h)) throw bad('Bad URI host');
  return splice(uri, u.spans.hostStart, u.spans.hostEnd, h);
}

/** Sets the port; undefined or 0 removes it. */
export function setUriPort(uri: string, port: number | undefined): string {
  const u = parseUri(uri);
  const sp = u.spans;
  if (u.kind !== 'sip' && u.kind !== 'sips') throw bad('Cannot rewrite port of this URI');
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw bad('Bad URI port');
  if (port === undefined || port === 0)
    return sp.portStart < 0 ? uri : splice(uri, sp.portStart - 1, sp.portEnd, '');
  if (sp.portStart < 0) return splice(uri, sp.hostEnd, sp.hostEnd, `:${port}`);
  return splice(uri, sp.portStart, sp.portEnd, String(port));
}

/** Sets host and port from `host[:port]` (SER's rewritehostport); without a port the old one is removed. */
export function setUriHostPort(uri: string, hostport: string): string {
  let host = hostport;
  let port: number | undefined;
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(hostport);
  if (!m) throw bad('Bad host:port');
  host = m[1];
  if (m[2] !== undefined) port = Number(m[2]);
  return setUriPort(setUriHost(uri, host), port);
}

/** The value of a URI parameter (case-insensitive name); '' for a flag, undefined if absent. */
export function uriParam(u: SipUri, name: string): string | undefined {
  const n = name.toLowerCase();
  for (const p of u.params) if (p.name.toLowerCase() === n) return p.value ?? '';
  return undefined;
}
