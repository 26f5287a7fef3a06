/**
 * Time for the whole server: an injectable clock and a hashed timer wheel.
 * Transactions create many short timers (retransmissions, fr_timer, wt_timer);
 * a wheel keeps them O(1) to add and cancel, with one interval driving all of them,
 * and lets tests move time by hand.
 */

export interface Clock {
  /** milliseconds, monotonic */
  now(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
};

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  set(t: number): void {
    this.t = t;
  }
}

export interface TimerHandle {
  cancel(): void;
  readonly active: boolean;
}

const noop = (): void => {};

class Timer implements TimerHandle {
  cancelled = false;
  fired = false;

  constructor(
    readonly due: number,
    public cb: () => void,
    private wheel: TimerWheel | undefined,
    /** the wheel slot holding it, until the wheel takes it out */
    public slot: Timer[] | undefined,
  ) {}

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    // its callback holds the transaction: it must not stay reachable as long as the slot does
    this.cb = noop;
    // and the timer leaves its slot now: most are cancelled within milliseconds (a reply
    // stops a retransmission timer and the 32 s Timer B/F), so they die young instead of
    // waiting in the wheel to be promoted to V8's old generation with the others
    const s = this.slot;
    if (s !== undefined) {
      this.slot = undefined;
      const i = s.lastIndexOf(this);
      if (i >= 0) {
        s.splice(i, 1);
        this.wheel?.removed();
      }
    }
    this.wheel = undefined;
  }

  get active(): boolean {
    return !this.cancelled && !this.fired;
  }
}

export class TimerWheel {
  private readonly slots: Timer[][];
  /** the tick processed last */
  private tick: number;
  private count = 0;
  /** the driver: a one-shot Node timer set for the next slot holding timers */
  private driver: NodeJS.Timeout | undefined;
  private running = false;
  /** the tick the driver is set for (Infinity: not set) */
  private wakeTick = Number.POSITIVE_INFINITY;
  /** errors thrown by callbacks are reported here; a timer must never kill the wheel */
  onError: (err: unknown) => void = () => {};

  constructor(
    readonly clock: Clock = systemClock,
    /** resolution in ms (the server's wheel: core.ts's TIMER_RESOLUTION_MS; tests pick their own) */
    readonly resolution = 10,
    slotCount = 1024,
  ) {
    this.slots = Array.from({ length: slotCount }, () => []);
    this.tick = Math.floor(clock.now() / resolution);
  }

  /** pending timers */
  get size(): number {
    return this.count;
  }

  /** a cancelled timer left its slot (Timer.cancel) */
  removed(): void {
    this.count--;
  }

  add(delayMs: number, cb: () => void): TimerHandle {
    const due = this.clock.now() + Math.max(0, delayMs);
    // never into the slot being processed now: at the earliest the next tick
    const slotTick = Math.max(Math.ceil(due / this.resolution), this.tick + 1);
    const slot = this.slots[slotTick % this.slots.length];
    const t = new Timer(due, cb, this, slot);
    slot.push(t);
    this.count++;
    if (this.running && slotTick < this.wakeTick) this.arm(slotTick);
    return t;
  }

  /** Fire every timer due by now. Called by the driver, or by tests after moving a ManualClock. */
  advance(): void {
    const nowTick = Math.floor(this.clock.now() / this.resolution);
    const n = this.slots.length;
    // a jump larger than the wheel visits every slot once
    const last = nowTick - this.tick > n ? this.tick + n : nowTick;
    const now = this.clock.now();
    // gather first, then fire in due order: after a jump past a whole turn, slot order is not due order
    const due: Timer[] = [];
    for (let tk = this.tick + 1; tk <= last; tk++) {
      const slot = this.slots[tk % n];
      if (slot.length === 0) continue;
      let keep = 0;
      for (let i = 0; i < slot.length; i++) {
        const t = slot[i];
        if (t.cancelled) {
          this.count--;
        } else if (t.due <= now) {
          t.slot = undefined;
          due.push(t);
          this.count--;
        } else {
          slot[keep++] = t;
        }
      }
      slot.length = keep;
    }
    // timers added by these callbacks land at tick+1 or later, which is after nowTick
    this.tick = nowTick;
    if (due.length > 1) due.sort((a, b) => a.due - b.due);
    for (const t of due) {
      if (t.cancelled) continue;
      t.fired = true;
      try {
        t.cb();
      } catch (err) {
        this.onError(err);
      }
    }
  }

  /**
   * Drive the wheel from the event loop (unref'd: timers alone keep no process alive).
   * The driver sleeps until the next slot that holds a timer instead of ticking every
   * `resolution` ms: an idle server wakes only for its own periodic jobs, and a loaded one
   * ticks as before.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.rearm();
  }

  stop(): void {
    this.running = false;
    if (this.driver) clearTimeout(this.driver);
    this.driver = undefined;
    this.wakeTick = Number.POSITIVE_INFINITY;
  }

  private readonly wake = (): void => {
    this.driver = undefined;
    this.wakeTick = Number.POSITIVE_INFINITY;
    this.advance();
    if (this.running) this.rearm();
  };

  /** Set the driver for the first non-empty slot after the current tick (none: add() sets it). */
  private rearm(): void {
    if (this.count === 0) return;
    const n = this.slots.length;
    for (let k = 1; k <= n; k++) {
      if (this.slots[(this.tick + k) % n].length > 0) {
        this.arm(this.tick + k);
        return;
      }
    }
  }

  private arm(tick: number): void {
    if (this.driver) clearTimeout(this.driver);
    this.wakeTick = tick;
    // Node never fires early, but its clock and ours can differ by a fraction of a ms: a wake
    // before the slot's time advances nothing and re-arms for the same slot
    this.driver = setTimeout(this.wake, Math.max(1, tick * this.resolution - this.clock.now()));
    this.driver.unref();
  }
}
