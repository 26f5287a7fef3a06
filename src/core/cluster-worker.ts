/**
 * A worker of the multi-process model (fork=yes, children>1): the whole server (script,
 * modules, timers) on handles of the sockets the attendant bound, plus
 * - steering: a UDP message this worker received but does not own (cluster-role.ts) is
 *   passed raw to its owner over the mesh, which processes it as if it had received it and
 *   answers through its own handle of the same socket (same source address);
 * - the replication bus for modules (usrloc);
 * - management commands forwarded by the attendant over the cluster IPC channel.
 */
import type { SerArgs } from '../cli/ser.js';
import { Dispatcher } from '../mgmt/dispatcher.js';
import type { RecvInfo } from '../net/transports.js';
import type { SipMessage } from '../sip/message.js';
import {
  type ClusterBus,
  clusterRole,
  ENV_DIR,
  hashString,
  setClusterBus,
  workerOfBranch,
} from './cluster-role.js';
import { Mesh } from './cluster-mesh.js';
import type { MgmtReply } from './module.js';
import { type RunningServer, startServer } from './server.js';

/** Messages between the attendant and a worker (cluster IPC, management only). */
export type ToWorker =
  | { t: 'cmd'; id: number; name: string; args: string[] }
  | { t: 'stats'; id: number }
  | { t: 'which'; id: number }
  | { t: 'peers' };
export type FromWorker =
  | {
      t: 'ready';
      index: number;
      listening: { proto: string; ip: string; port: number; address: string }[];
      aliases: string[];
    }
  | { t: 'meshed'; index: number }
  | { t: 'reply'; id: number; reply: MgmtReply }
  | { t: 'stats'; id: number; groups: Record<string, Record<string, number>> }
  | { t: 'which'; id: number; names: string[] };

/**
 * The worker owning a parsed UDP message (see cluster-role.ts), or undefined for "any":
 * a reply without our worker mark (to a statelessly forwarded request) needs no state,
 * and passing it on would only let a later reply of the call overtake it (a 200 before
 * its 180), so the worker that read it forwards it.
 */
export function ownerOf(msg: SipMessage, count: number): number | undefined {
  if (!msg.isRequest) {
    const k = workerOfBranch(msg.vias[0]?.branch);
    return k !== undefined && k < count ? k : undefined;
  }
  return hashString(msg.callId) % count;
}

/** how long a replicated change waits for a peer that does not confirm it (stuck, restarting) */
const PUBLISH_WAIT_MS = 500;

export async function runWorker(args: SerArgs): Promise<number> {
  const role = clusterRole();
  const dir = process.env[ENV_DIR];
  if (!role || !dir || !process.send) {
    process.stderr.write('ERROR: worker started without its attendant\n');
    return 1;
  }
  const send = (m: FromWorker) => process.send?.(m);
  const handlers = new Map<string, (payload: unknown, from: number) => undefined | Promise<unknown>>();
  const snapshots = new Map<string, () => unknown[]>();
  const services = new Map<string, (payload: unknown, from: number) => unknown>();
  let server: RunningServer | undefined;
  const mesh = new Mesh(dir, role.index, role.count, {
    onSteer(d) {
      const ls = server?.core.transports?.listening[d.sockIndex];
      if (!server || !ls) return;
      const info: RecvInfo = {
        src: { proto: 'udp', ip: d.srcIp, port: d.srcPort, af: d.af },
        dst: ls.endpoint,
        socket: ls,
      };
      server.core.receive(d.data, info, true);
    },
    onEvent(topic, payload, from) {
      return handlers.get(topic)?.(payload, from);
    },
    onSnapshot(topic) {
      return snapshots.get(topic)?.() ?? [];
    },
    onRequest(topic, payload, from) {
      return services.get(topic)?.(payload, from);
    },
    onError(msg) {
      server?.core.log.once(-1, msg, `ERROR: ${msg}`);
    },
  });
  const bus: ClusterBus = {
    publish: (topic, payload) => mesh.broadcastApplied(topic, payload, PUBLISH_WAIT_MS),
    on: (topic, fn) => void handlers.set(topic, fn),
    onSnapshot: (topic, fn) => void snapshots.set(topic, fn),
    request: (to, topic, payload, ms) => mesh.request(to, topic, payload, ms),
    serve: (topic, fn) => void services.set(topic, fn),
  };
  setClusterBus(bus);
  try {
    await mesh.listen();
    server = await startServer(args, { noMgmt: true });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    await mesh.close();
    process.exit(1); // the IPC channel would keep this process alive
  }
  const s = server;
  const { core, config } = s;
  core.log.processNo = role.index + 1;
  // user= / group=: the sockets are the attendant's; drop privileges here too
  try {
    if (config.group !== undefined) process.setgid?.(config.group);
    if (config.user !== undefined) process.setuid?.(config.user);
  } catch (e) {
    process.stderr.write(
      `ERROR: cannot change to user/group ${config.user ?? ''}/${config.group ?? ''}: ${(e as Error).message}\n`,
    );
    await s.stop();
    await mesh.close();
    process.exit(1);
  }
  const socks = core.transports?.listening ?? [];
  const steered = { requests: 0, replies: 0 };
  core.steer = (msg, data, info) => {
    let owner: number | undefined;
    try {
      owner = ownerOf(msg, role.count);
    } catch {
      return false; // no usable Call-ID: the pipeline here answers / drops it
    }
    if (owner === undefined || owner === role.index) return false;
    if (msg.isRequest) steered.requests++;
    else steered.replies++;
    mesh.steer(owner, {
      sockIndex: socks.indexOf(info.socket),
      srcIp: info.src.ip,
      srcPort: info.src.port,
      af: info.src.af === 6 ? 6 : 4,
      data,
    });
    return true;
  };
  core.addStats('cluster', () => ({
    steered_requests: steered.requests,
    steered_replies: steered.replies,
    ...mesh.stats,
  }));
  // a restarted worker takes the replicated state from a peer
  if (process.env.SER_WORKER_RESTART === '1') for (const t of snapshots.keys()) mesh.requestSnapshot(t);

  const dispatcher = new Dispatcher(core, { modules: s.loaded, allowKill: () => false });
  process.on('message', (m: ToWorker) => {
    if (m.t === 'peers') void mesh.connectAll().then(() => send({ t: 'meshed', index: role.index }));
    else if (m.t === 'cmd')
      void dispatcher.run(m.name, m.args).then((reply) => send({ t: 'reply', id: m.id, reply }));
    else if (m.t === 'stats') send({ t: 'stats', id: m.id, groups: dispatcher.readStats() });
    else if (m.t === 'which') send({ t: 'which', id: m.id, names: dispatcher.list().map((e) => e.name) });
  });
  send({
    t: 'ready',
    index: role.index,
    listening: socks.map((l) => ({ proto: l.proto, ip: l.ip, port: l.port, address: l.address })),
    aliases: core.myself.entries().map((e) => `${e.host}:${e.port === 0 ? '*' : e.port}`),
  });
  core.log.info(`worker ${role.index} started, pid ${process.pid}`);
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      core.log.info(`worker ${role.index}: ${why}, exiting`);
      void s
        .stop()
        .then(() => mesh.close())
        .finally(() => {
          resolve(0);
          // the IPC channel would keep this process alive
          setImmediate(() => process.exit(0));
        });
    };
    process.on('SIGTERM', () => stop('signal SIGTERM received'));
    process.on('SIGINT', () => {
      /* the attendant decides: Ctrl-C reaches the whole process group */
    });
    // the attendant is gone: nobody would restart us or forward mgmt
    process.on('disconnect', () => stop('attendant gone'));
  });
}
