import assert from 'node:assert/strict';
import { isIPv4 } from 'node:net';
import { describe, it } from 'node:test';
import {
  compressIpv6,
  formatHost,
  formatHostPort,
  ipFamily,
  ipv6Groups,
  isAnyAddress,
  isIpLiteral,
  isIpv4Mapped,
  isIPv4Text,
  normalizeIp,
  sameIp,
  stripBrackets,
} from '../../src/net/ip.js';

describe('ip helpers', () => {
  it('detects IP literals, with or without brackets', () => {
    assert.equal(ipFamily('10.0.0.1'), 4);
    assert.equal(ipFamily('[::1]'), 6);
    assert.equal(ipFamily('::1'), 6);
    assert.equal(ipFamily('example.com'), 0);
    assert.equal(ipFamily('[example.com]'), 0);
    assert.equal(ipFamily('1.2.3.256'), 0);
    assert.equal(isIpLiteral('2001:db8::1'), true);
    assert.equal(isIpLiteral('sip.example.com'), false);
    assert.equal(stripBrackets('[::1]'), '::1');
    assert.equal(stripBrackets('[x'), '[x');
  });

  it('classifies dotted quads exactly as node:net does', () => {
    const cases = [
      '0.0.0.0',
      '255.255.255.255',
      '1.2.3.4',
      '01.2.3.4',
      '1.2.3.04',
      '1.2.3',
      '1.2.3.4.5',
      '1.2.3.',
      '.1.2.3',
      '1..2.3',
      '256.1.1.1',
      '1.2.3.4 ',
      '1.2.3.4a',
      '1000.1.1.1',
      '2001:db8::1',
      '1:2::3',
    ];
    // random strings over the characters that matter, to reach the corners a list misses
    let seed = 7;
    const rnd = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const alphabet = '0123456789...:a';
    for (let k = 0; k < 20_000; k++) {
      let s = '';
      for (let j = rnd(17); j > 0; j--) s += alphabet[rnd(alphabet.length)];
      cases.push(s);
      // and near-quads: 3-5 numbers up to 300, some with a leading zero
      const parts: string[] = [];
      for (let j = 3 + rnd(3); j > 0; j--) parts.push((rnd(8) === 0 ? '0' : '') + String(rnd(301)));
      cases.push(parts.join('.'));
    }
    let v4 = 0;
    for (const s of cases) {
      assert.equal(isIPv4Text(s), isIPv4(s), s);
      assert.equal(ipFamily(s), s.length > 0 && isIPv4(s) ? 4 : ipFamily(`[${s}]`) === 6 ? 6 : 0, s);
      if (isIPv4(s)) v4++;
    }
    assert.ok(v4 > 50, `only ${v4} random IPv4 addresses`);
  });

  it('expands and compresses IPv6 per RFC 5952', () => {
    assert.deepEqual(ipv6Groups('2001:db8::1'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(ipv6Groups('::'), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(ipv6Groups('::ffff:1.2.3.4'), [0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]);
    assert.deepEqual(ipv6Groups('64:ff9b::192.0.2.33'), [0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x221]);
    assert.equal(ipv6Groups('1.2.3.4'), undefined);
    assert.equal(normalizeIp('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
    assert.equal(normalizeIp('[2001:db8:0:0:1:0:0:1]'), '2001:db8::1:0:0:1', 'first longest run');
    assert.equal(
      normalizeIp('2001:db8:0:1:1:1:1:1'),
      '2001:db8:0:1:1:1:1:1',
      'single zero group not compressed',
    );
    assert.equal(normalizeIp('0:0:0:0:0:0:0:1'), '::1');
    assert.equal(normalizeIp('fe80:0:0:0:0:0:0:0'), 'fe80::');
    assert.equal(compressIpv6([0, 0, 0, 0, 0, 0, 0, 0]), '::');
  });

  it('turns IPv4-mapped IPv6 into IPv4 (unless asked not to)', () => {
    assert.equal(normalizeIp('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(normalizeIp('[::FFFF:c000:0201]'), '192.0.2.1');
    assert.equal(normalizeIp('::ffff:192.0.2.1', false), '::ffff:c000:201');
    assert.equal(isIpv4Mapped('::ffff:10.0.0.1'), true);
    assert.equal(isIpv4Mapped('::1'), false);
    assert.equal(sameIp('::ffff:10.0.0.1', '10.0.0.1'), true);
    assert.equal(sameIp('2001:DB8::1', '[2001:db8:0::1]'), true);
    assert.equal(sameIp('10.0.0.1', '10.0.0.2'), false);
  });

  it('recognises wildcard addresses and formats hosts', () => {
    assert.equal(isAnyAddress('0.0.0.0'), true);
    assert.equal(isAnyAddress('::'), true);
    assert.equal(isAnyAddress('[0:0::0]'), true);
    assert.equal(isAnyAddress('127.0.0.1'), false);
    assert.equal(formatHost('::1'), '[::1]');
    assert.equal(formatHost('[::1]'), '[::1]');
    assert.equal(formatHost('host.example'), 'host.example');
    assert.equal(formatHostPort('10.0.0.1', 5060), '10.0.0.1:5060');
    assert.equal(formatHostPort('2001:db8::1', 5061), '[2001:db8::1]:5061');
    assert.equal(normalizeIp('Example.COM'), 'example.com');
  });
});
