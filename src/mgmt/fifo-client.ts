/**
 * The client side of the FIFO protocol (what serctl and serweb do): make a reply FIFO,
 * write `:cmd:reply\nparams…\n\n` to the server FIFO in one write, read the reply.
 */
import { randomBytes } from 'node:crypto';
import { constants as C, closeSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { basename, join } from 'node:path';
import { mkfifo } from './fifo.js';

export interface FifoReply {
  readonly code: number;
  readonly reason: string;
  /** the lines after the status line */
  readonly body: string[];
}

/** Why a call did not get a reply: the FIFO is missing, nobody reads it, or no answer came. */
export class FifoUnreachable extends Error {
  override name = 'FifoUnreachable';
  constructor(
    message: string,
    readonly reason: 'missing' | 'no-reader' | 'not-fifo' | 'timeout' | 'io',
  ) {
    super(message);
  }
}

export interface FifoCallOptions {
  /** directory for the reply FIFO (the server's fifo_dir); default /tmp */
  readonly replyDir?: string;
  /** default 5000 ms */
  readonly timeoutMs?: number;
}

/** Parse a reply text: `NNN reason` then the body lines. */
export function parseReply(text: string): FifoReply {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const m = /^(\d{3})\s?(.*)$/.exec(lines[0] ?? '');
  if (!m)
    return { code: 500, reason: `malformed reply: ${(lines[0] ?? '').slice(0, 80)}`, body: lines.slice(1) };
  return { code: Number(m[1]), reason: m[2], body: lines.slice(1) };
}

/** Send one request to the server FIFO at `fifo` and wait for its reply. */
export async function fifoCall(
  fifo: string,
  command: string,
  args: readonly string[] = [],
  opts: FifoCallOptions = {},
): Promise<FifoReply> {
  try {
    if (!statSync(fifo).isFIFO()) throw new FifoUnreachable(`${fifo} is not a FIFO`, 'not-fifo');
  } catch (e) {
    if (e instanceof FifoUnreachable) throw e;
    throw new FifoUnreachable(`FIFO ${fifo} does not exist (is ser running with fifo="${fifo}"?)`, 'missing');
  }
  const dir = opts.replyDir ?? '/tmp';
  const name = `ser_reply_${process.pid}_${randomBytes(4).toString('hex')}`;
  const replyPath = join(dir, name);
  mkfifo(replyPath, 0o600);
  let reader: Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    // open our end first so the server finds a reader
    const rfd = openSync(replyPath, C.O_RDONLY | C.O_NONBLOCK);
    reader = new Socket({ fd: rfd, readable: true, writable: false });
    const chunks: Buffer[] = [];
    const got = new Promise<string>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new FifoUnreachable(`no reply from the server through ${fifo} (timeout)`, 'timeout')),
        opts.timeoutMs ?? 5000,
      );
      timer = t;
      reader!.on('data', (d: Buffer) => chunks.push(d));
      reader!.on('end', () => {
        clearTimeout(t);
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      reader!.on('error', (e) => {
        clearTimeout(t);
        reject(new FifoUnreachable(`reading the reply: ${e.message}`, 'io'));
      });
    });
    got.catch(() => {}); // observed below; not unhandled when the request cannot be sent
    // the reply name is relative to the server's fifo_dir when it lives there
    const replyName = dir === '/tmp' || dir === '/tmp/' ? basename(replyPath) : replyPath;
    const req = `:${command}:${replyName}\n${args.map((a) => `${a}\n`).join('')}\n`;
    let wfd: number;
    try {
      wfd = openSync(fifo, C.O_WRONLY | C.O_NONBLOCK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENXIO') {
        throw new FifoUnreachable(`ser is not running: nobody reads the FIFO ${fifo}`, 'no-reader');
      }
      throw new FifoUnreachable(`cannot open FIFO ${fifo}: ${code ?? (e as Error).message}`, 'io');
    }
    try {
      const buf = Buffer.from(req, 'utf8');
      let off = 0;
      const until = Date.now() + (opts.timeoutMs ?? 5000);
      while (off < buf.length) {
        try {
          off += writeSync(wfd, buf, off);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > until) throw e;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    } finally {
      closeSync(wfd);
    }
    return parseReply(await got);
  } finally {
    if (timer) clearTimeout(timer);
    reader?.destroy();
    try {
      unlinkSync(replyPath);
    } catch {
      /* gone */
    }
  }
}
