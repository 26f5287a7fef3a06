import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ManualClock, systemClock, TimerWheel } from '../../src/core/timer.js';

function setup() {
  const clock = new ManualClock(0);
  const wheel = new TimerWheel(clock, 10, 64);
  const fired: string[] = [];
  const at = (ms: number) => {
    clock.set(ms);
    wheel.advance();
  };
  return { clock, wheel, fired, at };
}

describe('TimerWheel', () => {
  it('fires a timer once, not before it is due', () => {
    const { wheel, fired, at } = setup();
    wheel.add(500, () => fired.push('t1'));
    at(499);
    assert.deepEqual(fired, []);
    at(500);
    assert.deepEqual(fired, ['t1']);
    at(2000);
    assert.deepEqual(fired, ['t1']);
    assert.equal(wheel.size, 0);
  });

  it('fires in due order when time jumps past several timers', () => {
    const { wheel, fired, at } = setup();
    wheel.add(4000, () => fired.push('d'));
    wheel.add(500, () => fired.push('a'));
    wheel.add(1000, () => fired.push('b'));
    wheel.add(2000, () => fired.push('c'));
    at(2500);
    assert.deepEqual(fired, ['a', 'b', 'c']);
    at(4000);
    assert.deepEqual(fired, ['a', 'b', 'c', 'd']);
  });

  it('handles delays longer than one turn of the wheel (64 slots x 10 ms)', () => {
    const { wheel, fired, at } = setup();
    wheel.add(30_000, () => fired.push('fr'));
    for (let t = 0; t < 30_000; t += 250) at(t);
    assert.deepEqual(fired, []);
    at(30_000);
    assert.deepEqual(fired, ['fr']);
  });

  it('a cancelled timer never fires and is no longer active', () => {
    const { wheel, fired, at } = setup();
    const h = wheel.add(100, () => fired.push('x'));
    assert.equal(h.active, true);
    h.cancel();
    assert.equal(h.active, false);
    at(1000);
    assert.deepEqual(fired, []);
    assert.equal(wheel.size, 0);
  });

  it('a cancelled timer leaves its slot at once; the others of the slot fire in order', () => {
    const { wheel, fired, at } = setup();
    const a = wheel.add(100, () => fired.push('a'));
    const b = wheel.add(100, () => fired.push('b'));
    const c = wheel.add(100, () => fired.push('c'));
    const d = wheel.add(100, () => {
      fired.push('d');
      // cancelling a timer already taken out of the slot for this round: it does not fire
      e.cancel();
      // and one that already fired: nothing happens
      a.cancel();
    });
    const e = wheel.add(100, () => fired.push('e'));
    assert.equal(wheel.size, 5);
    b.cancel();
    assert.equal(wheel.size, 4, 'counted out when cancelled, not when the wheel passes');
    b.cancel();
    assert.equal(wheel.size, 4, 'a second cancel changes nothing');
    at(100);
    assert.deepEqual(fired, ['a', 'c', 'd']);
    assert.equal(wheel.size, 0);
    assert.equal(c.active, false);
    assert.equal(d.active, false);
  });

  it('a callback may add a timer (retransmission doubling) and a throwing callback does not stop others', () => {
    const { wheel, fired, at } = setup();
    const errors: unknown[] = [];
    wheel.onError = (e) => errors.push(e);
    let interval = 500;
    const retr = () => {
      fired.push(`r${interval}`);
      interval *= 2;
      if (interval <= 4000) wheel.add(interval, retr);
    };
    wheel.add(interval, retr);
    wheel.add(600, () => {
      throw new Error('boom');
    });
    wheel.add(600, () => fired.push('after-boom'));
    for (let t = 0; t <= 10_000; t += 10) at(t);
    assert.deepEqual(fired, ['r500', 'after-boom', 'r1000', 'r2000', 'r4000']);
    assert.equal(errors.length, 1);
  });

  it('the running driver sleeps while empty and wakes for timers added later, soonest first', async () => {
    // real clock: the driver is a one-shot Node timer re-armed for the next non-empty slot
    const wheel = new TimerWheel(systemClock, 5, 64);
    const fired: string[] = [];
    // the driver is unref'd (timers alone keep no process alive): hold the loop open
    const keep = setInterval(() => {}, 1000);
    wheel.start();
    try {
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(fired.length, 0);
      const done = new Promise<void>((r) => {
        wheel.add(120, () => {
          fired.push('late');
          r();
        });
        // added after the later one: the driver must be re-armed for it
        wheel.add(20, () => fired.push('soon'));
        // longer than a turn of 64 x 5 ms = 320 ms, cancelled: must not fire
        wheel.add(400, () => fired.push('cancelled')).cancel();
      });
      await done;
      assert.deepEqual(fired, ['soon', 'late']);
      await new Promise((r) => setTimeout(r, 450));
      assert.deepEqual(fired, ['soon', 'late']);
      assert.equal(wheel.size, 0);
    } finally {
      wheel.stop();
      clearInterval(keep);
    }
  });

  it('a cancelled timer lets go of its callback before the wheel reaches its slot', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    setFlagsFromString('--no-expose-gc');
    const { wheel, at } = setup();
    let weak: WeakRef<object> | undefined;
    const handles = (() => {
      const held = { big: new Array(1000).fill(1) };
      weak = new WeakRef(held);
      const a = wheel.add(10_000, () => held.big.length);
      const b = wheel.add(10_000, () => held.big.length + 1);
      return [a, b];
    })();
    handles[0].cancel();
    // the other timer still holds it
    await new Promise((r) => setImmediate(r));
    gc();
    assert.ok(weak?.deref() !== undefined, 'a pending timer keeps its callback');
    handles[1].cancel();
    await new Promise((r) => setImmediate(r));
    gc();
    assert.equal(weak?.deref(), undefined, 'cancelled timers keep nothing alive');
    assert.equal(handles[0].active, false);
    // the wheel still drops them when it passes their slot
    at(10_010);
    assert.equal(wheel.size, 0);
  });
});
