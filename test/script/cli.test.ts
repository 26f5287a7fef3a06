import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CliError, parseSerArgs } from '../../src/cli/ser.js';

const ser = fileURLToPath(new URL('../../src/cli/ser.js', import.meta.url));
const runSer = (...args: string[]) => spawnSync(process.execPath, [ser, ...args], { encoding: 'utf8' });

describe('ser command line', () => {
  it('parses flags, repeated -d, combined flags and values', () => {
    const a = parseSerArgs([
      '-f',
      'x.cfg',
      '-dddd',
      '-d',
      '-DE',
      '-c',
      '-n4',
      '-P',
      '/run/ser.pid',
      '-u',
      'ser',
      '-g',
      'ser',
      '-w',
      '/tmp',
      '-t',
      '/jail',
      '-b',
      '262144',
      '-m',
      '32',
      '-i',
      '/tmp/ser_fifo',
      '-r',
      '-R',
      '-v',
    ]);
    assert.equal(a.configFile, 'x.cfg');
    assert.equal(a.debug, 5);
    assert.ok(a.foreground && a.logStderr && a.check && a.dns && a.revDns && a.checkVia);
    assert.deepEqual(
      [a.children, a.pidFile, a.user, a.group, a.workdir, a.chroot, a.maxBuffer, a.sharedMemory, a.fifo],
      [4, '/run/ser.pid', 'ser', 'ser', '/tmp', '/jail', 262144, 32, '/tmp/ser_fifo'],
    );
  });
  it('-p applies to the last -l and to the following ones (003 §6.3 example)', () => {
    const a = parseSerArgs(['-l', 'foo', '-l', 'bar', '-p', '5061', '-l', 'x', '-l', 'y']);
    assert.deepEqual(
      a.listen.map((l) => `${l.host}:${l.port ?? 5060}`),
      ['foo:5060', 'bar:5061', 'x:5061', 'y:5061'],
    );
    const b = parseSerArgs(['-l', 'udp:1.2.3.4:5070', '-p', '5080', '-l', '[::1]']);
    assert.deepEqual(
      b.listen.map((l) => [l.proto, l.host, l.port]),
      [
        ['udp', '1.2.3.4', 5070],
        [undefined, '::1', 5080],
      ],
    );
  });
  it('rejects unknown options and missing values', () => {
    assert.throws(() => parseSerArgs(['-z']), CliError);
    assert.throws(() => parseSerArgs(['-f']), /requires an argument/);
    assert.throws(() => parseSerArgs(['-p', 'abc']), /expects a number/);
  });
  it('-V prints the version, -h the usage', () => {
    assert.match(runSer('-V').stdout, /^version: sip-express-router /);
    const h = runSer('-h');
    assert.equal(h.status, 0);
    assert.match(h.stdout, /-c {11}Check configuration file/);
  });
  it('the first line starts node with the semi-space cap, and works as an interpreter line', () => {
    const first = readFileSync(ser, 'utf8').split('\n', 1)[0];
    const m = /^#!(\S+) (.*)$/.exec(first);
    assert.ok(m, first);
    assert.match(m[2], /^-S node .*--max-semi-space-size=(\d+)/);
    assert.ok(Number(/--max-semi-space-size=(\d+)/.exec(m[2])?.[1]) <= 4);
    // as the kernel runs it: the interpreter, the rest of the line as one argument, the script
    const r = spawnSync(m[1], [m[2], ser, '-V'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^version: sip-express-router /);
  });
  it('ser -c exits 0 on a good config and 1 with every error on a bad one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ser-cli-'));
    writeFileSync(join(dir, 'ok.cfg'), 'debug=3\nroute { break; }\n');
    writeFileSync(join(dir, 'bad.cfg'), 'debugg=3\nloadmodule "nosuch.so"\nroute { route(4); }\n');
    const ok = runSer('-c', '-f', join(dir, 'ok.cfg'));
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /config file ok/);
    const bad = runSer('-c', '-f', join(dir, 'bad.cfg'));
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /bad\.cfg:1:1: unknown option 'debugg'; did you mean 'debug'\?/);
    assert.match(bad.stderr, /bad\.cfg:2:1: module 'nosuch' is not available in this build/);
    assert.match(bad.stderr, /bad\.cfg:3:9: route\(4\): there is no block route\[4\]/);
    assert.match(bad.stderr, /3 errors in /);
  });
  it('without -c a broken config stops the start-up with exit 1 and every error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ser-cli-'));
    writeFileSync(join(dir, 'bad.cfg'), 'fork=no\nlisten=udp:127.0.0.1:0\nroute { nosuchfn(); }\n');
    const r = runSer('-f', join(dir, 'bad.cfg'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.cfg:3:9: unknown function 'nosuchfn'/);
  });
});
