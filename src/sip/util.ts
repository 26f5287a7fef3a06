/**
 * Small scanning helpers shared by the header, URI and body parsers. They work on
 * latin1-decoded strings (one char per byte), so offsets are byte offsets.
 */
import { SipParseError } from './errors.js';

/** RFC 3261 token characters: alphanum and -.!%*_+`'~ */
export const TOKEN = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9]/.test(ch) || "-.!%*_+`'~".includes(ch)) TOKEN[c] = 1;
}

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255 || TOKEN[c] === 0) return false;
  }
  return true;
}

export function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

/** Trim SP, HT, CR and LF (LWS) from both ends. */
export function trimLws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isWs(s.charCodeAt(a))) a++;
  while (b > a && isWs(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.substring(a, b);
}

/** Parses an unsigned decimal of at most `maxDigits` digits; -1 if not all digits or empty. */
export function parseDigits(s: string, maxDigits = 10): number {
  const n = s.length;
  if (n === 0 || n > maxDigits) {
    // allow leading zeros beyond maxDigits
    let i = 0;
    while (i < n - 1 && s.charCodeAt(i) === 48) i++;
    if (n === 0 || n - i > maxDigits) return -1;
    return parseDigits(s.substring(i), maxDigits);
  }
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Index of char code `ch` in s[from..to), or -1 (bounded, unlike String#indexOf). */
export function indexOfIn(s: string, ch: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (s.charCodeAt(i) === ch) return i;
  return -1;
}

/** Canonical (lower-case, long) names of the compact header forms. */
export const COMPACT: Readonly<Record<string, string>> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  o: 'event',
  u: 'allow-events',
  r: 'refer-to',
  b: 'referred-by',
  x: 'session-expires',
  y: 'identity',
  c: 'content-type',
  a: 'accept-contact',
  j: 'reject-contact',
  d: 'request-disposition',
};

/** Conventional spelling of well-known header names, by canonical key. */
export const PRETTY: Readonly<Record<string, string>> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  via: 'Via',
  from: 'From',
  to: 'To',
  contact: 'Contact',
  'content-length': 'Content-Length',
  'content-type': 'Content-Type',
  'content-encoding': 'Content-Encoding',
  'max-forwards': 'Max-Forwards',
  'www-authenticate': 'WWW-Authenticate',
  'record-route': 'Record-Route',
  'mime-version': 'MIME-Version',
};

const KEY_CACHE = new Map<string, string>();
const KEY_CACHE_MAX = 2048;

/** Canonical lookup key of a header name: lower case, compact forms expanded. */
export function headerKey(name: string): string {
  let k = KEY_CACHE.get(name);
  if (k !== undefined) return k;
  const low = name.toLowerCase();
  k = low.length === 1 ? (COMPACT[low] ?? low) : low;
  if (KEY_CACHE.size < KEY_CACHE_MAX) KEY_CACHE.set(name, k);
  return k;
}
for (const n of [
  'Via',
  'From',
  'To',
  'Call-ID',
  'Call-Id',
  'CSeq',
  'Cseq',
  'Contact',
  'Max-Forwards',
  'Content-Length',
  'Content-Type',
  'Route',
  'Record-Route',
  'Expires',
  'Allow',
  'Supported',
  'User-Agent',
  'Server',
  'Authorization',
  'Proxy-Authorization',
  'WWW-Authenticate',
  'Proxy-Authenticate',
  'Require',
  'Proxy-Require',
  'Unsupported',
  'Accept',
  'Date',
  'Subject',
  'Event',
  ...Object.keys(COMPACT),
  ...Object.keys(COMPACT).map((c) => c.toUpperCase()),
])
  headerKey(n);

/** Canonical keys of well-known headers, bucketed by length and lower-cased first letter. */
const KNOWN = new Map<number, string[]>();
for (const k of [
  'via',
  'from',
  'to',
  'call-id',
  'cseq',
  'contact',
  'max-forwards',
  'content-length',
  'content-type',
  'route',
  'record-route',
  'expires',
  'allow',
  'supported',
  'user-agent',
  'server',
  'authorization',
  'proxy-authorization',
  'www-authenticate',
  'proxy-authenticate',
  'require',
  'proxy-require',
  'unsupported',
  'accept',
  'date',
  'subject',
  'event',
  'allow-events',
  'min-expires',
  'content-encoding',
  'content-disposition',
  'session-expires',
  'min-se',
  'path',
  'p-asserted-identity',
  'refer-to',
  'referred-by',
  'organization',
  'warning',
  'timestamp',
  'accept-encoding',
  'accept-language',
  'privacy',
  'reason',
  'rack',
  'rseq',
]) {
  const b = k.length * 32 + (k.charCodeAt(0) - 97);
  const list = KNOWN.get(b);
  if (list) list.push(k);
  else KNOWN.set(b, [k]);
}

/**
 * headerKey() of the token text[s..e) without allocating for well-known names. The
 * text must be token characters (so OR-ing 0x20 only folds letter case).
 */
export function keyAt(text: string, s: number, e: number): string {
  const n = e - s;
  const c0 = text.charCodeAt(s) | 0x20;
  if (n === 1) {
    const k = COMPACT[String.fromCharCode(c0)];
    if (k !== undefined) return k;
  } else {
    const list = KNOWN.get(n * 32 + (c0 - 97));
    if (list !== undefined)
      for (const k of list) {
        let j = 0;
        while (j < n && (text.charCodeAt(s + j) | 0x20) === k.charCodeAt(j)) j++;
        if (j === n) return k;
      }
  }
  return headerKey(text.substring(s, e));
}

/** Spelling used when we emit a header given by the caller as `name`. */
export function prettyName(name: string): string {
  if (name.length === 1) {
    const k = COMPACT[name.toLowerCase()];
    if (k) return PRETTY[k] ?? k.replace(/(^|-)([a-z])/g, (_m, a: string, b: string) => a + b.toUpperCase());
  }
  return name;
}

/**
 * Index of the next occurrence of `ch` in s[from..to) that is not inside a quoted string
 * or an angle-bracketed URI; -1 if none.
 */
export function findTopLevel(s: string, ch: number, from = 0, to = s.length): number {
  let inQ = false;
  let inA = false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (inQ) {
      if (c === 92) i++;
      else if (c === 34) inQ = false;
    } else if (inA) {
      if (c === 62) inA = false;
    } else if (c === ch) return i;
    else if (c === 34) inQ = true;
    else if (c === 60) inA = true;
  }
  return -1;
}

/** Splits at top-level commas (not in quotes, not in <…>); empty elements dropped, items trimmed. */
export function splitTopLevel(s: string, sep = 44): string[] {
  // most values hold one element (a Via, a Contact): indexOf finds no separator at all
  // faster than the scan that tracks quotes and brackets
  if (s.indexOf(sep === 44 ? ',' : String.fromCharCode(sep)) < 0) {
    const t = trimLws(s);
    return t.length > 0 ? [t] : [];
  }
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const i = findTopLevel(s, sep, start);
    const part = trimLws(i < 0 ? s.substring(start) : s.substring(start, i));
    if (part.length > 0) out.push(part);
    if (i < 0) return out;
    start = i + 1;
  }
}

/** A `;name[=value]` parameter; `value` as written (quotes kept), undefined when absent. */
export interface Param {
  name: string;
  value: string | undefined;
}

/** Case-insensitive lookup of a parameter; returns '' for a flag parameter, undefined if absent. */
export function getParam(params: readonly Param[], name: string): string | undefined {
  for (const p of params) if (p.name === name || sameToken(p.name, name)) return p.value ?? '';
  return undefined;
}

/** ASCII case-insensitive equality of two tokens, without lower-casing copies. */
export function sameToken(a: string, b: string): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const lx = x | 0x20;
    if (lx !== (y | 0x20) || lx < 97 || lx > 122) return false;
  }
  return true;
}

export function hasParam(params: readonly Param[], name: string): boolean {
  return getParam(params, name) !== undefined;
}

/**
 * Parses `;a=b;c` parameters from s[from..] (the text must start with ';' or be empty
 * after optional LWS). `what` names the header for the error reason.
 */
export function parseParams(s: string, from: number, what: string): Param[] {
  const out: Param[] = [];
  let i = from;
  const n = s.length;
  while (i < n) {
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i >= n) break;
    if (s.charCodeAt(i) !== 59) throw new SipParseError(`Bad ${what} parameters`);
    i++;
    const end = findTopLevel(s, 59, i);
    const e = end < 0 ? n : end;
    const eq = indexOfIn(s, 61, i, e);
    let name: string;
    let value: string | undefined;
    if (eq >= 0) {
      name = trimLws(s.substring(i, eq));
      value = trimLws(s.substring(eq + 1, e));
    } else {
      name = trimLws(s.substring(i, e));
    }
    if (!isToken(name)) throw new SipParseError(`Bad ${what} parameters`);
    out.push({ name, value });
    i = e;
  }
  return out;
}

/** Removes surrounding double quotes and backslash escapes; returns s unchanged if not quoted. */
export function unquote(s: string): string {
  if (s.length < 2 || s.charCodeAt(0) !== 34 || s.charCodeAt(s.length - 1) !== 34) return s;
  const inner = s.substring(1, s.length - 1);
  if (inner.indexOf('\\') < 0) return inner;
  let out = '';
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === '\\' && i + 1 < inner.length) out += inner[++i];
    else out += c;
  }
  return out;
}

/** Quotes a string for use as a quoted-string (escapes `"` and `\`). */
export function quote(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/** name-addr / addr-spec, as in From, To, Contact, Route, Record-Route, Refer-To. */
export interface NameAddr {
  /** display name, unquoted; undefined when absent */
  displayName: string | undefined;
  /** the URI text, without the angle brackets */
  uri: string;
  /** true for name-addr form (URI in <…>) */
  bracketed: boolean;
  /** header parameters (after the URI / closing bracket) */
  params: Param[];
  /** the whole value as written */
  raw: string;
}

/**
 * Parses a name-addr or addr-spec (RFC 3261 §20.10): in addr-spec form the `;params`
 * after the URI belong to the header, not to the URI.
 */
export function parseNameAddr(raw: string, what: string): NameAddr {
  const s = trimLws(raw);
  const n = s.length;
  if (n === 0) throw new SipParseError(`Empty ${what}`);
  let displayName: string | undefined;
  let i = 0;
  let uriStart: number;
  let uriEnd: number;
  let bracketed = false;
  if (s.charCodeAt(0) === 34) {
    // quoted display name
    let j = 1;
    for (; j < n; j++) {
      const c = s.charCodeAt(j);
      if (c === 92) j++;
      else if (c === 34) break;
    }
    if (j >= n) throw new SipParseError(`Bad ${what}: unterminated quote`);
    displayName = unquote(s.substring(0, j + 1));
    i = j + 1;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) !== 60) throw new SipParseError(`Bad ${what}: missing <`);
  }
  const lt = s.charCodeAt(i) === 60 ? i : findTopLevelLt(s, i);
  if (lt >= 0) {
    if (displayName === undefined) {
      const d = trimLws(s.substring(0, lt));
      displayName = d.length > 0 ? d : undefined;
    }
    const gt = s.indexOf('>', lt + 1);
    if (gt < 0) throw new SipParseError(`Bad ${what}: missing >`);
    uriStart = lt + 1;
    uriEnd = gt;
    i = gt + 1;
    bracketed = true;
  } else {
    uriStart = 0;
    const semi = s.indexOf(';');
    uriEnd = semi < 0 ? n : semi;
    i = uriEnd;
    // addr-spec: no whitespace allowed inside the URI
    for (let k = 0; k < uriEnd; k++) if (isWs(s.charCodeAt(k))) throw new SipParseError(`Bad ${what}`);
  }
  const uri = trimLws(s.substring(uriStart, uriEnd));
  if (uri.length === 0) throw new SipParseError(`Bad ${what}: empty URI`);
  const params = parseParams(s, i, what);
  return { displayName, uri, bracketed, params, raw };
}

/** '<' outside quotes, or -1. */
function findTopLevelLt(s: string, from: number): number {
  let inQ = false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inQ) {
      if (c === 92) i++;
      else if (c === 34) inQ = false;
    } else if (c === 34) inQ = true;
    else if (c === 60) return i;
  }
  return -1;
}

/**
 * A copy of a string that does not keep its source alive: values taken from a parsed
 * message are slices of the whole message text, and anything kept past the message (a
 * stored contact, a transaction in its wait state) must not pin it. A concatenation of
 * slices pins them too, and storing it as a Map key does not flatten it. V8 copies strings
 * shorter than 13 characters anyway.
 */
export function detach(s: string): string;
export function detach(s: string | undefined): string | undefined;
export function detach(s: string | undefined): string | undefined {
  if (s === undefined || s.length < 13) return s;
  return Buffer.from(s, 'utf8').toString('utf8');
}
