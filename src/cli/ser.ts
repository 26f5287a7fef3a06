#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * `ser`: the command line of SER 0.9 (003 §6.3). `ser -c -f FILE` checks a
 * config and exits 0 or 1; `-V` prints the version; `-h` the usage.
 *
 * The first line caps V8's semi-spaces at 4 MB (Node's default lets them grow to 16 MB
 * each): 100,000 registered contacts then take 97 MB of RSS instead of 116 MB, for about
 * 2–3 % more CPU under REGISTER load, from more and shorter young-generation GCs
 * (docs/performance.md). Workers inherit it. Started as `node dist/src/cli/ser.js`, pass
 * the flag to node yourself (npm start does).
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runServer } from '../core/server.js';
import { modules } from '../modules/index.js';
import { formatErrors, loadConfig } from '../script/load.js';
import { createRegistry } from '../script/registry.js';

export interface CliListen {
  readonly proto: string | undefined;
  readonly host: string;
  port: number | undefined;
  /** true when the port was written in the -l value itself */
  readonly explicitPort: boolean;
}

export interface SerArgs {
  /** -f (default ./ser.cfg) */
  configFile: string;
  /** -c: check the config and exit */
  check: boolean;
  /** -d, repeatable: each one raises the level */
  debug: number;
  /** -D: stay in the foreground (fork=no) */
  foreground: boolean;
  /** -E: log to stderr */
  logStderr: boolean;
  version: boolean;
  help: boolean;
  /** -l, with -p applied to the last -l and all later ones without their own -p */
  listen: CliListen[];
  /** -p when no -l follows or precedes it: the default port */
  port: number | undefined;
  children: number | undefined;
  pidFile: string | undefined;
  user: string | undefined;
  group: string | undefined;
  workdir: string | undefined;
  chroot: string | undefined;
  maxBuffer: number | undefined;
  /** -m, megabytes */
  sharedMemory: number | undefined;
  fifo: string | undefined;
  /** -r */
  dns: boolean;
  /** -R */
  revDns: boolean;
  /** -v */
  checkVia: boolean;
}

export class CliError extends Error {
  override name = 'CliError';
}

const WITH_VALUE = new Set(['f', 'l', 'p', 'n', 'P', 'u', 'g', 'w', 't', 'b', 'm', 'i']);
const FLAGS = new Set(['c', 'd', 'D', 'E', 'V', 'h', 'r', 'R', 'v']);

function intArg(opt: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new CliError(`option -${opt} expects a number from ${min} to ${max}, not '${v}'`);
  }
  return Number(v);
}

function parseListen(v: string): CliListen {
  let s = v;
  let proto: string | undefined;
  const m = /^(udp|tcp|tls|sctp|ws|wss|any):(.*)$/i.exec(s);
  if (m) {
    proto = m[1]!.toLowerCase();
    s = m[2]!;
  }
  let host = s;
  let port: number | undefined;
  const b = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (b) {
    host = b[1]!;
    if (b[2]) port = intArg('l', b[2], 1, 65535);
  } else if ((s.match(/:/g) ?? []).length === 1) {
    const [h, p] = s.split(':') as [string, string];
    host = h;
    port = intArg('l', p, 1, 65535);
  }
  if (host === '') throw new CliError(`option -l expects an address, not '${v}'`);
  return { proto, host, port, explicitPort: port !== undefined };
}

/** Parse ser's command line (getopt style: `-dddd`, `-DE`, `-ffile`, `-f file`). */
export function parseSerArgs(argv: readonly string[]): SerArgs {
  const a: SerArgs = {
    configFile: './ser.cfg',
    check: false,
    debug: 0,
    foreground: false,
    logStderr: false,
    version: false,
    help: false,
    listen: [],
    port: undefined,
    children: undefined,
    pidFile: undefined,
    user: undefined,
    group: undefined,
    workdir: undefined,
    chroot: undefined,
    maxBuffer: undefined,
    sharedMemory: undefined,
    fifo: undefined,
    dns: false,
    revDns: false,
    checkVia: false,
  };
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i++]!;
    if (arg === '--') break;
    if (!arg.startsWith('-') || arg === '-') throw new CliError(`unexpected argument '${arg}'`);
    for (let k = 1; k < arg.length; k++) {
      const o = arg[k]!;
      if (FLAGS.has(o)) {
        switch (o) {
          case 'c':
            a.check = true;
            break;
          case 'd':
            a.debug++;
            break;
          case 'D':
            a.foreground = true;
            break;
          case 'E':
            a.logStderr = true;
            break;
          case 'V':
            a.version = true;
            break;
          case 'h':
            a.help = true;
            break;
          case 'r':
            a.dns = true;
            break;
          case 'R':
            a.revDns = true;
            break;
          case 'v':
            a.checkVia = true;
            break;
        }
        continue;
      }
      if (!WITH_VALUE.has(o)) throw new CliError(`invalid option -- '${o}'`);
      let v: string;
      if (k + 1 < arg.length) v = arg.slice(k + 1);
      else if (i < argv.length) v = argv[i++]!;
      else throw new CliError(`option requires an argument -- '${o}'`);
      k = arg.length;
      switch (o) {
        case 'f':
          a.configFile = v;
          break;
        case 'l':
          a.listen.push(parseListen(v));
          if (!a.listen[a.listen.length - 1]!.explicitPort && a.port !== undefined)
            a.listen[a.listen.length - 1]!.port = a.port;
          break;
        case 'p': {
          const p = intArg('p', v, 1, 65535);
          a.port = p;
          const last = a.listen[a.listen.length - 1];
          if (last && !last.explicitPort) last.port = p;
          break;
        }
        case 'n':
          a.children = intArg('n', v, 1, 1024);
          break;
        case 'P':
          a.pidFile = v;
          break;
        case 'u':
          a.user = v;
          break;
        case 'g':
          a.group = v;
          break;
        case 'w':
          a.workdir = v;
          break;
        case 't':
          a.chroot = v;
          break;
        case 'b':
          a.maxBuffer = intArg('b', v, 1, 2 ** 31);
          break;
        case 'm':
          a.sharedMemory = intArg('m', v, 1, 1 << 20);
          break;
        case 'i':
          a.fifo = v;
          break;
      }
    }
  }
  if (i < argv.length) throw new CliError(`unexpected argument '${argv[i]}'`);
  return a;
}

export function version(): string {
  let v = 'unknown';
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    v = pkg.version ?? v;
  } catch {
    /* not beside its package.json */
  }
  return `version: sip-express-router ${v} (SER 0.9 / OpenSER 1.1 script language, node ${process.versions.node})`;
}

export const USAGE = `Usage: ser -l address [-l address ...] [options]
Options:
    -f file      Configuration file (default ./ser.cfg)
    -c           Check configuration file for errors and exit
    -p port      Listen on the specified port (default: 5060);
                 applies to the last -l and to all following -l without their own -p
    -l address   Listen on the specified address ([proto:]host[:port]); repeatable;
                 default: all IPv4 interfaces
    -n processes Number of child processes to fork per interface (default: 8)
    -r           Use dns to check if it is necessary to add a "received=" field to a via
    -R           Same as -r but use reverse dns
    -v           Turn on "via:" host checking when forwarding replies
    -d           Debugging mode (multiple -d increase the level)
    -D           Do not fork into daemon mode
    -E           Log to stderr
    -V           Version number
    -h           This help message
    -b nr        Maximum receive buffer size which will not be exceeded by
                 the auto-probing procedure even if the OS allows
    -m nr        Size of shared memory allocated in Megabytes
    -w dir       Change the working directory to "dir" (default "/")
    -t dir       Chroot to "dir"
    -u uid       Change uid
    -g gid       Change gid
    -P file      Create a pid file
    -i fifo_path Create a fifo (useful for monitoring ser)`;

export async function main(argv: readonly string[]): Promise<number> {
  let args: SerArgs;
  try {
    args = parseSerArgs(argv);
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    process.stderr.write(`ser: ${e.message}\nTry 'ser -h' for more information.\n`);
    return 1;
  }
  if (args.help) {
    process.stdout.write(`${version()}\n${USAGE}\n`);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (args.check) {
    const r = await loadConfig({ path: args.configFile }, { registry: createRegistry(modules) });
    if (r.errors.length > 0) {
      process.stderr.write(
        `${formatErrors(r.errors)}\n${r.errors.length} error${r.errors.length === 1 ? '' : 's'} in ${args.configFile}\n`,
      );
      return 1;
    }
    process.stdout.write(`config file ok, exiting...\n`);
    return 0;
  }
  return runServer(args);
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return (
      realpathSync(entry) === fileURLToPath(import.meta.url) || pathToFileURL(entry).href === import.meta.url
    );
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`ser: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
