import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CoreApi, ForwardHook } from '../../src/core/api.js';
import type { Endpoint } from '../../src/core/context.js';
import { L_DBG, Logger, MemorySink } from '../../src/core/log.js';
import { FixupError } from '../../src/core/module.js';
import { MessageContext } from '../../src/core/msg-context.js';
import rr from '../../src/modules/rr/index.js';
import type { SendTarget } from '../../src/net/transports.js';
import { parseMessage } from '../../src/sip/message.js';
import { load, reparse } from './helpers.js';

/** The proxy is 10.0.0.1 (UDP 5060, TCP 5070) and [2001:db8::1]:5060 over IPv6. */
function proxyCore(): { core: CoreApi; hooks: ForwardHook[]; sink: MemorySink } {
  const sink = new MemorySink();
  const hooks: ForwardHook[] = [];
  const ours = new Set(['10.0.0.1:5060', '10.0.0.1:5070', 'proxy.example.com:5060', '[2001:db8::1]:5060']);
  const core = {
    log: new Logger(L_DBG, sink),
    isMyself: (host: string, port: number) => ours.has(`${host.toLowerCase()}:${port}`),
    viaFor(t: SendTarget, branch: string) {
      if (t.ip.includes(':')) return `SIP/2.0/${t.proto.toUpperCase()} [2001:db8::1];branch=${branch}`;
      if (t.proto === 'tcp') return `SIP/2.0/TCP 10.0.0.1:5070;branch=${branch}`;
      return `SIP/2.0/UDP 10.0.0.1;branch=${branch}`;
    },
    addForwardHook: (h: ForwardHook) => hooks.push(h),
  } as unknown as CoreApi;
  return { core, hooks, sink };
}

const CALLER: Endpoint = { ip: '192.0.2.10', port: 5060, proto: 'udp', af: 4 };
const LOCAL: Endpoint = { ip: '10.0.0.1', port: 5060, proto: 'udp', af: 4 };

function req(method: string, ruri: string, extra: string[] = [], toTag?: string): MessageContext {
  const lines = [
    `${method} ${ruri} SIP/2.0`,
    'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-1',
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=a1',
    `To: <sip:bob@example.com>${toTag ? `;tag=${toTag}` : ''}`,
    'Call-ID: c1@192.0.2.10',
    `CSeq: 1 ${method}`,
    ...extra,
    'Content-Length: 0',
  ];
  const msg = parseMessage(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), { datagram: true });
  return new MessageContext(msg, CALLER, LOCAL, 'request');
}

describe('record_route', async () => {
  const { core } = proxyCore();
  const m = await load(rr, core);

  it('puts our address with ;lr and the From tag above the other Record-Routes', async () => {
    const ctx = req('INVITE', 'sip:bob@example.com', ['Record-Route: <sip:p2.example.net;lr>']);
    assert.equal(await m.call(ctx, 'record_route'), 1);
    const rrs = reparse(ctx.msg).recordRoutes.map((r) => r.uri);
    assert.deepEqual(rrs, ['sip:10.0.0.1;ftag=a1;lr', 'sip:p2.example.net;lr']);
  });
  it('writes the port and the transport of the socket the request came in on', async () => {
    const ctx = req('INVITE', 'sip:bob@example.com');
    const tcp = new MessageContext(ctx.msg, { ...CALLER, proto: 'tcp' }, { ...LOCAL, proto: 'tcp' });
    assert.equal(await m.call(tcp, 'record_route'), 1);
    assert.equal(reparse(tcp.msg).recordRoutes[0].uri, 'sip:10.0.0.1:5070;transport=tcp;ftag=a1;lr');
  });
  it('adds one entry however often it is called', async () => {
    const ctx = req('INVITE', 'sip:bob@example.com');
    await m.call(ctx, 'record_route');
    await m.call(ctx, 'record_route');
    assert.equal(reparse(ctx.msg).recordRoutes.length, 1);
  });
  it('record_route(params) and add_rr_param before and after add URI parameters', async () => {
    const ctx = req('INVITE', 'sip:bob@example.com');
    assert.equal(await m.call(ctx, 'add_rr_param', ';nat=yes'), 1);
    assert.equal(await m.call(ctx, 'record_route', 'foo=1'), 1);
    assert.equal(await m.call(ctx, 'add_rr_param', ';bar'), 1);
    const rrs = reparse(ctx.msg).recordRoutes;
    assert.equal(rrs.length, 1);
    assert.equal(rrs[0].uri, 'sip:10.0.0.1;ftag=a1;nat=yes;foo=1;bar;lr');
  });
  it('record_route_preset writes the given address', async () => {
    const ctx = req('INVITE', 'sip:bob@example.com');
    assert.equal(await m.call(ctx, 'record_route_preset', 'proxy.example.com:5060'), 1);
    assert.equal(reparse(ctx.msg).recordRoutes[0].uri, 'sip:proxy.example.com:5060;ftag=a1;lr');
    // seed 004's form: address with parameters
    const ctx3 = req('INVITE', 'sip:bob@example.com');
    await m.call(ctx3, 'record_route_preset', '1.2.3.4:5060;nat=yes');
    assert.equal(reparse(ctx3.msg).recordRoutes[0].uri, 'sip:1.2.3.4:5060;nat=yes;ftag=a1;lr');
    const ctx2 = req('INVITE', 'sip:bob@example.com');
    await m.call(ctx2, 'record_route_preset', 'sips:proxy.example.com');
    assert.equal(reparse(ctx2.msg).recordRoutes[0].uri, 'sips:proxy.example.com;ftag=a1;lr');
  });
  it('refuses bad arguments at load time', () => {
    assert.throws(() => m.fixup('record_route_preset', 'a b'), FixupError);
    assert.throws(() => m.fixup('record_route_preset', ''), FixupError);
    assert.throws(() => m.fixup('add_rr_param', ';a>b'), FixupError);
    assert.throws(() => m.fixup('is_direction', 'sideways'), FixupError);
    assert.throws(() => m.fixup('check_route_param', 'a('), FixupError);
  });
});

describe('rr parameters', () => {
  it('enable_full_lr writes ;lr=on, append_fromtag=0 leaves the tag out', async () => {
    const { core } = proxyCore();
    const m = await load(rr, core, { enable_full_lr: 1, append_fromtag: 0 });
    const ctx = req('INVITE', 'sip:bob@example.com');
    await m.call(ctx, 'record_route');
    assert.equal(reparse(ctx.msg).recordRoutes[0].uri, 'sip:10.0.0.1;lr=on');
  });
  it('refuse values other than 0 and 1', async () => {
    const { core } = proxyCore();
    await assert.rejects(async () => load(rr, core, { enable_full_lr: 2 }), FixupError);
  });
});

describe('double Record-Route (enable_double_rr)', () => {
  it('adds the outbound socket on top when the request leaves over another transport, and undoes it', async () => {
    const { core, hooks } = proxyCore();
    const m = await load(rr, core);
    assert.equal(hooks.length, 1);
    const ctx = req('INVITE', 'sip:bob@example.com');
    await m.call(ctx, 'record_route');
    const undo = hooks[0](ctx, { proto: 'tcp', ip: '192.0.2.20', port: 5060 }, ctx.msg);
    assert.ok(undo);
    assert.deepEqual(
      reparse(ctx.msg).recordRoutes.map((r) => r.uri),
      ['sip:10.0.0.1:5070;transport=tcp;r2=on;ftag=a1;lr', 'sip:10.0.0.1;r2=on;ftag=a1;lr'],
    );
    undo();
    assert.deepEqual(
      reparse(ctx.msg).recordRoutes.map((r) => r.uri),
      ['sip:10.0.0.1;ftag=a1;lr'],
    );
  });
  it('adds it for another interface (IPv4 in, IPv6 out), not for the same socket', async () => {
    const { core, hooks } = proxyCore();
    const m = await load(rr, core);
    const ctx = req('INVITE', 'sip:bob@example.com');
    await m.call(ctx, 'record_route');
    assert.equal(hooks[0](ctx, { proto: 'udp', ip: '192.0.2.20', port: 5060 }, ctx.msg), undefined);
    const undo = hooks[0](ctx, { proto: 'udp', ip: '2001:db8::20', port: 5060 }, ctx.msg);
    assert.ok(undo);
    assert.equal(reparse(ctx.msg).recordRoutes[0].uri, 'sip:[2001:db8::1];r2=on;ftag=a1;lr');
    undo();
  });
  it("edits the copy tm sends, found by the script's message", async () => {
    const { core, hooks } = proxyCore();
    const m = await load(rr, core);
    const ctx = req('INVITE', 'sip:bob@example.com');
    await m.call(ctx, 'record_route');
    const copy = reparse(ctx.msg);
    const undo = hooks[0](ctx, { proto: 'tcp', ip: '192.0.2.20', port: 5060 }, copy);
    assert.ok(undo);
    assert.equal(copy.recordRoutes.length, 2);
    assert.equal(ctx.msg.recordRoutes.length, 1, 'the script message is untouched');
    undo();
    assert.equal(copy.recordRoutes.length, 1);
  });
  it('is off with enable_double_rr=0', async () => {
    const { core, hooks } = proxyCore();
    await load(rr, core, { enable_double_rr: 0 });
    assert.equal(hooks.length, 0);
  });
});

describe('loose_route', async () => {
  const { core } = proxyCore();
  const m = await load(rr, core);

  it('is false without Route', async () => {
    const ctx = req('BYE', 'sip:bob@192.0.2.20', [], 'b1');
    assert.equal(await m.call(ctx, 'loose_route'), -1);
  });
  it('removes our entry and sends to the next loose router by dst_uri, Request-URI unchanged', async () => {
    const ctx = req(
      'BYE',
      'sip:bob@192.0.2.20',
      ['Route: <sip:10.0.0.1;ftag=a1;lr>, <sip:p2.example.net;lr>'],
      'b1',
    );
    assert.equal(await m.call(ctx, 'loose_route'), 1);
    assert.equal(ctx.ruri, 'sip:bob@192.0.2.20');
    assert.equal(ctx.dstUri, 'sip:p2.example.net;lr');
    assert.deepEqual(
      reparse(ctx.msg).routes.map((r) => r.uri),
      ['sip:p2.example.net;lr'],
    );
  });
  it('in a dialog, our entry alone: true, the Request-URI leads', async () => {
    const ctx = req('BYE', 'sip:bob@192.0.2.20', ['Route: <sip:10.0.0.1:5060;lr>'], 'b1');
    assert.equal(await m.call(ctx, 'loose_route'), 1);
    assert.equal(ctx.dstUri, undefined);
    assert.equal(ctx.msg.hasHeader('route'), false);
  });
  it('a dialog-initial request with only our entry: entry removed, false (SER NOT_RR_DRIVEN)', async () => {
    const ctx = req('INVITE', 'sip:bob@example.com', ['Route: <sip:10.0.0.1;lr>']);
    assert.equal(await m.call(ctx, 'loose_route'), -1);
    assert.equal(ctx.msg.hasHeader('route'), false);
  });
  it('removes both halves of a double Record-Route', async () => {
    const ctx = req(
      'BYE',
      'sip:bob@192.0.2.20',
      ['Route: <sip:10.0.0.1:5070;transport=tcp;r2=on;lr>', 'Route: <sip:10.0.0.1;r2=on;lr>'],
      'b1',
    );
    assert.equal(await m.call(ctx, 'loose_route'), 1);
    assert.equal(ctx.msg.hasHeader('route'), false);
  });
  it('previous hop a strict router: the Request-URI (our RR URI) is replaced by the last Route', async () => {
    const ctx = req(
      'BYE',
      'sip:10.0.0.1;ftag=a1;lr',
      ['Route: <sip:p2.example.net;lr>', 'Route: <sip:bob@192.0.2.20>'],
      'b1',
    );
    assert.equal(await m.call(ctx, 'loose_route'), 1);
    assert.equal(ctx.ruri, 'sip:bob@192.0.2.20');
    assert.equal(ctx.dstUri, 'sip:p2.example.net;lr');
    assert.deepEqual(
      reparse(ctx.msg).routes.map((r) => r.uri),
      ['sip:p2.example.net;lr'],
    );
  });
  it('strict-router fix-up with nothing left: routed by the restored Request-URI', async () => {
    const ctx = req('BYE', 'sip:10.0.0.1;lr', ['Route: <sip:bob@192.0.2.20>'], 'b1');
    assert.equal(await m.call(ctx, 'loose_route'), 1);
    assert.equal(ctx.ruri, 'sip:bob@192.0.2.20');
    assert.equal(ctx.msg.hasHeader('route'), false);
  });
  it('a request for a user here is not mistaken for a strict-routed one', async () => {
    const ctx = req('INVITE', 'sip:bob@10.0.0.1', ['Route: <sip:10.0.0.1;lr>']);
    assert.equal(await m.call(ctx, 'loose_route'), -1);
    assert.equal(ctx.ruri, 'sip:bob@10.0.0.1');
  });
  it('next hop a strict router: it becomes the Request-URI, the old one goes to the end (§16.6 step 6)', async () => {
    const ctx = req(
      'BYE',
      'sip:bob@192.0.2.20',
      ['Route: <sip:10.0.0.1;lr>,<sip:strict.example.net>,<sip:p3.example.net;lr>'],
      'b1',
    );
    assert.equal(await m.call(ctx, 'loose_route'), 1);
    assert.equal(ctx.ruri, 'sip:strict.example.net');
    assert.deepEqual(
      reparse(ctx.msg).routes.map((r) => r.uri),
      ['sip:p3.example.net;lr', 'sip:bob@192.0.2.20'],
    );
  });
  it('a preloaded Route to someone else is followed (true): the script must guard it', async () => {
    const ctx = req('INVITE', 'sip:+15551234@example.com', [
      'Route: <sip:10.0.0.1;lr>, <sip:gw.example.net;lr>',
    ]);
    assert.equal(await m.call(ctx, 'loose_route'), 1);
    assert.equal(ctx.dstUri, 'sip:gw.example.net;lr');
  });
  it('a malformed Route is false and logged, never thrown', async () => {
    const ctx = req('BYE', 'sip:bob@192.0.2.20', ['Route: sip:nobrackets'], 'b1');
    assert.equal(await m.call(ctx, 'loose_route'), -1);
  });
  it('check_route_param and is_direction read our consumed entry', async () => {
    const down = req('BYE', 'sip:bob@192.0.2.20', ['Route: <sip:10.0.0.1;nat=yes;ftag=a1;lr>'], 'b1');
    assert.equal(await m.call(down, 'loose_route'), 1);
    assert.equal(await m.call(down, 'check_route_param', 'nat=yes'), 1);
    assert.equal(await m.call(down, 'check_route_param', 'foo'), -1);
    assert.equal(await m.call(down, 'is_direction', 'downstream'), 1);
    assert.equal(await m.call(down, 'is_direction', 'upstream'), -1);
    // the callee hangs up: its From tag is the callee's, so the request goes upstream
    const lines = down.msg
      .toString()
      .replace('From: <sip:alice@example.com>;tag=a1', 'From: <sip:bob@example.com>;tag=b1');
    const up = new MessageContext(parseMessage(Buffer.from(lines), { datagram: true }), CALLER, LOCAL);
    up.avps.set('rr/route_params', [';nat=yes;ftag=a1;lr']);
    assert.equal(await m.call(up, 'is_direction', 'upstream'), 1);
    const none = req('BYE', 'sip:bob@192.0.2.20', [], 'b1');
    assert.equal(await m.call(none, 'is_direction', 'downstream'), -1);
  });
});
