/**
 * Start-up of a server from a ser.cfg: load and check the script, apply the options,
 * initialise the modules in load order, listen, and stop cleanly on SIGTERM/SIGINT.
 */
import { runAttendant } from './cluster.js';
import { clusterRole } from './cluster-role.js';
import { runWorker } from './cluster-worker.js';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { SerArgs } from '../cli/ser.js';
import { type Mgmt, startMgmt } from '../mgmt/index.js';
import { modules } from '../modules/index.js';
import type { CompiledScript } from '../script/compiler.js';
import { formatErrors, loadConfig } from '../script/load.js';
import { createRegistry } from '../script/registry.js';
import { type CoreConfig, coreConfig } from './config.js';
import { Core } from './core.js';
import { type LogSink, StderrSink, SyslogSink, syslogFacility } from './log.js';
import { untilSignal } from './signals.js';
import type { ModuleDef, ParamValue } from './module.js';
import type { Clock } from './timer.js';

export interface RunningServer {
  core: Core;
  config: CoreConfig;
  script: CompiledScript;
  /** module name → state returned by its init */
  states: Map<string, unknown>;
  /** FIFO and JSON-RPC servers (src/mgmt) */
  mgmt: Mgmt | undefined;
  /** initialised modules with their states, in load order */
  loaded: readonly (readonly [ModuleDef<unknown>, unknown])[];
  stop(): Promise<void>;
}

export class StartupError extends Error {
  override name = 'StartupError';
}

/** Parameters of a module: its defaults overlaid with the script's modparams. */
function moduleParams(
  def: ModuleDef<unknown>,
  set: Map<string, ParamValue | ParamValue[]> | undefined,
): Record<string, ParamValue | ParamValue[]> {
  const out: Record<string, ParamValue | ParamValue[]> = {};
  for (const [k, spec] of Object.entries(def.params ?? {})) {
    if (spec.default !== undefined) out[k] = spec.multi ? [spec.default] : spec.default;
    else if (spec.multi) out[k] = [];
  }
  for (const [k, v] of set ?? []) out[k] = v;
  return out;
}

/** A loaded and checked script with its core options (before any module init). */
export interface PreparedConfig {
  readonly r: Awaited<ReturnType<typeof loadConfig>>;
  readonly config: CoreConfig;
  /** the core, once startServer made it (script hooks ask it for `myself`) */
  readonly holder: { core: Core | undefined };
}

/** Load and check the script; throws StartupError with every problem found. */
export async function prepareServer(args: SerArgs, configText?: string): Promise<PreparedConfig> {
  const holder: { core: Core | undefined } = { core: undefined };
  const source =
    configText !== undefined ? { text: configText, file: args.configFile } : { path: args.configFile };
  const r = await loadConfig(source, {
    registry: createRegistry(modules),
    hooks: {
      isMyself: (host, port) => holder.core?.isMyself(host, port ?? 5060) ?? false,
      log: (m) => holder.core?.log.err(m),
    },
  });
  if (r.errors.length > 0 || !r.script || !r.config) {
    throw new StartupError(`${formatErrors(r.errors)}\n${r.errors.length} error(s) in ${args.configFile}`);
  }
  return { r, config: coreConfig(r.config, args), holder };
}

/** Load, initialise and start a server; throws StartupError with every problem found. */
export async function startServer(
  args: SerArgs,
  opts: {
    logSink?: LogSink;
    configText?: string;
    /** the script, already loaded by prepareServer */
    prepared?: PreparedConfig;
    /** multi-process workers: the attendant runs the FIFO / JSON-RPC servers */
    noMgmt?: boolean;
    /** the core's clock (bench/call-replay.ts moves time by hand) */
    clock?: Clock;
  } = {},
): Promise<RunningServer> {
  const prep = opts.prepared ?? (await prepareServer(args, opts.configText));
  const { r, config } = prep;
  if (!r.script || !r.config) throw new StartupError('no script');
  let core: Core | undefined;
  let sink = opts.logSink;
  if (!sink) {
    if (config.logStderr) sink = new StderrSink();
    else {
      const s = new SyslogSink('ser', syslogFacility(config.logFacility));
      sink = s.available ? s : new StderrSink();
    }
  }
  core = new Core(config, { logSink: sink, clock: opts.clock });
  prep.holder.core = core;
  const states = new Map<string, unknown>();
  const inited: [ModuleDef<unknown>, unknown][] = [];
  let mgmt: Mgmt | undefined;
  try {
    for (const m of r.config.modules) {
      const def = modules[m.name] as ModuleDef<unknown> | undefined;
      if (!def) continue;
      const params = moduleParams(def, r.config.modparams.get(m.name) ?? r.config.modparams.get(def.name));
      let state: unknown;
      try {
        state = await def.init?.(core, params);
      } catch (e) {
        throw new StartupError(`ERROR: init of module '${m.name}' failed: ${(e as Error).message}`);
      }
      states.set(m.name, state);
      inited.push([def, state]);
    }
    r.script.setModuleStates(states);
    core.script = r.script;
    try {
      await core.start();
    } catch (e) {
      throw new StartupError(`ERROR: cannot listen: ${(e as Error).message}`);
    }
    try {
      if (!opts.noMgmt) mgmt = await startMgmt({ core, modules: inited, options: r.config.options });
    } catch (e) {
      throw new StartupError(`ERROR: fifo/rpc server: ${(e as Error).message}`);
    }
  } catch (e) {
    for (const [def, st] of inited.reverse()) await Promise.resolve(def.destroy?.(st)).catch(() => {});
    await core.stop().catch(() => {});
    throw e;
  }
  const c = core;
  return {
    core: c,
    config,
    script: r.script,
    states,
    mgmt,
    loaded: [...inited],
    async stop() {
      await mgmt?.stop();
      for (const [def, st] of inited.reverse()) {
        try {
          await def.destroy?.(st);
        } catch (e) {
          c.log.err(`destroy of module '${def.name}' failed: ${(e as Error).message}`);
        }
      }
      await c.stop();
    },
  };
}

/** SER's start-up report: the sockets and aliases. */
function listeningReport(s: RunningServer): string {
  const lines = ['Listening on'];
  for (const l of s.core.transports?.listening ?? []) {
    lines.push(`             ${l.proto}: ${l.address} [${l.ip}]:${l.port}`);
  }
  const aliases = s.core.myself.entries().map((e) => `${e.host}:${e.port === 0 ? '*' : e.port}`);
  lines.push(`Aliases: ${aliases.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** `ser` without -c: run until a signal; returns the exit code. */
export async function runServer(args: SerArgs): Promise<number> {
  // multi-process model (docs/process-model.md): a forked worker, or the attendant
  if (clusterRole()) return runWorker(args);
  let server: RunningServer;
  try {
    const prepared = await prepareServer(args);
    if (prepared.config.fork && prepared.config.children > 1) return await runAttendant(prepared);
    server = await startServer(args, { prepared });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
  const { core, config } = server;
  if (config.daemonize && process.env.SER_DAEMONIZED !== '1') {
    // detach: the same command in the foreground, in a new session, and this process exits
    await server.stop();
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
  if (config.pidFile) writeFileSync(config.pidFile, `${process.pid}\n`);
  // user= / group= (-u / -g): drop privileges once the sockets are bound, group first
  try {
    if (config.group !== undefined) process.setgid?.(config.group);
    if (config.user !== undefined) process.setuid?.(config.user);
  } catch (e) {
    process.stderr.write(
      `ERROR: cannot change to user/group ${config.user ?? ''}/${config.group ?? ''}: ${(e as Error).message}\n`,
    );
    await server.stop();
    return 1;
  }
  process.stderr.write(listeningReport(server));
  if (!config.fork) process.stderr.write('WARNING: no fork mode\n');
  core.log.info(`ser started, pid ${process.pid}`);
  return await untilSignal(core.log, 'exiting', () => server.stop(), config.pidFile);
}
