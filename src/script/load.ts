/**
 * Loading a script: read → parse → check → resolve host names → compile.
 * Every problem comes back in `errors`; `script` is set only when there are none.
 */
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import type { ConfigAst } from './ast.js';
import { type CheckResult, check, type ServerConfig } from './checker.js';
import { type CompiledScript, compileScript, type ScriptHooks } from './compiler.js';
import { type Diagnostic, formatDiagnostic, ScriptSyntaxError } from './diagnostics.js';
import { parseConfig } from './parser.js';
import { type AnyModule, type Registry, toRegistry } from './registry.js';

export interface LoadOptions {
  /** the modules this build has: a registry or a plain name → ModuleDef map */
  readonly registry: Registry | Readonly<Record<string, AnyModule>> | ReadonlyMap<string, AnyModule>;
  readonly hooks?: ScriptHooks;
  /** module states, when the modules are initialised already (see CompiledScript.setModuleStates) */
  readonly moduleStates?: ReadonlyMap<string, unknown> | Readonly<Record<string, unknown>>;
  /** parse a partial config: statements outside blocks, route(n) to missing blocks allowed */
  readonly fragment?: boolean;
}

export interface LoadResult {
  readonly errors: Diagnostic[];
  readonly ast?: ConfigAst;
  readonly checked?: CheckResult;
  /** options, listen/alias, loaded modules, modparams: set when parsing succeeded */
  readonly config?: ServerConfig;
  /** set only when there is no error */
  readonly script?: CompiledScript;
}

export type ConfigSource = { readonly path: string } | { readonly text: string; readonly file?: string };

export async function defaultResolve(host: string): Promise<string[]> {
  const r = await lookup(host, { all: true });
  return r.map((a) => a.address);
}

/** Load a config file or text. Never throws for problems in the script: they are in `errors`. */
export async function loadConfig(source: ConfigSource, opts: LoadOptions): Promise<LoadResult> {
  let text: string;
  let file: string;
  if ('path' in source) {
    file = source.path;
    try {
      text = await readFile(source.path, 'utf8');
    } catch (e) {
      const msg =
        (e as NodeJS.ErrnoException).code === 'ENOENT'
          ? 'cannot open the config file: no such file'
          : `cannot read the config file: ${(e as Error).message}`;
      return { errors: [{ code: 'syntax', pos: { file, line: 0, col: 0 }, message: msg, text: '' }] };
    }
  } else {
    text = source.text;
    file = source.file ?? 'ser.cfg';
  }
  let ast: ConfigAst;
  try {
    ast = parseConfig(text, file, { fragment: opts.fragment ?? false });
  } catch (e) {
    if (e instanceof ScriptSyntaxError) return { errors: [e.toDiagnostic()] };
    throw e;
  }
  const registry = toRegistry(opts.registry);
  const checked = check(ast, registry, text, { partial: opts.fragment ?? false });
  const errors = [...checked.errors];
  // host names in src_ip/dst_ip comparisons are resolved once, now (SER does the same)
  const resolve = opts.hooks?.resolve ?? defaultResolve;
  const resolved = new Map<string, string[]>();
  for (const h of checked.hostRefs) {
    const key = h.value.toLowerCase();
    if (resolved.has(key)) continue;
    try {
      const addrs = await resolve(h.value);
      if (addrs.length === 0) throw new Error('no address');
      resolved.set(key, addrs);
    } catch (e) {
      resolved.set(key, []);
      errors.push({
        code: 'dns',
        pos: h.pos,
        message: `cannot resolve host name '${h.value}': ${(e as Error).message}`,
        text: (text.split('\n')[h.pos.line - 1] ?? '').trim(),
      });
    }
  }
  errors.sort((a, z) => a.pos.line - z.pos.line || a.pos.col - z.pos.col);
  if (errors.length > 0) return { errors, ast, checked, config: checked.config };
  const script = compileScript(checked, { hooks: opts.hooks, resolved, moduleStates: opts.moduleStates });
  return { errors, ast, checked, config: checked.config, script };
}

/** All errors as text, one `file:line:col: message` (and the line as written) each. */
export function formatErrors(errors: readonly Diagnostic[]): string {
  return errors.map(formatDiagnostic).join('\n');
}
