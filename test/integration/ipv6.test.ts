/**
 * IPv6 end to end on ::1: a UDP and a TCP listener on an IPv6 address, local replies routed
 * back to an IPv6 source, `received=` with an IPv6 address, the `af` and `src_ip` script
 * operands, and a stateless forward to an IPv6 next hop with the reply coming back.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { buildReply } from '../../src/sip/reply.js';
import { request, type Ser, startSer } from './harness.js';

/** A UDP peer on ::1 collecting what it receives. */
class Udp6Peer {
  readonly inbox: Buffer[] = [];
  port = 0;
  private constructor(readonly sock: Socket) {
    sock.on('message', (b) => this.inbox.push(b));
  }
  static async open(): Promise<Udp6Peer> {
    const p = new Udp6Peer(createSocket({ type: 'udp6', ipv6Only: true }));
    await new Promise<void>((res) => p.sock.bind(0, '::1', () => res()));
    p.port = p.sock.address().port;
    return p;
  }
  send(text: string | Buffer, port: number): void {
    this.sock.send(typeof text === 'string' ? Buffer.from(text) : text, port, '::1');
  }
  async nextMsg(ms = 2000): Promise<SipMessage> {
    const end = Date.now() + ms;
    while (this.inbox.length === 0) {
      if (Date.now() > end) throw new Error(`no message on [::1]:${this.port} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return parseMessage(this.inbox.shift() as Buffer, { datagram: true });
  }
  close(): void {
    this.sock.close();
  }
}

describe('IPv6 transports and stateless forwarding', () => {
  let ser: Ser;
  let ua: Udp6Peer;
  let uas: Udp6Peer;
  before(async () => {
    ua = await Udp6Peer.open();
    uas = await Udp6Peer.open();
    ser = await startSer(`
listen=udp:[::1]:{PORT}
listen=tcp:[::1]:{PORT}
loadmodule "sl.so"
route {
  if (method=="OPTIONS") {
    if (af==6 && src_ip==::1) {
      sl_send_reply("200", "v6 OK");
    } else {
      sl_send_reply("403", "not v6");
    };
    break;
  };
  if (uri=~"^sip:bob@") {
    rewritehostport("[::1]:${uas.port}");
    forward(uri:host, uri:port);
    break;
  };
  sl_send_reply("404", "Not Found");
}`);
  });
  after(async () => {
    ua.close();
    uas.close();
    await ser.stop();
  });

  it('answers over UDP to the IPv6 source, with af==6 and src_ip==::1 true in the script', async () => {
    // the Via names another host, so received= must carry the IPv6 source
    const req = request('OPTIONS', `sip:[::1]:${ser.port}`, { ip: '[2001:db8::5]', port: ua.port });
    ua.send(req, ser.port);
    const r = await ua.nextMsg();
    assert.equal(r.status, 200);
    assert.equal(r.reason, 'v6 OK');
    assert.equal(r.vias[0].received, '::1');
  });

  it('forwards to an IPv6 next hop with an IPv6 Via and routes the reply back', async () => {
    ua.send(request('INVITE', `sip:bob@[::1]:${ser.port}`, { ip: '[::1]', port: ua.port }), ser.port);
    const fwd = await uas.nextMsg();
    assert.equal(fwd.method, 'INVITE');
    assert.equal(fwd.ruri, `sip:bob@[::1]:${uas.port}`);
    assert.equal(fwd.vias.length, 2);
    assert.equal(fwd.vias[0].host, '[::1]');
    assert.equal(fwd.vias[0].port, ser.port);
    uas.send(buildReply(fwd, 480, 'Temporarily Unavailable', { toTag: 'v6' }), ser.port);
    const r = await ua.nextMsg();
    assert.equal(r.status, 480);
    assert.equal(r.vias.length, 1);
  });

  it('answers over TCP on the IPv6 listener, on the same connection', async () => {
    const sock = connect({ host: '::1', port: ser.port });
    await new Promise<void>((res, rej) => {
      sock.once('connect', () => res());
      sock.once('error', rej);
    });
    const lport = sock.localPort ?? 0;
    let data = '';
    sock.on('data', (d) => {
      data += d.toString();
    });
    sock.write(request('OPTIONS', `sip:[::1]:${ser.port}`, { ip: '[::1]', port: lport, proto: 'TCP' }));
    const end = Date.now() + 3000;
    while (!/\r\n\r\n/.test(data) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    sock.destroy();
    const r = parseMessage(Buffer.from(data));
    assert.equal(r.status, 200);
    assert.match(r.vias[0].transport, /TCP/i);
  });
});
