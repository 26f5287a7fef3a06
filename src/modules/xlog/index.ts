/**
 * xlog: formatted logging with pseudo-variables (OpenSER 1.1 xlog).
 *
 * The format is compiled when the script loads into literal parts and value getters, so
 * an unknown pseudo-variable is a load-time error and a message costs only the getters
 * it uses. Nothing is formatted when the level is above `debug=`.
 */
import type { CoreApi } from '../../core/api.js';
import type { MsgContext } from '../../core/context.js';
import { L_ALERT, L_CRIT, L_DBG, L_ERR, L_INFO, L_NOTICE, L_WARN, type Logger } from '../../core/log.js';
import { type ArgSpec, defineModule, FixupError, type ScriptArg } from '../../core/module.js';
import { describeArg } from '../../script/args.js';
import type { NameAddr, SipMessage } from '../../sip/message.js';
import { parseUri, type SipUri } from '../../sip/uri.js';

export const NULL_TEXT = '<null>';

export const LEVELS: Readonly<Record<string, number>> = {
  L_ALERT,
  L_CRIT,
  L_ERR,
  L_WARN,
  L_NOTICE,
  L_INFO,
  L_DBG,
};

type Getter = (ctx: MsgContext) => string | number | undefined;
/** a compiled format: literal strings and getters in order */
export type Format = readonly (string | Getter)[];

interface State {
  log: Logger;
  bufSize: number;
}

// ------------------------------------------------------------------ value helpers

function uriOf(s: string): SipUri | undefined {
  if (s === '') return undefined;
  try {
    return parseUri(s);
  } catch {
    return undefined;
  }
}
function portOf(u: SipUri | undefined): number | undefined {
  if (u === undefined || (u.kind !== 'sip' && u.kind !== 'sips')) return undefined;
  return u.port ?? (u.kind === 'sips' ? 5061 : 5060);
}
const ruri = (ctx: MsgContext) => (ctx.msg.isRequest ? ctx.ruri : undefined);
const oruri = (ctx: MsgContext) => (ctx.msg.isRequest ? ctx.msg.ruri : undefined);
function from(ctx: MsgContext): NameAddr & { tag: string | undefined } {
  return ctx.msg.from;
}
function to(ctx: MsgContext): NameAddr & { tag: string | undefined } {
  return ctx.msg.to;
}
function uriPart(get: (ctx: MsgContext) => string | undefined, part: 'user' | 'host' | 'port'): Getter {
  return (ctx) => {
    const s = get(ctx);
    const u = s === undefined ? undefined : uriOf(s);
    if (u === undefined) return undefined;
    if (part === 'port') return portOf(u);
    if (part === 'user') return u.user;
    return u.host || undefined;
  };
}

const ids = new WeakMap<SipMessage, number>();
let nextId = 1;

function dset(ctx: MsgContext): string | undefined {
  const items: string[] = [];
  const one = (uri: string, q: number) =>
    items.push(q >= 0 ? `<${uri}>;q=${(q / 1000).toString()}` : `<${uri}>`);
  if (ctx.msg.isRequest) one(ctx.ruri, ctx.ruriQ);
  for (const b of ctx.branches) one(b.uri, b.q);
  return items.length > 0 ? items.join(',') : undefined;
}

/** Pseudo-variables without a parameter. */
const SIMPLE: Readonly<Record<string, Getter>> = {
  rm: (ctx) => ctx.msg.method,
  ru: ruri,
  rU: uriPart(ruri, 'user'),
  rd: uriPart(ruri, 'host'),
  rp: uriPart(ruri, 'port'),
  ou: oruri,
  oU: uriPart(oruri, 'user'),
  od: uriPart(oruri, 'host'),
  op: uriPart(oruri, 'port'),
  fu: (ctx) => from(ctx).uri,
  fU: uriPart((ctx) => from(ctx).uri, 'user'),
  fd: uriPart((ctx) => from(ctx).uri, 'host'),
  ft: (ctx) => from(ctx).tag,
  fn: (ctx) => from(ctx).displayName,
  tu: (ctx) => to(ctx).uri,
  tU: uriPart((ctx) => to(ctx).uri, 'user'),
  td: uriPart((ctx) => to(ctx).uri, 'host'),
  tt: (ctx) => to(ctx).tag,
  tn: (ctx) => to(ctx).displayName,
  ci: (ctx) => ctx.msg.callId || undefined,
  cs: (ctx) => ctx.msg.cseq.seq,
  ct: (ctx) => ctx.msg.header('contact'),
  cl: (ctx) => ctx.msg.contentLength,
  cT: (ctx) => ctx.msg.header('content-type'),
  ua: (ctx) => ctx.msg.header('user-agent'),
  si: (ctx) => ctx.src.ip,
  sp: (ctx) => ctx.src.port,
  Ri: (ctx) => ctx.dst.ip,
  Rp: (ctx) => ctx.dst.port,
  pr: (ctx) => ctx.src.proto.toUpperCase(),
  rs: (ctx) => (ctx.msg.isRequest ? undefined : ctx.msg.status),
  rr: (ctx) => (ctx.msg.isRequest ? undefined : ctx.msg.reason),
  mf: (ctx) => ctx.flags >>> 0,
  mF: (ctx) => (ctx.flags >>> 0).toString(16).toUpperCase(),
  mi: (ctx) => {
    let id = ids.get(ctx.msg);
    if (id === undefined) ids.set(ctx.msg, (id = nextId++));
    return id;
  },
  ml: (ctx) => ctx.msg.serialize().length,
  mb: (ctx) => ctx.msg.serialize().toString('latin1'),
  rb: (ctx) => {
    const b = ctx.msg.body;
    return b.length > 0 ? b.toString('latin1') : undefined;
  },
  du: (ctx) => ctx.dstUri,
  ds: dset,
  br: (ctx) => (ctx.branches.length > 0 ? ctx.branches.map((b) => b.uri).join(',') : undefined),
  pp: () => process.pid,
  Ts: () => Math.floor(Date.now() / 1000),
};

/** Pseudo-variables with a parameter: $hdr(name), $avp(name). */
const WITH_PARAM: Readonly<Record<string, (p: string) => Getter>> = {
  hdr: (name) => {
    if (!/^[!#-'*+.0-9A-Z^-z|~-]+$/.test(name)) throw new FixupError(`$hdr(${name}): not a header name`);
    return (ctx) => ctx.msg.header(name);
  },
  avp: (name) => {
    const alt = /^[si]:/.test(name) ? name.slice(2) : undefined;
    return (ctx) => {
      const v = ctx.avps.get(name) ?? (alt === undefined ? undefined : ctx.avps.get(alt));
      return v?.[0];
    };
  },
};

/**
 * Compiles an xlog format. `$$` is a literal `$`; `\n`, `\r`, `\t`, `\\` are escapes (the
 * script lexer already turns them into characters in double-quoted strings).
 */
export function compileFormat(fmt: string): Format {
  const parts: (string | Getter)[] = [];
  let lit = '';
  const n = fmt.length;
  for (let i = 0; i < n; i++) {
    const c = fmt[i]!;
    if (c === '\\' && i + 1 < n) {
      const e = fmt[i + 1]!;
      const map: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\' };
      if (map[e] !== undefined) {
        lit += map[e];
        i++;
        continue;
      }
      lit += c;
      continue;
    }
    if (c !== '$') {
      lit += c;
      continue;
    }
    if (fmt[i + 1] === '$') {
      lit += '$';
      i++;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(fmt.slice(i + 1, i + 40));
    if (m === null)
      throw new FixupError(`a '$' at offset ${i} starts no pseudo-variable (write $$ for a '$')`);
    const name = m[0];
    let end = i + 1 + name.length;
    let getter: Getter;
    if (fmt[end] === '(' && WITH_PARAM[name] !== undefined) {
      const close = fmt.indexOf(')', end);
      if (close < 0) throw new FixupError(`$${name}( is not closed`);
      const param = fmt.slice(end + 1, close).trim();
      if (param === '') throw new FixupError(`$${name}() needs a name`);
      getter = WITH_PARAM[name](param);
      end = close + 1;
    } else if (Object.hasOwn(SIMPLE, name)) {
      getter = SIMPLE[name]!;
    } else if (WITH_PARAM[name] !== undefined) {
      throw new FixupError(`$${name} needs a parameter: $${name}(name)`);
    } else {
      throw new FixupError(`unknown pseudo-variable $${name}`);
    }
    if (lit !== '') parts.push(lit);
    lit = '';
    parts.push(getter);
    i = end - 1;
  }
  if (lit !== '') parts.push(lit);
  return parts;
}

/** Renders a compiled format for a message; a missing or unreadable value prints <null>. */
export function render(fmt: Format, ctx: MsgContext): string {
  let out = '';
  for (const p of fmt) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    let v: string | number | undefined;
    try {
      v = p(ctx);
    } catch {
      v = undefined;
    }
    out += v === undefined || v === '' ? NULL_TEXT : String(v);
  }
  return out;
}

function formatArg(): ArgSpec<Format> {
  return {
    name: 'format',
    fixup(a: ScriptArg) {
      if (a.kind !== 'string') throw new FixupError(`format must be a quoted string, not ${describeArg(a)}`);
      return compileFormat(a.value);
    },
  };
}

function levelArg(): ArgSpec<number> {
  return {
    name: 'level',
    fixup(a: ScriptArg) {
      if (a.kind === 'number' && Number.isInteger(a.value)) return a.value;
      if (a.kind === 'string' || a.kind === 'ident') {
        const v = a.value.trim();
        const l = LEVELS[v.toUpperCase()];
        if (l !== undefined) return l;
        if (/^-?\d+$/.test(v)) return Number(v);
      }
      throw new FixupError(`level must be one of ${Object.keys(LEVELS).join(', ')}, not ${describeArg(a)}`);
    },
  };
}

function emit(ctx: MsgContext, st: State, level: number, fmt: Format): number {
  if (!st.log.enabled(level)) return 1;
  let text = render(fmt, ctx);
  if (text.length > st.bufSize) text = text.slice(0, st.bufSize);
  st.log.log(level, text);
  return 1;
}

export default defineModule<State>({
  name: 'xlog',
  params: {
    buf_size: {
      type: 'int',
      default: 4096,
      validate(v) {
        if (typeof v !== 'number' || v < 64) throw new FixupError('buf_size must be at least 64');
      },
    },
    /** accepted for OpenSER compatibility; colours are not printed */
    force_color: { type: 'int', default: 0 },
  },
  init(core: CoreApi, params): State {
    return { log: core.log, bufSize: Number(params.buf_size ?? 4096) };
  },
  functions: {
    xlog: {
      signatures: [[formatArg()], [levelArg(), formatArg()]],
      routes: ['request', 'failure', 'onreply', 'branch'],
      run(ctx, st, a: Format | number, b?: Format) {
        return typeof a === 'number' ? emit(ctx, st, a, b!) : emit(ctx, st, L_ERR, a);
      },
    },
    xdbg: {
      signatures: [[formatArg()]],
      routes: ['request', 'failure', 'onreply', 'branch'],
      run: (ctx, st, fmt: Format) => emit(ctx, st, L_DBG, fmt),
    },
  },
});
