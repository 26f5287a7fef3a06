/**
 * permissions — access control by the request's origin: allow_trusted() over the
 * `trusted` table (SER 0.9 permissions module), cached in memory with db_mode 1 and
 * reloaded with the management command trusted_reload.
 */
import { defineModule, type MgmtReply, REQUEST_ROUTES } from '../../core/module.js';
import { dbUrlParam, flagParam, identParam, openModuleDb } from '../group/common.js';
import { allowTrusted, reloadTrusted, ruleOf, type TrustedRule, type TrustedState } from './trusted.js';

export { allowTrusted, reloadTrusted, type TrustedState } from './trusted.js';

async function dump(st: TrustedState): Promise<[string, TrustedRule[]][]> {
  if (st.mode === 1 && st.cache) return [...st.cache].sort(([a], [b]) => a.localeCompare(b));
  const r = await st.db.query<{ ip: unknown; proto: unknown; pat: unknown }>(st.selectAll);
  const map = new Map<string, TrustedRule[]>();
  for (const row of r.rows) {
    const rule = ruleOf(st.core, row.proto, row.pat);
    if (!rule) continue;
    const ip = String(row.ip).toLowerCase();
    map.set(ip, [...(map.get(ip) ?? []), rule]);
  }
  return [...map].sort(([a], [b]) => a.localeCompare(b));
}

export default defineModule<TrustedState>({
  name: 'permissions',
  params: {
    db_url: dbUrlParam(),
    db_mode: flagParam(0),
    trusted_table: identParam('trusted'),
    source_col: identParam('src_ip'),
    proto_col: identParam('proto'),
    from_col: identParam('from_pattern'),
  },
  functions: {
    allow_trusted: {
      signatures: [[]],
      routes: REQUEST_ROUTES,
      async: true,
      run: (ctx, st: TrustedState) => allowTrusted(st, ctx),
    },
  },
  mgmt: {
    trusted_reload: {
      help: 'read the trusted table into the cache again (db_mode 1)',
      async run(st): Promise<MgmtReply> {
        if (st.mode !== 1)
          return { code: 200, reason: 'OK', body: 'db_mode 0: the trusted table is not cached' };
        try {
          const n = await reloadTrusted(st);
          return { code: 200, reason: 'OK', body: `${n} trusted row(s) loaded`, data: { rows: n } };
        } catch (e) {
          return { code: 500, reason: `Trusted table reload failed: ${(e as Error).message}` };
        }
      },
    },
    trusted_dump: {
      help: 'list the trusted peers: source IP, transport, From pattern',
      async run(st): Promise<MgmtReply> {
        try {
          const list = await dump(st);
          const lines: string[] = [];
          const data: { src_ip: string; proto: string; from_pattern: string }[] = [];
          for (const [ip, rules] of list) {
            for (const r of rules) {
              lines.push(`${ip} ${r.proto} ${r.pattern === '' ? '*' : r.pattern}`);
              data.push({ src_ip: ip, proto: r.proto, from_pattern: r.pattern });
            }
          }
          return { code: 200, reason: 'OK', body: lines.join('\n'), data };
        } catch (e) {
          return { code: 500, reason: `Trusted table read failed: ${(e as Error).message}` };
        }
      },
    },
  },
  async init(core, params) {
    const table = String(params.trusted_table);
    const db = await openModuleDb(core, 'permissions', String(params.db_url), [
      { name: table, layout: 'trusted' },
    ]);
    const q = (n: unknown) => db.quoteIdent(String(n));
    const cols = `${q(params.source_col)} AS ip, ${q(params.proto_col)} AS proto, ${q(params.from_col)} AS pat`;
    const st: TrustedState = {
      core,
      db,
      mode: Number(params.db_mode) === 1 ? 1 : 0,
      selectAll: `SELECT ${cols} FROM ${q(table)}`,
      selectByIp: `SELECT ${cols} FROM ${q(table)} WHERE ${q(params.source_col)} = ?`,
      cache: undefined,
      lastAttempt: 0,
      loading: undefined,
      reloads: 0,
      errors: 0,
    };
    if (st.mode === 1) {
      try {
        await reloadTrusted(st);
      } catch (e) {
        core.log.err(
          `permissions: cannot load the trusted table at start-up, querying it until it loads: ${(e as Error).message}`,
        );
      }
    }
    core.addStats?.('permissions', () => ({
      trusted_ips: st.cache?.size ?? 0,
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
