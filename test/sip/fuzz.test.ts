/**
 * Property test: 100,000+ mutated and random messages. The parser must return a
 * SipMessage or throw SipParseError (nothing else); typed accessors likewise; an accepted
 * message must serialize to bytes that parse again to the same start line, header lines
 * and body, also after edits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SipParseError } from '../../src/sip/errors.js';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { parseUri } from '../../src/sip/uri.js';
import { BASE_HEADERS, request, typicalInvite, typicalRegister, wire } from './helpers.js';

const SEEDS: Buffer[] = [
  typicalInvite(),
  typicalRegister(),
  wire([
    'SIP/2.0 180 Ringing',
    ...BASE_HEADERS,
    'Contact: <sip:x@[2001:db8::1]:5060>;expires=10',
    'Content-Length: 0',
  ]),
  wire(['OPTIONS sip:d@example.net SIP/2.0', ...BASE_HEADERS, 'Content-Length: 0'], '', '\n'),
  wire(
    [
      'MESSAGE sip:%61b@example.net;lr?h=v SIP/2.0',
      'v: SIP/2.0/UDP h.example.org;branch=z9hG4bK1,SIP/2.0/TCP [2001:db8::2]:5061;received=2001:db8::3;rport=9',
      'f: "Q, \\"x\\"" <sip:q@example.org>;tag=1',
      't: sip:r@example.net',
      'i: fuzz-1',
      'CSeq: 3 MESSAGE',
      'Route: <sip:p1.example.org;lr>,',
      ' <sip:p2.example.org;lr=on>',
      'Proxy-Authorization: Digest username="u", realm="r", nonce="n", uri="sip:x", response="0", qop=auth, nc=00000001, cnonce="c"',
      'c: text/plain',
      'l: 5',
    ],
    'hello',
  ),
  request('BYE', 'tel:+1-555-0100', ['Require: timer', 'Max-Forwards: 5', 'Expires: 30']),
];

const TOKENS = [
  '\r\n',
  '\n',
  '\r',
  ' ',
  '\t',
  ':',
  ';',
  ',',
  '"',
  '\\',
  '<',
  '>',
  '\0',
  '\xff',
  '%',
  '%4',
  '\r\n ',
  '\r\n\r\n',
  'SIP/2.0',
  '4294967296',
  '99999999999999999999',
  '[',
  ']',
  '@',
  '=',
  'sip:',
  'Via: SIP/2.0/UDP x;branch=z9hG4bK9\r\n',
  'Content-Length: 3\r\n',
  'l: 999\r\n',
  'CSeq: 1 INVITE\r\n',
  'To: x\r\n',
].map((t) => Buffer.from(t, 'latin1'));

type Mut =
  | { k: 'flip'; pos: number; byte: number }
  | { k: 'insert'; pos: number; tok: number }
  | { k: 'delete'; pos: number; len: number }
  | { k: 'truncate'; pos: number }
  | { k: 'splice'; pos: number; seed: number; line: number }
  | { k: 'dupline'; line: number; to: number };

const mutArb: fc.Arbitrary<Mut> = fc.oneof(
  fc.record({ k: fc.constant('flip' as const), pos: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ k: fc.constant('insert' as const), pos: fc.nat(), tok: fc.nat(TOKENS.length - 1) }),
  fc.record({ k: fc.constant('delete' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ k: fc.constant('truncate' as const), pos: fc.nat() }),
  fc.record({
    k: fc.constant('splice' as const),
    pos: fc.nat(),
    seed: fc.nat(SEEDS.length - 1),
    line: fc.nat(),
  }),
  fc.record({ k: fc.constant('dupline' as const), line: fc.nat(), to: fc.nat() }),
);

function lineStarts(b: Buffer): number[] {
  const out = [0];
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) out.push(i + 1);
  return out;
}

function lineAt(b: Buffer, n: number): Buffer {
  const ls = lineStarts(b);
  const s = ls[n % ls.length];
  const e = b.indexOf(10, s);
  return b.subarray(s, e < 0 ? b.length : e + 1);
}

function apply(b: Buffer, m: Mut): Buffer {
  const len = b.length;
  switch (m.k) {
    case 'flip': {
      if (len === 0) return b;
      const c = Buffer.from(b);
      c[m.pos % len] = m.byte;
      return c;
    }
    case 'insert': {
      const p = m.pos % (len + 1);
      return Buffer.concat([b.subarray(0, p), TOKENS[m.tok], b.subarray(p)]);
    }
    case 'delete': {
      const p = m.pos % (len + 1);
      return Buffer.concat([b.subarray(0, p), b.subarray(p + m.len)]);
    }
    case 'truncate':
      return b.subarray(0, m.pos % (len + 1));
    case 'splice': {
      const ls = lineStarts(b);
      const p = ls[m.pos % ls.length];
      return Buffer.concat([b.subarray(0, p), lineAt(SEEDS[m.seed], m.line), b.subarray(p)]);
    }
    case 'dupline': {
      const ls = lineStarts(b);
      const p = ls[m.to % ls.length];
      return Buffer.concat([b.subarray(0, p), lineAt(b, m.line), b.subarray(p)]);
    }
  }
}

const inputArb = fc.oneof(
  {
    weight: 9,
    arbitrary: fc
      .tuple(fc.nat(SEEDS.length - 1), fc.array(mutArb, { minLength: 1, maxLength: 4 }))
      .map(([s, ms]) => ms.reduce(apply, SEEDS[s])),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) },
);

function isParseError(e: unknown): boolean {
  return e instanceof SipParseError;
}

/** Calls fn; it must return or throw SipParseError. */
function tolerant(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!isParseError(e)) throw e;
  }
}

function exercise(m: SipMessage): void {
  const getters: (() => unknown)[] = [
    () => m.vias,
    () => m.from,
    () => m.to,
    () => m.cseq,
    () => m.contacts.map((c) => (c.star ? undefined : parseUri(c.uri))),
    () => m.routes,
    () => m.recordRoutes,
    () => m.maxForwards,
    () => m.expires,
    () => m.contentType,
    () => m.authorization,
    () => m.proxyAuthorization,
    () => m.wwwAuthenticate,
    () => m.proxyAuthenticate,
    () => m.require,
    () => m.supported,
    () => (m.isRequest ? m.parsedRuri : undefined),
  ];
  for (const g of getters) tolerant(g);
}

function snapshot(m: SipMessage): unknown {
  return {
    isRequest: m.isRequest,
    method: m.method,
    status: m.status,
    reason: m.reason,
    ruri: m.requestUri,
    headers: m.headerFields().map((f) => [f.key, f.value]),
    body: m.body.toString('latin1'),
  };
}

let accepted = 0;

function check(buf: Buffer, datagram: boolean): void {
  let m: SipMessage;
  try {
    m = parseMessage(buf, { datagram });
  } catch (e) {
    if (!isParseError(e)) throw e;
    return;
  }
  accepted++;
  exercise(m);
  // unmodified: stable round trip
  const again = parseMessage(m.serialize(), { datagram });
  assert.deepEqual(snapshot(again), snapshot(m));
  // edited: still parses, edits visible, rest unchanged
  m.addHeader('Via', 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKfuzz', 'top');
  m.removeHeader('max-forwards');
  m.addHeader('X-Fuzz', 'yes');
  if (m.isRequest) m.setRuri('sip:rewritten@192.0.2.2');
  const edited = parseMessage(m.serialize(), { datagram });
  assert.deepEqual(snapshot(edited), snapshot(m));
  assert.equal(edited.headerFields()[0].value, 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKfuzz');
  assert.equal(edited.hasHeader('max-forwards'), false);
}

describe('fuzz', () => {
  it('100,000 mutated/random messages: only SipParseError, stable round trip', () => {
    for (const s of SEEDS) for (const d of [true, false]) parseMessage(s, { datagram: d });
    accepted = 0;
    fc.assert(
      fc.property(inputArb, fc.boolean(), (buf, datagram) => {
        check(buf, datagram);
      }),
      {
        numRuns: Number(process.env.FUZZ_RUNS ?? 100_000),
        seed: process.env.FUZZ_SEED === undefined ? 4475 : Number(process.env.FUZZ_SEED),
      },
    );
    // the mutations must leave a fair share of messages acceptable, or the round-trip
    // half of the property would be vacuous
    assert.ok(accepted > 10_000, `only ${accepted} accepted`);
    if (process.env.FUZZ_VERBOSE) console.log(`accepted ${accepted}`);
  });
});
