/**
 * One AOR, three registered phones with different q: lookup() makes the best contact the
 * Request-URI and the others branches in q order, and t_relay forks to all three (issue 6's
 * "forking to three registered contacts"). Runs the shipped examples/ser.cfg.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildReply } from '../../src/sip/reply.js';
import { REPO, request, type Ser, startSer, UdpPeer } from './harness.js';
import { replyTo } from './registrar-helpers.test.js';

/** the example with its listen lines and port taken out (the harness adds its own) */
function exampleCfg(): string {
  return readFileSync(join(REPO, 'examples', 'ser.cfg'), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*(listen|port|debug)\s*=/.test(l))
    .join('\n');
}

/** the branch index tm wrote in our Via branch (z9hG4bK<hash>.<transaction>.<index>) */
const branchIndex = (branch: string | undefined) => Number(/\.(\d+)$/.exec(branch ?? '')?.[1]);

describe('forking to three registered contacts of one AOR (examples/ser.cfg)', () => {
  let ser: Ser;
  const phones: UdpPeer[] = [];
  let caller: UdpPeer;
  before(async () => {
    ser = await startSer(exampleCfg());
    for (const ip of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) phones.push(await UdpPeer.open(ip));
    caller = await UdpPeer.open();
  });
  after(async () => {
    for (const p of [...phones, caller]) p.close();
    await ser.stop();
  });

  it('registers three contacts with q 0.1, 1.0 and 0.5', async () => {
    const qs = ['0.1', '1.0', '0.5'];
    for (let i = 0; i < 3; i++) {
      const p = phones[i];
      const contact = `<sip:carol@${p.ip}:${p.port}>;q=${qs[i]}`;
      // addressed to the server's own port, so that `uri == myself` holds
      const regMsg = request('REGISTER', `sip:127.0.0.1:${ser.port}`, { ip: p.ip, port: p.port }, [
        `To: <sip:carol@127.0.0.1:${ser.port}>`,
        `From: <sip:carol@127.0.0.1:${ser.port}>;tag=r${i}`,
        `Contact: ${contact}`,
        'Expires: 600',
        `Call-ID: fork-${i}@it`,
      ]);
      const r = await replyTo(p, regMsg, ser.port);
      assert.equal(r.status, 200);
      assert.equal(r.headers('contact').length, i + 1);
    }
  });

  it('the INVITE reaches all three, branch order by q; the 200 wins and the others are cancelled', async () => {
    caller.send(
      request('INVITE', `sip:carol@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: caller.port }),
      ser.port,
    );
    const got = await Promise.all(phones.map((p) => p.nextMsg()));
    for (const [i, m] of got.entries()) {
      assert.equal(m.method, 'INVITE');
      assert.equal(m.ruri, `sip:carol@${phones[i].ip}:${phones[i].port}`);
    }
    // q 1.0 (phone 1) is the Request-URI branch, then q 0.5 (phone 2), then q 0.1 (phone 0)
    assert.deepEqual(
      got.map((m) => branchIndex(m.vias[0].branch)),
      [2, 0, 1],
    );
    assert.equal((await caller.nextMsg()).status, 100);
    // phone 2 answers; phones 0 and 1 ring and must get a CANCEL
    phones[0].send(buildReply(got[0], 180, 'Ringing', { toTag: 'p0' }), ser.port);
    phones[1].send(buildReply(got[1], 180, 'Ringing', { toTag: 'p1' }), ser.port);
    phones[2].send(buildReply(got[2], 200, 'OK', { toTag: 'p2' }), ser.port);
    let final: number | undefined;
    for (let i = 0; i < 4 && final === undefined; i++) {
      const r = await caller.nextMsg();
      if (r.status && r.status >= 200) final = r.status;
    }
    assert.equal(final, 200);
    for (const i of [0, 1]) {
      const c = await phones[i].nextMsg();
      assert.equal(c.method, 'CANCEL');
      assert.equal(c.vias[0].branch, got[i].vias[0].branch);
      phones[i].send(buildReply(c, 200, 'OK', { toTag: `p${i}` }), ser.port);
      phones[i].send(buildReply(got[i], 487, 'Request Terminated', { toTag: `p${i}` }), ser.port);
      const ack = await phones[i].nextMsg();
      assert.equal(ack.method, 'ACK');
    }
  });
});
