/**
 * Micro-benchmark of the SIP message layer: parses/s and serialize/s for a typical
 * INVITE with SDP and a REGISTER, with and without touching the common headers.
 * Run: node dist/bench/sip-parse.js   (about 5 s)
 */
import { parseMessage, type SipMessage } from '../src/sip/message.js';

const SDP =
  'v=0\r\no=carol 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n' +
  'm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n' +
  'a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n';

const INVITE = Buffer.from(
  [
    'INVITE sip:dave@example.net SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-74bf9a1c;rport',
    'Max-Forwards: 70',
    'From: "Carol" <sip:carol@example.org>;tag=9fxced76sl',
    'To: Dave <sip:dave@example.net>',
    'Call-ID: 3848276298220188511@192.0.2.10',
    'CSeq: 1 INVITE',
    'Contact: <sip:carol@192.0.2.10:5060;transport=udp>',
    'Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO',
    'Supported: replaces, timer',
    'User-Agent: test-phone/1.0',
    'Content-Type: application/sdp',
    `Content-Length: ${SDP.length}`,
    '',
    SDP,
  ].join('\r\n'),
  'latin1',
);

const REGISTER = Buffer.from(
  [
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
    '',
    '',
  ].join('\r\n'),
  'latin1',
);

let sink = 0;

function touch(m: SipMessage): void {
  const v = m.topVia;
  sink +=
    (v?.branch?.length ?? 0) + m.from.uri.length + (m.to.tag?.length ?? 0) + m.callId.length + m.cseq.seq;
}

/**
 * Runs fn in `slices` slices of about `ms` milliseconds each and returns the best rate
 * (operations per second): the best slice is the least disturbed by other processes.
 */
function rate(ms: number, fn: () => void, slices = 3): number {
  for (let i = 0; i < 20000; i++) fn(); // warm-up
  let best = 0;
  for (let s = 0; s < slices; s++) {
    let n = 0;
    const start = process.hrtime.bigint();
    const limit = BigInt(ms) * 1_000_000n;
    let elapsed = 0n;
    do {
      for (let i = 0; i < 1000; i++) fn();
      n += 1000;
      elapsed = process.hrtime.bigint() - start;
    } while (elapsed < limit);
    best = Math.max(best, (n * 1e9) / Number(elapsed));
  }
  return best;
}

function fmt(x: number): string {
  return `${Math.round(x).toLocaleString('en-US').padStart(11)}/s`;
}

const SLICE = 150;
for (const [name, buf] of [
  ['INVITE+SDP', INVITE],
  ['REGISTER', REGISTER],
] as const) {
  const parse = rate(SLICE, () => {
    sink += parseMessage(buf, { datagram: true }).status;
  });
  const parseTouch = rate(SLICE, () => touch(parseMessage(buf, { datagram: true })));
  const serUnmod = rate(SLICE, () => {
    sink += parseMessage(buf, { datagram: true }).serialize().length;
  });
  const serEdit = rate(SLICE, () => {
    const m = parseMessage(buf, { datagram: true });
    touch(m);
    m.addHeader('Via', 'SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK-proxy-1', 'top');
    m.replaceHeader('Max-Forwards', '69');
    m.addHeader('Record-Route', '<sip:203.0.113.1;lr>', 'top');
    sink += m.serialize().length;
  });
  console.log(`${name} (${buf.length} bytes)`);
  console.log(`  parse                                ${fmt(parse)}`);
  console.log(`  parse + Via/From/To/Call-ID/CSeq     ${fmt(parseTouch)}`);
  console.log(`  parse + serialize (unmodified)       ${fmt(serUnmod)}`);
  console.log(`  parse + touch + 3 edits + serialize  ${fmt(serEdit)}`);
}
if (sink === 42) console.log('');
