/**
 * The ser.cfg parser: a recursive-descent reading of SER 0.9's cfg.y with the
 * OpenSER 1.1 additions (return, exit, branch_route, `!=`, named routes).
 *
 *   action  := cmd ';' | if_cmd | '{' actions '}' | ';'
 *   if_cmd  := 'if' exp stm ['else' stm]
 *   stm     := cmd [';'] | if_cmd | '{' actions '}'
 *
 * so a brace-less branch needs no ';' (`if (c) route(1) ⏎ else x();` is legal),
 * while a statement inside a block without its ';' is an error. As an
 * extension, `if (c) x(); else y();` is accepted too (SER 0.9 rejects it).
 */
import type {
  AddrValue,
  ArgNode,
  BlockKeyword,
  CallStmt,
  CmpOp,
  ConfigAst,
  Expr,
  HostValue,
  ModParamItem,
  NumberValue,
  Operand,
  OptionValue,
  Pos,
  RhsNode,
  RouteBlock,
  RouteCallStmt,
  Stmt,
  StringValue,
  TopItem,
} from './ast.js';
import { ScriptSyntaxError } from './diagnostics.js';
import { lastMultiLineString, lineText, type Token, tokenize } from './lexer.js';

const BLOCK_KEYWORDS: ReadonlySet<string> = new Set([
  'route',
  'failure_route',
  'onreply_route',
  'reply_route',
  'branch_route',
]);
const OPERANDS: ReadonlySet<string> = new Set([
  'method',
  'uri',
  'status',
  'src_ip',
  'dst_ip',
  'src_port',
  'dst_port',
  'proto',
  'af',
]);
const CMP_OPS: ReadonlySet<string> = new Set(['==', '!=', '=~', '!~', '>', '<', '>=', '<=']);
const BOOL_WORDS: Readonly<Record<string, boolean>> = {
  yes: true,
  true: true,
  on: true,
  enable: true,
  no: false,
  false: false,
  off: false,
  disable: false,
};
export const LISTEN_PROTOS: ReadonlySet<string> = new Set(['udp', 'tcp', 'tls', 'sctp', 'ws', 'wss', 'any']);

const IPV4_RE = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

export interface ParseOptions {
  /** accept statements outside route blocks (seed fragments, snippets) */
  readonly fragment?: boolean;
}

/** Parse a complete ser.cfg. Throws ScriptSyntaxError at the first syntax error. */
export function parseConfig(text: string, file = 'ser.cfg', opts: ParseOptions = {}): ConfigAst {
  return new Parser(text, file, opts.fragment ?? false).config();
}

/** Parse a partial config: global options, modules, blocks and loose statements in any order. */
export function parseFragment(text: string, file = 'fragment.cfg'): ConfigAst {
  return parseConfig(text, file, { fragment: true });
}

/** Parse a bare statement list (the body of a block). */
export function parseStatements(text: string, file = 'statements.cfg'): Stmt[] {
  const p = new Parser(text, file, true);
  return p.statementsToEof();
}

/** Remove the elision lines of the seed fragments (`…`, `...`, `....` alone on a line). */
export function stripElisions(text: string): string {
  return text
    .split('\n')
    .map((l) => (/^\s*(…|\.{3,4})\s*$/.test(l) ? '' : l))
    .join('\n');
}

function describe(t: Token): string {
  if (t.type === 'eof') return 'end of file';
  if (t.type === 'string') return `string ${t.text.length > 30 ? `${t.text.slice(0, 27)}...` : t.text}`;
  return `'${t.text}'`;
}

class Parser {
  private readonly toks: Token[];
  private i = 0;

  constructor(
    private readonly src: string,
    private readonly file: string,
    private readonly fragment: boolean,
  ) {
    this.toks = tokenize(src, file);
  }

  // ------------------------------------------------------------ helpers
  private peek(k = 0): Token {
    const t = this.toks[Math.min(this.i + k, this.toks.length - 1)]!;
    if (t.error) throw t.error;
    return t;
  }
  private next(): Token {
    const t = this.peek();
    if (this.i < this.toks.length - 1) this.i++;
    return t;
  }
  private isP(v: string, k = 0): boolean {
    const t = this.peek(k);
    return t.type === 'punct' && t.value === v;
  }
  private isW(v: string, k = 0): boolean {
    const t = this.peek(k);
    return t.type === 'word' && t.value === v;
  }
  private fail(t: Token, msg: string): never {
    const ml = lastMultiLineString(this.toks.slice(Math.max(0, this.i - 12), this.i + 1));
    const hint = ml
      ? ` (the string at line ${ml.pos.line}, column ${ml.pos.col} runs over several lines: is a quote missing?)`
      : '';
    throw new ScriptSyntaxError(t.pos, msg + hint, this.lineAt(t.pos));
  }
  private lineAt(p: Pos): string {
    let off = 0;
    for (let l = 1; l < p.line; l++) off = this.src.indexOf('\n', off) + 1;
    return lineText(this.src, off);
  }
  private expectP(v: string, what: string): Token {
    const t = this.peek();
    if (t.type === 'punct' && t.value === v) return this.next();
    this.fail(t, `syntax error: expected '${v}' ${what}, found ${describe(t)}`);
  }

  // ------------------------------------------------------------ top level
  config(): ConfigAst {
    const items: TopItem[] = [];
    const loose: Stmt[] = [];
    while (this.peek().type !== 'eof') {
      const t = this.peek();
      if (t.type === 'punct' && t.value === ';') {
        this.next();
        continue;
      }
      if (t.type === 'word') {
        if (t.value === 'loadmodule') {
          items.push(this.loadmodule());
          continue;
        }
        if (t.value === 'modparam' && this.isP('(', 1)) {
          items.push(this.modparam());
          continue;
        }
        if (BLOCK_KEYWORDS.has(t.value) && (this.isP('[', 1) || this.isP('{', 1))) {
          items.push(this.block());
          continue;
        }
        if (this.isP('=', 1)) {
          items.push(this.option());
          continue;
        }
      }
      if (!this.fragment) {
        if (t.type === 'word' && (this.isP('(', 1) || t.value === 'if')) {
          this.fail(t, `syntax error: statement '${t.value}' outside a route block`);
        }
        if (t.type === 'word' && BLOCK_KEYWORDS.has(t.value)) {
          this.fail(
            this.peek(1),
            `syntax error: expected '[' or '{' after '${t.value}', found ${describe(this.peek(1))}`,
          );
        }
        this.fail(
          t,
          `syntax error: unexpected ${describe(t)}; expected an option (name=value), loadmodule, modparam or a route block`,
        );
      }
      loose.push(this.statement());
    }
    return { file: this.file, items, loose };
  }

  statementsToEof(): Stmt[] {
    const out: Stmt[] = [];
    while (this.peek().type !== 'eof') out.push(this.statement());
    return out;
  }

  private loadmodule(): TopItem {
    const kw = this.next();
    const t = this.peek();
    if (t.type === 'punct' && t.value === '(') {
      this.fail(
        t,
        'syntax error: loadmodule takes a quoted path without parentheses: loadmodule "/path/module.so"',
      );
    }
    if (t.type !== 'string')
      this.fail(t, `syntax error: loadmodule expects a quoted path, found ${describe(t)}`);
    if (t.value.includes('\n')) {
      throw new ScriptSyntaxError(
        t.pos,
        `syntax error: the loadmodule path runs over ${t.value.split('\n').length} lines: is its closing quote missing?`,
        this.lineAt(t.pos),
      );
    }
    this.next();
    if (this.isP(';')) this.next();
    const base = t.value.slice(t.value.lastIndexOf('/') + 1);
    const name = base.endsWith('.so') ? base.slice(0, -3) : base;
    return { type: 'loadmodule', path: t.value, name, pos: kw.pos };
  }

  private modparam(): ModParamItem {
    const kw = this.next();
    this.expectP('(', "after 'modparam'");
    const m = this.next();
    if (m.type !== 'string')
      this.fail(m, `syntax error: modparam expects a quoted module name, found ${describe(m)}`);
    this.expectP(',', 'after the module name');
    const p = this.next();
    if (p.type !== 'string')
      this.fail(p, `syntax error: modparam expects a quoted parameter name, found ${describe(p)}`);
    this.expectP(',', 'after the parameter name');
    const v = this.peek();
    let value: NumberValue | StringValue;
    if (v.type === 'string') {
      this.next();
      value = { type: 'string', value: v.value, quote: v.quote ?? '"', pos: v.pos };
    } else if (v.type === 'number' || (v.type === 'punct' && v.value === '-')) {
      value = this.number();
    } else if (v.type === 'word' && v.value in BOOL_WORDS) {
      this.next();
      value = { type: 'number', value: BOOL_WORDS[v.value] ? 1 : 0, text: v.value, pos: v.pos };
    } else {
      this.fail(v, `syntax error: modparam value must be a quoted string or a number, found ${describe(v)}`);
    }
    this.expectP(')', 'to close modparam(...)');
    if (this.isP(';')) this.next();
    return {
      type: 'modparam',
      module: m.value,
      modulePos: m.pos,
      param: p.value,
      paramPos: p.pos,
      value,
      pos: kw.pos,
    };
  }

  private number(): NumberValue {
    const first = this.peek();
    let neg = false;
    if (first.type === 'punct' && first.value === '-') {
      this.next();
      neg = true;
    }
    const t = this.next();
    if (t.type !== 'number') this.fail(t, `syntax error: expected a number, found ${describe(t)}`);
    const v = Number(t.value);
    return { type: 'number', value: neg ? -v : v, text: (neg ? '-' : '') + t.text, pos: first.pos };
  }

  private blockName(): string {
    const t = this.next();
    if (t.type === 'number') return String(Number(t.value));
    if (t.type === 'string' || t.type === 'word') return t.value;
    this.fail(t, `syntax error: expected a route number or name, found ${describe(t)}`);
  }

  private block(): RouteBlock {
    const kw = this.next();
    let name = '0';
    if (this.isP('[')) {
      this.next();
      name = this.blockName();
      this.expectP(']', 'after the route number');
    }
    const body = this.braced(`${kw.value}${name === '0' && kw.value === 'route' ? '' : `[${name}]`}`);
    return { type: 'block', keyword: kw.value as BlockKeyword, name, body, pos: kw.pos };
  }

  /** '{' actions '}' */
  private braced(what: string): Stmt[] {
    const open = this.peek();
    if (!(open.type === 'punct' && open.value === '{')) {
      this.fail(open, `syntax error: expected '{' to open ${what}, found ${describe(open)}`);
    }
    this.next();
    const body: Stmt[] = [];
    for (;;) {
      const t = this.peek();
      if (t.type === 'punct' && t.value === '}') {
        this.next();
        return body;
      }
      if (t.type === 'eof') {
        this.fail(
          t,
          `syntax error: unexpected end of file: missing '}' to close the block opened at line ${open.pos.line}, column ${open.pos.col}`,
        );
      }
      body.push(this.statement());
    }
  }

  private option(): TopItem {
    const name = this.next();
    this.next(); // '='
    const value = this.optionValue();
    if (this.isP(';')) this.next();
    return { type: 'option', name: name.value, value, pos: name.pos };
  }

  private host(t: Token): HostValue {
    if (t.type === 'ipv6') return { type: 'host', value: t.value, hostKind: 'ipv6', pos: t.pos };
    if (IPV4_RE.test(t.value)) {
      if (t.value.split('.').some((o) => Number(o) > 255)) this.fail(t, `invalid IPv4 address '${t.value}'`);
      return { type: 'host', value: t.value, hostKind: 'ipv4', pos: t.pos };
    }
    return { type: 'host', value: t.value, hostKind: 'name', pos: t.pos };
  }

  private optionValue(): OptionValue {
    const t = this.peek();
    if (t.type === 'string') {
      this.next();
      return { type: 'string', value: t.value, quote: t.quote ?? '"', pos: t.pos };
    }
    if (t.type === 'punct' && t.value === '-') return this.number();
    if (t.type === 'number' && !this.isP(':', 1)) return this.number();
    if (t.type === 'word' && t.value in BOOL_WORDS && !this.isP(':', 1)) {
      this.next();
      return { type: 'bool', value: BOOL_WORDS[t.value]!, text: t.value, pos: t.pos };
    }
    if (t.type !== 'word' && t.type !== 'ipv6' && t.type !== 'number') {
      this.fail(t, `syntax error: expected an option value, found ${describe(t)}`);
    }
    // [proto:]host[:port]
    this.next();
    let proto: string | undefined;
    let hostTok = t;
    if (t.type === 'word' && LISTEN_PROTOS.has(t.value.toLowerCase()) && this.isP(':')) {
      this.next();
      proto = t.value.toLowerCase();
      hostTok = this.next();
      if (hostTok.type !== 'word' && hostTok.type !== 'ipv6' && hostTok.type !== 'number') {
        this.fail(hostTok, `syntax error: expected a host after '${proto}:', found ${describe(hostTok)}`);
      }
    }
    const host = this.host(hostTok);
    let port: number | undefined;
    if (this.isP(':')) {
      this.next();
      const p = this.next();
      if (p.type !== 'number')
        this.fail(p, `syntax error: expected a port number after ':', found ${describe(p)}`);
      port = Number(p.value);
    }
    if (proto === undefined && port === undefined) return host;
    const addr: AddrValue = { type: 'addr', proto, host, port, pos: t.pos };
    return addr;
  }

  // ------------------------------------------------------------ statements
  private statement(): Stmt {
    const t = this.peek();
    if (t.type === 'punct') {
      if (t.value === ';') {
        this.next();
        return { type: 'empty', pos: t.pos };
      }
      if (t.value === '{') {
        const body = this.braced('a block');
        return { type: 'block', body, pos: t.pos };
      }
    }
    if (t.type === 'word' && t.value === 'if') return this.ifStmt();
    if (t.type === 'word' && t.value === 'else') this.fail(t, "syntax error: 'else' without a matching 'if'");
    const cmd = this.cmd();
    const s = this.peek();
    if (s.type === 'punct' && s.value === ';') {
      this.next();
      return cmd;
    }
    const what =
      cmd.type === 'call' ? `${cmd.name}(...)` : cmd.type === 'route' ? `route(${cmd.target})` : cmd.type;
    const end = this.toks[this.i - 1]!.endPos;
    throw new ScriptSyntaxError(
      end,
      `syntax error: missing ';' after ${what} (found ${describe(s)} at line ${s.pos.line}, column ${s.pos.col})`,
      this.lineAt(cmd.pos),
    );
  }

  /** a command: call, route(n), break, drop, exit, return — without its ';' */
  private cmd(): Stmt {
    const t = this.peek();
    if (t.type !== 'word') this.fail(t, `syntax error: unexpected ${describe(t)}; expected a statement`);
    switch (t.value) {
      case 'break':
        this.next();
        return { type: 'break', pos: t.pos };
      case 'drop':
      case 'exit':
        this.next();
        if (this.isP('(') && this.isP(')', 1)) {
          this.next();
          this.next();
        }
        return { type: t.value, pos: t.pos };
      case 'return': {
        this.next();
        let value: number | undefined;
        if (this.isP('(')) {
          this.next();
          if (!this.isP(')')) value = this.number().value;
          this.expectP(')', 'to close return(...)');
        } else if (this.peek().type === 'number' || (this.isP('-') && this.peek(1).type === 'number')) {
          value = this.number().value;
        }
        return { type: 'return', value, pos: t.pos };
      }
    }
    if (!this.isP('(', 1)) {
      if (t.value in BOOL_WORDS || OPERANDS.has(t.value)) {
        this.fail(t, `syntax error: unexpected '${t.value}'; expected a statement`);
      }
      this.fail(
        this.peek(1),
        `syntax error: expected '(' after '${t.value}', found ${describe(this.peek(1))}`,
      );
    }
    if (t.value === 'route') return this.routeCall();
    return this.call();
  }

  private routeCall(): RouteCallStmt {
    const kw = this.next();
    this.expectP('(', "after 'route'");
    const target = this.blockName();
    this.expectP(')', 'to close route(...)');
    return { type: 'route', target, pos: kw.pos };
  }

  private call(): CallStmt {
    const name = this.next();
    this.next(); // '('
    const args: ArgNode[] = [];
    if (!this.isP(')')) {
      for (;;) {
        args.push(this.arg(name.value));
        if (this.isP(',')) {
          this.next();
          continue;
        }
        if (this.isP(')')) break;
        const t = this.peek();
        this.fail(
          t,
          `syntax error: expected ',' or ')' in the arguments of ${name.value}(), found ${describe(t)}`,
        );
      }
    }
    const close = this.next();
    return { type: 'call', name: name.value, args, pos: name.pos, end: close.endPos };
  }

  private arg(fn: string): ArgNode {
    const t = this.peek();
    if (t.type === 'string') {
      this.next();
      return { type: 'string', value: t.value, quote: t.quote ?? '"', pos: t.pos };
    }
    if (t.type === 'number' || (t.type === 'punct' && t.value === '-')) return this.number();
    if (t.type === 'ipv6') {
      this.next();
      return this.host(t);
    }
    if (t.type === 'word') {
      if (t.value === 'uri' && this.isP(':', 1)) {
        const w = this.peek(2);
        if (w.type === 'word' && (w.value === 'host' || w.value === 'port')) {
          this.i += 3;
          return { type: w.value === 'host' ? 'uri_host' : 'uri_port', pos: t.pos };
        }
        this.fail(w, `syntax error: expected 'uri:host' or 'uri:port', found 'uri:${w.text}'`);
      }
      if (t.value === 'max_len') {
        this.next();
        return { type: 'max_len', pos: t.pos };
      }
      this.next();
      return this.host(t);
    }
    this.fail(t, `syntax error: unexpected ${describe(t)} in the arguments of ${fn}()`);
  }

  private ifStmt(): Stmt {
    const kw = this.next();
    const cond = this.expr();
    const then = this.branch();
    let els: Stmt | undefined;
    if (this.isW('else')) {
      this.next();
      els = this.branch();
    }
    return { type: 'if', cond, then, else: els, pos: kw.pos };
  }

  /** stm := cmd [';'] | if_cmd | '{' actions '}' */
  private branch(): Stmt {
    const t = this.peek();
    if (t.type === 'punct' && t.value === '{') {
      return { type: 'block', body: this.braced('the if/else branch'), pos: t.pos };
    }
    if (t.type === 'word' && t.value === 'if') return this.ifStmt();
    if (t.type === 'punct' && t.value === ';') {
      this.next();
      return { type: 'empty', pos: t.pos };
    }
    const c = this.cmd();
    if (this.isP(';') && this.isW('else', 1)) this.next();
    return c;
  }

  // ------------------------------------------------------------ expressions
  private expr(): Expr {
    let left = this.andExpr();
    for (;;) {
      const t = this.peek();
      if (
        (t.type === 'punct' && (t.value === '||' || t.value === '|')) ||
        (t.type === 'word' && t.value === 'or')
      ) {
        this.next();
        const right = this.andExpr();
        left = { type: 'or', left, right, pos: t.pos };
      } else return left;
    }
  }

  private andExpr(): Expr {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (
        (t.type === 'punct' && (t.value === '&&' || t.value === '&')) ||
        (t.type === 'word' && t.value === 'and')
      ) {
        this.next();
        const right = this.unary();
        left = { type: 'and', left, right, pos: t.pos };
      } else return left;
    }
  }

  private unary(): Expr {
    const t = this.peek();
    if ((t.type === 'punct' && t.value === '!') || (t.type === 'word' && t.value === 'not')) {
      this.next();
      return { type: 'not', expr: this.unary(), pos: t.pos };
    }
    return this.primary();
  }

  private primary(): Expr {
    const t = this.peek();
    if (t.type === 'punct' && t.value === '(') {
      this.next();
      const e = this.expr();
      const c = this.peek();
      if (!(c.type === 'punct' && c.value === ')')) {
        this.fail(
          c,
          `syntax error: expected ')' to close the '(' at line ${t.pos.line}, column ${t.pos.col}, found ${describe(c)}`,
        );
      }
      this.next();
      return e;
    }
    if (t.type === 'number' || (t.type === 'punct' && t.value === '-')) {
      const n = this.number();
      return { type: 'num', value: n.value, pos: n.pos };
    }
    if (t.type === 'word') {
      let operand: Operand | undefined;
      if (OPERANDS.has(t.value) && !this.isP('(', 1)) {
        this.next();
        operand = t.value as Operand;
      } else if (t.value === 'msg' && this.isP(':', 1) && this.isW('len', 2)) {
        this.i += 3;
        operand = 'msg:len';
      }
      if (operand !== undefined) {
        const op = this.peek();
        if (!(op.type === 'punct' && CMP_OPS.has(op.value))) {
          const hint = op.type === 'punct' && op.value === '=' ? " (use '==' to compare)" : '';
          this.fail(
            op,
            `syntax error: expected a comparison operator after '${operand}', found ${describe(op)}${hint}`,
          );
        }
        this.next();
        const right = this.rhs();
        return { type: 'cmp', left: operand, op: op.value as CmpOp, right, pos: t.pos };
      }
      if (this.isP('(', 1)) {
        const stmt = t.value === 'route' ? this.routeCall() : this.call();
        return { type: 'action', stmt, pos: t.pos };
      }
    }
    this.fail(t, `syntax error: unexpected ${describe(t)} in a condition`);
  }

  private rhs(): RhsNode {
    const t = this.peek();
    if (t.type === 'string') {
      this.next();
      return { type: 'string', value: t.value, quote: t.quote ?? '"', pos: t.pos };
    }
    if (t.type === 'punct' && t.value === '-') return this.number();
    if (t.type === 'number') return this.number();
    if (t.type === 'word' && t.value === 'myself') {
      this.next();
      return { type: 'myself', pos: t.pos };
    }
    if (t.type === 'word' && t.value === 'max_len') {
      this.next();
      return { type: 'max_len', pos: t.pos };
    }
    if (t.type === 'word' || t.type === 'ipv6') {
      this.next();
      const ip = this.host(t);
      if (this.isP('/') && ip.hostKind !== 'name') {
        this.next();
        const m = this.peek();
        let mask: HostValue | NumberValue;
        if (m.type === 'number') mask = this.number();
        else if (m.type === 'word' || m.type === 'ipv6') {
          this.next();
          mask = this.host(m);
          if (mask.hostKind === 'name')
            this.fail(m, `syntax error: expected a mask length or a netmask, found '${m.text}'`);
        } else
          this.fail(m, `syntax error: expected a mask length or a netmask after '/', found ${describe(m)}`);
        return { type: 'net', ip, mask, pos: t.pos };
      }
      return ip;
    }
    this.fail(t, `syntax error: unexpected ${describe(t)} on the right of a comparison`);
  }
}
