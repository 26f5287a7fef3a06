/** Non-INVITE server transaction (RFC 3261 §17.2.2) driven by a ManualClock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NonInviteServerTransaction } from '../../src/tm/non-invite-server-transaction.js';
import { Clocked, Sink, TIMERS } from './helpers.js';

function setup(reliable = false) {
  const c = new Clocked();
  const out = new Sink(c, reliable);
  const tx = new NonInviteServerTransaction(out, c.wheel, TIMERS);
  let terminated = 0;
  tx.onTerminated = () => terminated++;
  return { c, out, tx, terminated: () => terminated };
}
const B = (s: string) => Buffer.from(s);

describe('non-INVITE server transaction', () => {
  it('Trying absorbs retransmissions; Proceeding repeats the provisional; Completed the final', () => {
    const { out, tx } = setup();
    assert.equal(tx.state, 'trying');
    tx.receiveRequest();
    assert.equal(out.sent.length, 0);
    tx.sendReply(100, B('100'));
    assert.equal(tx.state, 'proceeding');
    tx.receiveRequest();
    tx.sendReply(200, B('200'));
    assert.equal(tx.state, 'completed');
    tx.receiveRequest();
    tx.sendReply(500, B('500'));
    assert.deepEqual(
      out.sent.map((s) => s.data),
      ['100', '100', '200', '200'],
    );
  });

  it('Timer J: wt_timer over UDP, zero over TCP', () => {
    const u = setup();
    u.tx.sendReply(200, B('200'));
    u.c.advance(4990);
    assert.equal(u.terminated(), 0);
    u.c.advance(20);
    assert.equal(u.terminated(), 1);
    const t = setup(true);
    t.tx.sendReply(200, B('200'));
    t.c.advance(10);
    assert.equal(t.terminated(), 1);
  });
});
