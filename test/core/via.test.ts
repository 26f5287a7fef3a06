import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CoreConfig } from '../../src/core/config.js';
import type { MsgContext } from '../../src/core/context.js';
import { Core } from '../../src/core/core.js';
import { MemorySink } from '../../src/core/log.js';
import { loopHash, viaWithReceived } from '../../src/core/via.js';
import { SipResolver } from '../../src/net/dns.js';
import type { RecvInfo } from '../../src/net/transports.js';
import { parseMessage } from '../../src/sip/message.js';
import { type Dnsmasq, dnsmasqAvailable, startDnsmasq } from '../net/dnsmasq.js';

const topVia = (via: string) =>
  parseMessage(
    Buffer.from(
      `OPTIONS sip:a@b SIP/2.0\r\nVia: ${via}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n`,
    ),
    { datagram: true },
  ).topVia!;

describe('Via on receipt (RFC 3261 §18.2.1, RFC 3581)', () => {
  it('adds received when the sent-by host is not the source address', () => {
    assert.equal(
      viaWithReceived(topVia('SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1'), '192.0.2.7', 5070, false),
      'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=192.0.2.7',
    );
  });
  it('changes nothing when the sent-by is the source and no rport was asked', () => {
    assert.equal(
      viaWithReceived(topVia('SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1'), '192.0.2.7', 5070, false),
      undefined,
    );
  });
  it('fills an empty rport, and adds received with it, even when the host matches', () => {
    assert.equal(
      viaWithReceived(topVia('SIP/2.0/UDP 192.0.2.7:5070;rport;branch=z9hG4bK1'), '192.0.2.7', 6000, false),
      'SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1;received=192.0.2.7;rport=6000',
    );
  });
  it('force_rport adds rport although the client did not ask', () => {
    assert.equal(
      viaWithReceived(topVia('SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1'), '192.0.2.7', 6000, true),
      'SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;received=192.0.2.7;rport=6000',
    );
  });
});

describe('dns=yes: a Via host name that resolves to the source gets no received', {
  skip: !dnsmasqAvailable() && 'dnsmasq missing',
}, () => {
  let dns: Dnsmasq;
  before(async () => {
    dns = await startDnsmasq(
      ['--host-record=ua.test,127.0.0.9', '--host-record=other.test,127.0.0.8'],
      'ua.test',
    );
  });
  after(async () => {
    await dns.stop();
  });

  async function viaSeen(dnsOn: boolean, host: string): Promise<string> {
    const config = {
      debug: 0,
      aliases: [],
      disableTcp: true,
      dns: dnsOn,
      revDns: false,
    } as unknown as CoreConfig;
    const core = new Core(config, {
      logSink: new MemorySink(),
      resolver: new SipResolver({ servers: [dns.server] }),
    });
    const seen = new Promise<string>((res) =>
      core.addRequestFilter((ctx: MsgContext) => {
        res(ctx.msg.header('via') ?? '');
        return false;
      }),
    );
    const ep = (ip: string, port: number) => ({ ip, port, proto: 'udp' as const, af: 4 as const });
    const info = { src: ep('127.0.0.9', 5099), dst: ep('127.0.0.1', 5060) } as unknown as RecvInfo;
    core.receive(
      Buffer.from(
        `OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP ${host}:5099;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n`,
      ),
      info,
    );
    const v = await seen;
    core.resolver.close();
    return v;
  }

  it('resolving to the source: no received', async () => {
    assert.equal(await viaSeen(true, 'ua.test'), 'SIP/2.0/UDP ua.test:5099;branch=z9hG4bK1');
  });
  it('resolving elsewhere: received added', async () => {
    assert.match(await viaSeen(true, 'other.test'), /;received=127\.0\.0\.9$/);
  });
  it('with dns=no a name always gets received', async () => {
    assert.match(await viaSeen(false, 'ua.test'), /;received=127\.0\.0\.9$/);
  });
});

describe('loopHash (loop and spiral detection, RFC 3261 §16.3 step 4)', () => {
  const req = (callId: string, extra = '') =>
    parseMessage(
      Buffer.from(
        'INVITE sip:bob@192.0.2.7 SIP/2.0\r\n' +
          `Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-top\r\n${extra}` +
          'Via: SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bK-orig\r\n' +
          'From: <sip:a@x>;tag=f1\r\nTo: <sip:bob@y>\r\n' +
          `Call-ID: ${callId}\r\nCSeq: 5 INVITE\r\nContent-Length: 0\r\n\r\n`,
      ),
    );
  it('is the same for the same request and another hop, differs for a spiral or another call', () => {
    const h = loopHash(req('c1'), 'sip:bob@192.0.2.7');
    assert.match(h, /^[0-9a-f]{32}$/);
    assert.equal(loopHash(req('c1'), 'sip:bob@192.0.2.7'), h, 'stable');
    // the top Vias a loop adds do not change it: only the bottom one is hashed
    assert.equal(
      loopHash(req('c1', 'Via: SIP/2.0/UDP 203.0.113.5;branch=z9hG4bK-x\r\n'), 'sip:bob@192.0.2.7'),
      h,
    );
    assert.notEqual(loopHash(req('c1'), 'sip:bob@192.0.2.8'), h, 'a new Request-URI is a spiral');
    assert.notEqual(loopHash(req('c2'), 'sip:bob@192.0.2.7'), h);
  });
  it('spreads: 20,000 calls give 20,000 distinct 64-bit prefixes', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(loopHash(req(`call-${i}`), 'sip:bob@192.0.2.7', 16));
    assert.equal(seen.size, 20_000);
  });
  it('a shorter hash (tm keeps 16 digits, sl 20) is the start of the whole one', () => {
    for (const id of ['c1', 'c2', 'a-much-longer-call-id@host.example.org']) {
      const m = req(id);
      const whole = loopHash(m, 'sip:bob@192.0.2.7');
      assert.equal(loopHash(m, 'sip:bob@192.0.2.7', 16), whole.slice(0, 16));
      assert.equal(loopHash(m, 'sip:bob@192.0.2.7', 20), whole.slice(0, 20));
      assert.match(loopHash(m, 'sip:bob@192.0.2.7', 20), /^[0-9a-f]{20}$/);
    }
    // leading zero bytes keep their digits
    const all = new Set<number>();
    for (let i = 0; i < 2000; i++)
      for (const ch of loopHash(req(`z-${i}`), 'sip:x@y', 16)) all.add(ch.charCodeAt(0));
    assert.equal(all.size, 16, 'every hex digit appears');
  });
});
