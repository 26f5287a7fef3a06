/**
 * The core's settings: the script's global options, with the command line filling
 * in what the script leaves unset ("command-line parameters may be overridden by
 * configuration file options", seed 003 §6.3), and SER's defaults for the rest.
 */
import { networkInterfaces } from 'node:os';
import type { CliListen, SerArgs } from '../cli/ser.js';
import type { ListenAddress } from '../net/transports.js';
import type { ServerConfig } from '../script/checker.js';
import { findOption, MAX_LEN } from '../script/options.js';

export interface CoreConfig {
  debug: number;
  /** fork=yes: run the configured children; daemonizing is separate (see `daemonize`) */
  fork: boolean;
  /** detach from the terminal (fork=yes without -D) */
  daemonize: boolean;
  logStderr: boolean;
  logFacility: string;
  children: number;
  listen: ListenAddress[];
  aliases: { host: string; port: number }[];
  dns: boolean;
  revDns: boolean;
  checkVia: boolean;
  sipWarning: boolean;
  /** release_idle_memory: core/heap-release.ts */
  releaseIdleMemory: boolean;
  serverSignature: boolean;
  /** OpenSER's server_header: the whole Server header text */
  serverHeader: string | undefined;
  replyToVia: boolean;
  mhomed: boolean;
  maxBuffer: number;
  /** SER's BUF_SIZE, the value of `max_len` */
  maxLen: number;
  advertisedAddress: string | undefined;
  advertisedPort: number | undefined;
  disableTcp: boolean;
  tcpConnectionLifetime: number;
  tcpMaxConnections: number;
  tcpConnectTimeout: number;
  fifo: string | undefined;
  fifoMode: number;
  pidFile: string | undefined;
  user: string | undefined;
  group: string | undefined;
  workdir: string | undefined;
  chroot: string | undefined;
}

function opt<T>(server: ServerConfig, name: string): T {
  if (server.options.has(name)) return server.options.get(name) as T;
  return findOption(name)?.default as T;
}

/** Every IPv4 interface address: SER's default when no listen= is given (seed 003 -l). */
function allIpv4(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4') out.push(a.address);
  }
  return out.length > 0 ? out : ['127.0.0.1'];
}

export function coreConfig(server: ServerConfig, cli?: SerArgs): CoreConfig {
  const has = (n: string) => server.options.has(n);
  const port = has('port') ? opt<number>(server, 'port') : (cli?.port ?? 5060);
  const disableTcp = opt<boolean>(server, 'disable_tcp');
  const protos = (p: string | undefined): ('udp' | 'tcp')[] => {
    if (p === 'udp' || p === 'tcp') return [p];
    return disableTcp ? ['udp'] : ['udp', 'tcp'];
  };
  const listen: ListenAddress[] = [];
  const add = (proto: string | undefined, host: string, p: number | undefined) => {
    for (const pr of protos(proto)) listen.push({ proto: pr, host, port: p ?? port });
  };
  // listen= from the script wins over -l (config options take precedence)
  if (server.listen.length > 0) for (const l of server.listen) add(l.proto, l.host, l.port);
  else if (cli && cli.listen.length > 0)
    for (const l of cli.listen as CliListen[]) add(l.proto, l.host, l.port);
  else for (const ip of allIpv4()) add(undefined, ip, port);

  const fork = has('fork') ? opt<boolean>(server, 'fork') : !(cli?.foreground ?? false);
  return {
    debug: has('debug') ? opt<number>(server, 'debug') : (cli?.debug ?? 0),
    fork,
    daemonize: fork && !(cli?.foreground ?? false),
    logStderr: has('log_stderror') ? opt<boolean>(server, 'log_stderror') : (cli?.logStderr ?? false),
    logFacility: opt<string>(server, 'log_facility') ?? 'LOG_DAEMON',
    children: has('children') ? opt<number>(server, 'children') : (cli?.children ?? 8),
    listen,
    aliases: server.aliases.map((a) => ({ host: a.host, port: a.port ?? 0 })),
    dns: has('dns') ? opt<boolean>(server, 'dns') : (cli?.dns ?? false),
    revDns: has('rev_dns') ? opt<boolean>(server, 'rev_dns') : (cli?.revDns ?? false),
    checkVia: has('check_via') ? opt<boolean>(server, 'check_via') : (cli?.checkVia ?? false),
    sipWarning: opt<boolean>(server, 'sip_warning'),
    releaseIdleMemory: opt<boolean>(server, 'release_idle_memory'),
    serverSignature: opt<boolean>(server, 'server_signature'),
    serverHeader: opt<string | undefined>(server, 'server_header'),
    replyToVia: opt<boolean>(server, 'reply_to_via'),
    mhomed: opt<boolean>(server, 'mhomed'),
    maxBuffer: has('maxbuffer')
      ? opt<number>(server, 'maxbuffer')
      : (cli?.maxBuffer ?? opt<number>(server, 'maxbuffer')),
    maxLen: MAX_LEN,
    advertisedAddress: opt<string | undefined>(server, 'advertised_address'),
    advertisedPort: opt<number | undefined>(server, 'advertised_port'),
    disableTcp,
    tcpConnectionLifetime: opt<number>(server, 'tcp_connection_lifetime'),
    tcpMaxConnections: opt<number>(server, 'tcp_max_connections'),
    tcpConnectTimeout: opt<number>(server, 'tcp_connect_timeout'),
    fifo: opt<string | undefined>(server, 'fifo') ?? cli?.fifo,
    fifoMode: opt<number>(server, 'fifo_mode'),
    pidFile: cli?.pidFile,
    user: opt<string | undefined>(server, 'user') ?? cli?.user,
    group: opt<string | undefined>(server, 'group') ?? cli?.group,
    workdir: opt<string | undefined>(server, 'workdir') ?? cli?.workdir,
    chroot: opt<string | undefined>(server, 'chroot') ?? cli?.chroot,
  };
}
