/**
 * Seed 003 Example 2-18, the stateful UAS: t_newtran() then t_reply(). A retransmitted
 * request gets the same reply again (same To tag) and the script does not run again: the
 * "New Transaction Arrived" log line appears once per transaction. A raw UDP peer plays the
 * caller so that a retransmission is byte-for-byte the same request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { haveSeeds, request, type Ser, seedScript, sleep, startSer, UdpPeer } from './harness.js';

const count = (text: string, what: string) => text.split(what).length - 1;

describe('seed 003 Example 2-18: stateful UAS', { skip: !haveSeeds && 'seeds missing' }, () => {
  let ser: Ser;
  let ua: UdpPeer;
  before(async () => {
    ua = await UdpPeer.open();
    ser = await startSer(`debug=3\n${seedScript('003-ex2-18-stateful-uas.cfg')}`);
  });
  after(async () => {
    ua.close();
    await ser.stop();
  });
  const from = () => ({ ip: '127.0.0.1', port: ua.port });

  it('an INVITE for a@ gets 409; its retransmissions get the identical 409 and no new log line', async () => {
    const inv = request('INVITE', `sip:a@127.0.0.1:${ser.port}`, from());
    ua.send(inv, ser.port);
    const r1 = await ua.nextMsg();
    assert.equal(r1.status, 409);
    assert.equal(r1.reason, 'Bizzar Error');
    for (let i = 0; i < 3; i++) {
      ua.send(inv, ser.port);
      const again = await ua.nextMsg();
      assert.equal(again.status, 409);
      assert.equal(again.toTag, r1.toTag, 'same reply, same To tag');
    }
    // the ACK for the 409 ends it; nothing comes back
    const ack = request('ACK', `sip:a@127.0.0.1:${ser.port}`, from(), [
      `Via: ${r1.header('via')}`,
      `From: ${r1.header('from')}`,
      `To: ${r1.header('to')}`,
      `Call-ID: ${r1.callId}`,
      `CSeq: ${r1.cseq.seq} ACK`,
    ]);
    ua.send(ack, ser.port);
    assert.equal(await ua.next(300), undefined);
    await sleep(100);
    assert.equal(count(ser.stderr(), 'New Transaction Arrived'), 1, ser.stderr().slice(-1500));
  });

  it('other URIs get 699 with the reason of the seed; a new transaction logs once more', async () => {
    const before = count(ser.stderr(), 'New Transaction Arrived');
    const opt = request('OPTIONS', `sip:b@127.0.0.1:${ser.port}`, from());
    ua.send(opt, ser.port);
    const r = await ua.nextMsg();
    assert.equal(r.status, 699);
    assert.equal(r.reason, "I don't want to chat with you");
    ua.send(opt, ser.port);
    const again = await ua.nextMsg();
    assert.equal(again.status, 699);
    assert.equal(again.toTag, r.toTag);
    await sleep(100);
    assert.equal(count(ser.stderr(), 'New Transaction Arrived'), before + 1);
  });

  it('REGISTER is answered statelessly and logged', async () => {
    ua.send(request('REGISTER', `sip:127.0.0.1:${ser.port}`, from()), ser.port);
    const r = await ua.nextMsg();
    assert.equal(r.status, 200);
  });
});
