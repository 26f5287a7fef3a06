/** The dispatcher on an in-process server: core commands, module commands, failures. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseSerArgs } from '../../src/cli/ser.js';
import { MemorySink } from '../../src/core/log.js';
import { defineModule } from '../../src/core/module.js';
import { type RunningServer, startServer } from '../../src/core/server.js';
import { modules } from '../../src/modules/index.js';
import { freePort } from '../integration/harness.js';

const probe = defineModule<{ n: number }>({
  name: 'mgmt_probe',
  init: (core) => {
    const st = { n: 0 };
    core.addStats('probe', () => ({ calls: st.n }));
    return st;
  },
  mgmt: {
    probe_count: {
      help: 'counts its calls',
      run(st, args) {
        st.n++;
        return { code: 200, reason: 'ok', body: `${st.n} ${args.join(',')}`, data: { n: st.n } };
      },
    },
    probe_throw: {
      help: 'throws',
      run() {
        throw new Error('boom');
      },
    },
    probe_async: {
      help: 'answers later',
      run: async () => {
        await new Promise((r) => setTimeout(r, 10));
        return { code: 202, reason: 'accepted' };
      },
    },
  },
});

describe('dispatcher', () => {
  let srv: RunningServer;
  before(async () => {
    modules.mgmt_probe = probe;
    const port = await freePort();
    srv = await startServer(parseSerArgs(['-f', 'mem.cfg', '-D']), {
      logSink: new MemorySink(),
      configText: `listen=udp:127.0.0.1:${port}\nfork=no\nloadmodule "sl.so"\nloadmodule "mgmt_probe.so"\nroute { drop; }\n`,
    });
  });
  after(async () => {
    await srv.stop();
    delete modules.mgmt_probe;
  });

  it('module commands appear in which, after the core set, in load order', async () => {
    const d = srv.mgmt!.dispatcher;
    const names = d.list().map((e) => e.name);
    assert.deepEqual(names.slice(0, 5), ['ps', 'which', 'version', 'uptime', 'print']);
    assert.ok(names.indexOf('sl_stats') < names.indexOf('probe_count'));
    const w = await d.run('which', []);
    assert.ok(w.body!.split('\n').includes('probe_throw'));
  });

  it('runs a module command with its state and parameters; its stats group is read', async () => {
    const d = srv.mgmt!.dispatcher;
    assert.equal((await d.run('probe_count', ['a', 'b'])).body, '1 a,b');
    assert.equal((await d.run('probe_count', [])).body, '2 ');
    const st = await d.run('get_statistics', ['probe']);
    assert.equal(st.body, 'probe:calls = 2');
    assert.equal((await d.run('get_statistics', ['nope'])).code, 404);
    assert.equal((await d.run('probe_async', [])).code, 202);
  });

  it("a throwing command is a 500 with its message; unknown is SER's 500 line", async () => {
    const d = srv.mgmt!.dispatcher;
    const r = await d.run('probe_throw', []);
    assert.equal(r.code, 500);
    assert.match(r.reason, /boom/);
    assert.deepEqual(await d.run('nope', []), { code: 500, reason: "command 'nope' not available" });
  });

  it('kill refuses in an embedded server without a SIGTERM handler; help; ps is pluggable', async () => {
    const d = srv.mgmt!.dispatcher;
    if (process.listenerCount('SIGTERM') === 0) assert.equal((await d.run('kill', [])).code, 500);
    assert.match(
      (await d.run('help', ['probe_count'])).body!,
      /probe_count \(mgmt_probe\): counts its calls/,
    );
    d.setProcessTable(() => [
      { no: 0, pid: 1, desc: 'attendant' },
      { no: 1, pid: 2, desc: 'receiver child=0 sock=0 @ 127.0.0.1::5060' },
    ]);
    assert.equal(
      (await d.run('ps', [])).body,
      '0 1 attendant\n1 2 receiver child=0 sock=0 @ 127.0.0.1::5060',
    );
  });
});
