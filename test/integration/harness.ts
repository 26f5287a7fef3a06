/** Drives a real `ser` process over real sockets, as a phone would. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket as TcpSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';

export const SER_JS = fileURLToPath(new URL('../../src/cli/ser.js', import.meta.url));
/** the repository root (dist/test/integration → ../../..) */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const SEED_CONFIGS = join(REPO, '..', 'shared', 'seed-configs');

/** The script text of a seed config (below its inventory header). */
export function seedScript(name: string): string {
  const text = readFileSync(join(SEED_CONFIGS, name), 'utf8');
  const i = text.indexOf('# ---- verbatim script text follows ----');
  return i < 0 ? text : text.slice(text.indexOf('\n', i) + 1);
}
export const haveSeeds = existsSync(SEED_CONFIGS);

/** A free UDP port on 127.0.0.1 (also free for TCP in practice: we check by binding both). */
export async function freePort(): Promise<number> {
  for (;;) {
    const s = createSocket('udp4');
    const port = await new Promise<number>((res) => s.bind(0, '127.0.0.1', () => res(s.address().port)));
    s.close();
    const ok = await new Promise<boolean>((res) => {
      const srv = createServer();
      srv.once('error', () => res(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
    });
    if (ok) return port;
  }
}

/** Workers the suite runs ser with (env SER_TEST_CHILDREN, default 1: one process). */
export function testChildren(): number {
  const n = Number(process.env.SER_TEST_CHILDREN ?? 1);
  return Number.isInteger(n) && n > 1 ? n : 1;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export interface Ser {
  port: number;
  proc: ChildProcess;
  stderr: () => string;
  /** resolves when stderr matches `re` (or rejects after `ms`) */
  waitLog(re: RegExp, ms?: number): Promise<void>;
  stop(): Promise<number | null>;
}

/**
 * Start ser on a config text. `{PORT}` in the text is replaced by a free port;
 * listen/fork/log_stderror are prepended unless the text sets them. `nodeArgs` go to node
 * before the script (a small heap limit, say).
 */
export async function startSer(
  cfg: string,
  opts: { args?: string[]; port?: number; nodeArgs?: string[] } = {},
): Promise<Ser> {
  const port = opts.port ?? (await freePort());
  let text = cfg.replaceAll('{PORT}', String(port));
  if (!/^\s*listen\s*=/m.test(text))
    text = `listen=udp:127.0.0.1:${port}\nlisten=tcp:127.0.0.1:${port}\n${text}`;
  // SER_TEST_CHILDREN=N (N>1): the multi-process model, fork=yes + children=N (still -D)
  if (!/^\s*fork\s*=/m.test(text))
    text = testChildren() > 1 ? `fork=yes\nchildren=${testChildren()}\n${text}` : `fork=no\n${text}`;
  if (!/^\s*log_stderror\s*=/m.test(text)) text = `log_stderror=yes\n${text}`;
  const dir = mkdtempSync(join(tmpdir(), 'ser-it-'));
  const file = join(dir, 'ser.cfg');
  writeFileSync(file, text);
  const proc = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), SER_JS, '-f', file, '-D', ...(opts.args ?? [])],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  // a test that fails before stop() must not leave ser running: the test file's process
  // would wait on its pipes forever, and the server would hold its ports
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  proc.unref();
  (proc.stdout as { unref?: () => void } | null)?.unref?.();
  (proc.stderr as { unref?: () => void } | null)?.unref?.();
  let err = '';
  const waiters: { re: RegExp; res: () => void }[] = [];
  const onData = (d: Buffer) => {
    err += d.toString();
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i].re.test(err)) {
        waiters[i].res();
        waiters.splice(i, 1);
      }
    }
  };
  proc.stderr?.on('data', onData);
  proc.stdout?.on('data', onData);
  const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
  const waitLog = (re: RegExp, ms = 5000) =>
    new Promise<void>((res, rej) => {
      if (re.test(err)) return res();
      const t = setTimeout(() => rej(new Error(`timeout waiting for ${re} in:\n${err}`)), ms);
      waiters.push({
        re,
        res: () => {
          clearTimeout(t);
          res();
        },
      });
    });
  const ready = waitLog(/Listening on/, 8000);
  const died = exited.then((c) => {
    throw new Error(`ser exited with ${c} before listening:\n${err}`);
  });
  await Promise.race([ready, died]);
  died.catch(() => {});
  return {
    port,
    proc,
    stderr: () => err,
    waitLog,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      const c = await exited;
      clearTimeout(t);
      return c;
    },
  };
}

/** A UDP user agent on 127.0.0.x collecting every message it receives. */
export class UdpPeer {
  readonly sock: Socket;
  readonly inbox: Buffer[] = [];
  private waiting: ((b: Buffer) => void) | undefined;
  port = 0;
  constructor(readonly ip = '127.0.0.1') {
    this.sock = createSocket('udp4');
    this.sock.on('message', (b) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w(b);
      } else this.inbox.push(b);
    });
  }
  static async open(ip = '127.0.0.1', port = 0): Promise<UdpPeer> {
    const p = new UdpPeer(ip);
    await new Promise<void>((res) => p.sock.bind(port, ip, () => res()));
    p.port = p.sock.address().port;
    return p;
  }
  send(text: string | Buffer, port: number, ip = '127.0.0.1'): void {
    this.sock.send(typeof text === 'string' ? Buffer.from(text, 'latin1') : text, port, ip);
  }
  /** the next datagram, or undefined after `ms` */
  next(ms = 2000): Promise<Buffer | undefined> {
    const b = this.inbox.shift();
    if (b) return Promise.resolve(b);
    return new Promise((res) => {
      const t = setTimeout(() => {
        this.waiting = undefined;
        res(undefined);
      }, ms);
      this.waiting = (x) => {
        clearTimeout(t);
        res(x);
      };
    });
  }
  async nextMsg(ms = 2000): Promise<SipMessage> {
    const b = await this.next(ms);
    if (!b) throw new Error(`no message within ${ms} ms`);
    return parseMessage(b, { datagram: true });
  }
  close(): void {
    this.sock.close();
  }
}

let seq = 0;
/** A request as a UA would send it from `peer`. Extra header lines replace defaults of the same name. */
export function request(
  method: string,
  ruri: string,
  from: { ip: string; port: number; proto?: string },
  extra: string[] = [],
  body = '',
): string {
  seq++;
  const proto = (from.proto ?? 'UDP').toUpperCase();
  const defaults: [string, string][] = [
    ['Via', `SIP/2.0/${proto} ${from.ip}:${from.port};branch=z9hG4bK-it-${process.pid}-${seq}`],
    ['Max-Forwards', '70'],
    ['From', `<sip:caller@${from.ip}>;tag=it${seq}`],
    ['To', `<${ruri.replace(/;.*$/, '')}>`],
    ['Call-ID', `it-${process.pid}-${seq}@${from.ip}`],
    ['CSeq', `1 ${method}`],
    ['Contact', `<sip:caller@${from.ip}:${from.port}>`],
  ];
  const names = new Set(extra.map((l) => l.slice(0, l.indexOf(':')).toLowerCase()));
  const lines = [`${method} ${ruri} SIP/2.0`];
  for (const [n, v] of defaults) if (!names.has(n.toLowerCase())) lines.push(`${n}: ${v}`);
  for (const l of extra) if (!l.endsWith(': -')) lines.push(l);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** A TCP client connection collecting bytes. */
export class TcpPeer {
  data = Buffer.alloc(0);
  closed = false;
  private constructor(readonly sock: TcpSocket) {
    sock.on('data', (d) => {
      this.data = Buffer.concat([this.data, d]);
    });
    sock.on('close', () => {
      this.closed = true;
    });
    sock.on('error', () => {});
  }
  static open(port: number, ip = '127.0.0.1'): Promise<TcpPeer> {
    return new Promise((res, rej) => {
      const s = connect(port, ip, () => res(new TcpPeer(s)));
      s.once('error', rej);
    });
  }
  get localPort(): number {
    return this.sock.localPort ?? 0;
  }
  write(b: string | Buffer): void {
    this.sock.write(b);
  }
  /** wait until `n` complete replies (status lines) arrived, or ms */
  async waitFor(pred: (text: string) => boolean, ms = 3000): Promise<string> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const t = this.data.toString('latin1');
      if (pred(t)) return t;
      if (this.closed) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.data.toString('latin1');
  }
  close(): void {
    this.sock.destroy();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
