import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import core from '../../src/core/actions.js';
import type { CoreConfig } from '../../src/core/config.js';
import { Core } from '../../src/core/core.js';
import { MemorySink } from '../../src/core/log.js';
import { MessageContext } from '../../src/core/msg-context.js';
import { parseMessage } from '../../src/sip/message.js';

const config = { debug: 4, aliases: [], disableTcp: false } as unknown as CoreConfig;
const sink = new MemorySink();
const state = { core: new Core(config, { logSink: sink }) };
const ep = { ip: '127.0.0.1', port: 5060, proto: 'udp' as const, af: 4 as const };

function ctxFor(ruri: string): MessageContext {
  const msg = parseMessage(
    Buffer.from(
      `INVITE ${ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`,
      'latin1',
    ),
    { datagram: true },
  );
  return new MessageContext(msg, ep, ep);
}
// biome-ignore lint/suspicious/noExplicitAny: calling actions with their fixed-up arguments
function act(ctx: MessageContext, name: string, ...args: any[]): number {
  const f = core.functions?.[name];
  assert.ok(f, name);
  return f.run(ctx, state, ...args) as number;
}

describe('built-in actions', () => {
  it('rewrite the Request-URI as seed 003 Table 2-2 shows, under every alias', () => {
    const start = 'sip:12345@foo.bar:6060';
    const cases: [string[], string, string][] = [
      [['rewritehost', 'sethost', 'seth'], '192.168.0.10', 'sip:12345@192.168.0.10:6060'],
      [['rewriteuri', 'seturi'], 'sip:alice@foo.bar', 'sip:alice@foo.bar'],
      [['rewritehostport', 'sethostport', 'sethp'], '192.168.0.10:3040', 'sip:12345@192.168.0.10:3040'],
      [['rewriteuser', 'setuser', 'setu'], 'alice', 'sip:alice@foo.bar:6060'],
      [['rewriteuserpass', 'setuserpass', 'setup'], 'alice:pw', 'sip:alice:pw@foo.bar:6060'],
      [['rewriteport', 'setport', 'setp'], '1234', 'sip:12345@foo.bar:1234'],
      [['prefix'], '9', 'sip:912345@foo.bar:6060'],
    ];
    for (const [names, arg, want] of cases) {
      for (const n of names) {
        const ctx = ctxFor(start);
        assert.equal(act(ctx, n, arg), 1, n);
        assert.equal(ctx.ruri, want, n);
        act(ctx, 'revert_uri');
        assert.equal(ctx.ruri, start);
      }
    }
    const ctx = ctxFor(start);
    assert.equal(act(ctx, 'strip', 2), 1);
    assert.equal(ctx.ruri, 'sip:345@foo.bar:6060');
    assert.equal(act(ctx, 'strip', 9), -1, 'stripping more than the user has fails');
    assert.equal(ctx.ruri, 'sip:345@foo.bar:6060');
  });

  it('a bad port or URI fails and leaves the Request-URI alone', () => {
    const ctx = ctxFor('sip:a@b');
    assert.equal(act(ctx, 'rewriteport', '99999'), -1);
    assert.equal(act(ctx, 'rewriteuri', 'not a uri'), -1);
    assert.equal(ctx.ruri, 'sip:a@b');
  });

  it('append_branch adds the current or a given URI, at most 12 URIs in the set', () => {
    const ctx = ctxFor('sip:a@foo.bar');
    act(ctx, 'rewriteuri', 'sip:b@foo.bar');
    assert.equal(act(ctx, 'append_branch'), 1);
    assert.equal(act(ctx, 'append_branch', 'sip:c@foo.bar'), 1);
    assert.deepEqual(
      ctx.branches.map((b) => b.uri),
      ['sip:b@foo.bar', 'sip:c@foo.bar'],
    );
    let r = 1;
    for (let i = 0; i < 20 && r === 1; i++) r = act(ctx, 'append_branch', `sip:x${i}@foo.bar`);
    assert.equal(r, -1);
    assert.equal(ctx.branches.length + 1, 12);
  });

  it('flags are independent bits 0–31', () => {
    const ctx = ctxFor('sip:a@b');
    act(ctx, 'setflag', 31);
    act(ctx, 'setflag', 0);
    assert.equal(act(ctx, 'isflagset', 31), 1);
    assert.equal(act(ctx, 'isflagset', 1), -1);
    act(ctx, 'resetflag', 31);
    assert.equal(act(ctx, 'isflagset', 31), -1);
    assert.equal(act(ctx, 'isflagset', 0), 1);
  });

  it('log prints at its level (default 4) only within debug; len_gt compares the length', () => {
    const ctx = ctxFor('sip:a@b');
    sink.lines.length = 0;
    act(ctx, 'log', 'default level\n');
    act(ctx, 'log', 5, 'too verbose\n');
    act(ctx, 'log', 1, 'important\n');
    assert.equal(sink.lines.length, 2);
    assert.match(sink.lines[0], /^0\(\d+\) default level\n$/);
    assert.match(sink.lines[1], /important/);
    const n = ctx.msg.raw.length;
    assert.equal(act(ctx, 'len_gt', n - 1), 1);
    assert.equal(act(ctx, 'len_gt', n), -1);
  });
});
