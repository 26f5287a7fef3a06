/**
 * auth_db — digest credentials from the subscriber table: www_authorize(realm, table)
 * checks the Authorization header of a request (REGISTER), proxy_authorize(realm, table)
 * the Proxy-Authorization header (requests a proxy relays). The protocol checks are the
 * auth module's; this module supplies the HA1 (stored, or computed from a plain password).
 */
import type { MsgContext } from '../../core/context.js';
import { L_ERR } from '../../core/log.js';
import { type ArgSpec, defineModule, FixupError, type RouteKind } from '../../core/module.js';

/** authorize may answer (400, unknown_user_code): where sl_send_reply may run */
const REPLY_ROUTES: readonly RouteKind[] = ['request', 'failure'];
import { DEFAULT_DB_URL, type Db, isDbError, openDb } from '../../db/index.js';
import * as A from '../../script/args.js';
import { describeArg } from '../../script/args.js';
import { digestHash } from '../../sip/digest.js';
import { detach } from '../../sip/util.js';
import {
  AUTH_INVALID_PASSWORD,
  AUTH_OK,
  AUTH_STOP,
  AUTH_USER_UNKNOWN,
  authorize,
  type Ha1Lookup,
  type Ha1Source,
  type HfType,
} from '../auth/authorize.js';
import { authReply } from '../auth/challenge.js';
import type { AuthState } from '../auth/state.js';
import { type SubscriberRow, SubscriberStore } from './store.js';
import { dbUrlParam } from '../db-param.js';

export interface AuthDbState {
  auth: AuthState;
  store: SubscriberStore;
  calculateHa1: boolean;
  /** reply code for an unknown user (the script stops); 0: return -1 as SER */
  unknownUserCode: number;
}

const UNKNOWN_USER_REASON: Record<number, string> = { 403: 'Forbidden', 404: 'Not Found' };

function tableArg(): ArgSpec<string> {
  return {
    name: 'table',
    fixup(a) {
      if ((a.kind !== 'string' && a.kind !== 'ident') || a.value === '')
        throw new FixupError(`table must be a table name, not ${describeArg(a)}`);
      if (!/^[A-Za-z_][\w.]*$/.test(a.value)) throw new FixupError(`"${a.value}" is not a table name`);
      return a.value;
    },
  };
}

/** HA1 for the credentials from a subscriber row. */
export function ha1Of(
  st: AuthDbState,
  row: SubscriberRow,
  q: { username: string; realm: string; algorithm: string },
): Ha1Lookup {
  if (st.calculateHa1) {
    // the column holds the plain password: any algorithm can be computed. A cached row keeps
    // its last HA1: a phone re-registering asks for the same one every time
    const m = row.ha1Memo;
    if (m !== undefined && m.username === q.username && m.realm === q.realm && m.algorithm === q.algorithm)
      return { kind: 'ha1', ha1: m.ha1 };
    const ha1 = digestHash(q.algorithm, `${q.username}:${q.realm}:${row.password}`);
    row.ha1Memo = {
      algorithm: detach(q.algorithm),
      username: detach(q.username),
      realm: detach(q.realm),
      ha1,
    };
    return { kind: 'ha1', ha1 };
  }
  if (q.algorithm.toUpperCase().startsWith('SHA-256')) {
    st.auth.core.log.log(
      L_ERR,
      `ERROR: auth_db: ${q.algorithm} needs calculate_ha1=1 (the stored HA1 columns are MD5)`,
    );
    return { kind: 'error' };
  }
  // "user@domain" usernames were hashed with the whole name: the ha1b column (SER)
  const stored = q.username.includes('@') ? row.password2 : row.password;
  return { kind: 'ha1', ha1: stored.trim().toLowerCase() };
}

export function dbAuthorize(
  st: AuthDbState,
  ctx: MsgContext,
  realm: string,
  table: string,
  hf: HfType,
): number | Promise<number> {
  const log = st.auth.core.log;
  let fromCache = false;
  let fresh = false;
  let used: SubscriberRow | null = null;
  const found = (row: SubscriberRow | null, q: Parameters<Ha1Source>[0]): Ha1Lookup => {
    used = row;
    if (row === null) return { kind: 'unknown' };
    return ha1Of(st, row, q);
  };
  // a cached row answers at once; only a database read makes a promise
  const source: Ha1Source = (q) => {
    const row = fresh ? undefined : st.store.cached(table, q.user, q.domain);
    fromCache = row !== undefined;
    if (row !== undefined) return found(row, q);
    return st.store.fetch(table, q.user, q.domain).then(
      (r) => found(r, q),
      (e): Ha1Lookup => {
        log.log(
          L_ERR,
          `ERROR: auth_db: cannot read table '${table}': ${isDbError(e) ? e.message : (e as Error).message}`,
        );
        ctx.lastError = { code: 500, reason: 'Server Internal Error' };
        return { kind: 'error' };
      },
    );
  };
  const reject = (c: MsgContext, code: number, reason: string) => void authReply(st.auth, c, code, reason);
  const settle = (r: number): number => {
    if (r === AUTH_USER_UNKNOWN && st.unknownUserCode > 0) {
      authReply(st.auth, ctx, st.unknownUserCode, UNKNOWN_USER_REASON[st.unknownUserCode] ?? 'Forbidden');
      return AUTH_STOP;
    }
    const row = used as SubscriberRow | null;
    if (r === AUTH_OK && row?.rpid) ctx.avps.set(st.auth.rpidAvp, [row.rpid]);
    return r;
  };
  const first = (r: number): number | Promise<number> => {
    // a cached row may predate a password change: ask the database before refusing
    if ((r === AUTH_INVALID_PASSWORD || r === AUTH_USER_UNKNOWN) && fromCache) {
      fresh = true;
      const again = authorize(st.auth, ctx, realm, hf, source, reject);
      return typeof again === 'number' ? settle(again) : again.then(settle);
    }
    return settle(r);
  };
  const r = authorize(st.auth, ctx, realm, hf, source, reject);
  return typeof r === 'number' ? first(r) : r.then(first);
}

export default defineModule<AuthDbState>({
  name: 'auth_db',
  deps: ['auth'],
  params: {
    db_url: dbUrlParam(),
    user_column: { type: 'string', default: 'username' },
    domain_column: { type: 'string', default: 'domain' },
    // unset: "ha1", or "password" when calculate_ha1 is on
    password_column: { type: 'string', default: undefined },
    password_column_2: { type: 'string', default: 'ha1b' },
    rpid_column: { type: 'string', default: 'rpid' },
    calculate_ha1: { type: 'int', default: 0 },
    use_domain: { type: 'int', default: 0 },
    unknown_user_code: {
      type: 'int',
      default: 0,
      validate(v) {
        if (v !== 0 && v !== 403 && v !== 404)
          throw new FixupError('unknown_user_code must be 0, 403 or 404');
      },
    },
    cache_ttl: {
      type: 'int',
      default: 5,
      validate(v) {
        if (typeof v !== 'number' || v < 0) throw new FixupError('cache_ttl must be 0 (off) or more seconds');
      },
    },
  },
  async init(core, p) {
    const auth = core.getApi<AuthState>('auth');
    if (!auth) throw new Error('auth_db: load the auth module before auth_db');
    const calculateHa1 = Number(p.calculate_ha1 ?? 0) !== 0;
    const db: Db = await openDb(String(p.db_url ?? DEFAULT_DB_URL), {
      connectTimeoutMs: 3000,
      queryTimeoutMs: 5000,
      onWarning: (m) => core.log.warn(`WARNING: auth_db: ${m}`),
    });
    const store = new SubscriberStore(
      db,
      {
        userColumn: String(p.user_column ?? 'username'),
        domainColumn: String(p.domain_column ?? 'domain'),
        // SER: with calculate_ha1 the password column is the plain "password" unless set
        passwordColumn: String(p.password_column ?? (calculateHa1 ? 'password' : 'ha1')),
        passwordColumn2: String(p.password_column_2 ?? 'ha1b'),
        rpidColumn: String(p.rpid_column ?? 'rpid'),
        useDomain: Number(p.use_domain ?? 0) !== 0,
        cacheMs: Number(p.cache_ttl ?? 5) * 1000,
        cacheMax: 10_000,
      },
      () => core.clock.now(),
      (why) => core.log.warn(`WARNING: auth_db: ${why}`),
    );
    core.addStats('auth_db', () => ({
      cache_rows: store.size,
      cache_hits: store.hits,
      db_reads: store.misses,
    }));
    return { auth, store, calculateHa1, unknownUserCode: Number(p.unknown_user_code ?? 0) };
  },
  async destroy(st) {
    await st.store.db.close().catch(() => {});
  },
  functions: {
    www_authorize: {
      signatures: [[A.str('realm', { allowBare: true }), tableArg()]],
      routes: REPLY_ROUTES,
      async: true,
      run: (ctx, st, realm: string, table: string) => dbAuthorize(st, ctx, realm, table, 'authorization'),
    },
    proxy_authorize: {
      signatures: [[A.str('realm', { allowBare: true }), tableArg()]],
      routes: REPLY_ROUTES,
      async: true,
      run: (ctx, st, realm: string, table: string) =>
        dbAuthorize(st, ctx, realm, table, 'proxy-authorization'),
    },
  },
  mgmt: {
    auth_db_flush: {
      help: 'auth_db_flush [user]: forget cached subscriber rows (serctl add/passwd/rm send it)',
      run(st, args) {
        const n = st.store.flush(args[0] || undefined);
        return { code: 200, reason: 'ok', body: `${n} rows flushed`, data: { flushed: n } };
      },
    },
  },
});
