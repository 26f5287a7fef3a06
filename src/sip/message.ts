/**
 * The SIP message: parsing (RFC 3261 §7), the header index, lazily parsed typed header
 * accessors, in-place edits and fast serialization.
 *
 * Parsing converts the header section to a latin1 string once (one char per byte, so
 * string offsets are byte offsets and any byte round-trips) and builds an index of the
 * header lines. Field values are materialised and parsed only when asked for, then cached.
 * Edits are recorded against the index; serialize() concatenates untouched slices of the
 * original buffer with the edited parts, so whatever was not edited stays byte-identical.
 */
import { guard, SipParseError } from './errors.js';
import {
  type Address,
  type Challenge,
  type Contact,
  type ContentType,
  type Credentials,
  type CSeq,
  parseAddress,
  parseChallenge,
  parseContacts,
  parseContentType,
  parseCredentials,
  parseCSeq,
  parseDelta,
  parseOptionTags,
  parseRouteList,
  parseVia,
  type Via,
} from './headers.js';
import { parseUri, type SipUri } from './uri.js';
import {
  headerKey,
  isToken,
  keyAt,
  type NameAddr,
  parseDigits,
  prettyName,
  splitTopLevel,
  TOKEN,
} from './util.js';

export type { Address, Challenge, Contact, ContentType, Credentials, CSeq, NameAddr, Via };
export { SipParseError };

export interface ParseOptions {
  /**
   * true for a message received as one datagram (UDP, SCTP message): a missing
   * Content-Length means the body runs to the end of the datagram and bytes after the
   * body are ignored. Otherwise Content-Length is required.
   */
  datagram?: boolean;
}

/** Headers whose values are never split at commas by values(). */
const SINGLE_VALUED = new Set([
  'from',
  'to',
  'call-id',
  'cseq',
  'content-length',
  'content-type',
  'max-forwards',
  'expires',
  'min-expires',
  'date',
  'subject',
  'user-agent',
  'server',
  'organization',
  'retry-after',
  'timestamp',
  'authorization',
  'proxy-authorization',
  'www-authenticate',
  'proxy-authenticate',
  'authentication-info',
  'refer-to',
  'referred-by',
  'session-expires',
  'min-se',
  'identity',
  'identity-info',
  'mime-version',
  'priority',
  'reply-to',
  'in-reply-to',
  'p-asserted-identity',
]);

/** One header line of the message (original or added by an edit). */
export class HeaderField {
  /** canonical lookup key: lower case, compact forms expanded */
  readonly key: string;
  /** byte offsets of the whole line, terminator included, in the original buffer; -1 when added */
  readonly start: number;
  readonly end: number;
  private readonly src: string;
  private readonly ne: number;
  private readonly vs: number;
  private readonly ve: number;
  private readonly folded: boolean;
  private nm: string | undefined;
  private v: string | undefined;

  /** @internal */
  constructor(
    key: string,
    start: number,
    end: number,
    src: string,
    ne: number,
    vs: number,
    ve: number,
    folded: boolean,
    name?: string,
  ) {
    this.key = key;
    this.start = start;
    this.end = end;
    this.src = src;
    this.ne = ne;
    this.vs = vs;
    this.ve = ve;
    this.folded = folded;
    this.nm = name;
    this.v = start < 0 ? src : undefined;
  }

  static added(name: string, value: string): HeaderField {
    return new HeaderField(headerKey(name), -1, -1, value, 0, 0, value.length, false, name);
  }

  /** the name as written (may be a compact form) */
  get name(): string {
    let n = this.nm;
    if (n === undefined) this.nm = n = this.src.substring(this.start, this.ne);
    return n;
  }

  /** the value, leading/trailing whitespace removed, folded lines joined with one SP */
  get value(): string {
    let v = this.v;
    if (v === undefined) {
      v = this.src.substring(this.vs, this.ve);
      if (this.folded) v = v.replace(/[ \t]*\r?\n[ \t]*/g, ' ');
      this.v = v;
    }
    return v;
  }

  /** true for a line taken from the original message */
  get original(): boolean {
    return this.start >= 0;
  }
}

const MAX_CSEQ = 0x7fffffff;

/** A parsed SIP request or reply. Create with parseMessage(). */
export class SipMessage {
  /** the bytes as received */
  readonly raw: Buffer;
  readonly isRequest: boolean;
  /** request method, or the CSeq method of a reply */
  readonly method: string;
  /** status code of a reply, 0 for a request */
  readonly status: number;
  /** reason phrase of a reply ('' for requests), latin1-decoded */
  readonly reason: string;
  /** Request-URI as received ('' for replies); see requestUri for the edited one */
  readonly ruri: string;
  /** SIP-Version as written (equal to SIP/2.0 ignoring case) */
  readonly version: string;

  private readonly text: string;
  private fields: HeaderField[];
  private readonly msgStart: number;
  private readonly startLineEnd: number;
  private readonly hdrEnd: number;
  private readonly bodyStart: number;
  private readonly bodyEnd: number;
  private readonly cseq0: CSeq;
  private newRuri: string | undefined;
  private newBody: Buffer | undefined;
  private edited = false;
  private memo: Map<string, unknown> | undefined;
  private viaC: Via[] | undefined;
  private topC: Via | undefined;
  private fromC: Address | undefined;
  private toC: Address | undefined;
  /** rr's record_route() mark for this message (a field, not a WeakMap entry per message) */
  rrMark: unknown = undefined;

  /** @internal use parseMessage() */
  constructor(
    raw: Buffer,
    text: string,
    isRequest: boolean,
    method: string,
    status: number,
    reason: string,
    ruri: string,
    version: string,
    fields: HeaderField[],
    offsets: readonly [number, number, number, number, number],
    cseq: CSeq,
  ) {
    this.raw = raw;
    this.text = text;
    this.isRequest = isRequest;
    this.method = method;
    this.status = status;
    this.reason = reason;
    this.ruri = ruri;
    this.version = version;
    this.fields = fields;
    this.msgStart = offsets[0];
    this.startLineEnd = offsets[1];
    this.hdrEnd = offsets[2];
    this.bodyStart = offsets[3];
    this.bodyEnd = offsets[4];
    this.cseq0 = cseq;
  }

  /**
   * A copy to edit apart from this one, sharing the bytes and the unchanged lines (tm's
   * downstream request): no serialize and parse again. Parsed headers are not shared.
   */
  clone(): SipMessage {
    const m = new SipMessage(
      this.raw,
      this.text,
      this.isRequest,
      this.method,
      this.status,
      this.reason,
      this.ruri,
      this.version,
      this.fields.slice(),
      [this.msgStart, this.startLineEnd, this.hdrEnd, this.bodyStart, this.bodyEnd],
      this.cseq0,
    );
    m.newRuri = this.newRuri;
    m.newBody = this.newBody;
    m.edited = this.edited;
    return m;
  }

  // ---------------------------------------------------------------- raw access

  /** the current body (edited or as received), a view on the buffer */
  get body(): Buffer {
    return this.newBody ?? this.raw.subarray(this.bodyStart, this.bodyEnd);
  }

  /** the current Request-URI (after setRuri), '' for replies */
  get requestUri(): string {
    return this.newRuri ?? this.ruri;
  }

  /** the start line as received, without its terminator */
  get startLine(): string {
    let e = this.startLineEnd;
    if (this.text.charCodeAt(e - 1) === 10) e--;
    if (this.text.charCodeAt(e - 1) === 13) e--;
    return this.text.substring(this.msgStart, e);
  }

  /** true once any edit was made */
  get modified(): boolean {
    return this.edited;
  }

  /** all header lines in order (current state, edits included) */
  headerFields(): readonly HeaderField[] {
    return this.fields;
  }

  // ---------------------------------------------------------------- generic header access

  /** value of the first header line with that name (any case, compact form accepted) */
  header(name: string): string | undefined {
    return this.firstOf(headerKey(name));
  }

  /** values of all header lines with that name, in order */
  headers(name: string): string[] {
    return this.allOf(headerKey(name));
  }

  // the accessors below pass canonical keys to these, saving headerKey's map lookup per call
  private firstOf(k: string): string | undefined {
    for (const f of this.fields) if (f.key === k) return f.value;
    return undefined;
  }

  private allOf(k: string): string[] {
    const out: string[] = [];
    for (const f of this.fields) if (f.key === k) out.push(f.value);
    return out;
  }

  /** values(k) of a multi-valued header */
  private splitOf(k: string): string[] {
    const out: string[] = [];
    for (const f of this.fields) if (f.key === k) for (const v of splitTopLevel(f.value)) out.push(v);
    return out;
  }

  /**
   * All values of a multi-valued header: every line, split at top-level commas (not in
   * quotes or <…>). Headers known to be single-valued (From, Date, Authorization…) are not split.
   */
  values(name: string): string[] {
    const k = headerKey(name);
    return SINGLE_VALUED.has(k) ? this.allOf(k) : this.splitOf(k);
  }

  hasHeader(name: string): boolean {
    const k = headerKey(name);
    for (const f of this.fields) if (f.key === k) return true;
    return false;
  }

  /** number of header lines with that name */
  headerCount(name: string): number {
    const k = headerKey(name);
    let n = 0;
    for (const f of this.fields) if (f.key === k) n++;
    return n;
  }

  // ---------------------------------------------------------------- typed accessors

  private cached<T>(key: string, reason: string, fn: () => T): T {
    let m = this.memo;
    if (m === undefined) this.memo = m = new Map();
    else {
      const v = m.get(key);
      if (v !== undefined || m.has(key)) return v as T;
    }
    const v = guard(reason, fn);
    m.set(key, v);
    return v;
  }

  private single(key: string, what: string): string | undefined {
    let found: string | undefined;
    for (const f of this.fields)
      if (f.key === key) {
        if (found !== undefined) throw new SipParseError(`Duplicate ${what} header`);
        found = f.value;
      }
    return found;
  }

  /** every via-parm, top first */
  get vias(): Via[] {
    let v = this.viaC;
    if (v === undefined) {
      // a top Via parsed alone before is the first of them (its line held it alone)
      const top = this.topC;
      this.viaC = v = guard('Bad Via header', () =>
        this.splitOf('via').map((x, i) => (i === 0 && top !== undefined ? top : parseVia(x))),
      );
    }
    return v;
  }

  /**
   * The top Via. Parsed alone when it is alone on its line and the others were not asked
   * for: a reply to a branch of ours is matched by it, and the previous hop's Via below is
   * not read (SER's tm reads no further either). `vias` parses and checks them all.
   */
  get topVia(): Via | undefined {
    const all = this.viaC;
    if (all !== undefined) return all[0];
    let t = this.topC;
    if (t !== undefined) return t;
    for (const f of this.fields) {
      if (f.key !== 'via') continue;
      const v = f.value;
      if (v.length === 0 || v.indexOf(',') >= 0) return this.vias[0];
      this.topC = t = guard('Bad Via header', () => parseVia(v));
      return t;
    }
    return undefined;
  }

  get from(): Address {
    let v = this.fromC;
    if (v === undefined)
      this.fromC = v = guard('Bad From header', () =>
        parseAddress(this.single('from', 'From') ?? '', 'From'),
      );
    return v;
  }

  get to(): Address {
    let v = this.toC;
    if (v === undefined)
      this.toC = v = guard('Bad To header', () => parseAddress(this.single('to', 'To') ?? '', 'To'));
    return v;
  }

  get fromTag(): string | undefined {
    return this.from.tag;
  }

  get toTag(): string | undefined {
    return this.to.tag;
  }

  get callId(): string {
    return this.firstOf('call-id') ?? '';
  }

  /** CSeq number and method (validated at parse time) */
  get cseq(): CSeq {
    if (!this.edited) return this.cseq0;
    return this.cached('cseq', 'Bad CSeq header', () => {
      const v = this.firstOf('cseq');
      return v === undefined ? this.cseq0 : parseCSeq(v);
    });
  }

  /** Contact entries of all Contact lines ('*' gives one entry with star=true) */
  get contacts(): Contact[] {
    return this.cached('contact', 'Bad Contact header', () => {
      const out: Contact[] = [];
      for (const v of this.allOf('contact')) for (const c of parseContacts(v)) out.push(c);
      return out;
    });
  }

  get routes(): NameAddr[] {
    return this.cached('route', 'Bad Route header', () => parseRouteList(this.splitOf('route'), 'Route'));
  }

  get recordRoutes(): NameAddr[] {
    return this.cached('record-route', 'Bad Record-Route header', () =>
      parseRouteList(this.splitOf('record-route'), 'Record-Route'),
    );
  }

  /** Max-Forwards (0–255), undefined when absent */
  get maxForwards(): number | undefined {
    return this.cached('max-forwards', 'Bad Max-Forwards header', () => {
      const v = this.single('max-forwards', 'Max-Forwards');
      if (v === undefined) return undefined;
      const n = parseDigits(v, 3);
      if (n < 0 || n > 255) throw new SipParseError('Bad Max-Forwards header');
      return n;
    });
  }

  /** Expires header in seconds (clamped to 2^32-1), undefined when absent */
  get expires(): number | undefined {
    return this.cached('expires', 'Bad Expires header', () => {
      const v = this.single('expires', 'Expires');
      return v === undefined ? undefined : parseDelta(v, 'Expires header');
    });
  }

  /** Content-Length header value, undefined when absent (UDP) */
  get contentLength(): number | undefined {
    const v = this.firstOf('content-length');
    if (v === undefined) return undefined;
    const n = parseDigits(v, 10);
    return n < 0 ? undefined : n;
  }

  get contentType(): ContentType | undefined {
    return this.cached('content-type', 'Bad Content-Type header', () => {
      const v = this.single('content-type', 'Content-Type');
      return v === undefined ? undefined : parseContentType(v);
    });
  }

  /** one entry per Authorization line */
  get authorization(): Credentials[] {
    return this.cached('authorization', 'Bad Authorization header', () =>
      this.allOf('authorization').map((v) => parseCredentials(v, 'Authorization')),
    );
  }

  get proxyAuthorization(): Credentials[] {
    return this.cached('proxy-authorization', 'Bad Proxy-Authorization header', () =>
      this.allOf('proxy-authorization').map((v) => parseCredentials(v, 'Proxy-Authorization')),
    );
  }

  get wwwAuthenticate(): Challenge[] {
    return this.cached('www-authenticate', 'Bad WWW-Authenticate header', () =>
      this.allOf('www-authenticate').map((v) => parseChallenge(v, 'WWW-Authenticate')),
    );
  }

  get proxyAuthenticate(): Challenge[] {
    return this.cached('proxy-authenticate', 'Bad Proxy-Authenticate header', () =>
      this.allOf('proxy-authenticate').map((v) => parseChallenge(v, 'Proxy-Authenticate')),
    );
  }

  get require(): string[] {
    return this.optionTags('require', 'Require');
  }

  get proxyRequire(): string[] {
    return this.optionTags('proxy-require', 'Proxy-Require');
  }

  get supported(): string[] {
    return this.optionTags('supported', 'Supported');
  }

  get unsupported(): string[] {
    return this.optionTags('unsupported', 'Unsupported');
  }

  private optionTags(key: string, what: string): string[] {
    return this.cached(key, `Bad ${what} header`, () => parseOptionTags(this.values(key), what));
  }

  /** the current Request-URI, parsed (SipParseError if malformed; replies: throws) */
  get parsedRuri(): SipUri {
    const u = this.requestUri;
    return this.cached(`ruri:${u}`, 'Bad Request-URI', () => parseUri(u));
  }

  // ---------------------------------------------------------------- edits

  /**
   * Marks the message edited and forgets what was parsed from header `key` (every header
   * when omitted). Only that header's parse goes: mf_process_maxfwd_header edits nearly
   * every request, and dropping them all made the top Via be parsed twice per message.
   * Memo entries of header values are keyed by the header's canonical key.
   */
  private touch(key?: string): void {
    this.edited = true;
    if (key === undefined) {
      this.memo = undefined;
      this.viaC = undefined;
      this.topC = undefined;
      this.fromC = undefined;
      this.toC = undefined;
      return;
    }
    this.memo?.delete(key);
    if (key === 'via') {
      this.viaC = undefined;
      this.topC = undefined;
    } else if (key === 'from') this.fromC = undefined;
    else if (key === 'to') this.toC = undefined;
  }

  /** Adds a header line at the top of the header section (e.g. our Via) or at the bottom. */
  addHeader(name: string, value: string, where: 'top' | 'bottom' = 'bottom'): void {
    checkEdit(name, value);
    const f = HeaderField.added(prettyName(name), value);
    if (where === 'top') this.fields.unshift(f);
    else this.fields.push(f);
    this.touch(f.key);
  }

  /** Removes every line of that header; returns how many were removed. */
  removeHeader(name: string): number {
    const k = headerKey(name);
    const before = this.fields.length;
    this.fields = this.fields.filter((f) => f.key !== k);
    const n = before - this.fields.length;
    if (n > 0) this.touch(k);
    return n;
  }

  /**
   * Removes one value of a multi-valued header, `index` counting as in values(name).
   * A line left with no value is removed; other values of that line are kept as written.
   */
  removeHeaderValue(name: string, index: number): boolean {
    return this.removeValueOf(headerKey(name), index);
  }

  private removeValueOf(k: string, index: number): boolean {
    const single = SINGLE_VALUED.has(k);
    let i = index;
    for (let fi = 0; fi < this.fields.length; fi++) {
      const f = this.fields[fi];
      if (f.key !== k) continue;
      const v = f.value;
      // the usual line holds one value (a Via, a Route): no split into an array
      if (single || (v.length > 0 && v.indexOf(',') < 0)) {
        if (i > 0) {
          i--;
          continue;
        }
        this.fields.splice(fi, 1);
        this.touch(k);
        return true;
      }
      const vals = splitTopLevel(v);
      if (i >= vals.length) {
        i -= vals.length;
        continue;
      }
      if (vals.length <= 1) this.fields.splice(fi, 1);
      else {
        vals.splice(i, 1);
        this.fields[fi] = HeaderField.added(f.name, vals.join(', '));
      }
      this.touch(k);
      return true;
    }
    return false;
  }

  /** Removes the topmost via-parm (a proxy forwarding a reply). */
  removeTopVia(): boolean {
    return this.removeValueOf('via', 0);
  }

  /**
   * Replaces the value of the first line of that header (keeping its position and name
   * spelling) and removes the others; adds the header at the bottom when absent.
   */
  replaceHeader(name: string, value: string): void {
    checkEdit(name, value);
    const k = headerKey(name);
    const fs = this.fields;
    let at = -1;
    let lines = 0;
    for (let i = 0; i < fs.length; i++)
      if (fs[i].key === k) {
        if (at < 0) at = i;
        lines++;
      }
    if (lines === 1) {
      // the usual case (Max-Forwards): one line, replaced where it stands
      fs[at] = HeaderField.added(fs[at].name, value);
      this.touch(k);
      return;
    }
    let done = false;
    const out: HeaderField[] = [];
    for (const f of fs) {
      if (f.key !== k) out.push(f);
      else if (!done) {
        out.push(HeaderField.added(f.name, value));
        done = true;
      }
    }
    if (!done) out.push(HeaderField.added(prettyName(name), value));
    this.fields = out;
    this.touch(k);
  }

  /** Changes the Request-URI of a request. */
  setRuri(uri: string): void {
    if (!this.isRequest) throw new TypeError('setRuri on a reply');
    if (uri.length === 0 || /[\s\0]/.test(uri)) throw new RangeError('invalid Request-URI');
    this.newRuri = uri === this.ruri ? undefined : uri;
    // no header changed; parsedRuri's memo is keyed by the URI itself
    this.edited = true;
  }

  /**
   * Replaces the body; Content-Length is recomputed, Content-Type set when given (and
   * removed when the new body is empty and no type is given).
   */
  setBody(body: Buffer | string, contentType?: string): void {
    const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    this.newBody = b;
    this.replaceHeader('Content-Length', String(b.length));
    if (contentType !== undefined) this.replaceHeader('Content-Type', contentType);
    else if (b.length === 0) this.removeHeader('content-type');
    this.edited = true;
  }

  /** Adds Content-Length (body length) when absent, e.g. before sending a UDP-received message over TCP. */
  ensureContentLength(): void {
    if (!this.hasHeader('content-length')) this.addHeader('Content-Length', String(this.body.length));
  }

  // ---------------------------------------------------------------- serialize

  /**
   * The message as bytes: the original buffer when nothing was edited, else a new Buffer.
   * An edited message is built as one latin1 string (runs of original lines as one slice of
   * the text, which is the buffer decoded one char per byte, so the bytes come back as they
   * came) and written by one Buffer.from: a subarray and a copy per run cost more.
   */
  serialize(): Buffer {
    const raw = this.raw;
    if (!this.edited) {
      return this.msgStart === 0 && this.bodyEnd === raw.length
        ? raw
        : raw.subarray(this.msgStart, this.bodyEnd);
    }
    const text = this.text;
    let s = '';
    // the pending run of original text [rs, re)
    let rs = -1;
    let re = -1;
    if (this.newRuri === undefined) {
      rs = this.msgStart;
      re = this.startLineEnd;
    } else s = `${this.method} ${this.newRuri} ${this.version}\r\n`;
    const fields = this.fields;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      if (f.start >= 0) {
        if (f.start === re) re = f.end;
        else {
          if (rs >= 0) s += text.substring(rs, re);
          rs = f.start;
          re = f.end;
        }
      } else {
        if (rs >= 0) {
          s += text.substring(rs, re);
          rs = -1;
          re = -1;
        }
        s += `${f.name}: ${f.value}\r\n`;
      }
    }
    const tail = this.newBody === undefined ? this.bodyEnd : this.bodyStart;
    if (rs >= 0 && re === this.hdrEnd) s += text.substring(rs, tail);
    else {
      if (rs >= 0) s += text.substring(rs, re);
      s += text.substring(this.hdrEnd, tail);
    }
    const nb = this.newBody;
    if (nb === undefined || nb.length === 0) return Buffer.from(s, 'latin1');
    const out = Buffer.allocUnsafe(s.length + nb.length);
    out.write(s, 0, 'latin1');
    nb.copy(out, s.length);
    return out;
  }

  /** serialize() as a latin1 string (for logs and tests) */
  toString(): string {
    return this.serialize().toString('latin1');
  }
}

function checkEdit(name: string, value: string): void {
  if (!isToken(name)) throw new RangeError(`invalid header name: ${JSON.stringify(name)}`);
  if (value.indexOf('\r') >= 0 || value.indexOf('\n') >= 0 || value.indexOf('\0') >= 0)
    throw new RangeError('header value must not contain CR, LF or NUL');
}

// ==================================================================== parser

function isWsp(c: number): boolean {
  return c === 32 || c === 9;
}

/** Parses one SIP message. Throws SipParseError (and nothing else) when it is malformed. */
export function parseMessage(buf: Buffer, opts?: ParseOptions): SipMessage {
  try {
    return parse(buf, opts?.datagram === true);
  } catch (e) {
    if (e instanceof SipParseError) throw e;
    throw new SipParseError('Malformed message');
  }
}

interface Collected {
  isRequest: boolean | undefined;
  method: string | undefined;
  fields: HeaderField[];
}

function fail(reason: string, c: Collected, status = 400): SipParseError {
  const e = new SipParseError(reason);
  e.status = status;
  attach(e, c);
  return e;
}

function attach(e: SipParseError, c: Collected): void {
  e.isRequest = c.isRequest;
  e.method = c.method;
  let cseq: string | undefined;
  for (const f of c.fields) {
    switch (f.key) {
      case 'via':
        e.via.push(f.value);
        break;
      case 'from':
        e.from ??= f.value;
        break;
      case 'to':
        e.to ??= f.value;
        break;
      case 'call-id':
        e.callId ??= f.value;
        break;
      case 'cseq':
        cseq ??= f.value;
        break;
    }
  }
  e.cseq = cseq;
  if (e.isRequest === false && cseq !== undefined && e.method === undefined) {
    try {
      e.method = parseCSeq(cseq).method;
    } catch {
      // leave undefined
    }
  }
}

function parse(buf: Buffer, datagram: boolean): SipMessage {
  const len = buf.length;
  let p = 0;
  while (p < len && (buf[p] === 13 || buf[p] === 10)) p++;
  if (p >= len) throw new SipParseError('Empty message');
  const msgStart = p;

  // one latin1 conversion: one char per byte, so string offsets are buffer offsets
  const text = buf.toString('latin1');
  // locate the empty line that ends the header section
  let hdrEnd = -1;
  let bodyStart = -1;
  for (let q = p; ; ) {
    const nl = text.indexOf('\n', q);
    if (nl < 0) break;
    const nx = nl + 1;
    const c = text.charCodeAt(nx);
    if (c === 10) {
      hdrEnd = nx;
      bodyStart = nx + 1;
      break;
    }
    if (c === 13 && text.charCodeAt(nx + 1) === 10) {
      hdrEnd = nx;
      bodyStart = nx + 2;
      break;
    }
    q = nx;
  }
  let pending: string | undefined;
  if (hdrEnd < 0) {
    pending = 'Header section not terminated';
    hdrEnd = len;
    bodyStart = len;
  }
  const nul = text.indexOf('\0', msgStart);
  if (nul >= 0 && nul < hdrEnd) pending ??= 'NUL byte in header section';

  const col: Collected = { isRequest: undefined, method: undefined, fields: [] };

  // ---- start line
  let sl = text.indexOf('\n', msgStart);
  const startLineEnd = sl < 0 ? hdrEnd : sl + 1;
  if (sl < 0) sl = hdrEnd;
  if (sl > msgStart && text.charCodeAt(sl - 1) === 13) sl--;
  const line = text.substring(msgStart, sl);
  let isRequest: boolean;
  let method = '';
  let status = 0;
  let reason = '';
  let ruri = '';
  let version: string;
  // start-line errors are raised after the header scan, so the error can carry Via & co.
  let startErr: [string, number] | undefined;
  if (
    line.length >= 4 &&
    (line.charCodeAt(0) | 0x20) === 0x73 &&
    (line.charCodeAt(1) | 0x20) === 0x69 &&
    (line.charCodeAt(2) | 0x20) === 0x70 &&
    line.charCodeAt(3) === 0x2f
  ) {
    isRequest = false;
    let i = 0;
    while (i < line.length && !isWsp(line.charCodeAt(i))) i++;
    version = line.substring(0, i);
    col.isRequest = false;
    startErr = versionError(version);
    while (i < line.length && isWsp(line.charCodeAt(i))) i++;
    const cs = i;
    while (i < line.length && !isWsp(line.charCodeAt(i))) i++;
    const code = line.substring(cs, i);
    status = code.length === 3 ? parseDigits(code, 3) : -1;
    if (startErr === undefined && (status < 100 || status > 699)) startErr = ['Bad status code', 400];
    if (i < line.length) i++;
    reason = line.substring(i);
  } else {
    isRequest = true;
    const parts: string[] = [];
    let i = 0;
    while (i < line.length && parts.length < 4) {
      while (i < line.length && isWsp(line.charCodeAt(i))) i++;
      if (i >= line.length) break;
      const s = i;
      while (i < line.length && !isWsp(line.charCodeAt(i))) i++;
      parts.push(line.substring(s, i));
    }
    col.isRequest = true;
    version = '';
    if (parts.length === 0 || !isToken(parts[0])) startErr = ['Bad request method', 400];
    else {
      method = parts[0];
      col.method = method;
      if (parts.length !== 3) startErr = ['Bad request line', 400];
      else {
        ruri = parts[1];
        version = parts[2];
        startErr = versionError(version);
        if (startErr === undefined && ruri.indexOf(':') <= 0) startErr = ['Bad Request-URI', 400];
      }
    }
  }

  // ---- header lines
  const fields = col.fields;
  let ls = startLineEnd;
  let viaN = 0;
  let fromN = 0;
  let toN = 0;
  let cidN = 0;
  let cseqF: HeaderField | undefined;
  let cseqN = 0;
  let clF: HeaderField | undefined;
  let clN = 0;
  while (ls < hdrEnd) {
    let e = text.indexOf('\n', ls);
    if (e < 0 || e > hdrEnd) e = hdrEnd;
    let folded = false;
    while (e + 1 < hdrEnd && isWsp(text.charCodeAt(e + 1))) {
      folded = true;
      e = text.indexOf('\n', e + 1);
      if (e < 0 || e > hdrEnd) e = hdrEnd;
    }
    const lineEnd = e < hdrEnd ? e + 1 : hdrEnd;
    let le = e;
    if (le > ls && text.charCodeAt(le - 1) === 13) le--;
    let i = ls;
    while (i < le && TOKEN[text.charCodeAt(i)] === 1) i++;
    const ne = i;
    while (i < le && isWsp(text.charCodeAt(i))) i++;
    if (ne === ls || i >= le || text.charCodeAt(i) !== 58) {
      pending ??= isWsp(text.charCodeAt(ls)) ? 'Bad header folding' : 'Malformed header line';
      ls = lineEnd;
      continue;
    }
    i++;
    while (i < le) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 13 || c === 10) i++;
      else break;
    }
    let ve = le;
    while (ve > i) {
      const c = text.charCodeAt(ve - 1);
      if (c === 32 || c === 9 || c === 13 || c === 10) ve--;
      else break;
    }
    const key = keyAt(text, ls, ne);
    const f = new HeaderField(key, ls, lineEnd, text, ne, i, ve, folded);
    fields.push(f);
    switch (key) {
      case 'via':
        viaN++;
        break;
      case 'from':
        fromN++;
        break;
      case 'to':
        toN++;
        break;
      case 'call-id':
        cidN++;
        break;
      case 'cseq':
        cseqF ??= f;
        cseqN++;
        break;
      case 'content-length':
        clF ??= f;
        clN++;
        break;
    }
    ls = lineEnd;
  }
  if (startErr !== undefined) throw fail(startErr[0], col, startErr[1]);
  if (pending !== undefined) throw fail(pending, col);

  // ---- required headers (RFC 3261 §8.1.1: requests and replies carry them all)
  if (viaN === 0) throw fail('Missing Via header', col);
  if (fromN === 0) throw fail('Missing From header', col);
  if (toN === 0) throw fail('Missing To header', col);
  if (cidN === 0) throw fail('Missing Call-ID header', col);
  if (cseqF === undefined) throw fail('Missing CSeq header', col);
  if (fromN > 1) throw fail('Duplicate From header', col);
  if (toN > 1) throw fail('Duplicate To header', col);
  if (cidN > 1) throw fail('Duplicate Call-ID header', col);
  if (cseqN > 1) throw fail('Duplicate CSeq header', col);
  let cseq: CSeq;
  try {
    cseq = parseCSeq(cseqF.value);
  } catch (err) {
    throw fail(err instanceof SipParseError ? err.reason : 'Bad CSeq', col);
  }
  if (cseq.seq > MAX_CSEQ) throw fail('Bad CSeq number', col);
  if (isRequest) {
    if (cseq.method !== method) throw fail('CSeq method mismatch', col);
  } else {
    method = cseq.method;
    col.method = method;
  }

  // ---- body
  const avail = len - bodyStart;
  let bodyEnd: number;
  if (clF === undefined) {
    if (!datagram) throw fail('Missing Content-Length header', col);
    bodyEnd = len;
  } else {
    if (clN > 1) throw fail('Duplicate Content-Length header', col);
    const cl = parseDigits(clF.value, 10);
    if (cl < 0 || cl > MAX_CSEQ) throw fail('Bad Content-Length header', col);
    if (cl > avail) throw fail('Content-Length larger than message', col);
    bodyEnd = bodyStart + cl;
  }

  return new SipMessage(
    buf,
    text,
    isRequest,
    method,
    status,
    reason,
    ruri,
    version,
    fields,
    [msgStart, startLineEnd, hdrEnd, bodyStart, bodyEnd],
    cseq,
  );
}

/** undefined when the version is SIP/2.0 (any case), else the error reason and status */
function versionError(v: string): [string, number] | undefined {
  if (
    v.length === 7 &&
    (v.charCodeAt(0) | 0x20) === 0x73 &&
    (v.charCodeAt(1) | 0x20) === 0x69 &&
    (v.charCodeAt(2) | 0x20) === 0x70 &&
    v.charCodeAt(3) === 0x2f &&
    v.charCodeAt(4) === 0x32 &&
    v.charCodeAt(5) === 0x2e &&
    v.charCodeAt(6) === 0x30
  )
    return undefined;
  if (/^SIP\/\d+\.\d+$/i.test(v)) return ['Unsupported SIP version', 505];
  return ['Bad SIP version', 400];
}

/**
 * For stream transports: the length of the complete message at the start of `buf`
 * (leading CRLFs included), or -1 when more bytes are needed. Throws SipParseError when
 * the header section is complete but Content-Length is missing or malformed.
 */
export function messageLength(buf: Buffer, maxHeader = 65536): number {
  const len = buf.length;
  let q = 0;
  while (q < len && (buf[q] === 13 || buf[q] === 10)) q++;
  if (q >= len) return -1;
  let bodyStart = -1;
  let lineStart = q;
  let cl = -1;
  for (;;) {
    const nl = buf.indexOf(10, lineStart);
    if (nl < 0) break;
    const ll = nl - lineStart;
    if (ll === 0 || (ll === 1 && buf[lineStart] === 13)) {
      bodyStart = nl + 1;
      break;
    }
    // Content-Length / l header?
    const c0 = buf[lineStart] | 0x20;
    if (c0 === 0x6c || c0 === 0x63) {
      let colon = lineStart;
      while (colon < nl && buf[colon] !== 58) colon++;
      if (colon < nl) {
        const name = buf.toString('latin1', lineStart, colon).trimEnd().toLowerCase();
        if (name === 'content-length' || name === 'l') {
          const v = parseDigits(buf.toString('latin1', colon + 1, nl).trim(), 10);
          if (v < 0 || v > MAX_CSEQ || (cl >= 0 && v !== cl))
            throw new SipParseError('Bad Content-Length header');
          cl = v;
        }
      }
    }
    lineStart = nl + 1;
  }
  if (bodyStart < 0) {
    if (len > maxHeader) throw new SipParseError('Header section too long');
    return -1;
  }
  if (cl < 0) throw new SipParseError('Missing Content-Length header');
  return bodyStart + cl <= len ? bodyStart + cl : -1;
}
