/** Non-INVITE client transaction (RFC 3261 §17.1.2) driven by a ManualClock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NonInviteClientTransaction } from '../../src/tm/non-invite-client-transaction.js';
import { Clocked, req, rpl, Sink, TIMERS, User } from './helpers.js';

function setup(reliable = false) {
  const c = new Clocked();
  const out = new Sink(c, reliable);
  const user = new User();
  const tx = new NonInviteClientTransaction(req('BYE'), out, c.wheel, TIMERS, user);
  let terminated = 0;
  tx.onTerminated = () => terminated++;
  tx.start();
  return { c, out, user, tx, terminated: () => terminated };
}

describe('non-INVITE client transaction', () => {
  it('Trying: Timer E doubles up to T2, Timer F (fr_timer) times out', () => {
    const { c, out, user, tx } = setup();
    assert.equal(tx.state, 'trying');
    c.advance(29_990);
    assert.deepEqual(out.times(), [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500]);
    c.advance(20);
    assert.equal(user.timeouts, 1);
    assert.equal(tx.state, 'terminated');
  });

  it('Proceeding: Timer E fires every T2', () => {
    const { c, out, user, tx } = setup();
    c.advance(600);
    tx.receiveReply(rpl(100, 'BYE'));
    assert.equal(tx.state, 'proceeding');
    assert.deepEqual(user.replies, [100]);
    c.advance(9000);
    // the pending E (due 1500) fires in Proceeding, then every T2
    assert.deepEqual(out.times(), [0, 500, 1500, 5500, 9500]);
  });

  it('over TCP: no Timer E', () => {
    const { c, out, user } = setup(true);
    c.advance(30_010);
    assert.deepEqual(out.times(), [0]);
    assert.equal(user.timeouts, 1);
  });

  it('a final reply: Completed, retransmissions absorbed, Timer K = T4 (0 over TCP)', () => {
    const { c, out, user, tx, terminated } = setup();
    tx.receiveReply(rpl(200, 'BYE'));
    assert.equal(tx.state, 'completed');
    tx.receiveReply(rpl(200, 'BYE'));
    assert.deepEqual(user.replies, [200]);
    c.advance(4990);
    assert.equal(terminated(), 0);
    assert.equal(out.sent.length, 1, 'no retransmission after the final');
    c.advance(20);
    assert.equal(terminated(), 1);
    const t = setup(true);
    t.tx.receiveReply(rpl(404, 'BYE'));
    t.c.advance(20);
    assert.equal(t.terminated(), 1);
  });
});
