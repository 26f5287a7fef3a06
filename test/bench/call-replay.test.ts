import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const script = join(here, '..', '..', 'bench', 'call-replay.js');
const shared = join(here, '..', '..', '..', '..', 'shared', 'bench', 'ser-cfg', 'ser-default.cfg');

// the replay checks every message the server sends (method or status, and the peer it goes
// to) and throws on the first surprise: a short run keeps the bench honest as the code moves
test('call-replay: the bench call flow runs through the server in process', {
  skip: !existsSync(shared),
}, () => {
  const r = spawnSync(process.execPath, ['--max-semi-space-size=4', script, '300', '200', '50'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, PORT: '5297' },
  });
  assert.equal(r.status, 0, r.stderr);
  const m =
    /^300 calls at a simulated 200 cps: ([\d.]+) CPU-s per 1,000 calls .* tm transactions (\d+)$/m.exec(
      r.stdout,
    );
  assert.ok(m, r.stdout);
  assert.ok(Number(m[1]) > 0);
  // 300 calls at 200 cps last 1.5 s of simulated time: with wt_timer at 5 s every INVITE and
  // BYE transaction of the 350 calls is still waiting
  assert.equal(Number(m[2]), 700);
});
