/**
 * Reusable argument specs for module functions. Each `fixup` runs once when the
 * script loads, turns the argument as written into the value `run` receives,
 * and throws FixupError with a plain message when the argument is wrong.
 */
import { isIP } from 'node:net';
import { type ArgSpec, FixupError, type FixupEnv, type RouteKind, type ScriptArg } from '../core/module.js';
import { MAX_LEN } from './options.js';
import { PosixRegexError, type PosixRegexOptions, posixRegExp } from './posix-regex.js';

export function describeArg(a: ScriptArg): string {
  switch (a.kind) {
    case 'string':
      return `string ${a.quote}${a.value}${a.quote}`;
    case 'number':
      return `number ${a.text}`;
    case 'ident':
      return `'${a.value}'`;
    case 'uri_host':
      return 'uri:host';
    case 'uri_port':
      return 'uri:port';
    case 'max_len':
      return 'max_len';
  }
}

/** The text of a string, number or bare word; undefined for the special forms. */
function textOf(a: ScriptArg): string | undefined {
  if (a.kind === 'string' || a.kind === 'ident') return a.value;
  if (a.kind === 'number') return a.text;
  return undefined;
}

/** Any string (quoted). `allowBare` also accepts a bare word or number as its text. */
export function str(name: string, opts: { allowBare?: boolean; nonEmpty?: boolean } = {}): ArgSpec<string> {
  return {
    name,
    fixup(a) {
      let v: string | undefined;
      if (a.kind === 'string') v = a.value;
      else if (opts.allowBare) v = textOf(a);
      if (v === undefined) throw new FixupError(`${name} must be a quoted string, not ${describeArg(a)}`);
      if (opts.nonEmpty && v === '') throw new FixupError(`${name} must not be empty`);
      return v;
    },
  };
}

/** An integer, bare or quoted ("5060"); `max_len` when allowed. */
export function int(
  name: string,
  opts: { min?: number; max?: number; allowMaxLen?: boolean } = {},
): ArgSpec<number> {
  return {
    name,
    fixup(a) {
      let v: number;
      if (a.kind === 'number') v = a.value;
      else if (a.kind === 'max_len' && opts.allowMaxLen) v = MAX_LEN;
      else if (a.kind === 'string' && /^\s*-?\d+\s*$/.test(a.value)) v = Number(a.value);
      else throw new FixupError(`${name} must be an integer, not ${describeArg(a)}`);
      if (!Number.isInteger(v)) throw new FixupError(`${name} must be an integer, not ${v}`);
      if (opts.min !== undefined && v < opts.min) throw new FixupError(`${name} ${v} is below ${opts.min}`);
      if (opts.max !== undefined && v > opts.max) throw new FixupError(`${name} ${v} is above ${opts.max}`);
      return v;
    },
  };
}

/** A script flag number, 0–31. */
export function flag(name = 'flag'): ArgSpec<number> {
  const inner = int(name);
  return {
    name,
    fixup(a, env) {
      const v = inner.fixup(a, env);
      if (v < 0 || v > 31) throw new FixupError(`flag ${v} out of range (0–31)`);
      return v;
    },
  };
}

/** A POSIX extended regex (case-insensitive unless told), compiled once. */
export function regex(name = 'regex', opts: PosixRegexOptions = {}): ArgSpec<RegExp> {
  return {
    name,
    fixup(a) {
      if (a.kind !== 'string')
        throw new FixupError(`${name} must be a quoted regular expression, not ${describeArg(a)}`);
      try {
        return posixRegExp(a.value, opts);
      } catch (e) {
        if (e instanceof PosixRegexError) {
          throw new FixupError(
            `invalid regular expression "${a.value}": ${e.message} (at offset ${e.offset})`,
          );
        }
        throw e;
      }
    },
  };
}

/** The name of a block of the given kind, which must exist: t_on_failure("1"). */
export function routeRef(kind: RouteKind, name = 'route'): ArgSpec<string> {
  const blockWord: Record<RouteKind, string> = {
    request: 'route',
    failure: 'failure_route',
    onreply: 'onreply_route',
    branch: 'branch_route',
  };
  return {
    name,
    fixup(a, env: FixupEnv) {
      let v = textOf(a);
      if (v === undefined || a.kind === 'ident')
        throw new FixupError(`${name} must be a route number, not ${describeArg(a)}`);
      if (/^\d+$/.test(v)) v = String(Number(v));
      if (!env.routeExists(kind, v)) throw new FixupError(`${blockWord[kind]}[${v}] does not exist`);
      return v;
    },
  };
}

/** A host: IPv4, IPv6 or a hostname, bare or quoted; `uri:host` when allowed (then the value is null). */
export function hostOrIp(name = 'host', opts: { allowUriHost?: boolean } = {}): ArgSpec<string | null> {
  return {
    name,
    fixup(a) {
      if (a.kind === 'uri_host' && opts.allowUriHost) return null;
      const v = a.kind === 'string' || a.kind === 'ident' ? a.value.trim() : undefined;
      if (v === undefined || v === '')
        throw new FixupError(`${name} must be a host name or an IP address, not ${describeArg(a)}`);
      const bare = v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
      if (isIP(bare) === 0 && !/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/.test(bare)) {
        throw new FixupError(`${name} '${v}' is not a valid host name or IP address`);
      }
      return bare;
    },
  };
}

/** A port 1–65535, bare or quoted; `uri:port` when allowed (then the value is null). */
export function port(name = 'port', opts: { allowUriPort?: boolean } = {}): ArgSpec<number | null> {
  const inner = int(name, { min: 1, max: 65535 });
  return {
    name,
    fixup(a, env) {
      if (a.kind === 'uri_port' && opts.allowUriPort) return null;
      return inner.fixup(a, env);
    },
  };
}

/** One of a fixed set of words, quoted or bare. */
export function oneOf<T extends string>(name: string, values: readonly T[]): ArgSpec<T> {
  return {
    name,
    fixup(a) {
      const v = textOf(a);
      const hit = values.find((x) => x.toLowerCase() === v?.toLowerCase());
      if (hit === undefined)
        throw new FixupError(`${name} must be one of ${values.join(', ')}, not ${describeArg(a)}`);
      return hit;
    },
  };
}

/** A SIP reply code 100–699, bare or quoted. */
export function replyCode(name = 'code'): ArgSpec<number> {
  return int(name, { min: 100, max: 699 });
}

/** Anything, handed over as written (for modules with their own parsing). */
export function raw(name: string): ArgSpec<ScriptArg> {
  return { name, fixup: (a) => a };
}
