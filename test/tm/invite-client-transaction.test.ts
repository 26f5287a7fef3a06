/** INVITE client transaction (RFC 3261 §17.1.1, RFC 6026) driven by a ManualClock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMessage } from '../../src/sip/message.js';
import { InviteClientTransaction } from '../../src/tm/invite-client-transaction.js';
import { Clocked, req, rpl, Sink, TIMERS, User } from './helpers.js';

function setup(reliable = false) {
  const c = new Clocked();
  const out = new Sink(c, reliable);
  const user = new User();
  const tx = new InviteClientTransaction(req('INVITE'), out, c.wheel, TIMERS, user);
  let terminated = 0;
  tx.onTerminated = () => terminated++;
  tx.start();
  return { c, out, user, tx, terminated: () => terminated };
}

describe('INVITE client transaction', () => {
  it('Calling over UDP: Timer A doubles without cap, Timer B (fr_timer) ends it with a timeout', () => {
    const { c, out, user, tx, terminated } = setup();
    assert.equal(tx.state, 'calling');
    c.advance(29_990);
    assert.deepEqual(out.times(), [0, 500, 1500, 3500, 7500, 15500]);
    assert.equal(user.timeouts, 0);
    c.advance(20);
    assert.equal(user.timeouts, 1);
    assert.equal(tx.state, 'terminated');
    assert.equal(terminated(), 1);
    c.advance(60_000);
    assert.equal(out.sent.length, 6, 'nothing after termination');
  });

  it('over TCP: no retransmissions, Timer B still fires', () => {
    const { c, out, user } = setup(true);
    c.advance(30_010);
    assert.deepEqual(out.times(), [0]);
    assert.equal(user.timeouts, 1);
  });

  it('a provisional stops Timer A and arms Timer C (fr_inv_timer); a later 1xx >100 resets it', () => {
    const { c, out, user, tx, terminated } = setup();
    c.advance(600);
    tx.receiveReply(rpl(100));
    assert.equal(tx.state, 'proceeding');
    assert.ok(tx.provisional);
    c.advance(60_000);
    assert.equal(out.sent.length, 2, 'no retransmission in Proceeding');
    tx.receiveReply(rpl(180));
    assert.deepEqual(user.replies, [100, 180]);
    c.advance(119_980);
    assert.equal(user.timeouts, 0, 'Timer C restarted by the 180');
    c.advance(30);
    assert.equal(user.timeouts, 1);
    assert.ok(tx.timedOut);
    assert.equal(tx.state, 'proceeding', 'still listening for the 487 to ACK it');
    c.advance(64 * 500 + 20);
    assert.equal(terminated(), 1);
  });

  it('a 100 does not reset Timer C', () => {
    const { c, user, tx } = setup();
    tx.receiveReply(rpl(180));
    c.advance(100_000);
    tx.receiveReply(rpl(100));
    c.advance(20_010);
    assert.equal(user.timeouts, 1);
  });

  it('a non-2xx final: Completed, ACK built per §17.1.1.3, re-sent for each retransmission, Timer D = wt_timer', () => {
    const { c, out, user, tx, terminated } = setup();
    tx.receiveReply(rpl(486));
    assert.equal(tx.state, 'completed');
    assert.deepEqual(user.replies, [486]);
    const ack = parseMessage(Buffer.from(out.sent[1].data, 'latin1'), { datagram: true });
    assert.equal(ack.method, 'ACK');
    assert.equal(ack.ruri, 'sip:bob@example.org');
    assert.equal(ack.vias.length, 1);
    assert.equal(ack.topVia?.branch, 'z9hG4bKabc');
    assert.equal(ack.header('route'), '<sip:p2.example.org;lr>');
    assert.equal(ack.toTag, 't9');
    assert.equal(ack.fromTag, 'f1');
    assert.equal(ack.header('cseq'), '7 ACK');
    tx.receiveReply(rpl(486));
    assert.equal(out.sent.length, 3);
    assert.equal(out.sent[2].data, out.sent[1].data);
    assert.deepEqual(user.replies, [486], 'retransmissions stay in the transaction');
    c.advance(600);
    assert.equal(out.sent.length, 3, 'Timer A stopped');
    c.advance(4500);
    assert.equal(terminated(), 1);
  });

  it('over TCP Timer D is zero', () => {
    const { c, tx, terminated } = setup(true);
    tx.receiveReply(rpl(404));
    c.advance(20);
    assert.equal(terminated(), 1);
  });

  it('a 2xx: Accepted, every further 2xx passes to the TU, ends after wt_timer', () => {
    const { c, user, tx, terminated } = setup();
    tx.receiveReply(rpl(200));
    assert.equal(tx.state, 'accepted');
    tx.receiveReply(rpl(200));
    tx.receiveReply(rpl(486));
    assert.deepEqual(user.replies, [200, 200]);
    c.advance(5010);
    assert.equal(terminated(), 1);
  });

  it('a transport failure is reported and ends the transaction', () => {
    const c = new Clocked();
    const out = new Sink(c);
    out.fail = true;
    const user = new User();
    const tx = new InviteClientTransaction(req('INVITE'), out, c.wheel, TIMERS, user);
    tx.start();
    assert.equal(user.transportErrors, 1);
    assert.equal(tx.state, 'terminated');
  });
});
