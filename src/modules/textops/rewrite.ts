/**
 * Whole-text edits for textops: the message as one latin1 string (one char per byte),
 * regex substitution over it, and "adopting" the edited text back into the SipMessage
 * that the context holds.
 *
 * Design: MsgContext.msg is readonly and other parts of the server (tm, the forwarding
 * path) keep references to that same SipMessage object. So an edit of the whole text
 * does not swap the object: the edited bytes are parsed into a fresh SipMessage and
 * its state is moved into the existing object (same identity, new content). When the
 * edited text does not parse as a SIP message the edit is refused and the message is
 * left as it was. Content-Length is recomputed first, as SER did when a body changed.
 */
import type { MsgContext } from '../../core/context.js';
import { parseMessage, type SipMessage } from '../../sip/message.js';
import { isToken } from '../../sip/util.js';

/** SER's BUF_SIZE: an edit that makes the message larger than this is refused. */
export const MAX_MESSAGE = 65535;

const textCache = new WeakMap<SipMessage, { buf: Buffer; text: string }>();

/** The current message (edits included) as a latin1 string; cached while the bytes stay the same. */
export function messageText(msg: SipMessage): string {
  const buf = msg.serialize();
  const c = textCache.get(msg);
  if (c !== undefined && c.buf === buf) return c.text;
  const text = buf.toString('latin1');
  textCache.set(msg, { buf, text });
  return text;
}

/** Script text (JS string read from the UTF-8 config) as the latin1 string of its UTF-8 bytes. */
export function toLatin1(s: string): string {
  // fast path: plain ASCII/latin1 strings below 0x80 are the same either way
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  return Buffer.from(s, 'utf8').toString('latin1');
}

/**
 * Replace matches of `re` in `text`. `global` replaces all matches, stopping at an empty
 * match (SER: "null match -- no replacement"); otherwise only the first match (which may
 * be empty). Returns undefined when nothing was replaced.
 */
export function substitute(
  text: string,
  re: RegExp,
  global: boolean,
  repl: (m: RegExpExecArray) => string,
): { text: string; count: number } | undefined {
  re.lastIndex = 0;
  if (!global) {
    const m = re.exec(text);
    if (m === null) return undefined;
    return { text: text.slice(0, m.index) + repl(m) + text.slice(m.index + m[0].length), count: 1 };
  }
  let out = '';
  let pos = 0;
  let count = 0;
  for (;;) {
    const m = re.exec(text);
    if (m === null || m[0].length === 0) break;
    out += text.slice(pos, m.index) + repl(m);
    pos = m.index + m[0].length;
    count++;
  }
  re.lastIndex = 0;
  if (count === 0) return undefined;
  return { text: out + text.slice(pos), count };
}

/** Sets every Content-Length header of `text` to the length of its body. */
function fixContentLength(text: string): string {
  // the header section ends at the first empty line (LF or CRLF terminated), as the parser sees it
  const m = /\n\r?\n/.exec(text);
  if (m === null) return text;
  const hdrEnd = m.index + 1;
  const bodyLen = text.length - (m.index + m[0].length);
  const head = text
    .slice(0, hdrEnd)
    .replace(
      /(^|\n)((?:content-length|l)[ \t]*:[ \t]*)[0-9]*/gi,
      (_all, nl: string, name: string) => `${nl}${name}${bodyLen}`,
    );
  return head + text.slice(hdrEnd);
}

export type AdoptResult = 'ok' | 'too-large' | 'unparsable' | 'layout';

/**
 * Parses `text` (latin1) as the new content of ctx.msg and moves it into that object.
 * ctx.ruri follows the Request-URI when the script had not rewritten it.
 */
export function adoptText(ctx: MsgContext, text: string): { result: AdoptResult; reason?: string } {
  const fixed = fixContentLength(text);
  if (fixed.length > MAX_MESSAGE) return { result: 'too-large' };
  let fresh: SipMessage;
  try {
    fresh = parseMessage(Buffer.from(fixed, 'latin1'), { datagram: true });
  } catch (e) {
    return { result: 'unparsable', reason: e instanceof Error ? e.message : String(e) };
  }
  const msg = ctx.msg;
  if (fresh.isRequest !== msg.isRequest)
    return { result: 'unparsable', reason: 'request became a reply or back' };
  // the object keeps its identity: copy the fresh message's own state into it
  const oldKeys = Object.keys(msg);
  const newKeys = Object.keys(fresh);
  if (oldKeys.length !== newKeys.length || newKeys.some((k) => !Object.hasOwn(msg, k))) {
    return { result: 'layout', reason: 'SipMessage fields changed; textops needs updating' };
  }
  const followRuri = msg.isRequest && ctx.ruri === msg.requestUri;
  Object.assign(msg, fresh);
  // it differs from what was received: report it as edited (serialize() stays exact)
  (msg as unknown as { edited: boolean }).edited = true;
  if (followRuri) ctx.ruri = msg.ruri;
  return { result: 'ok' };
}

/**
 * Parses header text as written in the script, e.g. "P-hint: usrloc applied\r\n", into
 * name/value pairs. Folded lines are joined. The final CRLF may be missing. Throws Error
 * with a plain message when a line is not `name: value`.
 */
export function parseHeaderLines(text: string): { name: string; value: string }[] {
  const lines = text.split(/\r?\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw new Error('no header line');
  const out: { name: string; value: string }[] = [];
  for (const line of lines) {
    if (line.length > 0 && (line[0] === ' ' || line[0] === '\t')) {
      const last = out[out.length - 1];
      if (last === undefined) throw new Error('text starts with a folded line');
      last.value = `${last.value} ${line.trim()}`.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`"${line}" is not a header line (name: value)`);
    const name = line.slice(0, colon).trimEnd();
    if (!isToken(name)) throw new Error(`invalid header name "${name}"`);
    const value = line.slice(colon + 1).trim();
    if (/[\r\n\0]/.test(value)) throw new Error(`header "${name}" has CR, LF or NUL in its value`);
    out.push({ name, value });
  }
  return out;
}
