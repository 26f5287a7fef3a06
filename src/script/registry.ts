/**
 * The modules this build has, by name. `loadmodule "…/tm.so"` selects `tm`;
 * the module named `core` (built-in actions) is always loaded.
 */
import type { FunctionSpec, ModuleDef } from '../core/module.js';

// biome-ignore lint/suspicious/noExplicitAny: each module has its own state type
export type AnyModule = ModuleDef<any>;

export const CORE_MODULE = 'core';

export interface Registry {
  readonly modules: ReadonlyMap<string, AnyModule>;
  get(name: string): AnyModule | undefined;
  /** names of the modules that export a function of that name */
  exportersOf(fn: string): string[];
  /** every function name of the given modules */
  functionNames(modules: Iterable<string>): string[];
  lookup(fn: string, modules: Iterable<string>): { module: string; spec: FunctionSpec<unknown> } | undefined;
}

export function createRegistry(
  mods: Readonly<Record<string, AnyModule>> | ReadonlyMap<string, AnyModule>,
): Registry {
  const map = new Map<string, AnyModule>(mods instanceof Map ? mods : Object.entries(mods));
  const exporters = new Map<string, string[]>();
  for (const [name, def] of map) {
    for (const fn of Object.keys(def.functions ?? {})) {
      const l = exporters.get(fn) ?? [];
      l.push(name);
      exporters.set(fn, l);
    }
  }
  return {
    modules: map,
    get: (name) => map.get(name),
    exportersOf: (fn) => exporters.get(fn) ?? [],
    functionNames(modules) {
      const out: string[] = [];
      for (const m of modules) out.push(...Object.keys(map.get(m)?.functions ?? {}));
      return out;
    },
    lookup(fn, modules) {
      for (const m of modules) {
        const spec = map.get(m)?.functions?.[fn];
        if (spec && Object.hasOwn(map.get(m)!.functions!, fn))
          return { module: m, spec: spec as FunctionSpec<unknown> };
      }
      return undefined;
    },
  };
}

/** Accept either a registry or a plain map of modules. */
export function toRegistry(
  r: Registry | Readonly<Record<string, AnyModule>> | ReadonlyMap<string, AnyModule>,
): Registry {
  if (typeof (r as Registry).lookup === 'function' && typeof (r as Registry).exportersOf === 'function')
    return r as Registry;
  return createRegistry(r as Readonly<Record<string, AnyModule>>);
}
