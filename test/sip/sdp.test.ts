import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SipParseError } from '../../src/sip/errors.js';
import { Sdp } from '../../src/sip/sdp.js';
import { INVITE_SDP } from './helpers.js';

const TWO_MEDIA =
  'v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=call\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n' +
  'm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\na=rtcp:4001\r\na=sendrecv\r\n' +
  'm=video 5000/2 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n';

describe('SDP', () => {
  it('unmodified serializes to the original bytes', () => {
    const b = Buffer.from(TWO_MEDIA);
    const s = Sdp.parse(b);
    assert.equal(s.toBuffer(), b);
    assert.equal(s.media.length, 2);
    assert.equal(s.session.length, 6);
  });

  it('reads o=, c= at both levels, m= ports', () => {
    const s = Sdp.parse(TWO_MEDIA);
    assert.equal(s.origin?.address, '10.0.0.1');
    assert.equal(s.connection()?.address, '10.0.0.1');
    assert.equal(s.connection(0)?.address, '10.0.0.2');
    assert.equal(s.connection(1)?.address, '10.0.0.1', 'falls back to session level');
    assert.equal(s.mediaType(1), 'video');
    assert.equal(s.mediaPort(0), 4000);
    assert.equal(s.mediaPort(1), 5000);
    assert.deepEqual(s.attributes(0, 'rtcp'), ['rtcp:4001']);
    assert.deepEqual(s.attributes(), ['group:BUNDLE 0 1']);
  });

  it('rewrites connection address, ports, origin (nat traversal style)', () => {
    const s = Sdp.parse(TWO_MEDIA);
    assert.equal(s.setConnectionAddress('203.0.113.5'), 2);
    s.setMediaPort(0, 30000);
    s.setMediaPort(1, 30002);
    s.setOriginAddress('203.0.113.5');
    assert.equal(
      s.toString(),
      TWO_MEDIA.replace(/10\.0\.0\.[12]/g, '203.0.113.5')
        .replace('audio 4000', 'audio 30000')
        .replace('video 5000/2', 'video 30002/2'),
    );
  });

  it('IPv6 address switches the address type; media-level only', () => {
    const s = Sdp.parse(TWO_MEDIA);
    assert.equal(s.setConnectionAddress('2001:db8::5', { media: 0 }), 1);
    assert.equal(s.connection(0)?.addrType, 'IP6');
    assert.equal(s.connection()?.address, '10.0.0.1');
    assert.match(s.toString(), /m=audio 4000 RTP\/AVP 0\r\nc=IN IP6 2001:db8::5\r\n/);
  });

  it('adds and removes attributes', () => {
    const s = Sdp.parse(INVITE_SDP);
    s.addAttribute('nortpproxy:yes', 0);
    s.addAttribute('tool:x');
    assert.equal(s.removeAttributes('rtpmap', 0), 2);
    assert.equal(s.removeAttributes('rtpmap'), 0);
    assert.equal(
      s.toString(),
      'v=0\r\no=carol 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\na=tool:x\r\n' +
        'm=audio 49170 RTP/AVP 0 8 101\r\na=sendrecv\r\na=nortpproxy:yes\r\n',
    );
    assert.equal(s.removeAttributes('sendrecv', 'all'), 1);
  });

  it('LF-only and unterminated last line', () => {
    const text = 'v=0\nc=IN IP4 1.2.3.4\nm=audio 1 RTP/AVP 0';
    const s = Sdp.parse(text);
    assert.equal(s.toString(), text);
    s.addAttribute('x', 0);
    assert.equal(s.toString(), 'v=0\nc=IN IP4 1.2.3.4\nm=audio 1 RTP/AVP 0\na=x\n');
  });

  it('rejects a body without v=, and bad arguments', () => {
    assert.throws(() => Sdp.parse('hello'), SipParseError);
    const s = Sdp.parse(TWO_MEDIA);
    assert.throws(() => s.setMediaPort(5, 1), RangeError);
    assert.throws(() => s.setMediaPort(0, 70000), RangeError);
    assert.throws(() => s.addAttribute('a\r\nb'), RangeError);
  });
});
