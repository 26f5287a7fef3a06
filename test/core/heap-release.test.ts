import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { HeapRelease } from '../../src/core/heap-release.js';

/** A HeapRelease on fakes: the test advances time by calling tick() itself. */
function rig(newSpace = 32 << 20, shrinksOnMajor = 1) {
  const calls: string[] = [];
  let count = 0;
  let space = newSpace;
  let pending: { fn: () => void; ms: number } | undefined;
  const hr = new HeapRelease({
    count: () => count,
    newSpaceSize: () => space,
    gc: (o) => {
      calls.push(o?.type ?? 'major');
      if (o?.type === 'major' && calls.filter((c) => c === 'major').length >= shrinksOnMajor) space = 1 << 20;
    },
    setTimeout: (fn, ms) => {
      pending = { fn, ms };
      return {};
    },
    clearTimeout: () => {
      pending = undefined;
    },
  });
  let now = 1_000_000;
  hr.start(now);
  return {
    hr,
    calls,
    traffic(n: number) {
      count += n;
    },
    grow() {
      space = 32 << 20;
    },
    /** runs looks until the sequence starts (5 s of quiet); returns how many looks that took */
    untilStart(): number {
      for (let k = 1; k <= 100; k++) if (this.next() === 50) return k;
      return -1;
    },
    /** runs the armed timer after its delay; returns the delay of the timer armed next */
    next(): number {
      assert.ok(pending, 'a timer is armed');
      const p = pending;
      pending = undefined;
      now += p.ms;
      hr.tick(now);
      const armed = pending as { ms: number } | undefined;
      assert.ok(armed, 'a timer is armed again');
      return armed.ms;
    },
  };
}

describe('heap release (young generation back after a burst)', () => {
  it('waits through traffic; once quiet with a large new space, runs 11 minor GCs then one major', () => {
    const r = rig();
    r.traffic(5000);
    assert.equal(r.next(), 500); // busy interval: nothing
    assert.deepEqual(r.calls, []);
    r.traffic(2);
    // quiet from here: 5 s of it (ten looks) before the sequence starts
    assert.equal(r.untilStart(), 10);
    for (let i = 0; i < 11; i++) assert.equal(r.next(), 50);
    assert.equal(r.next(), 500); // the major GC, then back to looking
    assert.deepEqual(r.calls, [...Array(11).fill('minor'), 'major']);
    assert.equal(r.hr.released, 1);
  });

  it('a lull shorter than 5 s releases nothing', () => {
    const r = rig();
    for (let burst = 0; burst < 4; burst++) {
      r.traffic(5000);
      r.next();
      for (let i = 0; i < 8; i++) assert.equal(r.next(), 500); // 4 s of quiet
    }
    assert.deepEqual(r.calls, []);
  });

  it('does not repeat while idle, and runs again after the next burst', () => {
    const r = rig();
    r.untilStart();
    for (let i = 0; i < 12; i++) r.next();
    assert.equal(r.hr.released, 1);
    r.grow(); // pretend V8 did not shrink it: still no repeat without traffic
    for (let i = 0; i < 5; i++) assert.equal(r.next(), 500);
    assert.equal(r.calls.length, 12);
    r.traffic(10_000);
    r.next();
    assert.equal(r.untilStart(), 10);
    for (let i = 0; i < 12; i++) r.next();
    assert.equal(r.hr.released, 2);
  });

  it('traffic coming back stops a sequence under way', () => {
    const r = rig();
    r.untilStart();
    r.next();
    r.next();
    assert.deepEqual(r.calls, ['minor', 'minor']);
    r.traffic(100); // 100 messages in 50 ms is 2,000/s
    assert.equal(r.next(), 500);
    assert.deepEqual(r.calls, ['minor', 'minor']);
    assert.equal(r.hr.released, 0);
  });

  it('repeats the full GC (at most 3) while V8 keeps the new space large', () => {
    const r = rig(32 << 20, 2);
    r.untilStart();
    for (let i = 0; i < 11; i++) r.next();
    assert.equal(r.next(), 50); // first major: still large
    assert.equal(r.next(), 500); // second major: released
    assert.deepEqual(r.calls.slice(11), ['major', 'major']);
    const stuck = rig(32 << 20, 99);
    stuck.untilStart();
    for (let i = 0; i < 13; i++) stuck.next();
    assert.equal(stuck.next(), 500);
    assert.deepEqual(stuck.calls.slice(11), ['major', 'major', 'major']);
    assert.equal(stuck.hr.released, 1);
  });

  it('leaves a small new space alone', () => {
    const r = rig(1 << 20);
    for (let i = 0; i < 20; i++) assert.equal(r.next(), 500);
    assert.deepEqual(r.calls, []);
  });

  it('on the real V8: a new space grown by surviving objects is given back once quiet', () => {
    const mod = fileURLToPath(new URL('../../src/core/heap-release.js', import.meta.url));
    // a child process, so this test's own heap does not matter
    const src = `
      const { HeapRelease, newSpaceSize } = await import(${JSON.stringify(mod)});
      const keep = [];
      const t0 = Date.now();
      // many survivors make V8 grow its semi-spaces
      while (Date.now() - t0 < 1500 && keep.length < 3e6) keep.push({ a: keep.length, b: 'x' + keep.length });
      const grown = newSpaceSize();
      const hr = new HeapRelease({ count: () => 0 }, { quietMs: 500 });
      hr.start();
      await new Promise((res) => { const i = setInterval(() => { if (hr.released > 0) { clearInterval(i); res(); } }, 50); });
      hr.stop();
      console.log(JSON.stringify({ grown, after: newSpaceSize(), kept: keep.length }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', src], { timeout: 20_000 });
    const { grown, after } = JSON.parse(out.toString()) as { grown: number; after: number };
    assert.ok(grown > 8 << 20, `the burst grew the new space (${grown} bytes)`);
    assert.ok(after <= 4 << 20, `released to ${after} bytes`);
  });
});
