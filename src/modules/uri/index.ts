/**
 * uri (and uri_db, the same module under SER's other name): check_to(), check_from(),
 * is_user(), has_totag(), and does_uri_exist() against the subscriber table.
 */
import type { CoreApi } from '../../core/api.js';
import type { MsgContext } from '../../core/context.js';
import { L_ERR } from '../../core/log.js';
import { defineModule, FixupError, type ModuleDef, REQUEST_ROUTES } from '../../core/module.js';
import { DEFAULT_DB_URL, type Db, type DbParam, isDbError, openDb } from '../../db/index.js';
import * as A from '../../script/args.js';
import { parseUri, unescapeUnreserved } from '../../sip/uri.js';
import { usrlocFor } from '../usrloc/index.js';
import { checkUsername, hasToTag, isUser } from './checks.js';
import { dbUrlParam } from '../db-param.js';

export interface UriState {
  core: CoreApi;
  dbUrl: string;
  table: string;
  userColumn: string;
  domainColumn: string;
  useDomain: boolean;
  db: Db | undefined;
}

/** an alias in usrloc's "aliases" table (serctl alias add), when usrloc is loaded and has one */
async function isAlias(st: UriState, user: string, host: string): Promise<boolean> {
  const ul = usrlocFor(st.core);
  if (!ul?.domains.has('aliases')) return false;
  const aor = ul.normalizeAor(ul.opts.useDomain ? `${user}@${host}` : user);
  return (await ul.contacts('aliases', aor)).length > 0;
}

/**
 * does_uri_exist(): the Request-URI's user is a subscriber (with use_domain: in its host's
 * domain), or an alias of one in usrloc's aliases table.
 */
export async function doesUriExist(st: UriState, ctx: MsgContext): Promise<number> {
  let user: string | undefined;
  let host: string;
  try {
    const u = parseUri(ctx.ruri);
    user = u.user ? unescapeUnreserved(u.user) : undefined;
    host = u.host.toLowerCase();
  } catch {
    return -1;
  }
  if (!user) return -1;
  try {
    if (!st.db) st.db = await openDb(st.dbUrl, { connectTimeoutMs: 3000, queryTimeoutMs: 5000 });
    const where: Record<string, DbParam> = { [st.userColumn]: user };
    if (st.useDomain) where[st.domainColumn] = host;
    if ((await st.db.count(st.table, where)) > 0) return 1;
    return (await isAlias(st, user, host)) ? 1 : -1;
  } catch (e) {
    st.core.log.log(
      L_ERR,
      `ERROR: does_uri_exist: cannot read table '${st.table}': ${isDbError(e) ? e.message : (e as Error).message}`,
    );
    ctx.lastError = { code: 500, reason: 'Server Internal Error' };
    return -1;
  }
}

function tableName(v: unknown): void {
  if (typeof v !== 'string' || !/^[A-Za-z_][\w.]*$/.test(v))
    throw new FixupError('must be a table or column name');
}

function defineUri(name: string): ModuleDef<UriState> {
  return defineModule<UriState>({
    name,
    params: {
      db_url: dbUrlParam(),
      subscriber_table: { type: 'string', default: 'subscriber', validate: tableName },
      subscriber_user_column: { type: 'string', default: 'username', validate: tableName },
      subscriber_domain_column: { type: 'string', default: 'domain', validate: tableName },
      use_domain: { type: 'int', default: 0 },
    },
    init(core, p) {
      return {
        core,
        dbUrl: String(p.db_url ?? DEFAULT_DB_URL),
        table: String(p.subscriber_table ?? 'subscriber'),
        userColumn: String(p.subscriber_user_column ?? 'username'),
        domainColumn: String(p.subscriber_domain_column ?? 'domain'),
        useDomain: Number(p.use_domain ?? 0) !== 0,
        db: undefined,
      };
    },
    async destroy(st) {
      await st.db?.close().catch(() => {});
    },
    functions: {
      check_to: { signatures: [[]], routes: REQUEST_ROUTES, run: (ctx) => checkUsername(ctx, 'to') },
      check_from: { signatures: [[]], routes: REQUEST_ROUTES, run: (ctx) => checkUsername(ctx, 'from') },
      is_user: {
        signatures: [[A.str('user', { allowBare: true, nonEmpty: true })]],
        routes: REQUEST_ROUTES,
        run: (ctx, _st, user: string) => isUser(ctx, user),
      },
      has_totag: { signatures: [[]], routes: REQUEST_ROUTES, run: (ctx) => hasToTag(ctx) },
      does_uri_exist: {
        signatures: [[]],
        routes: REQUEST_ROUTES,
        async: true,
        run: (ctx, st) => doesUriExist(st, ctx),
      },
    },
  });
}

export const uri = defineUri('uri');
/** SER 0.9 / OpenSER load check_to, check_from and does_uri_exist as uri_db.so */
export const uriDb = defineUri('uri_db');
export default uri;
