/** Digest authentication with real UAs: SIPp's [authentication] and sipsak -a. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AUTH_CFG, makeSubscribers } from './auth-helpers.test.js';
import { type Ser, startSer } from './harness.js';

const SCEN = fileURLToPath(new URL('../../../test/integration/sipp/', import.meta.url));
const haveSipp = existsSync('/usr/bin/sipp');
const haveSipsak = existsSync('/usr/bin/sipsak');

/** runs a scenario; returns SIPp's exit status and the successful/failed call counts */
function sipp(port: number, scenario: string, args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-auth-'));
  const r = spawnSync(
    'sipp',
    [
      `127.0.0.1:${port}`,
      '-sf',
      join(SCEN, scenario),
      '-i',
      '127.0.0.1',
      '-p',
      '0',
      '-timeout',
      '20s',
      '-timeout_error',
      '-trace_stat',
      '-stf',
      join(dir, 'stat.csv'),
      '-nostdin',
      ...args,
    ],
    { timeout: 30000, encoding: 'utf8', cwd: dir },
  );
  const stat = existsSync(join(dir, 'stat.csv'))
    ? readFileSync(join(dir, 'stat.csv'), 'utf8').trim().split('\n')
    : [];
  const head = (stat[0] ?? '').split(';');
  const last = (stat.at(-1) ?? '').split(';');
  const col = (name: string) => Number(last[head.indexOf(name)]);
  return {
    status: r.status,
    ok: col('SuccessfulCall(C)'),
    failed: col('FailedCall(C)'),
    out: `${r.stdout}${r.stderr}`,
  };
}

describe('SIPp and sipsak against www_authorize (SQLite)', { skip: !haveSipp && 'sipp missing' }, () => {
  let ser: Ser;
  before(async () => {
    const url = `sqlite://${join(mkdtempSync(join(tmpdir(), 'ser-auth-')), 'ser.db')}`;
    await makeSubscribers(url, { alice: 'wonderland', joe: 'cool', sak: 'sakpw' });
    ser = await startSer(AUTH_CFG(url));
  });
  after(async () => {
    await ser.stop();
  });

  it('50 REGISTERs at 25/s: 401 → authenticated REGISTER → 200, every one', () => {
    const r = sipp(ser.port, 'auth-register.xml', [
      '-s',
      'alice',
      '-au',
      'alice',
      '-ap',
      'wonderland',
      '-m',
      '50',
      '-r',
      '25',
    ]);
    assert.equal(r.status, 0, r.out);
    assert.equal(r.ok, 50);
    assert.equal(r.failed, 0);
  });

  it('a wrong password gets 401 again, every time', () => {
    const r = sipp(ser.port, 'auth-register-rejected.xml', [
      '-s',
      'alice',
      '-au',
      'alice',
      '-ap',
      'nope',
      '-m',
      '10',
      '-r',
      '20',
    ]);
    assert.equal(r.status, 0, r.out);
    assert.equal(r.ok, 10);
  });

  it('check_to: joe with his own password cannot register alice (403)', () => {
    const r = sipp(ser.port, 'auth-register-forbidden.xml', [
      '-s',
      'alice',
      '-au',
      'joe',
      '-ap',
      'cool',
      '-m',
      '10',
      '-r',
      '20',
    ]);
    assert.equal(r.status, 0, r.out);
    assert.equal(r.ok, 10);
  });

  it('sipsak -U -a registers through the challenge; a wrong password does not', {
    skip: !haveSipsak && 'sipsak missing',
  }, () => {
    const ok = spawnSync(
      'sipsak',
      [
        '-U',
        '-vv',
        '-H',
        '127.0.0.1',
        '-x',
        '120',
        '-u',
        'sak',
        '-a',
        'sakpw',
        '-s',
        `sip:sak@127.0.0.1:${ser.port}`,
      ],
      {
        timeout: 15000,
        encoding: 'utf8',
      },
    );
    assert.equal(ok.status, 0, `${ok.stdout}\n${ok.stderr}`);
    assert.match(ok.stdout, /registering user sak.*OK/s);
    const bad = spawnSync(
      'sipsak',
      [
        '-U',
        '-vv',
        '-H',
        '127.0.0.1',
        '-x',
        '120',
        '-u',
        'sak',
        '-a',
        'wrong',
        '-s',
        `sip:sak@127.0.0.1:${ser.port}`,
      ],
      {
        timeout: 15000,
        encoding: 'utf8',
      },
    );
    assert.notEqual(bad.status, 0, bad.stdout);
  });
});
