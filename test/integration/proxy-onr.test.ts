/**
 * Seed 003 Example 2-21 (onr.cfg): the request is forked in parallel to two destinations;
 * when neither answers, failure_route[1] sends it to a third, and when that one does not
 * answer either, failure_route[2] sends it to the last resort, which answers. The seed's
 * iptel.org hosts are loopback SIPp UAS peers; fr_inv_timer is 2 s instead of 15.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort, haveSeeds, type Ser, seedScript, startSer } from './harness.js';
import { explain, haveSipp, type SippRun, sippUac, sippUas } from './proxy-sipp.js';

describe('seed 003 Example 2-21: parallel fork, then failure_route[1] and [2] serially', {
  skip: (!haveSeeds || !haveSipp) && 'seeds or sipp missing',
}, () => {
  let ser: Ser;
  const ports: number[] = [];
  before(async () => {
    for (let i = 0; i < 4; i++) ports.push(await freePort());
    const [p1, p2, p3, p4] = ports;
    const cfg = seedScript('003-ex2-21-on-reply-processing.cfg')
      .replace('sip:nobody@iptel.org', `sip:nobody@127.0.0.1:${p1}`)
      .replace('sip:parallel@iptel.org:9', `sip:parallel@127.0.0.1:${p2}`)
      .replace('sip:nonsense@iptel.org', `sip:nonsense@127.0.0.1:${p3}`)
      .replace('sip:foo@iptel.org', `sip:foo@127.0.0.1:${p4}`)
      .replace(/modparam\("tm", "fr_inv_timer", 15 \)/, 'modparam("tm", "fr_inv_timer", 2)')
      .replace(/modparam\("tm", "fr_timer", 10 \)/, 'modparam("tm", "fr_timer", 2)');
    assert.match(cfg, /fr_inv_timer", 2\)/);
    ser = await startSer(`debug=3\n${cfg}`);
  });
  after(async () => {
    await ser.stop();
  });

  it('both parallel branches ring and are cancelled, the third is cancelled, the last resort answers', async () => {
    const [p1, p2, p3, p4] = ports;
    // the first three ring until the proxy's fr_inv_timer cancels them; the fourth answers
    const ringers = [p1, p2, p3].map((p) => sippUas('proxy-uas-cancel.xml', p, 1, [], 40_000));
    const last = sippUas('proxy-uas-answer.xml', p4, 1, [], 40_000);
    const uac = await sippUac('proxy-uac-answered.xml', ser.port, 'anyone', 1, [], 40_000);
    const c = await uac.done;
    const runs: SippRun[] = [];
    for (const r of ringers) {
      if (c.code !== 0) r.kill();
      runs.push(await r.done);
    }
    if (c.code !== 0) last.kill();
    const l = await last.done;
    assert.equal(c.code, 0, explain('uac', c));
    for (const [i, r] of runs.entries()) assert.equal(r.code, 0, explain(`destination ${i + 1}`, r));
    assert.equal(l.code, 0, explain('last resort', l));
    // serial order: failure_route[1] ran before [2], each once
    const log = ser.stderr();
    const first = log.indexOf('first redirection');
    const second = log.indexOf('second redirection');
    assert.ok(first >= 0 && second > first, log.slice(-2000));
    assert.equal(log.split('first redirection').length, 2);
    assert.equal(log.split('second redirection').length, 2);
  });
});
