/**
 * SER's FIFO server (seed 003 §4.2): a named pipe at the `fifo=` path. A request is
 *
 *   :<command>:<reply-fifo>\n <param line>\n … \n(empty line, or the writer's EOF)
 *
 * and the reply goes to the reply FIFO (relative to fifo_dir, /tmp/, unless absolute):
 * a status line `200 ok` / `400 …` / `500 command 'x' not available`, then body lines.
 *
 * The pipe is read through a non-blocking descriptor; when the last writer closes, a new
 * descriptor is opened before the old one is dropped, so nothing written in between is
 * lost. Requests of several writers arriving in one read are framed line by line.
 * Reply FIFOs are opened O_WRONLY|O_NONBLOCK with a short retry, so a client that never
 * reads its reply FIFO cannot stall the server.
 */
import { execFileSync } from 'node:child_process';
import {
  constants as C,
  chmodSync,
  closeSync,
  fstatSync,
  lstatSync,
  openSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { Socket } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from '../core/log.js';
import type { MgmtReply } from '../core/module.js';
import { COMMAND_NAME_RE } from './dispatcher.js';

export interface FifoRequest {
  readonly command: string;
  /** reply FIFO as written in the request; '' when no reply is wanted */
  readonly replyTo: string;
  readonly params: string[];
}

export type FramerEvent =
  | { readonly kind: 'request'; readonly req: FifoRequest }
  | { readonly kind: 'malformed'; readonly replyTo: string | undefined; readonly reason: string };

/** Largest request accepted (bytes of parameter text). */
export const MAX_REQUEST = 1 << 20;

/**
 * Commands whose parameters contain dot-terminated sections (tm's t_uac_dlg, seed 003
 * Ex 4-10: method, R-URI, outbound proxy, headers up to `.`, optional body up to `.`).
 * Their empty lines inside the header list or the body are content, not the end of the
 * request; the request ends with the body's `.`, an empty line right after the headers'
 * `.`, or EOF. The value is the number of plain parameter lines before the sections.
 */
export const DOT_FRAMED: Record<string, number> = { t_uac_dlg: 3, t_uac: 3, t_uac_from: 4 };

interface Pending {
  command: string;
  replyTo: string;
  params: string[];
  size: number;
  /** dot-framed commands: 0 = plain params, 1 = headers, 2 = right after headers, 3 = body */
  section: number;
}

/** Splits the byte stream of the FIFO into requests. */
export class FifoFramer {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';
  private cur: Pending | undefined;
  /** skipping lines up to the next empty line (after garbage or a malformed request) */
  private discarding = false;

  push(chunk: Buffer | string): FramerEvent[] {
    const out: FramerEvent[] = [];
    this.rest += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    for (;;) {
      const nl = this.rest.indexOf('\n');
      if (nl < 0) break;
      let line = this.rest.slice(0, nl);
      this.rest = this.rest.slice(nl + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.line(line, out);
    }
    if (this.rest.length > MAX_REQUEST) {
      this.rest = '';
      this.fail(out, 'request too large');
    }
    return out;
  }

  /** The writer closed: a request without its final empty line is complete now. */
  end(): FramerEvent[] {
    const out: FramerEvent[] = [];
    const tail = this.rest + this.decoder.end();
    this.rest = '';
    if (tail.length > 0) this.line(tail.endsWith('\r') ? tail.slice(0, -1) : tail, out);
    if (this.cur) this.complete(out);
    this.discarding = false;
    return out;
  }

  private fail(out: FramerEvent[], reason: string): void {
    out.push({ kind: 'malformed', replyTo: this.cur?.replyTo, reason });
    this.cur = undefined;
    this.discarding = true;
  }

  private complete(out: FramerEvent[]): void {
    const c = this.cur!;
    this.cur = undefined;
    out.push({ kind: 'request', req: { command: c.command, replyTo: c.replyTo, params: c.params } });
  }

  private line(line: string, out: FramerEvent[]): void {
    if (this.discarding) {
      if (line === '') this.discarding = false;
      return;
    }
    const c = this.cur;
    if (!c) {
      if (line === '') return; // between requests (serweb's extra "command separator")
      const m = /^:([^:]*):(.*)$/.exec(line);
      if (!m) {
        out.push({
          kind: 'malformed',
          replyTo: undefined,
          reason: line.startsWith(':')
            ? `no reply FIFO in command line '${line.slice(0, 80)}'`
            : `a request must begin with ':command:reply_fifo', not '${line.slice(0, 80)}'`,
        });
        this.discarding = true;
        return;
      }
      const replyTo = m[2].trim();
      if (!COMMAND_NAME_RE.test(m[1])) {
        out.push({ kind: 'malformed', replyTo, reason: `malformed command name '${m[1].slice(0, 64)}'` });
        this.discarding = true;
        return;
      }
      this.cur = { command: m[1], replyTo, params: [], size: 0, section: 0 };
      return;
    }
    c.size += line.length + 1;
    if (c.size > MAX_REQUEST) {
      this.fail(out, 'request too large');
      return;
    }
    const plain = DOT_FRAMED[c.command];
    if (plain === undefined) {
      if (line === '') this.complete(out);
      else c.params.push(line);
      return;
    }
    switch (c.section) {
      case 0:
        if (line === '' && c.params.length < plain) {
          this.complete(out); // too few parameters: the command reports it
          return;
        }
        c.params.push(line);
        if (c.params.length === plain) c.section = 1;
        return;
      case 1:
        c.params.push(line);
        if (line === '.') c.section = 2;
        return;
      case 2:
        if (line === '') {
          this.complete(out);
          return;
        }
        c.params.push(line);
        if (line === '.') this.complete(out);
        else c.section = 3;
        return;
      default:
        c.params.push(line);
        if (line === '.') this.complete(out);
    }
  }
}

/** The reply text: status line, then the body lines. */
export function formatReply(r: MgmtReply): string {
  const status = `${r.code} ${r.reason}\n`;
  if (r.body === undefined || r.body === '') return status;
  return `${status}${r.body.endsWith('\n') ? r.body : `${r.body}\n`}`;
}

export interface WriteReplyOptions {
  /** how long to wait for the client to open its reply FIFO; default 1000 ms */
  readonly openTimeoutMs?: number;
  /** how long the client may take to read the reply; default 5000 ms */
  readonly writeTimeoutMs?: number;
}

/**
 * Writes a reply into a client's FIFO without ever blocking: resolves true when written,
 * false (with the reason) when the FIFO did not become writable or is not a FIFO.
 */
export async function writeReply(
  path: string,
  text: string,
  opts: WriteReplyOptions = {},
): Promise<{ ok: boolean; reason?: string }> {
  const deadline = Date.now() + (opts.openTimeoutMs ?? 1000);
  let fd: number | undefined;
  let lastErr = '';
  for (;;) {
    try {
      fd = openSync(path, C.O_WRONLY | C.O_NONBLOCK | C.O_NOCTTY);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      lastErr = code;
      // ENXIO: no reader yet; ENOENT: the client has not created it yet
      if ((code !== 'ENXIO' && code !== 'ENOENT') || Date.now() >= deadline) {
        return { ok: false, reason: `cannot open reply FIFO ${path}: ${code || (e as Error).message}` };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    if (!fstatSync(fd).isFIFO()) {
      closeSync(fd);
      return { ok: false, reason: `reply file ${path} is not a FIFO; not written` };
    }
  } catch (e) {
    closeSync(fd);
    return { ok: false, reason: `cannot stat reply FIFO ${path}: ${(e as Error).message}` };
  }
  const sock = new Socket({ fd, readable: false, writable: true });
  return await new Promise((resolve) => {
    const t = setTimeout(() => {
      sock.destroy();
      resolve({ ok: false, reason: `client did not read its reply FIFO ${path} in time` });
    }, opts.writeTimeoutMs ?? 5000);
    sock.on('error', (e) => {
      clearTimeout(t);
      sock.destroy();
      resolve({ ok: false, reason: `writing reply FIFO ${path}: ${(e as Error).message || lastErr}` });
    });
    sock.end(text, () => {
      clearTimeout(t);
      resolve({ ok: true });
    });
  });
}

/** mkfifo(3) through coreutils (Node has no mkfifo call). */
export function mkfifo(path: string, mode: number): void {
  execFileSync('/usr/bin/mkfifo', ['-m', mode.toString(8), path], { stdio: ['ignore', 'ignore', 'pipe'] });
  chmodSync(path, mode);
}

export interface FifoServerOptions {
  readonly path: string;
  /** permissions (fifo_mode); default 0620 */
  readonly mode?: number;
  /** where relative reply FIFO names live (fifo_dir); default /tmp/ */
  readonly dir?: string;
  readonly log: Logger;
  readonly run: (command: string, args: string[]) => Promise<MgmtReply>;
  readonly reply?: WriteReplyOptions;
}

export class FifoServer {
  private sock: Socket | undefined;
  private readonly framer = new FifoFramer();
  private ino: number | undefined;
  private stopped = false;
  /** replies in flight (for stop() and tests) */
  private readonly inflight = new Set<Promise<void>>();
  requests = 0;

  constructor(private readonly opts: FifoServerOptions) {}

  get path(): string {
    return this.opts.path;
  }

  /** Create the FIFO (replacing a stale one, never a regular file) and start reading. */
  start(): void {
    const { path } = this.opts;
    try {
      const st = lstatSync(path);
      if (!st.isFIFO()) throw new Error(`${path} exists and is not a FIFO`);
      unlinkSync(path); // SER: a FIFO left by a previous run is replaced
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    mkfifo(path, this.opts.mode ?? 0o620);
    this.ino = statSync(path).ino;
    this.open();
  }

  private open(): void {
    const fd = openSync(this.opts.path, C.O_RDONLY | C.O_NONBLOCK);
    const s = new Socket({ fd, readable: true, writable: false });
    this.sock = s;
    s.on('data', (d: Buffer) => this.handle(this.framer.push(d)));
    s.on('end', () => {
      this.handle(this.framer.end());
      if (this.stopped) return;
      // the last writer closed: reopen first, then drop the old descriptor
      try {
        this.open();
      } catch (e) {
        this.opts.log.err(`ERROR: fifo server: cannot reopen ${this.opts.path}: ${(e as Error).message}`);
      }
      s.destroy();
    });
    s.on('error', (e) => this.opts.log.err(`ERROR: fifo server: ${this.opts.path}: ${e.message}`));
  }

  private replyPath(name: string): string {
    return isAbsolute(name) ? name : join(this.opts.dir ?? '/tmp/', name);
  }

  private handle(events: FramerEvent[]): void {
    for (const ev of events) {
      const p = this.process(ev).catch((e) =>
        this.opts.log.err(`ERROR: fifo server: ${(e as Error)?.stack ?? e}`),
      );
      this.inflight.add(p);
      void p.finally(() => this.inflight.delete(p));
    }
  }

  private async process(ev: FramerEvent): Promise<void> {
    this.requests++;
    let reply: MgmtReply;
    let to: string | undefined;
    if (ev.kind === 'malformed') {
      this.opts.log.err(`ERROR: fifo server: malformed request: ${ev.reason}`);
      reply = { code: 400, reason: ev.reason };
      to = ev.replyTo;
    } else {
      to = ev.req.replyTo;
      reply = await this.opts.run(ev.req.command, ev.req.params);
    }
    if (!to) return; // nobody to tell
    if (to.includes('\0')) return;
    const r = await writeReply(this.replyPath(to), formatReply(reply), this.opts.reply);
    if (!r.ok) this.opts.log.err(`ERROR: fifo server: ${r.reason}`);
  }

  /** Resolves when every reply under way is written or given up. */
  async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sock?.destroy();
    // replies to clients that never read are given up after their own timeouts; do not wait for them
    await Promise.race([this.drain(), new Promise((r) => setTimeout(r, 1500).unref())]);
    try {
      if (this.ino !== undefined && statSync(this.opts.path).ino === this.ino) unlinkSync(this.opts.path);
    } catch {
      /* already gone */
    }
  }
}
