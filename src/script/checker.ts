/**
 * The checker: everything that can be known about a script before it runs.
 * It reports every problem at once (file:line:column, message, the line as
 * written) and produces what the compiler needs: the blocks, the route kinds
 * each block runs in, and every call resolved to its module function with its
 * arguments already fixed up.
 */
import type { FixupEnv, FunctionSpec, ParamValue, RouteKind, ScriptArg } from '../core/module.js';
import { FixupError } from '../core/module.js';
import type {
  ArgNode,
  BlockKeyword,
  CallStmt,
  CmpExpr,
  ConfigAst,
  Expr,
  HostValue,
  OptionItem,
  Pos,
  RouteBlock,
  Stmt,
} from './ast.js';
import { type Diagnostic, type DiagnosticCode, didYouMean, nearest } from './diagnostics.js';
import { maskBytes, ipBytes } from './ip.js';
import { findOption, optionNames } from './options.js';
import { PosixRegexError, posixRegExp } from './posix-regex.js';
import { CORE_MODULE, type Registry } from './registry.js';

export const KIND_OF_KEYWORD: Readonly<Record<BlockKeyword, RouteKind>> = {
  route: 'request',
  failure_route: 'failure',
  reply_route: 'failure', // 0.8.11 renamed reply_route to failure_route
  onreply_route: 'onreply',
  branch_route: 'branch',
};
export const KEYWORD_OF_KIND: Readonly<Record<RouteKind, string>> = {
  request: 'route',
  failure: 'failure_route',
  onreply: 'onreply_route',
  branch: 'branch_route',
};

export function blockKey(kind: RouteKind, name: string): string {
  return `${kind}:${name}`;
}
export function blockLabel(kind: RouteKind, name: string): string {
  return `${KEYWORD_OF_KIND[kind]}[${name}]`;
}

export interface ListenAddress {
  readonly proto: string | undefined;
  readonly host: string;
  readonly port: number | undefined;
  readonly pos: Pos;
}

export interface LoadedModule {
  readonly name: string;
  readonly path: string;
  readonly pos: Pos;
}

/** The global part of a config: options, modules and their parameters. */
export interface ServerConfig {
  /** canonical option name → value, as set by the script (listen and alias are separate) */
  readonly options: Map<string, number | boolean | string>;
  readonly listen: ListenAddress[];
  readonly aliases: ListenAddress[];
  /** loaded modules available in this build, in load order (`core` first when the build has it) */
  readonly modules: LoadedModule[];
  /** module → parameter → value (a list for `multi` parameters) */
  readonly modparams: Map<string, Map<string, ParamValue | ParamValue[]>>;
}

export interface ResolvedCall {
  readonly module: string;
  readonly name: string;
  readonly spec: FunctionSpec<unknown>;
  readonly args: unknown[];
}

export interface BlockInfo {
  readonly kind: RouteKind;
  readonly name: string;
  readonly ast: RouteBlock | undefined;
  readonly body: Stmt[];
  /** the route kinds this block runs in: its own, or its callers' for route[n] */
  readonly kinds: RouteKind[];
}

export interface CheckOptions {
  /** a fragment: route(n) to a missing block is not an error */
  readonly partial?: boolean;
}

export interface CheckResult {
  readonly config: ServerConfig;
  readonly blocks: Map<string, BlockInfo>;
  readonly calls: Map<CallStmt, ResolvedCall>;
  /** host names on the right of src_ip/dst_ip comparisons: resolved at load time */
  readonly hostRefs: HostValue[];
  readonly errors: Diagnostic[];
}

const NUMERIC_OPERANDS = new Set(['msg:len', 'src_port', 'dst_port', 'status']);
const PROTO_WORDS = new Set(['udp', 'tcp', 'tls', 'sctp', 'ws', 'wss']);
const AF_WORDS = new Set(['inet', 'inet6']);

export function toScriptArg(a: ArgNode): ScriptArg {
  switch (a.type) {
    case 'string':
      return { kind: 'string', value: a.value, quote: a.quote };
    case 'number':
      return { kind: 'number', value: a.value, text: a.text };
    case 'host':
      return { kind: 'ident', value: a.value };
    case 'uri_host':
      return { kind: 'uri_host' };
    case 'uri_port':
      return { kind: 'uri_port' };
    case 'max_len':
      return { kind: 'max_len' };
  }
}

/** Check a parsed config against the modules of this build. */
export function check(
  ast: ConfigAst,
  registry: Registry,
  source: string,
  opts: CheckOptions = {},
): CheckResult {
  const errors: Diagnostic[] = [];
  const srcLines = source.split('\n');
  const lineOf = (p: Pos): string => (srcLines[p.line - 1] ?? '').trim();
  const err = (code: DiagnosticCode, pos: Pos, message: string): undefined => {
    errors.push({ code, pos, message, text: lineOf(pos) });
  };

  const config: ServerConfig = {
    options: new Map(),
    listen: [],
    aliases: [],
    modules: [],
    modparams: new Map(),
  };

  // ---------------------------------------------------------------- options
  for (const item of ast.items) if (item.type === 'option') checkOption(item, config, err);

  // ---------------------------------------------------------------- modules
  const loadedNames = new Set<string>(); // every loadmodule, available or not
  if (registry.get(CORE_MODULE))
    config.modules.push({ name: CORE_MODULE, path: '(built-in)', pos: { file: ast.file, line: 0, col: 0 } });
  for (const item of ast.items) {
    if (item.type !== 'loadmodule') continue;
    if (loadedNames.has(item.name)) continue;
    loadedNames.add(item.name);
    if (!registry.get(item.name)) {
      const near = nearest(item.name, registry.modules.keys());
      err(
        'module-not-available',
        item.pos,
        `module '${item.name}' is not available in this build (loadmodule "${item.path}")${near ? `; did you mean '${near}'?` : ''}`,
      );
      continue;
    }
    config.modules.push({ name: item.name, path: item.path, pos: item.pos });
  }
  const available = new Set(config.modules.map((m) => m.name));
  for (const m of config.modules) {
    for (const dep of registry.get(m.name)?.deps ?? []) {
      if (!loadedNames.has(dep))
        err('module-dependency', m.pos, `module '${m.name}' needs module '${dep}': load it too`);
    }
  }

  // ---------------------------------------------------------------- modparam
  for (const item of ast.items) {
    if (item.type !== 'modparam') continue;
    const names = item.module.split('|').map((s) => s.trim());
    // a module answers to its file name and to the name it declares (vm.so declares "voicemail")
    const targets = config.modules
      .filter((m) => names.includes(m.name) || names.includes(registry.get(m.name)?.name ?? m.name))
      .map((m) => m.name);
    if (targets.length === 0) {
      // a module whose loadmodule failed was reported already, and the parameter may be its
      if (
        names.some((n) => loadedNames.has(n)) ||
        loadedNames.size > available.size - (available.has(CORE_MODULE) ? 1 : 0)
      ) {
        continue;
      }
      const exists = names.filter((n) => registry.get(n));
      err(
        'module-not-loaded',
        item.modulePos,
        exists.length > 0
          ? `modparam for module '${item.module}', which is not loaded (missing loadmodule "${exists[0]}.so"?)`
          : `modparam for unknown module '${item.module}'${didYouMean(item.module, available)}`,
      );
      continue;
    }
    for (const mod of targets) {
      const params = registry.get(mod)?.params ?? {};
      const spec = Object.hasOwn(params, item.param) ? params[item.param] : undefined;
      if (!spec) {
        err(
          'unknown-param',
          item.paramPos,
          `module '${mod}' has no parameter '${item.param}'${didYouMean(item.param, Object.keys(params))}`,
        );
        continue;
      }
      const v = item.value.value;
      if (spec.type === 'int' && typeof v !== 'number') {
        err(
          'bad-param-value',
          item.value.pos,
          `parameter '${item.param}' of module '${mod}' expects an integer, not a string`,
        );
        continue;
      }
      if (spec.type === 'string' && typeof v !== 'string') {
        err(
          'bad-param-value',
          item.value.pos,
          `parameter '${item.param}' of module '${mod}' expects a quoted string, not a number`,
        );
        continue;
      }
      try {
        spec.validate?.(v);
      } catch (e) {
        if (e instanceof FixupError) {
          err(
            'bad-param-value',
            item.value.pos,
            `parameter '${item.param}' of module '${mod}': ${e.message}`,
          );
          continue;
        }
        throw e;
      }
      let pm = config.modparams.get(mod);
      if (!pm) config.modparams.set(mod, (pm = new Map()));
      if (spec.multi) {
        const prev = pm.get(item.param);
        pm.set(item.param, Array.isArray(prev) ? [...prev, v] : [v]);
      } else pm.set(item.param, v);
    }
  }

  // ---------------------------------------------------------------- blocks
  const blocks = new Map<string, BlockInfo>();
  const kindsOf = new Map<string, Set<RouteKind>>();
  for (const item of ast.items) {
    if (item.type !== 'block') continue;
    const kind = KIND_OF_KEYWORD[item.keyword];
    const key = blockKey(kind, item.name);
    const prev = blocks.get(key);
    if (prev) {
      err(
        'duplicate-block',
        item.pos,
        `duplicate block ${blockLabel(kind, item.name)} (first defined at line ${prev.ast?.pos.line}, column ${prev.ast?.pos.col})`,
      );
      continue;
    }
    blocks.set(key, { kind, name: item.name, ast: item, body: item.body, kinds: [] });
    kindsOf.set(key, new Set());
  }
  // loose statements of a fragment run as the main route when there is none
  if (ast.loose.length > 0) {
    const key = blockKey('request', '0');
    if (!blocks.has(key)) {
      blocks.set(key, { kind: 'request', name: '0', ast: undefined, body: ast.loose, kinds: [] });
      kindsOf.set(key, new Set());
    }
  }
  // route kinds: each root block runs in its own kind; route[n] in its callers'
  const queue: [string, RouteKind][] = [];
  for (const [key, b] of blocks) {
    if (b.kind !== 'request' || b.name === '0') {
      kindsOf.get(key)!.add(b.kind);
      queue.push([key, b.kind]);
    }
  }
  while (queue.length > 0) {
    const [key, kind] = queue.shift()!;
    forEachRouteCall(blocks.get(key)!.body, (target) => {
      const tk = blockKey('request', target);
      const set = kindsOf.get(tk);
      if (set && !set.has(kind)) {
        set.add(kind);
        queue.push([tk, kind]);
      }
    });
  }
  for (const [key, b] of blocks) {
    const set = kindsOf.get(key)!;
    if (set.size === 0) set.add('request');
    blocks.set(key, { ...b, kinds: [...set] });
  }

  // ---------------------------------------------------------------- statements
  const calls = new Map<CallStmt, ResolvedCall>();
  const hostRefs: HostValue[] = [];
  const loadedList = config.modules.map((m) => m.name);
  const routeExists = (kind: RouteKind, name: string): boolean => blocks.has(blockKey(kind, name));

  const checkCall = (c: CallStmt, b: BlockInfo): void => {
    const found = registry.lookup(c.name, loadedList);
    if (!found) {
      const owners = registry.exportersOf(c.name);
      if (owners.length > 0) {
        err(
          'function-not-loaded',
          c.pos,
          `function '${c.name}' is exported by module '${owners[0]}', which is not loaded (missing loadmodule "${owners[0]}.so"?)`,
        );
        return;
      }
      const near = nearest(c.name, registry.functionNames(loadedList));
      let hint = near ? `; did you mean '${near}'?` : '';
      if (!near) {
        const elsewhere = nearest(c.name, registry.functionNames(registry.modules.keys()));
        if (elsewhere)
          hint = `; did you mean '${elsewhere}' (module '${registry.exportersOf(elsewhere)[0]}', not loaded)?`;
      }
      err('unknown-function', c.pos, `unknown function '${c.name}' (missing loadmodule?)${hint}`);
      return;
    }
    const { module, spec } = found;
    for (const k of b.kinds) {
      if (!spec.routes.includes(k)) {
        const via =
          b.kind === 'request' && b.name !== '0' && k !== 'request'
            ? ` (${blockLabel('request', b.name)} is called from a ${KEYWORD_OF_KIND[k]})`
            : '';
        err(
          'wrong-route-kind',
          c.pos,
          `function '${c.name}' cannot be used in a ${KEYWORD_OF_KIND[k]}${via}`,
        );
        return;
      }
    }
    const sig = spec.signatures.find((s) => s.length === c.args.length);
    if (!sig) {
      const counts = [...new Set(spec.signatures.map((s) => s.length))].sort((a, z) => a - z);
      err(
        'wrong-arity',
        c.pos,
        `function '${c.name}' takes ${counts.join(' or ')} argument${counts.length === 1 && counts[0] === 1 ? '' : 's'}, not ${c.args.length}`,
      );
      return;
    }
    const env: FixupEnv = { routeKind: b.kinds[0] ?? b.kind, routeExists, modules: available };
    const args: unknown[] = [];
    let ok = true;
    sig.forEach((spec_, k) => {
      const node = c.args[k]!;
      try {
        args.push(spec_.fixup(toScriptArg(node), env));
      } catch (e) {
        if (!(e instanceof FixupError)) throw e;
        ok = false;
        err('bad-argument', node.pos, `${c.name}(): argument ${k + 1} (${spec_.name}): ${e.message}`);
      }
    });
    if (ok) calls.set(c, { module, name: c.name, spec, args });
  };

  const checkCmp = (e: CmpExpr): undefined => {
    const r = e.right;
    const numericOp = e.op === '>' || e.op === '<' || e.op === '>=' || e.op === '<=';
    const regexOp = e.op === '=~' || e.op === '!~';
    const bad = (msg: string): undefined => err('bad-operand', r.pos, msg);
    if (numericOp && !NUMERIC_OPERANDS.has(e.left)) {
      return err(
        'bad-operand',
        e.pos,
        `'${e.op}' compares numbers; '${e.left}' is not a number (use ==, != or =~)`,
      );
    }
    if (regexOp) {
      if (r.type !== 'string') return bad(`'${e.op}' needs a quoted regular expression on its right`);
      if (e.left === 'msg:len' || e.left === 'src_port' || e.left === 'dst_port') {
        return bad(`'${e.op}' cannot be used with '${e.left}' (a number)`);
      }
      try {
        posixRegExp(r.value);
      } catch (x) {
        if (!(x instanceof PosixRegexError)) throw x;
        err(
          'bad-regex',
          { ...r.pos, col: r.pos.col + 1 + x.offset },
          `invalid regular expression "${r.value}": ${x.message}`,
        );
      }
      return;
    }
    switch (e.left) {
      case 'method':
      case 'uri':
      case 'status':
        if (r.type === 'myself') {
          if (e.left === 'method') bad("'myself' cannot be compared with 'method'");
          return;
        }
        if (r.type === 'net') return bad(`a network cannot be compared with '${e.left}'`);
        if (r.type === 'max_len' && e.left !== 'status')
          return bad(`'max_len' cannot be compared with '${e.left}'`);
        if (r.type === 'number' && e.left !== 'status')
          return bad(`'${e.left}' is a string: quote the value`);
        if (numericOp && r.type !== 'number') return bad(`'${e.op}' needs a number on its right`);
        return;
      case 'src_ip':
      case 'dst_ip':
        if (r.type === 'number' || r.type === 'max_len')
          return bad(`'${e.left}' needs an IP address, a network, a host name or myself`);
        if (r.type === 'net') {
          try {
            const len = ipBytes(r.ip.value)?.length ?? 4;
            maskBytes(len, r.mask.type === 'number' ? r.mask.value : r.mask.value);
          } catch (x) {
            bad(`invalid network: ${(x as Error).message}`);
          }
          return;
        }
        if (r.type === 'host' && r.hostKind === 'name') hostRefs.push(r);
        if (r.type === 'string' && !ipBytes(r.value)) {
          hostRefs.push({ type: 'host', value: r.value, hostKind: 'name', pos: r.pos });
        }
        return;
      case 'src_port':
      case 'dst_port':
      case 'msg:len':
        if (r.type === 'number' || (r.type === 'max_len' && e.left === 'msg:len')) return;
        return bad(`'${e.left}' is compared with a number`);
      case 'proto': {
        const v = r.type === 'host' || r.type === 'string' ? r.value.toLowerCase() : '';
        if (!PROTO_WORDS.has(v)) bad(`'proto' is compared with udp, tcp, tls, sctp, ws or wss`);
        return;
      }
      case 'af': {
        const v =
          r.type === 'host' || r.type === 'string'
            ? r.value.toLowerCase()
            : r.type === 'number'
              ? String(r.value)
              : '';
        if (!AF_WORDS.has(v) && v !== '4' && v !== '6') bad(`'af' is compared with inet or inet6`);
        return;
      }
    }
  };

  const walkExpr = (e: Expr, b: BlockInfo): void => {
    switch (e.type) {
      case 'and':
      case 'or':
        walkExpr(e.left, b);
        walkExpr(e.right, b);
        return;
      case 'not':
        walkExpr(e.expr, b);
        return;
      case 'cmp':
        checkCmp(e);
        return;
      case 'action':
        walkStmt(e.stmt, b);
        return;
      case 'num':
        return;
    }
  };
  const walkStmt = (s: Stmt, b: BlockInfo): void => {
    switch (s.type) {
      case 'call':
        checkCall(s, b);
        return;
      case 'route':
        if (!opts.partial && !blocks.has(blockKey('request', s.target))) {
          const names = [...blocks.values()].filter((x) => x.kind === 'request').map((x) => x.name);
          err(
            'unknown-route',
            s.pos,
            `route(${s.target}): there is no block route[${s.target}]${/^\d+$/.test(s.target) ? '' : didYouMean(s.target, names)}`,
          );
        }
        return;
      case 'if':
        walkExpr(s.cond, b);
        walkStmt(s.then, b);
        if (s.else) walkStmt(s.else, b);
        return;
      case 'block':
        for (const x of s.body) walkStmt(x, b);
        return;
      default:
        return;
    }
  };
  for (const b of blocks.values()) for (const s of b.body) walkStmt(s, b);

  errors.sort((a, z) => a.pos.line - z.pos.line || a.pos.col - z.pos.col);
  return { config, blocks, calls, hostRefs, errors };
}

function forEachRouteCall(body: Stmt[], f: (target: string) => void): void {
  const expr = (e: Expr): void => {
    if (e.type === 'and' || e.type === 'or') {
      expr(e.left);
      expr(e.right);
    } else if (e.type === 'not') expr(e.expr);
    else if (e.type === 'action') stmt(e.stmt);
  };
  const stmt = (s: Stmt): void => {
    if (s.type === 'route') f(s.target);
    else if (s.type === 'if') {
      expr(s.cond);
      stmt(s.then);
      if (s.else) stmt(s.else);
    } else if (s.type === 'block') s.body.forEach(stmt);
  };
  body.forEach(stmt);
}

function checkOption(
  item: OptionItem,
  config: ServerConfig,
  err: (code: DiagnosticCode, pos: Pos, message: string) => undefined,
): undefined {
  const spec = findOption(item.name);
  if (!spec) {
    err('unknown-option', item.pos, `unknown option '${item.name}'${didYouMean(item.name, optionNames())}`);
    return;
  }
  const v = item.value;
  const bad = (what: string): undefined =>
    err('bad-option-value', v.pos, `option '${item.name}' expects ${what}`);
  switch (spec.type) {
    case 'int': {
      const n = v.type === 'number' ? v.value : v.type === 'bool' ? (v.value ? 1 : 0) : undefined;
      if (n === undefined) return bad('a number');
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        return bad(`a number from ${spec.min} to ${spec.max}, not ${n}`);
      }
      config.options.set(spec.name, n);
      return;
    }
    case 'bool':
      if (v.type === 'bool') config.options.set(spec.name, v.value);
      else if (v.type === 'number') config.options.set(spec.name, v.value !== 0);
      else bad('yes or no');
      return;
    case 'string':
      if (v.type === 'string') config.options.set(spec.name, v.value);
      else if (v.type === 'host' && v.hostKind === 'name') config.options.set(spec.name, v.value);
      else if (v.type === 'number') config.options.set(spec.name, v.text);
      else bad('a quoted string');
      return;
    case 'host':
      if (v.type === 'string' || v.type === 'host') config.options.set(spec.name, v.value);
      else bad('an IP address or a host name');
      return;
    case 'addr': {
      let a: ListenAddress | undefined;
      if (v.type === 'host') a = { proto: undefined, host: v.value, port: undefined, pos: v.pos };
      else if (v.type === 'addr') {
        if (v.port !== undefined && (v.port < 1 || v.port > 65535))
          return bad(`a port from 1 to 65535, not ${v.port}`);
        a = { proto: v.proto, host: v.host.value, port: v.port, pos: v.pos };
      } else if (v.type === 'string' && v.value !== '')
        a = { proto: undefined, host: v.value, port: undefined, pos: v.pos };
      if (!a) return bad('an address: [proto:]host[:port]');
      (spec.name === 'listen' ? config.listen : config.aliases).push(a);
      return;
    }
  }
}
