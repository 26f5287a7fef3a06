/** INVITE server transaction (RFC 3261 §17.2.1, RFC 6026) driven by a ManualClock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InviteServerTransaction } from '../../src/tm/invite-server-transaction.js';
import { Clocked, Sink, TIMERS } from './helpers.js';

function setup(reliable = false) {
  const c = new Clocked();
  const out = new Sink(c, reliable);
  const tx = new InviteServerTransaction(out, c.wheel, TIMERS);
  let terminated = 0;
  tx.onTerminated = () => terminated++;
  return { c, out, tx, terminated: () => terminated };
}
const B = (s: string) => Buffer.from(s);

describe('INVITE server transaction', () => {
  it('Proceeding: a retransmitted INVITE gets the last provisional again', () => {
    const { out, tx } = setup();
    assert.equal(tx.state, 'proceeding');
    tx.receiveRequest();
    assert.equal(out.sent.length, 0, 'nothing sent yet, nothing to repeat');
    tx.sendReply(100, B('100'));
    tx.sendReply(180, B('180'));
    tx.receiveRequest();
    assert.deepEqual(
      out.sent.map((s) => s.data),
      ['100', '180', '180'],
    );
  });

  it('a non-2xx final: Timer G (T1 doubling to T2) until Timer H (64*T1) ends it', () => {
    const { c, out, tx, terminated } = setup();
    tx.sendReply(486, B('486'));
    assert.equal(tx.state, 'completed');
    c.advance(31_990);
    assert.deepEqual(out.times(), [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    assert.equal(terminated(), 0);
    c.advance(20);
    assert.equal(terminated(), 1);
    assert.equal(tx.state, 'terminated');
  });

  it('the ACK: Confirmed, Timer G stops, ACK retransmissions absorbed, Timer I = T4', () => {
    const { c, out, tx, terminated } = setup();
    tx.sendReply(404, B('404'));
    c.advance(600);
    assert.ok(tx.receiveAck());
    assert.equal(tx.state, 'confirmed');
    assert.ok(tx.receiveAck());
    tx.receiveRequest();
    c.advance(4990);
    assert.equal(out.sent.length, 2, 'the first G at 500 only');
    assert.equal(terminated(), 0);
    c.advance(20);
    assert.equal(terminated(), 1);
  });

  it('a retransmitted INVITE in Completed gets the final again', () => {
    const { out, tx } = setup();
    tx.sendReply(603, B('603'));
    tx.receiveRequest();
    assert.equal(out.sent.length, 2);
    assert.equal(out.sent[1].data, '603');
  });

  it('over TCP: no Timer G, Timer I is zero', () => {
    const { c, out, tx, terminated } = setup(true);
    tx.sendReply(500, B('500'));
    c.advance(10_000);
    assert.equal(out.sent.length, 1);
    tx.receiveAck();
    c.advance(20);
    assert.equal(terminated(), 1);
  });

  it('a 2xx: Accepted, further 2xx from other forks go out, ends after wt_timer; no ACK matching', () => {
    const { c, out, tx, terminated } = setup();
    tx.sendReply(200, B('200a'));
    assert.equal(tx.state, 'accepted');
    tx.sendReply(200, B('200b'));
    tx.sendReply(486, B('486'));
    assert.equal(tx.receiveAck(), false, 'the ACK for a 2xx is not ours');
    tx.receiveRequest();
    assert.deepEqual(
      out.sent.map((s) => s.data),
      ['200a', '200b', '200a'],
    );
    c.advance(5010);
    assert.equal(terminated(), 1);
  });
});
