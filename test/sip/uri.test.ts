import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatUri,
  parseUri,
  setUriHost,
  setUriHostPort,
  setUriPassword,
  setUriPort,
  setUriUser,
  uriEquals,
  uriParam,
} from '../../src/sip/uri.js';
import { throwsReason } from './helpers.js';

describe('URI parsing', () => {
  it('sip URI with every part', () => {
    const u = parseUri(
      'sips:bob:s3cret@Proxy.Example.COM:5061;transport=TLS;lr;maddr=239.1.2.3;ttl=15;method=INVITE;User=phone?Subject=hi&Priority=urgent',
    );
    assert.equal(u.kind, 'sips');
    assert.equal(u.user, 'bob');
    assert.equal(u.password, 's3cret');
    assert.equal(u.host, 'Proxy.Example.COM');
    assert.equal(u.port, 5061);
    assert.deepEqual(
      u.params.map((p) => [p.name, p.value]),
      [
        ['transport', 'TLS'],
        ['lr', undefined],
        ['maddr', '239.1.2.3'],
        ['ttl', '15'],
        ['method', 'INVITE'],
        ['User', 'phone'],
      ],
    );
    assert.equal(uriParam(u, 'user'), 'phone');
    assert.equal(uriParam(u, 'lr'), '');
    assert.equal(uriParam(u, 'nope'), undefined);
    assert.deepEqual(u.headers, [
      { name: 'Subject', value: 'hi' },
      { name: 'Priority', value: 'urgent' },
    ]);
    assert.equal(formatUri(u), u.raw);
  });

  it('hosts: name, IPv4, IPv6 reference; no user', () => {
    assert.equal(parseUri('sip:192.0.2.4').host, '192.0.2.4');
    const v6 = parseUri('sip:[2001:db8::10]:5060;lr=on');
    assert.equal(v6.host, '[2001:db8::10]');
    assert.equal(v6.port, 5060);
    assert.equal(v6.user, undefined);
    assert.deepEqual(v6.params, [{ name: 'lr', value: 'on' }]);
    assert.equal(parseUri('SIP:alice@atlanta.com').kind, 'sip');
  });

  it('user part with telephone-subscriber parameters', () => {
    const u = parseUri('sip:+1-212-555-1212;npdi;rn=+1-212-555-0000@gw.example.com;user=phone');
    assert.equal(u.user, '+1-212-555-1212;npdi;rn=+1-212-555-0000');
    assert.equal(u.host, 'gw.example.com');
    assert.equal(uriParam(u, 'user'), 'phone');
  });

  it('tel and opaque schemes', () => {
    const t = parseUri('tel:+358-555-1234567;postd=pp22');
    assert.equal(t.kind, 'tel');
    assert.equal(t.user, '+358-555-1234567');
    assert.equal(uriParam(t, 'postd'), 'pp22');
    const o = parseUri('mailto:someone@example.com');
    assert.equal(o.kind, 'other');
    assert.equal(o.opaque, 'someone@example.com');
    assert.equal(formatUri(o), 'mailto:someone@example.com');
  });

  it('bad URIs raise SipParseError', () => {
    throwsReason(() => parseUri('nocolon'), 'Bad URI scheme');
    throwsReason(() => parseUri('1sip:a@b'), 'Bad URI scheme');
    throwsReason(() => parseUri('sip:a@b:99999'), 'Bad URI port');
    throwsReason(() => parseUri('sip:a@b:5x'), 'Bad URI host');
    throwsReason(() => parseUri('sip:a@'), 'Bad URI host');
    throwsReason(() => parseUri('sip:@host'), 'Bad URI user');
    throwsReason(() => parseUri('sip:a%4@host'), 'Bad URI escape');
    throwsReason(() => parseUri('sip:a@[2001:db8::1'), 'Bad URI host');
    throwsReason(() => parseUri('sip:a@ho st'), 'Bad URI');
    throwsReason(() => parseUri('sip:a@host;;x'), 'Bad URI parameter');
    throwsReason(() => parseUri('tel:abc-xyz'), 'Bad tel URI');
    throwsReason(() => parseUri('urn:'), 'Bad URI');
  });
});

describe('URI equality (RFC 3261 §19.1.4)', () => {
  const equal: [string, string][] = [
    ['sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'],
    ['sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;newparam=5'],
    [
      'sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com',
      'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com',
    ],
    [
      'sip:alice@atlanta.com?subject=project%20x&priority=urgent',
      'sip:alice@atlanta.com?priority=urgent&subject=project%20x',
    ],
    ['sip:bob@[2001:db8::1]:5060', 'sip:bob@[2001:0db8:0:0:0:0:0:1]:5060'],
    ['tel:+1-201-555-0123', 'tel:+1.201.555.0123'],
    ['urn:x:y', 'URN:x:y'],
  ];
  const unequal: [string, string][] = [
    ['SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp'],
    ['sip:bob@biloxi.com', 'sips:bob@biloxi.com'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting'],
    ['sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4'],
    ['sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;security=off'],
    ['sip:alice:pw@atlanta.com', 'sip:alice@atlanta.com'],
    ['sip:alice@atlanta.com;maddr=1.2.3.4', 'sip:alice@atlanta.com'],
    ['sip:a%3bb@x.com', 'sip:a;b@x.com'],
    ['sip:alice@atlanta.com', 'not a uri'],
  ];
  for (const [a, b] of equal)
    it(`${a} == ${b}`, () => {
      assert.equal(uriEquals(a, b), true);
      assert.equal(uriEquals(b, a), true);
    });
  for (const [a, b] of unequal)
    it(`${a} != ${b}`, () => {
      assert.equal(uriEquals(a, b), false);
      assert.equal(uriEquals(b, a), false);
    });
});

describe('URI rewrite helpers keep the other bytes', () => {
  const base = 'sip:Alice:pw@Atlanta.COM:5070;Transport=TCP;lr?X=%41';
  it('set user', () => {
    assert.equal(setUriUser(base, 'bob'), 'sip:bob:pw@Atlanta.COM:5070;Transport=TCP;lr?X=%41');
    assert.equal(setUriUser('sip:host.example;lr', 'bob'), 'sip:bob@host.example;lr');
    assert.equal(setUriUser(base, ''), 'sip:Atlanta.COM:5070;Transport=TCP;lr?X=%41');
    assert.equal(setUriUser('tel:+123;x=y', '+456'), 'tel:+456;x=y');
  });
  it('set host', () => {
    assert.equal(setUriHost(base, '192.0.2.1'), 'sip:Alice:pw@192.0.2.1:5070;Transport=TCP;lr?X=%41');
    assert.equal(setUriHost('sip:a@b', '2001:db8::1'), 'sip:a@[2001:db8::1]');
    throwsReason(() => setUriHost('sip:a@b', 'bad host'), 'Bad URI host');
  });
  it('set port', () => {
    assert.equal(setUriPort(base, 5080), 'sip:Alice:pw@Atlanta.COM:5080;Transport=TCP;lr?X=%41');
    assert.equal(setUriPort('sip:a@[::1];lr', 5062), 'sip:a@[::1]:5062;lr');
    assert.equal(setUriPort(base, undefined), 'sip:Alice:pw@Atlanta.COM;Transport=TCP;lr?X=%41');
    throwsReason(() => setUriPort(base, 70000), 'Bad URI port');
  });
  it('set password', () => {
    assert.equal(setUriPassword(base, 'x'), 'sip:Alice:x@Atlanta.COM:5070;Transport=TCP;lr?X=%41');
    assert.equal(setUriPassword(base, ''), 'sip:Alice@Atlanta.COM:5070;Transport=TCP;lr?X=%41');
    assert.equal(setUriPassword('sip:a@b', 'p'), 'sip:a:p@b');
    throwsReason(() => setUriPassword('sip:b', 'p'), 'URI has no user');
  });
  it('set host and port', () => {
    assert.equal(setUriHostPort(base, 'h.example:1'), 'sip:Alice:pw@h.example:1;Transport=TCP;lr?X=%41');
    assert.equal(setUriHostPort(base, 'h.example'), 'sip:Alice:pw@h.example;Transport=TCP;lr?X=%41');
    assert.equal(setUriHostPort('sip:a@b', '[2001:db8::2]:7'), 'sip:a@[2001:db8::2]:7');
  });
});
