/**
 * The attendant of the multi-process model (fork=yes and children>1; docs/process-model.md).
 *
 * It owns nothing SIP-related: it forks `children` workers with node:cluster (each runs
 * the whole server on handles of the sockets bound here, so they share one UDP socket and
 * one TCP listener per `listen`), restarts a worker that dies (and logs it), runs the
 * FIFO and JSON-RPC servers and answers management commands:
 * - `ps` and `kill` itself;
 * - `get_statistics`, `/metrics` and the `*_stats` / `t_hash` commands summed over the
 *   workers (usrloc is replicated, so its figures are taken from one worker);
 * - every other command on one worker (the lowest ready index); usrloc changes made there
 *   are replicated to the others by usrloc itself.
 */
import { spawn, spawnSync } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fail, ok, statisticsReply } from '../mgmt/dispatcher.js';
import { FifoServer } from '../mgmt/fifo.js';
import { defaultRpcSocket, parseHostPort } from '../mgmt/index.js';
import { renderMetrics } from '../mgmt/metrics.js';
import { RpcHttpServer, RpcSocketServer } from '../mgmt/rpc.js';
import { ENV_COUNT, ENV_DIR, ENV_INDEX, ENV_SECRET } from './cluster-role.js';
import type { FromWorker, ToWorker } from './cluster-worker.js';
import { L_CRIT, L_ERR, type LogSink, Logger, StderrSink, SyslogSink, syslogFacility } from './log.js';
import { untilSignal } from './signals.js';
import type { MgmtReply } from './module.js';
import type { PreparedConfig } from './server.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Groups = Record<string, Record<string, number>>;
type Ready = Extract<FromWorker, { t: 'ready' }>;

/** statistics groups every worker holds the same copy of (replicated state) */
const REPLICATED_GROUPS = new Set(['usrloc']);
/** a slot restarted more often than this within RESTART_WINDOW_MS stops the server */
const MAX_RESTARTS = 10;
const RESTART_WINDOW_MS = 60_000;
const START_TIMEOUT_MS = 60_000;
const ASK_TIMEOUT_MS = 30_000;

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  pid: number;
  ready: Ready | undefined;
  /** its mesh connections to every peer are open (see Mesh.connectAll) */
  meshed: boolean;
  restarts: number[];
}

/** Commands whose counters are summed over the workers. */
export function isSummed(name: string): boolean {
  return name !== 'ul_stats' && (name.endsWith('_stats') || name === 't_hash');
}

/**
 * Commands that act on per-worker state (caches, write-back queues): run on every
 * worker; the answer is the first failure, else worker 0's.
 */
export function isEveryWorker(name: string): boolean {
  return name.endsWith('_flush') || name.endsWith('_reload');
}

/** Sum of flat numeric objects (shapes may differ: missing keys count 0). */
export function sumGroups(all: Groups[]): Groups {
  const out: Groups = {};
  all.forEach((groups, w) => {
    for (const [g, s] of Object.entries(groups)) {
      const o = (out[g] ??= {});
      for (const [k, v] of Object.entries(s)) {
        if (typeof v !== 'number') continue;
        if (REPLICATED_GROUPS.has(g)) {
          if (w === 0 || !(k in o)) o[k] = v;
        } else o[k] = (o[k] ?? 0) + v;
      }
    }
  });
  return out;
}

const COUNTER_RE = /([:=(]\s*)(\d+)/g;

/**
 * One reply from the replies of every worker to a statistics command: the numbers that
 * follow `:`, `=` or `(` in the text are summed when every text has the same shape, and
 * numeric fields of `data` are summed.
 */
export function sumReplies(replies: MgmtReply[]): MgmtReply {
  const first = replies[0];
  if (!first || replies.some((r) => r.code !== 200))
    return replies.find((r) => r.code !== 200) ?? fail(500, 'no worker');
  const bodies = replies.map((r) => r.body ?? '');
  const shape = (b: string) => b.replace(COUNTER_RE, '$1#');
  let body: string;
  if (bodies.every((b) => shape(b) === shape(bodies[0]))) {
    const nums = bodies.map((b) => [...b.matchAll(COUNTER_RE)].map((m) => Number(m[2])));
    let i = 0;
    body = bodies[0].replace(COUNTER_RE, (_m, pre: string) => {
      const v = nums.reduce((a, n) => a + (n[i] ?? 0), 0);
      i++;
      return `${pre}${v}`;
    });
  } else body = bodies.map((b, k) => `worker ${k}:\n${b}`).join('\n');
  let data = first.data;
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    const sum: Record<string, unknown> = { ...(data as Record<string, unknown>) };
    for (const k of Object.keys(sum)) {
      if (typeof sum[k] !== 'number') continue;
      sum[k] = replies.reduce(
        (a, r) => a + Number((r.data as Record<string, unknown> | undefined)?.[k] ?? 0),
        0,
      );
    }
    data = sum;
  }
  return { code: 200, reason: first.reason, body, data };
}

/** numeric uid/gid of user= / group= (the id tool resolves names), or undefined */
function meshOwner(
  user: string | undefined,
  group: string | undefined,
): { uid: number; gid: number } | undefined {
  if (user === undefined && group === undefined) return undefined;
  const id = (flag: string, name: string) => {
    if (/^\d+$/.test(name)) return Number(name);
    const r = spawnSync('id', [flag, name], { encoding: 'utf8' });
    return r.status === 0 && /^\d+\s*$/.test(r.stdout) ? Number(r.stdout) : undefined;
  };
  const uid = user !== undefined ? id('-u', user) : process.getuid?.();
  let gid: number | undefined;
  if (group !== undefined) {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const r = spawnSync('getent', ['group', group], { encoding: 'utf8' });
      gid = r.status === 0 ? Number(r.stdout.split(':')[2]) : undefined;
    }
  } else gid = user !== undefined ? id('-g', user) : process.getgid?.();
  // an unknown name: the workers report it when they try to switch
  if (uid === undefined || gid === undefined || Number.isNaN(gid)) return undefined;
  return { uid, gid };
}

export async function runAttendant(prep: PreparedConfig): Promise<number> {
  const { config } = prep;
  const options = prep.r.config?.options;
  if (config.daemonize && process.env.SER_DAEMONIZED !== '1') {
    // detach as the single-process server does: the same command with -D in a new session
    const child = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1], ...process.argv.slice(2), '-D'],
      {
        detached: true,
        stdio: 'ignore',
        env: { ...process.env, SER_DAEMONIZED: '1' },
      },
    );
    child.unref();
    return 0;
  }
  let sink: LogSink;
  if (config.logStderr) sink = new StderrSink();
  else {
    const s = new SyslogSink('ser', syslogFacility(config.logFacility));
    sink = s.available ? s : new StderrSink();
  }
  const log = new Logger(config.debug, sink);
  const startedAt = new Date();
  const n = config.children;
  const dir = mkdtempSync(join(tmpdir(), 'ser-cluster-'));
  const secret = randomBytes(32).toString('hex');
  // user= / group=: the workers reach each other's mesh sockets after dropping privileges
  const owner = meshOwner(config.user, config.group);
  if (owner) chownSync(dir, owner.uid, owner.gid);
  // every worker accepts on the shared listener itself: the kernel balances the accepts,
  // and a connection never passes through this process
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const slots: Slot[] = Array.from({ length: n }, (_, index) => ({
    index,
    worker: undefined,
    pid: 0,
    ready: undefined,
    meshed: false,
    restarts: [],
  }));
  const pending = new Map<number, { slot: Slot; res: (m: FromWorker | undefined) => void }>();
  let nextId = 1;
  let stopping = false;
  let started = false;
  let onAllReady: (() => void) | undefined;
  let onStartFailure: ((msg: string) => void) | undefined;

  const fork = (slot: Slot, restart: boolean) => {
    const w = cluster.fork({
      [ENV_INDEX]: String(slot.index),
      [ENV_COUNT]: String(n),
      [ENV_DIR]: dir,
      [ENV_SECRET]: secret,
      ...(owner ? { SER_CLUSTER_OWNER: `${owner.uid}:${owner.gid}` } : {}),
      SER_WORKER_RESTART: restart ? '1' : '0',
    });
    slot.worker = w;
    slot.pid = w.process.pid ?? 0;
    slot.ready = undefined;
    w.on('message', (m: FromWorker) => {
      if (m.t === 'ready') {
        slot.ready = m;
        slot.meshed = false;
        // every worker listens on its mesh socket now: let them connect to each other
        if (slots.every((s) => s.ready))
          for (const s of slots) s.worker?.send({ t: 'peers' } satisfies ToWorker);
        if (restart) log.log(L_ERR, `NOTICE: worker ${slot.index} restarted, pid ${slot.pid}`);
        return;
      }
      if (m.t === 'meshed') {
        // started once every worker can replicate to every other (usrloc, nonces)
        slot.meshed = true;
        if (!started && slots.every((s) => s.ready && s.meshed)) onAllReady?.();
        return;
      }
      const p = pending.get(m.id);
      if (p) {
        pending.delete(m.id);
        p.res(m);
      }
    });
    w.on('exit', (code, signal) => {
      if (slot.worker !== w) return;
      slot.worker = undefined;
      slot.ready = undefined;
      for (const [id, p] of pending)
        if (p.slot === slot) {
          pending.delete(id);
          p.res(undefined);
        }
      if (stopping) return;
      if (!started) {
        onStartFailure?.(
          `ERROR: worker ${slot.index} (pid ${slot.pid}) exited with ${signal ?? code} while starting`,
        );
        return;
      }
      const now = Date.now();
      slot.restarts = slot.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
      slot.restarts.push(now);
      if (slot.restarts.length > MAX_RESTARTS) {
        log.log(
          L_CRIT,
          `CRITICAL: worker ${slot.index} died ${MAX_RESTARTS} times within a minute, shutting down`,
        );
        process.kill(process.pid, 'SIGTERM');
        return;
      }
      log.err(
        `worker ${slot.index} (pid ${slot.pid}) exited with ${signal ?? `code ${code}`}, restarting it`,
      );
      setTimeout(() => {
        if (!stopping) fork(slot, true);
      }, 100).unref();
    });
  };

  const ask = (slot: Slot, m: DistributiveOmit<ToWorker, 'id'>): Promise<FromWorker | undefined> =>
    new Promise((res) => {
      const w = slot.worker;
      if (!w || !slot.ready) return res(undefined);
      const id = nextId++;
      const t = setTimeout(() => {
        pending.delete(id);
        res(undefined);
      }, ASK_TIMEOUT_MS);
      pending.set(id, {
        slot,
        res: (x) => {
          clearTimeout(t);
          res(x);
        },
      });
      w.send({ ...m, id } as ToWorker);
    });
  const readySlots = () => slots.filter((s) => s.ready);

  const processTable = () => {
    const rows: { no: number; pid: number; desc: string }[] = [
      { no: 0, pid: process.pid, desc: 'attendant' },
    ];
    for (const s of slots) {
      const socks = (s.ready?.listening ?? slots.find((x) => x.ready)?.ready?.listening ?? [])
        .map((l, i) => `sock=${i} @ ${l.ip}::${l.port} (${l.proto})`)
        .join(', ');
      rows.push({
        no: s.index + 1,
        pid: s.pid,
        desc: `receiver child=${s.index} ${socks}, timer${s.ready ? '' : ' (restarting)'}`,
      });
    }
    let no = n + 1;
    for (const r of roles) rows.push({ no: no++, pid: process.pid, desc: r });
    return rows;
  };

  const allStats = async (): Promise<Groups> => {
    const replies = await Promise.all(readySlots().map((s) => ask(s, { t: 'stats' })));
    return sumGroups(replies.flatMap((r) => (r?.t === 'stats' ? [r.groups] : [])));
  };

  let commands = new Set<string>();
  const run = async (name: string, cmdArgs: string[]): Promise<MgmtReply> => {
    if (name === 'ps') {
      const ps = processTable();
      return ok(ps.map((p) => `${p.no} ${p.pid} ${p.desc}`).join('\n'), ps);
    }
    if (name === 'kill') {
      setTimeout(() => process.kill(process.pid, 'SIGTERM'), 50).unref();
      return ok('shutting down', { pid: process.pid });
    }
    if (name === 'get_statistics') return statisticsReply(await allStats(), cmdArgs);
    const live = readySlots();
    if (live.length === 0) return fail(503, 'no worker running');
    if (isSummed(name)) {
      const rs = await Promise.all(live.map((s) => ask(s, { t: 'cmd', name, args: cmdArgs })));
      return sumReplies(rs.flatMap((r) => (r?.t === 'reply' ? [r.reply] : [])));
    }
    if (isEveryWorker(name)) {
      const rs = await Promise.all(live.map((s) => ask(s, { t: 'cmd', name, args: cmdArgs })));
      const replies = rs.flatMap((r) => (r?.t === 'reply' ? [r.reply] : []));
      if (replies.length < live.length) return fail(500, `command '${name}': a worker did not answer`);
      return replies.find((r) => r.code >= 300) ?? replies[0];
    }
    const r = await ask(live[0], { t: 'cmd', name, args: cmdArgs });
    return r?.t === 'reply'
      ? r.reply
      : fail(500, `command '${name}': worker ${live[0].index} did not answer`);
  };
  const exists = (name: string) => commands.has(name) || name === 'ps' || name === 'kill';

  // ---------------------------------------------------------------- start the workers
  const startResult = await new Promise<string | undefined>((res) => {
    const t = setTimeout(() => res('ERROR: workers did not start in time'), START_TIMEOUT_MS);
    onAllReady = () => {
      clearTimeout(t);
      res(undefined);
    };
    onStartFailure = (msg) => {
      clearTimeout(t);
      res(msg);
    };
    for (const s of slots) fork(s, false);
  });
  const roles: string[] = [];
  let fifo: FifoServer | undefined;
  let rpcSocket: RpcSocketServer | undefined;
  let http: RpcHttpServer | undefined;
  const stopAll = async () => {
    stopping = true;
    await Promise.all([fifo?.stop(), rpcSocket?.stop(), http?.stop()]).catch(() => {});
    await Promise.all(
      slots.map(
        (s) =>
          new Promise<void>((res) => {
            const w = s.worker;
            if (!w || w.isDead()) return res();
            const k = setTimeout(() => w.process.kill('SIGKILL'), 5000);
            w.once('exit', () => {
              clearTimeout(k);
              res();
            });
            w.process.kill('SIGTERM');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  if (startResult) {
    process.stderr.write(`${startResult}\n`);
    await stopAll();
    return 1;
  }
  started = true;
  const first = slots[0].ready!;
  const which = await ask(slots[0], { t: 'which' });
  if (which?.t === 'which') commands = new Set(which.names);

  // ---------------------------------------------------------------- management servers
  const opt = (k: string) => options?.get(k);
  try {
    if (config.fifo) {
      fifo = new FifoServer({
        path: config.fifo,
        mode: config.fifoMode,
        dir: typeof opt('fifo_dir') === 'string' ? (opt('fifo_dir') as string) : '/tmp/',
        log,
        run,
      });
      fifo.start();
      roles.push('fifo server');
    }
    const sockEnv = process.env.SER_RPC_SOCKET;
    if (sockEnv !== 'off' && sockEnv !== 'none') {
      const path =
        sockEnv ||
        (typeof opt('unix_sock') === 'string' ? (opt('unix_sock') as string) : defaultRpcSocket(config.fifo));
      const s = new RpcSocketServer({
        path,
        mode: typeof opt('sock_mode') === 'number' ? (opt('sock_mode') as number) : 0o660,
        log,
        run,
        exists,
      });
      try {
        await s.start();
        rpcSocket = s;
        roles.push(`rpc server @ ${path}`);
      } catch (e) {
        log.warn(`mgmt: JSON-RPC socket not started: ${(e as Error).message}`);
      }
    }
    const httpEnv = process.env.SER_HTTP;
    if (httpEnv) {
      const hp = parseHostPort(httpEnv);
      if (!hp) throw new Error(`SER_HTTP='${httpEnv}': expected [host:]port`);
      const a = process.env.SER_HTTP_AUTH;
      if (a && !a.includes(':')) throw new Error('SER_HTTP_AUTH: expected user:password');
      const basic = a
        ? { user: a.slice(0, a.indexOf(':')), password: a.slice(a.indexOf(':') + 1) }
        : undefined;
      const h = new RpcHttpServer({
        ...hp,
        auth: { token: process.env.SER_HTTP_TOKEN || undefined, basic },
        log,
        run,
        exists,
        metrics: async () => renderMetrics(await allStats(), { startedAt }),
      });
      await h.start();
      http = h;
      roles.push(`http server @ ${hp.host}:${h.port}`);
    }
  } catch (e) {
    process.stderr.write(`ERROR: fifo/rpc server: ${(e as Error).message}\n`);
    await stopAll();
    return 1;
  }

  if (config.pidFile) writeFileSync(config.pidFile, `${process.pid}\n`);
  // user= / group=: the workers dropped theirs; the sockets are bound, drop ours, group first
  try {
    if (config.group !== undefined) process.setgid?.(config.group);
    if (config.user !== undefined) process.setuid?.(config.user);
  } catch (e) {
    process.stderr.write(
      `ERROR: cannot change to user/group ${config.user ?? ''}/${config.group ?? ''}: ${(e as Error).message}\n`,
    );
    await stopAll();
    return 1;
  }
  const lines = ['Listening on'];
  for (const l of first.listening) lines.push(`             ${l.proto}: ${l.address} [${l.ip}]:${l.port}`);
  lines.push(`Aliases: ${first.aliases.join(' ')}`);
  process.stderr.write(`${lines.join('\n')}\n`);
  log.info(`ser started, pid ${process.pid}, ${n} workers: ${slots.map((s) => s.pid).join(' ')}`);
  return await untilSignal(log, `stopping ${n} workers`, stopAll, config.pidFile);
}
