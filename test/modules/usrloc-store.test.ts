import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FL_PERMANENT, Q_UNSPECIFIED, type UContact, UDomain } from '../../src/modules/usrloc/store.js';

function contact(uri: string, over: Partial<UContact> = {}): UContact {
  return {
    uri,
    expires: 1000.4,
    q: Q_UNSPECIFIED,
    callId: 'call-id-longer-than-thirteen@host',
    cseq: 1,
    userAgent: 'ua',
    received: undefined,
    path: undefined,
    socket: 'udp:127.0.0.1:5060',
    flags: 0,
    lastModified: 1,
    ...over,
  };
}

const uris = (d: UDomain, aor: string) => d.all(aor).map((c) => c.uri);

describe('usrloc store: the contacts of an AOR', () => {
  it('put appends new URIs and replaces an existing one in place; counts follow', () => {
    const d = new UDomain('location');
    d.put('alice', contact('sip:a@1'));
    d.put('alice', contact('sip:b@2'));
    d.put('alice', contact('sip:c@3'));
    const stored = d.find('alice', 'sip:b@2');
    d.put(
      'alice',
      contact('sip:b@2', { cseq: 9, callId: 'another-call-id-of-some-length', expires: 2000.6 }),
    );
    d.put('bob', contact('sip:x@9'));
    assert.deepEqual(uris(d, 'alice'), ['sip:a@1', 'sip:b@2', 'sip:c@3']);
    // a refresh updates the stored object itself (nothing new for the GC to keep)
    assert.equal(d.find('alice', 'sip:b@2'), stored);
    assert.equal(stored?.cseq, 9);
    assert.equal(stored?.callId, 'another-call-id-of-some-length');
    assert.equal(stored?.expires, 2001);
    assert.equal(d.contactCount, 4);
    assert.equal(d.size, 2);
    assert.deepEqual([...d.aors()].sort(), ['alice', 'bob']);
  });

  it('remove unlinks the head, the middle and the tail; the AOR goes with its last contact', () => {
    const d = new UDomain('location');
    for (const u of ['sip:1@h', 'sip:2@h', 'sip:3@h', 'sip:4@h']) d.put('a', contact(u));
    assert.equal(d.remove('a', 'sip:2@h'), true);
    assert.deepEqual(uris(d, 'a'), ['sip:1@h', 'sip:3@h', 'sip:4@h']);
    assert.equal(d.remove('a', 'sip:1@h'), true);
    assert.deepEqual(uris(d, 'a'), ['sip:3@h', 'sip:4@h']);
    assert.equal(d.remove('a', 'sip:4@h'), true);
    assert.deepEqual(uris(d, 'a'), ['sip:3@h']);
    assert.equal(d.remove('a', 'sip:nope@h'), false);
    assert.equal(d.remove('a', 'sip:3@h'), true);
    assert.equal(d.has('a'), false);
    assert.equal(d.contactCount, 0);
    // a contact added after removals is found again
    d.put('a', contact('sip:5@h'));
    assert.deepEqual(uris(d, 'a'), ['sip:5@h']);
  });

  it('sweep drops expired contacts wherever they are in the chain and reports each', () => {
    const d = new UDomain('location');
    d.put('a', contact('sip:old1@h', { expires: 10 }));
    d.put('a', contact('sip:live@h', { expires: 100 }));
    d.put('a', contact('sip:old2@h', { expires: 20 }));
    d.put('a', contact('sip:perm@h', { expires: 0, flags: FL_PERMANENT }));
    d.put('b', contact('sip:gone@h', { expires: 5 }));
    const heard: string[] = [];
    assert.equal(
      d.sweep(50, (aor, c) => heard.push(`${aor} ${c.uri}`)),
      3,
    );
    assert.deepEqual(heard.sort(), ['a sip:old1@h', 'a sip:old2@h', 'b sip:gone@h']);
    assert.deepEqual(uris(d, 'a'), ['sip:live@h', 'sip:perm@h']);
    assert.equal(d.has('b'), false);
    assert.equal(d.contactCount, 2);
    assert.equal(d.expired, 3);
    // the chain is still whole: appending after a sweep works
    d.put('a', contact('sip:new@h', { expires: 100 }));
    assert.deepEqual(uris(d, 'a'), ['sip:live@h', 'sip:perm@h', 'sip:new@h']);
  });

  it('valid() hides expired contacts and orders by q, then by last modification', () => {
    const d = new UDomain('location');
    d.put('a', contact('sip:low@h', { q: 100, lastModified: 5 }));
    d.put('a', contact('sip:expired@h', { q: 1000, expires: 10 }));
    d.put('a', contact('sip:high@h', { q: 900, lastModified: 1 }));
    d.put('a', contact('sip:low-newer@h', { q: 100, lastModified: 9 }));
    assert.deepEqual(
      d.valid('a', 50).map((c) => c.uri),
      ['sip:high@h', 'sip:low-newer@h', 'sip:low@h'],
    );
  });

  it('stores a copy: whole-second expiry, and spreading or serialising gives only the contact fields', () => {
    const d = new UDomain('location');
    const given = contact('sip:a@h');
    d.put('a', given);
    d.put('a', contact('sip:b@h'));
    const [first] = d.all('a');
    assert.notEqual(first, given);
    assert.equal(first.expires, 1000);
    assert.deepEqual(Object.keys({ ...first }).sort(), Object.keys(given).sort());
    assert.deepEqual(
      JSON.parse(JSON.stringify(first)),
      JSON.parse(JSON.stringify({ ...given, expires: 1000 })),
    );
  });
});
