/**
 * The management plane of a running server: the FIFO server (`fifo=`), JSON-RPC on a
 * unix socket (on by default) and JSON-RPC + /metrics over HTTP (off by default), all
 * serving one command set (see dispatcher.ts). Started and stopped with the core.
 *
 * Configuration (no new script options; see docs/mgmt.md):
 * - FIFO: the `fifo`, `fifo_mode`, `fifo_dir` global options, as in SER.
 * - unix socket: `SER_RPC_SOCKET` (a path, or `off`), else the `unix_sock` global option,
 *   else `<fifo>.sock` when a FIFO is configured, else /tmp/ser_rpc.sock; mode `sock_mode`.
 * - HTTP: `SER_HTTP=[host:]port` turns it on (host 127.0.0.1 unless given), with
 *   `SER_HTTP_TOKEN` (bearer) and/or `SER_HTTP_AUTH=user:password` (basic), one required.
 */
import type { Core } from '../core/core.js';
import type { ModuleDef } from '../core/module.js';
import { Dispatcher } from './dispatcher.js';
import { FifoServer } from './fifo.js';
import { renderMetrics } from './metrics.js';
import { RpcHttpServer, RpcSocketServer } from './rpc.js';

export { Dispatcher } from './dispatcher.js';
export type { ProcessInfo, ProcessTable } from './dispatcher.js';

export interface MgmtOptions {
  readonly core: Core;
  /** loaded modules with their states, in load order */
  readonly modules: readonly (readonly [ModuleDef<unknown>, unknown])[];
  /** the script's global options (fifo_dir, unix_sock, sock_mode) */
  readonly options?: ReadonlyMap<string, unknown>;
  /** default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

export interface Mgmt {
  readonly dispatcher: Dispatcher;
  readonly fifo: FifoServer | undefined;
  readonly rpcSocket: RpcSocketServer | undefined;
  readonly http: RpcHttpServer | undefined;
  metrics(): string;
  stop(): Promise<void>;
}

/** Default unix-socket path for a FIFO path (or none). Shared with serctl. */
export function defaultRpcSocket(fifo: string | undefined): string {
  return fifo ? `${fifo}.sock` : '/tmp/ser_rpc.sock';
}

/** `[host:]port` → host and port; host defaults to 127.0.0.1. */
export function parseHostPort(v: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]:|([^:]+):)?(\d{1,5})$/.exec(v.trim());
  if (!m || Number(m[3]) > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port: Number(m[3]) };
}

export async function startMgmt(o: MgmtOptions): Promise<Mgmt> {
  const { core } = o;
  const env = o.env ?? process.env;
  const opt = (n: string) => o.options?.get(n);
  const roles: string[] = [];
  const dispatcher = new Dispatcher(core, { modules: o.modules, roles: () => roles });
  const run = (c: string, a: string[]) => dispatcher.run(c, a);
  const exists = (c: string) => dispatcher.find(c) !== undefined;
  const metrics = () => renderMetrics(dispatcher.readStats(), { startedAt: core.startedAt });

  let fifo: FifoServer | undefined;
  let rpcSocket: RpcSocketServer | undefined;
  let http: RpcHttpServer | undefined;
  const stop = async () => {
    await Promise.all([fifo?.stop(), rpcSocket?.stop(), http?.stop()]);
  };
  try {
    const cfg = core.config;
    if (cfg.fifo) {
      fifo = new FifoServer({
        path: cfg.fifo,
        mode: cfg.fifoMode,
        dir: typeof opt('fifo_dir') === 'string' ? (opt('fifo_dir') as string) : '/tmp/',
        log: core.log,
        run,
      });
      fifo.start(); // SER does not start without its FIFO: failures are start-up errors
      roles.push('fifo server');
    }

    const sockEnv = env.SER_RPC_SOCKET;
    if (sockEnv !== 'off' && sockEnv !== 'none') {
      const path =
        sockEnv ||
        (typeof opt('unix_sock') === 'string' ? (opt('unix_sock') as string) : defaultRpcSocket(cfg.fifo));
      const s = new RpcSocketServer({
        path,
        mode: typeof opt('sock_mode') === 'number' ? (opt('sock_mode') as number) : 0o660,
        log: core.log,
        run,
        exists,
      });
      try {
        await s.start();
        rpcSocket = s;
        roles.push(`rpc server @ ${path}`);
      } catch (e) {
        core.log.warn(`WARNING: mgmt: JSON-RPC socket not started: ${(e as Error).message}`);
      }
    }

    if (env.SER_HTTP) {
      const hp = parseHostPort(env.SER_HTTP);
      if (!hp) throw new Error(`SER_HTTP='${env.SER_HTTP}': expected [host:]port`);
      const basic = env.SER_HTTP_AUTH
        ? {
            user: env.SER_HTTP_AUTH.slice(0, Math.max(0, env.SER_HTTP_AUTH.indexOf(':'))),
            password: env.SER_HTTP_AUTH.slice(env.SER_HTTP_AUTH.indexOf(':') + 1),
          }
        : undefined;
      if (basic && !env.SER_HTTP_AUTH!.includes(':'))
        throw new Error('SER_HTTP_AUTH: expected user:password');
      const h = new RpcHttpServer({
        ...hp,
        auth: { token: env.SER_HTTP_TOKEN || undefined, basic },
        log: core.log,
        run,
        exists,
        metrics,
      });
      await h.start();
      http = h;
      roles.push(`http server @ ${hp.host}:${h.port}`);
      core.log.info(`INFO: mgmt: HTTP JSON-RPC and /metrics on ${hp.host}:${h.port}`);
    }
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
  return { dispatcher, fifo, rpcSocket, http, metrics, stop };
}
