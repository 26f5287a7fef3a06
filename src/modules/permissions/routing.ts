/**
 * allow_routing(): SER's routing permissions, in the style of tcpd's hosts.allow and
 * hosts.deny. Each line of a rule file is
 *
 *   <From expression> : <Request-URI expression>
 *
 * where an expression is `ALL` or a comma-separated list of quoted regular expressions,
 * optionally followed by `EXCEPT` and another list. A request is allowed when a rule of
 * the allow file matches its From URI and Request-URI; otherwise denied when a rule of
 * the deny file matches; otherwise allowed. `#` starts a comment, a `\` at the end of a
 * line continues it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { PosixRegexError, posixRegExp } from '../../script/posix-regex.js';

export interface ExprList {
  /** undefined: ALL */
  readonly items: readonly RegExp[] | undefined;
  readonly except: readonly RegExp[];
}
export interface Rule {
  readonly from: ExprList;
  readonly ruri: ExprList;
  /** file:line, for messages */
  readonly where: string;
}
export interface RuleFile {
  readonly path: string;
  /** false when the file does not exist (no rules) */
  readonly present: boolean;
  readonly rules: readonly Rule[];
}

export class RuleFileError extends Error {
  override name = 'RuleFileError';
}

type Tok = { t: 'str'; v: string } | { t: 'all' } | { t: 'except' } | { t: ',' } | { t: ':' };

function tokenize(line: string, where: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#') {
      break;
    } else if (c === ',' || c === ':') {
      out.push({ t: c });
      i++;
    } else if (c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= line.length) throw new RuleFileError(`${where}: unterminated string`);
        const d = line[i];
        if (d === '\\' && line[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (d === '"') {
          i++;
          break;
        } else {
          v += d;
          i++;
        }
      }
      out.push({ t: 'str', v });
    } else {
      const m = /^[A-Za-z]+/.exec(line.slice(i));
      const word = m?.[0].toUpperCase();
      if (word === 'ALL') out.push({ t: 'all' });
      else if (word === 'EXCEPT') out.push({ t: 'except' });
      else
        throw new RuleFileError(
          `${where}: unexpected "${line.slice(i, i + 20)}" (expected ALL, EXCEPT or a quoted regular expression)`,
        );
      i += m![0].length;
    }
  }
  return out;
}

function compile(v: string, where: string): RegExp {
  try {
    return posixRegExp(v);
  } catch (e) {
    if (e instanceof PosixRegexError)
      throw new RuleFileError(`${where}: invalid regular expression "${v}": ${e.message}`);
    throw e;
  }
}

/** `ALL` or `"re"[, "re"]*`, each optionally followed by `EXCEPT "re"[, "re"]*` */
function parseExpr(toks: Tok[], where: string): ExprList {
  const list = (): RegExp[] => {
    const out: RegExp[] = [];
    for (;;) {
      const t = toks.shift();
      if (t?.t !== 'str') throw new RuleFileError(`${where}: a quoted regular expression expected`);
      out.push(compile(t.v, where));
      if (toks[0]?.t !== ',') return out;
      toks.shift();
    }
  };
  let items: RegExp[] | undefined;
  if (toks[0]?.t === 'all') {
    toks.shift();
    items = undefined;
  } else items = list();
  let except: RegExp[] = [];
  if (toks[0]?.t === 'except') {
    toks.shift();
    except = list();
  }
  return { items, except };
}

export function parseRules(text: string, path: string): Rule[] {
  const rules: Rule[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const first = n + 1;
    let line = lines[n];
    // a backslash at the end continues the line
    while (/\\\r?$/.test(line) && n + 1 < lines.length) line = line.replace(/\\\r?$/, ' ') + lines[++n];
    const where = `${path}:${first}`;
    const toks = tokenize(line, where);
    if (toks.length === 0) continue;
    const from = parseExpr(toks, where);
    if (toks.shift()?.t !== ':')
      throw new RuleFileError(`${where}: ':' expected between the From and the Request-URI expressions`);
    const ruri = parseExpr(toks, where);
    if (toks.length > 0)
      throw new RuleFileError(`${where}: unexpected text after the Request-URI expression`);
    rules.push({ from, ruri, where });
  }
  return rules;
}

/** Reads a rule file; a missing file has no rules (SER only warned). */
export function loadRuleFile(name: string, baseDir: string): RuleFile {
  const path = isAbsolute(name) ? name : resolve(baseDir, name);
  if (!existsSync(path)) return { path, present: false, rules: [] };
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (e) {
    throw new RuleFileError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return { path, present: true, rules: parseRules(text, path) };
}

function exprMatches(e: ExprList, s: string): boolean {
  if (e.items !== undefined && !e.items.some((r) => r.test(s))) return false;
  return !e.except.some((r) => r.test(s));
}

export function ruleMatches(rules: readonly Rule[], from: string, ruri: string): boolean {
  return rules.some((r) => exprMatches(r.from, from) && exprMatches(r.ruri, ruri));
}

/** hosts.allow / hosts.deny order: allow wins, then deny, else allowed. */
export function routingAllowed(allow: RuleFile, deny: RuleFile, from: string, ruri: string): boolean {
  if (ruleMatches(allow.rules, from, ruri)) return true;
  return !ruleMatches(deny.rules, from, ruri);
}
