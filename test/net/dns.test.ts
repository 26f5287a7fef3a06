import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { type DnsTarget, orderSrv, SipResolver, type SrvRecord } from '../../src/net/dns.js';
import { type Dnsmasq, dnsmasqAvailable, startDnsmasq } from './dnsmasq.js';

const RECORDS = [
  // NAPTR → SRV → A/AAAA
  '--naptr-record=naptr.test,10,50,s,SIP+D2T,,_sip._tcp.naptr.test',
  '--naptr-record=naptr.test,10,40,s,SIP+D2U,,_sip._udp.naptr.test',
  '--naptr-record=naptr.test,20,10,s,SIPS+D2T,,_sips._tcp.naptr.test',
  '--naptr-record=naptr.test,5,10,u,E2U+sip,!^.*$!sip:x@y!,',
  '--srv-host=_sip._udp.naptr.test,u1.naptr.test,5071,10,0',
  '--srv-host=_sip._tcp.naptr.test,t1.naptr.test,5072,10,0',
  '--srv-host=_sips._tcp.naptr.test,s1.naptr.test,5073,10,0',
  '--host-record=u1.naptr.test,10.1.0.1',
  '--host-record=t1.naptr.test,10.1.0.2,fd00::2',
  '--host-record=s1.naptr.test,10.1.0.3',
  // SRV only, with priorities and weights
  '--srv-host=_sip._udp.srv.test,a.srv.test,5060,20,0',
  '--srv-host=_sip._udp.srv.test,b.srv.test,5062,10,10',
  '--srv-host=_sip._udp.srv.test,c.srv.test,5064,10,90',
  '--srv-host=_sip._tcp.srv.test,d.srv.test,5066,10,0',
  '--host-record=a.srv.test,10.2.0.1',
  '--host-record=b.srv.test,10.2.0.2',
  '--host-record=c.srv.test,10.2.0.3',
  '--host-record=d.srv.test,10.2.0.4',
  '--host-record=srv.test,10.2.0.9',
  // plain A/AAAA
  '--host-record=plain.test,10.3.0.1,fd00::3',
];

const skip = dnsmasqAvailable() ? false : 'dnsmasq not installed';

function brief(ts: DnsTarget[]): string[] {
  return ts.map((t) => `${t.proto}:${t.af === 6 ? `[${t.ip}]` : t.ip}:${t.port}`);
}

/** A deterministic PRNG (LCG) for weight tests. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('orderSrv (RFC 2782)', () => {
  it('orders by priority and picks by weight within a priority', () => {
    const recs: SrvRecord[] = [
      { name: 'low', port: 1, priority: 20, weight: 100 },
      { name: 'light', port: 1, priority: 10, weight: 10 },
      { name: 'heavy', port: 1, priority: 10, weight: 90 },
      { name: 'zero', port: 1, priority: 10, weight: 0 },
    ];
    const rnd = lcg(42);
    let heavyFirst = 0;
    const runs = 1000;
    for (let i = 0; i < runs; i++) {
      const o = orderSrv(recs, rnd).map((r) => r.name);
      assert.equal(o.length, 4);
      assert.equal(o[3], 'low', 'lower priority always last');
      assert.deepEqual(new Set(o.slice(0, 3)), new Set(['light', 'heavy', 'zero']));
      if (o[0] === 'heavy') heavyFirst++;
    }
    // expected ≈ 90/101 of runs
    assert.ok(heavyFirst > 800 && heavyFirst < 960, `heavy first ${heavyFirst}/${runs}`);
  });

  it('places zero-weight records first only when the draw is 0', () => {
    const recs: SrvRecord[] = [
      { name: 'w', port: 1, priority: 1, weight: 5 },
      { name: 'z', port: 1, priority: 1, weight: 0 },
    ];
    assert.deepEqual(
      orderSrv(recs, () => 0).map((r) => r.name),
      ['z', 'w'],
    );
    assert.deepEqual(
      orderSrv(recs, () => 0.9).map((r) => r.name),
      ['w', 'z'],
    );
  });
});

describe('SipResolver with dnsmasq', { skip }, () => {
  let dm: Dnsmasq;
  before(async () => {
    dm = await startDnsmasq(RECORDS, 'plain.test');
  });
  after(async () => {
    await dm?.stop();
  });
  const mk = (extra: ConstructorParameters<typeof SipResolver>[0] = {}) =>
    new SipResolver({ servers: [dm.server], timeoutMs: 500, tries: 1, ...extra });

  it('follows NAPTR (order, preference) → SRV → A/AAAA', async () => {
    const r = mk();
    assert.deepEqual(brief(await r.resolve({ host: 'naptr.test' })), [
      'udp:10.1.0.1:5071',
      'tcp:10.1.0.2:5072',
      'tcp:[fd00::2]:5072',
      'tls:10.1.0.3:5073',
    ]);
  });

  it('keeps only SIPS+D2T for sips URIs and skips unsupported transports', async () => {
    assert.deepEqual(brief(await mk().resolve({ host: 'naptr.test', secure: true })), ['tls:10.1.0.3:5073']);
    assert.deepEqual(
      brief(await mk({ transports: ['udp', 'tcp'], families: [4] }).resolve({ host: 'naptr.test' })),
      ['udp:10.1.0.1:5071', 'tcp:10.1.0.2:5072'],
    );
  });

  it('falls back to SRV without NAPTR: priority, weight, UDP before TCP', async () => {
    const r = mk();
    const out = brief(await r.resolve({ host: 'srv.test' }));
    assert.equal(out.length, 4);
    assert.deepEqual(new Set(out.slice(0, 2)), new Set(['udp:10.2.0.2:5062', 'udp:10.2.0.3:5064']));
    assert.deepEqual(out.slice(2), ['udp:10.2.0.1:5060', 'tcp:10.2.0.4:5066']);
    // weight 90 vs 10: c first in most orderings (re-ordered on every use of the cached records)
    const rw = mk({ random: lcg(7) });
    let cFirst = 0;
    let q0 = 0;
    for (let i = 0; i < 200; i++) {
      if (brief(await rw.resolve({ host: 'srv.test' }))[0] === 'udp:10.2.0.3:5064') cFirst++;
      if (i === 0) q0 = rw.getStats().queries;
    }
    assert.ok(cFirst > 150 && cFirst < 199, `c first ${cFirst}/200`);
    assert.equal(rw.getStats().queries, q0, 'records cached after the first resolution');
  });

  it('uses the SRV of the transport parameter when no port is given', async () => {
    assert.deepEqual(brief(await mk().resolve({ host: 'srv.test', transport: 'TCP' })), [
      'tcp:10.2.0.4:5066',
    ]);
    assert.deepEqual(brief(await mk().resolve({ host: 'naptr.test', transport: 'tcp', secure: true })), [
      'tls:10.1.0.3:5073',
    ]);
    // no SRV for that transport: A on the default port
    assert.deepEqual(brief(await mk({ families: [4] }).resolve({ host: 'plain.test', transport: 'tcp' })), [
      'tcp:10.3.0.1:5060',
    ]);
    assert.deepEqual(await mk().resolve({ host: 'srv.test', transport: 'sctp' }), []);
  });

  it('with a port: A/AAAA only, no NAPTR or SRV', async () => {
    const r = mk();
    assert.deepEqual(brief(await r.resolve({ host: 'srv.test', port: 5080 })), ['udp:10.2.0.9:5080']);
    assert.deepEqual(brief(await r.resolve({ host: 'plain.test', port: 5090, transport: 'tcp' })), [
      'tcp:10.3.0.1:5090',
      'tcp:[fd00::3]:5090',
    ]);
    assert.equal(r.getStats().queries, 4, 'A and AAAA for each name, nothing else');
  });

  it('falls back to A/AAAA on 5060 when there is neither NAPTR nor SRV', async () => {
    assert.deepEqual(brief(await mk().resolve({ host: 'plain.test' })), [
      'udp:10.3.0.1:5060',
      'udp:[fd00::3]:5060',
    ]);
    assert.deepEqual(brief(await mk({ families: [6, 4] }).resolve({ host: 'plain.test', secure: true })), [
      'tls:[fd00::3]:5061',
      'tls:10.3.0.1:5061',
    ]);
  });

  it('returns numeric hosts and maddr directly, without queries', async () => {
    const r = mk();
    assert.deepEqual(brief(await r.resolve({ host: '192.0.2.1' })), ['udp:192.0.2.1:5060']);
    assert.deepEqual(brief(await r.resolve({ host: '192.0.2.1', secure: true })), ['tls:192.0.2.1:5061']);
    assert.deepEqual(brief(await r.resolve({ host: '[2001:DB8:0:0::1]', port: 5070, transport: 'tcp' })), [
      'tcp:[2001:db8::1]:5070',
    ]);
    assert.deepEqual(brief(await r.resolve({ host: 'naptr.test', maddr: '10.9.9.9' })), [
      'udp:10.9.9.9:5060',
    ]);
    assert.deepEqual(await r.resolve({ host: '192.0.2.1', transport: 'udp', secure: true }), []);
    assert.equal(r.getStats().queries, 0);
  });

  it('caches NXDOMAIN for the negative TTL (injectable clock)', async () => {
    let now = 1_000_000;
    const r = mk({ now: () => now, negativeTtlSec: 30 });
    assert.deepEqual(await r.resolve({ host: 'nx.test', port: 5060 }), []);
    const q1 = r.getStats().queries;
    assert.equal(q1, 2);
    assert.equal(r.getStats().notFound, 2);
    now += 29_000;
    assert.deepEqual(await r.resolve({ host: 'nx.test', port: 5060 }), []);
    assert.equal(r.getStats().queries, q1, 'served from the negative cache');
    assert.equal(r.getStats().negativeHits, 2);
    now += 2_000;
    await r.resolve({ host: 'nx.test', port: 5060 });
    assert.equal(r.getStats().queries, q1 + 2, 'asked again after the negative TTL');
  });

  it('shares one query between concurrent lookups', async () => {
    const single = mk();
    await single.resolve({ host: 'srv.test' });
    const r = mk();
    const [a, b] = await Promise.all([r.resolve({ host: 'srv.test' }), r.resolve({ host: 'srv.test' })]);
    assert.equal(a.length, 4);
    assert.equal(b.length, 4);
    assert.equal(r.getStats().queries, single.getStats().queries);
  });

  it('reverse-resolves (PTR), also IPv4-mapped IPv6', async () => {
    const r = mk();
    assert.deepEqual(await r.reverse('10.3.0.1'), ['plain.test']);
    assert.deepEqual(await r.reverse('::ffff:10.3.0.1'), ['plain.test']);
    assert.deepEqual(await r.reverse('not an ip'), []);
  });
});

describe('SipResolver cache and failures', { skip }, () => {
  it('answers from the cache after the server is gone, until the TTL expires', async () => {
    const dm = await startDnsmasq(RECORDS, 'plain.test');
    let now = 5_000_000;
    const r = new SipResolver({ servers: [dm.server], timeoutMs: 300, tries: 1, now: () => now });
    try {
      const first = brief(await r.resolve({ host: 'naptr.test' }));
      assert.equal(first.length, 4);
      const q = r.getStats().queries;
      await dm.stop();
      assert.deepEqual(brief(await r.resolve({ host: 'naptr.test' })), first);
      assert.equal(r.getStats().queries, q, 'no query: all from cache');
      assert.ok(r.getStats().cacheHits >= 5);
      now += 61_000; // A/AAAA TTL (60 s) expired; SRV/NAPTR (300 s) still cached
      const later = await r.resolve({ host: 'naptr.test' });
      assert.deepEqual(later, []);
      assert.ok(r.getStats().queries > q);
      assert.ok(r.getStats().errors > 0);
    } finally {
      await dm.stop();
      r.close();
    }
  });

  it('gives up after the configured timeout when the server never answers', async () => {
    const sink = dgram.createSocket('udp4');
    await new Promise<void>((res) => sink.bind(0, '127.0.0.1', () => res()));
    let seen = 0;
    sink.on('message', () => {
      seen++;
    });
    const r = new SipResolver({ servers: [`127.0.0.1:${sink.address().port}`], timeoutMs: 150, tries: 1 });
    try {
      const t0 = Date.now();
      assert.deepEqual(await r.resolve({ host: 'slow.test', port: 5060 }), []);
      assert.ok(Date.now() - t0 < 5000, 'bounded by the timeout');
      assert.ok(seen >= 1, 'the query was sent');
      assert.equal(r.getStats().errors, 2);
    } finally {
      r.close();
      await new Promise<void>((res) => sink.close(() => res()));
    }
  });
});
