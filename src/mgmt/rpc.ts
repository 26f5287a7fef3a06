/**
 * The management commands as JSON-RPC 2.0: over a unix socket (one JSON text per line,
 * each answered by one line) and over HTTP (POST /, /rpc; GET /metrics in Prometheus
 * text format). Methods are command names; params are the command's parameter lines,
 * an array of strings (numbers and booleans are turned into strings).
 *
 * A result is `{status, reason, body, data}`: SER's status and reason, the body lines,
 * and the command's structured data when it gives one. A status of 300 or more is a
 * JSON-RPC error -32000 with `"<status> <reason>"` as message and the same object as
 * data; an unknown command is -32601.
 */
import { timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../core/log.js';
import type { MgmtReply } from '../core/module.js';

export interface RpcResult {
  status: number;
  reason: string;
  body: string[];
  data?: unknown;
}

interface RpcRequest {
  jsonrpc?: unknown;
  id?: unknown;
  method?: unknown;
  params?: unknown;
}

type RpcResponse =
  | { jsonrpc: '2.0'; id: unknown; result: RpcResult }
  | { jsonrpc: '2.0'; id: unknown; error: { code: number; message: string; data?: unknown } };

export type RunCommand = (command: string, args: string[]) => Promise<MgmtReply>;
export type CommandExists = (command: string) => boolean;

export function toResult(r: MgmtReply): RpcResult {
  const out: RpcResult = { status: r.code, reason: r.reason, body: r.body ? r.body.split('\n') : [] };
  if (r.data !== undefined) out.data = r.data;
  return out;
}

const err = (id: unknown, code: number, message: string, data?: unknown): RpcResponse => ({
  jsonrpc: '2.0',
  id: id ?? null,
  error: data === undefined ? { code, message } : { code, message, data },
});

/** Handle one parsed JSON-RPC message (or batch); undefined for notifications only. */
export async function handleRpc(
  msg: unknown,
  run: RunCommand,
  exists: CommandExists,
): Promise<RpcResponse | RpcResponse[] | undefined> {
  if (Array.isArray(msg)) {
    if (msg.length === 0) return err(null, -32600, 'Invalid Request: empty batch');
    const all = await Promise.all(msg.map((m) => handleOne(m, run, exists)));
    const out = all.filter((r): r is RpcResponse => r !== undefined);
    return out.length > 0 ? out : undefined;
  }
  return handleOne(msg, run, exists);
}

async function handleOne(
  m: unknown,
  run: RunCommand,
  exists: CommandExists,
): Promise<RpcResponse | undefined> {
  if (typeof m !== 'object' || m === null) return err(null, -32600, 'Invalid Request');
  const r = m as RpcRequest;
  const notification = !('id' in r);
  const id = r.id;
  if (r.jsonrpc !== '2.0' || typeof r.method !== 'string') {
    return err(id, -32600, 'Invalid Request: jsonrpc "2.0" and a method name are required');
  }
  let args: string[];
  if (r.params === undefined) args = [];
  else if (
    Array.isArray(r.params) &&
    r.params.every((p) => ['string', 'number', 'boolean'].includes(typeof p))
  ) {
    args = r.params.map(String);
  } else {
    return err(id, -32602, 'Invalid params: an array of strings (the parameter lines) is expected');
  }
  if (!exists(r.method)) {
    return notification ? undefined : err(id, -32601, `command '${r.method}' not available`);
  }
  const reply = await run(r.method, args);
  if (notification) return undefined;
  const res = toResult(reply);
  if (reply.code >= 300) return err(id, -32000, `${reply.code} ${reply.reason}`, res);
  return { jsonrpc: '2.0', id, result: res };
}

async function handleText(text: string, run: RunCommand, exists: CommandExists): Promise<string | undefined> {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return JSON.stringify(err(null, -32700, 'Parse error'));
  }
  const r = await handleRpc(msg, run, exists);
  return r === undefined ? undefined : JSON.stringify(r);
}

/** Largest JSON text accepted on either transport. */
const MAX_BODY = 1 << 20;

// ------------------------------------------------------------------ unix socket

export interface RpcSocketOptions {
  readonly path: string;
  /** permissions of the socket file; default 0660 */
  readonly mode?: number;
  readonly log: Logger;
  readonly run: RunCommand;
  readonly exists: CommandExists;
}

/** Is something answering on this unix socket path. */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((res) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      res(true);
    });
    c.once('error', () => res(false));
  });
}

export class RpcSocketServer {
  private server: Server | undefined;
  private readonly clients = new Set<Socket>();

  constructor(private readonly opts: RpcSocketOptions) {}

  get path(): string {
    return this.opts.path;
  }

  /** Listen; a live server on the path is left alone (rejects), a stale socket file is replaced. */
  async start(): Promise<void> {
    const { path } = this.opts;
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
      if (await socketAlive(path)) throw new Error(`${path} is in use by another server`);
      unlinkSync(path);
    }
    const srv = createServer((c) => this.serve(c));
    this.server = srv;
    await new Promise<void>((res, rej) => {
      srv.once('error', rej);
      srv.listen(path, () => {
        srv.off('error', rej);
        res();
      });
    });
    chmodSync(path, this.opts.mode ?? 0o660);
  }

  private serve(c: Socket): void {
    this.clients.add(c);
    c.on('close', () => this.clients.delete(c));
    c.on('error', () => c.destroy());
    let buf = '';
    let chain = Promise.resolve();
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_BODY && !buf.includes('\n')) {
        c.end(`${JSON.stringify(err(null, -32600, 'Invalid Request: too large'))}\n`);
        return;
      }
      for (;;) {
        const nl = buf.indexOf('\n');
        if (nl < 0) break;
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === '') continue;
        // answers go out in request order
        chain = chain.then(async () => {
          const out = await handleText(line, this.opts.run, this.opts.exists);
          if (out !== undefined && !c.destroyed) c.write(`${out}\n`);
        });
      }
    });
    c.on('end', () => {
      const line = buf.trim();
      buf = '';
      chain = chain.then(async () => {
        if (line !== '') {
          const out = await handleText(line, this.opts.run, this.opts.exists);
          if (out !== undefined && !c.destroyed) c.write(`${out}\n`);
        }
        c.end();
      });
    });
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    try {
      unlinkSync(this.opts.path);
    } catch {
      /* gone */
    }
  }
}

// ------------------------------------------------------------------ HTTP

export interface HttpAuth {
  /** `Authorization: Bearer <token>` */
  readonly token?: string;
  /** `Authorization: Basic base64(user:password)` */
  readonly basic?: { user: string; password: string };
}

export interface RpcHttpOptions {
  readonly host: string;
  readonly port: number;
  readonly auth: HttpAuth;
  readonly log: Logger;
  readonly run: RunCommand;
  readonly exists: CommandExists;
  /** the multi-process attendant gathers the workers' counters first (a Promise) */
  readonly metrics: () => string | Promise<string>;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Does the request carry the configured credentials. */
export function authorized(req: IncomingMessage, auth: HttpAuth): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^(\w+)\s+(.+)$/.exec(h.trim());
  if (!m) return false;
  const scheme = m[1].toLowerCase();
  if (scheme === 'bearer' && auth.token) return safeEqual(m[2], auth.token);
  if (scheme === 'basic' && auth.basic) {
    const dec = Buffer.from(m[2], 'base64').toString('utf8');
    return safeEqual(dec, `${auth.basic.user}:${auth.basic.password}`);
  }
  return false;
}

export class RpcHttpServer {
  private server: HttpServer | undefined;

  constructor(private readonly opts: RpcHttpOptions) {}

  /** the bound port (useful with port 0) */
  port = 0;

  async start(): Promise<void> {
    if (!this.opts.auth.token && !this.opts.auth.basic) {
      throw new Error('HTTP management needs SER_HTTP_TOKEN or SER_HTTP_AUTH (user:password)');
    }
    const srv = createHttpServer((req, res) => {
      const send = (code: number, type: string, body: string, extra: Record<string, string> = {}) => {
        res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store', ...extra });
        res.end(body);
      };
      if (!authorized(req, this.opts.auth)) {
        const challenges = [];
        if (this.opts.auth.token) challenges.push('Bearer realm="ser"');
        if (this.opts.auth.basic) challenges.push('Basic realm="ser"');
        send(401, 'text/plain', 'authorization required\n', { 'WWW-Authenticate': challenges.join(', ') });
        return;
      }
      const url = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && url === '/metrics') {
        Promise.resolve()
          .then(() => this.opts.metrics())
          .then(
            (text) => send(200, 'text/plain; version=0.0.4; charset=utf-8', text),
            (e: unknown) => send(500, 'text/plain', `metrics failed: ${(e as Error)?.message ?? e}\n`),
          );
        return;
      }
      if (req.method !== 'POST' || (url !== '/' && url !== '/rpc')) {
        send(404, 'text/plain', 'POST / (JSON-RPC 2.0) or GET /metrics\n');
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_BODY) {
          send(413, 'text/plain', 'request too large\n');
          req.destroy();
          return;
        }
        chunks.push(d);
      });
      req.on('end', () => {
        if (res.headersSent) return;
        void handleText(Buffer.concat(chunks).toString('utf8'), this.opts.run, this.opts.exists).then(
          (out) => (out === undefined ? send(204, 'text/plain', '') : send(200, 'application/json', out)),
          (e) => send(500, 'text/plain', `${(e as Error).message}\n`),
        );
      });
    });
    this.server = srv;
    await new Promise<void>((res, rej) => {
      srv.once('error', rej);
      srv.listen(this.opts.port, this.opts.host, () => {
        srv.off('error', rej);
        res();
      });
    });
    const a = srv.address();
    this.port = typeof a === 'object' && a ? a.port : this.opts.port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((res) => s.close(() => res()));
  }
}
