import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SipParseError } from '../../src/sip/errors.js';
import { buildParseErrorReply, buildReply, generateTag } from '../../src/sip/reply.js';
import { parseFails, parseOk, request, typicalInvite, wire } from './helpers.js';

describe('local replies', () => {
  it('copies Via (all, in order), From, To, Call-ID, CSeq and adds a To-tag', () => {
    const req = parseOk(
      request('INVITE', 'sip:d@example.net', [
        'Via: SIP/2.0/TCP second.example.org;branch=z9hG4bK2',
        'Record-Route: <sip:p;lr>',
      ]),
    );
    const b = buildReply(req, 486, 'Busy Here', { toTag: 'tt1' });
    assert.equal(
      b.toString(),
      'SIP/2.0 486 Busy Here\r\n' +
        'Via: SIP/2.0/UDP client.example.org:5060;branch=z9hG4bK-c1\r\n' +
        'From: "Carol" <sip:carol@example.org>;tag=fr-11\r\n' +
        'To: <sip:dave@example.net>;tag=tt1\r\n' +
        'Call-ID: cid-0001@client.example.org\r\n' +
        'CSeq: 7 INVITE\r\n' +
        'Via: SIP/2.0/TCP second.example.org;branch=z9hG4bK2\r\n' +
        'Content-Length: 0\r\n\r\n',
    );
    const r = parseOk(b);
    assert.equal(r.status, 486);
    assert.equal(r.reason, 'Busy Here');
    assert.equal(r.method, 'INVITE');
    assert.equal(r.vias.length, 2);
    assert.equal(r.toTag, 'tt1');
  });

  it('keeps an existing To-tag; generates one when none given; none for 100', () => {
    const tagged = parseOk(
      Buffer.from(
        request('BYE', 'sip:d@example.net')
          .toString('latin1')
          .replace('To: <sip:dave@example.net>', 'To: <sip:dave@example.net>;tag=x9'),
        'latin1',
      ),
    );
    assert.equal(parseOk(buildReply(tagged, 200, 'OK', { toTag: 'other' })).toTag, 'x9');
    const plain = parseOk(request('OPTIONS', 'sip:d@example.net'));
    const gen = parseOk(buildReply(plain, 200, 'OK')).toTag;
    assert.ok(gen !== undefined && gen.length > 8);
    assert.notEqual(parseOk(buildReply(plain, 200, 'OK')).toTag, gen);
    assert.equal(parseOk(buildReply(plain, 100, 'Trying')).toTag, undefined);
    assert.equal(parseOk(buildReply(plain, 100, 'Trying', { toTag: 'k' })).toTag, 'k');
    const addrSpec = parseOk(
      Buffer.from(
        request('OPTIONS', 'sip:d@example.net')
          .toString('latin1')
          .replace('To: <sip:dave@example.net>', 'To: sip:dave@example.net'),
        'latin1',
      ),
    );
    const r = parseOk(buildReply(addrSpec, 404, 'Not Found', { toTag: 'q' }));
    assert.equal(r.header('to'), 'sip:dave@example.net;tag=q');
    assert.equal(r.to.uri, 'sip:dave@example.net');
  });

  it('extra headers, Server, body with Content-Type, SER warning', () => {
    const req = parseOk(typicalInvite());
    const b = buildReply(req, 200, 'OK', {
      toTag: 'z',
      headers: [['Contact', '<sip:srv@192.0.2.1>'], 'Allow: INVITE, BYE'],
      server: 'sip-express-router (0.1.0)',
      body: 'v=0\r\n',
      contentType: 'application/sdp',
      warning: {
        ip: '192.0.2.1',
        port: 5060,
        pid: 4242,
        srcIp: '192.0.2.10',
        srcPort: 5060,
        inUri: 'sip:dave@example.net',
        outUri: 'sip:dave@192.0.2.99',
        viaCount: 1,
      },
    });
    const r = parseOk(b);
    assert.equal(r.header('server'), 'sip-express-router (0.1.0)');
    assert.equal(
      r.header('warning'),
      '392 192.0.2.1:5060 "Noisy feedback tells: pid=4242 req_src_ip=192.0.2.10 req_src_port=5060 in_uri=sip:dave@example.net out_uri=sip:dave@192.0.2.99 via_cnt==1"',
    );
    assert.equal(r.header('contact'), '<sip:srv@192.0.2.1>');
    assert.equal(r.header('allow'), 'INVITE, BYE');
    assert.equal(r.contentType?.mediaType, 'application/sdp');
    assert.equal(r.contentLength, 5);
    assert.equal(r.body.toString(), 'v=0\r\n');
    assert.throws(() => buildReply(req, 200, 'OK', { headers: ['X: a\r\nY: b'] }), RangeError);
    assert.throws(() => buildReply(req, 99, 'x'), RangeError);
    // the Server value is checked once and then trusted only while it stays the same
    assert.ok(buildReply(req, 200, 'OK', { server: 'a' }));
    assert.throws(() => buildReply(req, 200, 'OK', { server: 'a\r\nX: y' }), RangeError);
    assert.throws(() => buildReply(req, 200, 'OK', { server: 'a\r\nX: y' }), RangeError);
    const w = { ip: '192.0.2.1', port: 5060, pid: 1, srcIp: '192.0.2.2', srcPort: 5060, viaCount: 1 };
    assert.throws(
      () => buildReply(req, 200, 'OK', { warning: { ...w, inUri: 'sip:a', outUri: 'sip:b\nX: y' } }),
      RangeError,
    );
    assert.throws(
      () => buildReply(req, 200, 'OK', { warning: { ...w, inUri: 'sip:a\r', outUri: 'sip:b' } }),
      RangeError,
    );
  });

  it('reason phrase cannot break the start line', () => {
    const req = parseOk(typicalInvite());
    const r = parseOk(buildReply(req, 500, 'bad\r\nX: y', { toTag: 't' }));
    assert.equal(r.reason, 'bad  X: y');
    assert.equal(r.hasHeader('x'), false);
  });

  it('stateless 400 from a SipParseError', () => {
    const e = parseFails(
      request('INVITE', 'sip:d@example.net', ['Max-Forwards: 70', 'Broken']),
      'Malformed header line',
    );
    const b = buildParseErrorReply(e, { toTag: 'e1' });
    assert.ok(b);
    const r = parseOk(b);
    assert.equal(r.status, 400);
    assert.equal(r.reason, 'Malformed header line');
    assert.equal(r.callId, 'cid-0001@client.example.org');
    assert.equal(r.toTag, 'e1');
    const v = parseFails(
      wire([
        'OPTIONS sip:d@example.net SIP/3.0',
        'Via: SIP/2.0/UDP h;branch=z9hG4bK1',
        'From: <sip:a@b>;tag=1',
        'To: <sip:c@d>',
        'Call-ID: q',
        'CSeq: 1 OPTIONS',
      ]),
      'Unsupported SIP version',
    );
    assert.equal(v.status, 505);
    assert.equal(v.canReply, true, 'start-line errors still collect the headers');
    const rv = parseOk(buildParseErrorReply(v) ?? Buffer.alloc(0));
    assert.equal(rv.status, 505);
    assert.equal(rv.method, 'OPTIONS');
    const ack = parseFails(request('ACK', 'sip:d@example.net', ['Broken']), 'Malformed header line');
    assert.equal(buildParseErrorReply(ack), undefined, 'never answer an ACK');
    assert.equal(buildParseErrorReply(new SipParseError('x')), undefined);
  });

  it('generated tags are unique', () => {
    const tags = new Set(Array.from({ length: 1000 }, () => generateTag()));
    assert.equal(tags.size, 1000);
  });
});
