/**
 * Stateless forwarding over real sockets: the numbering plan of seed 003 Example 2-7
 * (gateways substituted by loopback addresses), replies routed back by Via, loops and
 * Max-Forwards across two chained instances (sipsak -T).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { buildReply } from '../../src/sip/reply.js';
import { parseMessage } from '../../src/sip/message.js';
import { freePort, request, type Ser, startSer, UdpPeer } from './harness.js';

describe('numbering plan (seed 003 Example 2-7) with stateless forward', () => {
  let ser: Ser;
  let ua: UdpPeer;
  let gwUs: UdpPeer; // stands in for 192.168.0.1
  let gwOther: UdpPeer; // stands in for 10.0.0.1
  before(async () => {
    gwUs = await UdpPeer.open('127.0.0.2');
    gwOther = await UdpPeer.open('127.0.0.3');
    ua = await UdpPeer.open();
    ser = await startSer(`
loadmodule "sl.so"
route {
  if (uri=~"^sip:[0-79][0-9]*@") {
    if (uri=~"^sip:1") {
      strip(1);
      forward(127.0.0.2, ${gwUs.port});
    } else {
      forward(127.0.0.3, ${gwOther.port});
    }
    break;
  } else {
    sl_send_reply("404", "Not Found");
    break;
  }
}`);
  });
  after(async () => {
    for (const p of [ua, gwUs, gwOther]) p.close();
    await ser.stop();
  });
  const from = () => ({ ip: '127.0.0.1', port: ua.port });

  it('US numbers go to the first gateway with the leading 1 stripped, and its reply comes back', async () => {
    ua.send(request('INVITE', 'sip:15551234@127.0.0.1', from()), ser.port);
    const fwd = await gwUs.nextMsg();
    assert.equal(fwd.ruri, 'sip:5551234@127.0.0.1');
    // our Via on top (port written since it is not 5060), the caller's below with received
    const vias = fwd.vias;
    assert.equal(vias.length, 2);
    assert.equal(vias[0].host, '127.0.0.1');
    assert.equal(vias[0].port, ser.port);
    assert.match(vias[0].branch ?? '', /^z9hG4bK/);
    assert.equal(vias[1].port, ua.port);
    // the gateway answers: the reply goes back statelessly, our Via removed
    gwUs.send(buildReply(fwd, 486, 'Busy Here', { toTag: 'gw1' }), ser.port);
    const r = await ua.nextMsg();
    assert.equal(r.status, 486);
    assert.equal(r.vias.length, 1);
    assert.equal(r.vias[0].port, ua.port);
  });

  it('other PSTN numbers go unchanged to the second gateway; a retransmission is forwarded again with the same branch', async () => {
    const inv = request('INVITE', 'sip:0301234@127.0.0.1', from());
    ua.send(inv, ser.port);
    const a = await gwOther.nextMsg();
    assert.equal(a.ruri, 'sip:0301234@127.0.0.1');
    ua.send(inv, ser.port);
    const b = await gwOther.nextMsg();
    assert.equal(b.vias[0].branch, a.vias[0].branch);
    assert.equal(await gwUs.next(300), undefined);
  });

  it('IP destinations are answered 404 and nothing is forwarded', async () => {
    ua.send(request('INVITE', 'sip:alice@127.0.0.1', from()), ser.port);
    assert.equal((await ua.nextMsg()).status, 404);
    assert.equal(await gwOther.next(300), undefined);
  });

  it('a reply whose top Via is not ours is dropped', async () => {
    const req = parseMessage(Buffer.from(request('INVITE', 'sip:x@127.0.0.1', from()), 'latin1'), {
      datagram: true,
    });
    gwUs.send(buildReply(req, 200, 'OK', { toTag: 'x' }), ser.port);
    assert.equal(await ua.next(400), undefined);
  });
});

describe('two chained instances', () => {
  let a: Ser;
  let b: Ser;
  let sink: UdpPeer;
  before(async () => {
    sink = await UdpPeer.open();
    const pb = await freePort();
    // b forwards everything to a UA that never answers; a forwards to b
    b = await startSer(
      `loadmodule "sl.so"\nloadmodule "maxfwd.so"\nroute { if (!mf_process_maxfwd_header("10")) { sl_send_reply("483","Too Many Hops"); break; }; forward(127.0.0.1, ${sink.port}); }`,
      { port: pb },
    );
    a = await startSer(
      `loadmodule "sl.so"\nloadmodule "maxfwd.so"\nroute { if (!mf_process_maxfwd_header("10")) { sl_send_reply("483","Too Many Hops"); break; }; forward(127.0.0.1, ${pb}); }`,
    );
  });
  after(async () => {
    sink.close();
    await a.stop();
    await b.stop();
  });

  it('Max-Forwards is decremented at each hop', async () => {
    const ua = await UdpPeer.open();
    ua.send(
      request('OPTIONS', 'sip:x@127.0.0.1', { ip: '127.0.0.1', port: ua.port }, ['Max-Forwards: 5']),
      a.port,
    );
    const m = await sink.nextMsg();
    assert.equal(m.maxForwards, 3);
    assert.equal(m.vias.length, 3);
    ua.close();
  });

  it('each hop answers 483 when Max-Forwards runs out there; the Warning names that hop', async () => {
    const ua = await UdpPeer.open();
    for (const [mf, hop] of [
      [0, a],
      [1, b],
    ] as const) {
      ua.send(
        request('OPTIONS', 'sip:x@127.0.0.1', { ip: '127.0.0.1', port: ua.port }, [`Max-Forwards: ${mf}`]),
        a.port,
      );
      const r = await ua.nextMsg();
      assert.equal(r.status, 483);
      assert.match(r.header('warning') ?? '', new RegExp(`^392 127\\.0\\.0\\.1:${hop.port} `));
    }
    ua.close();
  });

  it('sipsak -T shows the first hop answering 483 (seed M15)', () => {
    const r = spawnSync('sipsak', ['-T', '-s', `sip:x@127.0.0.1:${a.port}`], {
      encoding: 'utf8',
      timeout: 5000,
    });
    assert.match(
      `${r.stdout}${r.stderr}`,
      /^0: 127\.0\.0\.1 \(\d+(\.\d+)? ms\) SIP\/2\.0 483 Too Many Hops/m,
    );
  });
});

describe('loop detection on stateless forwarding', () => {
  it('a request forwarded back to ourselves unchanged is answered 482', async () => {
    const ser = await startSer(
      'loadmodule "sl.so"\nroute { if (!forward(127.0.0.1, {PORT})) { sl_reply_error(); }; }',
    );
    const ua = await UdpPeer.open();
    try {
      ua.send(request('INVITE', 'sip:loop@127.0.0.1', { ip: '127.0.0.1', port: ua.port }), ser.port);
      const r = await ua.nextMsg();
      assert.equal(r.status, 482);
      assert.equal(r.vias.length, 1, 'our Via is gone from the reply');
    } finally {
      ua.close();
      await ser.stop();
    }
  });
});
