import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { computeHA1, computeHA2, computeResponse, digestHash, digestResponse } from '../../src/sip/digest.js';

const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

// RFC 2617 §3.5 example values
const V = {
  username: 'Mufasa',
  realm: 'testrealm@host.com',
  password: 'Circle Of Life',
  nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
  uri: '/dir/index.html',
  qop: 'auth',
  nc: '00000001',
  cnonce: '0a4f113b',
  method: 'GET',
};

describe('digest', () => {
  it('RFC 2617 §3.5 example response', () => {
    assert.equal(digestResponse(V), '6629fae49393a05397450978507c4ef1');
    const ha1 = computeHA1('MD5', V.username, V.realm, V.password);
    assert.equal(ha1, md5('Mufasa:testrealm@host.com:Circle Of Life'));
    assert.equal(
      digestResponse({ ...V, password: ha1, passwordIsHA1: true }),
      '6629fae49393a05397450978507c4ef1',
    );
  });

  it('without qop (RFC 2069 compatibility)', () => {
    const ha1 = md5(`${V.username}:${V.realm}:${V.password}`);
    const ha2 = md5(`${V.method}:${V.uri}`);
    assert.equal(digestResponse({ ...V, qop: undefined }), md5(`${ha1}:${V.nonce}:${ha2}`));
    assert.equal(computeResponse('MD5', ha1, V.nonce, ha2), md5(`${ha1}:${V.nonce}:${ha2}`));
  });

  it('MD5-sess HA1', () => {
    const base = md5(`${V.username}:${V.realm}:${V.password}`);
    assert.equal(
      computeHA1('MD5-sess', V.username, V.realm, V.password, V.nonce, V.cnonce),
      md5(`${base}:${V.nonce}:${V.cnonce}`),
    );
    assert.notEqual(digestResponse({ ...V, algorithm: 'MD5-sess' }), digestResponse(V));
  });

  it('auth-int HA2 hashes the body', () => {
    const body = 'v=0\r\n';
    assert.equal(
      computeHA2('MD5', 'INVITE', 'sip:a@b', 'auth-int', body),
      md5(`INVITE:sip:a@b:${md5(body)}`),
    );
    assert.equal(computeHA2('MD5', 'INVITE', 'sip:a@b', 'auth-int'), md5(`INVITE:sip:a@b:${md5('')}`));
    assert.equal(computeHA2('MD5', 'INVITE', 'sip:a@b', 'auth'), md5('INVITE:sip:a@b'));
  });

  it('SHA-256 and SHA-256-sess (RFC 8760)', () => {
    const ha1 = sha(`${V.username}:${V.realm}:${V.password}`);
    const ha2 = sha(`${V.method}:${V.uri}`);
    const want = sha(`${ha1}:${V.nonce}:${V.nc}:${V.cnonce}:${V.qop}:${ha2}`);
    assert.equal(digestResponse({ ...V, algorithm: 'SHA-256' }), want);
    const sess = sha(`${ha1}:${V.nonce}:${V.cnonce}`);
    assert.equal(computeHA1('SHA-256-sess', V.username, V.realm, V.password, V.nonce, V.cnonce), sess);
    assert.equal(digestHash('sha-256', 'x'), sha('x'));
  });

  it('unknown algorithms are refused', () => {
    assert.throws(() => digestResponse({ ...V, algorithm: 'SHA-512-256' }), RangeError);
  });
});
