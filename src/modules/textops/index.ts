/**
 * textops: text operations on the SIP message (SER 0.9 / OpenSER 1.1 textops).
 *
 * Regular expressions are POSIX EREs compiled at load time with SER's flags
 * (REG_EXTENDED | REG_ICASE | REG_NEWLINE: `^` and `$` work per line). They run over the
 * whole current message text, start line, headers and body, as latin1 (one char per byte).
 *
 * Whole-text edits (replace, replace_all, subst, search_append) re-parse the edited text
 * into the same SipMessage object (see rewrite.ts); an edit that would leave an invalid
 * message is refused (-1) and the message stays as it was. Header edits (append_hf,
 * append_urihf, remove_hf) use the SipMessage edit methods.
 *
 * append_to_reply() stores header lines for the next locally generated reply in the AVP
 * REPLY_HF_AVP of the context (see replyHeaders()); the core's reply builder adds them.
 */
import type { CoreApi } from '../../core/api.js';
import { type MsgContext, REPLY_HF_AVP, replyHeaders } from '../../core/context.js';
import { L_DBG, L_ERR, type Logger } from '../../core/log.js';
import { type ArgSpec, defineModule, FixupError, type RouteKind, type ScriptArg } from '../../core/module.js';
import { describeArg, str } from '../../script/args.js';
import { PosixRegexError, posixRegExp } from '../../script/posix-regex.js';
import { adoptText, MAX_MESSAGE, messageText, parseHeaderLines, substitute, toLatin1 } from './rewrite.js';

export { adoptText, messageText, parseHeaderLines } from './rewrite.js';

/**
 * AVP under which append_to_reply() queues header lines ("Name: value", no CRLF), latest
 * first like every AVP. The name holds a '/', which no script AVP name can.
 */
export { REPLY_HF_AVP, replyHeaders };

const MSG_ROUTES: readonly RouteKind[] = ['request', 'failure', 'onreply', 'branch'];
const REQ_ROUTES: readonly RouteKind[] = ['request', 'failure', 'branch'];

interface State {
  log: Logger | undefined;
}

/** A textops regex: POSIX ERE, case-insensitive, REG_NEWLINE; `global` adds the g flag. */
function textRegex(name: string, global = false): ArgSpec<RegExp> {
  return {
    name,
    fixup(a: ScriptArg) {
      if (a.kind !== 'string')
        throw new FixupError(`${name} must be a quoted regular expression, not ${describeArg(a)}`);
      return compile(a.value, { icase: true, newline: true }, global);
    },
  };
}

function compile(pattern: string, opts: { icase: boolean; newline: boolean }, global: boolean): RegExp {
  try {
    const re = posixRegExp(toLatin1(pattern), opts);
    return global ? new RegExp(re.source, `${re.flags}g`) : re;
  } catch (e) {
    if (e instanceof PosixRegexError) {
      throw new FixupError(`invalid regular expression "${pattern}": ${e.message} (at offset ${e.offset})`);
    }
    throw e;
  }
}

/** Header text checked at load time: "Name: value\r\n" (several lines allowed). */
function headerText(name: string): ArgSpec<{ name: string; value: string }[]> {
  return {
    name,
    fixup(a: ScriptArg) {
      if (a.kind !== 'string') throw new FixupError(`${name} must be a quoted string, not ${describeArg(a)}`);
      try {
        return parseHeaderLines(toLatin1(a.value));
      } catch (e) {
        throw new FixupError(`${name}: ${(e as Error).message}`);
      }
    },
  };
}

/** Literal replacement text (no back-references, as in SER's replace()). */
function literal(name: string): ArgSpec<string> {
  const inner = str(name);
  return { name, fixup: (a, env) => toLatin1(inner.fixup(a, env)) };
}

/** A compiled subst expression: '/re/repl/flags'. */
export interface SubstExpr {
  re: RegExp;
  global: boolean;
  /** literal parts and group numbers, alternating as written */
  repl: (string | number)[];
}

/**
 * Parses SER's sed-like substitution: the first character is the separator; `\sep` is a
 * literal separator in both parts; in the replacement `\0`…`\9` are back-references and
 * `\\`, `\n`, `\r`, `\t` escapes. Flags: i (ignore case), g (all matches), s (`.` also
 * matches a newline, `^`/`$` only at the text's ends).
 */
export function parseSubst(expr: string): SubstExpr {
  if (expr.length < 4) throw new FixupError(`subst expression "${expr}" is too short (/re/repl/flags)`);
  const sep = expr[0]!;
  if (sep === '\\' || /\s/.test(sep)) throw new FixupError(`subst separator may not be '${sep}'`);
  let i = 1;
  let re = '';
  for (; i < expr.length && expr[i] !== sep; i++) {
    if (expr[i] === '\\' && expr[i + 1] === sep) {
      re += sep;
      i++;
    } else if (expr[i] === '\\' && i + 1 < expr.length) {
      re += expr[i]! + expr[i + 1]!;
      i++;
    } else re += expr[i];
  }
  if (i >= expr.length) throw new FixupError(`subst expression "${expr}": missing separator after the regex`);
  i++;
  const repl: (string | number)[] = [];
  let lit = '';
  let maxRef = -1;
  for (; i < expr.length && expr[i] !== sep; i++) {
    const c = expr[i]!;
    if (c !== '\\') {
      lit += c;
      continue;
    }
    const e = expr[++i];
    if (e === undefined) throw new FixupError(`subst expression "${expr}": '\\' at the end`);
    if (e >= '0' && e <= '9') {
      if (lit !== '') repl.push(lit);
      lit = '';
      repl.push(Number(e));
      maxRef = Math.max(maxRef, Number(e));
    } else if (e === 'n') lit += '\n';
    else if (e === 'r') lit += '\r';
    else if (e === 't') lit += '\t';
    else lit += e; // \\, \sep and any other escaped character stand for themselves
  }
  if (i >= expr.length)
    throw new FixupError(`subst expression "${expr}": missing separator after the replacement`);
  if (lit !== '') repl.push(lit);
  let icase = false;
  let newline = true;
  let global = false;
  for (const f of expr.slice(i + 1)) {
    if (f === 'i') icase = true;
    else if (f === 'g') global = true;
    else if (f === 's') newline = false;
    else throw new FixupError(`subst expression "${expr}": unknown flag '${f}' (i, g, s)`);
  }
  const rx = compile(re, { icase, newline }, true);
  const groups = (new RegExp(`${rx.source}|`).exec('')?.length ?? 1) - 1;
  if (maxRef > groups) {
    throw new FixupError(`subst expression "${expr}": \\${maxRef} but the regex has ${groups} group(s)`);
  }
  return { re: rx, global, repl: repl.map((p) => (typeof p === 'string' ? toLatin1(p) : p)) };
}

function substArg(name: string): ArgSpec<SubstExpr> {
  return {
    name,
    fixup(a: ScriptArg) {
      if (a.kind !== 'string') throw new FixupError(`${name} must be a quoted string, not ${describeArg(a)}`);
      return parseSubst(a.value);
    },
  };
}

function expand(repl: readonly (string | number)[], m: RegExpExecArray): string {
  let out = '';
  for (const p of repl) out += typeof p === 'string' ? p : (m[p] ?? '');
  return out;
}

/** Applies an edited text to ctx.msg; logs why when refused. */
function commit(ctx: MsgContext, st: State, fname: string, text: string): number {
  const r = adoptText(ctx, text);
  if (r.result === 'ok') return 1;
  const why =
    r.result === 'too-large'
      ? `the message would exceed ${MAX_MESSAGE} bytes`
      : `the edited message is not valid SIP (${r.reason ?? r.result})`;
  st.log?.once(L_ERR, `textops:${fname}:${r.result}`, `ERROR: textops: ${fname}: edit refused: ${why}\n`);
  return -1;
}

function edit(
  ctx: MsgContext,
  st: State,
  fname: string,
  re: RegExp,
  global: boolean,
  repl: (m: RegExpExecArray) => string,
): number {
  const r = substitute(messageText(ctx.msg), re, global, repl);
  if (r === undefined) return -1;
  return commit(ctx, st, fname, r.text);
}

function addLines(ctx: MsgContext, lines: readonly { name: string; value: string }[]): number {
  for (const h of lines) ctx.msg.addHeader(h.name, h.value, 'bottom');
  return 1;
}

export default defineModule<State>({
  name: 'textops',
  init(core: CoreApi): State {
    return { log: core.log };
  },
  functions: {
    /** true when the regex matches somewhere in the message */
    search: {
      signatures: [[textRegex('regex')]],
      routes: MSG_ROUTES,
      run: (ctx, _st, re: RegExp) => (re.test(messageText(ctx.msg)) ? 1 : -1),
    },
    /** inserts text right after the first match */
    search_append: {
      signatures: [[textRegex('regex'), literal('text')]],
      routes: MSG_ROUTES,
      run: (ctx, st, re: RegExp, text: string) =>
        edit(ctx, st, 'search_append', re, false, (m) => m[0] + text),
    },
    /** replaces the first match with literal text */
    replace: {
      signatures: [[textRegex('regex'), literal('replacement')]],
      routes: MSG_ROUTES,
      run: (ctx, st, re: RegExp, text: string) => edit(ctx, st, 'replace', re, false, () => text),
    },
    /** replaces every match with literal text */
    replace_all: {
      signatures: [[textRegex('regex', true), literal('replacement')]],
      routes: MSG_ROUTES,
      run: (ctx, st, re: RegExp, text: string) => edit(ctx, st, 'replace_all', re, true, () => text),
    },
    /** sed-like '/re/repl/flags' over the whole message */
    subst: {
      signatures: [[substArg('subst expression')]],
      routes: MSG_ROUTES,
      run: (ctx, st, s: SubstExpr) => edit(ctx, st, 'subst', s.re, s.global, (m) => expand(s.repl, m)),
    },
    /** appends header line(s) after the last header */
    append_hf: {
      signatures: [[headerText('header')]],
      routes: MSG_ROUTES,
      run: (ctx, _st, lines: { name: string; value: string }[]) => addLines(ctx, lines),
    },
    /** appends a header made of prefix + the original Request-URI + suffix */
    append_urihf: {
      signatures: [[literal('prefix'), literal('suffix')]],
      routes: REQ_ROUTES,
      run(ctx, st, prefix: string, suffix: string) {
        if (!ctx.msg.isRequest) return -1;
        let lines: { name: string; value: string }[];
        try {
          lines = parseHeaderLines(prefix + ctx.msg.ruri + suffix);
        } catch (e) {
          st.log?.once(
            L_ERR,
            'textops:append_urihf',
            `ERROR: textops: append_urihf: ${(e as Error).message}\n`,
          );
          return -1;
        }
        return addLines(ctx, lines);
      },
    },
    /** true when a header of that name (or its compact form) is present */
    is_present_hf: {
      signatures: [[str('header name', { nonEmpty: true })]],
      routes: MSG_ROUTES,
      run: (ctx, _st, name: string) => (ctx.msg.hasHeader(name) ? 1 : -1),
    },
    /** removes every header of that name (compact form included); false when none was there */
    remove_hf: {
      signatures: [[str('header name', { nonEmpty: true })]],
      routes: MSG_ROUTES,
      run(ctx, st, name: string) {
        const n = ctx.msg.removeHeader(name);
        if (n > 0) st.log?.log(L_DBG, `DBG: textops: remove_hf: ${n} "${name}" header(s) removed\n`);
        return n > 0 ? 1 : -1;
      },
    },
    /** queues header line(s) for the next locally generated reply */
    append_to_reply: {
      signatures: [[headerText('header')]],
      routes: ['request'],
      run(ctx, _st, lines: { name: string; value: string }[]) {
        let v = ctx.avps.get(REPLY_HF_AVP);
        if (v === undefined) ctx.avps.set(REPLY_HF_AVP, (v = []));
        for (const h of lines) v.unshift(`${h.name}: ${h.value}`);
        return 1;
      },
    },
  },
});
