/**
 * The compiler: turns the checked script into JavaScript closures once, so a
 * message runs through plain function calls, never through the tree.
 *
 * SER 0.9 semantics (003 §2.1, §6.2, INVENTORY c.2):
 * - an action returns a number: >0 true, <0 false, 0 leaves the current route
 *   block (as `break` does); in the main route that ends the script;
 * - `route(n)` runs block n and continues; its value is the callee's, except
 *   that a callee left by break/0 gives 1 (SER 0.9: the caller goes on);
 * - `return(n)` leaves the current block with value n (default 1);
 *   `return(0)` ends the script, as OpenSER's does;
 * - `drop` sets ctx.drop and ends the script; `exit` ends the script;
 * - an action returning 0 inside a condition leaves the block;
 * - an `if` whose condition is false and has no `else` is worth 1;
 * - route(n) nesting deeper than 100 ends the script with an error log.
 *
 * A block whose actions (through route(n) too) include no async function is
 * compiled to synchronous closures. The others run synchronously too until an action
 * really returns a promise; only then does the rest of the block continue in one.
 */
import type { MsgContext } from '../core/context.js';
import type { RouteKind } from '../core/module.js';
import type { CallStmt, CmpExpr, Expr, RhsNode, Stmt } from './ast.js';
import { blockKey, type CheckResult, type ResolvedCall } from './checker.js';
import { ipBytes, netMatcher, normalizeIp } from './ip.js';
import { MAX_LEN } from './options.js';
import { posixRegExp } from './posix-regex.js';

/** What the core gives the compiled script. */
export interface ScriptHooks {
  /** is this host (and port, when the URI has one) one of ours: listen addresses, aliases, names */
  isMyself?(host: string, port?: number): boolean;
  /** an error while running the script (recursion limit); default: console.error */
  log?(message: string): void;
  /** load-time resolution of host names in src_ip/dst_ip comparisons; default: node:dns lookup */
  resolve?(host: string): Promise<string[]>;
  /** the value of max_len (BUF_SIZE); default 65535 */
  maxLen?: number;
}

/** The deepest route(n) nesting (SER's ROUTE_MAX_REC_LEV). */
export const MAX_ROUTE_DEPTH = 100;

export interface CompiledScript {
  /** run a block: the main route is ('request', '0'); returns its value, a promise only when an async action returned one */
  run(kind: RouteKind, name: string, ctx: MsgContext): number | Promise<number>;
  has(kind: RouteKind, name: string): boolean;
  /** true when running that block may return a promise */
  isAsync(kind: RouteKind, name: string): boolean;
  /** give each module's state (what its init returned) to the compiled calls */
  setModuleStates(states: ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>): void;
  /** the names of the blocks of a kind */
  names(kind: RouteKind): string[];
}

interface RunState {
  ctl: number;
  ret: number;
  depth: number;
}
const CTL_RETURN = 1;
const CTL_EXIT = 2;

type Fn = (ctx: MsgContext, st: RunState) => number | Promise<number>;
type SyncFn = (ctx: MsgContext, st: RunState) => number;
interface Compiled {
  readonly fn: Fn;
  readonly async: boolean;
}
interface Holder {
  fn: Fn;
  async: boolean;
}

const one: SyncFn = () => 1;

export interface CompileOptions {
  readonly hooks?: ScriptHooks;
  /** host name → addresses, for src_ip==name (see resolveHostRefs) */
  readonly resolved?: ReadonlyMap<string, readonly string[]>;
  readonly moduleStates?: ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>;
}

/** host and port of a SIP URI, tiny and tolerant: only for uri==myself */
export function uriHostPort(uri: string): { host: string; port: number | undefined } | undefined {
  // a script tests the same R-URI several times (uri==myself in two places of the default
  // script), so the last answer is kept; the result is never modified by the callers
  if (uri === lastHpUri) return lastHp;
  lastHp = hostPortOf(uri);
  lastHpUri = uri;
  return lastHp;
}
let lastHpUri: string | undefined;
let lastHp: { host: string; port: number | undefined } | undefined;

function hostPortOf(uri: string): { host: string; port: number | undefined } | undefined {
  const colon = uri.indexOf(':');
  if (colon < 0) return undefined;
  let s = uri.slice(colon + 1);
  const q = s.indexOf('?');
  if (q >= 0) s = s.slice(0, q);
  const at = s.lastIndexOf('@');
  if (at >= 0) s = s.slice(at + 1);
  const semi = s.search(/[;>]/);
  if (semi >= 0) s = s.slice(0, semi);
  let host: string;
  let portText = '';
  if (s.startsWith('[')) {
    const e = s.indexOf(']');
    if (e < 0) return undefined;
    host = s.slice(1, e);
    if (s[e + 1] === ':') portText = s.slice(e + 2);
  } else {
    const c = s.lastIndexOf(':');
    host = c >= 0 ? s.slice(0, c) : s;
    if (c >= 0) portText = s.slice(c + 1);
  }
  if (host === '') return undefined;
  const port = portText === '' ? undefined : Number(portText);
  return { host, port: port !== undefined && Number.isInteger(port) ? port : undefined };
}

export function compileScript(checked: CheckResult, opts: CompileOptions = {}): CompiledScript {
  const hooks = opts.hooks ?? {};
  const isMyself = hooks.isMyself ?? (() => false);
  const logError = hooks.log ?? ((m: string) => console.error(m));
  const maxLen = hooks.maxLen ?? MAX_LEN;
  const resolved = opts.resolved ?? new Map<string, readonly string[]>();

  const cells = new Map<string, { v: unknown }>();
  const cell = (module: string): { v: unknown } => {
    let c = cells.get(module);
    if (!c) cells.set(module, (c = { v: undefined }));
    return c;
  };
  const setModuleStates = (
    states: ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>,
  ): void => {
    const entries = states instanceof Map ? [...states.entries()] : Object.entries(states);
    for (const [k, v] of entries) cell(k).v = v;
  };
  if (opts.moduleStates) setModuleStates(opts.moduleStates);

  // ---------------------------------------------------------------- async analysis
  const holders = new Map<string, Holder>();
  for (const key of checked.blocks.keys()) holders.set(key, { fn: one, async: false });
  const callIsAsync = (c: CallStmt): boolean => checked.calls.get(c)?.spec.async === true;
  const stmtAsync = (s: Stmt): boolean => {
    switch (s.type) {
      case 'call':
        return callIsAsync(s);
      case 'route':
        return holders.get(blockKey('request', s.target))?.async ?? false;
      case 'if':
        return exprAsync(s.cond) || stmtAsync(s.then) || (s.else !== undefined && stmtAsync(s.else));
      case 'block':
        return s.body.some(stmtAsync);
      default:
        return false;
    }
  };
  const exprAsync = (e: Expr): boolean => {
    switch (e.type) {
      case 'and':
      case 'or':
        return exprAsync(e.left) || exprAsync(e.right);
      case 'not':
        return exprAsync(e.expr);
      case 'action':
        return stmtAsync(e.stmt);
      default:
        return false;
    }
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const [key, b] of checked.blocks) {
      const h = holders.get(key)!;
      if (!h.async && b.body.some(stmtAsync)) {
        h.async = true;
        changed = true;
      }
    }
  }

  // ---------------------------------------------------------------- block entry
  const enterSync = (h: Holder, ctx: MsgContext, st: RunState): number => {
    if (st.depth >= MAX_ROUTE_DEPTH) {
      logError(`ERROR: too many recursive routing table lookups (${st.depth}), giving up`);
      st.ctl = CTL_EXIT;
      return 0;
    }
    st.depth++;
    let r = (h.fn as SyncFn)(ctx, st);
    st.depth--;
    if (st.ctl === CTL_RETURN) {
      st.ctl = 0;
      r = st.ret;
    }
    return r;
  };
  // A block that may be async runs synchronously until one of its actions really returns a
  // promise; only the rest of it continues in a promise. A REGISTER answered from memory or an
  // OPTIONS answered by sl in a script that also calls a database function costs no promise.
  const enterMaybe = (h: Holder, ctx: MsgContext, st: RunState): number | Promise<number> => {
    if (st.depth >= MAX_ROUTE_DEPTH) {
      logError(`ERROR: too many recursive routing table lookups (${st.depth}), giving up`);
      st.ctl = CTL_EXIT;
      return 0;
    }
    st.depth++;
    const r = h.fn(ctx, st);
    const done = (v: number): number => {
      st.depth--;
      if (st.ctl === CTL_RETURN) {
        st.ctl = 0;
        return st.ret;
      }
      return v;
    };
    return typeof r === 'number' ? done(r) : r.then(done);
  };

  // ---------------------------------------------------------------- statements
  const seq = (stmts: Stmt[]): Compiled => {
    const parts = stmts.filter((s) => s.type !== 'empty').map(stmt);
    if (parts.length === 0) return { fn: one, async: false };
    if (parts.length === 1) return parts[0]!;
    const n = parts.length;
    if (!parts.some((p) => p.async)) {
      const fns = parts.map((p) => p.fn as SyncFn);
      if (n === 2) {
        const [a, b] = fns as [SyncFn, SyncFn];
        return {
          async: false,
          fn: (ctx, st) => {
            const r = a(ctx, st);
            if (r === 0 || st.ctl !== 0) return r;
            return b(ctx, st);
          },
        };
      }
      return {
        async: false,
        fn: (ctx, st) => {
          let r = 1;
          for (let i = 0; i < n; i++) {
            r = fns[i]!(ctx, st);
            if (r === 0 || st.ctl !== 0) return r;
          }
          return r;
        },
      };
    }
    const fns = parts.map((p) => p.fn);
    // from step i on; a promise from a step continues the rest after it settles
    const from = (ctx: MsgContext, st: RunState, i: number): number | Promise<number> => {
      let r = 1;
      for (; i < n; i++) {
        const x = fns[i]!(ctx, st);
        if (typeof x !== 'number') {
          const next = i + 1;
          return x.then((v) => (v === 0 || st.ctl !== 0 || next >= n ? v : from(ctx, st, next)));
        }
        r = x;
        if (r === 0 || st.ctl !== 0) return r;
      }
      return r;
    };
    return { async: true, fn: (ctx, st) => from(ctx, st, 0) };
  };

  const call = (c: CallStmt): Compiled => {
    const rc: ResolvedCall | undefined = checked.calls.get(c);
    if (!rc)
      throw new Error(
        `${c.pos.file}:${c.pos.line}:${c.pos.col}: '${c.name}' was not resolved by the checker`,
      );
    const spec = rc.spec;
    const st = cell(rc.module);
    const a = rc.args;
    let fn: Fn;
    switch (a.length) {
      case 0:
        fn = (ctx) => spec.run(ctx, st.v);
        break;
      case 1: {
        const a0 = a[0];
        fn = (ctx) => spec.run(ctx, st.v, a0);
        break;
      }
      case 2: {
        const a0 = a[0];
        const a1 = a[1];
        fn = (ctx) => spec.run(ctx, st.v, a0, a1);
        break;
      }
      default:
        fn = (ctx) => spec.run(ctx, st.v, ...a);
    }
    return { fn, async: spec.async === true };
  };

  const routeCall = (target: string): Compiled => {
    const h = holders.get(blockKey('request', target));
    if (!h) {
      // only in fragments checked as partial
      return { async: false, fn: () => 1 };
    }
    if (!h.async) {
      return {
        async: false,
        fn: (ctx, st) => {
          const r = enterSync(h, ctx, st);
          if (st.ctl === CTL_EXIT) return 0;
          return r === 0 ? 1 : r;
        },
      };
    }
    return {
      async: true,
      fn: (ctx, st) => {
        const after = (r: number): number => (st.ctl === CTL_EXIT ? 0 : r === 0 ? 1 : r);
        const r = enterMaybe(h, ctx, st);
        return typeof r === 'number' ? after(r) : r.then(after);
      },
    };
  };

  function stmt(s: Stmt): Compiled {
    switch (s.type) {
      case 'call':
        return call(s);
      case 'route':
        return routeCall(s.target);
      case 'break':
        return { async: false, fn: () => 0 };
      case 'empty':
        return { async: false, fn: one };
      case 'exit':
        return {
          async: false,
          fn: (_ctx, st) => {
            st.ctl = CTL_EXIT;
            return 0;
          },
        };
      case 'drop':
        return {
          async: false,
          fn: (ctx, st) => {
            ctx.drop = true;
            st.ctl = CTL_EXIT;
            return 0;
          },
        };
      case 'return': {
        const v = s.value ?? 1;
        return {
          async: false,
          fn: (_ctx, st) => {
            if (v === 0) {
              st.ctl = CTL_EXIT;
              return 0;
            }
            st.ret = v;
            st.ctl = CTL_RETURN;
            return v;
          },
        };
      }
      case 'block':
        return seq(s.body);
      case 'if': {
        const c = expr(s.cond);
        const t = s.then.type === 'empty' ? { fn: one, async: false } : stmt(s.then);
        const e = s.else ? stmt(s.else) : undefined;
        if (!c.async && !t.async && !(e?.async ?? false)) {
          const cf = c.fn as SyncFn;
          const tf = t.fn as SyncFn;
          if (!e) {
            return {
              async: false,
              fn: (ctx, st) => {
                const v = cf(ctx, st);
                if (v > 0) return tf(ctx, st);
                return v === 0 || st.ctl !== 0 ? 0 : 1;
              },
            };
          }
          const ef = e.fn as SyncFn;
          return {
            async: false,
            fn: (ctx, st) => {
              const v = cf(ctx, st);
              if (v > 0) return tf(ctx, st);
              if (v === 0 || st.ctl !== 0) return 0;
              return ef(ctx, st);
            },
          };
        }
        const cf = c.fn;
        const tf = t.fn;
        const ef = e?.fn;
        const branch = (ctx: MsgContext, st: RunState, v: number): number | Promise<number> => {
          if (v > 0) return tf(ctx, st);
          if (v === 0 || st.ctl !== 0) return 0;
          return ef ? ef(ctx, st) : 1;
        };
        return {
          async: true,
          fn: (ctx, st) => {
            const v = cf(ctx, st);
            return typeof v === 'number' ? branch(ctx, st, v) : v.then((x) => branch(ctx, st, x));
          },
        };
      }
    }
  }

  // ---------------------------------------------------------------- conditions (1 true, -1 false, 0 stop)
  function expr(e: Expr): Compiled {
    switch (e.type) {
      case 'num': {
        const v = e.value !== 0 ? 1 : -1;
        return { async: false, fn: () => v };
      }
      case 'action': {
        const a = e.stmt.type === 'call' ? call(e.stmt) : routeCall(e.stmt.target);
        if (!a.async) {
          const f = a.fn as SyncFn;
          return {
            async: false,
            fn: (ctx, st) => {
              const r = f(ctx, st);
              return r > 0 ? 1 : r < 0 ? -1 : 0;
            },
          };
        }
        const f = a.fn;
        const sign = (r: number): number => (r > 0 ? 1 : r < 0 ? -1 : 0);
        return {
          async: true,
          fn: (ctx, st) => {
            const r = f(ctx, st);
            return typeof r === 'number' ? sign(r) : r.then(sign);
          },
        };
      }
      case 'not': {
        const x = expr(e.expr);
        if (!x.async) {
          const f = x.fn as SyncFn;
          return { async: false, fn: (ctx, st) => -f(ctx, st) };
        }
        const f = x.fn;
        const neg = (v: number): number => -v;
        return {
          async: true,
          fn: (ctx, st) => {
            const v = f(ctx, st);
            return typeof v === 'number' ? -v : v.then(neg);
          },
        };
      }
      case 'and':
      case 'or': {
        const l = expr(e.left);
        const r = expr(e.right);
        const isAnd = e.type === 'and';
        if (!l.async && !r.async) {
          const lf = l.fn as SyncFn;
          const rf = r.fn as SyncFn;
          return isAnd
            ? {
                async: false,
                fn: (ctx, st) => {
                  const a = lf(ctx, st);
                  return a <= 0 ? a : rf(ctx, st);
                },
              }
            : {
                async: false,
                fn: (ctx, st) => {
                  const a = lf(ctx, st);
                  return a >= 0 ? a : rf(ctx, st);
                },
              };
        }
        const lf = l.fn;
        const rf = r.fn;
        const second = (ctx: MsgContext, st: RunState, a: number): number | Promise<number> =>
          (isAnd ? a <= 0 : a >= 0) ? a : rf(ctx, st);
        return {
          async: true,
          fn: (ctx, st) => {
            const a = lf(ctx, st);
            return typeof a === 'number' ? second(ctx, st, a) : a.then((x) => second(ctx, st, x));
          },
        };
      }
      case 'cmp':
        return { async: false, fn: cmp(e) };
    }
  }

  function cmp(e: CmpExpr): SyncFn {
    const pred = predicate(e);
    const neg = e.op === '!=' || e.op === '!~';
    return neg ? (ctx) => (pred(ctx) ? -1 : 1) : (ctx) => (pred(ctx) ? 1 : -1);
  }

  /** the positive form of a comparison (`!=` and `!~` are negated by the caller) */
  function predicate(e: CmpExpr): (ctx: MsgContext) => boolean {
    const r = e.right;
    const op = e.op;
    switch (e.left) {
      case 'method':
      case 'uri':
      case 'status': {
        const get: (ctx: MsgContext) => string =
          e.left === 'method'
            ? (ctx) => ctx.msg.method
            : // SER 0.8.11: `uri` and `status` are one token — the R-URI of a request, the code of a reply
              (ctx) => (ctx.msg.isRequest ? ctx.ruri : String(ctx.msg.status));
        if (r.type === 'myself') {
          return (ctx) => {
            const hp = uriHostPort(get(ctx));
            return hp !== undefined && isMyself(hp.host, hp.port);
          };
        }
        if (op === '=~' || op === '!~') {
          const re = posixRegExp(rhsText(r));
          return (ctx) => re.test(get(ctx));
        }
        if (op === '>' || op === '<' || op === '>=' || op === '<=') {
          const n = r.type === 'max_len' ? maxLen : Number(rhsText(r));
          return numeric((ctx) => ctx.msg.status, op, n);
        }
        // SER 0.9 compares method and uri strings with strncasecmp: `==` is
        // case-insensitive (003 §2.2.2.1: "Matches are case-insensitive")
        const lit = rhsText(r);
        const low = lit.toLowerCase();
        const len = lit.length;
        return (ctx) => {
          const v = get(ctx);
          return v === lit || (v.length === len && v.toLowerCase() === low);
        };
      }
      case 'src_ip':
      case 'dst_ip': {
        const get: (ctx: MsgContext) => string =
          e.left === 'src_ip' ? (ctx) => ctx.src.ip : (ctx) => ctx.dst.ip;
        if (r.type === 'myself') return (ctx) => isMyself(get(ctx));
        if (op === '=~' || op === '!~') {
          const re = posixRegExp(rhsText(r));
          return (ctx) => re.test(get(ctx));
        }
        if (r.type === 'net') {
          const m = netMatcher(r.ip.value, r.mask.type === 'number' ? r.mask.value : r.mask.value);
          return (ctx) => m(get(ctx));
        }
        const text = rhsText(r);
        const lit = normalizeIp(text);
        if (lit !== undefined)
          return (ctx) => {
            const ip = get(ctx);
            return ip === lit || normalizeIp(ip) === lit;
          };
        const addrs = new Set((resolved.get(text.toLowerCase()) ?? []).map((a) => normalizeIp(a) ?? a));
        return (ctx) => {
          const ip = get(ctx);
          return addrs.has(ip) || (ipBytes(ip) !== undefined && addrs.has(normalizeIp(ip)!));
        };
      }
      case 'src_port':
      case 'dst_port':
      case 'msg:len': {
        const get: (ctx: MsgContext) => number =
          e.left === 'src_port'
            ? (ctx) => ctx.src.port
            : e.left === 'dst_port'
              ? (ctx) => ctx.dst.port
              : (ctx) => ctx.msg.raw.length;
        const n = r.type === 'max_len' ? maxLen : r.type === 'number' ? r.value : Number(rhsText(r));
        return numeric(get, op === '!=' ? '==' : op, n);
      }
      case 'proto': {
        const want = rhsText(r).toLowerCase();
        return (ctx) => ctx.src.proto === want;
      }
      case 'af': {
        const t = rhsText(r).toLowerCase();
        const want = t === 'inet6' || t === '6' ? 6 : 4;
        return (ctx) => ctx.src.af === want;
      }
    }
  }

  // ---------------------------------------------------------------- blocks
  for (const [key, b] of checked.blocks) {
    const h = holders.get(key)!;
    const c = seq(b.body);
    h.fn = c.fn;
  }

  // per kind, by name: run() is called for every message, without building a key string
  const byKind = new Map<RouteKind, Map<string, Holder>>();
  for (const b of checked.blocks.values()) {
    let m = byKind.get(b.kind);
    if (!m) byKind.set(b.kind, (m = new Map()));
    m.set(b.name, holders.get(blockKey(b.kind, b.name))!);
  }

  return {
    run(kind, name, ctx) {
      const h = byKind.get(kind)?.get(name);
      if (!h) return 1;
      ctx.routeKind = kind;
      const st: RunState = { ctl: 0, ret: 0, depth: 0 };
      if (!h.async) {
        const r = enterSync(h, ctx, st);
        return st.ctl === CTL_EXIT ? 0 : r;
      }
      const r = enterMaybe(h, ctx, st);
      return typeof r === 'number'
        ? st.ctl === CTL_EXIT
          ? 0
          : r
        : r.then((v) => (st.ctl === CTL_EXIT ? 0 : v));
    },
    has: (kind, name) => holders.has(blockKey(kind, name)),
    isAsync: (kind, name) => holders.get(blockKey(kind, name))?.async ?? false,
    setModuleStates,
    names: (kind) => [...checked.blocks.values()].filter((b) => b.kind === kind).map((b) => b.name),
  };
}

function rhsText(r: RhsNode): string {
  switch (r.type) {
    case 'string':
    case 'host':
      return r.value;
    case 'number':
      return r.text;
    case 'max_len':
      return 'max_len';
    case 'myself':
      return 'myself';
    case 'net':
      return r.ip.value;
  }
}

function numeric(get: (ctx: MsgContext) => number, op: string, n: number): (ctx: MsgContext) => boolean {
  switch (op) {
    case '>':
      return (ctx) => get(ctx) > n;
    case '<':
      return (ctx) => get(ctx) < n;
    case '>=':
      return (ctx) => get(ctx) >= n;
    case '<=':
      return (ctx) => get(ctx) <= n;
    default:
      return (ctx) => get(ctx) === n;
  }
}
