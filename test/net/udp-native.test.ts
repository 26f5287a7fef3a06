import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, describe, it } from 'node:test';
import { type RecvInfo, Transports } from '../../src/net/transports.js';
import {
  errnoError,
  loadNativeUdp,
  NativeUdpSocket,
  nativeUdpUnavailable,
} from '../../src/net/udp-native.js';
import { ipv6Available, sipMsg, udpPeer, waitFor } from './helpers.js';

// CI builds the addon (npm run build runs native/build.sh): a build that broke must fail here,
// not leave the server on node:dgram unnoticed. SER_UDP_NATIVE=0 runs everything without it.
const off = process.env.SER_UDP_NATIVE === '0';
const open: Transports[] = [];
after(async () => {
  await Promise.all(open.map((t) => t.close()));
});

async function udpTransports(host = '127.0.0.1', onMessage?: (d: Buffer, i: RecvInfo) => void) {
  const got: { data: string; info: RecvInfo }[] = [];
  const t = new Transports({
    listen: [{ proto: 'udp', host, port: 0 }],
    onMessage: onMessage ?? ((d, info) => got.push({ data: d.toString('latin1'), info })),
  });
  open.push(t);
  await t.start();
  return { t, got, port: t.listening[0].port };
}

describe('native UDP addon', { skip: off ? 'SER_UDP_NATIVE=0' : false }, () => {
  it('is built and loads', () => {
    assert.ok(loadNativeUdp(), `native/ser_udp.node: ${nativeUdpUnavailable()}`);
  });

  it('delivers a burst larger than one recvmmsg batch complete, in order, each in its own buffer', async () => {
    const a = loadNativeUdp();
    assert.ok(a);
    const { t, got, port } = await udpTransports();
    assert.equal(t.udpImpl, 'native');
    // two peers, interleaved: sources must be told apart within one batch
    const p1 = await udpPeer(4);
    const p2 = await udpPeer(4);
    try {
      const n = a.BATCH * 3 + 5;
      const sent: string[] = [];
      for (let i = 0; i < n; i++) {
        const m = sipMsg(`b${i}`, 'x'.repeat(i * 37), 'UDP');
        sent.push(m);
        (i % 2 ? p2 : p1).sock.send(m, port, '127.0.0.1');
      }
      await waitFor(() => got.length === n, 5000, `${n} datagrams`);
      const byPeer = (p: number) => got.filter((g) => g.info.src.port === p).map((g) => g.data);
      assert.deepEqual(
        byPeer(p1.port),
        sent.filter((_, i) => i % 2 === 0),
      );
      assert.deepEqual(
        byPeer(p2.port),
        sent.filter((_, i) => i % 2 === 1),
      );
      for (const g of got) assert.equal(g.info.src.ip, '127.0.0.1');
      assert.equal(t.getStats().udp.msgsIn, n);
    } finally {
      await p1.close();
      await p2.close();
    }
  });

  it('keeps a received buffer intact after later batches reuse the receive area', async () => {
    const kept: Buffer[] = [];
    const { port } = await udpTransports('127.0.0.1', (d) => kept.push(d));
    const p = await udpPeer(4);
    try {
      p.sock.send(sipMsg('first', 'A'.repeat(500), 'UDP'), port, '127.0.0.1');
      await waitFor(() => kept.length === 1, 3000, 'first');
      const first = kept[0].toString('latin1');
      for (let i = 0; i < 40; i++)
        p.sock.send(sipMsg(`later${i}`, 'B'.repeat(900), 'UDP'), port, '127.0.0.1');
      await waitFor(() => kept.length === 41, 5000, 'later');
      assert.equal(kept[0].toString('latin1'), first);
      assert.match(first, /^OPTIONS sip:first@.*A{500}$/s);
    } finally {
      await p.close();
    }
  });

  it('takes datagrams of every size UDP allows, up to 65,507 bytes, byte for byte', async () => {
    const { t, got, port } = await udpTransports();
    const p = await udpPeer(4);
    try {
      const sizes = [1, 100, 1472, 1473, 9000, 32768, 65507];
      const sent = sizes.map((n, k) => {
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) b[i] = 0x41 + ((i * 7 + k) % 26);
        return b;
      });
      for (const b of sent) p.sock.send(b, port, '127.0.0.1');
      // an empty datagram is a keep-alive: counted, not delivered
      p.sock.send(Buffer.alloc(0), port, '127.0.0.1');
      await waitFor(
        () => got.length === sizes.length && t.getStats().udp.keepalives === 1,
        5000,
        'all sizes',
      );
      assert.deepEqual(
        got.map((g) => g.data.length),
        sizes,
      );
      for (let k = 0; k < sizes.length; k++) assert.equal(got[k].data, sent[k].toString('latin1'));
    } finally {
      await p.close();
    }
  });

  it('gives IPv6 sources as node:dgram writes them', async (tc) => {
    if (!(await ipv6Available())) {
      tc.skip('::1 not available');
      return;
    }
    const { t, got, port } = await udpTransports('::1');
    assert.equal(t.udpImpl, 'native');
    const p = await udpPeer(6);
    try {
      p.sock.send(sipMsg('v6', '', 'UDP'), port, '::1');
      await waitFor(() => got.length === 1, 3000, 'v6 datagram');
      assert.deepEqual(got[0].info.src, { ip: '::1', port: p.port, proto: 'udp', af: 6 });
    } finally {
      await p.close();
    }
  });

  it('refuses a port in use with node:dgram words, and a bad address', async () => {
    const a = loadNativeUdp();
    assert.ok(a);
    const holder = dgram.createSocket('udp4');
    await new Promise<void>((r) => holder.bind(0, '127.0.0.1', () => r()));
    const busy = holder.address().port;
    try {
      const t = new Transports({ listen: [{ proto: 'udp', host: '127.0.0.1', port: busy }] });
      await assert.rejects(t.start(), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'EADDRINUSE');
        assert.equal(e.syscall, 'bind');
        assert.equal(e.message, `bind EADDRINUSE 127.0.0.1:${busy}`);
        return true;
      });
      // not an address of this host
      assert.throws(
        () =>
          new NativeUdpSocket(
            a,
            4,
            '192.0.2.1',
            0,
            65536,
            () => {},
            () => {},
          ),
        (e: NodeJS.ErrnoException) => e.code === 'EADDRNOTAVAIL',
      );
      assert.throws(
        () =>
          new NativeUdpSocket(
            a,
            4,
            'no-ip',
            0,
            65536,
            () => {},
            () => {},
          ),
        (e: NodeJS.ErrnoException) => e.code === 'EINVAL',
      );
    } finally {
      holder.close();
    }
  });

  it('stops delivering once closed, even within a batch, and sends fail after close', async () => {
    let t: Transports | undefined;
    let seen = 0;
    const r = await udpTransports('127.0.0.1', () => {
      seen++;
      if (seen === 3) void t?.close();
    });
    t = r.t;
    const p = await udpPeer(4);
    try {
      // sent before the server reads: one readiness event finds them all
      for (let i = 0; i < 10; i++) p.sock.send(sipMsg(`c${i}`, '', 'UDP'), r.port, '127.0.0.1');
      await waitFor(() => seen >= 3, 3000, 'three');
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(seen, 3);
      assert.equal(t.send({ proto: 'udp', ip: '127.0.0.1', port: p.port }, Buffer.from('x')), false);
    } finally {
      await p.close();
    }
  });

  it('names errnos as node does', () => {
    const e = errnoError(13, 'send', '255.255.255.255:5060', { port: 5060 }) as NodeJS.ErrnoException & {
      port: number;
    };
    assert.equal(e.code, 'EACCES');
    assert.equal(e.errno, -13);
    assert.equal(e.message, 'send EACCES 255.255.255.255:5060');
    assert.equal(e.port, 5060);
  });
});
