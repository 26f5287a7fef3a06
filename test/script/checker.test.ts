import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check } from '../../src/script/checker.js';
import type { Diagnostic } from '../../src/script/diagnostics.js';
import { formatErrors, loadConfig } from '../../src/script/load.js';
import { findOption, OPTIONS } from '../../src/script/options.js';
import { parseConfig } from '../../src/script/parser.js';
import { createRegistry } from '../../src/script/registry.js';
import { testRegistry } from './helpers.js';

const MODS = 'loadmodule "/usr/lib/ser/modules/tm.so"\nloadmodule "modules/sl/sl.so"\n';

function errs(text: string): Diagnostic[] {
  const ast = parseConfig(text, 'c.cfg');
  return check(ast, createRegistry(testRegistry()), text).errors;
}
/** the single error of a script: code, line:col and message */
function one(text: string): { code: string; at: string; message: string; text: string } {
  const e = errs(text);
  assert.equal(e.length, 1, formatErrors(e));
  return {
    code: e[0]!.code,
    at: `${e[0]!.pos.line}:${e[0]!.pos.col}`,
    message: e[0]!.message,
    text: e[0]!.text,
  };
}

describe('checker', () => {
  it('a valid script has no errors', () => {
    assert.deepEqual(
      errs(
        `${MODS}modparam("tm", "fr_timer", 10)\nroute { if (!t_relay()) { sl_send_reply("500", "x"); break; }; t_on_failure("1"); route(2); }\nroute[2] { setflag(31); }\nfailure_route[1] { t_reply(404, "no"); }\n`,
      ),
      [],
    );
  });
  it('unknown option, with the nearest name', () => {
    const e = one('log_stderr=yes\n');
    assert.deepEqual([e.code, e.at], ['unknown-option', '1:1']);
    assert.equal(e.message, "unknown option 'log_stderr'; did you mean 'log_stderror'?");
    assert.equal(e.text, 'log_stderr=yes');
  });
  it('wrong option value type', () => {
    const e = one('children="four"\n');
    assert.deepEqual(
      [e.code, e.at, e.message],
      ['bad-option-value', '1:10', "option 'children' expects a number"],
    );
  });
  it('option synonyms and accumulation of listen/alias', async () => {
    const r = await loadConfig(
      { text: 'uid=ser\nmem_log=2\nlisten=1.2.3.4\nlisten=tcp:5.6.7.8:5070\nalias=foo.bar\nalias="x.y"\n' },
      { registry: {} },
    );
    assert.deepEqual(r.errors, []);
    assert.equal(r.config?.options.get('user'), 'ser');
    assert.equal(r.config?.options.get('memlog'), 2);
    assert.deepEqual(
      r.config?.listen.map((l) => [l.proto, l.host, l.port]),
      [
        [undefined, '1.2.3.4', undefined],
        ['tcp', '5.6.7.8', 5070],
      ],
    );
    assert.deepEqual(
      r.config?.aliases.map((l) => l.host),
      ['foo.bar', 'x.y'],
    );
  });
  it('the option table covers INVENTORY §a and its [outside] list', () => {
    for (const n of 'debug fork log_stderror listen alias port children dns rev_dns check_via maxbuffer syn_branch memlog mem_log sip_warning fifo fifo_mode fifo_db_url server_signature reply_to_via user uid group gid mhomed statistics chroot workdir wdir disable_tcp tcp_children disable_tls tls_method advertised_address advertised_port'.split(
      ' ',
    )) {
      assert.ok(findOption(n), n);
    }
    for (const o of OPTIONS) assert.ok(o.description.length > 0);
  });
  it('unknown function, with the nearest loaded name', () => {
    const e = one(`${MODS}route { sl_send_rep("404", "x"); }\n`);
    assert.deepEqual([e.code, e.at], ['unknown-function', '3:9']);
    assert.equal(
      e.message,
      "unknown function 'sl_send_rep' (missing loadmodule?); did you mean 'sl_send_reply'?",
    );
  });
  it('a function of a module that is not loaded names the module', () => {
    const e = one('route {\n  t_relay();\n}\n');
    assert.deepEqual([e.code, e.at], ['function-not-loaded', '2:3']);
    assert.equal(
      e.message,
      `function 't_relay' is exported by module 'tm', which is not loaded (missing loadmodule "tm.so"?)`,
    );
  });
  it('wrong number of arguments', () => {
    const e = one(`${MODS}route { sl_send_reply("404"); }\n`);
    assert.deepEqual(
      [e.code, e.at, e.message],
      ['wrong-arity', '3:9', "function 'sl_send_reply' takes 2 arguments, not 1"],
    );
    const l = one('route { log(1, "a", "b"); }\n');
    assert.equal(l.message, "function 'log' takes 1 or 2 arguments, not 3");
  });
  it('wrong argument type, from the fixup, at the argument', () => {
    const e = one(`${MODS}route { sl_send_reply("abc", "x"); }\n`);
    assert.deepEqual([e.code, e.at], ['bad-argument', '3:23']);
    assert.equal(e.message, 'sl_send_reply(): argument 1 (code): code must be an integer, not string "abc"');
  });
  it('flags out of range', () => {
    const e = one('route {\n setflag(32);\n}\n');
    assert.deepEqual(
      [e.code, e.at, e.message],
      ['bad-argument', '2:10', 'setflag(): argument 1 (flag): flag 32 out of range (0–31)'],
    );
    assert.equal(one('route { if (isflagset(-1)) break; }').code, 'bad-argument');
  });
  it('a function used in a route kind where it is not allowed', () => {
    const e = one(`${MODS}onreply_route[1] {\n  sl_send_reply("200", "ok");\n}\n`);
    assert.deepEqual(
      [e.code, e.at, e.message],
      ['wrong-route-kind', '4:3', "function 'sl_send_reply' cannot be used in a onreply_route"],
    );
  });
  it('route[n] is checked in the kinds of its callers', () => {
    const e = one(`${MODS}failure_route[1] { route(5); }\nroute[5] {\n  sl_send_reply("500", "x");\n}\n`);
    assert.equal(e.at, '5:3');
    assert.equal(
      e.message,
      "function 'sl_send_reply' cannot be used in a failure_route (route[5] is called from a failure_route)",
    );
  });
  it('route(n) to a block that does not exist', () => {
    const e = one('route {\n  route(3);\n}\nroute[2] { }\n');
    assert.deepEqual(
      [e.code, e.at, e.message],
      ['unknown-route', '2:3', 'route(3): there is no block route[3]'],
    );
  });
  it('t_on_failure to a failure_route that does not exist (fixup using routeExists)', () => {
    const e = one(`${MODS}route { t_on_failure("2"); }\nfailure_route[1] { }\n`);
    assert.deepEqual(
      [e.code, e.at, e.message],
      ['bad-argument', '3:22', 't_on_failure(): argument 1 (route): failure_route[2] does not exist'],
    );
  });
  it('reply_route[n] is the 0.8.11 name of failure_route[n]', () => {
    assert.deepEqual(errs(`${MODS}route { t_on_failure("1"); }\nreply_route[1] { }\n`), []);
  });
  it('invalid regular expressions in conditions, at the offending character', () => {
    const e = one('route {\n  if (uri=~"^sip:(abc") break;\n}\n');
    assert.equal(e.code, 'bad-regex');
    assert.equal(e.at, '2:18');
    assert.equal(e.message, 'invalid regular expression "^sip:(abc": unmatched \'(\'');
  });
  it('invalid regular expressions in arguments', () => {
    const e = one('route { if (search("[[:digits:]]")) break; }');
    assert.equal(e.code, 'bad-argument');
    assert.match(e.message, /unknown character class '\[:digits:\]'/);
  });
  it('modparam for a module that is not loaded', () => {
    const e = one('modparam("usrloc", "db_mode", 0)\n');
    assert.deepEqual(
      [e.code, e.at, e.message],
      [
        'module-not-loaded',
        '1:10',
        `modparam for module 'usrloc', which is not loaded (missing loadmodule "usrloc.so"?)`,
      ],
    );
  });
  it('modparam with an unknown parameter, with the nearest name', () => {
    const e = one(`${MODS}modparam("tm", "fr_timr", 10)\n`);
    assert.deepEqual(
      [e.code, e.at, e.message],
      ['unknown-param', '3:16', "module 'tm' has no parameter 'fr_timr'; did you mean 'fr_timer'?"],
    );
  });
  it('modparam with the wrong value type, and a failing validate', () => {
    const e = one(`${MODS}modparam("tm", "fr_timer", "10")\n`);
    assert.deepEqual(
      [e.code, e.at, e.message],
      ['bad-param-value', '3:28', "parameter 'fr_timer' of module 'tm' expects an integer, not a string"],
    );
    const v = one(`${MODS}modparam("tm", "fr_inv_timer", 0)\n`);
    assert.equal(v.message, "parameter 'fr_inv_timer' of module 'tm': must be at least 1 second");
  });
  it('modparam with an OpenSER module list applies to the loaded ones', async () => {
    const r = await loadConfig(
      {
        text: `${MODS}loadmodule "usrloc.so"\nmodparam("usrloc|acc", "db_url", "mysql://x")\nmodparam("usrloc","db_mode",2)\n`,
      },
      { registry: testRegistry() },
    );
    assert.deepEqual(r.errors, []);
    assert.equal(r.config?.modparams.get('usrloc')?.get('db_url'), 'mysql://x');
    assert.equal(r.config?.modparams.get('usrloc')?.get('db_mode'), 2);
  });
  it('duplicate blocks; route and route[0] are the same block', () => {
    const e = one('route { }\nroute[0] { }\n');
    assert.deepEqual(
      [e.code, e.at, e.message],
      ['duplicate-block', '2:1', 'duplicate block route[0] (first defined at line 1, column 1)'],
    );
  });
  it('loadmodule of a module this build does not have', () => {
    const e = one('loadmodule "/usr/lib/ser/modules/tmx.so"\n');
    assert.deepEqual([e.code, e.at], ['module-not-available', '1:1']);
    assert.equal(
      e.message,
      `module 'tmx' is not available in this build (loadmodule "/usr/lib/ser/modules/tmx.so"); did you mean 'tm'?`,
    );
  });
  it('operand/operator mismatches', () => {
    assert.equal(
      one('route { if (method > 3) break; }').message,
      "'>' compares numbers; 'method' is not a number (use ==, != or =~)",
    );
    assert.equal(one('route { if (src_port == "x") break; }').code, 'bad-operand');
    assert.equal(one('route { if (proto == udpx) break; }').code, 'bad-operand');
    assert.match(one('route { if (src_ip == 10.0.0.0/33) break; }').message, /mask length 33 out of range/);
    assert.match(one('route { if (src_ip == 10.0.0.0/255.0.255.0) break; }').message, /not contiguous/);
  });
  it('reports every problem at once, in file order', () => {
    const e = errs('debugg=3\nroute {\n  setflag(40);\n  foo();\n  route(9);\n}\nroute { }\n');
    assert.deepEqual(
      e.map((x) => `${x.pos.line}:${x.pos.col} ${x.code}`),
      [
        '1:1 unknown-option',
        '3:11 bad-argument',
        '4:3 unknown-function',
        '5:3 unknown-route',
        '7:1 duplicate-block',
      ],
    );
    assert.match(
      formatErrors(e),
      /^c\.cfg:1:1: unknown option 'debugg'; did you mean 'debug'\?\n {4}debugg=3\n/,
    );
  });
  it('host names in src_ip comparisons are resolved at load time; failures are errors', async () => {
    const r = await loadConfig(
      { text: 'route { if (src_ip==backup.foo.bar) break; if (src_ip==nowhere.invalid) break; }' },
      {
        registry: testRegistry(),
        hooks: { resolve: async (h) => (h === 'backup.foo.bar' ? ['10.1.1.1'] : []) },
      },
    );
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.code, 'dns');
    assert.match(r.errors[0]!.message, /cannot resolve host name 'nowhere\.invalid'/);
  });
  it('a syntax error is returned as the only error', async () => {
    const r = await loadConfig({ text: 'route {\n  break\n}\n', file: 'x.cfg' }, { registry: {} });
    assert.equal(r.errors.length, 1);
    assert.equal(r.script, undefined);
    assert.match(formatErrors(r.errors), /^x\.cfg:2:8: syntax error: missing ';' after break/);
  });
  it('a missing config file is an error, not an exception', async () => {
    const r = await loadConfig({ path: '/nonexistent/ser.cfg' }, { registry: {} });
    assert.match(r.errors[0]!.message, /cannot open the config file/);
  });
});
