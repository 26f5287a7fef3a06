import assert from 'node:assert/strict';
import { parseMessage, SipParseError } from '../../src/sip/message.js';
import type { SipMessage } from '../../src/sip/message.js';

/** Joins lines with CRLF, adds the empty line and the body. */
export function wire(lines: readonly string[], body = '', eol = '\r\n'): Buffer {
  return Buffer.from(lines.join(eol) + eol + eol + body, 'latin1');
}

export const BASE_HEADERS = [
  'Via: SIP/2.0/UDP client.example.org:5060;branch=z9hG4bK-c1',
  'Max-Forwards: 70',
  'From: "Carol" <sip:carol@example.org>;tag=fr-11',
  'To: <sip:dave@example.net>',
  'Call-ID: cid-0001@client.example.org',
  'CSeq: 7 OPTIONS',
];

/** A request with the base headers (method replaced in CSeq) plus `extra`. */
export function request(method: string, ruri: string, extra: readonly string[] = [], body = ''): Buffer {
  const hs = BASE_HEADERS.map((h) => (h.startsWith('CSeq:') ? `CSeq: 7 ${method}` : h));
  return wire(
    [`${method} ${ruri} SIP/2.0`, ...hs, ...extra, `Content-Length: ${Buffer.byteLength(body, 'latin1')}`],
    body,
  );
}

export function parseOk(b: Buffer, datagram = false): SipMessage {
  return parseMessage(b, { datagram });
}

/** Asserts that parsing fails with exactly this reason; returns the error. */
export function parseFails(b: Buffer, reason: string, datagram = false): SipParseError {
  let err: unknown;
  try {
    parseMessage(b, { datagram });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof SipParseError, `expected SipParseError, got ${String(err)}`);
  assert.equal(err.reason, reason);
  return err;
}

/** Asserts that fn throws a SipParseError with this reason. */
export function throwsReason(fn: () => unknown, reason: string): void {
  assert.throws(fn, (e: unknown) => e instanceof SipParseError && e.reason === reason);
}

export const INVITE_SDP =
  'v=0\r\no=carol 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n' +
  'm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n';

export function typicalInvite(): Buffer {
  return wire(
    [
      'INVITE sip:dave@example.net SIP/2.0',
      'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-74bf9;rport',
      'Max-Forwards: 70',
      'From: "Carol" <sip:carol@example.org>;tag=9fxced76sl',
      'To: Dave <sip:dave@example.net>',
      'Call-ID: 3848276298220188511@192.0.2.10',
      'CSeq: 1 INVITE',
      'Contact: <sip:carol@192.0.2.10:5060;transport=udp>',
      'Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY',
      'Supported: replaces, timer',
      'User-Agent: test-phone/1.0',
      'Content-Type: application/sdp',
      `Content-Length: ${INVITE_SDP.length}`,
    ],
    INVITE_SDP,
  );
}

export function typicalRegister(): Buffer {
  return wire([
    'REGISTER sip:example.org SIP/2.0',
    'Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-reg1;rport',
    'Max-Forwards: 70',
    'From: <sip:erin@example.org>;tag=reg-a1',
    'To: <sip:erin@example.org>',
    'Call-ID: reg-98765@198.51.100.7',
    'CSeq: 20 REGISTER',
    'Contact: <sip:erin@198.51.100.7:5060>;expires=3600;q=0.7',
    'Authorization: Digest username="erin", realm="example.org", nonce="4f2a1b", uri="sip:example.org", response="0123456789abcdef0123456789abcdef", algorithm=MD5',
    'Expires: 3600',
    'User-Agent: test-phone/1.0',
    'Content-Length: 0',
  ]);
}
