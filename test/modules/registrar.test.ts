/** registrar save()/lookup()/registered() against RFC 3261 §10.3, with real parsed REGISTERs. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FixupError } from '../../src/core/module.js';
import { aorOf } from '../../src/modules/registrar/index.js';
import usrloc from '../../src/modules/usrloc/index.js';
import { parseUri } from '../../src/sip/uri.js';
import { ctx, invite, register, replyContacts, setup, T0 } from './registrar-helpers.test.js';

const A = '<sip:alice@195.37.77.100:5061>';
const C = '<sip:alice@195.37.77.110:5062>';

describe('registrar save: adding, refreshing and removing bindings', () => {
  it('S1.1 stores a binding and answers 200 listing it with its expires and a Date', async () => {
    const r = await setup();
    const { ret, reply } = await r.save(register({ contacts: [A], expires: 600 }));
    assert.equal(ret, 1);
    assert.equal(reply?.status, 200);
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=600']);
    assert.equal(reply?.header('date'), new Date(T0).toUTCString());
    assert.ok(reply?.toTag, 'the reply has a To-tag');
    assert.equal(reply?.callId, 'reg-1@195.37.77.100');
  });

  it('S1.2 a second phone of the same AOR adds a binding; the reply lists both', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600 }));
    r.advance(10);
    const { reply } = await r.save(register({ contacts: [C], expires: 300, callId: 'other@c' }));
    assert.deepEqual(replyContacts(reply).sort(), [
      '<sip:alice@195.37.77.100:5061>;expires=590',
      '<sip:alice@195.37.77.110:5062>;expires=300',
    ]);
  });

  it('a refresh updates the expiry of the same binding (higher CSeq)', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600 }));
    r.advance(100);
    const { reply } = await r.save(register({ contacts: [A], expires: 600, cseq: 2 }));
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=600']);
  });

  it('S1.3 expires=0 on one contact removes only that binding', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600 }));
    await r.save(register({ contacts: [C], expires: 600, callId: 'other@c' }));
    const { reply } = await r.save(register({ contacts: [`${A};expires=0`], cseq: 2 }));
    assert.equal(reply?.status, 200);
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.110:5062>;expires=600']);
  });

  it('Expires: 0 header removes the listed contacts', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600 }));
    const { reply } = await r.save(register({ contacts: [A], expires: 0, cseq: 2 }));
    assert.deepEqual(replyContacts(reply), []);
    assert.equal((await r.lookup('sip:alice@iptel.org')).ret, -1);
  });

  it('S1.4 Contact: * with Expires: 0 removes every binding; the 200 has no Contact', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600 }));
    await r.save(register({ contacts: [C], expires: 600, callId: 'other@c' }));
    const { ret, reply } = await r.save(register({ contacts: ['*'], expires: 0, callId: 'third@x' }));
    assert.equal(ret, 1);
    assert.equal(reply?.status, 200);
    assert.deepEqual(replyContacts(reply), []);
    assert.equal((await r.lookup('sip:alice@iptel.org')).ret, -1);
  });

  it('* is 400 with other contacts, with Expires other than 0, or without Expires', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600 }));
    for (const o of [
      { contacts: ['*', A], expires: 0 },
      { contacts: ['*'], expires: 60 },
      { contacts: ['*'] },
    ]) {
      const { ret, reply } = await r.save(register({ ...o, callId: 'x@y' }));
      assert.equal(ret, -1);
      assert.equal(reply?.status, 400, JSON.stringify(o));
    }
    assert.equal((await r.lookup('sip:alice@iptel.org')).ret, 1, 'nothing was removed');
  });

  it('* does not remove a binding of the same Call-ID with a CSeq not lower than the request', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600, cseq: 5 }));
    await r.save(register({ contacts: [C], expires: 600, callId: 'c@c', cseq: 1 }));
    const { reply } = await r.save(register({ contacts: ['*'], expires: 0, cseq: 5 }));
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=600']);
  });

  it('a REGISTER without Contact is a fetch: lists the bindings, changes nothing', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600 }));
    r.advance(60);
    const { ret, reply } = await r.save(register({ callId: 'fetch@x' }));
    assert.equal(ret, 1);
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=540']);
    const empty = await r.save(register({ user: 'nobody', callId: 'fetch2@x' }));
    assert.equal(empty.reply?.status, 200);
    assert.deepEqual(replyContacts(empty.reply), []);
  });

  it('save_noreply stores without answering; save in failure route is allowed', async () => {
    const r = await setup();
    const before = r.rc.sent.length;
    assert.equal(
      await r.reg.call(ctx(register({ contacts: [A], expires: 60 })), 'save_noreply', 'location'),
      1,
    );
    assert.equal(r.rc.sent.length, before);
    assert.equal((await r.lookup('sip:alice@iptel.org')).ret, 1);
  });
});

describe('registrar save: expiry rules', () => {
  it('uses the contact expires param, else the Expires header, else default_expires (3600)', async () => {
    const r = await setup();
    let { reply } = await r.save(register({ contacts: [`${A};expires=120`], expires: 600 }));
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=120']);
    ({ reply } = await r.save(register({ user: 'b', contacts: [A], expires: 600 })));
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=600']);
    ({ reply } = await r.save(register({ user: 'c', contacts: [A] })));
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=3600']);
  });

  it('S21.5 default_expires 60 applies when the REGISTER gives none', async () => {
    const r = await setup({}, { default_expires: 60, min_expires: 30 });
    const { reply } = await r.save(register({ contacts: [A] }));
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=60']);
  });

  it('below min_expires: 423 Interval Too Brief with Min-Expires, nothing stored', async () => {
    const r = await setup({}, { min_expires: 60 });
    const { ret, reply } = await r.save(register({ contacts: [A], expires: 10 }));
    assert.equal(ret, -1);
    assert.equal(reply?.status, 423);
    assert.equal(reply?.reason, 'Interval Too Brief');
    assert.equal(reply?.header('min-expires'), '60');
    assert.equal((await r.lookup('sip:alice@iptel.org')).ret, -1);
    // one short contact among good ones fails the whole request
    const two = await r.save(register({ contacts: [C, `${A};expires=5`], expires: 600 }));
    assert.equal(two.reply?.status, 423);
    assert.equal((await r.lookup('sip:alice@iptel.org')).ret, -1);
  });

  it('expires 0 is never too brief (a removal is allowed with min_expires)', async () => {
    const r = await setup({}, { min_expires: 60 });
    await r.save(register({ contacts: [A], expires: 600 }));
    const { reply } = await r.save(register({ contacts: [A], expires: 0, cseq: 2 }));
    assert.equal(reply?.status, 200);
  });

  it('S21.6 min_expires_raise 1 raises a short expiry to min_expires like SER 0.9 / OpenSER 1.1', async () => {
    const r = await setup({}, { min_expires: 30, min_expires_raise: 1 });
    const { reply } = await r.save(register({ contacts: [A], expires: 10 }));
    assert.equal(reply?.status, 200);
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=30']);
  });

  it('max_expires lowers a longer expiry', async () => {
    const r = await setup({}, { max_expires: 1800 });
    const { reply } = await r.save(register({ contacts: [A], expires: 7200 }));
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=1800']);
  });

  it('a malformed Expires header or expires param is 400', async () => {
    const r = await setup();
    assert.equal((await r.save(register({ contacts: [A], expires: 'soon' }))).reply?.status, 400);
    assert.equal((await r.save(register({ contacts: [`${A};expires=x`] }))).reply?.status, 400);
  });

  it('an expired binding disappears from lookup and from the 200 at once, and the timer drops it', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 60 }));
    r.advance(61);
    assert.equal((await r.lookup('sip:alice@iptel.org')).ret, -2, 'found but expired');
    const { reply } = await r.save(register({ callId: 'f@x' }));
    assert.deepEqual(replyContacts(reply), []);
    await r.ul.state.tick();
    const d = r.ul.state.existing('location')!;
    assert.equal(d.size, 0);
    assert.equal(d.expired, 1);
    assert.equal((await r.lookup('sip:alice@iptel.org')).ret, -1);
  });
});

describe('registrar save: Call-ID / CSeq ordering (§10.3 step 7)', () => {
  it('same Call-ID with a CSeq not higher leaves the binding as it was', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600, cseq: 10 }));
    r.advance(100);
    for (const cseq of [10, 9]) {
      const { reply } = await r.save(register({ contacts: [A], expires: 3000, cseq }));
      assert.equal(reply?.status, 200, 'a retransmission still gets its 200');
      assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=500']);
    }
    // nor removed by a stale expires=0
    const { reply } = await r.save(register({ contacts: [A], expires: 0, cseq: 9 }));
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=500']);
  });

  it('a higher CSeq of the same Call-ID, or another Call-ID with any CSeq, updates', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600, cseq: 10 }));
    let { reply } = await r.save(register({ contacts: [A], expires: 1000, cseq: 11 }));
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=1000']);
    ({ reply } = await r.save(register({ contacts: [A], expires: 2000, cseq: 1, callId: 'rebooted@phone' })));
    assert.deepEqual(replyContacts(reply), ['<sip:alice@195.37.77.100:5061>;expires=2000']);
  });

  it('bindings are matched with the URI comparison rules (host case, param order)', async () => {
    const r = await setup();
    await r.save(register({ contacts: ['<sip:alice@PHONE.example.com;transport=udp>'], expires: 600 }));
    const { reply } = await r.save(
      register({ contacts: ['<sip:alice@phone.example.com;transport=udp>'], expires: 300, cseq: 2 }),
    );
    assert.deepEqual(replyContacts(reply), ['<sip:alice@phone.example.com;transport=udp>;expires=300']);
  });
});

describe('registrar save: q, max_contacts, bad requests', () => {
  it('q-values are stored and listed; no q means none listed', async () => {
    const r = await setup();
    const { reply } = await r.save(
      register({ contacts: [`${A};q=0.5`, `${C};q=1`, '<sip:alice@10.0.0.3>'], expires: 600 }),
    );
    assert.deepEqual(replyContacts(reply), [
      '<sip:alice@195.37.77.110:5062>;expires=600;q=1',
      '<sip:alice@195.37.77.100:5061>;expires=600;q=0.5',
      '<sip:alice@10.0.0.3>;expires=600',
    ]);
  });

  it('a q outside 0…1 is 400', async () => {
    const r = await setup();
    assert.equal((await r.save(register({ contacts: [`${A};q=2`] }))).reply?.status, 400);
  });

  it('max_contacts: a REGISTER that would exceed it is 503 and changes nothing', async () => {
    const r = await setup({}, { max_contacts: 2 });
    await r.save(register({ contacts: [A, C], expires: 600 }));
    const { ret, reply } = await r.save(register({ contacts: ['<sip:alice@10.0.0.3>'], callId: 'z@z' }));
    assert.equal(ret, -1);
    assert.equal(reply?.status, 503);
    assert.equal(reply?.reason, 'Too many registered contacts');
    // refreshing within the limit is fine
    assert.equal((await r.save(register({ contacts: [A], expires: 60, cseq: 2 }))).reply?.status, 200);
  });

  it('To must be a SIP URI with a user: tel: or sip:host alone are 400', async () => {
    const r = await setup();
    for (const to of ['<tel:+4930123>', '<sip:iptel.org>']) {
      const { ret, reply } = await r.save(register({ to, contacts: [A] }));
      assert.equal(ret, -1);
      assert.equal(reply?.status, 400, to);
    }
  });

  it('a Contact that is not a URI is 400; sl_reply_error gets the reason via lastError', async () => {
    const r = await setup();
    const c = ctx(register({ contacts: ['<foo>'] }));
    assert.equal(await r.reg.call(c, 'save_noreply', 'location'), -1);
    assert.equal(c.lastError?.code, 400);
  });

  it('stores User-Agent, Call-ID, CSeq, socket and the NAT flag (nat_flag)', async () => {
    const r = await setup({}, { nat_flag: 6 });
    const c = ctx(register({ contacts: [A], expires: 600, cseq: 7 }));
    c.flags |= 1 << 6;
    await r.reg.call(c, 'save', 'location');
    const [b] = r.ul.state.existing('location')!.all('alice');
    assert.equal(b.userAgent, 'TestPhone/2.0');
    assert.equal(b.callId, 'reg-1@195.37.77.100');
    assert.equal(b.cseq, 7);
    assert.equal(b.socket, 'udp:195.37.77.101:5060');
    assert.equal(b.flags & 1, 1);
    const { ret, ctx: l } = await r.lookup('sip:alice@iptel.org');
    assert.equal(ret, 1);
    assert.ok(l.flags & (1 << 6), 'lookup sets nat_flag again');
  });

  it('received_avp: the AVP value is stored and becomes the destination URI on lookup', async () => {
    const r = await setup({}, { received_avp: 's:rcv' });
    const c = ctx(register({ contacts: ['<sip:alice@192.168.1.10:5060>'], expires: 600 }));
    c.avps.set('s:rcv', ['sip:1.2.3.4:40000']);
    await r.reg.call(c, 'save', 'location');
    const { ctx: l } = await r.lookup('sip:alice@iptel.org');
    assert.equal(l.ruri, 'sip:alice@192.168.1.10:5060');
    assert.equal(l.dstUri, 'sip:1.2.3.4:40000');
  });
});

describe('registrar lookup / registered', () => {
  it('rewrites the R-URI to the best contact and appends the others by q, then freshest', async () => {
    const r = await setup();
    await r.save(register({ contacts: ['<sip:a@10.0.0.1>;q=0.1'], expires: 600, callId: '1@x' }));
    r.advance(1);
    await r.save(register({ contacts: ['<sip:a@10.0.0.2>;q=0.9'], expires: 600, callId: '2@x' }));
    r.advance(1);
    await r.save(register({ contacts: ['<sip:a@10.0.0.3>;q=0.5'], expires: 600, callId: '3@x' }));
    r.advance(1);
    await r.save(register({ contacts: ['<sip:a@10.0.0.4>;q=0.5'], expires: 600, callId: '4@x' }));
    const { ret, ctx: c } = await r.lookup('sip:alice@iptel.org');
    assert.equal(ret, 1);
    assert.equal(c.ruri, 'sip:a@10.0.0.2');
    assert.equal(c.ruriQ, 900);
    assert.deepEqual(
      c.branches.map((b) => [b.uri, b.q]),
      [
        ['sip:a@10.0.0.4', 500],
        ['sip:a@10.0.0.3', 500],
        ['sip:a@10.0.0.1', 100],
      ],
    );
  });

  it('append_branches 0: only the best contact; desc_time_order 1: freshest first, q ignored', async () => {
    const r = await setup({}, { append_branches: 0 });
    await r.save(register({ contacts: ['<sip:a@10.0.0.1>;q=1', '<sip:a@10.0.0.2>;q=0.5'], expires: 600 }));
    const { ctx: c } = await r.lookup('sip:alice@iptel.org');
    assert.equal(c.ruri, 'sip:a@10.0.0.1');
    assert.equal(c.branches.length, 0);
    const t = await setup({}, { desc_time_order: 1 });
    await t.save(register({ contacts: ['<sip:a@10.0.0.1>;q=1'], expires: 600, callId: '1@x' }));
    t.advance(5);
    await t.save(register({ contacts: ['<sip:a@10.0.0.2>;q=0.1'], expires: 600, callId: '2@x' }));
    const l = await t.lookup('sip:alice@iptel.org');
    assert.equal(l.ctx.ruri, 'sip:a@10.0.0.2');
    assert.equal(l.ctx.branches[0].uri, 'sip:a@10.0.0.1');
  });

  it('returns -1 for an unknown AOR and for an R-URI without a user (S1.15)', async () => {
    const r = await setup();
    assert.equal((await r.lookup('sip:carol@iptel.org')).ret, -1);
    assert.equal((await r.lookup('sip:iptel.org')).ret, -1);
    const { ctx: c } = await r.lookup('sip:carol@iptel.org');
    assert.equal(c.ruri, 'sip:carol@iptel.org', 'R-URI untouched');
  });

  it('AORs compare case-insensitively unless case_sensitive 1', async () => {
    const r = await setup();
    await r.save(register({ user: 'Alice', contacts: [A], expires: 600 }));
    assert.equal((await r.lookup('sip:alice@iptel.org')).ret, 1);
    const s = await setup({}, { case_sensitive: 1 });
    await s.save(register({ user: 'Alice', contacts: [A], expires: 600 }));
    assert.equal((await s.lookup('sip:alice@iptel.org')).ret, -1);
    assert.equal((await s.lookup('sip:Alice@iptel.org')).ret, 1);
  });

  it('use_domain: alice@a and alice@b are different AORs; without it they are one', async () => {
    const r = await setup({}, { use_domain: 1 });
    await r.save(register({ domain: 'a.org', contacts: ['<sip:alice@10.0.0.1>'], expires: 600 }));
    assert.equal((await r.lookup('sip:alice@a.org')).ret, 1);
    assert.equal((await r.lookup('sip:alice@b.org')).ret, -1);
    const s = await setup();
    await s.save(register({ domain: 'a.org', contacts: ['<sip:alice@10.0.0.1>'], expires: 600 }));
    assert.equal((await s.lookup('sip:alice@b.org')).ret, 1);
    assert.equal(aorOf(parseUri('sip:Bob@Example.COM'), true), 'Bob@example.com');
  });

  it('F16 tables are separate: save("mydomain1") is not found by lookup("location")', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600 }), 'mydomain1');
    assert.equal((await r.lookup('sip:alice@iptel.org', 'mydomain1')).ret, 1);
    assert.equal((await r.lookup('sip:alice@iptel.org', 'location')).ret, -1);
  });

  it('registered() tells whether the R-URI AOR has a binding', async () => {
    const r = await setup();
    await r.save(register({ contacts: [A], expires: 600 }));
    assert.equal(await r.reg.call(ctx(invite('sip:alice@iptel.org')), 'registered', 'location'), 1);
    assert.equal(await r.reg.call(ctx(invite('sip:bob@iptel.org')), 'registered', 'location'), -1);
  });

  it('lookup("aliases") turns an alias into its canonical URI (ul_add, serctl alias add)', async () => {
    const r = await setup();
    await r.ul.state.domain('aliases'); // a script with lookup("aliases") has it from the start
    const add = await usrloc.mgmt!.ul_add.run(r.ul.state, [
      'aliases',
      '1234',
      'sip:john.doe@iptel.org',
      '0',
      '1.00',
    ]);
    assert.equal(add.code, 200);
    const { ret, ctx: c } = await r.lookup('sip:1234@iptel.org', 'aliases');
    assert.equal(ret, 1);
    assert.equal(c.ruri, 'sip:john.doe@iptel.org');
    assert.equal(c.branches.length, 0);
  });

  it('refuses a bad table name at load time', async () => {
    const r = await setup();
    assert.throws(() => r.reg.fixup('save', 'bad name'), FixupError);
    assert.throws(() => r.reg.fixup('lookup', ''), FixupError);
  });
});
