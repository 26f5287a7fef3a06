/**
 * SIP over stream transports (TCP): splits a byte stream into messages.
 *
 * - the header block ends at the first empty line (CRLFCRLF; LFLF and LF CRLF tolerated);
 * - the body length comes from Content-Length (or compact `l`), case-insensitive,
 *   folded header lines are unfolded first; on streams it is mandatory (RFC 3261 §18.3);
 * - between messages, a double CRLF is an RFC 5626 §4.4.1 keep-alive "ping" (the
 *   connection answers with a single CRLF "pong"); other stray CR/LF are skipped;
 * - limits: `maxHeaderSize` for the header block, `maxMessageSize` for header + body.
 *   Exceeding one yields an `oversize` event with the bytes received so far (capped at
 *   the limit) so the caller can try a 513 from the partial headers.
 *
 * After an `oversize` or `error` event the framer is dead: further input is ignored,
 * and the caller is expected to close the connection.
 *
 * Pure: no I/O, no timers. Memory held is bounded by about `maxMessageSize` plus one chunk.
 */

export interface FramerLimits {
  /** maximum size of the header block including the empty line (default 64 KiB) */
  maxHeaderSize?: number;
  /** maximum size of a whole message, headers + body (default 64 KiB) */
  maxMessageSize?: number;
}

export type FramerErrorReason = 'no-content-length' | 'bad-content-length';

export type FramerEvent =
  /** one complete SIP message (headers + body) */
  | { type: 'message'; data: Buffer }
  /** a CRLFCRLF keep-alive ping was received: answer with CRLF */
  | { type: 'ping' }
  /** a limit was exceeded; `partial` is what was received of the offending message so far */
  | { type: 'oversize'; limit: 'header' | 'message'; partial: Buffer }
  /** unframeable input (missing or garbage Content-Length); `partial` as received */
  | { type: 'error'; reason: FramerErrorReason; partial: Buffer };

export const DEFAULT_MAX_HEADER_SIZE = 64 * 1024;
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024;

const CR = 0x0d;
const LF = 0x0a;

/**
 * Finds the Content-Length in a header block (latin1 text, including the start line).
 * Returns the length, `undefined` when absent, or -1 when present but not a valid
 * non-negative integer (or several different values).
 */
export function findContentLength(headers: string): number | undefined {
  // unfold: a line starting with SP/HT continues the previous header
  const text =
    headers.includes('\n ') || headers.includes('\n\t') ? headers.replace(/\r?\n[ \t]+/g, ' ') : headers;
  let found: number | undefined;
  let start = text.indexOf('\n') + 1; // skip the start line
  if (start === 0) return undefined;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const c = text.charCodeAt(start) | 0x20;
    if (c === 0x63 /* c */ || c === 0x6c /* l */) {
      const m = /^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$/i.exec(text.slice(start, end));
      if (m) {
        const v = m[1];
        if (!/^\d{1,10}$/.test(v)) return -1;
        const n = Number(v);
        if (found !== undefined && found !== n) return -1;
        found = n;
      }
    }
    start = end + 1;
  }
  return found;
}

export class StreamFramer {
  readonly maxHeaderSize: number;
  readonly maxMessageSize: number;

  /** internal buffer; live bytes are buf[start, end) */
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** where the header-end search resumes, relative to the message start */
  private scanFrom = 0;
  /** header length once the header block is complete, else -1 */
  private hdrLen = -1;
  private bodyLen = 0;
  private dead = false;

  constructor(limits: FramerLimits = {}) {
    this.maxHeaderSize = limits.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    this.maxMessageSize = limits.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  }

  /** Bytes held for an incomplete message (or unconsumed CR/LF). */
  get buffered(): number {
    return this.end - this.start;
  }

  /** True once an oversize or error event has been produced. */
  get failed(): boolean {
    return this.dead;
  }

  /** Feeds a chunk; returns the events it completes, in stream order. */
  push(chunk: Buffer): FramerEvent[] {
    const events: FramerEvent[] = [];
    if (this.dead || chunk.length === 0) return events;
    if (this.start === this.end) {
      // fast path: nothing pending, frame straight from the chunk (messages are zero-copy views)
      this.start = this.end = 0;
      const used = this.frame(chunk, events, false);
      if (!this.dead && used < chunk.length) this.append(chunk.subarray(used));
      return events;
    }
    this.append(chunk);
    const view = this.buf.subarray(this.start, this.end);
    const used = this.frame(view, events, true);
    this.start += used;
    if (this.start === this.end || this.dead) {
      this.start = this.end = 0;
      if (this.buf.length > 4 * this.maxMessageSize) this.buf = Buffer.alloc(0);
    }
    return events;
  }

  /** Drops all state (e.g. when reusing the framer). */
  reset(): void {
    this.buf = Buffer.alloc(0);
    this.start = this.end = 0;
    this.scanFrom = 0;
    this.hdrLen = -1;
    this.bodyLen = 0;
    this.dead = false;
  }

  private append(data: Buffer): void {
    const live = this.end - this.start;
    if (this.end + data.length > this.buf.length) {
      if (live + data.length <= this.buf.length) {
        this.buf.copy(this.buf, 0, this.start, this.end);
      } else {
        const nb = Buffer.allocUnsafe(Math.max(live + data.length, this.buf.length * 2, 4096));
        this.buf.copy(nb, 0, this.start, this.end);
        this.buf = nb;
      }
      this.start = 0;
      this.end = live;
    }
    data.copy(this.buf, this.end);
    this.end += data.length;
  }

  /**
   * Frames as many messages as possible from `data`, starting at a message boundary
   * (or in the middle of one per the saved state). Returns the bytes consumed.
   * `copy`: messages must be copied out (data is the reusable internal buffer).
   */
  private frame(data: Buffer, events: FramerEvent[], copy: boolean): number {
    let pos = 0;
    const len = data.length;
    for (;;) {
      if (this.hdrLen < 0 && this.scanFrom === 0) {
        // at a message boundary: keep-alives and stray line ends
        while (pos < len) {
          const c = data[pos];
          if (c === LF) {
            pos++;
            continue;
          }
          if (c !== CR) break;
          if (pos + 1 >= len) return pos; // lone CR: wait
          if (data[pos + 1] !== LF) {
            pos++; // CR not followed by LF: skip it
            continue;
          }
          // CRLF: a ping when another CRLF follows
          if (pos + 2 >= len) return pos; // maybe the first half of a ping
          if (data[pos + 2] === CR) {
            if (pos + 3 >= len) return pos;
            if (data[pos + 3] === LF) {
              events.push({ type: 'ping' });
              pos += 4;
              continue;
            }
          }
          pos += 2; // stray CRLF
        }
        if (pos >= len) return pos;
      }
      if (this.hdrLen < 0) {
        // look for the end of the header block
        const msgStart = pos;
        let i = msgStart + Math.max(0, this.scanFrom - 2);
        let hdrEnd = -1;
        for (;;) {
          const lf = data.indexOf(LF, i);
          if (lf < 0 || lf + 1 >= len) break;
          const n = data[lf + 1];
          if (n === LF) {
            hdrEnd = lf + 2;
            break;
          }
          if (n === CR) {
            if (lf + 2 >= len) break;
            if (data[lf + 2] === LF) {
              hdrEnd = lf + 3;
              break;
            }
          }
          i = lf + 1;
        }
        if (hdrEnd < 0) {
          const have = len - msgStart;
          if (have > this.maxHeaderSize) {
            return this.fail(events, {
              type: 'oversize',
              limit: 'header',
              partial: this.cut(data, msgStart, len),
            });
          }
          this.scanFrom = have;
          return msgStart;
        }
        const hlen = hdrEnd - msgStart;
        if (hlen > this.maxHeaderSize) {
          return this.fail(events, {
            type: 'oversize',
            limit: 'header',
            partial: this.cut(data, msgStart, len),
          });
        }
        const cl = findContentLength(data.toString('latin1', msgStart, hdrEnd));
        if (cl === undefined || cl < 0) {
          const partial = Buffer.from(data.subarray(msgStart, Math.min(len, msgStart + this.maxMessageSize)));
          return this.fail(events, {
            type: 'error',
            reason: cl === undefined ? 'no-content-length' : 'bad-content-length',
            partial,
          });
        }
        if (hlen + cl > this.maxMessageSize) {
          return this.fail(events, {
            type: 'oversize',
            limit: 'message',
            partial: this.cut(data, msgStart, len),
          });
        }
        this.hdrLen = hlen;
        this.bodyLen = cl;
        this.scanFrom = hlen;
      }
      // have the headers; wait for the body
      const total = this.hdrLen + this.bodyLen;
      if (len - pos < total) return pos;
      const msg = data.subarray(pos, pos + total);
      events.push({ type: 'message', data: copy ? Buffer.from(msg) : msg });
      pos += total;
      this.hdrLen = -1;
      this.bodyLen = 0;
      this.scanFrom = 0;
      if (pos >= len) return pos;
    }
  }

  private cut(data: Buffer, from: number, to: number): Buffer {
    return Buffer.from(data.subarray(from, Math.min(to, from + this.maxMessageSize)));
  }

  private fail(events: FramerEvent[], ev: FramerEvent): number {
    events.push(ev);
    this.dead = true;
    this.hdrLen = -1;
    this.scanFrom = 0;
    return Number.MAX_SAFE_INTEGER;
  }
}
