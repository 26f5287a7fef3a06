import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestTag } from '../../src/sip/reply.js';
import { findTopLevel, getParam, sameToken, splitTopLevel, trimLws } from '../../src/sip/util.js';
import { parseOk, request } from './helpers.js';

/** a small deterministic generator, so a failure names a case that can be replayed */
function rng(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % n;
  };
}

describe('sip text helpers', () => {
  it('sameToken is ASCII case folding, nothing more', () => {
    assert.equal(sameToken('Branch', 'bRANCH'), true);
    assert.equal(sameToken('a-b', 'A-B'), true);
    // characters that are equal once 0x20 is OR-ed in, but are not letters
    assert.equal(sameToken('a-b', 'a\rb'), false);
    assert.equal(sameToken('x@', 'x`'), false);
    assert.equal(sameToken('[', '{'), false);
    assert.equal(sameToken('ab', 'abc'), false);
    const r = rng(3);
    const chars = 'aAbB-_.!@`[{0';
    for (let k = 0; k < 20_000; k++) {
      let a = '';
      let b = '';
      for (let j = 1 + r(4); j > 0; j--) {
        a += chars[r(chars.length)];
        b += chars[r(chars.length)];
      }
      assert.equal(sameToken(a, b), a.toLowerCase() === b.toLowerCase(), `${a} ${b}`);
    }
  });

  it('getParam finds a parameter whatever its case; a flag gives ""', () => {
    const ps = [
      { name: 'BRANCH', value: 'z9hG4bK1' },
      { name: 'rport', value: undefined },
    ];
    assert.equal(getParam(ps, 'branch'), 'z9hG4bK1');
    assert.equal(getParam(ps, 'Rport'), '');
    assert.equal(getParam(ps, 'received'), undefined);
  });

  it('splitTopLevel gives the same elements with and without a separator to find', () => {
    // the reference: the scan that tracks quotes and brackets, element by element
    const slow = (s: string): string[] => {
      const out: string[] = [];
      let start = 0;
      for (;;) {
        const i = findTopLevel(s, 44, start);
        const part = trimLws(i < 0 ? s.substring(start) : s.substring(start, i));
        if (part.length > 0) out.push(part);
        if (i < 0) return out;
        start = i + 1;
      }
    };
    const r = rng(11);
    const chars = 'ab ,"<>;\t';
    for (let k = 0; k < 20_000; k++) {
      let s = '';
      for (let j = r(12); j > 0; j--) s += chars[r(chars.length)];
      assert.deepEqual(splitTopLevel(s), slow(s), JSON.stringify(s));
    }
    assert.deepEqual(splitTopLevel('  '), []);
    assert.deepEqual(splitTopLevel(' <sip:a@b>;q=1 '), ['<sip:a@b>;q=1']);
    assert.deepEqual(splitTopLevel('"a,b" <sip:x>, <sip:y>'), ['"a,b" <sip:x>', '<sip:y>']);
  });

  it('requestTag: the same for a retransmission, different when an identifier differs', () => {
    const mk = (cseq: number, branch = 'z9hG4bK-c1') =>
      parseOk(
        Buffer.from(
          request('OPTIONS', 'sip:d@example.net')
            .toString('latin1')
            .replace('CSeq: 7 OPTIONS', `CSeq: ${cseq} OPTIONS`)
            .replace('branch=z9hG4bK-c1', `branch=${branch}`),
          'latin1',
        ),
      );
    const t = requestTag('pfx', mk(12));
    assert.match(t, /^pfx\.[0-9a-f]{8}$/);
    assert.equal(requestTag('pfx', mk(12)), t, 'a retransmission gets the same tag');
    assert.notEqual(requestTag('pfx', mk(21)), t, 'CSeq digits in another order');
    assert.notEqual(requestTag('pfx', mk(120)), t);
    assert.notEqual(requestTag('pfx', mk(12, 'z9hG4bK-c2')), t);
    assert.equal(requestTag('pfx', mk(0)).length, t.length);
  });
});
