/** SIPp as the peer: the redirect server of seed 003 Example 2-19 under a bounded load. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { haveSeeds, type Ser, seedScript, startSer } from './harness.js';

const SCEN = fileURLToPath(new URL('../../../test/integration/sipp/', import.meta.url));
const haveSipp = existsSync('/usr/bin/sipp');

describe('redirect server under SIPp (seed 003 Example 2-19)', {
  skip: (!haveSeeds || !haveSipp) && 'seeds or sipp missing',
}, () => {
  let ser: Ser;
  before(async () => {
    ser = await startSer(seedScript('003-ex2-19-redirect.cfg'));
  });
  after(async () => {
    await ser.stop();
  });

  it('200 INVITEs at 100/s all get 300 with both Contacts; the ACKs are absorbed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sipp-'));
    const r = spawnSync(
      'sipp',
      [
        `127.0.0.1:${ser.port}`,
        '-sf',
        join(SCEN, 'redirect-uac.xml'),
        '-s',
        'anyone',
        '-i',
        '127.0.0.1',
        '-p',
        '0',
        '-m',
        '200',
        '-r',
        '100',
        '-timeout',
        '20s',
        '-timeout_error',
        '-trace_stat',
        '-stf',
        join(dir, 'stat.csv'),
        '-nostdin',
      ],
      { encoding: 'utf8', timeout: 30_000, cwd: dir },
    );
    assert.equal(r.status, 0, `sipp failed:\n${r.stdout}\n${r.stderr}`);
    const stat = readFileSync(join(dir, 'stat.csv'), 'utf8').trim().split('\n');
    const head = stat[0].split(';');
    const last = stat[stat.length - 1].split(';');
    const col = (n: string) => Number(last[head.indexOf(n)]);
    assert.equal(col('SuccessfulCall(C)'), 200);
    assert.equal(col('FailedCall(C)'), 0);
  });
});
