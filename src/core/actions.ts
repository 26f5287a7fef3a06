/**
 * SER's built-in actions (seed 003 §6.2), declared as the always-loaded module `core`:
 * stateless forwarding, Request-URI rewriting, the destination set, flags, log, len_gt.
 */
import * as A from '../script/args.js';
import { parseUri, setUriHost, setUriHostPort, setUriPassword, setUriPort, setUriUser } from '../sip/uri.js';
import type { CoreApi } from './api.js';
import type { MsgContext, Proto } from './context.js';
import type { Core } from './core.js';
import { L_DBG, L_ERR } from './log.js';
import {
  ANY_ROUTE,
  type ArgSpec,
  defineModule,
  FixupError,
  type FunctionSpec,
  REQUEST_ROUTES,
} from './module.js';

/** SER's MAX_BRANCHES: the destination set holds at most this many URIs */
export const MAX_BRANCHES = 12;

interface CoreState {
  core: Core;
}

type Run = FunctionSpec<CoreState>['run'];

function rewrite(fn: (uri: string, value: string) => string): Run {
  return (ctx: MsgContext, st: CoreState, value: string) => {
    try {
      ctx.ruri = fn(ctx.ruri, value);
      return 1;
    } catch (e) {
      st.core.log.log(L_ERR, `ERROR: rewriting the Request-URI failed: ${(e as Error).message}`);
      return -1;
    }
  };
}

/** the user part of a sip/sips/tel URI, or undefined when it has none */
function userOf(uri: string): string | undefined {
  const u = parseUri(uri);
  return u.user;
}

const hostArg = A.hostOrIp('host', { allowUriHost: true });
const portArg = A.port('port', { allowUriPort: true });

/** forward(host, port) arguments → destination; uri:host / uri:port come from the Request-URI */
function destination(
  ctx: MsgContext,
  host: string | null | undefined,
  port: number | null | undefined,
  proto?: Proto,
): { host: string; port?: number; proto?: Proto } | undefined {
  if (host === undefined && port === undefined && proto === undefined) return undefined;
  let h = host ?? undefined;
  let p = port ?? undefined;
  if (host === null || port === null || host === undefined) {
    const u = parseUri(ctx.dstUri ?? ctx.ruri);
    if (host === null || host === undefined) h = u.host;
    if (port === null) p = u.port;
  }
  return { host: h!, port: p, proto };
}

function forwarder(proto?: Proto): FunctionSpec<CoreState> {
  return {
    signatures: [[], [hostArg], [hostArg, portArg]],
    routes: ['request', 'failure'],
    async: true,
    run: (ctx, st, host?: string | null, port?: number | null) =>
      st.core.forwardRequest(ctx, destination(ctx, host, port, proto)),
  };
}

const levelOrMsg: ArgSpec<number> = A.int('level', { min: -3, max: 9 });

export default defineModule<CoreState>({
  name: 'core',
  init(core: CoreApi) {
    return { core: core as Core };
  },
  functions: {
    forward: forwarder(),
    forward_udp: forwarder('udp'),
    forward_tcp: forwarder('tcp'),
    send: {
      signatures: [[hostArg], [hostArg, portArg]],
      routes: ['request', 'failure'],
      async: true,
      run: (ctx, st, host: string | null, port?: number | null) =>
        st.core.forwardRequest(ctx, destination(ctx, host, port), true),
    },
    ...aliases(['rewritehost', 'sethost', 'seth'], {
      signatures: [[A.str('host', { allowBare: true, nonEmpty: true })]],
      routes: REQUEST_ROUTES,
      run: rewrite(setUriHost),
    }),
    ...aliases(['rewritehostport', 'sethostport', 'sethp'], {
      signatures: [[A.str('host:port', { allowBare: true, nonEmpty: true })]],
      routes: REQUEST_ROUTES,
      run: rewrite(setUriHostPort),
    }),
    ...aliases(['rewriteuser', 'setuser', 'setu'], {
      signatures: [[A.str('user', { allowBare: true })]],
      routes: REQUEST_ROUTES,
      run: rewrite(setUriUser),
    }),
    ...aliases(['rewriteuserpass', 'setuserpass', 'setup'], {
      signatures: [[A.str('user:password', { allowBare: true })]],
      routes: REQUEST_ROUTES,
      run: rewrite((uri, v) => {
        const i = v.indexOf(':');
        if (i < 0) return setUriUser(uri, v);
        return setUriPassword(setUriUser(uri, v.slice(0, i)), v.slice(i + 1));
      }),
    }),
    ...aliases(['rewriteport', 'setport', 'setp'], {
      signatures: [[A.str('port', { allowBare: true })]],
      routes: REQUEST_ROUTES,
      run: rewrite((uri, v) => {
        if (v === '') return setUriPort(uri, undefined);
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`invalid port '${v}'`);
        return setUriPort(uri, n);
      }),
    }),
    ...aliases(['rewriteuri', 'seturi'], {
      signatures: [[A.str('uri', { nonEmpty: true })]],
      routes: REQUEST_ROUTES,
      run: rewrite((_uri, v) => {
        parseUri(v);
        return v;
      }),
    }),
    revert_uri: {
      signatures: [[]],
      routes: REQUEST_ROUTES,
      run(ctx) {
        ctx.ruri = ctx.msg.ruri;
        return 1;
      },
    },
    prefix: {
      signatures: [[A.str('prefix', { allowBare: true })]],
      routes: REQUEST_ROUTES,
      run: rewrite((uri, p) => setUriUser(uri, p + (userOf(uri) ?? ''))),
    },
    strip: {
      signatures: [[A.int('count', { min: 0 })]],
      routes: REQUEST_ROUTES,
      run: (ctx, st, n: number) =>
        rewrite((uri) => {
          const user = userOf(uri) ?? '';
          if (n > user.length) throw new Error(`cannot strip ${n} characters from user '${user}'`);
          return setUriUser(uri, user.slice(n));
        })(ctx, st, ''),
    },
    append_branch: {
      signatures: [[], [A.str('uri', { nonEmpty: true })]],
      routes: REQUEST_ROUTES,
      run(ctx, st, uri?: string) {
        // the destination set always includes the Request-URI (seed 003 §2.4)
        if (ctx.branches.length + 1 >= MAX_BRANCHES) {
          st.core.log.log(L_ERR, 'ERROR: append_branch: too many branches');
          return -1;
        }
        if (uri === undefined) ctx.branches.push({ uri: ctx.ruri, q: ctx.ruriQ, dstUri: ctx.dstUri });
        else {
          try {
            parseUri(uri);
          } catch {
            return -1;
          }
          ctx.branches.push({ uri, q: -1 });
        }
        return 1;
      },
    },
    setflag: {
      signatures: [[A.flag()]],
      routes: ANY_ROUTE,
      run(ctx, _st, f: number) {
        ctx.flags |= 1 << f;
        return 1;
      },
    },
    resetflag: {
      signatures: [[A.flag()]],
      routes: ANY_ROUTE,
      run(ctx, _st, f: number) {
        ctx.flags &= ~(1 << f);
        return 1;
      },
    },
    isflagset: {
      signatures: [[A.flag()]],
      routes: ANY_ROUTE,
      run: (ctx, _st, f: number) => ((ctx.flags >>> f) & 1 ? 1 : -1),
    },
    log: {
      // log("text") logs at L_DBG (4), SER's default; log(level, "text") at that level
      signatures: [
        [A.str('message', { allowBare: true })],
        [levelOrMsg, A.str('message', { allowBare: true })],
      ],
      routes: ANY_ROUTE,
      run(_ctx, st, a: number | string, b?: string) {
        if (b === undefined) st.core.log.log(L_DBG, String(a));
        else st.core.log.log(a as number, b);
        return 1;
      },
    },
    len_gt: {
      signatures: [[A.int('length', { min: 0, allowMaxLen: true })]],
      routes: ANY_ROUTE,
      run: (ctx, _st, n: number) => (ctx.msg.raw.length > n ? 1 : -1),
    },
    force_rport: {
      signatures: [[]],
      routes: REQUEST_ROUTES,
      run(ctx, st) {
        st.core.forceRport(ctx);
        return 1;
      },
    },
  },
});

function aliases(names: string[], spec: FunctionSpec<CoreState>): Record<string, FunctionSpec<CoreState>> {
  const out: Record<string, FunctionSpec<CoreState>> = {};
  for (const n of names) out[n] = spec;
  return out;
}

export { FixupError };
