/** Admission of new transactions: max_transactions and max_heap (src/tm/overload.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Admission, txCost, v8HeapLimit } from '../../src/tm/overload.js';

function fixture(maxTransactions: number, maxHeapPercent: number, heapLimit = 100_000) {
  const changes: (string | undefined)[] = [];
  const a = new Admission({
    maxTransactions,
    maxHeapPercent,
    heapLimit,
    onChange: (why, detail) => changes.push(why === undefined ? undefined : `${why}: ${detail}`),
  });
  return { a, changes };
}

describe('tm admission', () => {
  it('max_transactions refuses at the bound and admits again below it', () => {
    const { a, changes } = fixture(3, 0);
    assert.equal(a.take(0, 10), true);
    assert.equal(a.take(2, 10), true);
    assert.equal(a.take(3, 10), false);
    assert.equal(a.take(7, 10), false);
    assert.equal(a.refused, 2);
    assert.equal(a.take(2, 10), true);
    // one report when refusing starts, one when it stops
    assert.deepEqual(changes, ['count: 3 live transactions', undefined]);
  });

  it('0 means no limit of either kind', () => {
    const { a } = fixture(0, 0);
    assert.equal(a.budget, 0);
    assert.equal(a.take(1_000_000, 1e12), true);
    assert.equal(a.refused, 0);
  });

  it('max_heap refuses a transaction whose estimate would pass the share of the heap limit', () => {
    // 40 % of 100,000 bytes
    const { a, changes } = fixture(0, 40);
    assert.equal(a.budget, 40_000);
    assert.equal(a.take(0, 25_000), true);
    assert.equal(a.take(1, 15_000), true);
    assert.equal(a.bytes, 40_000);
    assert.equal(a.take(2, 1), false);
    assert.match(changes[0] ?? '', /^memory: 2 live transactions, about 0\.0 MB of the 0\.0 MB/);
    // what leaves makes room again, and refused ones were never counted
    a.give(25_000);
    assert.equal(a.bytes, 15_000);
    assert.equal(a.take(1, 20_000), true);
    assert.equal(a.bytes, 35_000);
    assert.deepEqual(changes.slice(1), [undefined]);
  });

  it('the count limit is judged first', () => {
    const { a, changes } = fixture(2, 10);
    assert.equal(a.take(2, 50_000), false);
    assert.match(changes[0] ?? '', /^count: /);
    assert.equal(a.take(1, 50_000), false);
    assert.match(changes[1] ?? '', /^memory: /);
  });

  it('a transaction costs a fixed part and twice its request size', () => {
    assert.equal(txCost(1000) - txCost(0), 2000);
    assert.ok(txCost(0) >= 4096);
  });

  it('the budget is a share of the real V8 heap limit by default', () => {
    const a = new Admission({ maxTransactions: 0, maxHeapPercent: 50 });
    assert.equal(a.budget, v8HeapLimit() / 2);
    assert.ok(a.budget > 1 << 20);
  });
});
