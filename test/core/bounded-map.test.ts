import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BoundedMap } from '../../src/core/bounded-map.js';

describe('BoundedMap', () => {
  it('drops the oldest past its bound; setting again makes an entry the newest', () => {
    const m = new BoundedMap<string, number>(3);
    m.set('a', 1);
    m.set('b', 2);
    m.set('c', 3);
    m.set('a', 10); // a is now the newest
    m.set('d', 4); // drops b, the oldest
    assert.deepEqual([...m.keys()], ['c', 'a', 'd']);
    assert.equal(m.get('a'), 10);
    assert.equal(m.has('b'), false);
    assert.equal(m.size, 3);
  });

  it('skips deleted entries when choosing what to drop', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    assert.equal(m.delete('a'), true);
    m.set('c', 3);
    assert.deepEqual([...m.keys()], ['b', 'c'], 'nothing dropped: a was already gone');
    m.set('d', 4);
    assert.deepEqual([...m.keys()], ['c', 'd']);
    m.clear();
    assert.equal(m.size, 0);
    m.set('e', 5);
    assert.deepEqual([...m.keys()], ['e']);
  });

  it('matches a plain Map evicting from its front, through long random churn', () => {
    // the reference: the simple way, correct but slow (it walks the holes)
    const ref = new Map<number, number>();
    const m = new BoundedMap<number, number>(100);
    let x = 12345;
    const rnd = (n: number) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x % n;
    };
    for (let i = 0; i < 30_000; i++) {
      const k = rnd(400);
      if (rnd(4) === 0) {
        assert.equal(m.delete(k), ref.delete(k));
      } else {
        m.set(k, i);
        ref.delete(k);
        ref.set(k, i);
        if (ref.size > 100) ref.delete(ref.keys().next().value as number);
      }
    }
    assert.deepEqual([...m.keys()], [...ref.keys()]);
    for (const [k, v] of ref) assert.equal(m.get(k), v);
  });
});
