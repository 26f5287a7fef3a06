import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FramerEvent, findContentLength, StreamFramer } from '../../src/net/stream-framer.js';

function msg(body = '', extra = '', cl: string | null = String(Buffer.byteLength(body))): string {
  return (
    'INVITE sip:bob@example.com SIP/2.0\r\n' +
    'Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK1\r\n' +
    'Call-ID: abc@x\r\n' +
    'CSeq: 1 INVITE\r\n' +
    extra +
    (cl === null ? '' : `Content-Length: ${cl}\r\n`) +
    '\r\n' +
    body
  );
}

function messages(evs: FramerEvent[]): string[] {
  return evs.filter((e) => e.type === 'message').map((e) => (e.type === 'message' ? e.data.toString() : ''));
}

describe('findContentLength', () => {
  it('reads full and compact forms, any case, with spaces', () => {
    assert.equal(findContentLength('X\r\nContent-Length: 12\r\n\r\n'), 12);
    assert.equal(findContentLength('X\r\ncontent-length:7\r\n\r\n'), 7);
    assert.equal(findContentLength('X\r\nl: 3\r\n\r\n'), 3);
    assert.equal(findContentLength('X\r\nL   :   0  \r\n\r\n'), 0);
    assert.equal(findContentLength('X\nContent-Length: 5\n\n'), 5);
  });
  it('is undefined when absent; -1 for garbage, negative or conflicting values', () => {
    assert.equal(findContentLength('X\r\nContent-Type: a/b\r\nLocation: x\r\n\r\n'), undefined);
    assert.equal(findContentLength('X\r\nContent-Length: -1\r\n\r\n'), -1);
    assert.equal(findContentLength('X\r\nContent-Length: 1x\r\n\r\n'), -1);
    assert.equal(findContentLength('X\r\nContent-Length:\r\n\r\n'), -1);
    assert.equal(findContentLength('X\r\nContent-Length: 1\r\nl: 2\r\n\r\n'), -1);
    assert.equal(findContentLength('X\r\nContent-Length: 2\r\nl: 2\r\n\r\n'), 2);
  });
  it('handles folded header lines', () => {
    assert.equal(findContentLength('X\r\nContent-Length:\r\n   42\r\n\r\n'), 42);
    assert.equal(findContentLength('X\r\nSubject: a\r\n l: 99\r\nContent-Length: 1\r\n\r\n'), 1);
  });
  it('ignores the start line', () => {
    assert.equal(findContentLength('l: 5 sip:x SIP/2.0\r\nContent-Length: 1\r\n\r\n'), 1);
  });
});

describe('StreamFramer', () => {
  it('splits pipelined messages in one chunk', () => {
    const f = new StreamFramer();
    const a = msg('hello');
    const b = msg('', 'Subject: two\r\n');
    const c = msg('v=0\r\n');
    const evs = f.push(Buffer.from(a + b + c));
    assert.deepEqual(messages(evs), [a, b, c]);
    assert.equal(f.buffered, 0);
  });

  it('reassembles a message fed byte by byte', () => {
    const f = new StreamFramer();
    const a = msg('body-bytes');
    const b = msg('x');
    const all = Buffer.from(a + b);
    const out: string[] = [];
    for (let i = 0; i < all.length; i++) out.push(...messages(f.push(all.subarray(i, i + 1))));
    assert.deepEqual(out, [a, b]);
    assert.equal(f.buffered, 0);
  });

  it('reassembles across arbitrary chunk splits', () => {
    const parts = [msg('one'), msg(''), msg('three-3'), msg('4444')];
    const all = Buffer.from(parts.join(''));
    for (const size of [2, 3, 7, 13, 50, 101]) {
      const f = new StreamFramer();
      const out: string[] = [];
      for (let i = 0; i < all.length; i += size) out.push(...messages(f.push(all.subarray(i, i + size))));
      assert.deepEqual(out, parts, `chunk size ${size}`);
    }
  });

  it('does not let messages alias its internal buffer', () => {
    const f = new StreamFramer();
    const a = msg('AAAA');
    const b = msg('BBBB');
    const first = f.push(Buffer.from(a.slice(0, 10)));
    assert.equal(first.length, 0);
    const evs = f.push(Buffer.from(a.slice(10)));
    const kept = messages(evs);
    f.push(Buffer.from(b.slice(0, 20)));
    f.push(Buffer.from(b.slice(20)));
    assert.deepEqual(kept, [a]);
    const m = evs[0];
    assert.ok(m.type === 'message' && m.data.toString() === a);
  });

  it('tolerates LFLF header terminators', () => {
    const f = new StreamFramer();
    const a = 'OPTIONS sip:x SIP/2.0\nl: 2\n\nok';
    assert.deepEqual(messages(f.push(Buffer.from(a))), [a]);
  });

  it('answers a CRLFCRLF ping and skips stray CRLFs', () => {
    const f = new StreamFramer();
    const a = msg('z');
    const evs = f.push(Buffer.from('\r\n\r\n' + a + '\r\n' + a + '\r\n\r\n'));
    assert.deepEqual(
      evs.map((e) => e.type),
      ['ping', 'message', 'message', 'ping'],
    );
  });

  it('recognises a ping sent byte by byte', () => {
    const f = new StreamFramer();
    const types: string[] = [];
    for (const ch of '\r\n\r\n') types.push(...f.push(Buffer.from(ch)).map((e) => e.type));
    assert.deepEqual(types, ['ping']);
    // a lone CRLF followed by a message is stray, not a ping
    const a = msg();
    types.length = 0;
    for (const part of ['\r', '\n', a]) types.push(...f.push(Buffer.from(part)).map((e) => e.type));
    assert.deepEqual(types, ['message']);
  });

  it('reports a missing Content-Length and dies', () => {
    const f = new StreamFramer();
    const evs = f.push(Buffer.from(msg('', '', null)));
    assert.equal(evs.length, 1);
    assert.ok(evs[0].type === 'error' && evs[0].reason === 'no-content-length');
    assert.equal(f.failed, true);
    assert.deepEqual(f.push(Buffer.from(msg())), []);
  });

  it('reports a negative or garbage Content-Length', () => {
    for (const cl of ['-5', 'abc', '99999999999']) {
      const f = new StreamFramer();
      const evs = f.push(Buffer.from(msg('', '', cl)));
      assert.equal(evs.length, 1, cl);
      assert.ok(evs[0].type === 'error' && evs[0].reason === 'bad-content-length', cl);
    }
  });

  it('reports oversize headers with the partial bytes', () => {
    const f = new StreamFramer({ maxHeaderSize: 200, maxMessageSize: 1000 });
    const start = 'INVITE sip:x SIP/2.0\r\nCall-ID: 1\r\n';
    const out: FramerEvent[] = [];
    out.push(...f.push(Buffer.from(start)));
    for (let i = 0; i < 10 && out.length === 0; i++)
      out.push(...f.push(Buffer.from('X-Pad: ' + 'a'.repeat(40) + '\r\n')));
    assert.equal(out.length, 1);
    const ev = out[0];
    assert.ok(ev.type === 'oversize' && ev.limit === 'header');
    assert.ok(ev.partial.toString().startsWith(start));
    assert.ok(ev.partial.length > 200);
    assert.equal(f.failed, true);
  });

  it('reports a Content-Length beyond the message limit before reading the body', () => {
    const f = new StreamFramer({ maxMessageSize: 500 });
    const evs = f.push(Buffer.from(msg('', '', '100000')));
    assert.equal(evs.length, 1);
    const ev = evs[0];
    assert.ok(ev.type === 'oversize' && ev.limit === 'message');
    assert.match(ev.partial.toString(), /^INVITE sip:bob@example.com/);
  });

  it('delivers messages preceding a framing error in the same chunk', () => {
    const f = new StreamFramer();
    const a = msg('ok');
    const evs = f.push(Buffer.from(a + msg('', '', null)));
    assert.deepEqual(
      evs.map((e) => e.type),
      ['message', 'error'],
    );
  });

  it('keeps a multi-byte body intact (Content-Length counts bytes)', () => {
    const f = new StreamFramer();
    const body = 'héllo ☎';
    const a = msg(body);
    const bytes = Buffer.from(a);
    const out: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 5) {
      for (const e of f.push(bytes.subarray(i, i + 5))) if (e.type === 'message') out.push(e.data);
    }
    assert.equal(out.length, 1);
    assert.ok(out[0].equals(bytes));
  });
});
