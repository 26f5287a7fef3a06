import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { L_DBG, L_ERR, L_INFO } from '../../src/core/log.js';
import { FixupError } from '../../src/core/module.js';
import xlog from '../../src/modules/xlog/index.js';
import { ctxOf, fakeCore, invite, load, reply } from './helpers.js';

const { core, sink } = fakeCore(L_DBG);
const m = await load(xlog, core);

/** runs xlog(format) and returns the text logged, without the "0(pid) " prefix */
async function out(format: string, ctx = ctxOf(invite())): Promise<string> {
  sink.lines.length = 0;
  assert.equal(await m.call(ctx, 'xlog', format), 1);
  assert.equal(sink.lines.length, 1);
  return sink.lines[0]!.replace(/^\d+\(\d+\) /, '');
}

describe('xlog pseudo-variables', () => {
  const cases: [string, string][] = [
    ['$rm', 'INVITE'],
    ['$ru', 'sip:jiri@iptel.org'],
    ['$ou', 'sip:jiri@iptel.org'],
    ['$rU', 'jiri'],
    ['$rd', 'iptel.org'],
    ['$rp', '5060'],
    ['$fu', 'sip:alice@iptel.org'],
    ['$fU', 'alice'],
    ['$fd', 'iptel.org'],
    ['$ft', '76ff7a07'],
    ['$fn', 'alice'],
    ['$tu', 'sip:jiri@iptel.org'],
    ['$tt', '<null>'],
    ['$tn', '<null>'],
    ['$ci', 'd10815e0@213.20.128.35'],
    ['$cs', '2'],
    ['$ct', '<sip:123.20.128.35:9315>'],
    ['$cT', 'application/sdp'],
    ['$si', '195.37.77.100'],
    ['$sp', '5040'],
    ['$Ri', '195.37.77.101'],
    ['$Rp', '5060'],
    ['$pr', 'UDP'],
    ['$rs', '<null>'],
    ['$rr', '<null>'],
    ['$ua', 'TestUA/1.0'],
    ['$mf', '0'],
    ['$hdr(Max-Forwards)', '10'],
    ['$hdr(X-None)', '<null>'],
    ['$du', '<null>'],
    ['$br', '<null>'],
    ['$ds', '<sip:jiri@iptel.org>'],
    ['$$', '$'],
    ['a\\tb\\nc', 'a\tb\nc'],
  ];
  for (const [fmt, want] of cases) {
    it(`${fmt} → ${JSON.stringify(want)}`, async () => {
      assert.equal(await out(fmt), want);
    });
  }
  it('mixes text and variables', async () => {
    assert.equal(
      await out('$rm from $fu ($si:$sp) to $ru, cost $$5\n'),
      'INVITE from sip:alice@iptel.org (195.37.77.100:5040) to sip:jiri@iptel.org, cost $5\n',
    );
  });
  it('$ru follows rewrites, $ou does not; $rU/$rd/$rp read the current URI', async () => {
    const ctx = ctxOf(invite());
    ctx.ruri = 'sip:bob@gw.example.com:5080;transport=tcp';
    assert.equal(
      await out('$ru|$ou|$rU|$rd|$rp', ctx),
      'sip:bob@gw.example.com:5080;transport=tcp|sip:jiri@iptel.org|bob|gw.example.com|5080',
    );
  });
  it('$mf, $ds and $br reflect flags and the destination set', async () => {
    const ctx = ctxOf(invite());
    ctx.flags = (1 << 1) | (1 << 3);
    ctx.branches = [
      { uri: 'sip:a@x', q: 500 },
      { uri: 'sip:b@y', q: -1 },
    ];
    assert.equal(
      await out('$mf|$ds|$br', ctx),
      '10|<sip:jiri@iptel.org>,<sip:a@x>;q=0.5,<sip:b@y>|sip:a@x,sip:b@y',
    );
  });
  it('$avp(name) prints the latest value', async () => {
    const ctx = ctxOf(invite());
    ctx.avps.set('fw', ['new', 'old']);
    assert.equal(await out('$avp(fw)|$avp(s:fw)|$avp(none)', ctx), 'new|new|<null>');
  });
  it('$mi is stable per message and differs between messages', async () => {
    const a = ctxOf(invite());
    const b = ctxOf(invite());
    const x = await out('$mi', a);
    assert.equal(await out('$mi', a), x);
    assert.notEqual(await out('$mi', b), x);
  });
  it('reply variables in onreply_route', async () => {
    const ctx = ctxOf(reply(), 'onreply');
    assert.equal(await out('$rs $rr $tt $rm $ru', ctx), '486 Busy Here xyz INVITE <null>');
  });
  it('a malformed header prints <null> instead of failing', async () => {
    const buf = Buffer.from(
      invite()
        .toString('latin1')
        .replace('From: "alice" <sip:alice@iptel.org>;tag=76ff7a07', 'From: <sip:broken'),
      'latin1',
    );
    assert.equal(await out('[$fu][$ft][$ci]', ctxOf(buf)), '[<null>][<null>][d10815e0@213.20.128.35]');
  });
});

describe('xlog levels and fixups', () => {
  it('default level is L_ERR and debug= filters', async () => {
    const { core: c2, sink: s2 } = fakeCore(L_ERR);
    const m2 = await load(xlog, c2);
    const ctx = ctxOf(invite());
    await m2.call(ctx, 'xlog', 'err $rm');
    await m2.call(ctx, 'xlog', 'L_INFO', 'info $rm');
    await m2.call(ctx, 'xlog', 'L_ALERT', 'alert $rm');
    await m2.call(ctx, 'xdbg', 'dbg $rm');
    assert.deepEqual(
      s2.lines.map((l) => l.replace(/^\d+\(\d+\) /, '')),
      ['err INVITE', 'alert INVITE'],
    );
  });
  it('level names map to the core levels', () => {
    assert.equal(m.fixup('xlog', 'L_INFO', 'x')[0], L_INFO);
    assert.equal(m.fixup('xlog', 'L_DBG', 'x')[0], L_DBG);
    assert.throws(() => m.fixup('xlog', 'L_LOUD', 'x'), FixupError);
  });
  it('unknown pseudo-variables are load-time errors naming them', () => {
    assert.throws(() => m.fixup('xlog', 'x $foo y'), /unknown pseudo-variable \$foo/);
    assert.throws(() => m.fixup('xlog', '$rmx'), /\$rmx/);
    assert.throws(() => m.fixup('xlog', 'cost $ 5'), FixupError);
    assert.throws(() => m.fixup('xlog', '$hdr(Via'), /not closed/);
    assert.throws(() => m.fixup('xlog', '$hdr'), /parameter/);
  });
  it('buf_size truncates long output', async () => {
    const { core: c2, sink: s2 } = fakeCore(L_DBG);
    const m2 = await load(xlog, c2, { buf_size: 64 });
    await m2.call(ctxOf(invite()), 'xlog', `${'x'.repeat(100)}$rm`);
    assert.equal(s2.lines[0]!.replace(/^\d+\(\d+\) /, ''), 'x'.repeat(64));
  });
  it('does not format when the level is filtered', async () => {
    const { core: c2, sink: s2 } = fakeCore(L_ERR);
    const m2 = await load(xlog, c2);
    const ctx = ctxOf(invite());
    let read = 0;
    Object.defineProperty(ctx, 'ruri', {
      get: () => {
        read++;
        return 'sip:x@y';
      },
    });
    await m2.call(ctx, 'xlog', 'L_DBG', '$ru');
    assert.equal(read, 0);
    assert.equal(s2.lines.length, 0);
  });
});
