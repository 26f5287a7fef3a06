import assert from 'node:assert/strict';
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
