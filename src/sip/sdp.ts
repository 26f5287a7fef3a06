/**
 * Minimal SDP (RFC 4566) model for a proxy's needs: read and rewrite the connection
 * address (session and media level), the media ports and the o= address; add and remove
 * attributes. Lines are kept as written (with their own line ends); an unmodified
 * description serializes to the original bytes.
 */
import { SipParseError } from './errors.js';

export interface SdpLine {
  /** the one-letter type ('v', 'o', 'c', 'm', 'a'…) */
  type: string;
  /** text after '=' */
  value: string;
  /** line terminator as written: '\r\n', '\n' or '' (last line without one) */
  eol: string;
}

export interface SdpConnection {
  netType: string;
  addrType: string;
  address: string;
  /** '/ttl[/count]' suffix as written, '' if none */
  suffix: string;
}

export interface SdpOrigin {
  username: string;
  sessionId: string;
  sessionVersion: string;
  netType: string;
  addrType: string;
  address: string;
}

export interface SdpMedia {
  /** lines of the section; lines[0] is the m= line */
  lines: SdpLine[];
}

function addrTypeOf(addr: string): string {
  return addr.indexOf(':') >= 0 ? 'IP6' : 'IP4';
}

function checkValue(s: string): string {
  if (/[\r\n\0]/.test(s)) throw new RangeError('SDP value must not contain CR, LF or NUL');
  return s;
}

export class Sdp {
  readonly session: SdpLine[] = [];
  readonly media: SdpMedia[] = [];
  private readonly original: Buffer;
  private dirty = false;
  /** line end used for added lines: the first one found, CRLF by default */
  private eol = '\r\n';

  private constructor(original: Buffer) {
    this.original = original;
  }

  /** Parses an SDP body. Throws SipParseError when it does not start with a v= line. */
  static parse(body: Buffer | string): Sdp {
    const buf = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
    const sdp = new Sdp(buf);
    const text = buf.toString('latin1');
    let cur: SdpLine[] = sdp.session;
    let i = 0;
    while (i < text.length) {
      let e = text.indexOf('\n', i);
      let eol = '\n';
      if (e < 0) {
        e = text.length;
        eol = '';
      }
      let le = e;
      if (eol !== '' && le > i && text.charCodeAt(le - 1) === 13) {
        le--;
        eol = '\r\n';
      }
      if (i === 0 && eol !== '') sdp.eol = eol;
      const line = text.substring(i, le);
      const eq = line.indexOf('=');
      const l: SdpLine =
        eq === 1 ? { type: line[0], value: line.substring(2), eol } : { type: '', value: line, eol };
      if (l.type === 'm') {
        const m: SdpMedia = { lines: [l] };
        sdp.media.push(m);
        cur = m.lines;
      } else cur.push(l);
      i = e + 1;
    }
    const first = sdp.session[0];
    if (first === undefined || first.type !== 'v') throw new SipParseError('Bad SDP: no v= line');
    return sdp;
  }

  /** true once something was changed */
  get modified(): boolean {
    return this.dirty;
  }

  /** The description as bytes: the original buffer when unmodified. */
  toBuffer(): Buffer {
    if (!this.dirty) return this.original;
    let s = '';
    for (const l of this.session) s += l.type === '' ? l.value + l.eol : `${l.type}=${l.value}${l.eol}`;
    for (const m of this.media)
      for (const l of m.lines) s += l.type === '' ? l.value + l.eol : `${l.type}=${l.value}${l.eol}`;
    return Buffer.from(s, 'latin1');
  }

  toString(): string {
    return this.toBuffer().toString('latin1');
  }

  private section(media: number | undefined): SdpLine[] {
    if (media === undefined) return this.session;
    const m = this.media[media];
    if (m === undefined) throw new RangeError(`no media section ${media}`);
    return m.lines;
  }

  // ------------------------------------------------------------ o=

  get origin(): SdpOrigin | undefined {
    const l = this.session.find((x) => x.type === 'o');
    if (!l) return undefined;
    const p = l.value.split(' ');
    if (p.length < 6) return undefined;
    return {
      username: p[0],
      sessionId: p[1],
      sessionVersion: p[2],
      netType: p[3],
      addrType: p[4],
      address: p[5],
    };
  }

  /** Rewrites the o= unicast address (and its address type). */
  setOriginAddress(address: string, addrType = addrTypeOf(address)): boolean {
    const l = this.session.find((x) => x.type === 'o');
    if (!l) return false;
    const p = l.value.split(' ');
    if (p.length < 6) return false;
    p[4] = checkValue(addrType);
    p[5] = checkValue(address);
    l.value = p.join(' ');
    this.dirty = true;
    return true;
  }

  // ------------------------------------------------------------ c=

  private static parseC(l: SdpLine): SdpConnection | undefined {
    const p = l.value.split(' ');
    if (p.length < 3) return undefined;
    const slash = p[2].indexOf('/');
    return {
      netType: p[0],
      addrType: p[1],
      address: slash < 0 ? p[2] : p[2].substring(0, slash),
      suffix: slash < 0 ? '' : p[2].substring(slash),
    };
  }

  /** The session-level c=, or for a media index the media-level one (falling back to the session's). */
  connection(media?: number): SdpConnection | undefined {
    if (media !== undefined) {
      const l = this.section(media).find((x) => x.type === 'c');
      if (l) return Sdp.parseC(l);
    }
    const s = this.session.find((x) => x.type === 'c');
    return s ? Sdp.parseC(s) : undefined;
  }

  /**
   * Rewrites the connection address: every c= line (session and media) when `media` is
   * undefined, else only that media section's c= lines. Returns how many lines changed.
   */
  setConnectionAddress(address: string, opts?: { media?: number; addrType?: string }): number {
    checkValue(address);
    const at = opts?.addrType ?? addrTypeOf(address);
    const sections =
      opts?.media === undefined
        ? [this.session, ...this.media.map((m) => m.lines)]
        : [this.section(opts.media)];
    let n = 0;
    for (const sec of sections)
      for (const l of sec) {
        if (l.type !== 'c') continue;
        const c = Sdp.parseC(l);
        if (!c) continue;
        l.value = `${c.netType} ${at} ${address}${c.suffix}`;
        n++;
      }
    if (n > 0) this.dirty = true;
    return n;
  }

  // ------------------------------------------------------------ m=

  /** media type of section i ('audio', 'video'…) */
  mediaType(i: number): string {
    return this.section(i)[0].value.split(' ')[0];
  }

  /** transport port of media section i */
  mediaPort(i: number): number {
    const p = this.section(i)[0].value.split(' ')[1] ?? '';
    const slash = p.indexOf('/');
    return Number.parseInt(slash < 0 ? p : p.substring(0, slash), 10);
  }

  /** Sets the port of media section i (a '/count' suffix is kept). */
  setMediaPort(i: number, port: number): void {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError('bad port');
    const l = this.section(i)[0];
    const p = l.value.split(' ');
    if (p.length < 2) throw new RangeError('bad m= line');
    const slash = p[1].indexOf('/');
    p[1] = slash < 0 ? String(port) : String(port) + p[1].substring(slash);
    l.value = p.join(' ');
    this.dirty = true;
  }

  // ------------------------------------------------------------ a=

  private static attrMatches(value: string, name: string): boolean {
    return value === name || (value.startsWith(name) && value.charCodeAt(name.length) === 58);
  }

  /** values of the a= lines of a section (session when media is undefined), optionally only `name`. */
  attributes(media?: number, name?: string): string[] {
    const out: string[] = [];
    for (const l of this.section(media))
      if (l.type === 'a' && (name === undefined || Sdp.attrMatches(l.value, name))) out.push(l.value);
    return out;
  }

  /** Appends `a=<attr>` at the end of the section (session when media is undefined). */
  addAttribute(attr: string, media?: number): void {
    const sec = this.section(media);
    const last = sec[sec.length - 1];
    const eol = last && last.eol !== '' ? last.eol : this.eol;
    if (last && last.eol === '') last.eol = eol;
    sec.push({ type: 'a', value: checkValue(attr), eol });
    this.dirty = true;
  }

  /** Removes the a= lines named `name` (a=name or a=name:…) from a section, or from all when media is 'all'. */
  removeAttributes(name: string, media?: number | 'all'): number {
    const secs = media === 'all' ? [this.session, ...this.media.map((m) => m.lines)] : [this.section(media)];
    let n = 0;
    for (const sec of secs)
      for (let i = sec.length - 1; i >= 0; i--)
        if (sec[i].type === 'a' && Sdp.attrMatches(sec[i].value, name)) {
          const [removed] = sec.splice(i, 1);
          if (removed.eol === '' && i > 0) sec[i - 1].eol = '';
          n++;
        }
    if (n > 0) this.dirty = true;
    return n;
  }
}
