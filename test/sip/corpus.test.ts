/**
 * Torture corpus in the categories of RFC 4475 (messages written for this project).
 *
 * Policy decided here: a request or reply lacking Via, From, To, Call-ID or CSeq, or
 * carrying From/To/Call-ID/CSeq/Content-Length more than once, is a parse error; so is a
 * CSeq method that differs from the request method. Header values that are only parsed
 * on demand (Max-Forwards, Via, Contact, Expires, URIs) raise SipParseError from their
 * accessor instead.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMessage, SipParseError } from '../../src/sip/message.js';
import { parseUri } from '../../src/sip/uri.js';
import { BASE_HEADERS, parseFails, parseOk, request, throwsReason, wire } from './helpers.js';

describe('corpus: valid but unusual messages', () => {
  it('escaped characters in the Request-URI and headers are kept as written', () => {
    const m = parseOk(
      request('OPTIONS', 'sip:%63arol%20x@example.org;p=%41b?h%20x=v%3Bw', [
        'Contact: <sip:%61lice@example.org;tr%61nsport=tcp>',
      ]),
    );
    assert.equal(m.ruri, 'sip:%63arol%20x@example.org;p=%41b?h%20x=v%3Bw');
    const u = m.parsedRuri;
    assert.equal(u.user, '%63arol%20x');
    assert.deepEqual(u.params, [{ name: 'p', value: '%41b' }]);
    assert.deepEqual(u.headers, [{ name: 'h%20x', value: 'v%3Bw' }]);
    assert.equal(m.contacts[0].uri, 'sip:%61lice@example.org;tr%61nsport=tcp');
  });

  it('quoted display names with escapes, commas and angle brackets', () => {
    const m = parseOk(
      wire([
        'OPTIONS sip:dave@example.net SIP/2.0',
        'Via: SIP/2.0/UDP h.example.org;branch=z9hG4bK1',
        'From: "Doe, \\"J\\" <x>" <sip:j@example.org>;tag=a1',
        'To: sip:dave@example.net;tag=b2',
        'Call-ID: x1',
        'CSeq: 1 OPTIONS',
        'Contact: "A, B" <sip:a@h1.example.org>, <sip:b@h2.example.org;lr>;q=1',
        'Content-Length: 0',
      ]),
    );
    assert.equal(m.from.displayName, 'Doe, "J" <x>');
    assert.equal(m.from.uri, 'sip:j@example.org');
    assert.equal(m.from.tag, 'a1');
    // addr-spec: ;tag belongs to the header, not the URI
    assert.equal(m.to.uri, 'sip:dave@example.net');
    assert.equal(m.to.bracketed, false);
    assert.equal(m.to.tag, 'b2');
    assert.deepEqual(
      m.contacts.map((c) => [c.displayName, c.uri, c.q]),
      [
        ['A, B', 'sip:a@h1.example.org', undefined],
        [undefined, 'sip:b@h2.example.org;lr', 1],
      ],
    );
    assert.deepEqual(m.values('contact'), ['"A, B" <sip:a@h1.example.org>', '<sip:b@h2.example.org;lr>;q=1']);
  });

  it('odd whitespace: around colons, slashes, semicolons and equals; tabs; folding', () => {
    const m = parseOk(
      wire([
        'OPTIONS sip:dave@example.net SIP/2.0',
        'Via  \t:  SIP / 2.0 / UDP   h1.example.org : 5070 ; branch = z9hG4bK-ws ;rport',
        'v: SIP/2.0/TCP h2.example.org',
        '  ;branch=z9hG4bK-folded',
        'From:\t<sip:carol@example.org>\t;\ttag=t1',
        'To:',
        ' <sip:dave@example.net>',
        'Call-ID:   ws-1   ',
        'CSeq:   12\t OPTIONS',
        'Subject: first line',
        '\tsecond line',
        '   third line',
        'Content-Length:   0  ',
      ]),
    );
    const [v1, v2] = m.vias;
    assert.equal(v1.transport, 'UDP');
    assert.equal(v1.host, 'h1.example.org');
    assert.equal(v1.port, 5070);
    assert.equal(v1.branch, 'z9hG4bK-ws');
    assert.equal(v1.rport, true);
    assert.equal(v2.transport, 'TCP');
    assert.equal(v2.branch, 'z9hG4bK-folded');
    assert.equal(m.from.tag, 't1');
    assert.equal(m.to.uri, 'sip:dave@example.net');
    assert.equal(m.callId, 'ws-1');
    assert.deepEqual(m.cseq, { seq: 12, method: 'OPTIONS' });
    assert.equal(m.header('subject'), 'first line second line third line');
    assert.equal(m.contentLength, 0);
  });

  it('LF-only line ends are tolerated', () => {
    const b = wire(['OPTIONS sip:d@example.net SIP/2.0', ...BASE_HEADERS, 'Content-Length: 3'], 'abc', '\n');
    const m = parseOk(b);
    assert.equal(m.callId, 'cid-0001@client.example.org');
    assert.equal(m.body.toString(), 'abc');
    assert.equal(m.serialize(), b);
  });

  it('all compact header forms map to their long names', () => {
    const m = parseOk(
      wire(
        [
          'OPTIONS sip:d@example.net SIP/2.0',
          'v: SIP/2.0/UDP h.example.org;branch=z9hG4bK-c',
          'f: <sip:c@example.org>;tag=1',
          't: <sip:d@example.net>',
          'i: compact-1',
          'CSeq: 1 OPTIONS',
          'm: <sip:c@h.example.org>',
          'e: gzip',
          's: hi',
          'k: path',
          'o: presence',
          'u: dialog',
          'r: <sip:x@example.org>',
          'b: <sip:y@example.org>',
          'x: 1800',
          'y: abc',
          'a: *;audio',
          'j: *;video',
          'd: proxy',
          'c: text/plain',
          'l: 2',
        ],
        'hi',
      ),
    );
    const expect: Record<string, string> = {
      'Call-ID': 'compact-1',
      Contact: '<sip:c@h.example.org>',
      'Content-Encoding': 'gzip',
      Subject: 'hi',
      Supported: 'path',
      Event: 'presence',
      'Allow-Events': 'dialog',
      'Refer-To': '<sip:x@example.org>',
      'Referred-By': '<sip:y@example.org>',
      'Session-Expires': '1800',
      Identity: 'abc',
      'Accept-Contact': '*;audio',
      'Reject-Contact': '*;video',
      'Request-Disposition': 'proxy',
      'Content-Type': 'text/plain',
      'Content-Length': '2',
      From: '<sip:c@example.org>;tag=1',
      To: '<sip:d@example.net>',
      Via: 'SIP/2.0/UDP h.example.org;branch=z9hG4bK-c',
    };
    for (const [name, value] of Object.entries(expect)) {
      assert.equal(m.header(name), value, name);
      assert.equal(m.header(name.toUpperCase()), value, name);
    }
    assert.equal(m.header('I'), 'compact-1');
    assert.deepEqual(m.supported, ['path']);
    assert.equal(m.contentType?.mediaType, 'text/plain');
  });

  it('long values: a 64 KiB header value and 300 Via values', () => {
    const long = 'x'.repeat(65536);
    const vias = Array.from({ length: 300 }, (_, i) => `SIP/2.0/UDP h${i}.example.org;branch=z9hG4bK${i}`);
    const m = parseOk(request('OPTIONS', 'sip:d@example.net', [`X-Long: ${long}`, `Via: ${vias.join(',')}`]));
    assert.equal(m.header('x-long'), long);
    assert.equal(m.vias.length, 301);
    assert.equal(m.vias[300].host, 'h299.example.org');
  });

  it('unknown methods, unknown URI schemes and unknown headers are accepted', () => {
    const m = parseOk(request('FROBNICATE', 'urn:service:sos', ['X-Weird-Header: ;;,,']));
    assert.equal(m.method, 'FROBNICATE');
    assert.equal(m.parsedRuri.kind, 'other');
    assert.equal(m.parsedRuri.scheme, 'urn');
    assert.equal(m.parsedRuri.opaque, 'service:sos');
    assert.equal(m.header('x-weird-header'), ';;,,');
    assert.deepEqual(m.values('x-weird-header'), [';;']);
    const t = parseOk(request('INVITE', 'tel:+1-201-555-0123;phone-context=+1'));
    assert.equal(t.parsedRuri.kind, 'tel');
    assert.equal(t.parsedRuri.user, '+1-201-555-0123');
  });

  it('replies: status, reason with spaces, method from CSeq, empty reason', () => {
    const r = parseOk(
      wire([
        'SIP/2.0 183 Session  Progress here',
        ...BASE_HEADERS.filter((h) => !h.startsWith('CSeq')),
        'CSeq: 5 INVITE',
        'Content-Length: 0',
      ]),
    );
    assert.equal(r.isRequest, false);
    assert.equal(r.status, 183);
    assert.equal(r.reason, 'Session  Progress here');
    assert.equal(r.method, 'INVITE');
    assert.equal(r.ruri, '');
    const e = parseOk(wire(['SIP/2.0 200 ', ...BASE_HEADERS, 'Content-Length: 0']));
    assert.equal(e.reason, '');
    assert.equal(e.method, 'OPTIONS');
  });

  it('version is case-insensitive and kept as written', () => {
    const m = parseOk(wire(['OPTIONS sip:d@example.net sip/2.0', ...BASE_HEADERS, 'Content-Length: 0']));
    assert.equal(m.version, 'sip/2.0');
  });

  it('leading CRLFs before the start line are skipped', () => {
    const inner = request('OPTIONS', 'sip:d@example.net');
    const m = parseOk(Buffer.concat([Buffer.from('\r\n\r\n'), inner]));
    assert.equal(m.method, 'OPTIONS');
    assert.deepEqual(m.serialize(), inner);
  });

  it('RFC 5118 IPv6 forms in Request-URI, Via, received, Contact', () => {
    const m = parseOk(
      wire([
        'REGISTER sip:[2001:db8::10]:5070 SIP/2.0',
        'Via: SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bK-6;received=2001:db8::9:255;rport=5061',
        'Via: SIP/2.0/UDP [2001:db8::1];received=[2001:db8::2]',
        'From: <sip:u@[2001:db8::10]>;tag=6',
        'To: <sip:u@[2001:db8::10]>',
        'Call-ID: v6',
        'CSeq: 1 REGISTER',
        'Contact: <sip:u@[2001:db8::20]:5080;transport=tcp>;expires=60',
        'Content-Length: 0',
      ]),
    );
    assert.equal(m.parsedRuri.host, '[2001:db8::10]');
    assert.equal(m.parsedRuri.port, 5070);
    assert.equal(m.vias[0].host, '[2001:db8::9:1]');
    assert.equal(m.vias[0].port, 5060);
    assert.equal(m.vias[0].received, '2001:db8::9:255');
    assert.equal(m.vias[0].rportValue, 5061);
    assert.equal(m.vias[1].port, undefined);
    assert.equal(m.vias[1].received, '[2001:db8::2]');
    const cu = parseUri(m.contacts[0].uri);
    assert.equal(cu.host, '[2001:db8::20]');
    assert.equal(cu.port, 5080);
    assert.equal(m.contacts[0].expires, 60);
  });

  it('non-UTF-8 bytes in headers are accepted and round-trip', () => {
    const head = Buffer.from('OPTIONS sip:d@example.net SIP/2.0\r\nSubject: caf', 'latin1');
    const rest = Buffer.from(`\r\n${BASE_HEADERS.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`, 'latin1');
    const b = Buffer.concat([head, Buffer.from([0xe9, 0xff, 0xc3, 0x28]), rest]);
    const m = parseOk(b);
    assert.equal(
      Buffer.from(m.header('subject') ?? '', 'latin1').toString('hex'),
      Buffer.from('caf').toString('hex') + 'e9ffc328',
    );
    assert.equal(m.serialize(), b);
    m.addHeader('X-A', 'b');
    const again = parseOk(m.serialize());
    assert.equal(again.header('subject'), m.header('subject'));
  });

  it('NUL bytes in the body are fine', () => {
    const m = parseOk(request('MESSAGE', 'sip:d@example.net', [], 'a\0b'));
    assert.deepEqual([...m.body], [0x61, 0, 0x62]);
  });

  it('Content-Length with leading zeros, and datagram extra bytes ignored', () => {
    const b = wire(
      ['OPTIONS sip:d@example.net SIP/2.0', ...BASE_HEADERS, 'Content-Length: 0003'],
      'abcGARBAGE',
    );
    const m = parseOk(b, true);
    assert.equal(m.body.toString(), 'abc');
    assert.equal(m.serialize().toString('latin1').endsWith('\r\n\r\nabc'), true);
  });

  it('datagram without Content-Length: body runs to the end', () => {
    const m = parseOk(
      wire(
        ['MESSAGE sip:d@example.net SIP/2.0', ...BASE_HEADERS.map((h) => h.replace('OPTIONS', 'MESSAGE'))],
        'hello',
      ),
      true,
    );
    assert.equal(m.body.toString(), 'hello');
    assert.equal(m.contentLength, undefined);
  });

  it('huge Expires is clamped, q values parse', () => {
    const m = parseOk(
      request('REGISTER', 'sip:example.org', [
        'Expires: 99999999999999999999',
        'Contact: <sip:a@b.example>;q=0.125',
      ]),
    );
    assert.equal(m.expires, 0xffffffff);
    assert.equal(m.contacts[0].q, 0.125);
  });
});

describe('corpus: malformed messages', () => {
  it('SIP version other than 2.0', () => {
    const e = parseFails(
      wire(['OPTIONS sip:d@example.net SIP/7.0', ...BASE_HEADERS, 'Content-Length: 0']),
      'Unsupported SIP version',
    );
    assert.equal(e.status, 505);
    assert.equal(e.isRequest, true);
    assert.equal(e.method, 'OPTIONS');
    parseFails(
      wire(['OPTIONS sip:d@example.net SIP/2.0x', ...BASE_HEADERS, 'Content-Length: 0']),
      'Bad SIP version',
    );
    parseFails(
      wire(['OPTIONS sip:d@example.net HTTP/1.1', ...BASE_HEADERS, 'Content-Length: 0']),
      'Bad SIP version',
    );
    parseFails(wire(['SIP/3.0 200 OK', ...BASE_HEADERS, 'Content-Length: 0']), 'Unsupported SIP version');
  });

  it('bad start lines', () => {
    parseFails(wire(['OPTIONS sip:d@example.net', ...BASE_HEADERS]), 'Bad request line');
    parseFails(wire(['OPTIONS sip:d@example.net; lr SIP/2.0', ...BASE_HEADERS]), 'Bad request line');
    parseFails(wire(['OPT<IONS sip:d@example.net SIP/2.0', ...BASE_HEADERS]), 'Bad request method');
    parseFails(wire(['OPTIONS nocolon SIP/2.0', ...BASE_HEADERS]), 'Bad Request-URI');
    parseFails(wire(['SIP/2.0 99 Too Low', ...BASE_HEADERS]), 'Bad status code');
    parseFails(wire(['SIP/2.0 700 Too High', ...BASE_HEADERS]), 'Bad status code');
    parseFails(wire(['SIP/2.0 2000 Long', ...BASE_HEADERS]), 'Bad status code');
    parseFails(Buffer.from('\r\n\r\n'), 'Empty message');
    parseFails(Buffer.alloc(0), 'Empty message');
  });

  it('huge and bad numbers: CSeq, Content-Length, Max-Forwards, ports', () => {
    const base = request('OPTIONS', 'sip:d@example.net');
    parseFails(edit(base, 'CSeq: 7', 'CSeq: 2147483648'), 'Bad CSeq number');
    parseFails(edit(base, 'CSeq: 7', 'CSeq: 99999999999999999999999'), 'Bad CSeq number');
    parseFails(edit(base, 'CSeq: 7', 'CSeq: -1'), 'Bad CSeq number');
    parseFails(edit(base, 'CSeq: 7 OPTIONS', 'CSeq: 7'), 'Bad CSeq method');
    assert.equal(parseOk(edit(base, 'CSeq: 7', 'CSeq: 2147483647')).cseq.seq, 2147483647);
    parseFails(
      edit(base, 'Content-Length: 0', 'Content-Length: 99999999999999999999'),
      'Bad Content-Length header',
    );
    parseFails(edit(base, 'Content-Length: 0', 'Content-Length: -5'), 'Bad Content-Length header');
    parseFails(edit(base, 'Content-Length: 0', 'Content-Length: 1 2'), 'Bad Content-Length header');
    throwsReason(
      () => parseOk(edit(base, 'Max-Forwards: 70', 'Max-Forwards: 300')).maxForwards,
      'Bad Max-Forwards header',
    );
    throwsReason(
      () => parseOk(edit(base, 'Max-Forwards: 70', 'Max-Forwards: 1000000000000000000000')).maxForwards,
      'Bad Max-Forwards header',
    );
    throwsReason(
      () => parseOk(edit(base, 'Max-Forwards: 70', 'Max-Forwards: 7x')).maxForwards,
      'Bad Max-Forwards header',
    );
    throwsReason(
      () => parseOk(edit(base, 'client.example.org:5060', 'client.example.org:70000')).vias,
      'Bad Via port',
    );
    throwsReason(
      () => parseOk(edit(base, 'sip:d@example.net', 'sip:d@example.net:65536')).parsedRuri,
      'Bad URI port',
    );
    throwsReason(
      () => parseOk(edit(base, 'Max-Forwards: 70', 'Contact: <sip:a@b>;expires=1x')).contacts,
      'Bad Contact expires',
    );
    throwsReason(
      () => parseOk(edit(base, 'Max-Forwards: 70', 'Contact: <sip:a@b>;q=2')).contacts,
      'Bad q value',
    );
  });

  it('missing required headers are parse errors', () => {
    const names = ['Via', 'From', 'To', 'Call-ID', 'CSeq'];
    for (const n of names) {
      const hs = BASE_HEADERS.filter((h) => !h.startsWith(`${n}:`));
      parseFails(
        wire(['OPTIONS sip:d@example.net SIP/2.0', ...hs, 'Content-Length: 0']),
        `Missing ${n} header`,
      );
    }
  });

  it('duplicate single-instance headers are parse errors', () => {
    for (const [line, n] of [
      ['From: <sip:x@example.org>;tag=2', 'From'],
      ['To: <sip:y@example.org>', 'To'],
      ['Call-ID: other', 'Call-ID'],
      ['CSeq: 8 OPTIONS', 'CSeq'],
      ['l: 0', 'Content-Length'],
    ]) {
      parseFails(request('OPTIONS', 'sip:d@example.net', [line]), `Duplicate ${n} header`);
    }
    throwsReason(
      () => parseOk(request('OPTIONS', 'sip:d@example.net', ['Max-Forwards: 10'])).maxForwards,
      'Duplicate Max-Forwards header',
    );
  });

  it('CSeq method must match the request method', () => {
    parseFails(
      edit(request('OPTIONS', 'sip:d@example.net'), 'CSeq: 7 OPTIONS', 'CSeq: 7 INVITE'),
      'CSeq method mismatch',
    );
  });

  it('Content-Length mismatches', () => {
    const base = request('MESSAGE', 'sip:d@example.net', [], 'hello');
    parseFails(edit(base, 'Content-Length: 5', 'Content-Length: 6'), 'Content-Length larger than message');
    parseFails(
      edit(base, 'Content-Length: 5', 'Content-Length: 6'),
      'Content-Length larger than message',
      true,
    );
    const shorter = parseOk(edit(base, 'Content-Length: 5', 'Content-Length: 2'), true);
    assert.equal(shorter.body.toString(), 'he');
    const noCl = wire(['OPTIONS sip:d@example.net SIP/2.0', ...BASE_HEADERS]);
    parseFails(noCl, 'Missing Content-Length header', false);
    assert.equal(parseOk(noCl, true).body.length, 0);
  });

  it('NUL byte in the header section', () => {
    const b = request('OPTIONS', 'sip:d@example.net', ['Subject: a\0b']);
    const e = parseFails(b, 'NUL byte in header section');
    assert.equal(e.callId, 'cid-0001@client.example.org');
  });

  it('header section not terminated, malformed header lines, bad folding', () => {
    const b = Buffer.from(`OPTIONS sip:d@example.net SIP/2.0\r\n${BASE_HEADERS.join('\r\n')}\r\n`);
    parseFails(b, 'Header section not terminated', true);
    parseFails(request('OPTIONS', 'sip:d@example.net', ['this line has no colon']), 'Malformed header line');
    parseFails(request('OPTIONS', 'sip:d@example.net', ['Bad Name: x']), 'Malformed header line');
    parseFails(request('OPTIONS', 'sip:d@example.net', [': novalue']), 'Malformed header line');
    parseFails(
      wire(['OPTIONS sip:d@example.net SIP/2.0', ' folded-start', ...BASE_HEADERS]),
      'Bad header folding',
    );
  });

  it('the error carries what a stateless 400 needs', () => {
    const b = request('INVITE', 'sip:d@example.net', [
      'Via: SIP/2.0/TCP second.example.org;branch=z9hG4bK2',
      'Broken',
    ]);
    const e = parseFails(b, 'Malformed header line');
    assert.equal(e.isRequest, true);
    assert.equal(e.method, 'INVITE');
    assert.deepEqual(e.via, [
      'SIP/2.0/UDP client.example.org:5060;branch=z9hG4bK-c1',
      'SIP/2.0/TCP second.example.org;branch=z9hG4bK2',
    ]);
    assert.equal(e.from, '"Carol" <sip:carol@example.org>;tag=fr-11');
    assert.equal(e.to, '<sip:dave@example.net>');
    assert.equal(e.callId, 'cid-0001@client.example.org');
    assert.equal(e.cseq, '7 INVITE');
    assert.equal(e.canReply, true);
    const r = parseFails(
      wire(['SIP/2.0 200 OK', ...BASE_HEADERS, 'Content-Length: 9']),
      'Content-Length larger than message',
    );
    assert.equal(r.isRequest, false);
    assert.equal(r.method, 'OPTIONS');
    assert.equal(r.canReply, false);
  });

  it('malformed structured headers fail from their accessor with SipParseError', () => {
    const cases: [string, (m: ReturnType<typeof parseOk>) => unknown, string][] = [
      ['Via: SIP/2.0 host.example.org', (m) => m.vias, 'Bad Via header'],
      ['Via: SIP/2.0/UDP bad_host!;branch=1', (m) => m.vias, 'Bad Via header'],
      ['Contact: <sip:a@b', (m) => m.contacts, 'Bad Contact: missing >'],
      ['Contact: "unterminated <sip:a@b>', (m) => m.contacts, 'Bad Contact: unterminated quote'],
      ['Route: sip:no-brackets@example.org', (m) => m.routes, 'Bad Route'],
      ['Content-Type: nothing', (m) => m.contentType, 'Bad Content-Type'],
      ['Authorization: Digest username', (m) => m.authorization, 'Bad Authorization'],
      ['Require: a b', (m) => m.require, 'Bad Require'],
      ['Expires: soon', (m) => m.expires, 'Bad Expires header'],
    ];
    for (const [line, get, reason] of cases) {
      const m = parseOk(request('OPTIONS', 'sip:d@example.net', [line]));
      throwsReason(() => get(m), reason);
    }
    const m = parseOk(request('OPTIONS', 'sip:d@example.net'));
    m.replaceHeader('From', '<sip:x@example.org');
    throwsReason(() => m.from, 'Bad From: missing >');
  });

  it('only SipParseError escapes parseMessage for assorted garbage', () => {
    const samples = [
      Buffer.from('SIP/'),
      Buffer.from('\0\0\0\0'),
      Buffer.from([0xff, 0xfe, 0x0a, 0x0a]),
      Buffer.from('INVITE'),
      Buffer.from('INVITE sip:a@b SIP/2.0\n\n'),
      Buffer.from(`INVITE sip:a@b SIP/2.0\r\n${'X'.repeat(70000)}\r\n\r\n`),
    ];
    for (const b of samples) {
      for (const datagram of [true, false]) {
        assert.throws(
          () => parseMessage(b, { datagram }),
          (e: unknown) => e instanceof SipParseError,
        );
      }
    }
  });
});

function edit(b: Buffer, from: string, to: string): Buffer {
  const s = b.toString('latin1');
  assert.ok(s.includes(from), from);
  return Buffer.from(s.replace(from, to), 'latin1');
}
