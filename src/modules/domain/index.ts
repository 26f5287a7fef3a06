/**
 * domain — the domains this server is responsible for, kept in the `domain` table
 * ("dynamic domain management … hosting of multiple domains in run-time", seed 003):
 * is_from_local(), is_uri_host_local() and is_domain_local(pv) are true when the host
 * is one of them. With db_mode 1 the table is read into memory at start-up and again on
 * the management command domain_reload (serctl domain add/rm sends it); with db_mode 0
 * every check is a query.
 */
import type { CoreApi } from '../../core/api.js';
import type { MsgContext } from '../../core/context.js';
import {
  ANY_ROUTE,
  type ArgSpec,
  defineModule,
  FixupError,
  type MgmtReply,
  REQUEST_ROUTES,
} from '../../core/module.js';
import type { Db } from '../../db/index.js';
import { describeArg } from '../../script/args.js';
import { parseUri } from '../../sip/uri.js';
import { dbUrlParam, flagParam, identParam, openModuleDb } from '../group/common.js';
import { compileFormat, type Format } from '../xlog/index.js';

/** how long a failed start-up load waits before the next check tries again */
const RETRY_MS = 5000;

export interface DomainState {
  core: CoreApi;
  db: Db;
  /** 1: answer from `cache` */
  mode: 0 | 1;
  selectAll: string;
  selectOne: string;
  /** lower-case domains; undefined until a load succeeded (checks then query the table) */
  cache: Set<string> | undefined;
  lastAttempt: number;
  loading: Promise<number> | undefined;
  reloads: number;
  errors: number;
}

/** Reads the whole table into a new set and swaps it in; resolves to the domain count. */
export function reload(st: DomainState): Promise<number> {
  if (st.loading) return st.loading;
  st.lastAttempt = Date.now();
  st.loading = (async () => {
    try {
      const r = await st.db.query<Record<string, unknown>>(st.selectAll);
      const set = new Set<string>();
      for (const row of r.rows) {
        const v = Object.values(row)[0];
        if (typeof v === 'string' && v !== '') set.add(v.toLowerCase());
      }
      st.cache = set;
      st.reloads++;
      return set.size;
    } finally {
      st.loading = undefined;
    }
  })();
  return st.loading;
}

async function queryOne(st: DomainState, host: string): Promise<number> {
  try {
    const r = await st.db.query(st.selectOne, [host]);
    return r.rows.length > 0 ? 1 : -1;
  } catch (e) {
    st.errors++;
    st.core.log.err(`domain: query failed: ${(e as Error).message}`);
    return -1;
  }
}

/** 1 when `host` is a local domain, -1 otherwise (or when the table cannot be read). */
export function isDomainLocal(st: DomainState, host: string | undefined): number | Promise<number> {
  if (!host) return -1;
  const h = host.toLowerCase();
  if (st.mode === 1) {
    if (st.cache) return st.cache.has(h) ? 1 : -1;
    // the start-up load failed: ask the table, and try to load it again now and then
    if (Date.now() - st.lastAttempt >= RETRY_MS) {
      reload(st).catch((e) => st.core.log.err(`domain: loading the domain table failed: ${e.message}`));
    }
  }
  return queryOne(st, h);
}

function hostOf(uri: string | undefined): string | undefined {
  if (!uri) return undefined;
  try {
    const u = parseUri(uri);
    return u.host || undefined;
  } catch {
    return undefined;
  }
}

/** is_domain_local's argument: a pseudo-variable ("$fd", "$rd", "$avp(s:dom)") or a text with some. */
function pvArg(): ArgSpec<Format> {
  return {
    name: 'pseudo-variable',
    fixup(a) {
      if (a.kind !== 'string')
        throw new FixupError(`pseudo-variable must be a quoted string, not ${describeArg(a)}`);
      if (a.value === '') throw new FixupError('pseudo-variable must not be empty');
      return compileFormat(a.value);
    },
  };
}

/** The value of a compiled format; undefined when a part of it has no value. */
function pvValue(fmt: Format, ctx: MsgContext): string | undefined {
  let out = '';
  for (const p of fmt) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    let v: string | number | undefined;
    try {
      v = p(ctx);
    } catch {
      return undefined;
    }
    if (v === undefined || v === '') return undefined;
    out += String(v);
  }
  return out;
}

async function listDomains(st: DomainState): Promise<string[]> {
  if (st.mode === 1 && st.cache) return [...st.cache].sort();
  const r = await st.db.query<Record<string, unknown>>(st.selectAll);
  return r.rows.map((row) => String(Object.values(row)[0])).sort();
}

export default defineModule<DomainState>({
  name: 'domain',
  params: {
    db_url: dbUrlParam(),
    db_mode: flagParam(0),
    domain_table: identParam('domain'),
    domain_col: identParam('domain'),
  },
  functions: {
    is_from_local: {
      signatures: [[]],
      routes: REQUEST_ROUTES,
      async: true,
      run(ctx, st: DomainState) {
        let uri: string | undefined;
        try {
          uri = ctx.msg.from.uri;
        } catch {
          return -1;
        }
        return isDomainLocal(st, hostOf(uri));
      },
    },
    is_uri_host_local: {
      signatures: [[]],
      routes: REQUEST_ROUTES,
      async: true,
      run(ctx, st: DomainState) {
        return ctx.msg.isRequest ? isDomainLocal(st, hostOf(ctx.ruri)) : -1;
      },
    },
    is_domain_local: {
      signatures: [[pvArg()]],
      routes: ANY_ROUTE,
      async: true,
      run(ctx, st: DomainState, fmt: Format) {
        return isDomainLocal(st, pvValue(fmt, ctx));
      },
    },
  },
  mgmt: {
    domain_reload: {
      help: 'read the domain table into the cache again (db_mode 1)',
      async run(st): Promise<MgmtReply> {
        if (st.mode !== 1)
          return { code: 200, reason: 'OK', body: 'db_mode 0: the domain table is not cached' };
        try {
          const n = await reload(st);
          return { code: 200, reason: 'OK', body: `${n} domain(s) loaded`, data: { domains: n } };
        } catch (e) {
          return { code: 500, reason: `Domain table reload failed: ${(e as Error).message}` };
        }
      },
    },
    domain_dump: {
      help: 'list the local domains (the cache in db_mode 1, the table in db_mode 0)',
      async run(st): Promise<MgmtReply> {
        try {
          const list = await listDomains(st);
          return { code: 200, reason: 'OK', body: list.join('\n'), data: list };
        } catch (e) {
          return { code: 500, reason: `Domain table read failed: ${(e as Error).message}` };
        }
      },
    },
  },
  async init(core, params) {
    const table = String(params.domain_table);
    const db = await openModuleDb(core, 'domain', String(params.db_url), [{ name: table, layout: 'domain' }]);
    const t = db.quoteIdent(table);
    const c = db.quoteIdent(String(params.domain_col));
    const st: DomainState = {
      core,
      db,
      mode: Number(params.db_mode) === 1 ? 1 : 0,
      selectAll: `SELECT ${c} FROM ${t}`,
      selectOne: `SELECT ${c} FROM ${t} WHERE LOWER(${c}) = ? LIMIT 1`,
      cache: undefined,
      lastAttempt: 0,
      loading: undefined,
      reloads: 0,
      errors: 0,
    };
    if (st.mode === 1) {
      try {
        await reload(st);
      } catch (e) {
        core.log.err(
          `domain: cannot load the domain table at start-up, querying it until it loads: ${(e as Error).message}`,
        );
      }
    }
    core.addStats?.('domain', () => ({
      domains: st.cache?.size ?? 0,
      reloads: st.reloads,
      errors: st.errors,
    }));
    return st;
  },
  async destroy(st) {
    await st.loading?.catch(() => {});
    await st.db.close();
  },
});
