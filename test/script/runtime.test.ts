import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MsgContext } from '../../src/core/context.js';
import type { CompiledScript, ScriptHooks } from '../../src/script/compiler.js';
import { uriHostPort } from '../../src/script/compiler.js';
import { formatErrors, loadConfig } from '../../src/script/load.js';
import { fakeCtx, type FakeCtxInit, type Rec, testRegistry } from './helpers.js';

const MODS = 'loadmodule "tm.so"\nloadmodule "sl.so"\n';

async function compile(text: string, hooks: ScriptHooks = {}): Promise<{ script: CompiledScript; rec: Rec }> {
  const rec: Rec = { calls: [] };
  const r = await loadConfig(
    { text: MODS + text },
    { registry: testRegistry(rec), hooks, moduleStates: { tm: { relayed: 0 } } },
  );
  assert.deepEqual(r.errors, [], formatErrors(r.errors));
  return { script: r.script!, rec };
}
/** run the main route; returns the value, the calls made and the context */
async function run(
  text: string,
  c: FakeCtxInit = {},
  hooks: ScriptHooks = {},
): Promise<{ v: number; calls: string[]; ctx: MsgContext }> {
  const { script, rec } = await compile(text, hooks);
  const ctx = fakeCtx(c);
  const v = await script.run('request', '0', ctx);
  return { v, calls: rec.calls, ctx };
}
const logs = (calls: string[]) => calls.filter((c) => c.startsWith('log:')).map((c) => c.slice(4));

describe('runtime: control flow', () => {
  it('break leaves the main route and ends the script', async () => {
    const r = await run('route { log("a"); if (1) { if (1) { break; }; log("x"); }; log("y"); }');
    assert.deepEqual(logs(r.calls), ['a']);
    assert.equal(r.v, 0);
  });
  it('break in route[n] returns to the caller, which continues', async () => {
    const r = await run(
      'route { route(1); log("after"); }\nroute[1] { log("in"); if (1) break; log("no"); }',
    );
    assert.deepEqual(logs(r.calls), ['in', 'after']);
  });
  it('an action returning 0 leaves the block, like break', async () => {
    const r = await run(
      'route { route(1); log("main"); ret(0); log("no"); }\nroute[1] { ret(0); log("no"); }',
    );
    assert.deepEqual(logs(r.calls), ['main']);
    assert.equal(r.v, 0);
  });
  it('an action returning 0 inside a condition leaves the block', async () => {
    const r = await run(
      'route { route(1); log("main"); }\nroute[1] { if (ret(0)) { log("t"); } else { log("f"); }; log("no"); }',
    );
    assert.deepEqual(logs(r.calls), ['main']);
  });
  it('negative values are false and the script goes on', async () => {
    const r = await run('route { ret(-1); if (ret(-5)) log("t"); else log("f"); log("end"); }');
    assert.deepEqual(logs(r.calls), ['f', 'end']);
  });
  it('return(n) gives the block value to route(n) used as a condition', async () => {
    const r = await run(
      'route { if (route(1)) log("1 true"); if (!route(2)) log("2 false"); if (route(3)) log("3 true"); }\nroute[1] { return(1); }\nroute[2] { if (1) { return(-1); }; log("no"); }\nroute[3] { break; }',
    );
    assert.deepEqual(logs(r.calls), ['1 true', '2 false', '3 true']);
  });
  it('return; and return n; leave the block; return(0) ends the script', async () => {
    const r = await run(
      'route { route(1); log("a"); route(2); log("no"); }\nroute[1] { return; log("no"); }\nroute[2] { return 0; }',
    );
    assert.deepEqual(logs(r.calls), ['a']);
    assert.equal(r.v, 0);
  });
  it('return in the main route ends the script with its value', async () => {
    const r = await run('route { return(7); log("no"); }');
    assert.equal(r.v, 7);
  });
  it('exit ends the whole script from a nested route', async () => {
    const r = await run(
      'route { route(1); log("no"); }\nroute[1] { route(2); log("no"); }\nroute[2] { exit; }',
    );
    assert.deepEqual(logs(r.calls), []);
    assert.equal(r.v, 0);
  });
  it('drop sets ctx.drop and ends the script', async () => {
    const r = await run('route { route(1); log("no"); }\nroute[1] { drop; }');
    assert.equal(r.ctx.drop, true);
    assert.deepEqual(logs(r.calls), []);
    const b = await run('route { break; }');
    assert.equal(b.ctx.drop, false);
  });
  it('if without else is worth 1 when false; the block value is the last statement', async () => {
    assert.equal((await run('route { ret(5); }')).v, 5);
    assert.equal((await run('route { ret(5); if (0) log("x"); }')).v, 1);
    assert.equal((await run('route { }')).v, 1);
  });
  it('recursion is allowed, and a depth limit of 100 ends the script with an error log', async () => {
    const errors: string[] = [];
    const { script, rec } = await compile(
      'route { route(1); log("no"); }\nroute[1] { setflag(1); route(1); }',
      { log: (m) => errors.push(m) },
    );
    const ctx = fakeCtx();
    assert.equal(script.run('request', '0', ctx), 0);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /too many recursive routing table lookups \(100\)/);
    assert.deepEqual(logs(rec.calls), []);
  });
  it('bounded recursion works', async () => {
    const r = await run(
      'route { route(1); log("done"); }\nroute[1] { if (isflagset(3)) break; if (isflagset(2)) setflag(3); if (isflagset(1)) setflag(2); setflag(1); log("r"); route(1); }',
    );
    assert.deepEqual(logs(r.calls), ['r', 'r', 'r', 'done']);
  });
  it('flags: setflag, resetflag, isflagset', async () => {
    const r = await run(
      'route { setflag(1); setflag(31); resetflag(1); if (isflagset(31) && !isflagset(1)) log("ok"); }',
    );
    assert.deepEqual(logs(r.calls), ['ok']);
    assert.equal(r.ctx.flags >>> 0, 0x80000000);
  });
  it('other route kinds run by name; has() and names()', async () => {
    const { script, rec } = await compile(
      'route { t_on_failure("1"); }\nfailure_route[1] { append_branch("sip:b@x"); log("f"); }\nonreply_route[2] { log("r"); }',
    );
    const ctx = fakeCtx();
    assert.equal(script.run('failure', '1', ctx), 1);
    assert.equal(ctx.routeKind, 'failure');
    assert.deepEqual(ctx.branches, [{ uri: 'sip:b@x', q: -1 }]);
    assert.equal(script.has('onreply', '2'), true);
    assert.equal(script.has('onreply', '1'), false);
    assert.deepEqual(script.names('failure'), ['1']);
    assert.deepEqual(logs(rec.calls), ['f']);
  });
});

describe('runtime: async', () => {
  it('routes without async functions run synchronously; others return promises', async () => {
    const { script, rec } = await compile(
      'route { log("a"); if (method=="INVITE") route(2); }\nroute[1] { t_relay(); }\nroute[2] { log("b"); }\nroute[3] { route(1); }',
    );
    assert.equal(script.isAsync('request', '0'), false);
    assert.equal(script.isAsync('request', '1'), true);
    assert.equal(script.isAsync('request', '3'), true, 'async through route(n)');
    const v = script.run('request', '0', fakeCtx());
    assert.equal(typeof v, 'number');
    const p = script.run('request', '3', fakeCtx());
    assert.ok(p instanceof Promise);
    assert.equal(await p, 1);
    assert.deepEqual(rec.calls, ['log:a', 'log:b', 't_relay']);
  });
  it('async functions are awaited in order, in conditions too, with module state', async () => {
    const states = { tm: { relayed: 0 } };
    const rec: Rec = { calls: [] };
    const r = await loadConfig(
      {
        text: `${MODS}route { log("1"); if (!t_relay()) { log("no"); } else { log("2"); }; t_relay(); log("3"); }`,
      },
      { registry: testRegistry(rec) },
    );
    r.script!.setModuleStates(states);
    const v = r.script!.run('request', '0', fakeCtx());
    assert.ok(v instanceof Promise);
    assert.equal(await v, 1);
    assert.deepEqual(rec.calls, ['log:1', 't_relay', 'log:2', 't_relay', 'log:3']);
    assert.equal(states.tm.relayed, 2);
  });
});

describe('runtime: operators and operands', () => {
  const t = async (cond: string, c: FakeCtxInit = {}, hooks: ScriptHooks = {}): Promise<boolean> =>
    logs((await run(`route { if (${cond}) log("T"); else log("F"); }`, c, hooks)).calls)[0] === 'T';

  it('method == is case-insensitive; != negates', async () => {
    assert.equal(await t('method=="invite"', { method: 'INVITE' }), true);
    assert.equal(await t('method=="REGISTER"', { method: 'INVITE' }), false);
    assert.equal(await t('method!="REGISTER"', { method: 'INVITE' }), true);
    assert.equal(await t('!method=="INVITE"', { method: 'INVITE' }), false);
  });
  it('uri reads the current R-URI (after rewrites), =~ is a case-insensitive POSIX search', async () => {
    assert.equal(await t('uri=~"^sip:[0-9]{3}@"', { ruri: 'sip:123@foo.bar' }), true);
    assert.equal(await t('uri=~"@FOO\\.bar"', { ruri: 'sip:123@foo.bar' }), true);
    assert.equal(await t('uri!~"^sip:1"', { ruri: 'sip:123@foo.bar' }), false);
    const r = await run('route { rewriteuri("sip:x@y.z"); if (uri=="SIP:X@Y.Z") log("T"); }');
    assert.deepEqual(logs(r.calls), ['T']);
  });
  it('uri==myself uses the hook with host and port', async () => {
    const seen: unknown[] = [];
    const hooks: ScriptHooks = {
      isMyself: (h, p) => {
        seen.push([h, p]);
        return h === 'foo.bar';
      },
    };
    assert.equal(
      await t('uri==myself', { ruri: 'sip:alice:pw@foo.bar:5070;transport=udp?x=y@z' }, hooks),
      true,
    );
    assert.equal(await t('!uri==myself', { ruri: 'sip:alice@other.bar' }, hooks), true);
    assert.equal(await t('uri!=myself', { ruri: 'sip:alice@other.bar' }, hooks), true);
    assert.deepEqual(seen[0], ['foo.bar', 5070]);
    assert.deepEqual(uriHostPort('sips:[2001:db8::1]:5061'), { host: '2001:db8::1', port: 5061 });
    assert.deepEqual(uriHostPort('sip:foo.bar'), { host: 'foo.bar', port: undefined });
  });
  it('status in a reply compares as a string, so regexes work', async () => {
    const { script, rec } = await compile(
      'onreply_route[1] { if (status=~"(180)|(183)|2[0-9][0-9]") log("T"); if (status == 200) log("200"); if (status >= 300) log("big"); }',
    );
    script.run('onreply', '1', fakeCtx({ status: 183 }));
    script.run('onreply', '1', fakeCtx({ status: 200 }));
    script.run('onreply', '1', fakeCtx({ status: 486 }));
    assert.deepEqual(logs(rec.calls), ['T', 'T', '200', 'big']);
  });
  it('src_ip/dst_ip: IP, IP/bits, IP/netmask, IPv6, quoted IP, myself, resolved names', async () => {
    assert.equal(await t('src_ip==192.168.2.15', { srcIp: '192.168.2.15' }), true);
    assert.equal(await t('src_ip=="192.168.2.15"', { srcIp: '192.168.2.15' }), true);
    assert.equal(await t('src_ip==192.168.0.0/16', { srcIp: '192.168.200.1' }), true);
    assert.equal(await t('src_ip==192.168.0.0/16', { srcIp: '192.169.0.1' }), false);
    assert.equal(await t('src_ip==10.0.0.0/255.0.0.0', { srcIp: '10.200.3.4' }), true);
    assert.equal(await t('src_ip==10.0.0.0/8', { srcIp: '::ffff:10.1.2.3' }), true);
    assert.equal(await t('src_ip==2001:db8::/32', { srcIp: '2001:0db8:0:0::7' }), true);
    assert.equal(await t('src_ip==2001:db8::/32', { srcIp: '2001:db9::7' }), false);
    assert.equal(await t('src_ip==[::1]', { srcIp: '0:0:0:0:0:0:0:1' }), true);
    assert.equal(await t('src_ip!=192.168.2.15', { srcIp: '192.168.2.16' }), true);
    assert.equal(await t('dst_ip==127.0.0.1', { dstIp: '127.0.0.1' }), true);
    assert.equal(
      await t('src_ip==myself', { srcIp: '10.0.0.9' }, { isMyself: (h) => h === '10.0.0.9' }),
      true,
    );
    assert.equal(await t('src_ip=~"^192\\.168\\."', { srcIp: '192.168.3.3' }), true);
    const resolve = async (h: string) => (h === 'backup.foo.bar' ? ['10.9.9.9', '2001:db8::9'] : []);
    assert.equal(await t('src_ip==backup.foo.bar', { srcIp: '10.9.9.9' }, { resolve }), true);
    assert.equal(await t('src_ip==backup.foo.bar', { srcIp: '2001:db8:0::9' }, { resolve }), true);
    assert.equal(await t('src_ip==backup.foo.bar', { srcIp: '10.9.9.8' }, { resolve }), false);
  });
  it('src_port, dst_port, proto, af, msg:len and max_len', async () => {
    assert.equal(await t('src_port==5060', { srcPort: 5060 }), true);
    assert.equal(await t('src_port!=5060', { srcPort: 5060 }), false);
    assert.equal(await t('dst_port==5060'), true);
    assert.equal(await t('proto==tcp', { proto: 'tcp' }), true);
    assert.equal(await t('proto==udp', { proto: 'tcp' }), false);
    assert.equal(await t('af==inet6', { srcIp: '::1' }), true);
    assert.equal(await t('af==inet', { srcIp: '1.2.3.4' }), true);
    assert.equal(await t('msg:len > 10', { raw: 'x'.repeat(11) }), true);
    assert.equal(await t('msg:len <= 10', { raw: 'x'.repeat(11) }), false);
    assert.equal(await t('msg:len >= max_len', { raw: 'x'.repeat(100) }, { maxLen: 100 }), true);
    assert.equal(await t('msg:len >= max_len', { raw: 'x'.repeat(100) }), false);
  });
  it('&&, ||, single & and |, and/or/not, parentheses, short-circuit', async () => {
    assert.equal(
      await t('method=="INVITE" && uri=~"^sip:a" || ret(-1)', { method: 'INVITE', ruri: 'sip:a@b' }),
      true,
    );
    assert.equal(await t('ret(-1) | ret(1) & ret(1)'), true);
    assert.equal(await t('not (ret(1) and ret(-1))'), true);
    const r = await run('route { if (ret(-1) && ret(7)) log("x"); if (ret(1) || ret(8)) log("y"); }');
    assert.deepEqual(r.calls, ['ret:-1', 'ret:1', 'log:y']);
  });
  it('numbers as truth values', async () => {
    assert.equal(await t('1'), true);
    assert.equal(await t('0'), false);
  });
  it('brace-less if … route(1) ⏎ else …; form', async () => {
    const r = await run(
      'route { if (method=="INVITE") route(1)\nelse log("other");\nlog("end"); }\nroute[1] { log("r1"); }',
      { method: 'BYE' },
    );
    assert.deepEqual(logs(r.calls), ['other', 'end']);
  });
  it('forward(uri:host, uri:port) and bare IP arguments reach the function', async () => {
    const r = await run(
      'route { forward(uri:host, uri:port); forward(192.168.0.1, 5060); forward("gw.foo.bar"); }',
    );
    assert.deepEqual(r.calls, [
      'forward:uri:host:uri:port',
      'forward:192.168.0.1:5060',
      'forward:gw.foo.bar:',
    ]);
  });
});
