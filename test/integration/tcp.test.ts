/**
 * TCP through the running server: pipelined and split messages, a slow sender that must
 * not stall others, an oversize message, CRLF keep-alives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request, type Ser, sleep, startSer, TcpPeer } from './harness.js';

const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

describe('TCP transport through the core', () => {
  let ser: Ser;
  before(async () => {
    ser = await startSer(`
loadmodule "sl.so"
route {
  if (method == "OPTIONS") { sl_send_reply("200", "OK"); break; };
  sl_send_reply("404", "Not Found");
}`);
  });
  after(async () => {
    await ser.stop();
  });
  const opts = (c: TcpPeer, ruri = 'sip:x@127.0.0.1') =>
    request('OPTIONS', ruri, { ip: '127.0.0.1', port: c.localPort, proto: 'TCP' });

  it('answers several messages sent in one segment, in order, on the same connection', async () => {
    const c = await TcpPeer.open(ser.port);
    c.write(
      opts(c) +
        request('INVITE', 'sip:y@127.0.0.1', { ip: '127.0.0.1', port: c.localPort, proto: 'TCP' }) +
        opts(c),
    );
    const text = await c.waitFor((t) => count(t, /^SIP\/2\.0 /gm) >= 3);
    const codes = [...text.matchAll(/^SIP\/2\.0 (\d+)/gm)].map((m) => m[1]);
    assert.deepEqual(codes, ['200', '404', '200']);
    c.close();
  });

  it('reassembles a message written a few bytes at a time', async () => {
    const c = await TcpPeer.open(ser.port);
    const m = Buffer.from(opts(c), 'latin1');
    for (let i = 0; i < m.length; i += 7) {
      c.write(m.subarray(i, i + 7));
      await sleep(1);
    }
    const text = await c.waitFor((t) => /^SIP\/2\.0 200/m.test(t));
    assert.match(text, /^SIP\/2\.0 200 OK/);
    c.close();
  });

  it('a slow sender holding half a message does not stall another client', async () => {
    const slow = await TcpPeer.open(ser.port);
    const half = opts(slow);
    slow.write(half.slice(0, 60));
    const fast = await TcpPeer.open(ser.port);
    fast.write(opts(fast));
    const t = await fast.waitFor((x) => /^SIP\/2\.0 200/m.test(x), 2000);
    assert.match(t, /^SIP\/2\.0 200/);
    slow.write(half.slice(60));
    assert.match(await slow.waitFor((x) => /^SIP\/2\.0 200/m.test(x)), /^SIP\/2\.0 200/);
    slow.close();
    fast.close();
  });

  it('an oversize message gets 513 and the connection is closed; others are still served', async () => {
    const c = await TcpPeer.open(ser.port);
    const big = request(
      'MESSAGE',
      'sip:x@127.0.0.1',
      { ip: '127.0.0.1', port: c.localPort, proto: 'TCP' },
      [],
      'x'.repeat(70_000),
    );
    c.write(big);
    const text = await c.waitFor(() => c.closed, 3000);
    assert.match(text, /^SIP\/2\.0 513 /);
    assert.equal(c.closed, true);
    const d = await TcpPeer.open(ser.port);
    d.write(opts(d));
    assert.match(await d.waitFor((x) => /^SIP\/2\.0 200/m.test(x)), /^SIP\/2\.0 200/);
    d.close();
  });

  it('a CRLF CRLF keep-alive gets a CRLF back and the connection stays usable', async () => {
    const c = await TcpPeer.open(ser.port);
    c.write('\r\n\r\n');
    const pong = await c.waitFor((t) => t.length >= 2, 1500);
    assert.equal(pong, '\r\n');
    c.write(opts(c));
    assert.match(await c.waitFor((x) => /SIP\/2\.0 200/.test(x)), /SIP\/2\.0 200/);
    c.close();
  });
});
