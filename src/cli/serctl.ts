#!/usr/bin/env node
/**
 * `serctl`: SER's management tool (seed 003 §5.1). Server commands go through the FIFO
 * (`SER_FIFO`, default /tmp/ser_fifo) as SER's did; `--json` reads structured data
 * from the JSON-RPC socket when it is there. Subscriber, ACL, domain and schema commands
 * talk to the database (`SER_DBURL`). See docs/serctl.md.
 *
 * Exit codes: 0 ok, 1 usage, 2 server/FIFO unreachable, 3 database error, 4 not found,
 * 5 the server (or the database) refused the request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { existsSync, realpathSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { VERSION } from '../core/version.js';
import type { Db, DbError } from '../db/index.js';
import { FifoUnreachable, fifoCall } from '../mgmt/fifo-client.js';
import { type MonitorSnapshot, mysqlTable, parseStatLines, renderMonitor, sqlDate } from '../mgmt/format.js';
import { defaultRpcSocket } from '../mgmt/index.js';

export const EX_OK = 0;
export const EX_USAGE = 1;
export const EX_UNREACHABLE = 2;
export const EX_DB = 3;
export const EX_NOTFOUND = 4;
export const EX_FAILED = 5;

/** SER's permanent contacts: expires=0 in ul_add (shown as ~2^30 s left). */
const UL_EXPIRES = '0';
const UL_Q = '1.00';
const UL_TABLE = 'location';
const ALIAS_TABLE = 'aliases';

export const USAGE = `usage:
* subscribers *

serctl add <username> <password> <email> .. add a new subscriber (*)
serctl passwd <username> <passwd> ......... change user's password (*)
serctl rm <username> ...................... delete a user (*)
serctl mail <username> .................... print a user's email address
serctl alias show [<alias>] ............... show aliases
serctl alias rm <alias> ................... remove an alias
serctl alias add <alias> <uri> ............ add an aliases

* access control lists *
serctl acl show [<username>] .............. show user membership
serctl acl grant <username> <group> ....... grant user membership (*)
serctl acl revoke <username> [<group>] .... revoke user membership(s) (*)

* domains *
serctl domain show ........................ show served domains
serctl domain add <domain> ................ add a served domain (*)
serctl domain rm <domain> ................. remove a served domain (*)

* usrloc *
serctl ul show [<username>]................ show in-RAM online users
serctl ul rm <username> ................... delete user's UsrLoc entries
serctl ul add <username> <uri> ............ introduce a permanent UrLoc entry
serctl showdb [<username>] ................ show online users flushed in DB

* server health *
serctl monitor [--count N] [--interval S] . show internal status
serctl ps ................................. show running processes
serctl fifo <command> [<param> ...] ....... send raw commands to FIFO
serctl ping <uri> ......................... send an OPTIONS request, print the reply
serctl version ............................ serctl's and the server's version

* database *
serctl db create | drop -y | show ......... SER tables in SER_DBURL (*)

* accounting *
serctl cdr [<user>] [--since T] [--limit N]  calls from the cdr table (acc)
           [--from-acc] ................... the same from acc rows (seed 000 query)

options: --json  --fifo PATH  --db URL  --domain REALM  --timeout MS  --store-password
environment: SIP_DOMAIN (realm), PW (database password), SER_FIFO (default /tmp/ser_fifo),
  SER_DBURL (default sqlite://ser.db), SER_RPC_SOCKET
Commands labeled with (*) will prompt for a MySQL password.
If the variable PW is set, the password will not be prompted.
exit codes: 0 ok, 1 usage, 2 server unreachable, 3 database error, 4 not found, 5 refused
`;

export interface Io {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
  isTty: boolean;
}

class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
const usage = (m: string) => new Exit(EX_USAGE, `${m}\n(serctl -h for the usage)`);

interface Opts {
  json: boolean;
  fifo: string;
  db: string;
  domain: string | undefined;
  timeoutMs: number;
  count: number | undefined;
  interval: number;
  yes: boolean;
  storePassword: boolean;
  rpcSocket: string;
  help: boolean;
}

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): { opts: Opts; rest: string[] } {
  const fifo = env.SER_FIFO || '/tmp/ser_fifo';
  const opts: Opts = {
    json: false,
    fifo,
    db: env.SER_DBURL || 'sqlite://ser.db',
    domain: env.SIP_DOMAIN || undefined,
    timeoutMs: 5000,
    count: undefined,
    interval: 3,
    yes: false,
    storePassword: env.SER_STORE_PASSWORD === '1' || env.SER_STORE_PASSWORD === 'yes',
    rpcSocket: '',
    help: false,
  };
  const rest: string[] = [];
  let fifoSet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const value = () => {
      if (a.startsWith('--') && eq > 0) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw usage(`option ${name} needs a value`);
      return v;
    };
    const num = (v: string) => {
      if (!/^\d+(\.\d+)?$/.test(v)) throw usage(`option ${name} expects a number, not '${v}'`);
      return Number(v);
    };
    switch (name) {
      case '--json':
        opts.json = true;
        break;
      case '--fifo':
        opts.fifo = value();
        fifoSet = true;
        break;
      case '--db':
        opts.db = value();
        break;
      case '--domain':
        opts.domain = value();
        break;
      case '--timeout':
        opts.timeoutMs = num(value());
        break;
      case '--count':
        opts.count = num(value());
        break;
      case '--interval':
        opts.interval = num(value());
        break;
      case '-y':
      case '--yes':
        opts.yes = true;
        break;
      case '--store-password':
        opts.storePassword = true;
        break;
      case '-h':
      case '--help':
        opts.help = true;
        break;
      default:
        if (a.startsWith('--') && rest.length === 0) throw usage(`unknown option ${a}`);
        rest.push(a);
    }
  }
  opts.rpcSocket =
    env.SER_RPC_SOCKET || defaultRpcSocket(fifoSet || env.SER_FIFO ? opts.fifo : '/tmp/ser_fifo');
  return { opts, rest };
}

// ------------------------------------------------------------------ talking to the server

interface Reply {
  status: number;
  reason: string;
  body: string[];
  data?: unknown;
}

/** JSON-RPC over the unix socket: one request line, one answer line. */
function rpcCall(path: string, method: string, params: string[], timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const c = connect(path);
    let buf = '';
    const t = setTimeout(() => {
      c.destroy();
      reject(new FifoUnreachable(`no answer on ${path}`, 'timeout'));
    }, timeoutMs);
    c.on('connect', () => c.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method, params })}\n`));
    c.on('data', (d) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(t);
      c.destroy();
      try {
        const m = JSON.parse(buf.slice(0, nl));
        if (m.result) resolve(m.result as Reply);
        else if (m.error?.data?.status) resolve(m.error.data as Reply);
        else if (m.error?.code === -32601) resolve({ status: 500, reason: m.error.message, body: [] });
        else resolve({ status: 500, reason: String(m.error?.message ?? 'bad answer'), body: [] });
      } catch (e) {
        reject(new FifoUnreachable(`bad answer on ${path}: ${(e as Error).message}`, 'io'));
      }
    });
    c.on('error', (e) => {
      clearTimeout(t);
      reject(new FifoUnreachable(`cannot connect to ${path}: ${e.message}`, 'io'));
    });
  });
}

class Ctl {
  private db: Db | undefined;

  constructor(
    readonly io: Io,
    readonly o: Opts,
  ) {}

  /** A server command: the FIFO, or the JSON-RPC socket for --json when it is there. */
  async call(cmd: string, args: string[] = []): Promise<Reply> {
    try {
      if (this.o.json && existsSync(this.o.rpcSocket)) {
        try {
          return await rpcCall(this.o.rpcSocket, cmd, args, this.o.timeoutMs);
        } catch {
          /* fall back to the FIFO */
        }
      }
      const r = await fifoCall(this.o.fifo, cmd, args, { timeoutMs: this.o.timeoutMs });
      return { status: r.code, reason: r.reason, body: r.body };
    } catch (e) {
      if (e instanceof FifoUnreachable) throw new Exit(EX_UNREACHABLE, e.message);
      throw e;
    }
  }

  /** Exit code for a server status. */
  static codeOf(status: number): number {
    if (status >= 200 && status < 300) return EX_OK;
    return status === 404 ? EX_NOTFOUND : EX_FAILED;
  }

  /**
   * Print a reply as SER's serctl did: the status line unless it is a plain `200 ok`,
   * then the body. With --json the whole reply.
   */
  printReply(r: Reply): number {
    if (this.o.json) this.json(r);
    else {
      const lines = /^ok$/i.test(r.reason) && r.status === 200 ? [] : [`${r.status} ${r.reason}`];
      lines.push(...r.body);
      if (lines.length > 0) this.io.out(`${lines.join('\n')}\n`);
    }
    return Ctl.codeOf(r.status);
  }

  json(v: unknown): void {
    this.io.out(`${JSON.stringify(v, null, 2)}\n`);
  }

  // ------------------------------------------------------------------ database

  dbUrl(): string {
    const pw = this.io.env.PW;
    const url = this.o.db;
    if (pw === undefined || !/^(mysql|sql|postgres|postgresql):\/\//i.test(url)) return url;
    // PW fills in a password the URL leaves out
    return url.replace(
      /^([a-z]+:\/\/)([^:@/]+)@/i,
      (_m, s: string, u: string) => `${s}${u}:${encodeURIComponent(pw)}@`,
    );
  }

  async needPassword(): Promise<void> {
    const url = this.o.db;
    if (this.io.env.PW !== undefined || !/^(mysql|sql|postgres|postgresql):\/\/[^:@/]+@/i.test(url)) return;
    if (!this.io.isTty) return;
    this.io.env.PW = await promptHidden('MySql Password: ');
  }

  async openDb(): Promise<Db> {
    if (this.db) return this.db;
    const { openDb } = await import('../db/index.js');
    this.db = await openDb(this.dbUrl(), { connectTimeoutMs: this.o.timeoutMs });
    return this.db;
  }

  async close(): Promise<void> {
    await this.db?.close().catch(() => {});
  }

  realm(): string {
    if (!this.o.domain) {
      throw new Exit(
        EX_USAGE,
        'SIP_DOMAIN is not set: export SIP_DOMAIN=<your realm> (credentials depend on it)',
      );
    }
    return this.o.domain;
  }

  /** `user` or `user@domain`; the domain defaults to SIP_DOMAIN (or '' when unset and optional). */
  userDomain(arg: string, domainRequired: boolean): { user: string; domain: string } {
    const at = arg.indexOf('@');
    if (at > 0) return { user: arg.slice(0, at), domain: arg.slice(at + 1) };
    return { user: arg, domain: domainRequired ? this.realm() : (this.o.domain ?? '') };
  }
}

/** Read a line from the terminal without echo. */
async function promptHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode?.(true);
  stdin.resume();
  return await new Promise((resolve) => {
    let s = '';
    const on = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          stdin.off('data', on);
          stdin.setRawMode?.(false);
          stdin.pause();
          process.stderr.write('\n');
          resolve(s);
          return;
        }
        if (ch === '\u0003') process.exit(130);
        s = ch === '\u007f' ? s.slice(0, -1) : s + ch;
      }
    };
    stdin.on('data', on);
  });
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** SER's credentials: HA1 = MD5(user:realm:password), HA1b = MD5(user@domain:realm:password). */
export function credentials(user: string, domain: string, realm: string, password: string) {
  return { ha1: md5(`${user}:${realm}:${password}`), ha1b: md5(`${user}@${domain}:${realm}:${password}`) };
}

// ------------------------------------------------------------------ commands

type Handler = (c: Ctl, args: string[]) => Promise<number>;

const need = (args: string[], min: number, max: number, form: string) => {
  if (args.length < min || args.length > max) throw usage(`usage: serctl ${form}`);
};

async function cmdFifo(c: Ctl, args: string[]): Promise<number> {
  if (args.length < 1) throw usage('usage: serctl fifo <command> [<param> ...]');
  return c.printReply(await c.call(args[0], args.slice(1)));
}

async function cmdPs(c: Ctl, args: string[]): Promise<number> {
  need(args, 0, 0, 'ps');
  const r = await c.call('ps');
  if (c.o.json && r.data) {
    c.json(r.data);
    return Ctl.codeOf(r.status);
  }
  return c.printReply(r);
}

async function cmdVersion(c: Ctl, args: string[]): Promise<number> {
  need(args, 0, 0, 'version');
  let server: string | undefined;
  try {
    const r = await c.call('version');
    server = r.body[0]?.replace(/^Server:\s*/, '');
  } catch (e) {
    if (!(e instanceof Exit)) throw e;
  }
  if (c.o.json) c.json({ serctl: VERSION, server: server ?? null });
  else c.io.out(`serctl ${VERSION}\nserver: ${server ?? '(not running or FIFO unreachable)'}\n`);
  return EX_OK;
}

async function snapshot(c: Ctl): Promise<MonitorSnapshot> {
  const v = await c.call('version');
  const up = await c.call('uptime');
  const st = await c.call('get_statistics', ['all']);
  const snap: MonitorSnapshot = {
    server: v.body[0]?.replace(/^Server:\s*/, ''),
    uptime: up.body,
    stats: (st.data as MonitorSnapshot['stats']) ?? parseStatLines(st.body),
  };
  if (!snap.stats?.usrloc) {
    const ul = await c.call('ul_stats');
    if (ul.status >= 200 && ul.status < 300) snap.ulStats = ul.body.join('\n');
  }
  return snap;
}

async function cmdMonitor(c: Ctl, args: string[]): Promise<number> {
  need(args, 0, 0, 'monitor [--count N] [--interval S]');
  const count = c.o.count ?? Number.POSITIVE_INFINITY;
  let code = EX_OK;
  for (let cycle = 1; cycle <= count; cycle++) {
    let snap: MonitorSnapshot = {};
    code = EX_OK;
    try {
      snap = await snapshot(c);
    } catch (e) {
      if (!(e instanceof Exit) || e.code !== EX_UNREACHABLE) throw e;
      code = EX_UNREACHABLE;
      if (count !== Number.POSITIVE_INFINITY) c.io.err(`ERROR: ${e.message}\n`);
    }
    if (c.o.json) c.io.out(`${JSON.stringify({ cycle, ...snap })}\n`);
    else c.io.out(`${c.io.isTty ? '\x1b[2J\x1b[H' : ''}${renderMonitor(cycle, snap)}`);
    if (cycle < count) await new Promise((r) => setTimeout(r, c.o.interval * 1000));
  }
  return code;
}

/** ul / alias: usrloc's FIFO commands on `table`. */
function ulCommands(table: string, what: string): Handler {
  return async (c, args) => {
    const sub = args[0];
    const notLoaded = (r: Reply) => {
      if (r.status === 500 && /not available/.test(r.reason)) {
        c.io.err(
          `ERROR: ${r.status} ${r.reason}: usrloc is not loaded in the running ser` +
            (table === ALIAS_TABLE
              ? ' (the aliases table exists only when ser runs with lookup("aliases"))\n'
              : '\n'),
        );
        return true;
      }
      return false;
    };
    if (sub === 'show') {
      need(args, 1, 2, `${what} show [<name>]`);
      const r = args[1] ? await c.call('ul_show_contact', [table, args[1]]) : await c.call('ul_dump');
      if (notLoaded(r)) return EX_FAILED;
      if (c.o.json && r.data !== undefined) {
        c.json(r.data);
        return Ctl.codeOf(r.status);
      }
      return c.printReply(r);
    }
    if (sub === 'rm') {
      need(args, 2, 2, `${what} rm <name>`);
      const r = await c.call('ul_rm', [table, args[1]]);
      if (notLoaded(r)) return EX_FAILED;
      return c.printReply(r);
    }
    if (sub === 'add') {
      need(args, 3, 3, `${what} add <name> <uri>`);
      const uri = args[2];
      if (!/^(sips?|tel):/i.test(uri)) throw usage(`'${uri}' is not a SIP URI (sip:user@host)`);
      if (!c.o.json) c.io.out(`${uri}\n`);
      const r = await c.call('ul_add', [table, args[1], uri, UL_EXPIRES, UL_Q]);
      if (notLoaded(r)) return EX_FAILED;
      return c.printReply(r);
    }
    throw usage(`usage: serctl ${what} show [<name>] | rm <name> | add <name> <uri>`);
  };
}

/** Run a database command; DbError → exit 3. */
async function withDb<T>(c: Ctl, fn: (db: Db) => Promise<T>): Promise<T> {
  await c.needPassword();
  try {
    return await fn(await c.openDb());
  } catch (e) {
    if ((e as DbError)?.name === 'DbError') throw new Exit(EX_DB, `database: ${(e as Error).message}`);
    throw e;
  }
}

/**
 * Tells a running server that a subscriber changed, so auth_db's row cache does not keep
 * an old password or a removed user. Best effort: no server, no FIFO, or no auth_db
 * loaded is fine (the database is the truth; the cache lives a few seconds).
 */
async function flushAuthCache(c: Ctl, user: string): Promise<void> {
  if (!existsSync(c.o.fifo)) return;
  try {
    await fifoCall(c.o.fifo, 'auth_db_flush', [user], { timeoutMs: Math.min(c.o.timeoutMs, 2000) });
  } catch {
    /* not running or not listening: nothing is cached there */
  }
}

async function cmdAdd(c: Ctl, args: string[]): Promise<number> {
  need(args, 3, 3, 'add <username> <password> <email>');
  const [who, password, email] = args;
  const { user, domain } = c.userDomain(who, true);
  const realm = c.realm();
  return withDb(c, async (db) => {
    if ((await db.count('subscriber', { username: user, domain })) > 0) {
      throw new Exit(EX_FAILED, `user '${user}@${domain}' already exists`);
    }
    const cr = credentials(user, domain, realm, password);
    const now = new Date();
    await db.insert('subscriber', {
      phplib_id: md5(`${user}@${domain}:${randomBytes(8).toString('hex')}`),
      username: user,
      domain,
      password: c.o.storePassword ? password : '',
      email_address: email,
      ha1: cr.ha1,
      ha1b: cr.ha1b,
      datetime_created: now,
      datetime_modified: now,
    });
    await flushAuthCache(c, user);
    c.io.out('new user added\n');
    return EX_OK;
  });
}

async function cmdPasswd(c: Ctl, args: string[]): Promise<number> {
  need(args, 2, 2, 'passwd <username> <password>');
  const { user, domain } = c.userDomain(args[0], true);
  const cr = credentials(user, domain, c.realm(), args[1]);
  return withDb(c, async (db) => {
    const n = await db.update(
      'subscriber',
      { username: user, domain },
      { ...cr, password: c.o.storePassword ? args[1] : '', datetime_modified: new Date() },
    );
    if (n === 0) throw new Exit(EX_NOTFOUND, `user '${user}@${domain}' not found`);
    await flushAuthCache(c, user);
    c.io.out('password change succeeded\n');
    return EX_OK;
  });
}

async function cmdRm(c: Ctl, args: string[]): Promise<number> {
  need(args, 1, 1, 'rm <username>');
  const { user, domain } = c.userDomain(args[0], true);
  return withDb(c, async (db) => {
    const n = await db.transaction(async (tx) => {
      const k = await tx.delete('subscriber', { username: user, domain });
      if (k > 0) await tx.delete('grp', { username: user, domain });
      return k;
    });
    if (n === 0) throw new Exit(EX_NOTFOUND, `user '${user}@${domain}' not found`);
    await flushAuthCache(c, user);
    c.io.out('user removed\n');
    return EX_OK;
  });
}

async function cmdMail(c: Ctl, args: string[]): Promise<number> {
  need(args, 1, 1, 'mail <username>');
  const { user, domain } = c.userDomain(args[0], false);
  return withDb(c, async (db) => {
    const where = c.o.domain || args[0].includes('@') ? { username: user, domain } : { username: user };
    const r = await db.selectOne<{ email_address: string }>('subscriber', {
      columns: ['email_address'],
      where,
    });
    if (!r) throw new Exit(EX_NOTFOUND, `user '${args[0]}' not found`);
    if (c.o.json) c.json({ user: args[0], email: r.email_address });
    else c.io.out(`${r.email_address}\n`);
    return EX_OK;
  });
}

async function showGroups(c: Ctl, db: Db, user?: { user: string; domain: string }): Promise<number> {
  const where = user
    ? user.domain
      ? { username: user.user, domain: user.domain }
      : { username: user.user }
    : undefined;
  const rows = await db.select<{ username: string; domain: string; grp: string; last_modified: unknown }>(
    'grp',
    {
      where,
      orderBy: ['username', 'grp'],
    },
  );
  if (c.o.json) {
    c.json(
      rows.map((r) => ({
        user: r.username,
        domain: r.domain,
        grp: r.grp,
        last_modified: sqlDate(r.last_modified),
      })),
    );
  } else if (rows.length > 0) {
    c.io.out(
      `${mysqlTable(
        ['user', 'grp', 'last_modified'],
        rows.map((r) => [r.username, r.grp, r.last_modified]),
      )}\n`,
    );
  }
  return user && rows.length === 0 ? EX_NOTFOUND : EX_OK;
}

async function cmdAcl(c: Ctl, args: string[]): Promise<number> {
  const sub = args[0];
  if (sub === 'show') {
    need(args, 1, 2, 'acl show [<username>]');
    return withDb(c, (db) => showGroups(c, db, args[1] ? c.userDomain(args[1], false) : undefined));
  }
  if (sub === 'grant') {
    need(args, 3, 3, 'acl grant <username> <group>');
    const u = c.userDomain(args[1], false);
    return withDb(c, async (db) => {
      const known = await db.count(
        'subscriber',
        u.domain ? { username: u.user, domain: u.domain } : { username: u.user },
      );
      if (known === 0)
        throw new Exit(EX_NOTFOUND, `user '${args[1]}' is not a subscriber (serctl add first)`);
      await db.replace('grp', {
        username: u.user,
        domain: u.domain,
        grp: args[2],
        last_modified: new Date(),
      });
      return showGroups(c, db, u);
    });
  }
  if (sub === 'revoke') {
    need(args, 2, 3, 'acl revoke <username> [<group>]');
    const u = c.userDomain(args[1], false);
    return withDb(c, async (db) => {
      const where: Record<string, string> = { username: u.user };
      if (u.domain) where.domain = u.domain;
      if (args[2]) where.grp = args[2];
      const n = await db.delete('grp', where);
      if (n === 0)
        throw new Exit(EX_NOTFOUND, `no membership of '${args[1]}'${args[2] ? ` in '${args[2]}'` : ''}`);
      if (!c.o.json) c.io.out(`${n} membership(s) revoked\n`);
      else c.json({ revoked: n });
      return EX_OK;
    });
  }
  throw usage('usage: serctl acl show [<username>] | grant <username> <group> | revoke <username> [<group>]');
}

/**
 * After a change of the domain table, tell a running ser to read it again (SER's serctl
 * sent domain_reload too). No running ser, or one without the domain module, is fine:
 * the table is read at its next start.
 */
async function reloadDomains(c: Ctl): Promise<void> {
  let r: Reply;
  try {
    r = await c.call('domain_reload');
  } catch (e) {
    if (e instanceof Exit && e.code === EX_UNREACHABLE) {
      if (!c.o.json) c.io.out('(no ser answers on the FIFO: a ser started later reads the new table)\n');
      return;
    }
    throw e;
  }
  if (c.o.json) return;
  if (r.status >= 200 && r.status < 300) c.io.out('domain table reloaded by the running ser\n');
  else c.io.out(`(the running ser did not reload the domain table: ${r.status} ${r.reason})\n`);
}

async function cmdDomain(c: Ctl, args: string[]): Promise<number> {
  const sub = args[0];
  if (sub === 'show') {
    need(args, 1, 1, 'domain show');
    return withDb(c, async (db) => {
      const rows = await db.select<{ domain: string; last_modified: unknown }>('domain', {
        orderBy: 'domain',
      });
      if (c.o.json) c.json(rows.map((r) => ({ domain: r.domain, last_modified: sqlDate(r.last_modified) })));
      else if (rows.length > 0) {
        c.io.out(
          `${mysqlTable(
            ['domain', 'last_modified'],
            rows.map((r) => [r.domain, r.last_modified]),
          )}\n`,
        );
      }
      return EX_OK;
    });
  }
  if (sub === 'add' || sub === 'rm') {
    need(args, 2, 2, `domain ${sub} <domain>`);
    const d = args[1].toLowerCase();
    return withDb(c, async (db) => {
      if (sub === 'add') {
        if ((await db.count('domain', { domain: d })) > 0)
          throw new Exit(EX_FAILED, `domain '${d}' already exists`);
        await db.insert('domain', { domain: d, last_modified: new Date() });
        c.io.out(`domain '${d}' added\n`);
      } else {
        if ((await db.delete('domain', { domain: d })) === 0)
          throw new Exit(EX_NOTFOUND, `domain '${d}' not found`);
        c.io.out(`domain '${d}' removed\n`);
      }
      await reloadDomains(c);
      return EX_OK;
    });
  }
  throw usage('usage: serctl domain show | add <domain> | rm <domain>');
}

async function cmdShowdb(c: Ctl, args: string[]): Promise<number> {
  need(args, 0, 1, 'showdb [<username>]');
  return withDb(c, async (db) => {
    const where = args[0] ? { username: c.userDomain(args[0], false).user } : undefined;
    const rows = await db.select<Record<string, unknown>>('location', {
      columns: ['username', 'domain', 'contact', 'expires', 'q', 'user_agent'],
      where,
      orderBy: ['username', 'contact'],
    });
    if (c.o.json) c.json(rows.map((r) => ({ ...r, expires: sqlDate(r.expires) })));
    else if (rows.length > 0) {
      c.io.out(
        `${mysqlTable(
          ['user', 'domain', 'contact', 'expires', 'q', 'user_agent'],
          rows.map((r) => [r.username, r.domain, r.contact, r.expires, r.q, r.user_agent]),
        )}\n`,
      );
    }
    return args[0] && rows.length === 0 ? EX_NOTFOUND : EX_OK;
  });
}

async function cmdDb(c: Ctl, args: string[]): Promise<number> {
  const sub = args[0];
  need(args, 1, 1, 'db create | drop -y | show');
  const lib = await import('../db/index.js');
  if (sub === 'create') {
    return withDb(c, async (db) => {
      const made = await lib.createSchema(db);
      if (c.o.json) c.json({ created: made });
      else c.io.out(`SER tables created in ${db.url}: ${made.length} tables (+ version)\n`);
      return EX_OK;
    });
  }
  if (sub === 'drop') {
    if (!c.o.yes)
      throw usage(`serctl db drop deletes every SER table and its data in ${c.o.db}; add -y to confirm`);
    return withDb(c, async (db) => {
      await lib.dropSchema(db);
      if (!c.o.json) c.io.out(`SER tables dropped from ${db.url}\n`);
      else c.json({ dropped: true });
      return EX_OK;
    });
  }
  if (sub === 'show') {
    return withDb(c, async (db) => {
      const s = await lib.schemaStatus(db);
      if (c.o.json) c.json({ url: db.url, ...s });
      else {
        const rows = s.tables.map((t) => [
          t.name,
          t.present ? 'yes' : 'no',
          t.version ?? '-',
          t.expected,
          !t.present ? 'missing' : t.version === t.expected ? 'ok' : 'version differs',
        ]);
        for (const o of s.other) rows.push([o.name, 'yes', o.version ?? '-', '-', 'not a SER table']);
        c.io.out(
          `${db.url} (${s.backend})\n${mysqlTable(['table', 'present', 'version', 'expected', 'status'], rows)}\n`,
        );
        c.io.out(s.ok ? 'schema ok\n' : 'schema incomplete: serctl db create\n');
      }
      return s.ok ? EX_OK : EX_NOTFOUND;
    });
  }
  throw usage('usage: serctl db create | drop -y | show');
}

/**
 * Calls acc correlated into the cdr table, or with --from-acc the GARR self-join over
 * `acc` (seed 000). --since takes "YYYY-MM-DD[ HH:MM[:SS]]" (UTC) or 30m, 2h, 7d.
 */
async function cmdCdr(c: Ctl, args: string[]): Promise<number> {
  let since: string | undefined;
  let limit: string | undefined;
  let fromAcc = false;
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const [name, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw usage(`option ${name} needs a value`);
      return v;
    };
    if (name === '--since') since = value();
    else if (name === '--limit') limit = value();
    else if (name === '--from-acc') fromAcc = true;
    else if (a.startsWith('--')) throw usage(`unknown option ${a} for cdr`);
    else pos.push(a);
  }
  need(pos, 0, 1, 'cdr [<user>] [--since T] [--limit N] [--from-acc]');
  const { cdrFilter, cdrLine } = await import('../modules/acc/index.js');
  const { callsFromAcc, queryCdrs } = await import('../acc/cdr-query.js');
  const f = cdrFilter([pos[0] ?? '-', since ?? '', ...(limit === undefined ? [] : [limit])]);
  if (typeof f === 'string') throw usage(f);
  return withDb(c, async (db) => {
    if (fromAcc) {
      let calls = await callsFromAcc(db);
      if (f.user) {
        const u = f.user.includes('@') ? f.user : `${f.user}@`;
        calls = calls.filter((x) => x.caller.includes(`:${u}`) || x.callee.includes(`:${u}`));
      }
      if (f.since) {
        const t = f.since.toISOString().replace('T', ' ').slice(0, 19);
        calls = calls.filter((x) => `${x.date} ${x.time}` >= t);
      }
      calls = calls.slice(0, f.limit);
      if (c.o.json) c.json(calls);
      else if (calls.length > 0) {
        c.io.out(
          `${mysqlTable(
            ['Chiamante', 'Chiamato', 'Callid', 'Data', 'Ora', 'Durata'],
            calls.map((x) => [x.caller, x.callee, x.callId, x.date, x.time, x.durata]),
          )}\n`,
        );
      }
      return EX_OK;
    }
    const calls = await queryCdrs(db, f);
    if (c.o.json) c.json(calls);
    else for (const x of calls) c.io.out(`${cdrLine(x)}\n`);
    return f.user && calls.length === 0 ? EX_NOTFOUND : EX_OK;
  });
}

/** OPTIONS straight from serctl over UDP (tm's t_uac_dlg is not needed for a ping). */
/**
 * SER's serctl pinged through the server: OPTIONS as a local tm transaction (t_uac_dlg), so
 * the answer also shows that the server can reach the URI. undefined when no server is
 * running or it has no tm: the caller then sends the OPTIONS itself.
 */
async function pingThroughServer(c: Ctl, uri: string): Promise<number | undefined> {
  const rand = () => randomBytes(6).toString('hex');
  const t0 = process.hrtime.bigint();
  let r: Reply;
  try {
    r = await c.call('t_uac_dlg', [
      'OPTIONS',
      uri,
      '.',
      `From: <sip:daemon@${c.o.domain || 'localhost'}>;tag=${rand()}`,
      `To: <${uri}>`,
      `User-Agent: serctl ${VERSION}`,
      'Accept: application/sdp',
      '.',
    ]);
  } catch (e) {
    if (e instanceof Exit && e.code === EX_UNREACHABLE) return undefined;
    throw e;
  }
  if (r.status === 500 && /not available/.test(r.reason)) return undefined;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status >= 400 && r.status < 500 && r.reason.startsWith('t_uac_dlg:')) {
    c.io.err(`ERROR: ${r.status} ${r.reason}\n`);
    return EX_USAGE;
  }
  if (c.o.json) c.json({ uri, via: 'server', status: r.status, reason: r.reason, rtt_ms: ms });
  else c.io.out(`SIP/2.0 ${r.status} ${r.reason} (${ms.toFixed(1)} ms, sent by ser's t_uac_dlg)\n`);
  return r.status < 300 ? EX_OK : EX_FAILED;
}

async function cmdPing(c: Ctl, args: string[]): Promise<number> {
  need(args, 1, 1, 'ping <uri>');
  const { parseUri } = await import('../sip/uri.js');
  let uri = args[0];
  if (!/^sips?:/i.test(uri)) uri = `sip:${uri}`;
  let host: string;
  let port: number;
  try {
    const u = parseUri(uri);
    host = u.host.replace(/^\[|\]$/g, '');
    port = u.port ?? 5060;
  } catch (e) {
    throw usage(`'${args[0]}' is not a SIP URI: ${(e as Error).message}`);
  }
  const viaServer = await pingThroughServer(c, uri);
  if (viaServer !== undefined) return viaServer;
  let ip: string;
  let family: number;
  try {
    ({ address: ip, family } = await lookup(host));
  } catch {
    throw new Exit(EX_UNREACHABLE, `cannot resolve ${host}`);
  }
  const sock = createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.connect(port, ip, () => res());
    });
    const local = sock.address();
    const lhost = local.family === 'IPv6' ? `[${local.address}]` : local.address;
    const rand = () => randomBytes(6).toString('hex');
    const callId = `${rand()}@serctl`;
    const msg = [
      `OPTIONS ${uri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${lhost}:${local.port};branch=z9hG4bK${rand()};rport`,
      'Max-Forwards: 70',
      `From: <sip:serctl@${lhost}>;tag=${rand()}`,
      `To: <${uri}>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 OPTIONS',
      `Contact: <sip:serctl@${lhost}:${local.port}>`,
      `User-Agent: serctl ${VERSION}`,
      'Accept: application/sdp',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const t0 = process.hrtime.bigint();
    const reply = await new Promise<string | undefined>((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const done = (v: string | undefined) => {
        for (const t of timers) clearTimeout(t);
        sock.removeAllListeners('message');
        resolve(v);
      };
      sock.on('message', (b) => {
        const text = b.toString('latin1');
        if (!text.startsWith('SIP/2.0 ') || !text.includes(callId)) return;
        const code = Number(text.slice(8, 11));
        if (code >= 200) done(text);
      });
      sock.on('error', () => {
        /* ICMP port unreachable: keep waiting for the timeout */
      });
      for (const at of [0, 500, 1500, 3500]) timers.push(setTimeout(() => sock.send(msg), at));
      timers.push(setTimeout(() => done(undefined), Math.max(c.o.timeoutMs, 1000)));
    });
    if (!reply) throw new Exit(EX_UNREACHABLE, `no reply from ${uri} (${ip}:${port})`);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const status = reply.slice(0, reply.indexOf('\r\n'));
    const code = Number(status.slice(8, 11));
    if (c.o.json)
      c.json({ uri, target: `${ip}:${port}`, status: code, reason: status.slice(12), rtt_ms: ms });
    else c.io.out(`${status} (${ms.toFixed(1)} ms from ${ip}:${port})\n`);
    return code < 300 ? EX_OK : EX_FAILED;
  } finally {
    sock.close();
  }
}

const COMMANDS: Record<string, Handler> = {
  fifo: cmdFifo,
  ps: cmdPs,
  version: cmdVersion,
  monitor: cmdMonitor,
  moni: cmdMonitor,
  ul: ulCommands(UL_TABLE, 'ul'),
  alias: ulCommands(ALIAS_TABLE, 'alias'),
  add: cmdAdd,
  passwd: cmdPasswd,
  rm: cmdRm,
  mail: cmdMail,
  acl: cmdAcl,
  domain: cmdDomain,
  showdb: cmdShowdb,
  db: cmdDb,
  ping: cmdPing,
  cdr: cmdCdr,
};

export async function serctl(argv: string[], io: Io): Promise<number> {
  let ctl: Ctl | undefined;
  try {
    const { opts, rest } = parseArgs(argv, io.env);
    if (opts.help || rest.length === 0) {
      io.out(USAGE);
      return opts.help ? EX_OK : EX_USAGE;
    }
    const [cmd, ...args] = rest;
    const h = COMMANDS[cmd];
    if (!h) throw usage(`unknown command '${cmd}'`);
    ctl = new Ctl(io, opts);
    return await h(ctl, args);
  } catch (e) {
    if (e instanceof Exit) {
      io.err(`ERROR: ${e.message}\n`);
      return e.code;
    }
    io.err(`ERROR: ${(e as Error)?.message ?? e}\n`);
    return EX_FAILED;
  } finally {
    await ctl?.close();
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return fileURLToPath(import.meta.url) === entry;
  }
}

if (isMain()) {
  const code = await serctl(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    env: process.env,
    isTty: Boolean(process.stdout.isTTY && process.stdin.isTTY),
  });
  process.exitCode = code;
}
