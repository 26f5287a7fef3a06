/**
 * The worker-to-worker channel of the multi-process model: every worker listens on a
 * unix-domain stream socket `<dir>/w<k>.sock` and opens one connection to each peer
 * when it first has something for it. Frames are length-prefixed binary, so the hot path
 * (a datagram steered to its owner) costs one write and no JSON:
 *
 *   u32 length of what follows | u8 type | body
 *   type 0 hello   u16 sender index
 *   type 1 steer   u16 listen-socket index, u16 source port, u8 family, u8 ip length, ip, datagram
 *   type 2 event   JSON {topic, payload}: a part of a snapshot (no answer)
 *   type 3 snap?   JSON {topic}: ask for a snapshot, answered with type 2 events
 *   type 4 request JSON {id, topic, payload}: a question to the peer owning some state
 *   type 5 answer  JSON {id, result}
 *   type 6 event!  u32 sequence, JSON {topic, payload}: an event the sender waits to see applied
 *   type 7 applied u32 sequence: the answer to type 6, once the handler has finished
 *
 * A peer that is down (crashed, restarting) loses what is sent to it: UDP senders
 * retransmit, and a restarted worker asks a peer for a snapshot of replicated state.
 */
import { chownSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

const T_HELLO = 0;
const T_STEER = 1;
const T_EVENT = 2;
const T_SNAP = 3;
const T_REQ = 4;
const T_RES = 5;
const T_EVENT_ACKED = 6;
const T_APPLIED = 7;
/** frames kept for a peer we are still connecting to */
const MAX_QUEUE = 10_000;
/** frames larger than this are a protocol error (a datagram is ≤ 64 KiB) */
const MAX_FRAME = 4 * 1024 * 1024;

export interface SteeredDatagram {
  readonly sockIndex: number;
  readonly srcIp: string;
  readonly srcPort: number;
  readonly af: 4 | 6;
  readonly data: Buffer;
}

export interface MeshHandlers {
  onSteer(d: SteeredDatagram): void;
  /** a returned promise delays the `applied` answer to an acknowledged event until it settles */
  onEvent(topic: string, payload: unknown, from: number): undefined | Promise<unknown>;
  /** payloads to send back for a snapshot request of `topic` */
  onSnapshot(topic: string): unknown[];
  /** the answer to a peer's request (undefined: nobody serves the topic) */
  onRequest(topic: string, payload: unknown, from: number): unknown;
  onError(msg: string): void;
}

interface Peer {
  sock: net.Socket | undefined;
  connected: boolean;
  queue: Buffer[];
  retryAt: number;
}

export interface MeshStats {
  steered_out: number;
  steered_in: number;
  events_out: number;
  events_in: number;
  dropped: number;
  /** acknowledged events given up on: a connected peer did not confirm in time */
  unconfirmed: number;
}

export function meshPath(dir: string, index: number): string {
  return join(dir, `w${index}.sock`);
}

export class Mesh {
  private server: net.Server | undefined;
  private readonly peers = new Map<number, Peer>();
  private readonly inbound = new Set<net.Socket>();
  readonly stats: MeshStats = {
    steered_out: 0,
    steered_in: 0,
    events_out: 0,
    events_in: 0,
    dropped: 0,
    unconfirmed: 0,
  };
  private closed = false;
  private nextReq = 1;
  private readonly waiting = new Map<number, (result: unknown) => void>();
  private nextSeq = 1;
  /** acknowledged broadcasts: the peers still to answer, given up on at `until` */
  private readonly unapplied = new Map<number, { left: Set<number>; until: number; done: () => void }>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    readonly index: number,
    readonly count: number,
    private readonly h: MeshHandlers,
  ) {}

  async listen(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const path = meshPath(this.dir, this.index);
    try {
      unlinkSync(path); // left by the worker this one replaces
    } catch {
      /* none */
    }
    const server = net.createServer((s) => this.accept(s));
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(path, () => {
        server.off('error', rej);
        res();
      });
    });
    server.on('error', (e) => this.h.onError(`mesh: ${e.message}`));
    this.server = server;
    // user= / group=: peers connect to this socket after dropping privileges
    const owner = /^(\d+):(\d+)$/.exec(process.env.SER_CLUSTER_OWNER ?? '');
    if (owner) chownSync(path, Number(owner[1]), Number(owner[2]));
  }

  // ---------------------------------------------------------------- sending

  steer(to: number, d: SteeredDatagram): void {
    const ip = Buffer.from(d.srcIp, 'latin1');
    const f = Buffer.allocUnsafe(4 + 1 + 6 + ip.length + d.data.length);
    f.writeUInt32BE(f.length - 4, 0);
    f[4] = T_STEER;
    f.writeUInt16BE(d.sockIndex, 5);
    f.writeUInt16BE(d.srcPort, 7);
    f[9] = d.af;
    f[10] = ip.length;
    ip.copy(f, 11);
    d.data.copy(f, 11 + ip.length);
    this.stats.steered_out++;
    this.send(to, f);
  }

  /**
   * Broadcast, resolving once every peer the event could be given to has applied it, or
   * after `ms` (a peer that is stuck or restarting; a restarted one takes a snapshot).
   * usrloc answers a REGISTER only then, so no worker can miss a binding the UA saw saved.
   */
  broadcastApplied(topic: string, payload: unknown, ms: number): Promise<void> {
    const seq = this.nextSeq++ >>> 0;
    const body = Buffer.from(JSON.stringify({ topic, payload }), 'utf8');
    const f = Buffer.allocUnsafe(9 + body.length);
    f.writeUInt32BE(5 + body.length, 0);
    f[4] = T_EVENT_ACKED;
    f.writeUInt32BE(seq, 5);
    body.copy(f, 9);
    const left = new Set<number>();
    for (let j = 0; j < this.count; j++) {
      if (j === this.index) continue;
      this.stats.events_out++;
      if (this.send(j, f)) left.add(j);
    }
    if (left.size === 0) return Promise.resolve();
    return new Promise<void>((done) => {
      this.unapplied.set(seq, { left, until: Date.now() + ms, done });
      // one coarse timer for all waits, running only while some are open
      if (!this.sweeper) {
        this.sweeper = setInterval(() => this.sweep(Date.now()), Math.max(10, Math.min(ms, 100)));
        this.sweeper.unref();
      }
    });
  }

  private sweep(now: number): void {
    for (const [seq, w] of this.unapplied)
      if (w.until <= now || w.left.size === 0) {
        this.unapplied.delete(seq);
        if (w.left.size > 0 && now !== Number.POSITIVE_INFINITY) this.stats.unconfirmed++;
        w.done();
      }
    if (this.unapplied.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** peer `from` has applied `seq`, or (seq undefined) is gone: stop waiting for it */
  private applied(from: number, seq: number | undefined): void {
    if (seq !== undefined) {
      const w = this.unapplied.get(seq);
      if (!w) return;
      w.left.delete(from);
      if (w.left.size === 0) {
        this.unapplied.delete(seq);
        w.done();
      }
      return;
    }
    for (const [k, w] of this.unapplied)
      if (w.left.delete(from) && w.left.size === 0) {
        this.unapplied.delete(k);
        w.done();
      }
  }

  /** ask peer `to`; resolves undefined when it does not answer within `ms` */
  request(to: number, topic: string, payload: unknown, ms: number): Promise<unknown> {
    return new Promise((res) => {
      const id = this.nextReq++;
      const t = setTimeout(() => {
        this.waiting.delete(id);
        res(undefined);
      }, ms);
      this.waiting.set(id, (r) => {
        clearTimeout(t);
        res(r);
      });
      this.send(to, jsonFrame(T_REQ, { id, topic, payload }));
    });
  }

  /** ask one peer (the lowest other index) for a snapshot of a topic */
  requestSnapshot(topic: string): void {
    const to = this.index === 0 ? 1 : 0;
    this.send(to, jsonFrame(T_SNAP, { topic }));
  }

  /** false when the frame was dropped (closed, peer down, queue full) */
  private send(to: number, frame: Buffer): boolean {
    if (this.closed) return false;
    let p = this.peers.get(to);
    if (!p) {
      p = { sock: undefined, connected: false, queue: [], retryAt: 0 };
      this.peers.set(to, p);
    }
    if (p.connected && p.sock) {
      p.sock.write(frame);
      return true;
    }
    if (!p.sock) {
      // the peer was just found down (restarting): drop rather than hold stale messages
      if (Date.now() < p.retryAt) {
        this.stats.dropped++;
        return false;
      }
      this.connect(to, p);
    }
    if (p.queue.length >= MAX_QUEUE) {
      this.stats.dropped++;
      return false;
    }
    p.queue.push(frame);
    return true;
  }

  /**
   * Open the connections to every peer now (once all are listening). Resolves when each
   * has connected or failed: the attendant declares the server started only then, so the
   * first replicated change (a REGISTER right after start) is not left waiting for a
   * connect while its 200 OK lets the UA ask another worker.
   */
  connectAll(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (let j = 0; j < this.count; j++) {
      if (j === this.index || this.closed) continue;
      let p = this.peers.get(j);
      if (!p) {
        p = { sock: undefined, connected: false, queue: [], retryAt: 0 };
        this.peers.set(j, p);
      }
      if (!p.sock) this.connect(j, p);
      const s = p.sock;
      if (s && !p.connected)
        waits.push(
          new Promise<void>((res) => {
            s.once('connect', () => res());
            s.once('close', () => res());
          }),
        );
    }
    return Promise.all(waits).then(() => undefined);
  }

  private connect(to: number, p: Peer): void {
    const s = net.connect(meshPath(this.dir, to));
    p.sock = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      p.connected = true;
      const hello = Buffer.alloc(7);
      hello.writeUInt32BE(3, 0);
      hello[4] = T_HELLO;
      hello.writeUInt16BE(this.index, 5);
      s.write(hello);
      for (const f of p.queue) s.write(f);
      p.queue = [];
    });
    // replies to our snapshot requests and nothing else come back on this connection
    this.reader(s, () => to);
    const down = () => {
      if (p.sock !== s) return;
      p.sock = undefined;
      p.connected = false;
      this.stats.dropped += p.queue.length;
      p.queue = [];
      p.retryAt = Date.now() + 100; // a restarting worker: try again on a later send
      this.applied(to, undefined);
    };
    s.on('error', down);
    s.on('close', down);
  }

  // ---------------------------------------------------------------- receiving

  private accept(s: net.Socket): void {
    this.inbound.add(s);
    s.on('close', () => this.inbound.delete(s));
    s.on('error', () => {});
    let from = -1;
    this.reader(
      s,
      () => from,
      (i) => {
        from = i;
      },
    );
  }

  private reader(s: net.Socket, from: () => number, hello?: (i: number) => void): void {
    let buf: Buffer = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let off = 0;
      while (buf.length - off >= 4) {
        const len = buf.readUInt32BE(off);
        if (len < 1 || len > MAX_FRAME) {
          this.h.onError(`mesh: bad frame length ${len}, connection closed`);
          s.destroy();
          return;
        }
        if (buf.length - off - 4 < len) break;
        const f = buf.subarray(off + 4, off + 4 + len);
        off += 4 + len;
        try {
          this.frame(s, f, from(), hello);
        } catch (e) {
          this.h.onError(`mesh: bad frame: ${(e as Error).message}`);
        }
      }
      buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
    });
  }

  private frame(s: net.Socket, f: Buffer, from: number, hello?: (i: number) => void): void {
    switch (f[0]) {
      case T_HELLO:
        hello?.(f.readUInt16BE(1));
        return;
      case T_STEER: {
        const ipLen = f[6];
        this.stats.steered_in++;
        this.h.onSteer({
          sockIndex: f.readUInt16BE(1),
          srcPort: f.readUInt16BE(3),
          af: f[5] === 6 ? 6 : 4,
          srcIp: f.toString('latin1', 7, 7 + ipLen),
          // a copy: the receive buffer is reused for later frames
          data: Buffer.from(f.subarray(7 + ipLen)),
        });
        return;
      }
      case T_EVENT: {
        const { topic, payload } = JSON.parse(f.toString('utf8', 1)) as { topic: string; payload: unknown };
        this.stats.events_in++;
        this.h.onEvent(topic, payload, from);
        return;
      }
      case T_EVENT_ACKED: {
        const seq = f.readUInt32BE(1);
        const { topic, payload } = JSON.parse(f.toString('utf8', 5)) as { topic: string; payload: unknown };
        this.stats.events_in++;
        const answer = () => {
          const a = Buffer.allocUnsafe(9);
          a.writeUInt32BE(5, 0);
          a[4] = T_APPLIED;
          a.writeUInt32BE(seq, 5);
          if (!s.destroyed) s.write(a);
        };
        const r = this.h.onEvent(topic, payload, from);
        if (r) r.then(answer, answer);
        else answer();
        return;
      }
      case T_APPLIED:
        this.applied(from, f.readUInt32BE(1));
        return;
      case T_SNAP: {
        const { topic } = JSON.parse(f.toString('utf8', 1)) as { topic: string };
        for (const payload of this.h.onSnapshot(topic)) s.write(jsonFrame(T_EVENT, { topic, payload }));
        return;
      }
      case T_REQ: {
        const { id, topic, payload } = JSON.parse(f.toString('utf8', 1)) as {
          id: number;
          topic: string;
          payload: unknown;
        };
        s.write(jsonFrame(T_RES, { id, result: this.h.onRequest(topic, payload, from) ?? null }));
        return;
      }
      case T_RES: {
        const { id, result } = JSON.parse(f.toString('utf8', 1)) as { id: number; result: unknown };
        const w = this.waiting.get(id);
        this.waiting.delete(id);
        w?.(result ?? undefined);
        return;
      }
      default:
        throw new Error(`unknown frame type ${f[0]}`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sweep(Number.POSITIVE_INFINITY);
    for (const p of this.peers.values()) p.sock?.destroy();
    for (const s of this.inbound) s.destroy();
    const srv = this.server;
    if (srv) await new Promise<void>((res) => srv.close(() => res()));
  }
}

function jsonFrame(type: number, obj: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(obj), 'utf8');
  const f = Buffer.allocUnsafe(5 + body.length);
  f.writeUInt32BE(1 + body.length, 0);
  f[4] = type;
  body.copy(f, 5);
  return f;
}
