/** Shared test helpers for the transport tests: bounded waits and loopback clients. */
import dgram from 'node:dgram';
import net from 'node:net';

/** Polls `cond` every 5 ms until true; rejects after `timeoutMs` (bounded). */
export async function waitFor(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    if (cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`gave up waiting for ${what}`);
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A SIP-looking message with a correct Content-Length. */
export function sipMsg(tag: string, body = '', proto = 'TCP'): string {
  return (
    `OPTIONS sip:${tag}@127.0.0.1 SIP/2.0\r\n` +
    `Via: SIP/2.0/${proto} 127.0.0.1:5999;branch=z9hG4bK-${tag}\r\n` +
    `Call-ID: ${tag}@test\r\n` +
    'CSeq: 1 OPTIONS\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    '\r\n' +
    body
  );
}

export interface TcpClient {
  sock: net.Socket;
  received: () => string;
  closed: () => boolean;
  whenClosed: Promise<void>;
}

/** Connects to 127.0.0.1 (or `host`) and records what it receives. */
export async function tcpClient(port: number, host = '127.0.0.1'): Promise<TcpClient> {
  const sock = net.connect({ host, port });
  let data = '';
  let isClosed = false;
  sock.on('data', (d) => {
    data += d.toString('latin1');
  });
  sock.on('error', () => {});
  const whenClosed = new Promise<void>((resolve) =>
    sock.on('close', () => {
      isClosed = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  return { sock, received: () => data, closed: () => isClosed, whenClosed };
}

export interface UdpPeer {
  sock: dgram.Socket;
  port: number;
  got: { data: string; port: number; address: string }[];
  close: () => Promise<void>;
}

export async function udpPeer(af: 4 | 6 = 4): Promise<UdpPeer> {
  const sock = dgram.createSocket({ type: af === 6 ? 'udp6' : 'udp4' });
  const got: UdpPeer['got'] = [];
  sock.on('message', (m, r) => got.push({ data: m.toString('latin1'), port: r.port, address: r.address }));
  await new Promise<void>((resolve) => sock.bind(0, af === 6 ? '::1' : '127.0.0.1', () => resolve()));
  return {
    sock,
    port: sock.address().port,
    got,
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

/** Whether an IPv6 loopback socket can be bound here. */
export async function ipv6Available(): Promise<boolean> {
  const s = dgram.createSocket({ type: 'udp6', ipv6Only: true });
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, '::1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    try {
      s.close();
    } catch {
      /* not bound */
    }
  }
}
