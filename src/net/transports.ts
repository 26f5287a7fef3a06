/**
 * UDP and TCP listeners and sending for the SIP core.
 *
 * One `Transports` owns every listen socket and every TCP connection. Each received
 * SIP message (one Buffer per message: a UDP datagram, or one framed message of a TCP
 * stream) goes to a single handler together with where it came from and where it arrived.
 *
 * Sending:
 * - UDP goes out through a listening socket of the target's address family, so the
 *   source port is our SIP port (RFC 3261 §18.1.1 / symmetric response routing);
 * - TCP reuses the connection given by `connId`, else any open connection with the
 *   target's ip:port (incoming or outgoing), else connects (bounded by a connect timeout).
 *   `send` never throws: it returns `false` (or a Promise resolving to `false`) on failure,
 *   and counts the failure in the statistics.
 *
 * TCP connection management: a table of connections with their last activity; one
 * periodic sweep closes idle connections and connections stuck in the middle of a
 * message; a maximum number of connections (excess ones are closed at once and counted);
 * a per-connection cap on unsent bytes (a peer that doesn't read gets closed); framing
 * per `StreamFramer` (which bounds buffered input by the message size limit).
 *
 * Wildcard binds (`0.0.0.0`, `::`): UDP cannot tell which local address a datagram was
 * sent to (no IP_PKTINFO in Node), so `dst.ip` is the bound wildcard address for UDP; for
 * TCP it is the connection's real local address. For Via / Record-Route, use `viaHead()`:
 * a listen socket's `address` is its `advertise` option, else the global
 * `advertisedAddress` for its family, else (wildcard binds only) the first non-internal
 * interface address of that family, else the loopback address.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import type { Endpoint, Proto } from '../core/context.js';
import { detach } from '../sip/util.js';
import { formatHost, formatHostPort, ipFamily, isAnyAddress, normalizeIp, stripBrackets } from './ip.js';
import { errnoError, loadNativeUdp, type NativeUdpAddon, NativeUdpSocket } from './udp-native.js';
import { DEFAULT_MAX_HEADER_SIZE, DEFAULT_MAX_MESSAGE_SIZE, StreamFramer } from './stream-framer.js';

export type NetProto = 'udp' | 'tcp';

/** One configured listen address (SER's `listen=proto:host:port`). */
export interface ListenAddress {
  proto: NetProto;
  /** IPv4 or IPv6 literal (brackets allowed), `0.0.0.0` or `::` for all addresses */
  host: string;
  /** 0 picks a free port (tests) */
  port: number;
  /** address to advertise in Via / Record-Route instead of the bound one (SER's `advertised_address`) */
  advertise?: string;
  /** port to advertise instead of the bound one (SER's `advertised_port`) */
  advertisePort?: number;
}

/** A bound listen socket, as the core sees it (for `myself` checks and Via). */
export interface ListenSocket {
  readonly id: number;
  readonly proto: NetProto;
  /** the bound address, normalised (may be a wildcard) */
  readonly ip: string;
  /** the bound port (the real one when 0 was configured) */
  readonly port: number;
  readonly af: 4 | 6;
  /** true when bound to 0.0.0.0 / :: */
  readonly any: boolean;
  /** address to put in Via / Record-Route (see the module comment) */
  readonly address: string;
  /** port to put in Via / Record-Route */
  readonly advertisedPort: number;
  /** `proto`, `ip`, `port`, `af` as an Endpoint */
  readonly endpoint: Endpoint;
  /** UDP only: the receive buffer size obtained */
  readonly rcvbuf?: number;
}

/** Where a message came from and where it arrived. */
export interface RecvInfo {
  /** the remote address */
  readonly src: Endpoint;
  /** the local address it arrived on (for UDP wildcard binds: the wildcard) */
  readonly dst: Endpoint;
  /** the listen socket it arrived on; for connections we opened: our TCP listen socket of that family */
  readonly socket: ListenSocket;
  /** TCP: the connection, for sending replies over it */
  readonly connId?: number;
}

export interface SendTarget {
  proto: Proto;
  ip: string;
  port: number;
  /** TCP: prefer this connection (a reply goes back over the request's connection) */
  connId?: number;
}

export type MessageHandler = (data: Buffer, info: RecvInfo) => void;

export interface TcpOptions {
  /** close connections without traffic for this long (default 120 000 ms) */
  idleTimeoutMs?: number;
  /** close a connection holding an incomplete message for this long (default 20 000 ms) */
  messageReadTimeoutMs?: number;
  /** maximum simultaneous connections, incoming + outgoing (default 2048) */
  maxConnections?: number;
  /** outgoing connect timeout (default 5000 ms) */
  connectTimeoutMs?: number;
  /** framing limits (default 64 KiB each) */
  maxHeaderSize?: number;
  maxMessageSize?: number;
  /** unsent bytes allowed per connection before it is closed (default 1 MiB) */
  maxWriteBuffer?: number;
  /** after an oversize / framing error: time left to send a reply before the close (default 200 ms) */
  errorCloseDelayMs?: number;
  /** period of the idle sweep (default: a quarter of the smaller timeout, 10 ms – 5 s) */
  sweepIntervalMs?: number;
}

export interface TransportsOptions {
  listen: ListenAddress[];
  /**
   * multi-process model (fork=yes, children>1): bind non-exclusively so node:cluster hands
   * every worker a handle of the one socket the attendant binds (the kernel gives each
   * datagram / accepted connection to one worker)
   */
  shared?: boolean;
  /**
   * UDP through the native addon when it is built (default: yes, unless `shared`: node:cluster
   * shares only its own handles between workers); false: node:dgram always
   */
  udpNative?: boolean;
  /** the receive handler (can also be set later with `setHandler`) */
  onMessage?: MessageHandler;
  /** TCP: a message exceeded a size limit. `partial` is what was received (try a 513 via `send`) */
  onOversize?: (partial: Buffer, info: RecvInfo, limit: 'header' | 'message') => void;
  /** TCP: unframeable input (missing / bad Content-Length); the connection will be closed */
  onFramingError?: (reason: string, partial: Buffer, info: RecvInfo) => void;
  /** asynchronous send failures (already counted in the statistics) */
  onSendError?: (err: Error, target: SendTarget) => void;
  /** unexpected socket errors and handler exceptions, for logging (default: ignored) */
  onError?: (err: unknown, where: string) => void;
  /** UDP receive buffer: raised up to this (SER's `maxbuffer`; DEFAULT_MAX_BUFFER) */
  maxBuffer?: number;
  /** default advertised address per family for wildcard-bound sockets */
  advertisedAddress?: { 4?: string; 6?: string };
  tcp?: TcpOptions;
}

export interface TransportStats {
  udp: {
    msgsIn: number;
    msgsOut: number;
    bytesIn: number;
    bytesOut: number;
    /** CRLF / whitespace-only datagrams dropped */
    keepalives: number;
    sendErrors: number;
  };
  tcp: {
    msgsIn: number;
    msgsOut: number;
    bytesIn: number;
    bytesOut: number;
    /** connections accepted from peers */
    connsAccepted: number;
    /** outgoing connections established */
    connsConnected: number;
    connsClosed: number;
    /** incoming connections closed at once (limit reached) + outgoing ones not attempted */
    connsRefused: number;
    connectFailures: number;
    idleClosed: number;
    readTimeouts: number;
    framingErrors: number;
    oversize: number;
    /** CRLFCRLF pings answered */
    pings: number;
    /** connections closed because the peer did not read */
    writeOverflows: number;
    sendErrors: number;
    /** connections open now */
    current: number;
  };
  /** exceptions thrown by the receive handler */
  handlerErrors: number;
}

/** A TCP connection, as listed by `connections()`. */
export interface ConnectionInfo {
  id: number;
  remote: Endpoint;
  local: Endpoint | undefined;
  outgoing: boolean;
  connected: boolean;
  lastActivity: number;
  bufferedIn: number;
  bufferedOut: number;
}

interface Conn {
  id: number;
  sock: net.Socket;
  remote: Endpoint;
  local: Endpoint | undefined;
  key: string;
  listen: ListenSocket;
  framer: StreamFramer;
  outgoing: boolean;
  connected: boolean;
  closing: boolean;
  lastActivity: number;
  /** when the framer started holding an incomplete message (0: nothing pending) */
  partialSince: number;
  info: RecvInfo | undefined;
  /** outgoing: resolves true once connected, false if the connect failed */
  ready: Promise<boolean> | undefined;
}

/** A bound UDP socket: node:dgram's, or the native addon's (src/net/udp-native.ts). */
interface UdpListen {
  ls: ListenSocket;
  sock: dgram.Socket | undefined;
  nat: NativeUdpSocket | undefined;
}

interface TcpListen {
  ls: ListenSocket;
  server: net.Server;
}

const CRLF = Buffer.from('\r\n');
/** the largest UDP payloads (IPv4: 65535 less the IP and UDP headers; IPv6: less UDP's) */
const UDP4_MAX_PAYLOAD = 65_507;
const UDP6_MAX_PAYLOAD = 65_527;
/** how long a destination's confirmed send lets later sends go without a callback */
const UDP_CONFIRM_MS = 1000;
/** past this many confirmed destinations the set starts again (each costs one watched send) */
const UDP_CONFIRMED_MAX = 16_384;

function remoteKey(ip: string, port: number): string {
  return `${ip}|${port}`;
}

/** True for datagrams made only of CR, LF, SP, HT or NUL (NAT keep-alives). */
export function isKeepAliveDatagram(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c !== 0x0d && c !== 0x0a && c !== 0x20 && c !== 0x09 && c !== 0) return false;
  }
  return true;
}

/** First non-internal interface address of the family, else loopback. */
export function firstInterfaceAddress(af: 4 | 6): string {
  const ifs = os.networkInterfaces();
  for (const list of Object.values(ifs)) {
    for (const a of list ?? []) {
      const fam = a.family === 'IPv4' || (a.family as unknown) === 4 ? 4 : 6;
      if (fam === af && !a.internal && !(af === 6 && a.address.toLowerCase().startsWith('fe80')))
        return a.address;
    }
  }
  return af === 4 ? '127.0.0.1' : '::1';
}

function newStats(): TransportStats {
  return {
    udp: { msgsIn: 0, msgsOut: 0, bytesIn: 0, bytesOut: 0, keepalives: 0, sendErrors: 0 },
    tcp: {
      msgsIn: 0,
      msgsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      connsAccepted: 0,
      connsConnected: 0,
      connsClosed: 0,
      connsRefused: 0,
      connectFailures: 0,
      idleClosed: 0,
      readTimeouts: 0,
      framingErrors: 0,
      oversize: 0,
      pings: 0,
      writeOverflows: 0,
      sendErrors: 0,
      current: 0,
    },
    handlerErrors: 0,
  };
}

export class Transports {
  private readonly opts: TransportsOptions;
  private handler: MessageHandler;
  private readonly tcpOpts: Required<TcpOptions>;
  private readonly udp: UdpListen[] = [];
  private readonly tcp: TcpListen[] = [];
  private readonly sockets: ListenSocket[] = [];
  private readonly conns = new Map<number, Conn>();
  private readonly byRemote = new Map<string, Conn>();
  private readonly st = newStats();
  private nextConnId = 1;
  private nextSocketId = 1;
  private sweepTimer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;

  constructor(opts: TransportsOptions) {
    this.opts = opts;
    this.handler = opts.onMessage ?? (() => {});
    const t = opts.tcp ?? {};
    const idle = t.idleTimeoutMs ?? 120_000;
    const readTo = t.messageReadTimeoutMs ?? 20_000;
    this.tcpOpts = {
      idleTimeoutMs: idle,
      messageReadTimeoutMs: readTo,
      maxConnections: t.maxConnections ?? 2048,
      connectTimeoutMs: t.connectTimeoutMs ?? 5000,
      maxHeaderSize: t.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE,
      maxMessageSize: t.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      maxWriteBuffer: t.maxWriteBuffer ?? 1024 * 1024,
      errorCloseDelayMs: t.errorCloseDelayMs ?? 200,
      sweepIntervalMs:
        t.sweepIntervalMs ?? Math.min(5000, Math.max(10, Math.floor(Math.min(idle, readTo) / 4))),
    };
  }

  /** Sets the receive handler (one for all sockets). */
  setHandler(h: MessageHandler): void {
    this.handler = h;
  }

  /** Binds every listen address. Rejects (after closing what was bound) if one fails. */
  async start(): Promise<void> {
    if (this.started) throw new Error('Transports already started');
    this.started = true;
    try {
      for (const la of this.opts.listen) {
        if (la.proto === 'udp') await this.bindUdp(la);
        else if (la.proto === 'tcp') await this.bindTcp(la);
        else throw new TypeError(`unsupported listen protocol ${String((la as ListenAddress).proto)}`);
      }
    } catch (e) {
      await this.close();
      throw e;
    }
    this.sweepTimer = setInterval(() => this.sweep(), this.tcpOpts.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** What the UDP sockets run on: the native addon (src/net/udp-native.ts) or node:dgram. */
  get udpImpl(): 'native' | 'dgram' | undefined {
    const u = this.udp[0];
    return u === undefined ? undefined : u.nat ? 'native' : 'dgram';
  }

  /** The bound listen sockets, in configuration order. */
  get listening(): readonly ListenSocket[] {
    return this.sockets;
  }

  /** The first listen socket of this protocol and family. */
  socketFor(proto: Proto, af: 4 | 6): ListenSocket | undefined {
    for (const s of this.sockets) if (s.proto === proto && s.af === af) return s;
    return undefined;
  }

  /**
   * `SIP/2.0/<PROTO> <sent-by>;branch=`, the start of our Via (and, through rr, our
   * Record-Route) for a message sent to `target`: the listen socket of the target's protocol
   * and family, with its advertised address; undefined when no socket can send there. Made
   * once per protocol and family: each forwarded request and each branch needs one. SER
   * writes no port for the default one (seed 003 Ex 2-11).
   */
  viaHead(target: { proto: Proto; ip: string }): string | undefined {
    const af = ipFamily(target.ip);
    if (af === 0) return undefined;
    const heads = af === 4 ? this.viaHeads4 : this.viaHeads6;
    let h = heads.get(target.proto);
    if (h !== undefined) return h;
    const s = this.socketFor(target.proto, af);
    if (!s) return undefined;
    const hp =
      s.advertisedPort === 5060 && target.proto !== 'tls'
        ? formatHost(s.address)
        : formatHostPort(s.address, s.advertisedPort);
    h = `SIP/2.0/${target.proto.toUpperCase()} ${hp};branch=`;
    heads.set(target.proto, h);
    return h;
  }

  private readonly viaHeads4 = new Map<Proto, string>();
  private readonly viaHeads6 = new Map<Proto, string>();

  /**
   * SER's `myself` check for an address: true when `host` (an IP literal) and `port`
   * are one of our listen sockets (bound, advertised, or — for wildcard binds — a local
   * interface address). `proto` restricts the check when given.
   */
  isLocal(host: string, port: number, proto?: Proto): boolean {
    const af = ipFamily(host);
    if (af === 0) return false;
    const ip = normalizeIp(host);
    for (const s of this.sockets) {
      if (proto && s.proto !== proto) continue;
      if (s.port !== port && s.advertisedPort !== port) continue;
      if (ip === s.ip || ip === normalizeIp(s.address)) return true;
      if (s.any && s.af === af && isLocalInterfaceAddress(ip)) return true;
    }
    return false;
  }

  /** A snapshot of the counters (a plain object, safe to serialise). */
  getStats(): TransportStats {
    const s = this.st;
    return {
      udp: { ...s.udp },
      tcp: { ...s.tcp, current: this.conns.size },
      handlerErrors: s.handlerErrors,
    };
  }

  /** The open TCP connections. */
  connections(): ConnectionInfo[] {
    const out: ConnectionInfo[] = [];
    for (const c of this.conns.values()) {
      out.push({
        id: c.id,
        remote: c.remote,
        local: c.local,
        outgoing: c.outgoing,
        connected: c.connected,
        lastActivity: c.lastActivity,
        bufferedIn: c.framer.buffered,
        bufferedOut: c.sock.writableLength,
      });
    }
    return out;
  }

  /**
   * Sends one message. UDP: `true` once handed to the socket (later failures are counted
   * and reported to `onSendError`). TCP over an open connection: `true`/`false` at once;
   * when a connection must be opened: a Promise resolving once connected (or failed).
   * Never throws.
   */
  send(target: SendTarget, data: Buffer, from?: ListenSocket): boolean | Promise<boolean> {
    try {
      if (target.proto === 'udp') return this.sendUdp(target, data, from);
      if (target.proto === 'tcp') return this.sendTcp(target, data, from);
    } catch (e) {
      this.opts.onError?.(e, 'send');
    }
    if (target.proto === 'tcp') this.st.tcp.sendErrors++;
    else this.st.udp.sendErrors++;
    return false;
  }

  /** Closes one TCP connection (e.g. after a fatal parse error). */
  closeConnection(connId: number): boolean {
    const c = this.conns.get(connId);
    if (!c) return false;
    c.sock.destroy();
    return true;
  }

  /** Closes every socket and connection; resolves when all are closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const c of this.conns.values()) c.sock.destroy();
    const waits: Promise<void>[] = [];
    for (const t of this.tcp) {
      waits.push(new Promise<void>((resolve) => t.server.close(() => resolve())));
    }
    for (const u of this.udp) {
      u.nat?.close();
      const sock = u.sock;
      if (!sock) continue;
      waits.push(
        new Promise<void>((resolve) => {
          try {
            sock.close(() => resolve());
          } catch {
            resolve();
          }
        }),
      );
    }
    await Promise.all(waits);
  }

  // ---------------------------------------------------------------- binding

  private makeListenSocket(
    la: ListenAddress,
    ip: string,
    port: number,
    af: 4 | 6,
    rcvbuf?: number,
  ): ListenSocket {
    const any = isAnyAddress(ip);
    const address = la.advertise
      ? stripBrackets(la.advertise)
      : any
        ? (this.opts.advertisedAddress?.[af] ?? firstInterfaceAddress(af))
        : ip;
    const ls: ListenSocket = {
      id: this.nextSocketId++,
      proto: la.proto,
      ip,
      port,
      af,
      any,
      address,
      advertisedPort: la.advertisePort ?? port,
      endpoint: { proto: la.proto, ip, port, af },
      ...(rcvbuf !== undefined ? { rcvbuf } : {}),
    };
    this.sockets.push(ls);
    // a new socket may be the one a protocol and family now leave from
    this.viaHeads4.clear();
    this.viaHeads6.clear();
    return ls;
  }

  private hostOf(la: ListenAddress): { ip: string; af: 4 | 6 } {
    const ip = normalizeIp(la.host, false);
    const af = ipFamily(ip);
    if (af === 0) throw new TypeError(`listen address is not an IP literal: ${la.host}`);
    return { ip, af };
  }

  private async bindUdp(la: ListenAddress): Promise<void> {
    const { ip, af } = this.hostOf(la);
    const addon = this.opts.udpNative === false || this.opts.shared ? undefined : loadNativeUdp();
    if (addon) {
      this.bindUdpNative(addon, la, ip, af);
      return;
    }
    const sock = dgram.createSocket({
      type: af === 6 ? 'udp6' : 'udp4',
      ipv6Only: af === 6,
      lookup: literalLookup,
    });
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      sock.once('error', onErr);
      sock.bind({ address: ip, port: la.port, exclusive: !this.opts.shared }, () => {
        sock.off('error', onErr);
        resolve();
      });
    }).catch((e: unknown) => {
      try {
        sock.close();
      } catch {
        /* already closed */
      }
      throw e;
    });
    const rcvbuf = raiseRecvBuffer(sock, this.opts.maxBuffer ?? DEFAULT_MAX_BUFFER);
    const ls = this.makeListenSocket(la, ip, sock.address().port, af, rcvbuf);
    this.udp.push({ ls, sock, nat: undefined });
    sock.on('error', (e) => this.opts.onError?.(e, `udp ${formatHostPort(ip, ls.port)}`));
    const receive = this.udpReceiver(ls);
    sock.on('message', (msg, rinfo) => receive(msg, rinfo.address, rinfo.port));
  }

  private bindUdpNative(addon: NativeUdpAddon, la: ListenAddress, ip: string, af: 4 | 6): void {
    let ls: ListenSocket | undefined;
    // set once the socket is known (no datagram is read before this function returns)
    let receive: (msg: Buffer, ip: string, port: number) => void = () => {};
    let nat: NativeUdpSocket;
    try {
      nat = new NativeUdpSocket(
        addon,
        af,
        ip,
        la.port,
        this.opts.maxBuffer ?? DEFAULT_MAX_BUFFER,
        (msg, rip, rport) => receive(msg, rip, rport),
        (e) => this.opts.onError?.(e, `udp ${formatHostPort(ip, ls?.port ?? la.port)}`),
      );
    } catch (e) {
      // as node:dgram words it: "bind EADDRINUSE 127.0.0.1:5060"
      const x = e as NodeJS.ErrnoException;
      if (typeof x.errno === 'number' && x.syscall)
        throw errnoError(-x.errno, x.syscall, formatHostPort(ip, la.port), { address: ip, port: la.port });
      throw e;
    }
    ls = this.makeListenSocket(la, ip, nat.port, af, nat.rcvbuf);
    this.udp.push({ ls, sock: undefined, nat });
    receive = this.udpReceiver(ls);
  }

  /** What both UDP paths do with a datagram received on `ls`. */
  private udpReceiver(ls: ListenSocket): (msg: Buffer, ip: string, port: number) => void {
    const dst = ls.endpoint;
    const af = ls.af;
    const proto = 'udp' as const;
    return (msg, ip, port) => {
      const st = this.st.udp;
      // keep-alives: only CR/LF/whitespace (cheap test: real messages start with a letter)
      const c0 = msg.length ? msg[0] : 0;
      if (c0 <= 0x20 && isKeepAliveDatagram(msg)) {
        st.keepalives++;
        return;
      }
      st.msgsIn++;
      st.bytesIn += msg.length;
      const info: RecvInfo = { src: { ip, port, proto, af }, dst, socket: ls };
      try {
        this.handler(msg, info);
      } catch (e) {
        this.st.handlerErrors++;
        this.opts.onError?.(e, 'handler');
      }
    };
  }

  private async bindTcp(la: ListenAddress): Promise<void> {
    const { ip, af } = this.hostOf(la);
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      server.once('error', onErr);
      server.listen({ host: ip, port: la.port, ipv6Only: af === 6, exclusive: !this.opts.shared }, () => {
        server.off('error', onErr);
        resolve();
      });
    });
    const addr = server.address() as net.AddressInfo;
    const ls = this.makeListenSocket(la, ip, addr.port, af);
    this.tcp.push({ ls, server });
    server.on('error', (e) => this.opts.onError?.(e, `tcp ${formatHostPort(ip, ls.port)}`));
    server.on('connection', (sock) => this.accept(sock, ls));
  }

  // ---------------------------------------------------------------- TCP connections

  private accept(sock: net.Socket, ls: ListenSocket): void {
    if (this.closed || this.conns.size >= this.tcpOpts.maxConnections) {
      this.st.tcp.connsRefused++;
      sock.on('error', () => {});
      sock.destroy();
      return;
    }
    const rip = sock.remoteAddress;
    const rport = sock.remotePort;
    const lip = sock.localAddress;
    const lport = sock.localPort;
    if (!rip || rport === undefined || !lip || lport === undefined) {
      sock.on('error', () => {});
      sock.destroy();
      return;
    }
    const raf = ipFamily(rip) === 6 ? 6 : 4;
    const remote: Endpoint = { proto: 'tcp', ip: normalizeIp(rip), port: rport, af: raf };
    const local: Endpoint = { proto: 'tcp', ip: normalizeIp(lip), port: lport, af: ls.af };
    const c = this.addConn(sock, remote, ls, false);
    c.connected = true;
    c.local = local;
    c.info = { src: remote, dst: local, socket: ls, connId: c.id };
    this.st.tcp.connsAccepted++;
  }

  private addConn(sock: net.Socket, remote: Endpoint, ls: ListenSocket, outgoing: boolean): Conn {
    const c: Conn = {
      id: this.nextConnId++,
      sock,
      remote,
      local: undefined,
      key: remoteKey(remote.ip, remote.port),
      listen: ls,
      framer: new StreamFramer({
        maxHeaderSize: this.tcpOpts.maxHeaderSize,
        maxMessageSize: this.tcpOpts.maxMessageSize,
      }),
      outgoing,
      connected: false,
      closing: false,
      lastActivity: Date.now(),
      partialSince: 0,
      info: undefined,
      ready: undefined,
    };
    this.conns.set(c.id, c);
    this.byRemote.set(c.key, c);
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => this.onData(c, chunk));
    sock.on('error', (e) => {
      if (c.connected) this.opts.onError?.(e, `tcp connection ${c.id}`);
    });
    sock.on('close', () => this.removeConn(c));
    return c;
  }

  private removeConn(c: Conn): void {
    if (!this.conns.delete(c.id)) return;
    if (this.byRemote.get(c.key) === c) this.byRemote.delete(c.key);
    if (c.connected) this.st.tcp.connsClosed++;
  }

  private onData(c: Conn, chunk: Buffer): void {
    if (c.closing) return;
    const now = Date.now();
    c.lastActivity = now;
    const st = this.st.tcp;
    st.bytesIn += chunk.length;
    const events = c.framer.push(chunk);
    const info = c.info!;
    for (const ev of events) {
      switch (ev.type) {
        case 'message':
          st.msgsIn++;
          try {
            this.handler(ev.data, info);
          } catch (e) {
            this.st.handlerErrors++;
            this.opts.onError?.(e, 'handler');
          }
          break;
        case 'ping':
          st.pings++;
          if (c.sock.writable) c.sock.write(CRLF);
          break;
        case 'oversize':
          st.oversize++;
          this.closeAfterError(c);
          try {
            this.opts.onOversize?.(ev.partial, info, ev.limit);
          } catch (e) {
            this.opts.onError?.(e, 'onOversize');
          }
          break;
        case 'error':
          st.framingErrors++;
          this.closeAfterError(c);
          try {
            this.opts.onFramingError?.(ev.reason, ev.partial, info);
          } catch (e) {
            this.opts.onError?.(e, 'onFramingError');
          }
          break;
      }
    }
    if (c.framer.buffered > 0) {
      if (c.partialSince === 0) c.partialSince = now;
    } else {
      c.partialSince = 0;
    }
  }

  /** Stop reading, give the core a moment to send a reply, then end and destroy. */
  private closeAfterError(c: Conn): void {
    if (c.closing) return;
    c.closing = true;
    c.sock.pause();
    const delay = this.tcpOpts.errorCloseDelayMs;
    setTimeout(() => {
      if (c.sock.destroyed) return;
      c.sock.end();
      setTimeout(() => c.sock.destroy(), delay).unref();
    }, delay).unref();
  }

  private sweep(): void {
    const now = Date.now();
    const { idleTimeoutMs, messageReadTimeoutMs } = this.tcpOpts;
    for (const c of this.conns.values()) {
      if (!c.connected) continue; // the connect timeout covers these
      if (now - c.lastActivity >= idleTimeoutMs) {
        this.st.tcp.idleClosed++;
        c.sock.destroy();
      } else if (c.partialSince !== 0 && now - c.partialSince >= messageReadTimeoutMs) {
        this.st.tcp.readTimeouts++;
        c.sock.destroy();
      }
    }
  }

  private usable(c: Conn | undefined): c is Conn {
    return !!c && !c.sock.destroyed && c.sock.writable;
  }

  private write(c: Conn, data: Buffer, target: SendTarget): boolean | Promise<boolean> {
    const st = this.st.tcp;
    if (c.sock.writableLength + data.length > this.tcpOpts.maxWriteBuffer) {
      st.writeOverflows++;
      st.sendErrors++;
      c.sock.destroy();
      this.opts.onSendError?.(new Error('TCP write buffer full: peer not reading'), target);
      return false;
    }
    c.sock.write(data);
    c.lastActivity = Date.now();
    st.msgsOut++;
    st.bytesOut += data.length;
    return c.connected ? true : (c.ready ?? false);
  }

  private readonly udpSent = (err: (Error & { address?: string; port?: number }) | null): void => {
    if (!err) return;
    this.st.udp.sendErrors++;
    this.opts.onSendError?.(err, { proto: 'udp', ip: err.address ?? '', port: err.port ?? 0 });
  };

  /**
   * Destination IPs whose last send with a completion callback succeeded, and when (ms).
   * Node reports a UDP send's outcome only through its callback, which costs a nextTick and
   * a call into JS per datagram even when the kernel took it at once (about 2 µs, a tenth of
   * a bare Node loop answering OPTIONS). A destination confirmed within the last second is
   * sent to without one; at least one send per destination and second still has it, and a
   * failure forgets the destination, so all its later sends are watched again: a destination
   * that starts failing has its errors counted and reported after at most a second.
   */
  private readonly udpConfirmed = new Map<string, number>();

  private confirmingSend(sock: dgram.Socket, data: Buffer, port: number, ip: string): void {
    if (this.udpConfirmed.size >= UDP_CONFIRMED_MAX) this.udpConfirmed.clear();
    sock.send(data, port, ip, (err) => {
      if (err) {
        this.udpConfirmed.delete(ip);
        this.udpSent(err);
      } else {
        // a copy: the address may be a slice of a message (a Via host)
        this.udpConfirmed.set(detach(ip), Date.now());
      }
    });
  }

  private sendUdp(target: SendTarget, data: Buffer, from?: ListenSocket): boolean {
    const st = this.st.udp;
    // IPv6 literals are normalised (brackets, IPv4-mapped → IPv4: our v6 sockets are v6-only)
    const ip = target.ip.includes(':') ? normalizeIp(target.ip) : target.ip;
    const af = ipFamily(ip);
    let u: UdpListen | undefined;
    if (!this.closed && af !== 0 && target.port > 0 && target.port < 65536) {
      for (const x of this.udp) {
        if (x.ls.af !== af) continue;
        if (!from || x.ls === from) {
          u = x;
          break;
        }
      }
      if (!u && from) for (const x of this.udp) if (x.ls.af === af) u ??= x;
    }
    if (!u) {
      st.sendErrors++;
      return false;
    }
    if (data.length > (af === 4 ? UDP4_MAX_PAYLOAD : UDP6_MAX_PAYLOAD)) {
      // the kernel would refuse it (EMSGSIZE): counted here, whatever the destination
      st.sendErrors++;
      const e = Object.assign(new Error(`send EMSGSIZE ${formatHostPort(ip, target.port)}`), {
        code: 'EMSGSIZE',
        address: ip,
        port: target.port,
      });
      this.opts.onSendError?.(e, { proto: 'udp', ip, port: target.port });
      return false;
    }
    if (u.nat) {
      // the kernel's answer is known at once: counted and reported here, and `false`
      const r = u.nat.send(data, ip, target.port);
      if (r !== 0) {
        this.udpSent(
          errnoError(-r, 'send', formatHostPort(ip, target.port), { address: ip, port: target.port }),
        );
        return false;
      }
    } else if (u.sock) {
      const okAt = this.udpConfirmed.get(ip);
      if (okAt !== undefined && Date.now() - okAt < UDP_CONFIRM_MS) u.sock.send(data, target.port, ip);
      else this.confirmingSend(u.sock, data, target.port, ip);
    }
    st.msgsOut++;
    st.bytesOut += data.length;
    return true;
  }

  private sendTcp(target: SendTarget, data: Buffer, from?: ListenSocket): boolean | Promise<boolean> {
    const st = this.st.tcp;
    if (this.closed) {
      st.sendErrors++;
      return false;
    }
    if (target.connId !== undefined) {
      const c = this.conns.get(target.connId);
      if (this.usable(c)) return this.write(c, data, target);
    }
    const af = ipFamily(target.ip);
    if (af === 0 || !(target.port > 0 && target.port < 65536)) {
      st.sendErrors++;
      return false;
    }
    const ip = normalizeIp(target.ip);
    const existing = this.byRemote.get(remoteKey(ip, target.port));
    if (this.usable(existing)) return this.write(existing, data, target);
    const ls = from && from.proto === 'tcp' && from.af === af ? from : this.socketFor('tcp', af);
    if (!ls) {
      st.sendErrors++;
      return false;
    }
    if (this.conns.size >= this.tcpOpts.maxConnections) {
      st.connsRefused++;
      st.sendErrors++;
      return false;
    }
    return this.connect(ip, target.port, af, ls, data, target);
  }

  private connect(
    ip: string,
    port: number,
    af: 4 | 6,
    ls: ListenSocket,
    data: Buffer,
    target: SendTarget,
  ): boolean | Promise<boolean> {
    const st = this.st.tcp;
    const opts: net.NetConnectOpts = { host: ip, port, family: af };
    if (!ls.any) opts.localAddress = ls.ip;
    const sock = net.connect(opts);
    const remote: Endpoint = { proto: 'tcp', ip, port, af };
    const c = this.addConn(sock, remote, ls, true);
    c.ready = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        sock.destroy(new Error(`TCP connect timeout to ${formatHostPort(ip, port)}`));
      }, this.tcpOpts.connectTimeoutMs);
      timer.unref();
      const onFail = (e?: Error) => {
        clearTimeout(timer);
        sock.off('connect', onConnect);
        this.removeConn(c);
        st.connectFailures++;
        st.sendErrors++;
        this.opts.onSendError?.(e ?? new Error('TCP connection closed before connect'), target);
        resolve(false);
      };
      const onClose = () => onFail();
      const onError = (e: Error) => {
        sock.off('close', onClose);
        onFail(e);
      };
      const onConnect = () => {
        clearTimeout(timer);
        sock.off('error', onError);
        sock.off('close', onClose);
        const lip = sock.localAddress ?? ls.ip;
        c.connected = true;
        c.lastActivity = Date.now();
        c.local = { proto: 'tcp', ip: normalizeIp(lip), port: sock.localPort ?? 0, af };
        c.info = { src: remote, dst: c.local, socket: ls, connId: c.id };
        st.connsConnected++;
        resolve(true);
      };
      sock.once('connect', onConnect);
      sock.once('error', onError);
      sock.once('close', onClose);
    });
    return this.write(c, data, target);
  }
}

/** Raises SO_RCVBUF towards `max` (halving on refusal); returns the size obtained. */
/**
 * dgram's lookup for our sends: every address is an IP literal already (sendUdp normalises
 * it), so answer at once. dns.lookup would answer a literal on the next tick: a deferred
 * callback per datagram sent.
 */
function literalLookup(
  address: string,
  options: unknown,
  cb?: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const done = (typeof options === 'function' ? options : cb) as (
    err: NodeJS.ErrnoException | null,
    address: string,
    family: number,
  ) => void;
  // a bracketed IPv6 reference is not an address the socket can send to
  const af = address.charCodeAt(0) === 91 ? 0 : ipFamily(address);
  if (af === 0) {
    const e: NodeJS.ErrnoException = new Error(`not an IP address: ${address}`);
    e.code = 'EINVAL';
    done(e, address, 0);
    return;
  }
  done(null, address, af);
}

/**
 * `maxbuffer` when the script gives none: 2 MiB where SER had 256 KiB. A garbage collection
 * can hold the event loop for 5-15 ms; a burst arriving then (12,000 datagrams/s of a call
 * load at 2,000 cps, 1.5-2.5 KB of kernel memory each) overflowed 256 KiB (512 KiB once the
 * kernel doubles it) and the kernel dropped what a phone then had to retransmit (an ACK only
 * once the UAS repeats its 200, 500 ms on). The kernel caps it at net.core.rmem_max and
 * uses the memory only while datagrams wait (docs/performance.md, "Receive buffer").
 */
export const DEFAULT_MAX_BUFFER = 2 * 1024 * 1024;

function raiseRecvBuffer(sock: dgram.Socket, max: number): number | undefined {
  let cur: number | undefined;
  try {
    cur = sock.getRecvBufferSize();
  } catch {
    return undefined;
  }
  for (let size = max; size > cur; size = Math.floor(size / 2)) {
    try {
      sock.setRecvBufferSize(size);
      return sock.getRecvBufferSize();
    } catch {
      /* try smaller */
    }
  }
  return cur;
}

let localAddrCache: { at: number; set: Set<string> } | undefined;

/** True when `ip` (normalised) is configured on a local interface (cached for 10 s). */
function isLocalInterfaceAddress(ip: string): boolean {
  const now = Date.now();
  if (!localAddrCache || now - localAddrCache.at > 10_000) {
    const set = new Set<string>();
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) set.add(normalizeIp(a.address));
    }
    localAddrCache = { at: now, set };
  }
  return localAddrCache.set.has(ip);
}
