import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import {
  DEFAULT_MAX_BUFFER,
  type RecvInfo,
  type TransportsOptions,
  Transports,
} from '../../src/net/transports.js';
import { delay, ipv6Available, sipMsg, type TcpClient, tcpClient, udpPeer, waitFor } from './helpers.js';

interface Got {
  data: string;
  info: RecvInfo;
}

const open: Transports[] = [];
const clients: net.Socket[] = [];

async function make(
  extra: Partial<TransportsOptions> = {},
  listen: TransportsOptions['listen'] = [
    { proto: 'udp', host: '127.0.0.1', port: 0 },
    { proto: 'tcp', host: '127.0.0.1', port: 0 },
  ],
): Promise<{ t: Transports; got: Got[]; udpPort: number; tcpPort: number }> {
  const got: Got[] = [];
  const t = new Transports({
    listen,
    onMessage: (d, info) => got.push({ data: d.toString('latin1'), info }),
    ...extra,
  });
  open.push(t);
  await t.start();
  const udpPort = t.listening.find((s) => s.proto === 'udp')?.port ?? 0;
  const tcpPort = t.listening.find((s) => s.proto === 'tcp')?.port ?? 0;
  return { t, got, udpPort, tcpPort };
}

async function client(port: number, host = '127.0.0.1'): Promise<TcpClient> {
  const c = await tcpClient(port, host);
  clients.push(c.sock);
  return c;
}

after(async () => {
  for (const s of clients) s.destroy();
  await Promise.all(open.map((t) => t.close()));
});

// the UDP tests run over both receive/send paths: the native addon's (the default where it
// is built, and CI builds it) and node:dgram's (the multi-process model's, and the fallback)
for (const udpNative of [true, false]) {
  describe(`Transports: UDP (${udpNative ? 'native addon' : 'node:dgram'})`, () => {
    const makeUdp = (extra: Partial<TransportsOptions> = {}, listen?: TransportsOptions['listen']) =>
      make({ udpNative, ...extra }, listen);

    it('receives a datagram and replies from the SIP port (IPv4)', async () => {
      const { t, got, udpPort } = await makeUdp();
      // the native suite must not quietly run on node:dgram (SER_UDP_NATIVE=0 asks for that)
      assert.equal(t.udpImpl, udpNative && process.env.SER_UDP_NATIVE !== '0' ? 'native' : 'dgram');
      const peer = await udpPeer(4);
      try {
        const m = sipMsg('u4', '', 'UDP');
        peer.sock.send(m, udpPort, '127.0.0.1');
        await waitFor(() => got.length === 1, 3000, 'udp message');
        assert.equal(got[0].data, m);
        const { src, dst, socket, connId } = got[0].info;
        assert.deepEqual(src, { ip: '127.0.0.1', port: peer.port, proto: 'udp', af: 4 });
        assert.equal(dst.port, udpPort);
        assert.equal(dst.proto, 'udp');
        assert.equal(socket.proto, 'udp');
        assert.equal(connId, undefined);
        assert.equal(
          t.send({ proto: 'udp', ip: src.ip, port: src.port }, Buffer.from('SIP/2.0 200 OK\r\n\r\n')),
          true,
        );
        await waitFor(() => peer.got.length === 1, 3000, 'udp reply');
        assert.equal(peer.got[0].port, udpPort, 'reply must come from the listening port');
        assert.equal(peer.got[0].data, 'SIP/2.0 200 OK\r\n\r\n');
        // an IPv4-mapped IPv6 target goes out over the IPv4 socket
        assert.equal(
          t.send({ proto: 'udp', ip: '::ffff:127.0.0.1', port: src.port }, Buffer.from('mapped')),
          true,
        );
        await waitFor(() => peer.got.length === 2, 3000, 'mapped reply');
        assert.equal(peer.got[1].data, 'mapped');
        const st = t.getStats();
        assert.equal(st.udp.msgsIn, 1);
        assert.equal(st.udp.msgsOut, 2);
      } finally {
        await peer.close();
      }
    });

    it('drops CRLF / whitespace keep-alive datagrams silently', async () => {
      const { t, got, udpPort } = await makeUdp();
      const peer = await udpPeer(4);
      try {
        peer.sock.send('\r\n\r\n', udpPort, '127.0.0.1');
        peer.sock.send(' \r\n', udpPort, '127.0.0.1');
        peer.sock.send(sipMsg('after', '', 'UDP'), udpPort, '127.0.0.1');
        await waitFor(() => got.length === 1 && t.getStats().udp.keepalives === 2, 3000, 'keepalives');
        assert.match(got[0].data, /^OPTIONS sip:after@/);
      } finally {
        await peer.close();
      }
    });

    it('receives and sends over IPv6 through an ipv6Only socket', async (tc) => {
      if (!(await ipv6Available())) {
        tc.skip('::1 not available');
        return;
      }
      const { t, got } = await makeUdp({}, [
        { proto: 'udp', host: '127.0.0.1', port: 0 },
        { proto: 'udp', host: '[::1]', port: 0 },
      ]);
      const ls6 = t.listening.find((s) => s.af === 6);
      assert.ok(ls6);
      assert.equal(ls6.ip, '::1');
      const peer = await udpPeer(6);
      try {
        peer.sock.send(sipMsg('u6', '', 'UDP'), ls6.port, '::1');
        await waitFor(() => got.length === 1, 3000, 'udp6 message');
        assert.equal(got[0].info.src.af, 6);
        assert.equal(got[0].info.src.ip, '::1');
        assert.equal(got[0].info.socket, ls6);
        assert.equal(t.send({ proto: 'udp', ip: '::1', port: peer.port }, Buffer.from('pong6')), true);
        await waitFor(() => peer.got.length === 1, 3000, 'udp6 reply');
        assert.equal(peer.got[0].port, ls6.port);
        assert.equal(t.viaHead({ proto: 'udp', ip: '::1' }), `SIP/2.0/UDP [::1]:${ls6.port};branch=`);
      } finally {
        await peer.close();
      }
    });

    it('fails (without throwing) when no socket of the family exists', async () => {
      const { t } = await makeUdp({}, [{ proto: 'udp', host: '127.0.0.1', port: 0 }]);
      assert.equal(t.send({ proto: 'udp', ip: '::1', port: 5060 }, Buffer.from('x')), false);
      assert.equal(t.send({ proto: 'udp', ip: 'not-an-ip', port: 5060 }, Buffer.from('x')), false);
      assert.equal(t.send({ proto: 'udp', ip: '127.0.0.1', port: 70000 }, Buffer.from('x')), false);
      assert.equal(t.send({ proto: 'tls', ip: '127.0.0.1', port: 5061 }, Buffer.from('x')), false);
      assert.equal(await t.send({ proto: 'tcp', ip: '127.0.0.1', port: 5060 }, Buffer.from('x')), false);
      assert.equal(t.getStats().udp.sendErrors, 4);
      assert.equal(t.getStats().tcp.sendErrors, 1);
    });

    it('counts a UDP send the kernel refuses, with its target, and keeps the socket', async () => {
      const errors: { msg: string; port: number }[] = [];
      const { t, udpPort, got } = await makeUdp({
        onSendError: (e, to) =>
          errors.push({ msg: (e as NodeJS.ErrnoException).code ?? e.message, port: to.port }),
      });
      // larger than any UDP datagram: refused at once (EMSGSIZE), before and after the
      // destination had a send confirmed
      const big = Buffer.alloc(70_000, 0x41);
      assert.equal(t.send({ proto: 'udp', ip: '127.0.0.1', port: udpPort }, big), false);
      assert.deepEqual(errors, [{ msg: 'EMSGSIZE', port: udpPort }]);
      assert.equal(t.getStats().udp.sendErrors, 1);
      // the socket still works
      assert.equal(t.send({ proto: 'udp', ip: '127.0.0.1', port: udpPort }, Buffer.from('OPTIONS x')), true);
      for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(got[0]?.data, 'OPTIONS x');
      assert.equal(t.send({ proto: 'udp', ip: '127.0.0.1', port: udpPort }, big), false);
      assert.equal(t.getStats().udp.sendErrors, 2);
      // the kernel refuses a broadcast without SO_BROADCAST (EACCES): every such send is
      // counted, the refused destination never counts as confirmed
      for (let i = 0; i < 3; i++) {
        const ok = t.send({ proto: 'udp', ip: '255.255.255.255', port: 5060 }, Buffer.from('x'));
        // the addon has the kernel's answer at once; node:dgram reports it later
        if (t.udpImpl === 'native') assert.equal(ok, false);
      }
      for (let i = 0; i < 50 && errors.length < 5; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(
        errors.slice(2),
        [1, 2, 3].map(() => ({ msg: 'EACCES', port: 5060 })),
      );
      assert.equal(t.getStats().udp.sendErrors, 5);
    });

    it('raises the receive buffer to maxBuffer (2 MiB by default) as far as rmem_max allows, never lowers it', async (tc) => {
      let rmemMax: number;
      let rmemDefault: number;
      try {
        rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
        rmemDefault = Number(readFileSync('/proc/sys/net/core/rmem_default', 'utf8'));
      } catch {
        tc.skip('no /proc/sys/net/core (not Linux)');
        return;
      }
      // a fresh socket has rmem_default; Linux doubles what SO_RCVBUF asks (its bookkeeping
      // overhead), up to twice rmem_max, and reports the doubled size
      const udp = [{ proto: 'udp' as const, host: '127.0.0.1', port: 0 }];
      const dflt = await makeUdp({}, udp);
      assert.equal(DEFAULT_MAX_BUFFER, 2 * 1024 * 1024);
      assert.equal(
        dflt.t.listening[0].rcvbuf,
        DEFAULT_MAX_BUFFER > rmemDefault ? 2 * Math.min(DEFAULT_MAX_BUFFER, rmemMax) : rmemDefault,
      );
      const small = await makeUdp({ maxBuffer: 64 * 1024 }, udp);
      assert.equal(small.t.listening[0].rcvbuf, rmemDefault);
    });
  });
}

describe('Transports: TCP receive', () => {
  it('splits pipelined messages written at once', async () => {
    const { got, tcpPort } = await make();
    const c = await client(tcpPort);
    const msgs = [sipMsg('p1', 'body-1'), sipMsg('p2'), sipMsg('p3', 'v=0\r\n')];
    c.sock.write(msgs.join(''));
    await waitFor(() => got.length === 3, 3000, 'three messages');
    assert.deepEqual(
      got.map((g) => g.data),
      msgs,
    );
    const ids = new Set(got.map((g) => g.info.connId));
    assert.equal(ids.size, 1);
    assert.equal(got[0].info.src.port, c.sock.localPort);
    assert.equal(got[0].info.dst.port, tcpPort);
    assert.equal(got[0].info.src.proto, 'tcp');
  });

  it('reassembles a message split into many writes, also byte by byte', async () => {
    const { got, tcpPort } = await make();
    const c = await client(tcpPort);
    const m1 = sipMsg('split', 'some body here');
    for (let i = 0; i < m1.length; i += 17) {
      c.sock.write(m1.slice(i, i + 17));
      await delay(1);
    }
    await waitFor(() => got.length === 1, 3000, 'split message');
    assert.equal(got[0].data, m1);
    const m2 = sipMsg('bytewise', 'xyz');
    for (let i = 0; i < m2.length; i++) {
      c.sock.write(m2[i]);
      if (i % 4 === 0) await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => got.length === 2, 3000, 'byte-wise message');
    assert.equal(got[1].data, m2);
  });

  it('serves other connections while one holds half a message', async () => {
    const { got, tcpPort } = await make();
    const slow = await client(tcpPort);
    const fast = await client(tcpPort);
    const half = sipMsg('slow', 'slow-body');
    slow.sock.write(half.slice(0, 60));
    await delay(20);
    fast.sock.write(sipMsg('fast'));
    await waitFor(() => got.length === 1, 3000, 'fast message');
    assert.match(got[0].data, /sip:fast@/);
    slow.sock.write(half.slice(60));
    await waitFor(() => got.length === 2, 3000, 'slow message');
    assert.equal(got[1].data, half);
    assert.notEqual(got[0].info.connId, got[1].info.connId);
  });

  it('reports oversize messages, lets a 513 out, then closes', async () => {
    const over: { partial: string; limit: string }[] = [];
    let tt: Transports | undefined;
    const { t, got, tcpPort } = await make({
      tcp: { maxMessageSize: 1000, maxHeaderSize: 800, errorCloseDelayMs: 50 },
      onOversize: (partial, info, limit) => {
        over.push({ partial: partial.toString('latin1'), limit });
        tt?.send(
          { proto: 'tcp', ip: info.src.ip, port: info.src.port, connId: info.connId },
          Buffer.from('SIP/2.0 513 Message Too Large\r\nContent-Length: 0\r\n\r\n'),
        );
      },
    });
    tt = t;
    const c = await client(tcpPort);
    c.sock.write(sipMsg('big', 'x'.repeat(2000)));
    await waitFor(() => over.length === 1, 3000, 'oversize event');
    assert.equal(over[0].limit, 'message');
    assert.match(over[0].partial, /^OPTIONS sip:big@/);
    await Promise.race([c.whenClosed, delay(3000)]);
    assert.equal(c.closed(), true, 'connection closed');
    assert.match(c.received(), /^SIP\/2\.0 513 /);
    assert.equal(got.length, 0);
    assert.equal(t.getStats().tcp.oversize, 1);
  });

  it('reports oversize headers (no end of headers within the limit)', async () => {
    const over: string[] = [];
    const { tcpPort } = await make({
      tcp: { maxHeaderSize: 300, errorCloseDelayMs: 20 },
      onOversize: (p, _i, limit) => over.push(`${limit}:${p.toString('latin1').slice(0, 7)}`),
    });
    const c = await client(tcpPort);
    c.sock.write('INVITE sip:x SIP/2.0\r\n');
    for (let i = 0; i < 20 && !c.closed(); i++) {
      c.sock.write(`X-Pad-${i}: ${'p'.repeat(50)}\r\n`);
      await delay(2);
    }
    await waitFor(() => over.length === 1, 3000, 'oversize event');
    assert.deepEqual(over, ['header:INVITE ']);
    await Promise.race([c.whenClosed, delay(3000)]);
    assert.equal(c.closed(), true);
  });

  it('closes on a missing Content-Length and reports it', async () => {
    const errs: string[] = [];
    const { t, got, tcpPort } = await make({
      tcp: { errorCloseDelayMs: 20 },
      onFramingError: (reason) => errs.push(reason),
    });
    const c = await client(tcpPort);
    c.sock.write('MESSAGE sip:a@b SIP/2.0\r\nCall-ID: 1\r\n\r\nhello');
    await Promise.race([c.whenClosed, delay(3000)]);
    assert.equal(c.closed(), true);
    assert.deepEqual(errs, ['no-content-length']);
    assert.equal(got.length, 0);
    assert.equal(t.getStats().tcp.framingErrors, 1);
  });

  it('answers a CRLFCRLF ping with a CRLF pong and keeps the connection', async () => {
    const { t, got, tcpPort } = await make();
    const c = await client(tcpPort);
    c.sock.write('\r\n\r\n');
    await waitFor(() => c.received().length >= 2, 3000, 'pong');
    await delay(30);
    assert.equal(c.received(), '\r\n');
    c.sock.write(sipMsg('after-ping'));
    await waitFor(() => got.length === 1, 3000, 'message after ping');
    assert.equal(c.closed(), false);
    assert.equal(t.getStats().tcp.pings, 1);
  });

  it('closes idle connections (one sweep timer)', async () => {
    const { t, tcpPort } = await make({ tcp: { idleTimeoutMs: 150, sweepIntervalMs: 30 } });
    const c = await client(tcpPort);
    await waitFor(() => t.connections().length === 1, 3000, 'connection registered');
    await Promise.race([c.whenClosed, delay(4000)]);
    assert.equal(c.closed(), true, 'idle connection closed');
    await waitFor(() => t.connections().length === 0, 3000, 'connection removed');
    assert.equal(t.getStats().tcp.idleClosed, 1);
  });

  it('closes a connection stuck in the middle of a message', async () => {
    const { t, tcpPort } = await make({ tcp: { messageReadTimeoutMs: 150, sweepIntervalMs: 30 } });
    const c = await client(tcpPort);
    c.sock.write('INVITE sip:x SIP/2.0\r\nVia: ');
    await Promise.race([c.whenClosed, delay(4000)]);
    assert.equal(c.closed(), true);
    assert.equal(t.getStats().tcp.readTimeouts, 1);
  });

  it('refuses connections beyond maxConnections', async () => {
    const { t, got, tcpPort } = await make({ tcp: { maxConnections: 2 } });
    const a = await client(tcpPort);
    const b = await client(tcpPort);
    await waitFor(() => t.connections().length === 2, 3000, 'two connections');
    const c = await client(tcpPort);
    await Promise.race([c.whenClosed, delay(3000)]);
    assert.equal(c.closed(), true, 'third connection closed');
    assert.equal(t.getStats().tcp.connsRefused, 1);
    a.sock.write(sipMsg('still-ok'));
    await waitFor(() => got.length === 1, 3000, 'accepted connection still served');
    assert.equal(b.closed(), false);
    // an outgoing connection is refused too while at the limit
    assert.equal(await t.send({ proto: 'tcp', ip: '127.0.0.1', port: 1 }, Buffer.from('x')), false);
    assert.equal(t.getStats().tcp.connsRefused, 2);
  });
});

describe('Transports: TCP send', () => {
  it('replies over the connection the request came in on (by connId and by address)', async () => {
    const { t, got, tcpPort } = await make();
    const c = await client(tcpPort);
    c.sock.write(sipMsg('req'));
    await waitFor(() => got.length === 1, 3000, 'request');
    const { src, connId } = got[0].info;
    assert.equal(t.send({ proto: 'tcp', ip: src.ip, port: src.port, connId }, Buffer.from('R1\r\n')), true);
    // no connId: found by the peer's address
    assert.equal(t.send({ proto: 'tcp', ip: src.ip, port: src.port }, Buffer.from('R2\r\n')), true);
    // a stale connId falls back to the address
    assert.equal(
      t.send({ proto: 'tcp', ip: src.ip, port: src.port, connId: 999999 }, Buffer.from('R3\r\n')),
      true,
    );
    await waitFor(() => c.received() === 'R1\r\nR2\r\nR3\r\n', 3000, 'replies');
    const st = t.getStats();
    assert.equal(st.tcp.connsConnected, 0, 'no new connection opened');
    assert.equal(st.tcp.msgsOut, 3);
  });

  it('connects to a peer, reuses the connection, and receives its replies on it', async () => {
    const { t, got } = await make();
    const peerConns: net.Socket[] = [];
    let peerData = '';
    const peer = net.createServer((s) => {
      peerConns.push(s);
      s.on('data', (d) => {
        peerData += d.toString('latin1');
      });
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', () => r()));
    const port = (peer.address() as net.AddressInfo).port;
    try {
      const m1 = sipMsg('out1');
      const m2 = sipMsg('out2');
      const r1 = t.send({ proto: 'tcp', ip: '127.0.0.1', port }, Buffer.from(m1));
      const r2 = t.send({ proto: 'tcp', ip: '127.0.0.1', port }, Buffer.from(m2)); // while connecting
      assert.equal(await r1, true);
      assert.equal(await r2, true);
      assert.equal(await t.send({ proto: 'tcp', ip: '127.0.0.1', port }, Buffer.from(m1)), true);
      await waitFor(() => peerData === m1 + m2 + m1, 3000, 'peer data');
      assert.equal(peerConns.length, 1, 'one connection reused');
      assert.equal(t.getStats().tcp.connsConnected, 1);
      const reply = 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n';
      peerConns[0].write(reply);
      await waitFor(() => got.length === 1, 3000, 'reply over outgoing connection');
      assert.equal(got[0].data, reply);
      assert.equal(got[0].info.src.port, port);
      assert.equal(got[0].info.socket.proto, 'tcp');
      const conn = t.connections().find((x) => x.id === got[0].info.connId);
      assert.ok(conn?.outgoing);
    } finally {
      for (const s of peerConns) s.destroy();
      await new Promise<void>((r) => peer.close(() => r()));
    }
  });

  it('reports a refused connect as a failed send, without throwing', async () => {
    const errors: string[] = [];
    const { t } = await make({ onSendError: (e) => errors.push(e.message) });
    // find a closed port: bind then close
    const tmp = net.createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', () => r()));
    const port = (tmp.address() as net.AddressInfo).port;
    await new Promise<void>((r) => tmp.close(() => r()));
    assert.equal(await t.send({ proto: 'tcp', ip: '127.0.0.1', port }, Buffer.from('x')), false);
    const st = t.getStats();
    assert.equal(st.tcp.connectFailures, 1);
    assert.equal(st.tcp.sendErrors, 1);
    assert.equal(errors.length, 1);
    assert.equal(t.connections().length, 0);
  });

  it('closes a connection whose peer does not read (bounded write buffer)', async () => {
    const { t } = await make({ tcp: { maxWriteBuffer: 256 * 1024 } });
    const peerConns: net.Socket[] = [];
    const peer = net.createServer({ pauseOnConnect: true }, (s) => {
      s.on('error', () => {});
      peerConns.push(s);
    });
    await new Promise<void>((r) => peer.listen(0, '127.0.0.1', () => r()));
    const port = (peer.address() as net.AddressInfo).port;
    try {
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      assert.equal(await t.send({ proto: 'tcp', ip: '127.0.0.1', port }, chunk), true);
      let failed = false;
      for (let i = 0; i < 4000 && !failed; i++) {
        failed = (await t.send({ proto: 'tcp', ip: '127.0.0.1', port }, chunk)) === false;
        if (i % 16 === 0) await delay(1);
      }
      assert.equal(failed, true, 'a send failed once the buffer cap was reached');
      assert.ok(t.getStats().tcp.writeOverflows >= 1);
    } finally {
      for (const s of peerConns) s.destroy();
      await new Promise<void>((r) => peer.close(() => r()));
    }
  });

  it('works over IPv6 TCP', async (tc) => {
    if (!(await ipv6Available())) {
      tc.skip('::1 not available');
      return;
    }
    const { t, got } = await make({}, [{ proto: 'tcp', host: '::1', port: 0 }]);
    const port = t.listening[0].port;
    const c = await client(port, '::1');
    c.sock.write(sipMsg('v6'));
    await waitFor(() => got.length === 1, 3000, 'v6 message');
    assert.equal(got[0].info.src.af, 6);
    assert.equal(got[0].info.dst.ip, '::1');
    const { src, connId } = got[0].info;
    assert.equal(t.send({ proto: 'tcp', ip: src.ip, port: src.port, connId }, Buffer.from('ok6')), true);
    await waitFor(() => c.received() === 'ok6', 3000, 'v6 reply');
  });
});

describe('Transports: lifecycle and helpers', () => {
  it('close() shuts listeners and connections; sends fail afterwards', async () => {
    const { t, tcpPort, udpPort } = await make();
    const c = await client(tcpPort);
    await waitFor(() => t.connections().length === 1, 3000, 'connection');
    await t.close();
    await Promise.race([c.whenClosed, delay(3000)]);
    assert.equal(c.closed(), true);
    assert.equal(t.send({ proto: 'udp', ip: '127.0.0.1', port: udpPort }, Buffer.from('x')), false);
    assert.equal(await t.send({ proto: 'tcp', ip: '127.0.0.1', port: tcpPort }, Buffer.from('x')), false);
    await assert.rejects(tcpClient(tcpPort));
    await t.close(); // idempotent
  });

  it('survives a throwing handler and counts it', async () => {
    const seen: string[] = [];
    const errs: string[] = [];
    const { t, tcpPort, udpPort } = await make({ onError: (_e, where) => errs.push(where) });
    t.setHandler((d) => {
      seen.push(d.toString('latin1').slice(12, 18));
      throw new Error('boom');
    });
    const c = await client(tcpPort);
    c.sock.write(sipMsg('t-one') + sipMsg('t-two'));
    const peer = await udpPeer(4);
    try {
      peer.sock.send(sipMsg('u-one', '', 'UDP'), udpPort, '127.0.0.1');
      await waitFor(() => seen.length === 3, 3000, 'three deliveries');
      assert.deepEqual(seen.sort(), ['t-one@', 't-two@', 'u-one@']);
      assert.equal(t.getStats().handlerErrors, 3);
      assert.deepEqual(errs, ['handler', 'handler', 'handler']);
      assert.equal(c.closed(), false);
    } finally {
      await peer.close();
    }
  });

  it('start() rejects when an address is in use, and releases what it bound', async () => {
    const first = await make({}, [{ proto: 'tcp', host: '127.0.0.1', port: 0 }]);
    const port = first.tcpPort;
    const t2 = new Transports({
      listen: [
        { proto: 'udp', host: '127.0.0.1', port: 0 },
        { proto: 'tcp', host: '127.0.0.1', port },
      ],
    });
    await assert.rejects(t2.start(), /EADDRINUSE/);
    await assert.rejects(
      new Transports({ listen: [{ proto: 'udp', host: 'example.com', port: 0 }] }).start(),
      TypeError,
    );
  });

  it('exposes listen sockets for myself checks and Via', async () => {
    const { t, udpPort } = await make({ advertisedAddress: { 4: '192.0.2.10' } }, [
      { proto: 'udp', host: '127.0.0.1', port: 0 },
      { proto: 'udp', host: '0.0.0.0', port: 0 },
      { proto: 'tcp', host: '127.0.0.1', port: 0, advertise: 'sip.example.com', advertisePort: 5060 },
    ]);
    const [u, any, tcp] = t.listening;
    assert.equal(u.port, udpPort);
    assert.equal(u.address, '127.0.0.1');
    assert.equal(any.any, true);
    assert.equal(any.address, '192.0.2.10');
    assert.equal(tcp.address, 'sip.example.com');
    // the default port is not written (SER, seed 003 Ex 2-11)
    assert.equal(t.viaHead({ proto: 'tcp', ip: '10.0.0.1' }), 'SIP/2.0/TCP sip.example.com;branch=');
    assert.equal(t.viaHead({ proto: 'udp', ip: '10.0.0.1' }), `SIP/2.0/UDP 127.0.0.1:${udpPort};branch=`);
    assert.equal(t.viaHead({ proto: 'tcp', ip: '::1' }), undefined);
    assert.equal(t.viaHead({ proto: 'udp', ip: 'not-an-ip' }), undefined);
    assert.equal(t.isLocal('127.0.0.1', udpPort), true);
    assert.equal(t.isLocal('127.0.0.1', udpPort, 'tcp'), false);
    assert.equal(t.isLocal('::ffff:127.0.0.1', udpPort), true);
    assert.equal(t.isLocal('127.0.0.1', any.port), true, 'loopback is local to a wildcard bind');
    assert.equal(t.isLocal('192.0.2.10', any.port), true, 'advertised address');
    assert.equal(t.isLocal('192.0.2.99', any.port), false);
  });
});
