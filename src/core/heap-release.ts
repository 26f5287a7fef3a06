/**
 * Gives V8's young generation back once a burst of traffic is over.
 *
 * Why: while many new objects survive — thousands of phones registering, each leaving a
 * contact behind — V8 doubles its semi-spaces up to 16 MB each (32 MB of RSS for the new
 * space). It shrinks them only in a full GC that sees a low allocation rate, and Node never
 * runs one on its own when idle (Chrome does, from idle-time notifications). So a server
 * would keep the burst's 32 MB for good.
 *
 * How: every `intervalMs` we compare the message counter with the last look. After
 * `quietMs` of quiet (fewer than `quietPerSec` messages a second) with a new space larger
 * than `minNewSpace`, we run a few young-generation GCs `stepMs` apart — V8 keeps the allocation
 * rate over its last ten GCs, and these record the quiet — then full GCs, in which V8
 * shrinks the new space and unmaps the freed semi-space pages. Traffic coming back stops the
 * sequence; after a sequence we wait for traffic before trying again.
 * Why wait 5 s: a shrunk new space grows back only as objects survive, and until it has,
 * each message costs more CPU (a REGISTER about 25 % at 1 MB). Short lulls between bursts
 * must not pay that; V8's own memory reducer (Chrome) likewise waits about 8 s. (Empirical, on Node
 * 20's V8: after a large burst the first full GC may still see the burst's rate, so up to
 * `maxMajors` full GCs run, 50 ms apart, until the new space is small.)
 * Off by default; global option `release_idle_memory = yes` turns it on. See docs/performance.md (memory).
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFn = (opts?: { type?: 'major' | 'minor' }) => void;

export interface HeapReleaseHooks {
  /** messages received so far (requests and replies) */
  count(): number;
  /** bytes the new space occupies now */
  newSpaceSize?(): number;
  gc?: GcFn;
  setTimeout?(fn: () => void, ms: number): { unref?(): unknown };
  clearTimeout?(t: unknown): void;
}

export interface HeapReleaseOptions {
  intervalMs: number;
  /** how long traffic must stay below quietPerSec before the release */
  quietMs: number;
  quietPerSec: number;
  minNewSpace: number;
  /** young-generation GCs before the full one (V8's allocation-rate window holds ten) */
  minorGcs: number;
  /** full GCs at most, until the new space is small */
  maxMajors: number;
  stepMs: number;
}

export const HEAP_RELEASE_DEFAULTS: HeapReleaseOptions = {
  intervalMs: 500,
  quietMs: 5000,
  quietPerSec: 100,
  minNewSpace: 4 << 20,
  minorGcs: 11,
  maxMajors: 3,
  stepMs: 50,
};

/** V8's gc() without --expose-gc on the command line: the flag is set, read in a new context, then cleared. */
export function exposedGc(): GcFn | undefined {
  const g = (globalThis as { gc?: GcFn }).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    const f = runInNewContext('gc') as unknown;
    v8.setFlagsFromString('--no-expose-gc');
    return typeof f === 'function' ? (f as GcFn) : undefined;
  } catch {
    return undefined;
  }
}

export function newSpaceSize(): number {
  for (const s of v8.getHeapSpaceStatistics()) if (s.space_name === 'new_space') return s.space_size;
  return 0;
}

/** a little garbage made between the young-generation GCs (see tick); kept so it is not optimised away */
let _ballast: number[] | undefined;

export class HeapRelease {
  private readonly o: HeapReleaseOptions;
  private timer: unknown;
  private last = 0;
  private lastAt = 0;
  /** a sequence ran since traffic last came: do not repeat it while the server stays idle */
  private done = false;
  /** since when the traffic has been quiet (-1: not quiet at the last look) */
  private quietSince = -1;
  private step = -1;
  /** how many sequences ran to the end */
  released = 0;
  private readonly gc: GcFn | undefined;
  private readonly size: () => number;
  private readonly later: NonNullable<HeapReleaseHooks['setTimeout']>;
  private readonly cancel: NonNullable<HeapReleaseHooks['clearTimeout']>;

  constructor(
    private readonly hooks: HeapReleaseHooks,
    opts: Partial<HeapReleaseOptions> = {},
  ) {
    this.o = { ...HEAP_RELEASE_DEFAULTS, ...opts };
    this.gc = hooks.gc ?? exposedGc();
    this.size = hooks.newSpaceSize ?? newSpaceSize;
    this.later = hooks.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this.cancel = hooks.clearTimeout ?? ((t) => clearTimeout(t as NodeJS.Timeout));
  }

  start(now = Date.now()): void {
    if (!this.gc || this.timer !== undefined) return;
    this.last = this.hooks.count();
    this.lastAt = now;
    this.quietSince = -1;
    this.arm(this.o.intervalMs);
  }

  stop(): void {
    if (this.timer !== undefined) this.cancel(this.timer);
    this.timer = undefined;
    this.step = -1;
  }

  private arm(ms: number): void {
    const t = this.later(() => this.tick(), ms);
    t.unref?.();
    this.timer = t;
  }

  /** One look (the timer calls it; tests may too). */
  tick(now = Date.now()): void {
    this.timer = undefined;
    const n = this.hooks.count();
    const prevAt = this.lastAt;
    const secs = Math.max(now - prevAt, 1) / 1000;
    const quiet = (n - this.last) / secs < this.o.quietPerSec;
    this.last = n;
    this.lastAt = now;
    if (!quiet) {
      // traffic: forget the last release, abandon a sequence under way
      this.done = false;
      this.step = -1;
      this.quietSince = -1;
      this.arm(this.o.intervalMs);
      return;
    }
    // quiet since the previous look
    if (this.quietSince < 0) this.quietSince = prevAt;
    if (this.step >= 0) {
      this.step++;
      if (this.step <= this.o.minorGcs) {
        // V8 shrinks on a low allocation rate but not on a zero one: allocate a little
        _ballast = new Array(128).fill(this.step);
        this.gc?.({ type: 'minor' });
        this.arm(this.o.stepMs);
        return;
      }
      this.gc?.({ type: 'major' });
      // the rate V8 looks at may still include the burst: another full GC, up to maxMajors
      if (this.size() > this.o.minNewSpace && this.step < this.o.minorGcs + this.o.maxMajors) {
        this.arm(this.o.stepMs);
        return;
      }
      _ballast = undefined;
      this.step = -1;
      this.done = true;
      this.released++;
    } else if (!this.done && now - this.quietSince >= this.o.quietMs && this.size() > this.o.minNewSpace) {
      this.step = 0;
      this.arm(this.o.stepMs);
      return;
    }
    this.arm(this.o.intervalMs);
  }
}
