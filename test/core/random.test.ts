import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomHex } from '../../src/core/random.js';

describe('randomHex (pooled CSPRNG bytes)', () => {
  it('gives hex of the asked length, never the same bytes twice across pool refills', () => {
    const seen = new Set<string>();
    // 3,000 × 6 bytes spans about 18 refills of the 1,024-byte pool
    for (let i = 0; i < 3000; i++) {
      const h = randomHex(6);
      assert.match(h, /^[0-9a-f]{12}$/);
      seen.add(h);
    }
    assert.equal(seen.size, 3000);
  });

  it('refuses sizes outside 1–64 bytes', () => {
    assert.throws(() => randomHex(0), RangeError);
    assert.throws(() => randomHex(65), RangeError);
    assert.equal(randomHex(64).length, 128);
  });
});
