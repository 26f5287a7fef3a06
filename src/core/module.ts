/**
 * The SER module contract. A module declares its parameters, script functions and
 * management commands once; `loadmodule "…/name.so"` selects it by name. Functions
 * are checked and their arguments converted ("fixup") when the script loads, so a
 * wrong name, arity or argument is a load-time error with file:line:column.
 */
import type { CoreApi } from './api.js';
import type { MsgContext } from './context.js';

/** Where a script function may be called (SER's route types). */
export type RouteKind = 'request' | 'failure' | 'onreply' | 'branch';
export const ANY_ROUTE: readonly RouteKind[] = ['request', 'failure', 'onreply', 'branch'];
export const REQUEST_ROUTES: readonly RouteKind[] = ['request', 'failure', 'branch'];

/** One argument as the script wrote it, before fixup. */
export type ScriptArg =
  | { kind: 'string'; value: string; quote: '"' | "'" }
  | { kind: 'number'; value: number; text: string }
  /** a bare word: hostname, IPv4/IPv6 address, or identifier, e.g. forward(gw.foo.bar, 5060) */
  | { kind: 'ident'; value: string }
  | { kind: 'uri_host' }
  | { kind: 'uri_port' }
  | { kind: 'max_len' };

/** What a fixup may ask about the script being loaded. */
export interface FixupEnv {
  /** route kind of the block the call stands in */
  readonly routeKind: RouteKind;
  /** true when a block of that kind and name exists, e.g. ('failure', '1') */
  routeExists(kind: RouteKind, name: string): boolean;
  /** names of loaded modules */
  readonly modules: ReadonlySet<string>;
}

/** Raised by a fixup; the checker adds file:line:column and the call's text. */
export class FixupError extends Error {
  override name = 'FixupError';
}

export interface ArgSpec<T = unknown> {
  /** name used in messages, e.g. "code", "reason", "regex" */
  readonly name: string;
  fixup(arg: ScriptArg, env: FixupEnv): T;
}

/** A script function. `run` gets the message context, the module's state, then the fixed-up arguments. */
export interface FunctionSpec<S = unknown> {
  /** accepted argument lists; the one whose length equals the call's arity is used */
  readonly signatures: readonly (readonly ArgSpec[])[];
  readonly routes: readonly RouteKind[];
  /** the compiler awaits only functions declared async */
  readonly async?: boolean;
  // biome-ignore lint/suspicious/noExplicitAny: arguments are typed by each module's fixups
  run(ctx: MsgContext, state: S, ...args: any[]): number | Promise<number>;
}

export type ParamValue = number | string;

export interface ParamSpec {
  readonly type: 'int' | 'string';
  readonly default: ParamValue | undefined;
  /** a repeated modparam adds to a list instead of replacing the value */
  readonly multi?: boolean;
  /** throws FixupError with a message for an invalid value */
  validate?(value: ParamValue): void;
}

/** A management (FIFO / JSON-RPC) command. Lines in, status line and body out. */
export interface MgmtCommand<S = unknown> {
  readonly help: string;
  run(state: S, args: string[]): MgmtReply | Promise<MgmtReply>;
}
export interface MgmtReply {
  /** SER FIFO status: 200 ok, 4xx bad request, 5xx failure */
  readonly code: number;
  readonly reason: string;
  /** body lines for FIFO; `data` is the structured form for JSON-RPC */
  readonly body?: string;
  readonly data?: unknown;
}

export interface ModuleDef<S = unknown> {
  readonly name: string;
  readonly params?: Readonly<Record<string, ParamSpec>>;
  readonly functions?: Readonly<Record<string, FunctionSpec<S>>>;
  readonly mgmt?: Readonly<Record<string, MgmtCommand<S>>>;
  /** modules that must be loaded as well (SER: "load tm and sl first") */
  readonly deps?: readonly string[];
  /** Called once per server instance after every modparam is set; returns the module's state. */
  init?(core: CoreApi, params: Readonly<Record<string, ParamValue | ParamValue[]>>): S | Promise<S>;
  destroy?(state: S): void | Promise<void>;
}

export function defineModule<S>(def: ModuleDef<S>): ModuleDef<S> {
  return def;
}
