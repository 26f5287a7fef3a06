/** The ser.cfg language: public surface for the core, the modules and the CLI. */
export * as args from './args.js';
export type * from './ast.js';
export { fmtPos } from './ast.js';
export {
  blockKey,
  blockLabel,
  type BlockInfo,
  type CheckOptions,
  type CheckResult,
  check,
  type ListenAddress,
  type LoadedModule,
  type ResolvedCall,
  type ServerConfig,
} from './checker.js';
export {
  type CompiledScript,
  type CompileOptions,
  compileScript,
  MAX_ROUTE_DEPTH,
  type ScriptHooks,
  uriHostPort,
} from './compiler.js';
export {
  type Diagnostic,
  type DiagnosticCode,
  formatDiagnostic,
  nearest,
  ScriptSyntaxError,
} from './diagnostics.js';
export { ipBytes, netMatcher, normalizeIp } from './ip.js';
export {
  type ConfigSource,
  defaultResolve,
  formatErrors,
  type LoadOptions,
  type LoadResult,
  loadConfig,
} from './load.js';
export { findOption, MAX_LEN, OPTIONS, type OptionSpec, optionNames } from './options.js';
export { parseConfig, parseFragment, parseStatements, stripElisions } from './parser.js';
export { PosixRegexError, type PosixRegexOptions, posixRegExp, translatePosixEre } from './posix-regex.js';
export { type AnyModule, CORE_MODULE, createRegistry, type Registry, toRegistry } from './registry.js';
