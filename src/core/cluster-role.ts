/**
 * Who this process is in the multi-process model (fork=yes, children>1), and the
 * worker-to-worker event bus modules use for replicated state (usrloc).
 *
 * Single-process servers (fork=no, children=1) never see a role: `clusterRole()` is
 * undefined and `clusterBus()` is undefined, so every cluster code path is skipped.
 *
 * Ownership (see docs/process-model.md):
 * - a UDP reply whose top Via branch carries our worker mark (`…w<k>-…`, written by tm)
 *   belongs to worker k: the transaction lives there;
 * - every UDP request belongs to worker `hash(Call-ID) % N`, so retransmissions, the
 *   CANCEL and the non-2xx ACK of an INVITE and the REGISTER retried with credentials all
 *   land where the first message was handled;
 * - other replies (to stateless forwards) are handled by the worker that read them.
 */

export interface ClusterRole {
  /** 0-based worker index (SER's process_no is index + 1) */
  readonly index: number;
  /** number of workers (children=) */
  readonly count: number;
}

/** Worker environment set by the attendant (cluster.ts). */
export const ENV_INDEX = 'SER_WORKER_INDEX';
export const ENV_COUNT = 'SER_WORKERS';
export const ENV_DIR = 'SER_CLUSTER_DIR';
export const ENV_SECRET = 'SER_CLUSTER_SECRET';

let role: ClusterRole | undefined;
let roleRead = false;

/** This worker's role, or undefined in a single-process server (and in the attendant). */
export function clusterRole(): ClusterRole | undefined {
  if (!roleRead) {
    roleRead = true;
    const i = process.env[ENV_INDEX];
    const n = process.env[ENV_COUNT];
    if (i !== undefined && n !== undefined && /^\d+$/.test(i) && /^\d+$/.test(n) && Number(n) > 1)
      role = { index: Number(i), count: Number(n) };
  }
  return role;
}

/** Replicated-state events between workers: fire-and-forget, in order per sender. */
export interface ClusterBus {
  /** send to every other worker; resolves when each running one has applied it (bounded wait) */
  publish(topic: string, payload: unknown): Promise<void>;
  /** handle events of a topic sent by other workers (a promise: applied when it settles) */
  on(topic: string, fn: (payload: unknown, from: number) => undefined | Promise<unknown>): void;
  /** answer a peer's snapshot request for a topic (state transfer to a restarted worker) */
  onSnapshot(topic: string, fn: () => unknown[]): void;
  /** ask worker `to` (the owner of some state); undefined when it does not answer in `ms` */
  request(to: number, topic: string, payload: unknown, ms: number): Promise<unknown>;
  /** answer other workers' requests of a topic */
  serve(topic: string, fn: (payload: unknown, from: number) => unknown): void;
}

let bus: ClusterBus | undefined;

export function clusterBus(): ClusterBus | undefined {
  return bus;
}

export function setClusterBus(b: ClusterBus | undefined): void {
  bus = b;
}

/** FNV-1a over a string: cheap, stable across processes (no per-process seed). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The worker mark tm puts in its branches: `w<k>-`. */
export function branchMark(index: number): string {
  return `w${index}-`;
}

const MARK_RE = /^z9hG4bK(?:[0-9a-f]{16}\.)?w(\d{1,4})-/;

/** Worker index named by one of our branches, or undefined. */
export function workerOfBranch(branch: string | undefined): number | undefined {
  if (!branch) return undefined;
  const m = MARK_RE.exec(branch);
  return m ? Number(m[1]) : undefined;
}

/** The worker a nonce was issued by (its 9th–10th hex digits), see auth/nonce.ts: it tracks the nonce's uses. */
export function workerOfNonce(nonce: string): number {
  return Number.parseInt(nonce.slice(8, 10), 16);
}
