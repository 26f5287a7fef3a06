/**
 * allow_trusted(): is the request's source a trusted peer? A row of the `trusted` table
 * (src_ip, proto, from_pattern) trusts requests from that IP address over that
 * transport ("any" for every one) whose From URI matches the pattern (an empty pattern
 * matches every From). Trusted peers are typically gateways that cannot do digest
 * authentication.
 */
import type { CoreApi } from '../../core/api.js';
import type { MsgContext } from '../../core/context.js';
import { L_ERR } from '../../core/log.js';
import type { Db } from '../../db/index.js';
import { PosixRegexError, posixRegExp } from '../../script/posix-regex.js';

export interface TrustedRule {
  /** lower-case transport, or "any" */
  proto: string;
  /** undefined: every From */
  from: RegExp | undefined;
  /** as stored, for trusted_dump */
  pattern: string;
}

export interface TrustedState {
  core: CoreApi;
  /** undefined without a db_url: allow_trusted is always false */
  db: Db | undefined;
  mode: 0 | 1;
  selectAll: string;
  selectByIp: string;
  /** source IP → rules; undefined until a load succeeded */
  cache: Map<string, TrustedRule[]> | undefined;
  lastAttempt: number;
  loading: Promise<number> | undefined;
  reloads: number;
  errors: number;
}

const RETRY_MS = 5000;

/** A rule from a row; undefined (logged once) when its pattern is not a valid regex. */
export function ruleOf(core: CoreApi, proto: unknown, pattern: unknown): TrustedRule | undefined {
  const p = pattern === null || pattern === undefined ? '' : String(pattern);
  let from: RegExp | undefined;
  if (p !== '') {
    try {
      from = posixRegExp(p);
    } catch (e) {
      if (!(e instanceof PosixRegexError)) throw e;
      core.log.once(
        L_ERR,
        `trusted:${p}`,
        `ERROR: permissions: trusted from_pattern "${p}" is not a valid regular expression: ${e.message}; row ignored`,
      );
      return undefined;
    }
  }
  return { proto: String(proto ?? 'any').toLowerCase() || 'any', from, pattern: p };
}

export function reloadTrusted(st: TrustedState): Promise<number> {
  if (st.loading) return st.loading;
  st.lastAttempt = Date.now();
  const db = st.db;
  if (!db) return Promise.reject(new Error('no db_url set for the permissions module'));
  st.loading = (async () => {
    try {
      const r = await db.query<{ ip: unknown; proto: unknown; pat: unknown }>(st.selectAll);
      const map = new Map<string, TrustedRule[]>();
      let n = 0;
      for (const row of r.rows) {
        const rule = ruleOf(st.core, row.proto, row.pat);
        if (!rule) continue;
        const ip = String(row.ip).toLowerCase();
        let list = map.get(ip);
        if (!list) map.set(ip, (list = []));
        list.push(rule);
        n++;
      }
      st.cache = map;
      st.reloads++;
      return n;
    } finally {
      st.loading = undefined;
    }
  })();
  return st.loading;
}

function matches(rules: readonly TrustedRule[], proto: string, from: string | undefined): boolean {
  for (const r of rules) {
    if (r.proto !== 'any' && r.proto !== proto) continue;
    if (r.from === undefined) return true;
    if (from !== undefined && r.from.test(from)) return true;
  }
  return false;
}

function fromUri(ctx: MsgContext): string | undefined {
  try {
    return ctx.msg.from.uri;
  } catch {
    return undefined;
  }
}

async function queryRules(st: TrustedState, ip: string): Promise<TrustedRule[] | undefined> {
  if (!st.db) return undefined;
  try {
    const r = await st.db.query<{ proto: unknown; pat: unknown }>(st.selectByIp, [ip]);
    const out: TrustedRule[] = [];
    for (const row of r.rows) {
      const rule = ruleOf(st.core, row.proto, row.pat);
      if (rule) out.push(rule);
    }
    return out;
  } catch (e) {
    st.errors++;
    st.core.log.err(`allow_trusted(): query failed: ${(e as Error).message}`);
    return undefined;
  }
}

/** 1 when a trusted row matches the request's source, transport and From URI, else -1. */
export function allowTrusted(st: TrustedState, ctx: MsgContext): number | Promise<number> {
  if (!st.db) {
    st.core.log.once(
      L_ERR,
      'trusted:nodb',
      'ERROR: allow_trusted(): the permissions module has no db_url: no peer is trusted',
    );
    return -1;
  }
  const ip = ctx.src.ip.toLowerCase();
  const proto = ctx.src.proto;
  if (st.mode === 1) {
    if (st.cache) {
      const rules = st.cache.get(ip);
      return rules !== undefined && matches(rules, proto, fromUri(ctx)) ? 1 : -1;
    }
    if (Date.now() - st.lastAttempt >= RETRY_MS) {
      reloadTrusted(st).catch((e) =>
        st.core.log.err(`permissions: loading the trusted table failed: ${e.message}`),
      );
    }
  }
  return queryRules(st, ip).then((rules) =>
    rules !== undefined && matches(rules, proto, fromUri(ctx)) ? 1 : -1,
  );
}
