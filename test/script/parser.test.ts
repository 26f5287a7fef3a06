import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CallStmt, CmpExpr, ConfigAst, IfStmt, OptionItem, Stmt } from '../../src/script/ast.js';
import { ScriptSyntaxError } from '../../src/script/diagnostics.js';
import { parseConfig, parseFragment, parseStatements, stripElisions } from '../../src/script/parser.js';

const cfg = (t: string): ConfigAst => parseConfig(t, 't.cfg');
const body = (t: string): Stmt[] => {
  const b = cfg(`route {\n${t}\n}`).items[0];
  assert.equal(b?.type, 'block');
  return (b as { body: Stmt[] }).body;
};
const cond = (c: string) => (body(`if (${c}) break;`)[0] as IfStmt).cond;
function syntaxError(t: string, fragment = false): ScriptSyntaxError {
  try {
    parseConfig(t, 't.cfg', { fragment });
  } catch (e) {
    assert.ok(e instanceof ScriptSyntaxError, String(e));
    return e;
  }
  assert.fail('expected a syntax error');
}

describe('global options', () => {
  it('numbers, strings, booleans', () => {
    const items = cfg('debug=3\nfifo="/tmp/ser_fifo"\nfork=no\ndns=off\nmhomed=enable\n')
      .items as OptionItem[];
    assert.deepEqual(
      items.map((i) => [i.name, i.value.type, 'value' in i.value ? i.value.value : undefined]),
      [
        ['debug', 'number', 3],
        ['fifo', 'string', '/tmp/ser_fifo'],
        ['fork', 'bool', false],
        ['dns', 'bool', false],
        ['mhomed', 'bool', true],
      ],
    );
  });
  it('IPv4, IPv6 and host names', () => {
    const items = cfg('listen=192.0.2.13 # mine\nlisten=::1\nalias=sip.foo.bar\nlisten=[2001:db8::1]\n')
      .items as OptionItem[];
    assert.deepEqual(
      items.map((i) => (i.value.type === 'host' ? [i.value.hostKind, i.value.value] : i.value.type)),
      [
        ['ipv4', '192.0.2.13'],
        ['ipv6', '::1'],
        ['name', 'sip.foo.bar'],
        ['ipv6', '2001:db8::1'],
      ],
    );
  });
  it('proto:host:port, host:port and proto:host', () => {
    const items = cfg(
      'listen=udp:10.0.0.1:5070\nlisten=foo.bar:5080\nlisten=tcp:foo.bar\nlisten=tls:[::1]:5061\n',
    ).items as OptionItem[];
    assert.deepEqual(
      items.map((i) =>
        i.value.type === 'addr' ? [i.value.proto, i.value.host.value, i.value.port] : undefined,
      ),
      [
        ['udp', '10.0.0.1', 5070],
        [undefined, 'foo.bar', 5080],
        ['tcp', 'foo.bar', undefined],
        ['tls', '::1', 5061],
      ],
    );
  });
  it('an invalid IPv4 address is a syntax error', () => {
    const e = syntaxError('listen=1.2.3.300\n');
    assert.match(e.message, /t\.cfg:1:8: invalid IPv4 address/);
  });
});

describe('modules', () => {
  it('loadmodule takes the base name without .so', () => {
    const [m] = cfg('loadmodule "/usr/local/lib/ser/modules/sl.so"\n').items;
    assert.deepEqual(m && m.type === 'loadmodule' && [m.name, m.path], [
      'sl',
      '/usr/local/lib/ser/modules/sl.so',
    ]);
  });
  it('loadmodule("…") is rejected', () => {
    const e = syntaxError('loadmodule("modules/tm/tm.so");\n');
    assert.equal(e.pos.line, 1);
    assert.equal(e.pos.col, 11);
    assert.match(e.message, /without parentheses/);
  });
  it('modparam with string, integer, yes and an OpenSER module list', () => {
    const items = cfg(
      'modparam("usrloc", "db_mode", 2)\nmodparam("auth_db", "calculate_ha1", yes)\nmodparam("a|b", "db_url", "mysql://x")\nmodparam("m","p",-1)',
    ).items;
    assert.deepEqual(
      items.map((i) => i.type === 'modparam' && [i.module, i.param, i.value.value]),
      [
        ['usrloc', 'db_mode', 2],
        ['auth_db', 'calculate_ha1', 1],
        ['a|b', 'db_url', 'mysql://x'],
        ['m', 'p', -1],
      ],
    );
  });
  it('modparam value on a continuation line', () => {
    const [m] = cfg('modparam("auth_radius", "radius_config",\n"/usr/local/etc/radiusclient.conf")\n').items;
    assert.equal(m?.type === 'modparam' && m.value.value, '/usr/local/etc/radiusclient.conf');
  });
});

describe('blocks', () => {
  it('route, route[0], route[n], failure_route, onreply_route, reply_route, branch_route, named', () => {
    const items = cfg(
      'route{ }\nroute[2]\n{ }\nfailure_route[1] { }\nonreply_route[1] { }\nreply_route[3] { }\nbranch_route[1] { }\nroute["named"] { }\nroute[07] {}\n',
    ).items;
    assert.deepEqual(
      items.map((i) => i.type === 'block' && `${i.keyword}[${i.name}]@${i.pos.line}:${i.pos.col}`),
      [
        'route[0]@1:1',
        'route[2]@2:1',
        'failure_route[1]@4:1',
        'onreply_route[1]@5:1',
        'reply_route[3]@6:1',
        'branch_route[1]@7:1',
        'route[named]@8:1',
        'route[7]@9:1',
      ],
    );
  });
  it('an unclosed block is reported at the end of the file with the opening line', () => {
    const e = syntaxError('route {\n  if (method=="INVITE") {\n    break;\n');
    assert.match(e.message, /missing '}' to close the block opened at line 2, column 25/);
  });
});

describe('statements', () => {
  it('calls with 0–n arguments of every kind', () => {
    const [a, b, c, d, e] = body(
      'record_route();\nforward(192.168.0.1, 5060);\nforward(uri:host, uri:port);\nlen_gt( max_len );\nx("s", \'raw\nmulti\', -3, gw.foo.bar, ::1, 2001:db8::5);',
    ) as CallStmt[];
    assert.equal(a?.args.length, 0);
    assert.deepEqual(
      b?.args.map((x) => x.type),
      ['host', 'number'],
    );
    assert.deepEqual(
      c?.args.map((x) => x.type),
      ['uri_host', 'uri_port'],
    );
    assert.deepEqual(
      d?.args.map((x) => x.type),
      ['max_len'],
    );
    assert.deepEqual(
      e?.args.map((x) => ('value' in x ? x.value : x.type)),
      ['s', 'raw\nmulti', -3, 'gw.foo.bar', '::1', '2001:db8::5'],
    );
  });
  it('string escapes \\n \\r \\t \\\\ \\" and unknown escapes kept for regexes', () => {
    const [c] = body('append_hf("P-hint: a\\r\\n\\t\\\\ \\" \\. \\+");') as CallStmt[];
    assert.equal(c?.args[0]?.type === 'string' && c.args[0].value, 'P-hint: a\r\n\t\\ " \\. \\+');
  });
  it('single-quoted strings are raw and may span lines', () => {
    const [c] = body("exec_msg('a \\n\nb');") as CallStmt[];
    assert.equal(c?.args[0]?.type === 'string' && c.args[0].value, 'a \\n\nb');
  });
  it('comments: # to end of line, /* */ nested and inside argument lists, \\ continuation', () => {
    const [c] = body(
      'proxy_authorize("gw" /* realm */, # x\n "subscriber" /* t /* n */ */ );\nlog(\\\n"a");',
    ) as CallStmt[];
    assert.deepEqual(
      c?.args.map((x) => x.type === 'string' && x.value),
      ['gw', 'subscriber'],
    );
  });
  it('if, if/else, else if, with and without braces', () => {
    const s = body(
      'if (a()) b();\nif (a()) { b(); } else { c(); };\nif (a()) { b(); } else if (c()) { d(); } else e();\nif (method=="INVITE") route(1)\nelse sl_send_reply("404", "Not Found");\nif (a()) b(); else c();',
    ).filter((x) => x.type !== 'empty') as IfStmt[];
    assert.equal(s.length, 5);
    assert.equal(s[0]?.else, undefined);
    assert.equal(s[1]?.else?.type, 'block');
    assert.equal(s[2]?.else?.type, 'if');
    assert.equal(s[3]?.then.type, 'route');
    assert.equal(s[3]?.else?.type, 'call');
    assert.equal(s[4]?.else?.type, 'call');
  });
  it('break, drop, exit, return, return(n), return n, return(-1)', () => {
    const s = body('break; drop; exit; return; return(2); return 3; return(-1); drop();');
    assert.deepEqual(
      s.map((x) => (x.type === 'return' ? `return:${x.value}` : x.type)),
      ['break', 'drop', 'exit', 'return:undefined', 'return:2', 'return:3', 'return:-1', 'drop'],
    );
  });
  it('route(n), route (n), route("name")', () => {
    const s = body('route(1); route (15); route("named");');
    assert.deepEqual(
      s.map((x) => x.type === 'route' && x.target),
      ['1', '15', 'named'],
    );
  });
  it('blocks and empty statements: }; and return;;', () => {
    const s = body('{ a(); };\nreturn;;');
    assert.deepEqual(
      s.map((x) => x.type),
      ['block', 'empty', 'return', 'empty'],
    );
  });
  it("a statement without ';' is an error at the end of that statement", () => {
    const e = syntaxError('route {\n  log(1, "x")\n  # c\n}\n');
    assert.equal(`${e.pos.line}:${e.pos.col}`, '2:14');
    assert.match(e.message, /missing ';' after log\(\.\.\.\) \(found '}' at line 4, column 1\)/);
  });
  it('a brace-less if branch needs no ;', () => {
    const s = body('if (a()) log("x")\n}\nroute[1] {');
    assert.equal(s.length, 1);
  });
  it('statements outside a block are an error in a full config', () => {
    const e = syntaxError('debug=3\nsetflag(1);\n');
    assert.match(e.message, /statement 'setflag' outside a route block/);
  });
  it('every node carries file, line and column', () => {
    const [i] = body('  if (uri==myself) {\n   setflag(3);\n  }') as IfStmt[];
    assert.deepEqual(i?.pos, { file: 't.cfg', line: 2, col: 3 });
    const c = (i!.then as { body: CallStmt[] }).body[0];
    assert.deepEqual(c?.pos, { file: 't.cfg', line: 3, col: 4 });
  });
});

describe('expressions', () => {
  it('! and not bind to the whole comparison', () => {
    const c = cond('!uri==myself');
    assert.equal(c.type, 'not');
    assert.equal(c.type === 'not' && c.expr.type, 'cmp');
    assert.equal(cond('not method=="REGISTER"').type, 'not');
  });
  it('&& / and / & bind tighter than || / or / |', () => {
    for (const [a, o] of [
      ['&&', '||'],
      ['and', 'or'],
      ['&', '|'],
    ]) {
      const c = cond(`a() ${o} b() ${a} c()`);
      assert.equal(c.type, 'or');
      assert.equal(c.type === 'or' && c.right.type, 'and');
    }
  });
  it('parentheses group', () => {
    const c = cond('(method=="INVITE" || method=="ACK") && t_newtran()');
    assert.equal(c.type, 'and');
    assert.equal(c.type === 'and' && c.left.type, 'or');
  });
  it('all operators', () => {
    for (const op of ['==', '!=', '=~', '!~']) assert.equal((cond(`uri${op}"x"`) as CmpExpr).op, op);
    for (const op of ['>', '<', '>=', '<=']) assert.equal((cond(`msg:len ${op} 10`) as CmpExpr).op, op);
  });
  it('all operands', () => {
    for (const o of [
      'method',
      'uri',
      'status',
      'src_ip',
      'dst_ip',
      'src_port',
      'dst_port',
      'proto',
      'af',
      'msg:len',
    ]) {
      assert.equal((cond(`${o} == 1`) as CmpExpr).left, o);
    }
  });
  it('right-hand sides: myself, max_len, IP, IP/bits, IP/netmask, IPv6/bits, hostname, words', () => {
    const r = (c: string) => (cond(c) as CmpExpr).right;
    assert.equal(r('uri==myself').type, 'myself');
    assert.equal(r('msg:len >= max_len').type, 'max_len');
    assert.deepEqual(r('src_ip==192.168.2.15').type === 'host' && r('src_ip==192.168.2.15'), {
      type: 'host',
      value: '192.168.2.15',
      hostKind: 'ipv4',
      pos: { file: 't.cfg', line: 2, col: 13 },
    });
    const n = r('src_ip==192.168.0.0/16');
    assert.equal(n.type === 'net' && n.mask.type, 'number');
    const m = r('src_ip==10.0.0.0/255.0.0.0');
    assert.equal(m.type === 'net' && m.mask.type === 'host' && m.mask.value, '255.0.0.0');
    const v6 = r('src_ip==2001:db8::/32');
    assert.equal(v6.type === 'net' && v6.ip.value, '2001:db8::');
    assert.equal(
      r('src_ip==backup.foo.bar').type === 'host' &&
        (r('src_ip==backup.foo.bar') as { hostKind: string }).hostKind,
      'name',
    );
    assert.equal((r('proto==udp') as { value: string }).value, 'udp');
    assert.equal((r('af==inet6') as { value: string }).value, 'inet6');
  });
  it('actions and numbers as operands', () => {
    assert.equal(cond('lookup("location")').type, 'action');
    assert.equal(cond('route(2)').type, 'action');
    assert.equal(cond('1').type, 'num');
  });
  it("'=' instead of '==' is explained", () => {
    const e = syntaxError('route { if (method="INVITE") break; }');
    assert.match(e.message, /use '==' to compare/);
  });
});

describe('fragments', () => {
  it('parseFragment accepts options, modules, blocks and loose statements together', () => {
    const a = parseFragment(
      'alias="foo.bar"\nloadmodule "x.so"\nif (uri==myself) { t_relay(); };\nroute[1] { }\n',
      'f.cfg',
    );
    assert.equal(a.items.length, 3);
    assert.equal(a.loose.length, 1);
  });
  it('parseStatements reads a bare statement list', () => {
    assert.equal(parseStatements('setflag(1); break;').length, 2);
  });
  it('stripElisions removes …, ... and .... lines and keeps line numbers', () => {
    const t = stripElisions('a();\n…\n  ...\n....\nb();\nx(...);');
    assert.equal(t, 'a();\n\n\n\nb();\nx(...);');
  });
  it('an elision line is an error as-is', () => {
    const e = syntaxError('route {\n…\n}', true);
    assert.equal(`${e.pos.line}:${e.pos.col}`, '2:1');
    assert.match(e.message, /unexpected character '…'/);
  });
});
