import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { messageLength, parseMessage } from '../../src/sip/message.js';
import {
  BASE_HEADERS,
  parseOk,
  request,
  throwsReason,
  typicalInvite,
  typicalRegister,
  wire,
} from './helpers.js';

describe('round trip and edits', () => {
  it('an unmodified message serializes to the very same buffer', () => {
    for (const b of [typicalInvite(), typicalRegister()]) {
      const m = parseOk(b);
      void m.vias;
      void m.from;
      void m.contacts;
      assert.equal(m.modified, false);
      assert.equal(m.serialize(), b);
    }
  });

  it('insert our Via at the top; everything else byte-identical', () => {
    const b = typicalInvite();
    const m = parseOk(b);
    m.addHeader('Via', 'SIP/2.0/UDP 203.0.113.1;branch=z9hG4bK-proxy1', 'top');
    const out = m.serialize();
    const s = b.toString('latin1');
    const firstNl = s.indexOf('\r\n') + 2;
    assert.equal(
      out.toString('latin1'),
      s.substring(0, firstNl) +
        'Via: SIP/2.0/UDP 203.0.113.1;branch=z9hG4bK-proxy1\r\n' +
        s.substring(firstNl),
    );
    const again = parseOk(out);
    assert.equal(again.vias.length, 2);
    assert.equal(again.topVia?.branch, 'z9hG4bK-proxy1');
    assert.equal(m.topVia?.branch, 'z9hG4bK-proxy1', 'accessor cache refreshed after edit');
  });

  it('an edit forgets only what was parsed from the edited header', () => {
    const m = parseOk(typicalInvite());
    const via = m.topVia;
    const from = m.from;
    const contacts = m.contacts;
    assert.equal(m.maxForwards, 70);
    m.replaceHeader('Max-Forwards', '69');
    assert.equal(m.maxForwards, 69, 'the edited header is parsed again');
    assert.equal(m.topVia, via, 'the Via parse is kept');
    assert.equal(m.from, from);
    assert.equal(m.contacts, contacts);
    m.addHeader('Contact', '<sip:second@192.0.2.9>');
    assert.equal(m.contacts.length, contacts.length + 1);
    assert.equal(m.topVia, via);
    m.addHeader('Via', 'SIP/2.0/UDP 203.0.113.1;branch=z9hG4bK-p2', 'top');
    assert.equal(m.topVia?.branch, 'z9hG4bK-p2');
    m.removeHeaderValue('via', 0);
    assert.equal(m.topVia?.branch, via?.branch);
    m.replaceHeader('From', '<sip:other@example.org>;tag=zz');
    assert.equal(m.fromTag, 'zz');
    assert.equal(m.cseq.seq, 1);
    m.replaceHeader('CSeq', '9 INVITE');
    assert.equal(m.cseq.seq, 9, 'the CSeq parse is renewed');
    m.setRuri('sip:new@example.org');
    assert.equal(m.parsedRuri.user, 'new');
    assert.equal(m.fromTag, 'zz');
  });

  it('add at the bottom, remove, replace', () => {
    const m = parseOk(typicalInvite());
    m.addHeader('X-Trace', 'abc');
    assert.equal(m.removeHeader('user-agent'), 1);
    assert.equal(m.removeHeader('nonexistent'), 0);
    m.replaceHeader('max-forwards', '69');
    const out = parseOk(m.serialize());
    assert.equal(out.header('x-trace'), 'abc');
    assert.equal(out.hasHeader('User-Agent'), false);
    assert.equal(out.maxForwards, 69);
    const names = out.headerFields().map((f) => f.name);
    assert.equal(names[names.length - 1], 'X-Trace');
    assert.equal(names[1], 'Max-Forwards', 'replaced in place');
    assert.equal(out.body.toString(), m.body.toString());
    assert.deepEqual(out.body, parseOk(typicalInvite()).body);
  });

  it('typed accessor caches follow edits', () => {
    const m = parseOk(typicalInvite());
    assert.equal(m.from.tag, '9fxced76sl');
    assert.equal(m.to.tag, undefined);
    assert.equal(m.cseq.seq, 1);
    m.replaceHeader('From', '<sip:x@example.org>;tag=new');
    m.replaceHeader('To', '<sip:y@example.org>;tag=t2');
    m.replaceHeader('CSeq', '2 INVITE');
    assert.equal(m.from.tag, 'new');
    assert.equal(m.to.tag, 't2');
    assert.equal(m.cseq.seq, 2);
    m.removeHeader('via');
    assert.deepEqual(m.vias, []);
  });

  it('replace keeps the name spelling of the original line', () => {
    const m = parseOk(request('OPTIONS', 'sip:d@example.net', ['s: old']));
    m.replaceHeader('Subject', 'new');
    assert.match(m.toString(), /\r\ns: new\r\n/);
  });

  it('remove one value of a multi-valued header', () => {
    const m = parseOk(
      request('OPTIONS', 'sip:d@example.net', [
        'Route: <sip:p1.example.org;lr>, <sip:p2.example.org;lr>',
        'Route: <sip:p3.example.org;lr>',
      ]),
    );
    assert.equal(m.removeHeaderValue('route', 0), true);
    assert.deepEqual(
      m.routes.map((r) => r.uri),
      ['sip:p2.example.org;lr', 'sip:p3.example.org;lr'],
    );
    assert.equal(m.removeHeaderValue('route', 1), true);
    assert.equal(m.removeHeaderValue('route', 5), false);
    const out = parseOk(m.serialize());
    assert.deepEqual(out.headers('route'), ['<sip:p2.example.org;lr>']);
  });

  it('removeTopVia pops a via-parm from a combined line', () => {
    const m = parseOk(
      wire([
        'SIP/2.0 200 OK',
        'Via: SIP/2.0/UDP proxy.example.org;branch=z9hG4bK-p, SIP/2.0/UDP client.example.org;branch=z9hG4bK-c',
        ...BASE_HEADERS.slice(1),
        'Content-Length: 0',
      ]),
    );
    assert.equal(m.removeTopVia(), true);
    const out = parseOk(m.serialize());
    assert.deepEqual(
      out.vias.map((v) => v.host),
      ['client.example.org'],
    );
  });

  it('change the Request-URI', () => {
    const b = typicalInvite();
    const m = parseOk(b);
    m.setRuri('sip:dave@198.51.100.20:5062;transport=tcp');
    assert.equal(m.ruri, 'sip:dave@example.net', 'ruri is as received');
    assert.equal(m.requestUri, 'sip:dave@198.51.100.20:5062;transport=tcp');
    const out = m.serialize().toString('latin1');
    assert.ok(out.startsWith('INVITE sip:dave@198.51.100.20:5062;transport=tcp SIP/2.0\r\nVia:'));
    const s = b.toString('latin1');
    assert.equal(out.substring(out.indexOf('\r\n')), s.substring(s.indexOf('\r\n')));
    assert.equal(parseOk(Buffer.from(out, 'latin1')).parsedRuri.port, 5062);
    assert.throws(() => m.setRuri('sip:a b'), RangeError);
  });

  it('replace the body: Content-Length recomputed, Content-Type set', () => {
    const m = parseOk(typicalInvite());
    m.setBody('hello world', 'text/plain');
    const out = parseOk(m.serialize());
    assert.equal(out.body.toString(), 'hello world');
    assert.equal(out.contentLength, 11);
    assert.equal(out.contentType?.mediaType, 'text/plain');
    assert.equal(out.headerCount('content-length'), 1);
    m.setBody(Buffer.alloc(0));
    const empty = parseOk(m.serialize());
    assert.equal(empty.body.length, 0);
    assert.equal(empty.contentLength, 0);
    assert.equal(empty.hasHeader('content-type'), false);
  });

  it('setBody on a datagram without Content-Length adds one; ensureContentLength', () => {
    const m = parseOk(
      wire(
        ['MESSAGE sip:d@example.net SIP/2.0', ...BASE_HEADERS.map((h) => h.replace('OPTIONS', 'MESSAGE'))],
        'hey',
      ),
      true,
    );
    m.ensureContentLength();
    assert.equal(parseOk(m.serialize()).body.toString(), 'hey');
    m.setBody('longer body');
    assert.equal(parseOk(m.serialize()).body.toString(), 'longer body');
  });

  it('edits reject header injection', () => {
    const m = parseOk(typicalInvite());
    assert.throws(() => m.addHeader('X', 'a\r\nInjected: 1'), RangeError);
    assert.throws(() => m.addHeader('Bad Name', 'v'), RangeError);
    assert.throws(() => m.replaceHeader('X', 'a\nb'), RangeError);
  });

  it('LF-only messages keep their line ends where untouched', () => {
    const b = wire(['OPTIONS sip:d@example.net SIP/2.0', ...BASE_HEADERS, 'Content-Length: 0'], '', '\n');
    const m = parseOk(b);
    m.addHeader('X-A', '1');
    const out = m.serialize().toString('latin1');
    assert.ok(out.includes('CSeq: 7 OPTIONS\nContent-Length: 0\nX-A: 1\r\n\n'));
    assert.equal(parseOk(Buffer.from(out, 'latin1')).header('x-a'), '1');
  });

  it('datagram with trailing bytes serializes without them', () => {
    const b = Buffer.concat([request('OPTIONS', 'sip:d@example.net'), Buffer.from('\r\n\r\njunk')]);
    const m = parseMessage(b, { datagram: true });
    assert.deepEqual(m.serialize(), request('OPTIONS', 'sip:d@example.net'));
  });

  it('generic accessors: header, headers, values, headerCount', () => {
    const m = parseOk(
      request('OPTIONS', 'sip:d@example.net', [
        'Allow: INVITE, ACK',
        'allow: BYE',
        'Date: Sat, 13 Nov 2010 23:29:00 GMT',
        'Supported: timer , 100rel',
        'Proxy-Require: sec-agree',
        'Unsupported: foo',
      ]),
    );
    assert.equal(m.header('ALLOW'), 'INVITE, ACK');
    assert.deepEqual(m.headers('Allow'), ['INVITE, ACK', 'BYE']);
    assert.deepEqual(m.values('allow'), ['INVITE', 'ACK', 'BYE']);
    assert.deepEqual(m.values('date'), ['Sat, 13 Nov 2010 23:29:00 GMT']);
    assert.equal(m.headerCount('allow'), 2);
    assert.deepEqual(m.supported, ['timer', '100rel']);
    assert.deepEqual(m.proxyRequire, ['sec-agree']);
    assert.deepEqual(m.unsupported, ['foo']);
    assert.deepEqual(m.require, []);
    assert.equal(m.header('missing'), undefined);
  });

  it('authorization and challenges', () => {
    const m = parseOk(typicalRegister());
    const [a] = m.authorization;
    assert.equal(a.scheme, 'Digest');
    assert.equal(a.username, 'erin');
    assert.equal(a.realm, 'example.org');
    assert.equal(a.uri, 'sip:example.org');
    assert.equal(a.algorithm, 'MD5');
    assert.equal(a.qop, undefined);
    const r = parseOk(
      wire([
        'SIP/2.0 407 Proxy Authentication Required',
        ...BASE_HEADERS,
        'Proxy-Authenticate: Digest realm="a, b", nonce="n\\"1", qop="auth,auth-int", stale=TRUE, opaque="o", algorithm=SHA-256',
        'Content-Length: 0',
      ]),
    );
    const [c] = r.proxyAuthenticate;
    assert.equal(c.realm, 'a, b');
    assert.equal(c.nonce, 'n"1');
    assert.deepEqual(c.qop, ['auth', 'auth-int']);
    assert.equal(c.stale, true);
    assert.equal(c.algorithm, 'SHA-256');
    assert.deepEqual(r.wwwAuthenticate, []);
  });

  it('Record-Route and Contact star', () => {
    const m = parseOk(
      request('REGISTER', 'sip:example.org', [
        'Record-Route: <sip:p1.example.org;lr>,<sip:p2.example.org;lr=on>',
        'Contact: *',
        'Expires: 0',
      ]),
    );
    assert.deepEqual(
      m.recordRoutes.map((r) => r.uri),
      ['sip:p1.example.org;lr', 'sip:p2.example.org;lr=on'],
    );
    assert.equal(m.contacts[0].star, true);
    assert.equal(m.expires, 0);
  });

  it('an edited message keeps every byte outside its edits, 8-bit ones included', () => {
    // UTF-8 in a display name and a body with bytes 0x80-0xff and a NUL: serialize() builds
    // an edited message as latin1 text, which must give back each byte as it came
    const body = Buffer.from([0x76, 0x3d, 0x30, 0x0d, 0x0a, 0x00, 0xff, 0x80, 0xc3, 0xa9, 0x7f]);
    // request() writes its lines and body as latin1: one byte per char
    const raw = request(
      'MESSAGE',
      'sip:d@example.net',
      ['X-Name: "Jos\u00c3\u00a9"', 'Content-Type: application/octet-stream'],
      body.toString('latin1'),
    );
    const m = parseOk(raw);
    m.addHeader('Via', 'SIP/2.0/UDP 203.0.113.1;branch=z9hG4bK-p', 'top');
    m.replaceHeader('Max-Forwards', '69');
    m.setRuri('sip:d@198.51.100.7');
    const out = m.serialize();
    const copy = Buffer.from(out);
    raw.fill(0x20);
    assert.deepEqual(out, copy, 'an edited message is a Buffer of its own, not a view on the received one');
    assert.deepEqual(out.subarray(out.length - body.length), body);
    assert.ok(out.includes(Buffer.from([0x4a, 0x6f, 0x73, 0xc3, 0xa9])), 'the UTF-8 name is intact');
    const again = parseOk(out);
    assert.deepEqual(again.body, body);
    assert.equal(again.header('max-forwards'), '69');
    // a new body with high bytes after edits
    const nb = Buffer.from([0xfe, 0x00, 0x41, 0xe2, 0x82, 0xac]);
    m.setBody(nb);
    assert.deepEqual(parseOk(m.serialize()).body, nb);
  });

  it('clone: a copy to edit apart, without parsing again', () => {
    const b = typicalInvite();
    const m = parseOk(b);
    m.replaceHeader('Max-Forwards', '69');
    m.setRuri('sip:dave@198.51.100.20');
    const before = m.serialize();
    const c = m.clone();
    assert.deepEqual(c.serialize(), before, 'the clone starts with the edits made so far');
    assert.equal(c.requestUri, 'sip:dave@198.51.100.20');
    c.addHeader('Via', 'SIP/2.0/UDP 203.0.113.1;branch=z9hG4bK-c', 'top');
    c.addHeader('Record-Route', '<sip:203.0.113.1;lr>', 'top');
    c.setRuri('sip:erin@198.51.100.21');
    assert.deepEqual(m.serialize(), before, 'edits of the clone leave the original as it was');
    assert.equal(m.topVia?.branch, parseOk(b).topVia?.branch);
    assert.equal(c.topVia?.branch, 'z9hG4bK-c');
    m.removeHeader('max-forwards');
    assert.equal(c.header('max-forwards'), '69', 'edits of the original leave the clone as it was');
    const out = parseOk(c.serialize());
    assert.equal(out.requestUri, 'sip:erin@198.51.100.21');
    assert.equal(out.vias.length, parseOk(b).vias.length + 1);
    assert.equal(c.removeTopVia(), true);
    assert.equal(c.topVia?.branch, parseOk(b).topVia?.branch);
  });

  it('removeTopVia and removeHeaderValue across separate lines and empty ones', () => {
    const m = parseOk(
      wire([
        'SIP/2.0 180 Ringing',
        'Via: SIP/2.0/UDP proxy.example.org;branch=z9hG4bK-p',
        'Via: SIP/2.0/UDP client.example.org;branch=z9hG4bK-c',
        ...BASE_HEADERS.slice(1),
        'Route:',
        'Route: <sip:a.example.org;lr>',
        'Route: <sip:b.example.org;lr>, <sip:c.example.org;lr>',
        'Content-Length: 0',
      ]),
    );
    assert.equal(m.removeTopVia(), true);
    assert.deepEqual(
      m.vias.map((v) => v.host),
      ['client.example.org'],
    );
    assert.equal(m.headerCount('via'), 1);
    // the empty line holds no value: index 1 is b, on the third line
    assert.equal(m.removeHeaderValue('route', 1), true);
    assert.deepEqual(m.headers('route'), ['', '<sip:a.example.org;lr>', '<sip:c.example.org;lr>']);
    assert.equal(m.removeHeaderValue('route', 0), true);
    assert.deepEqual(m.headers('route'), ['', '<sip:c.example.org;lr>']);
    assert.equal(m.removeHeaderValue('route', 1), false);
    assert.equal(m.removeHeaderValue('call-id', 0), true, 'a single-valued header goes whole');
    assert.equal(m.header('call-id'), undefined);
  });

  it('topVia reads the top Via alone; vias reads and checks them all', () => {
    const reply = (second: string) =>
      parseOk(
        wire([
          'SIP/2.0 200 OK',
          'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours.1',
          second,
          ...BASE_HEADERS.slice(1),
          'Content-Length: 0',
        ]),
      );
    const m = reply('Via: SIP/2.0/UDP bad_host!;branch=1');
    assert.equal(
      m.topVia?.branch,
      'z9hG4bK-ours.1',
      'a reply to our branch is matched without the hop below',
    );
    throwsReason(() => m.vias, 'Bad Via header');
    const ok = reply('Via: SIP/2.0/UDP client.example.org;branch=z9hG4bK-c');
    const top = ok.topVia;
    assert.equal(ok.vias[0], top, 'the top Via parsed alone is the first of all of them');
    assert.equal(ok.vias[1].host, 'client.example.org');
    ok.removeTopVia();
    assert.equal(ok.topVia?.branch, 'z9hG4bK-c', 'an edit of Via forgets the top one too');
    // a line holding two Vias is read whole
    const two = parseOk(
      wire([
        'SIP/2.0 200 OK',
        'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours.2, SIP/2.0 broken',
        ...BASE_HEADERS.slice(1),
        'Content-Length: 0',
      ]),
    );
    throwsReason(() => two.topVia, 'Bad Via header');
    const bad = parseOk(
      wire(['SIP/2.0 200 OK', 'Via: SIP/2.0 nothing', ...BASE_HEADERS.slice(1), 'Content-Length: 0']),
    );
    throwsReason(() => bad.topVia, 'Bad Via header');
  });

  it('messageLength frames stream messages', () => {
    const a = request('MESSAGE', 'sip:d@example.net', [], 'hello');
    const both = Buffer.concat([a, a]);
    assert.equal(messageLength(both), a.length);
    assert.equal(messageLength(a.subarray(0, a.length - 1)), -1);
    assert.equal(messageLength(a.subarray(0, 20)), -1);
    assert.throws(() => messageLength(wire(['OPTIONS sip:d@example.net SIP/2.0', ...BASE_HEADERS])));
  });
});
