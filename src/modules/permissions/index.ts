/**
 * permissions — access control by the request's origin (SER 0.9 permissions module):
 * allow_trusted() over the `trusted` table, cached in memory with db_mode 1 and reloaded
 * with the management command trusted_reload; allow_routing() over the
 * permissions.allow / permissions.deny rule files.
 */
import type { MsgContext } from '../../core/context.js';
import { type ArgSpec, defineModule, FixupError, type MgmtReply, REQUEST_ROUTES } from '../../core/module.js';
import { str } from '../../script/args.js';
import { dbUrlParam, flagParam, identParam, openModuleDb } from '../group/common.js';
import { loadRuleFile, type RuleFile, RuleFileError, routingAllowed } from './routing.js';
import { allowTrusted, reloadTrusted, ruleOf, type TrustedRule, type TrustedState } from './trusted.js';

export interface PermissionsState extends TrustedState {
  /** the rule files of allow_routing() without arguments */
  defaultAllow: RuleFile;
  defaultDeny: RuleFile;
  checkAllBranches: boolean;
}

/** Rule files named in the script are read when it loads: a syntax error is a load-time error. */
function ruleFileArg(name: string, suffix = ''): ArgSpec<RuleFile> {
  const inner = str(name, { nonEmpty: true });
  return {
    name,
    fixup(a, env) {
      try {
        return loadRuleFile(inner.fixup(a, env) + suffix, process.cwd());
      } catch (e) {
        if (e instanceof RuleFileError) throw new FixupError(e.message);
        throw e;
      }
    },
  };
}

/** allow_routing("name"): the files name.allow and name.deny */
function basenameArg(): ArgSpec<[RuleFile, RuleFile]> {
  const allow = ruleFileArg('basename', '.allow');
  const deny = ruleFileArg('basename', '.deny');
  return { name: 'basename', fixup: (a, env) => [allow.fixup(a, env), deny.fixup(a, env)] };
}

function loadDefault(name: string): RuleFile {
  try {
    return loadRuleFile(name, process.cwd());
  } catch (e) {
    if (e instanceof RuleFileError) throw new Error(`permissions: ${e.message}`);
    throw e;
  }
}

/** 1 when the From URI may reach the Request-URI (and, with check_all_branches, every branch). */
function allowRouting(st: PermissionsState, ctx: MsgContext, allow: RuleFile, deny: RuleFile): number {
  if (!allow.present && !deny.present) return 1;
  let from: string;
  try {
    from = ctx.msg.from.uri;
  } catch {
    return -1;
  }
  if (!routingAllowed(allow, deny, from, ctx.ruri)) return -1;
  if (st.checkAllBranches) {
    for (const b of ctx.branches) if (!routingAllowed(allow, deny, from, b.uri)) return -1;
  }
  return 1;
}

export { allowTrusted, reloadTrusted, type TrustedState } from './trusted.js';

async function dump(st: TrustedState): Promise<[string, TrustedRule[]][]> {
  if (st.mode === 1 && st.cache) return [...st.cache].sort(([a], [b]) => a.localeCompare(b));
  if (!st.db) return [];
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

export default defineModule<PermissionsState>({
  name: 'permissions',
  params: {
    db_url: dbUrlParam(''),
    db_mode: flagParam(0),
    trusted_table: identParam('trusted'),
    source_col: identParam('src_ip'),
    proto_col: identParam('proto'),
    from_col: identParam('from_pattern'),
    default_allow_file: { type: 'string', default: 'permissions.allow' },
    default_deny_file: { type: 'string', default: 'permissions.deny' },
    check_all_branches: flagParam(1),
  },
  functions: {
    allow_trusted: {
      signatures: [[]],
      routes: REQUEST_ROUTES,
      async: true,
      run: (ctx, st: TrustedState) => allowTrusted(st, ctx),
    },
    allow_routing: {
      signatures: [[], [basenameArg()], [ruleFileArg('allow_file'), ruleFileArg('deny_file')]],
      routes: REQUEST_ROUTES,
      run(ctx, st: PermissionsState, a?: RuleFile | [RuleFile, RuleFile], d?: RuleFile) {
        if (a === undefined) return allowRouting(st, ctx, st.defaultAllow, st.defaultDeny);
        if (Array.isArray(a)) return allowRouting(st, ctx, a[0], a[1]);
        return allowRouting(st, ctx, a, d!);
      },
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
    const url = String(params.db_url ?? '');
    // SER: without a db_url the trusted table is not used (allow_routing needs no database)
    const db =
      url === ''
        ? undefined
        : await openModuleDb(core, 'permissions', url, [{ name: table, layout: 'trusted' }]);
    const q = (n: unknown) => (db ? db.quoteIdent(String(n)) : String(n));
    const cols = `${q(params.source_col)} AS ip, ${q(params.proto_col)} AS proto, ${q(params.from_col)} AS pat`;
    const st: PermissionsState = {
      defaultAllow: loadDefault(String(params.default_allow_file)),
      defaultDeny: loadDefault(String(params.default_deny_file)),
      checkAllBranches: Number(params.check_all_branches) === 1,
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
    if (st.mode === 1 && db) {
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
    await st.db?.close();
  },
});
