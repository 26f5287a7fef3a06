import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Myself, normHost } from '../../src/core/myself.js';

describe('myself', () => {
  const me = new Myself();
  me.addAddress('192.0.2.13', 5060);
  me.add('foo.bar');
  me.add('sales.foo.bar', 5070);
  me.addAddress('2001:db8::0:1', 5060);

  it('matches listen addresses on their port only', () => {
    assert.equal(me.matches('192.0.2.13', 5060), true);
    assert.equal(me.matches('192.0.2.13', 5061), false);
  });
  it('matches an alias without port on any port, case-insensitively', () => {
    assert.equal(me.matches('FoO.bAr', 5060), true);
    assert.equal(me.matches('foo.bar', 9999), true);
    assert.equal(me.matches('marketing.foo.bar', 5060), false);
  });
  it('matches an alias with port only on that port', () => {
    assert.equal(me.matches('sales.foo.bar', 5070), true);
    assert.equal(me.matches('sales.foo.bar', 5060), false);
  });
  it('compares IPv6 in any textual form', () => {
    assert.equal(me.matches('[2001:DB8::1]', 5060), true);
    assert.equal(me.hasIp('2001:db8:0:0:0:0:0:1'), true);
    assert.equal(normHost('[::FFFF:192.0.2.1]'), '192.0.2.1');
  });
  it('knows its own IPs apart from aliases', () => {
    assert.equal(me.hasIp('192.0.2.13'), true);
    assert.equal(me.hasIp('foo.bar'), false);
  });
});
