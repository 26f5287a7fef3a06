/**
 * The syntax tree of a ser.cfg script. Every node carries where it was written
 * (file, 1-based line and column) so that each later message can point at it.
 */

export interface Pos {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/** The block kinds as written; `reply_route` is the 0.8.11 name of failure_route. */
export type BlockKeyword = 'route' | 'failure_route' | 'onreply_route' | 'reply_route' | 'branch_route';

// ---------------------------------------------------------------- values

/** A bare address or name: IPv4, IPv6 (with or without brackets) or a hostname. */
export interface HostValue {
  readonly type: 'host';
  readonly value: string;
  readonly hostKind: 'ipv4' | 'ipv6' | 'name';
  readonly pos: Pos;
}
export interface NumberValue {
  readonly type: 'number';
  readonly value: number;
  readonly text: string;
  readonly pos: Pos;
}
export interface StringValue {
  readonly type: 'string';
  readonly value: string;
  readonly quote: '"' | "'";
  readonly pos: Pos;
}
/** yes/no/on/off/true/false/enable/disable */
export interface BoolValue {
  readonly type: 'bool';
  readonly value: boolean;
  readonly text: string;
  readonly pos: Pos;
}
/** `[proto:]host[:port]`, used by listen= and alias= */
export interface AddrValue {
  readonly type: 'addr';
  readonly proto: string | undefined;
  readonly host: HostValue;
  readonly port: number | undefined;
  readonly pos: Pos;
}
export type OptionValue = HostValue | NumberValue | StringValue | BoolValue | AddrValue;

// ---------------------------------------------------------------- top level

export interface OptionItem {
  readonly type: 'option';
  readonly name: string;
  readonly value: OptionValue;
  readonly pos: Pos;
}
export interface LoadModuleItem {
  readonly type: 'loadmodule';
  readonly path: string;
  /** file base name without directory and `.so` */
  readonly name: string;
  readonly pos: Pos;
}
export interface ModParamItem {
  readonly type: 'modparam';
  /** as written; may be an OpenSER list "a|b|c" */
  readonly module: string;
  readonly modulePos: Pos;
  readonly param: string;
  readonly paramPos: Pos;
  readonly value: NumberValue | StringValue;
  readonly pos: Pos;
}
export interface RouteBlock {
  readonly type: 'block';
  readonly keyword: BlockKeyword;
  /** block name as a string: '0' for `route { }` */
  readonly name: string;
  readonly body: Stmt[];
  readonly pos: Pos;
}
export type TopItem = OptionItem | LoadModuleItem | ModParamItem | RouteBlock;

export interface ConfigAst {
  readonly file: string;
  readonly items: TopItem[];
  /** statements written outside any block (only accepted by the fragment entry point) */
  readonly loose: Stmt[];
}

// ---------------------------------------------------------------- statements

/** One argument of a call as written. */
export type ArgNode =
  | StringValue
  | NumberValue
  | HostValue
  | { readonly type: 'uri_host'; readonly pos: Pos }
  | { readonly type: 'uri_port'; readonly pos: Pos }
  | { readonly type: 'max_len'; readonly pos: Pos };

export interface CallStmt {
  readonly type: 'call';
  readonly name: string;
  readonly args: ArgNode[];
  readonly pos: Pos;
  /** position just after the closing parenthesis */
  readonly end: Pos;
}
export interface IfStmt {
  readonly type: 'if';
  readonly cond: Expr;
  readonly then: Stmt;
  readonly else: Stmt | undefined;
  readonly pos: Pos;
}
export interface BlockStmt {
  readonly type: 'block';
  readonly body: Stmt[];
  readonly pos: Pos;
}
export interface RouteCallStmt {
  readonly type: 'route';
  readonly target: string;
  readonly pos: Pos;
}
export interface SimpleStmt {
  readonly type: 'break' | 'drop' | 'exit' | 'empty';
  readonly pos: Pos;
}
export interface ReturnStmt {
  readonly type: 'return';
  readonly value: number | undefined;
  readonly pos: Pos;
}
export type Stmt = CallStmt | IfStmt | BlockStmt | RouteCallStmt | SimpleStmt | ReturnStmt;

// ---------------------------------------------------------------- expressions

export type Operand =
  | 'method'
  | 'uri'
  | 'status'
  | 'src_ip'
  | 'dst_ip'
  | 'src_port'
  | 'dst_port'
  | 'proto'
  | 'af'
  | 'msg:len';
export type CmpOp = '==' | '!=' | '=~' | '!~' | '>' | '<' | '>=' | '<=';

export type RhsNode =
  | StringValue
  | NumberValue
  | HostValue
  | { readonly type: 'myself'; readonly pos: Pos }
  | { readonly type: 'max_len'; readonly pos: Pos }
  /** IP/bits or IP/netmask */
  | {
      readonly type: 'net';
      readonly ip: HostValue;
      readonly mask: HostValue | NumberValue;
      readonly pos: Pos;
    };

export interface CmpExpr {
  readonly type: 'cmp';
  readonly left: Operand;
  readonly op: CmpOp;
  readonly right: RhsNode;
  readonly pos: Pos;
}
export interface LogicExpr {
  readonly type: 'and' | 'or';
  readonly left: Expr;
  readonly right: Expr;
  readonly pos: Pos;
}
export interface NotExpr {
  readonly type: 'not';
  readonly expr: Expr;
  readonly pos: Pos;
}
/** an action (module function or route(n)) used as a truth value */
export interface ActionExpr {
  readonly type: 'action';
  readonly stmt: CallStmt | RouteCallStmt;
  readonly pos: Pos;
}
export interface NumExpr {
  readonly type: 'num';
  readonly value: number;
  readonly pos: Pos;
}
export type Expr = CmpExpr | LogicExpr | NotExpr | ActionExpr | NumExpr;

export function fmtPos(p: Pos): string {
  return `${p.file}:${p.line}:${p.col}`;
}
