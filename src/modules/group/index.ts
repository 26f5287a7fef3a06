/**
 * group — group membership over the `grp` table (SER 0.9 group module):
 * is_user_in("Request-URI" | "To" | "From" | "Credentials", "group") is true when the
 * user named by that part of the request is a member of the group. "Credentials" is
 * the identity proven by a successful www_authorize/proxy_authorize, which is what an
 * access-control policy must check (seed 000: "for PSTN access one should check the
 * credentials"); the other three are claims anyone can write.
 */
import type { CoreApi } from '../../core/api.js';
import type { MsgContext } from '../../core/context.js';
import { L_ERR } from '../../core/log.js';
import { type ArgSpec, defineModule, FixupError, REQUEST_ROUTES } from '../../core/module.js';
import type { Db } from '../../db/index.js';
import { describeArg, str } from '../../script/args.js';
import { parseUri, unescapeUnreserved } from '../../sip/uri.js';
import { dbUrlParam, flagParam, identParam, openModuleDb } from './common.js';
import { authorizedIdentity } from './credentials.js';

/** Where is_user_in takes the user from (SER's hf_type). */
export type UserSource = 'ruri' | 'to' | 'from' | 'credentials';

const SOURCES: Readonly<Record<string, UserSource>> = {
  'request-uri': 'ruri',
  to: 'to',
  from: 'from',
  credentials: 'credentials',
};

export interface GroupState {
  core: CoreApi;
  db: Db;
  useDomain: boolean;
  /** the membership query, with or without the domain condition */
  sql: string;
  /** queries answered / failed, for statistics */
  checks: number;
  errors: number;
}

/** The first argument: a header name as SER spells it, in any letter case. */
function sourceArg(): ArgSpec<UserSource> {
  return {
    name: 'header',
    fixup(a) {
      if (a.kind !== 'string' && a.kind !== 'ident')
        throw new FixupError(`header must be a quoted string, not ${describeArg(a)}`);
      const s = SOURCES[a.value.toLowerCase()];
      if (s === undefined)
        throw new FixupError(
          `unknown header "${a.value}" (expected "Request-URI", "To", "From" or "Credentials")`,
        );
      return s;
    },
  };
}

/** user and domain of a SIP URI; undefined when it has no user or does not parse */
function userOfUri(uri: string | undefined): { user: string; domain: string } | undefined {
  if (!uri) return undefined;
  try {
    const u = parseUri(uri);
    if ((u.kind !== 'sip' && u.kind !== 'sips') || !u.user) return undefined;
    return { user: unescapeUnreserved(u.user), domain: u.host.toLowerCase() };
  } catch {
    return undefined;
  }
}

/** The user and domain is_user_in checks, or undefined when the request does not name one. */
export function userOf(
  ctx: MsgContext,
  src: UserSource,
  log?: CoreApi['log'],
): { user: string; domain: string } | undefined {
  try {
    switch (src) {
      case 'ruri':
        return ctx.msg.isRequest ? userOfUri(ctx.ruri) : undefined;
      case 'to':
        return userOfUri(ctx.msg.to.uri);
      case 'from':
        return userOfUri(ctx.msg.from.uri);
      case 'credentials': {
        const c = authorizedIdentity(ctx);
        if (c === undefined) {
          // SER logs this as a script error: the check must follow a successful *_authorize
          log?.once(
            L_ERR,
            'group:nocred',
            'ERROR: is_user_in(): no authorized credentials found (call www_authorize/proxy_authorize first)',
          );
          return undefined;
        }
        return c;
      }
    }
  } catch {
    // a From/To that does not parse names nobody
    return undefined;
  }
}

export async function isUserIn(
  st: GroupState,
  ctx: MsgContext,
  src: UserSource,
  group: string,
): Promise<number> {
  const who = userOf(ctx, src, st.core.log);
  if (who === undefined) return -1;
  const params = st.useDomain ? [who.user, group, who.domain] : [who.user, group];
  try {
    const r = await st.db.query(st.sql, params);
    st.checks++;
    return r.rows.length > 0 ? 1 : -1;
  } catch (e) {
    st.errors++;
    st.core.log.err(`is_user_in(): query failed: ${(e as Error).message}`);
    return -1;
  }
}

export default defineModule<GroupState>({
  name: 'group',
  params: {
    db_url: dbUrlParam(),
    table: identParam('grp'),
    user_column: identParam('username'),
    domain_column: identParam('domain'),
    group_column: identParam('grp'),
    use_domain: flagParam(0),
  },
  functions: {
    is_user_in: {
      signatures: [[sourceArg(), str('group', { nonEmpty: true })]],
      routes: REQUEST_ROUTES,
      async: true,
      run: (ctx, st: GroupState, src: UserSource, group: string) => isUserIn(st, ctx, src, group),
    },
  },
  async init(core, params) {
    const table = String(params.table);
    const db = await openModuleDb(core, 'group', String(params.db_url), [{ name: table, layout: 'grp' }]);
    const q = (n: unknown) => db.quoteIdent(String(n));
    const useDomain = Number(params.use_domain) === 1;
    const sql =
      `SELECT ${q(params.group_column)} FROM ${q(table)} WHERE ${q(params.user_column)} = ? AND ${q(params.group_column)} = ?` +
      (useDomain ? ` AND LOWER(${q(params.domain_column)}) = ?` : '');
    const st: GroupState = { core, db, useDomain, sql: `${sql} LIMIT 1`, checks: 0, errors: 0 };
    core.addStats?.('group', () => ({ checks: st.checks, errors: st.errors }));
    return st;
  },
  async destroy(st) {
    await st.db.close();
  },
});
