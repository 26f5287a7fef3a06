/**
 * Seed 003 Example 4-10 as an operator runs it: the shell script itself writes the
 * t_uac_dlg request into ser's FIFO (reply FIFO "hh", which nobody reads), and a SIPp UAS
 * receives the NOTIFY, checking the script's header fields and body (issue 8's evidence).
 * Only the FIFO path and the receiver's port differ from the seed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort, type Ser, startSer } from './harness.js';

const SCEN = fileURLToPath(new URL('../../../test/integration/sipp/', import.meta.url));
const SERCTL = fileURLToPath(new URL('../../src/cli/serctl.js', import.meta.url));
const haveSipp = existsSync('/usr/bin/sipp');

/** Example 4-10's script, with the FIFO path and the receiver's port substituted. */
function script(fifo: string, receiver: string): string {
  return [
    '#!/bin/sh',
    `cat > ${fifo} <<EOF`,
    ':t_uac_dlg:hh',
    'NOTIFY',
    receiver,
    '.',
    'From: sip:originator@foo.bar',
    `To: ${receiver}`,
    'foo: bar_special_header',
    'x: y',
    'p_header: p_value',
    'Contact: <sip:devnull@192.168.0.100:9>',
    '',
    'Content-Type: text/plain; charset=UTF-8',
    '.',
    'Hello world!!!! $@',
    '.',
    'EOF',
    '',
  ].join('\n');
}

describe('seed 003 Example 4-10: NOTIFY from a shell script to a SIPp UAS', {
  skip: !haveSipp && 'sipp missing',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ser-ex410-'));
  const fifo = join(dir, 'ser_fifo');
  let ser: Ser;
  before(async () => {
    ser = await startSer(`fifo="${fifo}"\nloadmodule "sl.so"\nloadmodule "tm.so"\nroute { t_relay(); }\n`);
  });
  after(async () => {
    await ser.stop();
  });

  it('the UAS receives the NOTIFY with the given headers and body; the FIFO keeps answering', async () => {
    const uasPort = await freePort();
    const uas = spawn(
      'sipp',
      ['-sf', join(SCEN, 'notify-uas.xml'), '-i', '127.0.0.1', '-p', String(uasPort), '-m', '1', '-nostdin'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    uas.stdout?.on('data', (d) => {
      out += d;
    });
    uas.stderr?.on('data', (d) => {
      out += d;
    });
    const done = new Promise<number | null>((res) => uas.on('exit', (c) => res(c)));
    const killer = setTimeout(() => uas.kill('SIGKILL'), 20000);
    try {
      await new Promise((r) => setTimeout(r, 500)); // SIPp binds its port
      const file = join(dir, 'send_im.sh');
      writeFileSync(file, script(fifo, `sip:receiver@127.0.0.1:${uasPort}`), { mode: 0o755 });
      const sh = spawnSync('sh', [file, 'from', 'the', 'seed'], { timeout: 10000 });
      assert.equal(sh.status, 0, String(sh.stderr));
      const code = await done;
      assert.equal(code, 0, `sipp UAS failed:\n${out}`);
    } finally {
      clearTimeout(killer);
      uas.kill();
    }
    // the unread reply FIFO "hh" did not block the FIFO server: another command is answered
    const up = spawnSync(process.execPath, [SERCTL, 'fifo', 'uptime'], {
      env: { ...process.env, SER_FIFO: fifo },
      timeout: 10000,
    });
    assert.equal(up.status, 0, String(up.stderr));
    assert.match(String(up.stdout), /Up since/i);
  });
});
