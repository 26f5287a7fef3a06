/**
 * The core global options of ser.cfg (`name=value` at the top of the file):
 * SER 0.8.11/0.9 (admin guide §6.1, cfg.lex) and the OpenSER 1.1 ones the
 * seed scripts use. Synonyms map to one canonical name.
 */
import { DEFAULT_MAX_BUFFER } from '../net/transports.js';

export type OptionType =
  /** a number; yes/no count as 1/0 (SER lexes them as numbers) */
  | 'int'
  /** yes/no/on/off/true/false/enable/disable or a number */
  | 'bool'
  /** a quoted string; a bare word is accepted as well */
  | 'string'
  /** an address or a name: IPv4, IPv6, hostname, quoted or bare */
  | 'host'
  /** `[proto:]host[:port]`, for listen= and alias= */
  | 'addr';

export type OptionDefault = number | boolean | string | undefined;

export interface OptionSpec {
  readonly name: string;
  readonly synonyms?: readonly string[];
  readonly type: OptionType;
  readonly default: OptionDefault;
  /** repeated settings accumulate into a list */
  readonly multi?: boolean;
  /** the command-line switch that sets the same thing */
  readonly cli?: string;
  readonly description: string;
  /** valid range for numbers */
  readonly min?: number;
  readonly max?: number;
}

/** BUF_SIZE of SER 0.9: the value of `max_len` (003 says 3040 for 0.8.11; 0.9 uses 65535). */
export const MAX_LEN = 65535;

export const OPTIONS: readonly OptionSpec[] = [
  // ---- logging and process model
  {
    name: 'debug',
    type: 'int',
    default: 0,
    cli: '-d',
    min: -3,
    max: 9,
    description: 'log level 0–9; higher is more verbose',
  },
  { name: 'fork', type: 'bool', default: true, cli: '-D', description: 'spawn children and run as a daemon' },
  {
    name: 'log_stderror',
    type: 'bool',
    default: false,
    cli: '-E',
    description: 'log to stderr instead of syslog',
  },
  { name: 'log_facility', type: 'string', default: 'LOG_DAEMON', description: 'syslog facility' },
  { name: 'log_name', type: 'string', default: undefined, description: 'syslog ident (OpenSER)' },
  {
    name: 'memlog',
    synonyms: ['mem_log'],
    type: 'int',
    default: 3,
    description: 'log level of the final memory report (L_DBG)',
  },
  {
    name: 'release_idle_memory',
    type: 'bool',
    default: false,
    description:
      'after a burst of traffic, give the grown V8 young generation back once it is quiet (not in SER)',
  },
  {
    name: 'children',
    type: 'int',
    default: 8,
    cli: '-n',
    min: 1,
    max: 1024,
    description: 'worker processes per listening socket',
  },
  {
    name: 'user',
    synonyms: ['uid'],
    type: 'string',
    default: undefined,
    cli: '-u',
    description: 'user the server runs as',
  },
  {
    name: 'group',
    synonyms: ['gid'],
    type: 'string',
    default: undefined,
    cli: '-g',
    description: 'group the server runs as',
  },
  {
    name: 'chroot',
    type: 'string',
    default: undefined,
    cli: '-t',
    description: 'chroot into this directory after reading the config',
  },
  {
    name: 'workdir',
    synonyms: ['wdir'],
    type: 'string',
    default: undefined,
    cli: '-w',
    description: 'working directory (core files)',
  },
  {
    name: 'mpath',
    type: 'string',
    default: undefined,
    description: 'module directory for relative loadmodule paths (OpenSER)',
  },
  {
    name: 'disable_core_dump',
    type: 'bool',
    default: false,
    description: 'do not raise the core-dump limit (OpenSER)',
  },
  {
    name: 'open_files_limit',
    type: 'int',
    default: undefined,
    description: 'raise the open-files limit (OpenSER)',
  },
  // ---- sockets
  {
    name: 'listen',
    type: 'addr',
    default: undefined,
    multi: true,
    cli: '-l',
    description: 'address to listen on: [proto:]host[:port]; repeatable',
  },
  {
    name: 'alias',
    type: 'addr',
    default: undefined,
    multi: true,
    description: 'another name of this server for uri==myself: host[:port]; repeatable',
  },
  {
    name: 'port',
    type: 'int',
    default: 5060,
    cli: '-p',
    min: 1,
    max: 65535,
    description: 'port for listen addresses without their own',
  },
  {
    name: 'maxbuffer',
    type: 'int',
    default: DEFAULT_MAX_BUFFER,
    cli: '-b',
    description: 'ceiling of the receive-buffer auto-probing',
  },
  {
    name: 'mhomed',
    type: 'bool',
    default: false,
    description: 'compute the outbound interface per destination (multi-homed hosts)',
  },
  {
    name: 'advertised_address',
    type: 'host',
    default: undefined,
    description: 'address written into Via/Record-Route instead of the socket one',
  },
  {
    name: 'advertised_port',
    type: 'int',
    default: undefined,
    min: 1,
    max: 65535,
    description: 'port written into Via/Record-Route instead of the socket one',
  },
  { name: 'disable_tcp', type: 'bool', default: false, description: 'do not listen on TCP' },
  {
    name: 'tcp_children',
    type: 'int',
    default: undefined,
    description: 'TCP worker processes (default: children)',
  },
  {
    name: 'tcp_accept_aliases',
    type: 'bool',
    default: false,
    description: 'reuse a TCP connection for requests toward its source (Via alias)',
  },
  {
    name: 'tcp_send_timeout',
    type: 'int',
    default: 10,
    description: 'seconds before a blocked TCP send fails',
  },
  {
    name: 'tcp_connect_timeout',
    type: 'int',
    default: 10,
    description: 'seconds before a TCP connect fails',
  },
  {
    name: 'tcp_connection_lifetime',
    type: 'int',
    default: 120,
    description: 'idle TCP connection lifetime, seconds',
  },
  {
    name: 'tcp_max_connections',
    type: 'int',
    default: 2048,
    description: 'maximum simultaneous TCP connections',
  },
  {
    name: 'tcp_poll_method',
    type: 'string',
    default: undefined,
    description: 'I/O poll method (accepted, ignored)',
  },
  { name: 'disable_tls', type: 'bool', default: true, description: 'do not listen on TLS' },
  { name: 'tls_port_no', type: 'int', default: 5061, description: 'TLS port' },
  { name: 'tls_method', type: 'string', default: 'TLSv1', description: 'TLS protocol version' },
  {
    name: 'tls_verify',
    synonyms: ['tls_verify_certificate'],
    type: 'bool',
    default: false,
    description: 'verify the peer certificate',
  },
  {
    name: 'tls_require_certificate',
    type: 'bool',
    default: false,
    description: 'require a client certificate',
  },
  {
    name: 'tls_certificate',
    type: 'string',
    default: undefined,
    description: 'server certificate file (PEM)',
  },
  {
    name: 'tls_private_key',
    type: 'string',
    default: undefined,
    description: 'server private key file (PEM)',
  },
  { name: 'tls_ca_list', type: 'string', default: undefined, description: 'trusted CA list (PEM)' },
  { name: 'tls_handshake_timeout', type: 'int', default: 120, description: 'TLS handshake timeout, seconds' },
  { name: 'tls_send_timeout', type: 'int', default: 120, description: 'TLS send timeout, seconds' },
  // ---- SIP behaviour
  {
    name: 'dns',
    type: 'bool',
    default: false,
    cli: '-r',
    description: 'use DNS to decide whether to add received= to Via',
  },
  { name: 'rev_dns', type: 'bool', default: false, cli: '-R', description: 'same as dns with reverse DNS' },
  {
    name: 'check_via',
    type: 'bool',
    default: false,
    cli: '-v',
    description: 'check the Via host when forwarding replies',
  },
  {
    name: 'syn_branch',
    type: 'bool',
    default: true,
    description: 'stateless synonym branch ids (fast, not reboot-safe)',
  },
  { name: 'sip_warning', type: 'bool', default: true, description: 'add a Warning header to local replies' },
  {
    name: 'server_signature',
    type: 'bool',
    default: true,
    description: 'add a Server header to local replies',
  },
  {
    name: 'server_header',
    type: 'string',
    default: undefined,
    description: 'text of the Server header (OpenSER)',
  },
  {
    name: 'user_agent_header',
    type: 'string',
    default: undefined,
    description: 'text of the User-Agent header of local requests (OpenSER)',
  },
  {
    name: 'reply_to_via',
    type: 'bool',
    default: false,
    description: 'reply modules send to the Via address instead of the source',
  },
  { name: 'statistics', type: 'string', default: undefined, description: 'statistics dump file' },
  {
    name: 'disable_dns_blacklist',
    type: 'bool',
    default: true,
    description: 'do not blacklist failed destinations (OpenSER)',
  },
  { name: 'dns_try_ipv6', type: 'bool', default: false, description: 'also look up AAAA records (OpenSER)' },
  { name: 'avp_aliases', type: 'string', default: undefined, description: 'AVP alias definitions (OpenSER)' },
  // ---- management
  {
    name: 'fifo',
    type: 'string',
    default: undefined,
    cli: '-i',
    description: 'FIFO file name; no FIFO server without it',
  },
  { name: 'fifo_mode', type: 'int', default: 0o620, description: 'permissions of the FIFO file' },
  { name: 'fifo_dir', type: 'string', default: '/tmp/', description: 'directory of FIFO reply files' },
  { name: 'fifo_user', type: 'string', default: undefined, description: 'owner of the FIFO file' },
  { name: 'fifo_group', type: 'string', default: undefined, description: 'group of the FIFO file' },
  {
    name: 'fifo_db_url',
    type: 'string',
    default: undefined,
    description: 'database used by FIFO-driven DB commands (OpenSER 1.1)',
  },
  { name: 'unix_sock', type: 'string', default: undefined, description: 'unix-socket management interface' },
  { name: 'unix_sock_children', type: 'int', default: 1, description: 'processes serving the unix socket' },
  { name: 'unix_tx_timeout', type: 'int', default: 2000, description: 'unix-socket send timeout, ms' },
  { name: 'sock_mode', type: 'int', default: 0o660, description: 'permissions of the unix socket' },
  { name: 'sock_user', type: 'string', default: undefined, description: 'owner of the unix socket' },
  { name: 'sock_group', type: 'string', default: undefined, description: 'group of the unix socket' },
];

const BY_NAME = new Map<string, OptionSpec>();
for (const o of OPTIONS) {
  BY_NAME.set(o.name, o);
  for (const s of o.synonyms ?? []) BY_NAME.set(s, o);
}

/** The spec of an option by any of its names (case-sensitive, as SER's lexer). */
export function findOption(name: string): OptionSpec | undefined {
  return BY_NAME.get(name);
}

/** Every accepted option name, synonyms included. */
export function optionNames(): string[] {
  return [...BY_NAME.keys()];
}
