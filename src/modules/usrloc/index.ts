/**
 * usrloc — the user location database: contacts of registered users by table
 * ("location", "aliases", one per served domain …), in memory with optional
 * persistence (db_mode 0–3), the ul_* management commands and the "UsrLoc Stats".
 * registrar's save()/lookup() use it through `usrlocFor(core)`.
 */
import { getHeapStatistics } from 'node:v8';
import type { CoreApi } from '../../core/api.js';
import { clusterBus } from '../../core/cluster-role.js';
import { defineModule, FixupError, type MgmtReply, type ParamValue } from '../../core/module.js';
import { DEFAULT_DB_URL } from '../../db/index.js';
import { parseUri } from '../../sip/uri.js';
import {
  FL_PERMANENT,
  intern,
  isValid,
  Q_UNSPECIFIED,
  remaining,
  type UContact,
  type UDomain,
} from './store.js';
import { type DbMode, Usrloc } from './usrloc.js';
import { dbUrlParam } from '../db-param.js';

export { FL_NAT, FL_PERMANENT, Q_UNSPECIFIED, type UContact, UDomain } from './store.js';
export { type Change, type DbMode, Usrloc, type UsrlocOptions } from './usrloc.js';

const byCore = new WeakMap<CoreApi, Usrloc>();
/** table names named by the script being loaded (fixups run before init) */
const scriptTables = new Set<string>();

/** The usrloc of a server instance, undefined when usrloc is not loaded. */
export function usrlocFor(core: CoreApi): Usrloc | undefined {
  return byCore.get(core);
}

/**
 * Called by the fixups of save()/lookup()/registered(): a table the script uses.
 * Such tables exist from start-up (SER created them at fixup time, which is why
 * `serctl alias add` needs lookup("aliases") in the script).
 */
export function declareTable(name: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.$-]*$/.test(name) || name.length > 64) {
    throw new FixupError(`invalid table name "${name}"`);
  }
  scriptTables.add(name);
  return name;
}

/** q as the FIFO prints it: two decimals, unspecified as 0.00 (seed 003 Ex 4-9) */
export function fmtQ2(q: number): string {
  return (q === Q_UNSPECIFIED ? 0 : q / 1000).toFixed(2);
}

/** A contact line as ul_show_contact / serctl ul show print it. */
export function showLine(ul: Usrloc, c: UContact): string {
  return `<${c.uri}>;q=${fmtQ2(c.q)};expires=${remaining(c, ul.now(), ul.uptime())}`;
}

function ok(reason: string, body?: string, data?: unknown): MgmtReply {
  return { code: 200, reason, body, data };
}
function fail(code: number, reason: string): MgmtReply {
  return { code, reason };
}

/** The table of a management command: it must exist (used by the script or created before). */
function tableOf(ul: Usrloc, name: string | undefined): UDomain | MgmtReply {
  if (!name) return fail(400, 'table name missing');
  const d = ul.existing(name);
  if (!d) return fail(400, `Table '${name}' does not exist`);
  return d;
}
const isReply = (x: unknown): x is MgmtReply => typeof (x as MgmtReply).code === 'number';

function statsOf(ul: Usrloc): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of ul.domains.values()) {
    out[`${d.name}_registered`] = d.size;
    out[`${d.name}_expired`] = d.expired;
    out[`${d.name}_contacts`] = d.contactCount;
  }
  out.db_errors = ul.dbErrors;
  out.contacts_refused = ul.refused;
  return out;
}

const PARAMS = {
  db_url: dbUrlParam(),
  db_mode: {
    type: 'int',
    default: 0,
    validate(v: ParamValue) {
      if (![0, 1, 2, 3].includes(Number(v))) throw new FixupError('db_mode must be 0, 1, 2 or 3');
    },
  },
  timer_interval: {
    type: 'int',
    default: 60,
    validate(v: ParamValue) {
      if (!(Number(v) >= 1)) throw new FixupError('timer_interval must be at least 1 second');
    },
  },
  use_domain: { type: 'int', default: 0 },
  // not in SER, whose bound was the shared memory (-m): -1 derives it from the heap
  max_contacts_total: {
    type: 'int',
    default: -1,
    validate(v: ParamValue) {
      if (!(Number(v) >= -1))
        throw new FixupError('max_contacts_total must be -1 (from the heap), 0 (none) or more');
    },
  },
} as const;

/**
 * The default bound on contacts in memory: a quarter of V8's heap limit at 1 KiB each
 * (a stored contact with short strings measures about 400 bytes with its share of the
 * table; 1 KiB leaves room for long URIs and Path). About a million on a 4 GB heap.
 */
export function defaultMaxContacts(): number {
  return Math.floor((getHeapStatistics().heap_size_limit * 0.25) / 1024);
}

/**
 * Multi-process model (fork=yes, children>1): every worker holds the whole location table.
 * A change applied here is broadcast and applied in memory by the others (the worker that
 * made it alone writes the database); a restarted worker asks a peer for a snapshot.
 */
function replicate(ul: Usrloc, core: CoreApi): void {
  const bus = clusterBus();
  if (!bus || ul.mode === 3) return; // db_mode 3: the database is the shared store
  // the change is answered (a REGISTER's 200) only once every worker has it
  ul.onChange = (table, aor, ch) => bus.publish('usrloc', { table, aor, put: ch.put, del: ch.del });
  bus.on('usrloc', (p) => {
    const e = p as { table: string; aor: string; put: UContact[]; del: string[] };
    return ul
      .applyReplica(e.table, e.aor, e)
      .catch((err: unknown) =>
        core.log.err(`usrloc: replicated change of ${e.aor} not applied: ${(err as Error).message}`),
      );
  });
  bus.onSnapshot('usrloc', () => ul.snapshot());
}

export default defineModule<Usrloc>({
  name: 'usrloc',
  params: PARAMS,
  async init(core, params) {
    const ul = new Usrloc(core, {
      dbUrl: String(params.db_url ?? DEFAULT_DB_URL),
      dbMode: Number(params.db_mode ?? 0) as DbMode,
      timerInterval: Number(params.timer_interval ?? 60),
      useDomain: Number(params.use_domain ?? 0) !== 0,
      maxContacts:
        Number(params.max_contacts_total ?? -1) < 0
          ? defaultMaxContacts()
          : Number(params.max_contacts_total),
    });
    const tables = [...scriptTables];
    scriptTables.clear();
    await ul.start(tables);
    byCore.set(core, ul);
    replicate(ul, core);
    core.addStats('usrloc', () => statsOf(ul));
    return ul;
  },
  async destroy(ul) {
    await ul.stop();
  },
  mgmt: {
    ul_stats: {
      help: 'usrloc statistics: per table the registered users and the expired contacts',
      run(ul) {
        const lines = ['Domain Registered Expired'];
        const data: Record<string, { registered: number; expired: number; contacts: number }> = {};
        for (const d of [...ul.domains.values()].sort((a, b) => a.name.localeCompare(b.name))) {
          lines.push(`'${d.name}' ${d.size} ${d.expired}`);
          data[d.name] = { registered: d.size, expired: d.expired, contacts: d.contactCount };
        }
        return ok('OK', lines.join('\n'), data);
      },
    },
    ul_rm: {
      help: 'ul_rm <table> <user>: remove every contact of the user',
      async run(ul, [table, user]) {
        const d = tableOf(ul, table);
        if (isReply(d)) return d;
        if (!user) return fail(400, 'user name missing');
        const aor = ul.normalizeAor(user);
        try {
          await ul.removeAll(d.name, aor);
        } catch (e) {
          return fail(500, `Error while deleting user: ${(e as Error).message}`);
        }
        return ok(`user (${d.name}, ${user}) deleted`);
      },
    },
    ul_rm_contact: {
      help: 'ul_rm_contact <table> <user> <contact>: remove one contact of the user',
      async run(ul, [table, user, contact]) {
        const d = tableOf(ul, table);
        if (isReply(d)) return d;
        if (!user || !contact) return fail(400, 'user name or contact missing');
        const aor = ul.normalizeAor(user);
        try {
          const list = await ul.contacts(d.name, aor);
          if (list.length === 0) return fail(404, `Username ${user} in table ${d.name} not found`);
          const hit = list.find((c) => c.uri === contact || c.uri === contact.replace(/^<(.*)>$/, '$1'));
          if (!hit) return fail(404, `Contact ${contact} of ${user} in table ${d.name} not found`);
          await ul.apply(d.name, aor, { put: [], del: [hit.uri] });
        } catch (e) {
          return fail(500, `Error while deleting contact: ${(e as Error).message}`);
        }
        return ok(`contact (${d.name}, ${user}, ${contact}) deleted`);
      },
    },
    ul_dump: {
      help: 'print the contents of the user location tables',
      async run(ul) {
        const lines: string[] = [];
        const data: Record<string, Record<string, unknown[]>> = {};
        const now = ul.now();
        for (const d of [...ul.domains.values()].sort((a, b) => a.name.localeCompare(b.name))) {
          data[d.name] = {};
          lines.push(`Domain: '${d.name}' users=${d.size} contacts=${d.contactCount} expired=${d.expired}`);
          for (const aor of d.aors()) {
            const live = d.all(aor).filter((c) => isValid(c, now));
            if (live.length === 0) continue;
            lines.push(`  AOR: ${aor}`);
            data[d.name][aor] = live.map((c) => ({ ...c, expiresIn: remaining(c, now, ul.uptime()) }));
            for (const c of live) {
              let l = `    ${showLine(ul, c)} callid=${c.callId} cseq=${c.cseq} flags=${c.flags}`;
              if (c.userAgent) l += ` ua="${c.userAgent}"`;
              if (c.received) l += ` received=${c.received}`;
              if (c.socket) l += ` socket=${c.socket}`;
              lines.push(l);
            }
          }
        }
        if (ul.mode === 3) lines.push('(db_mode 3: the contacts are in the database only)');
        return ok('OK', lines.join('\n'), data);
      },
    },
    ul_flush: {
      help: 'write the pending changes of the in-memory tables to the database now',
      async run(ul) {
        return (await ul.flush()) ? ok('flushed') : fail(500, 'flush failed; changes kept for the next try');
      },
    },
    ul_add: {
      help: 'ul_add <table> <user> <contact> <expires> <q> [<replicate> [<flags>]]: add a contact (expires 0: permanent)',
      async run(ul, args) {
        const [table, user, contact, expS, qS, , flagsS] = args;
        const d = tableOf(ul, table);
        if (isReply(d)) return d;
        if (!user || !contact || expS === undefined || qS === undefined) {
          return fail(400, 'ul_add: table, user, contact, expires and q are needed');
        }
        const uri = contact.replace(/^<(.*)>$/, '$1');
        try {
          parseUri(uri);
        } catch {
          return fail(400, `ul_add: bad contact '${contact}'`);
        }
        if (!/^\d+$/.test(expS.trim())) return fail(400, `ul_add: bad expires '${expS}'`);
        const q = Number(qS);
        if (qS.trim() === '' || !(q >= 0 && q <= 1)) return fail(400, `ul_add: bad q '${qS}'`);
        const flags = flagsS && /^\d+$/.test(flagsS) ? Number(flagsS) : 0;
        const exp = Number(expS);
        const now = ul.nowMs();
        const c: UContact = {
          uri,
          expires: exp === 0 ? 0 : now / 1000 + exp,
          q: Math.round(q * 1000),
          callId: 'ul_add.fifo',
          cseq: 1,
          userAgent: intern('SER management interface'),
          received: undefined,
          path: undefined,
          socket: undefined,
          flags: exp === 0 ? flags | FL_PERMANENT : flags,
          lastModified: now,
        };
        try {
          await ul.apply(d.name, ul.normalizeAor(user), { put: [c], del: [] });
        } catch (e) {
          return fail(500, `ul_add: ${(e as Error).message}`);
        }
        return ok('Added to table', `('${user}','${uri}') to '${d.name}'`);
      },
    },
    ul_show_contact: {
      help: "ul_show_contact <table> <user>: the user's contacts with q and seconds left",
      async run(ul, [table, user]) {
        const d = tableOf(ul, table);
        if (isReply(d)) return d;
        if (!user) return fail(400, 'user name missing');
        let list: UContact[];
        try {
          list = await ul.contacts(d.name, ul.normalizeAor(user));
        } catch (e) {
          return fail(500, `ul_show_contact: ${(e as Error).message}`);
        }
        if (list.length === 0) return fail(404, `Username ${user} in table ${d.name} not found`);
        const lines = list.map((c) => showLine(ul, c));
        return ok(
          'OK',
          lines.join('\n'),
          list.map((c) => ({ contact: c.uri, q: c.q / 1000, expires: remaining(c, ul.now(), ul.uptime()) })),
        );
      },
    },
  },
});
