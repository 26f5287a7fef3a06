/**
 * The management command set shared by the FIFO server and JSON-RPC: SER's core FIFO
 * commands (ps, which, version, uptime, print, arg, pwd, kill) plus every `mgmt` entry
 * of every loaded module (sl_stats, t_stats, ul_* …), looked up by name at call time.
 */
import type { Core } from '../core/core.js';
import type { MgmtCommand, MgmtReply, ModuleDef } from '../core/module.js';
import { SERVER_HDR, VERSION } from '../core/version.js';
import { ctime } from './format.js';

/** One line of `ps`: SER's `<process_no> <pid> <description>`. */
export interface ProcessInfo {
  readonly no: number;
  readonly pid: number;
  readonly desc: string;
}

/** Where `ps` gets its table; the multi-process model replaces the default. */
export type ProcessTable = () => ProcessInfo[];

export interface DispatchEntry {
  readonly name: string;
  /** 'core' or the module's name */
  readonly module: string;
  readonly help: string;
  readonly run: (args: string[]) => MgmtReply | Promise<MgmtReply>;
}

export interface DispatcherOptions {
  /** loaded modules with their states, in load order */
  readonly modules?: readonly (readonly [ModuleDef<unknown>, unknown])[];
  /** command-line arguments the server was started with (`arg`); default process.argv */
  readonly argv?: readonly string[];
  /** roles served by the main process (fifo server, rpc server) for the default `ps` */
  readonly roles?: () => string[];
  /** may `kill` send SIGTERM to this process (only when a handler will stop it cleanly) */
  readonly allowKill?: () => boolean;
}

/** Reply helpers with SER's status lines. */
export const ok = (body?: string, data?: unknown): MgmtReply => ({ code: 200, reason: 'ok', body, data });
export const fail = (code: number, reason: string): MgmtReply => ({ code, reason });

/** How long a command may take before the caller gets `500 command timed out`. */
export const COMMAND_TIMEOUT_MS = 30_000;

/** Command names SER accepts: the FIFO line is `:name:reply`. */
export const COMMAND_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

export class Dispatcher {
  private readonly core: Core;
  private readonly coreCmds = new Map<string, DispatchEntry>();
  private readonly modules: readonly (readonly [ModuleDef<unknown>, unknown])[];
  private readonly extra = new Map<string, DispatchEntry>();
  private readonly argv: readonly string[];
  private processTable: ProcessTable;

  constructor(core: Core, opts: DispatcherOptions = {}) {
    this.core = core;
    this.modules = opts.modules ?? [];
    this.argv = opts.argv ?? process.argv;
    this.processTable = () => defaultProcessTable(core, opts.roles?.() ?? []);
    const add = (name: string, help: string, run: DispatchEntry['run']) =>
      this.coreCmds.set(name, { name, module: 'core', help, run });
    // the order of SER's `which` (seed 003 §4.2), then the rest of Table 6-2 and ours
    add('ps', 'running processes: <process_no> <pid> <description>', () => {
      const ps = this.processTable();
      return ok(ps.map((p) => `${p.no} ${p.pid} ${p.desc}`).join('\n'), ps);
    });
    add('which', 'list of available commands', () => {
      const names = this.list().map((e) => e.name);
      return ok(
        names.join('\n'),
        this.list().map((e) => ({ name: e.name, module: e.module, help: e.help })),
      );
    });
    add('version', 'server version', () =>
      ok(`Server: ${SERVER_HDR}`, { server: SERVER_HDR, version: VERSION, node: process.version }),
    );
    add('uptime', 'Now / Up Since / Up time', () => {
      const now = new Date();
      const since = this.core.startedAt;
      const up = Math.floor((now.getTime() - since.getTime()) / 1000);
      return ok(`Now: ${ctime(now)}\nUp Since: ${ctime(since)}\nUp time: ${up} [sec]`, {
        now: now.toISOString(),
        up_since: since.toISOString(),
        uptime: up,
      });
    });
    add('print', 'echo the parameter lines back (a test of the interface)', (args) =>
      ok(args.join('\n'), args),
    );
    add('arg', 'command-line arguments ser was started with', () => {
      const a = this.argv.slice(1);
      return ok(a.join('\n'), a);
    });
    add('pwd', 'working directory', () => ok(process.cwd(), process.cwd()));
    add('kill', 'stop the server (SIGTERM to itself, as `kill <pid>` would)', () => {
      if (!(opts.allowKill?.() ?? process.listenerCount('SIGTERM') > 0)) {
        return fail(500, 'kill refused: this server has no SIGTERM handler (embedded)');
      }
      // after the reply is on its way
      setTimeout(() => process.kill(process.pid, 'SIGTERM'), 50).unref();
      return ok('shutting down', { pid: process.pid });
    });
    add('get_statistics', 'counters: `get_statistics [all | group | group:name …]`', (args) =>
      this.statistics(args),
    );
    add('help', 'help text of a command: `help <command>`', (args) => {
      const e = args[0] ? this.find(args[0]) : undefined;
      if (!e) return fail(404, `command '${args[0] ?? ''}' not available`);
      return ok(`${e.name} (${e.module}): ${e.help}`, { name: e.name, module: e.module, help: e.help });
    });
  }

  /** Replace the `ps` source (multi-process model). */
  setProcessTable(fn: ProcessTable): void {
    this.processTable = fn;
  }

  /** Register a command that is neither core nor a module's (e.g. from an embedding program). */
  register(name: string, module: string, cmd: MgmtCommand<undefined>): void {
    this.extra.set(name, { name, module, help: cmd.help, run: (args) => cmd.run(undefined, args) });
  }

  /** Every command: core first, then extras, then module commands in load order. */
  list(): DispatchEntry[] {
    const out = [...this.coreCmds.values(), ...this.extra.values()];
    const seen = new Set(out.map((e) => e.name));
    for (const [def, state] of this.modules) {
      for (const [name, cmd] of Object.entries(def.mgmt ?? {})) {
        if (seen.has(name)) continue;
        seen.add(name);
        out.push({ name, module: def.name, help: cmd.help, run: (args) => cmd.run(state, args) });
      }
    }
    return out;
  }

  find(name: string): DispatchEntry | undefined {
    const c = this.coreCmds.get(name) ?? this.extra.get(name);
    if (c) return c;
    for (const [def, state] of this.modules) {
      const cmd = def.mgmt?.[name];
      if (cmd) return { name, module: def.name, help: cmd.help, run: (args) => cmd.run(state, args) };
    }
    return undefined;
  }

  /**
   * Run a command. Never throws: an unknown command is SER's `500 command 'x' not
   * available`, a command that throws or takes too long is a 500 with the reason.
   */
  async run(name: string, args: string[]): Promise<MgmtReply> {
    const e = this.find(name);
    if (!e) return fail(500, `command '${name}' not available`);
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([
        Promise.resolve().then(() => e.run(args)),
        new Promise<MgmtReply>((res) => {
          timer = setTimeout(() => res(fail(500, `command '${name}' timed out`)), COMMAND_TIMEOUT_MS);
          timer.unref();
        }),
      ]);
      if (!r || typeof r.code !== 'number') return fail(500, `command '${name}' returned no status`);
      return r;
    } catch (err) {
      this.core.log.err(`ERROR: mgmt: command '${name}' failed: ${(err as Error)?.stack ?? err}`);
      return fail(500, `command '${name}' failed: ${(err as Error)?.message ?? err}`);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** Every statistics group as { group: { name: value } }. */
  readStats(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [g, read] of this.core.statGroups) {
      try {
        out[g] = read();
      } catch (e) {
        this.core.log.err(`ERROR: mgmt: statistics group '${g}' failed: ${(e as Error).message}`);
      }
    }
    return out;
  }

  private statistics(args: string[]): MgmtReply {
    return statisticsReply(this.readStats(), args);
  }
}

/**
 * `ps` of this build: one process does what SER's attendant, receivers, timer and FIFO
 * server did. One line, SER's format, naming everything that runs in it.
 */
export function defaultProcessTable(core: Core, roles: string[]): ProcessInfo[] {
  const parts = ['attendant'];
  const socks = core.transports?.listening ?? [];
  socks.forEach((s, i) => {
    parts.push(`receiver sock=${i} @ ${s.ip}::${s.port} (${s.proto})`);
  });
  parts.push('timer', ...roles);
  return [{ no: 0, pid: process.pid, desc: parts.join(', ') }];
}

/**
 * get_statistics: every counter, or the named groups (`tm`) and counters (`tm:current`), as
 * `group:name = value` lines; the attendant of several workers answers it from their sums.
 */
export function statisticsReply(all: Record<string, Record<string, number>>, args: string[]): MgmtReply {
  const wanted = args.filter((a) => a !== '' && a !== 'all');
  const lines: string[] = [];
  const data: Record<string, Record<string, number>> = {};
  const put = (g: string, k: string, v: number) => {
    lines.push(`${g}:${k} = ${v}`);
    data[g] ??= {};
    data[g][k] = v;
  };
  if (wanted.length === 0) {
    for (const [g, s] of Object.entries(all)) for (const [k, v] of Object.entries(s)) put(g, k, v);
  } else {
    for (const w of wanted) {
      const [g, k] = w.split(':', 2);
      const s = all[g];
      if (!s) return fail(404, `statistics group '${g}' not found`);
      if (k === undefined || k === '') for (const [n, v] of Object.entries(s)) put(g, n, v);
      else if (k in s) put(g, k, s[k]);
      else return fail(404, `statistic '${w}' not found`);
    }
  }
  return ok(lines.join('\n'), data);
}
