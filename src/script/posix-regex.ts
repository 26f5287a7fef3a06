/**
 * POSIX extended regular expressions (regcomp with REG_EXTENDED, as SER uses
 * them) translated to JavaScript RegExp.
 *
 * What differs between the two and is handled here:
 * - bracket expressions: `]` first is literal, `\` is literal inside brackets,
 *   `[:class:]`, `[=x=]` and `[.x.]` forms;
 * - without REG_NEWLINE `.` and `[^…]` match a newline and `^`/`$` only match at
 *   the ends of the string; with it (textops) they work per line, `\n` only;
 * - stacked quantifiers (`a+?`, `a**`) are greedy repetitions of repetitions in
 *   POSIX, never JS's lazy forms;
 * - a `*`, `+`, `?` or `{` with nothing to repeat is a literal (glibc);
 * - `\` before an ordinary character is that character; glibc's `\w \W \s \S
 *   \b \B \< \>` are kept; back-references and lookaround are refused.
 */

export class PosixRegexError extends Error {
  override name = 'PosixRegexError';
  constructor(
    message: string,
    /** 0-based offset of the problem in the pattern */
    readonly offset: number,
  ) {
    super(message);
  }
}

export interface PosixRegexOptions {
  /** REG_ICASE; SER's conditions always set it (default true) */
  readonly icase?: boolean;
  /** REG_NEWLINE: `.` and `[^…]` do not match `\n`, `^`/`$` match at line ends (default false) */
  readonly newline?: boolean;
}

const CLASSES: Readonly<Record<string, string>> = {
  alpha: 'A-Za-z',
  digit: '0-9',
  alnum: '0-9A-Za-z',
  upper: 'A-Z',
  lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
  print: ' -~',
  graph: '!-~',
  cntrl: '\\x00-\\x1f\\x7f',
  xdigit: '0-9A-Fa-f',
};

function escChar(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}
function escClassChar(c: string): string {
  return /[\\\]^-]/.test(c) ? `\\${c}` : c;
}

/** Translate a POSIX ERE into the source and flags of an equivalent JavaScript RegExp. */
export function translatePosixEre(
  pattern: string,
  opts: PosixRegexOptions = {},
): { source: string; flags: string } {
  const newline = opts.newline ?? false;
  let out = '';
  let i = 0;
  const n = pattern.length;
  /** start offset in `out` of the last atom, or -1 when there is nothing to repeat */
  let atomStart = -1;
  /** whether the last atom already carries a quantifier */
  let quantified = false;
  const groups: { outStart: number; srcOff: number }[] = [];

  const addAtom = (s: string): void => {
    atomStart = out.length;
    out += s;
    quantified = false;
  };
  const addQuant = (q: string): void => {
    if (quantified) {
      // POSIX: a repetition of a repetition; JS would read `a+?` as lazy
      out = `${out.slice(0, atomStart)}(?:${out.slice(atomStart)})`;
    }
    out += q;
    quantified = true;
  };

  while (i < n) {
    const c = pattern[i]!;
    switch (c) {
      case '\\': {
        if (i + 1 >= n) throw new PosixRegexError('trailing backslash', i);
        const e = pattern[i + 1]!;
        i += 2;
        if (e >= '1' && e <= '9')
          throw new PosixRegexError(`back-reference '\\${e}' is not supported`, i - 2);
        if ('wWsSdD'.includes(e)) addAtom(`\\${e}`);
        else if (e === 'b' || e === 'B') {
          out += `\\${e}`;
          atomStart = -1;
        } else if (e === '<') {
          out += '\\b(?=\\w)';
          atomStart = -1;
        } else if (e === '>') {
          out += '\\b(?<=\\w)';
          atomStart = -1;
        } else if (e === '`') {
          out += '^';
          atomStart = -1;
        } else if (e === "'") {
          out += '$';
          atomStart = -1;
        } else addAtom(escChar(e));
        continue;
      }
      case '.':
        addAtom(newline ? '[^\\n]' : '[\\s\\S]');
        i++;
        continue;
      case '^':
        out += newline ? '(?<=^|\\n)' : '^';
        atomStart = -1;
        i++;
        continue;
      case '$':
        out += newline ? '(?=\\n|$)' : '$';
        atomStart = -1;
        i++;
        continue;
      case '(': {
        if (pattern[i + 1] === '?')
          throw new PosixRegexError("'(?' constructs are not POSIX (lookaround, named groups)", i);
        groups.push({ outStart: out.length, srcOff: i });
        out += '(';
        atomStart = -1;
        i++;
        continue;
      }
      case ')': {
        const g = groups.pop();
        if (!g) throw new PosixRegexError("unmatched ')'", i);
        out += ')';
        atomStart = g.outStart;
        quantified = false;
        i++;
        continue;
      }
      case '|':
        out += '|';
        atomStart = -1;
        i++;
        continue;
      case '*':
      case '+':
      case '?':
        if (atomStart < 0) addAtom(`\\${c}`);
        else addQuant(c);
        i++;
        continue;
      case '{': {
        const m = /^\{(\d*)(,(\d*))?\}/.exec(pattern.slice(i));
        if (atomStart < 0) {
          addAtom('\\{');
          i++;
          continue;
        }
        if (!m || (m[1] === '' && m[2] === undefined))
          throw new PosixRegexError("invalid repetition '{…}'", i);
        const lo = m[1] === '' ? 0 : Number(m[1]);
        const hi = m[2] === undefined ? lo : m[3] === '' ? undefined : Number(m[3]);
        if (lo > 255 || (hi !== undefined && (hi > 255 || hi < lo))) {
          throw new PosixRegexError(`invalid repetition count '${m[0]}'`, i);
        }
        addQuant(m[2] === undefined ? `{${lo}}` : `{${lo},${hi ?? ''}}`);
        i += m[0].length;
        continue;
      }
      case '[': {
        const r = bracket(pattern, i, newline);
        addAtom(r.out);
        i = r.end;
        continue;
      }
      default:
        addAtom(escChar(c));
        i++;
    }
  }
  if (groups.length > 0) throw new PosixRegexError("unmatched '('", groups[groups.length - 1]!.srcOff);
  return { source: out, flags: (opts.icase ?? true) ? 'i' : '' };
}

function bracket(p: string, start: number, newline: boolean): { out: string; end: number } {
  let i = start + 1;
  let negate = false;
  if (p[i] === '^') {
    negate = true;
    i++;
  }
  const items: string[] = [];
  let first = true;
  let prevChar: string | undefined; // last single char, possible range start
  for (;;) {
    if (i >= p.length) throw new PosixRegexError("unmatched '[' (bracket expression not closed)", start);
    const c = p[i]!;
    if (c === ']' && !first) {
      i++;
      break;
    }
    first = false;
    if (c === '[' && (p[i + 1] === ':' || p[i + 1] === '=' || p[i + 1] === '.')) {
      const kind = p[i + 1]!;
      const close = p.indexOf(`${kind}]`, i + 2);
      if (close < 0) throw new PosixRegexError(`unterminated '[${kind}' in a bracket expression`, i);
      const name = p.slice(i + 2, close);
      i = close + 2;
      if (kind === ':') {
        const cls = CLASSES[name];
        if (!cls) throw new PosixRegexError(`unknown character class '[:${name}:]'`, i - name.length - 4);
        items.push(cls);
        prevChar = undefined;
      } else {
        if ([...name].length !== 1)
          throw new PosixRegexError(`unsupported collating element '[${kind}${name}${kind}]'`, i);
        items.push(escClassChar(name));
        prevChar = name;
      }
      continue;
    }
    if (c === '-' && prevChar !== undefined && p[i + 1] !== undefined && p[i + 1] !== ']') {
      let hi = p[i + 1]!;
      let adv = 2;
      if (hi === '[' && (p[i + 2] === '.' || p[i + 2] === '=')) {
        const close = p.indexOf(`${p[i + 2]}]`, i + 3);
        if (close < 0) throw new PosixRegexError('unterminated collating element', i + 1);
        hi = p.slice(i + 3, close);
        adv = close + 2 - i;
      }
      if (hi < prevChar) throw new PosixRegexError(`invalid range '${prevChar}-${hi}'`, i - 1);
      items.push(`-${escClassChar(hi)}`);
      prevChar = undefined;
      i += adv;
      continue;
    }
    items.push(escClassChar(c)); // a backslash is literal inside brackets
    prevChar = c;
    i++;
  }
  let body = items.join('');
  if (negate && newline) body += '\\n';
  if (body === '') return { out: negate ? '[\\s\\S]' : '[]', end: i };
  return { out: `[${negate ? '^' : ''}${body}]`, end: i };
}

const cache = new Map<string, RegExp>();

/**
 * Compile a POSIX extended regular expression into a JavaScript RegExp
 * (no `g` flag: `test` keeps no state). Throws PosixRegexError when invalid.
 */
export function posixRegExp(pattern: string, opts: PosixRegexOptions = {}): RegExp {
  const key = `${(opts.icase ?? true) ? 'i' : ''}${opts.newline ? 'n' : ''}:${pattern}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const { source, flags } = translatePosixEre(pattern, opts);
  let re: RegExp;
  try {
    re = new RegExp(source, flags);
  } catch (e) {
    throw new PosixRegexError(`invalid regular expression: ${(e as Error).message}`, 0);
  }
  if (cache.size < 10000) cache.set(key, re);
  return re;
}
