/**
 * parseCredentials (one pass, fixed fields) against parseAuthParams (the generic split into a
 * dictionary it replaced on the hot path): the same fields, the same refusals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAuthParams, parseCredentials } from '../../src/sip/headers.js';
import { SipParseError } from '../../src/sip/message.js';

const FIELDS = [
  'username',
  'realm',
  'nonce',
  'uri',
  'response',
  'algorithm',
  'cnonce',
  'opaque',
  'qop',
  'nc',
] as const;

function outcome<T>(f: () => T): T | 'error' {
  try {
    return f();
  } catch (e) {
    assert.ok(e instanceof SipParseError, `not a SipParseError: ${e}`);
    return 'error';
  }
}

/** both parsers on one value: equal fields or both refuse */
function same(raw: string): void {
  const generic = outcome(() => parseAuthParams(raw, 'Authorization'));
  const fast = outcome(() => parseCredentials(raw));
  if (generic === 'error' || fast === 'error') {
    assert.equal(fast === 'error', generic === 'error', `refusal differs for ${JSON.stringify(raw)}`);
    return;
  }
  assert.equal(fast.scheme, generic.scheme, JSON.stringify(raw));
  for (const f of FIELDS) assert.equal(fast[f], generic.params[f], `${f} of ${JSON.stringify(raw)}`);
  assert.deepEqual({ ...fast.params }, { ...generic.params });
  assert.equal(fast.raw, raw);
}

describe('parseCredentials', () => {
  it('reads a UA’s Digest credentials', () => {
    const c = parseCredentials(
      'Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41", algorithm=MD5',
    );
    assert.equal(c.scheme, 'Digest');
    assert.equal(c.username, 'bob');
    assert.equal(c.realm, 'biloxi.com');
    assert.equal(c.uri, 'sip:bob@biloxi.com');
    assert.equal(c.qop, 'auth');
    assert.equal(c.nc, '00000001');
    assert.equal(c.cnonce, '0a4f113b');
    assert.equal(c.response, '6629fae49393a05397450978507c4ef1');
    assert.equal(c.opaque, '5ccc069c403ebaf9f0171e9517f40e41');
    assert.equal(c.algorithm, 'MD5');
  });

  it('agrees with the generic parser on edge cases', () => {
    for (const raw of [
      'Digest',
      '  Digest   ',
      'Digest username="a\\"b", realm="x,y", NONCE = "n" ,, uri=<sip:a,b>',
      'Digest username="a\\\\", realm=""',
      'Digest username=', // empty value
      'Digest username="', // an unterminated quote
      'Digest username="abc', // no closing quote
      'Digest username', // no '='
      'Digest user name="x"', // a name that is not a token
      'Digest username="a", username="b"', // the last one counts
      'Digest ,username="u",',
      'Di@est username="u"',
      'Digest\tusername="u",\trealm=r',
      'Digest username="a"b"',
      'Digest x-extra="1", username="u"',
    ])
      same(raw);
  });

  it('agrees with the generic parser on random values', () => {
    const bits = [
      'Digest ',
      'username',
      'realm',
      'nonce',
      'uri',
      'qop',
      'nc',
      'x',
      '=',
      '"',
      '\\',
      ',',
      ' ',
      '\t',
      '<',
      '>',
      'sip:a@b',
      'auth',
      '@',
      ';',
    ];
    // a fixed LCG: the same values every run
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let k = 0; k < 5000; k++) {
      let raw = rnd(4) === 0 ? '' : 'Digest ';
      const len = 1 + rnd(14);
      for (let j = 0; j < len; j++) raw += bits[rnd(bits.length)];
      same(raw);
    }
  });
});
