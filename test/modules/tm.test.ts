/** The tm module's declarations: parameters in SER's units, fixups, statistics for serctl monitor. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CoreApi } from '../../src/core/api.js';
import { L_DBG, Logger, MemorySink } from '../../src/core/log.js';
import { FixupError } from '../../src/core/module.js';
import { ManualClock, TimerWheel } from '../../src/core/timer.js';
import { renderMonitor } from '../../src/mgmt/format.js';
import tm, { type TmState } from '../../src/modules/tm/index.js';
import type { TmApi } from '../../src/tm/api.js';
import { ctxOf, invite, load, reply } from './helpers.js';

function core() {
  const stats = new Map<string, () => Record<string, number>>();
  const apis = new Map<string, object>();
  let replyHandler: unknown;
  const clock = new ManualClock();
  const c = {
    log: new Logger(L_DBG, new MemorySink()),
    clock,
    timers: new TimerWheel(clock),
    setReplyHandler: (f: unknown) => {
      replyHandler = f;
    },
    addStats: (g: string, f: () => Record<string, number>) => stats.set(g, f),
    provideApi: (n: string, a: object) => apis.set(n, a),
  } as unknown as CoreApi;
  return { c, stats, apis, hasReplyHandler: () => replyHandler !== undefined };
}

describe('tm module', () => {
  it('converts SER units: seconds for fr/fr_inv/wt, milliseconds for retransmissions', async () => {
    const k = core();
    const m = await load<TmState>(tm, k.c, {
      fr_timer: 10,
      fr_inv_timer: 15,
      wt_timer: 2,
      retr_timer1: 250,
      retr_timer2: 2000,
    });
    assert.deepEqual(m.state.tm.opts.timers, {
      fr: 10_000,
      frInv: 15_000,
      wait: 2000,
      t1: 250,
      t2: 2000,
      t4: 5000,
    });
    assert.equal(m.state.tm.opts.noisyCtimer, false);
    assert.ok(k.hasReplyHandler(), 'replies are offered to tm');
    assert.ok((k.apis.get('tm') as TmApi).hasTransaction);
  });

  it('defaults are SER 0.9 defaults', async () => {
    const m = await load<TmState>(tm, core().c);
    assert.deepEqual(m.state.tm.opts.timers, {
      fr: 30_000,
      frInv: 120_000,
      wait: 5000,
      t1: 500,
      t2: 4000,
      t4: 5000,
    });
  });

  it('refuses bad parameter values', async () => {
    assert.throws(() => tm.params!.fr_inv_timer.validate!(0), FixupError);
    assert.throws(() => tm.params!.retr_timer1.validate!('x'), FixupError);
    await assert.rejects(
      load<TmState>(tm, core().c, { retr_timer1: 5000, retr_timer2: 4000 }),
      /retr_timer2/,
    );
  });

  it('t_reply and t_check_status without a transaction are false', async () => {
    const m = await load<TmState>(tm, core().c);
    assert.equal(await m.call(ctxOf(invite()), 't_reply', 404, 'Not Found'), -1);
    assert.equal(await m.call(ctxOf(invite()), 't_check_status', '404'), -1);
  });

  it('t_check_status in onreply_route tests the reply code', async () => {
    const m = await load<TmState>(tm, core().c);
    const r = ctxOf(reply(), 'onreply');
    assert.equal(await m.call(r, 't_check_status', '48[0-9]'), 1);
    assert.equal(await m.call(r, 't_check_status', '^2'), -1);
  });

  it('a bad regex is a load-time error', async () => {
    const m = await load<TmState>(tm, core().c);
    assert.throws(() => m.fixup('t_check_status', '(4'), FixupError);
  });

  it('statistics have the keys serctl monitor reads', async () => {
    const k = core();
    await load<TmState>(tm, k.c);
    const s = k.stats.get('tm')!();
    assert.deepEqual(Object.keys(s).sort(), [
      'completed_2xx',
      'completed_3xx',
      'completed_4xx',
      'completed_5xx',
      'completed_6xx',
      'current',
      'local',
      'refused',
      'replied_localy',
      'total',
      'waiting',
    ]);
    const text = renderMonitor(1, { server: 'x', stats: { tm: s } });
    assert.match(text, /Current: 0 \(0 waiting\) Total: 0 \(0 local\)/);
  });

  it('t_stats answers like SER with structured data', async () => {
    const k = core();
    const m = await load<TmState>(tm, k.c);
    const r = await tm.mgmt!.t_stats.run(m.state, []);
    assert.equal(r.code, 200);
    assert.match(
      r.body ?? '',
      /^Current: 0 \(0 waiting\) Total: 0 \(0 local\)\nReplied localy: 0\nCompletion status 6xx: 0/,
    );
    assert.equal((r.data as Record<string, number>).total, 0);
  });

  it('t_hash reports the table occupation', async () => {
    const m = await load<TmState>(tm, core().c);
    const r = await tm.mgmt!.t_hash.run(m.state, []);
    assert.equal(r.code, 200);
    assert.match(r.body ?? '', /^server transactions: 0\nclient transactions: 0\n/);
  });
});
