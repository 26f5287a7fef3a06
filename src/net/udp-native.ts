/**
 * UDP through the optional native addon (native/udp.c, compiled by native/build.sh, which
 * `npm run build` runs): recvmmsg(2) batches handed to one JavaScript call, and sendto(2) with
 * its errno returned at once, instead of node:dgram's per-datagram C++ wrapping
 * (docs/performance.md, rule 15).
 * `loadNativeUdp()` answers undefined when the addon was not built or does not load; the
 * transports then use node:dgram. SER_UDP_NATIVE=0 in the environment turns it off.
 */
import { createRequire } from 'node:module';
import { getSystemErrorName } from 'node:util';

export interface NativeUdpAddon {
  open(af: number, ip: string, port: number, rcvbufMax: number): [number, number, number];
  send(fd: number, af: number, data: Uint8Array, ip: string, port: number): number;
  start(fd: number, buf: ArrayBuffer, meta: Int32Array, cb: (count: number) => void): object;
  stop(handle: object): void;
  close(fd: number): void;
  readonly BATCH: number;
  readonly SLOT: number;
  readonly META: number;
  readonly TEXT: number;
}

let addon: NativeUdpAddon | null | undefined;
let loadError: string | undefined;

/** The addon, or undefined (then `nativeUdpUnavailable()` says why). */
export function loadNativeUdp(): NativeUdpAddon | undefined {
  if (addon !== undefined) return addon ?? undefined;
  addon = null;
  if (process.env.SER_UDP_NATIVE === '0') {
    loadError = 'turned off by SER_UDP_NATIVE=0';
    return undefined;
  }
  try {
    // dist/src/net/ -> native/
    const req = createRequire(import.meta.url);
    addon = req('../../../native/ser_udp.node') as NativeUdpAddon;
  } catch (e) {
    loadError = e instanceof Error ? e.message.split('\n')[0] : String(e);
  }
  return addon ?? undefined;
}

/** Why the addon is not used (for the start-up log), or undefined when it is loaded. */
export function nativeUdpUnavailable(): string | undefined {
  loadNativeUdp();
  return loadError;
}

/**
 * A bound UDP socket read and written through the addon. `onMessage` gets each datagram in
 * a Buffer of its own (a copy out of the shared receive buffer, which the next batch
 * overwrites; the parsed message keeps it).
 */
export class NativeUdpSocket {
  readonly port: number;
  readonly rcvbuf: number;
  private readonly a: NativeUdpAddon;
  private readonly fd: number;
  private readonly af: 4 | 6;
  private handle: object | undefined;
  private readonly big: Buffer;
  private readonly meta: Int32Array;
  private readonly metaBytes: Uint8Array;
  /** IPv4 sources as text, by their four bytes read as one Int32 (peers are few) */
  private readonly v4Text = new Map<number, string>();

  constructor(
    a: NativeUdpAddon,
    af: 4 | 6,
    ip: string,
    port: number,
    rcvbufMax: number,
    onMessage: (msg: Buffer, ip: string, port: number) => void,
    onError: (e: Error) => void,
  ) {
    this.a = a;
    this.af = af;
    const [fd, bound, rcvbuf] = a.open(af, ip, port, rcvbufMax);
    this.fd = fd;
    this.port = bound;
    this.rcvbuf = rcvbuf;
    const ab = new ArrayBuffer(a.BATCH * (a.SLOT + a.TEXT));
    this.big = Buffer.from(ab);
    this.meta = new Int32Array(a.BATCH * a.META);
    this.metaBytes = new Uint8Array(this.meta.buffer);
    const { SLOT, META, BATCH, TEXT } = a;
    const text0 = BATCH * SLOT;
    const big = this.big;
    const meta = this.meta;
    const batch = (count: number): void => {
      if (count < 0) {
        onError(errnoError(-count, 'recvmmsg'));
        return;
      }
      for (let i = 0; i < count; i++) {
        // closed by a handler earlier in this batch: the rest is dropped, as unread datagrams are
        if (this.handle === undefined) return;
        const m = i * META;
        const len = meta[m];
        const msg = Buffer.allocUnsafe(len);
        big.copy(msg, 0, i * SLOT, i * SLOT + len);
        const t = text0 + i * TEXT;
        const ip = meta[m + 2] === 6 ? big.toString('latin1', t, t + meta[m + 4]) : this.ipv4(meta[m + 4], m);
        onMessage(msg, ip, meta[m + 1]);
      }
    };
    try {
      this.handle = a.start(fd, ab, this.meta, batch);
    } catch (e) {
      a.close(fd);
      throw e;
    }
  }

  private ipv4(key: number, m: number): string {
    let s = this.v4Text.get(key);
    if (s === undefined) {
      const b = this.metaBytes;
      const o = (m + 4) * 4;
      s = `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
      if (this.v4Text.size >= 4096) this.v4Text.clear();
      this.v4Text.set(key, s);
    }
    return s;
  }

  /** Sends at once; 0 or a negative errno (EAGAIN: the socket buffer was full, dropped). */
  send(data: Uint8Array, ip: string, port: number): number {
    if (this.handle === undefined) return -9; // EBADF
    return this.a.send(this.fd, this.af, data, ip, port);
  }

  close(): void {
    if (this.handle === undefined) return;
    const h = this.handle;
    this.handle = undefined;
    this.a.stop(h);
  }
}

/**
 * An Error like node's system errors for a positive errno: code, errno, syscall, and the
 * message node:dgram would give ("send EACCES 255.255.255.255:5060").
 */
export function errnoError(
  errno: number,
  syscall: string,
  where?: string,
  extra?: Record<string, unknown>,
): Error {
  let code: string;
  try {
    code = getSystemErrorName(-errno);
  } catch {
    code = `E${errno}`;
  }
  const msg = where === undefined ? `${syscall} ${code}` : `${syscall} ${code} ${where}`;
  return Object.assign(new Error(msg), { code, errno: -errno, syscall }, extra);
}
