/**
 * rr over real sockets: double Record-Route across UDP and TCP, the strict-router fix-up,
 * and the Route security of examples/ser.cfg (a preloaded Route must not reach a gateway).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { buildReply } from '../../src/sip/reply.js';
import { REPO, request, type Ser, startSer, UdpPeer } from './harness.js';

/** A TCP listener that parses the first SIP message of each connection. */
class TcpSink {
  readonly msgs: SipMessage[] = [];
  readonly conns: Socket[] = [];
  private constructor(readonly server: Server) {}
  static async open(): Promise<TcpSink> {
    let sink: TcpSink | undefined;
    const server = createServer((c) => {
      sink!.conns.push(c);
      let data = Buffer.alloc(0);
      c.on('data', (d) => {
        data = Buffer.concat([data, d]);
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) return;
        const m = /content-length:\s*(\d+)/i.exec(data.subarray(0, end).toString('latin1'));
        const len = end + 4 + Number(m?.[1] ?? 0);
        if (data.length < len) return;
        sink!.msgs.push(parseMessage(data.subarray(0, len)));
        data = data.subarray(len);
      });
      c.on('error', () => {});
    });
    sink = new TcpSink(server);
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    return sink;
  }
  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }
  async next(ms = 3000): Promise<SipMessage> {
    const end = Date.now() + ms;
    while (this.msgs.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const m = this.msgs.shift();
    if (!m) throw new Error('nothing received over TCP');
    return m;
  }
  close(): void {
    for (const c of this.conns) c.destroy();
    this.server.close();
  }
}

describe('double Record-Route when a request changes transport', () => {
  let ser: Ser;
  let ua: UdpPeer;
  let callee: TcpSink;
  before(async () => {
    ua = await UdpPeer.open();
    callee = await TcpSink.open();
    ser = await startSer(`
loadmodule "sl.so"
loadmodule "rr.so"
route {
  record_route();
  if (loose_route()) { forward(); break; };
  forward_tcp(127.0.0.1, ${callee.port});
}`);
  });
  after(async () => {
    ua.close();
    callee.close();
    await ser.stop();
  });

  it('UDP in, TCP out: two entries, the TCP one on top, both marked r2', async () => {
    ua.send(request('INVITE', 'sip:bob@example.com', { ip: '127.0.0.1', port: ua.port }), ser.port);
    const inv = await callee.next();
    const ftag = inv.fromTag;
    assert.deepEqual(
      inv.recordRoutes.map((r) => r.uri),
      [
        `sip:127.0.0.1:${ser.port};transport=tcp;r2=on;ftag=${ftag};lr`,
        `sip:127.0.0.1:${ser.port};r2=on;ftag=${ftag};lr`,
      ],
    );
  });

  it('an in-dialog request with both entries in Route: both removed, sent by the Request-URI', async () => {
    const p = ser.port;
    ua.send(
      request('BYE', `sip:caller@127.0.0.1:${ua.port}`, { ip: '127.0.0.1', port: ua.port }, [
        'To: <sip:caller@127.0.0.1>;tag=t1',
        `Route: <sip:127.0.0.1:${p};r2=on;ftag=x;lr>, <sip:127.0.0.1:${p};transport=tcp;r2=on;ftag=x;lr>`,
      ]),
      p,
    );
    const bye = await ua.nextMsg();
    assert.equal(bye.method, 'BYE');
    assert.equal(bye.ruri, `sip:caller@127.0.0.1:${ua.port}`);
    assert.equal(bye.hasHeader('route'), false);
  });
});

/** tm's branches call core.beforeForward() once src/tm/tm.ts does (see docs/modules/rr.md) */

describe('double Record-Route with t_relay_to_tcp', () => {
  let ser: Ser;
  let ua: UdpPeer;
  let callee: TcpSink;
  before(async () => {
    ua = await UdpPeer.open();
    callee = await TcpSink.open();
    ser = await startSer(`
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
route {
  record_route();
  if (loose_route()) { t_relay(); break; };
  t_relay_to_tcp(127.0.0.1, ${callee.port});
}`);
  });
  after(async () => {
    ua.close();
    callee.close();
    await ser.stop();
  });

  it('UDP in, TCP out through tm: two entries, the TCP one on top', async () => {
    ua.send(request('INVITE', 'sip:bob@example.com', { ip: '127.0.0.1', port: ua.port }), ser.port);
    const inv = await callee.next();
    const ftag = inv.fromTag;
    assert.deepEqual(
      inv.recordRoutes.map((r) => r.uri),
      [
        `sip:127.0.0.1:${ser.port};transport=tcp;r2=on;ftag=${ftag};lr`,
        `sip:127.0.0.1:${ser.port};r2=on;ftag=${ftag};lr`,
      ],
    );
  });
});

describe('loose_route over the wire', () => {
  let ser: Ser;
  let ua: UdpPeer;
  let next: UdpPeer;
  before(async () => {
    ua = await UdpPeer.open();
    next = await UdpPeer.open('127.0.0.2');
    ser = await startSer(`
loadmodule "sl.so"
loadmodule "rr.so"
route {
  if (loose_route()) { forward(); break; };
  sl_send_reply("404", "Not routed");
}`);
  });
  after(async () => {
    ua.close();
    next.close();
    await ser.stop();
  });

  it('previous hop a strict router: R-URI is our RR URI, the target comes from the last Route', async () => {
    ua.send(
      request('BYE', `sip:127.0.0.1:${ser.port};lr`, { ip: '127.0.0.1', port: ua.port }, [
        'To: <sip:bob@example.com>;tag=t1',
        `Route: <sip:bob@127.0.0.2:${next.port}>`,
      ]),
      ser.port,
    );
    const m = await next.nextMsg();
    assert.equal(m.ruri, `sip:bob@127.0.0.2:${next.port}`);
    assert.equal(m.hasHeader('route'), false);
  });

  it('next hop a loose router: sent to it, Request-URI and the rest of the Route set kept', async () => {
    ua.send(
      request('BYE', 'sip:bob@192.0.2.99', { ip: '127.0.0.1', port: ua.port }, [
        'To: <sip:bob@example.com>;tag=t1',
        `Route: <sip:127.0.0.1:${ser.port};lr>,<sip:127.0.0.2:${next.port};lr>`,
      ]),
      ser.port,
    );
    const m = await next.nextMsg();
    assert.equal(m.ruri, 'sip:bob@192.0.2.99');
    assert.deepEqual(
      m.routes.map((r) => r.uri),
      [`sip:127.0.0.2:${next.port};lr`],
    );
  });

  it('a malformed Route header is not routed and does not hurt the server', async () => {
    ua.send(
      request('BYE', 'sip:bob@192.0.2.99', { ip: '127.0.0.1', port: ua.port }, [
        'To: <sip:bob@example.com>;tag=t1',
        'Route: <sip:127.0.0.1;lr',
      ]),
      ser.port,
    );
    const r = await ua.nextMsg();
    assert.ok(r.status === 404 || r.status === 400, `got ${r.status}`);
    ua.send(request('OPTIONS', 'sip:x@192.0.2.99', { ip: '127.0.0.1', port: ua.port }), ser.port);
    assert.equal((await ua.nextMsg()).status, 404);
  });
});

/** examples/ser.cfg on a free port */
function exampleCfg(): string {
  const text = readFileSync(join(REPO, 'examples', 'ser.cfg'), 'utf8');
  return text
    .replace(/^listen=udp:.*$/m, 'listen=udp:127.0.0.1:{PORT}')
    .replace(/^listen=tcp:.*$/m, 'listen=tcp:127.0.0.1:{PORT}')
    .replace(/^port=.*$/m, '')
    .replace(/^debug=.*$/m, 'debug=2');
}

describe('Route security of examples/ser.cfg (seed 002: preloaded Route to the PSTN gateway)', () => {
  let ser: Ser;
  let caller: UdpPeer;
  let gw: UdpPeer;
  before(async () => {
    caller = await UdpPeer.open();
    gw = await UdpPeer.open('127.0.0.3');
    ser = await startSer(exampleCfg());
  });
  after(async () => {
    caller.close();
    gw.close();
    await ser.stop();
  });
  const from = () => ({ ip: '127.0.0.1', port: caller.port });

  it('a dialog-initial INVITE with Route: proxy, gateway gets 403 and the gateway sees nothing', async () => {
    for (const route of [
      `Route: <sip:127.0.0.1:${ser.port};lr>, <sip:127.0.0.3:${gw.port};lr>`,
      `Route: <sip:127.0.0.3:${gw.port};lr>`,
    ]) {
      caller.send(request('INVITE', `sip:+15551234@127.0.0.1:${ser.port}`, from(), [route]), ser.port);
      const r = await caller.nextMsg();
      assert.equal(r.status, 403);
      assert.equal(r.reason, 'Preloaded Route denied');
    }
    assert.equal(await gw.next(300), undefined);
  });

  it('a REFER with a preloaded Route is refused too; in a dialog the Route set is followed', async () => {
    caller.send(
      request('REFER', `sip:+15551234@127.0.0.1:${ser.port}`, from(), [
        `Route: <sip:127.0.0.1:${ser.port};lr=on>, <sip:127.0.0.3:${gw.port};lr>`,
      ]),
      ser.port,
    );
    assert.equal((await caller.nextMsg()).status, 403);
    caller.send(
      request('BYE', `sip:+15551234@127.0.0.3:${gw.port}`, from(), [
        'To: <sip:+15551234@127.0.0.1>;tag=gw-1',
        `Route: <sip:127.0.0.1:${ser.port};lr=on>`,
      ]),
      ser.port,
    );
    const bye = await gw.nextMsg();
    assert.equal(bye.method, 'BYE');
    assert.equal(bye.hasHeader('route'), false);
    // answered, so that tm stops retransmitting it; the 200 comes back to the caller
    gw.send(buildReply(bye, 200, 'OK'), ser.port);
    const ok = await caller.nextMsg();
    assert.equal(ok.status, 200);
    assert.equal(ok.cseq.method, 'BYE');
    gw.inbox.length = 0;
  });

  it('the same INVITE without the check (the seed default script) does reach the gateway', async () => {
    const open = await startSer(`
loadmodule "sl.so"
loadmodule "rr.so"
route {
  record_route();
  if (loose_route()) { forward(); break; };
  sl_send_reply("403", "Forbidden");
}`);
    try {
      caller.send(
        request('INVITE', `sip:+15551234@127.0.0.1:${open.port}`, from(), [
          `Route: <sip:127.0.0.1:${open.port};lr>, <sip:127.0.0.3:${gw.port};lr>`,
        ]),
        open.port,
      );
      const m = await gw.nextMsg();
      assert.equal(m.method, 'INVITE', 'the hole the example closes');
    } finally {
      await open.stop();
    }
  });

  it('the example still registers, relays a call to a registered user with Record-Route, answers OPTIONS', async () => {
    const callee = await UdpPeer.open();
    try {
      caller.send(
        request('REGISTER', `sip:127.0.0.1:${ser.port}`, from(), [
          'To: <sip:bob@127.0.0.1>',
          'From: <sip:bob@127.0.0.1>;tag=r1',
          `Contact: <sip:bob@127.0.0.1:${callee.port}>`,
        ]),
        ser.port,
      );
      assert.equal((await caller.nextMsg()).status, 200);
      const inviter = await UdpPeer.open();
      inviter.send(
        request('INVITE', `sip:bob@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: inviter.port }),
        ser.port,
      );
      assert.equal((await inviter.nextMsg()).status, 100, 'relayed statefully');
      inviter.close();
      const inv = await callee.nextMsg();
      assert.equal(inv.ruri, `sip:bob@127.0.0.1:${callee.port}`);
      assert.match(inv.recordRoutes[0].uri, new RegExp(`^sip:127\\.0\\.0\\.1:${ser.port};ftag=[^;]+;lr=on$`));
      caller.send(request('OPTIONS', `sip:127.0.0.1:${ser.port}`, from()), ser.port);
      assert.equal((await caller.nextMsg()).status, 200);
      caller.send(request('INVITE', `sip:nobody@127.0.0.1:${ser.port}`, from()), ser.port);
      assert.equal((await caller.nextMsg()).status, 404);
    } finally {
      callee.close();
    }
  });
});
