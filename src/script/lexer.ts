/**
 * The ser.cfg lexer (after SER 0.9's cfg.lex): comments (`#`, nested `/* … *\/`),
 * `\`-newline continuation, "…" strings with escapes, '…' raw strings, numbers,
 * words (identifiers, hostnames, IPv4 addresses) and IPv6 addresses.
 */
import { isIPv6 } from 'node:net';
import type { Pos } from './ast.js';
import { ScriptSyntaxError } from './diagnostics.js';

export type TokenType = 'string' | 'number' | 'word' | 'ipv6' | 'punct' | 'eof';

export interface Token {
  readonly type: TokenType;
  /** for strings the decoded value; for ipv6 the address without brackets; otherwise the text */
  readonly value: string;
  /** the source text */
  readonly text: string;
  readonly quote?: '"' | "'";
  readonly pos: Pos;
  /** offset just after the token */
  readonly endOffset: number;
  readonly endPos: Pos;
  /** true when whitespace or a comment came before the token */
  readonly spaced: boolean;
  /** a lexical error met at this point */
  readonly error?: ScriptSyntaxError;
}

const PUNCT2 = new Set(['==', '!=', '=~', '!~', '>=', '<=', '&&', '||']);
const PUNCT1 = new Set(['=', '!', '&', '|', '>', '<', '(', ')', '{', '}', '[', ']', ';', ',', ':', '/', '-']);

function isWordChar(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '_';
}

/**
 * Tokenize a whole file. A lexical error does not throw here: it becomes the
 * last token (type 'eof' with `error`), so that an earlier syntax error is
 * still reported first, as a reader going top-down would expect.
 */
export function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  try {
    tokenizeInto(out, text, file);
  } catch (e) {
    if (!(e instanceof ScriptSyntaxError)) throw e;
    out.push({
      type: 'eof',
      value: '',
      text: '',
      pos: e.pos,
      endOffset: text.length,
      endPos: e.pos,
      spaced: true,
      error: e,
    });
  }
  return out;
}

function tokenizeInto(out: Token[], text: string, file: string): void {
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const n = text.length;
  const posAt = (off: number): Pos => ({ file, line, col: off - lineStart + 1 });
  // position of an offset at or after lineStart, allowing newlines in between
  const advanceTo = (to: number): void => {
    for (let k = i; k < to; k++) {
      if (text.charCodeAt(k) === 10) {
        line++;
        lineStart = k + 1;
      }
    }
    i = to;
  };
  let spaced = true;
  while (i < n) {
    const c = text[i]!;
    if (c === '\n') {
      advanceTo(i + 1);
      spaced = true;
      continue;
    }
    if (
      c === ' ' ||
      c === '\t' ||
      c === '\r' ||
      c === '\f' ||
      c === '\v' ||
      c === '\u00a0' ||
      c === '\ufeff'
    ) {
      i++;
      spaced = true;
      continue;
    }
    if (c === '#') {
      while (i < n && text[i] !== '\n') i++;
      spaced = true;
      continue;
    }
    if (c === '\\' && (text[i + 1] === '\n' || (text[i + 1] === '\r' && text[i + 2] === '\n'))) {
      advanceTo(i + (text[i + 1] === '\r' ? 3 : 2));
      spaced = true;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const start = posAt(i);
      let depth = 0;
      let k = i;
      while (k < n) {
        if (text[k] === '/' && text[k + 1] === '*') {
          depth++;
          k += 2;
        } else if (text[k] === '*' && text[k + 1] === '/') {
          depth--;
          k += 2;
          if (depth === 0) break;
        } else k++;
      }
      if (depth !== 0) throw new ScriptSyntaxError(start, 'unterminated comment: "/*" without "*/"', '/*');
      advanceTo(k);
      spaced = true;
      continue;
    }
    const pos = posAt(i);
    const start = i;
    const push = (t: Omit<Token, 'pos' | 'endOffset' | 'endPos' | 'spaced'>, end: number): void => {
      advanceTo(end);
      out.push({ ...t, pos, endOffset: end, endPos: posAt(end), spaced });
      spaced = false;
    };
    if (c === '"') {
      let k = i + 1;
      let val = '';
      for (;;) {
        if (k >= n) {
          // the usual cause: an earlier string lost its closing quote and took this one's
          const ml = lastMultiLineString(out);
          if (ml) {
            throw new ScriptSyntaxError(
              ml.pos,
              `string runs over ${ml.text.split('\n').length} lines and leaves an unterminated string at line ${pos.line}, column ${pos.col}: is its closing quote missing?`,
              lineText(text, ml.endOffset - ml.text.length),
            );
          }
          throw new ScriptSyntaxError(
            pos,
            "unterminated string: missing closing '\"'",
            lineText(text, start),
          );
        }
        const d = text[k]!;
        if (d === '"') break;
        if (d === '\\' && k + 1 < n) {
          const e = text[k + 1]!;
          if (e === 'n') val += '\n';
          else if (e === 'r') val += '\r';
          else if (e === 't') val += '\t';
          else if (e === '\\') val += '\\';
          else if (e === '"') val += '"';
          else if (e === '\n') {
            /* continuation inside a string */
          } else val += '\\' + e; // unknown escapes reach the regex engine untouched: "\." "\+"
          k += 2;
          continue;
        }
        val += d;
        k++;
      }
      push({ type: 'string', value: val, text: text.slice(start, k + 1), quote: '"' }, k + 1);
      continue;
    }
    if (c === "'") {
      const k = text.indexOf("'", i + 1);
      if (k < 0) {
        throw new ScriptSyntaxError(pos, 'unterminated string: missing closing "\'"', lineText(text, start));
      }
      push(
        { type: 'string', value: text.slice(i + 1, k), text: text.slice(start, k + 1), quote: "'" },
        k + 1,
      );
      continue;
    }
    // IPv6, bracketed or bare
    if (c === '[') {
      const m = /^\[([0-9A-Fa-f:.]+)\]/.exec(text.slice(i, i + 60));
      if (m && m[1]!.includes(':') && isIPv6(m[1]!)) {
        push({ type: 'ipv6', value: m[1]!, text: m[0] }, i + m[0].length);
        continue;
      }
    }
    if (/[0-9A-Fa-f:]/.test(c)) {
      const m = /^[0-9A-Fa-f:.]+/.exec(text.slice(i, i + 60));
      if (m) {
        let run = m[0];
        while (run.endsWith('.')) run = run.slice(0, -1);
        const nextCh = text[i + run.length] ?? '';
        if (run.includes(':') && !isWordChar(nextCh) && isIPv6(run)) {
          push({ type: 'ipv6', value: run, text: run }, i + run.length);
          continue;
        }
      }
    }
    if (isWordChar(c)) {
      let k = i + 1;
      while (k < n) {
        const d = text[k]!;
        if (isWordChar(d)) k++;
        else if ((d === '.' || d === '-') && k + 1 < n && isWordChar(text[k + 1]!)) k++;
        else break;
      }
      const w = text.slice(i, k);
      const isNum = /^[0-9]+$/.test(w) || /^0x[0-9a-fA-F]+$/.test(w);
      push({ type: isNum ? 'number' : 'word', value: w, text: w }, k);
      continue;
    }
    const two = text.slice(i, i + 2);
    if (PUNCT2.has(two)) {
      push({ type: 'punct', value: two, text: two }, i + 2);
      continue;
    }
    if (PUNCT1.has(c)) {
      push({ type: 'punct', value: c, text: c }, i + 1);
      continue;
    }
    const cp = String.fromCodePoint(text.codePointAt(i)!);
    const ml = lastMultiLineString(out.slice(-12));
    const hint = ml
      ? ` (the string at line ${ml.pos.line}, column ${ml.pos.col} runs over several lines: is a quote missing?)`
      : '';
    throw new ScriptSyntaxError(pos, `unexpected character '${cp}'${hint}`, lineText(text, start));
  }
  const end = posAt(n);
  out.push({ type: 'eof', value: '', text: '', pos: end, endOffset: n, endPos: end, spaced: true });
}

/** the rest of the source line from an offset, trimmed, for messages */
export function lineText(text: string, off: number): string {
  const e = text.indexOf('\n', off);
  return text.slice(off, e < 0 ? text.length : e).trim();
}

/** the last double-quoted string that spans lines, a likely missing closing quote */
export function lastMultiLineString(toks: readonly Token[]): Token | undefined {
  for (let k = toks.length - 1; k >= 0; k--) {
    const t = toks[k]!;
    if (t.type === 'string' && t.quote === '"' && t.text.includes('\n')) return t;
  }
  return undefined;
}
