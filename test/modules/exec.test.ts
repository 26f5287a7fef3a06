import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import exec, { hfVarName, shellQuote } from '../../src/modules/exec/index.js';
import { ctxOf, fakeCore, invite, load } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ser-exec-'));
after(() => rmSync(dir, { recursive: true, force: true }));

process.env.SIP_HF_STALE = 'from-the-server-environment';
process.env.SER_EXEC_TEST_MARK = 'inherited';
const { core, sink } = fakeCore();
const m = await load(exec, core);

function envOf(file: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of readFileSync(file, 'latin1').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return env;
}

describe('exec_msg', () => {
  it('passes the request on stdin and the SIP_* environment (seed 003 §4.1)', async () => {
    const out = join(dir, 'env.txt');
    const msgFile = join(dir, 'msg.txt');
    const ctx = ctxOf(invite(['X-Dup: 1', 'x-dup: 2', 'v: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-2']));
    ctx.ruri = 'sip:bob@example.net';
    assert.equal(await m.call(ctx, 'exec_msg', `env > ${out}; cat > ${msgFile}`), 1);
    const env = envOf(out);
    assert.equal(env.get('SIP_HF_FROM'), '"alice" <sip:alice@iptel.org>;tag=76ff7a07');
    assert.equal(env.get('SIP_HF_CALLID'), 'd10815e0@213.20.128.35');
    assert.equal(env.get('SIP_HF_MAX_FORWARDS'), '10');
    assert.equal(env.get('SIP_HF_CSEQ'), '2 INVITE');
    assert.equal(env.get('SIP_HF_CONTENT_TYPE'), 'application/sdp');
    assert.equal(env.get('SIP_HF_X_DUP'), '1,2', 'several occurrences are joined with a comma');
    assert.equal(
      env.get('SIP_HF_VIA'),
      'SIP/2.0/UDP 195.37.77.100:5040;branch=z9hG4bK-1,SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-2',
      'the compact form counts as the long one',
    );
    assert.equal(env.get('SIP_RURI'), 'sip:bob@example.net');
    assert.equal(env.get('SIP_ORURI'), 'sip:jiri@iptel.org');
    assert.equal(env.get('SIP_USER'), 'bob');
    assert.equal(env.get('SIP_OUSER'), 'jiri');
    assert.equal(env.get('URI_USER'), 'bob');
    assert.equal(env.get('SIP_SRCIP'), '195.37.77.100');
    assert.equal(env.get('SRCIP'), '195.37.77.100');
    assert.equal(env.get('SIP_DID'), '', 'no To tag: empty');
    assert.match(env.get('SIP_TID') ?? '', /^[0-9a-f]{32}$/);
    assert.equal(env.get('SER_EXEC_TEST_MARK'), 'inherited', "the server's environment is passed on");
    assert.equal(env.has('SIP_HF_STALE'), false, 'no SIP_* leaks from the server environment');
    assert.equal(readFileSync(msgFile, 'latin1'), ctx.msg.toString());
    assert.equal(ctx.msg.modified, false, 'the message is not changed');
  });
  it('SIP_TID is the same for a retransmission and differs for another transaction', async () => {
    const tid = async (buf: Buffer) => {
      const f = join(dir, 'tid.txt');
      await m.call(ctxOf(buf), 'exec_msg', `printf %s "$SIP_TID" > ${f}`);
      return readFileSync(f, 'latin1');
    };
    const a = await tid(invite());
    assert.equal(await tid(invite()), a);
    assert.notEqual(
      await tid(Buffer.from(invite().toString('latin1').replace('z9hG4bK-1', 'z9hG4bK-9'), 'latin1')),
      a,
    );
  });
  it('SIP_DID holds the To tag of an in-dialog request', async () => {
    const f = join(dir, 'did.txt');
    const buf = Buffer.from(
      invite().toString('latin1').replace('To: <sip:jiri@iptel.org>', 'To: <sip:jiri@iptel.org>;tag=abc'),
      'latin1',
    );
    await m.call(ctxOf(buf), 'exec_msg', `printf %s "$SIP_DID" > ${f}`);
    assert.equal(readFileSync(f, 'latin1'), 'abc');
  });
  it('returns -1 on a non-zero exit status, 1 on zero', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'exec_msg', 'exit 3'), -1);
    assert.equal(await m.call(ctx, 'exec_msg', 'true'), 1);
    assert.equal(await m.call(ctx, 'exec_msg', '/nonexistent/command'), -1);
  });
  it('a command that does not read stdin is fine', async () => {
    const ctx = ctxOf(invite([], 'sip:jiri@iptel.org', 'x'.repeat(60000)));
    assert.equal(await m.call(ctx, 'exec_msg', 'exit 0'), 1);
  });
  it('header values are never part of the command line', async () => {
    const marker = join(dir, 'pwned-hf');
    const ctx = ctxOf(invite([`X-Evil: $(touch ${marker}); \`touch ${marker}\``]));
    assert.equal(await m.call(ctx, 'exec_msg', 'echo "$SIP_HF_X_EVIL" > /dev/null'), 1);
    assert.equal(existsSync(marker), false);
  });
  it('stderr of the command is logged', async () => {
    sink.lines.length = 0;
    await m.call(ctxOf(invite()), 'exec_msg', 'echo oops >&2');
    assert.match(sink.lines.join(''), /wrote to stderr: oops/);
  });
  it('is allowed in request and failure routes only', async () => {
    await assert.rejects(m.call(ctxOf(invite(), 'onreply'), 'exec_msg', 'true'), /not allowed/);
    assert.equal(await m.call(ctxOf(invite(), 'failure'), 'exec_msg', 'true'), 1);
  });
});

describe('exec_dset', () => {
  it('the seed example: first line rewrites the R-URI, the rest become branches', async () => {
    const ctx = ctxOf(invite());
    ctx.branches = [{ uri: 'sip:old@x', q: -1 }];
    const r = await m.call(ctx, 'exec_dset', 'echo sip:mra@iptel.org;echo sip:mrb@iptel.org;echo>/dev/null');
    assert.equal(r, 1);
    assert.equal(ctx.ruri, 'sip:mra@iptel.org');
    assert.deepEqual(
      ctx.branches.map((b) => b.uri),
      ['sip:mrb@iptel.org'],
      'the destination set is replaced',
    );
  });
  it('the current R-URI is the last argument', async () => {
    const ctx = ctxOf(invite());
    ctx.ruri = 'sip:2234@foo.bar';
    assert.equal(
      await m.call(ctx, 'exec_dset', 'f() { echo "$1" | sed s/2234/99/; echo; echo "  sip:x@y  "; }; f'),
      1,
    );
    assert.equal(ctx.ruri, 'sip:99@foo.bar');
    assert.deepEqual(ctx.branches, [{ uri: 'sip:x@y', q: -1 }], 'blank lines skipped, lines trimmed');
  });
  it('a hostile Request-URI is one inert word', async () => {
    const marker = join(dir, 'pwned');
    const evil = `sip:a';touch\${IFS}${marker};'$(touch\${IFS}${marker})\`id\`"@example.com`;
    const ctx = ctxOf(invite([], evil));
    assert.equal(ctx.ruri, evil);
    const argFile = join(dir, 'arg.txt');
    assert.equal(await m.call(ctx, 'exec_dset', `f() { printf '%s' "$1" > ${argFile}; echo "$#"; }; f`), -1);
    assert.equal(existsSync(marker), false, 'nothing was executed');
    assert.equal(readFileSync(argFile, 'latin1'), evil, 'the URI arrived verbatim as one argument');
  });
  it('shellQuote round-trips through /bin/sh', async () => {
    const f = join(dir, 'q.txt');
    const s = `it's "q" $HOME \`x\` \\ ;|&`;
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'exec_msg', `printf '%s' ${shellQuote(s)} > ${f}`), 1);
    assert.equal(readFileSync(f, 'latin1'), s);
  });
  it('-1 on a non-zero exit, no output, or a line that is not a URI; nothing changes', async () => {
    for (const cmd of ['echo sip:a@b; exit 1', 'true', 'echo not a uri', 'echo sip:ok@x; echo "<bad>"']) {
      const ctx = ctxOf(invite());
      ctx.branches = [{ uri: 'sip:keep@x', q: -1 }];
      assert.equal(await m.call(ctx, 'exec_dset', `${cmd};:`), -1, cmd);
      assert.equal(ctx.ruri, 'sip:jiri@iptel.org', cmd);
      assert.deepEqual(ctx.branches, [{ uri: 'sip:keep@x', q: -1 }], cmd);
    }
  });
  it('keeps at most 12 URIs', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'exec_dset', 'for i in $(seq 1 20); do echo sip:u$i@h; done;:'), 1);
    assert.equal(ctx.ruri, 'sip:u1@h');
    assert.equal(ctx.branches.length, 11);
  });
});

describe('exec limits', () => {
  it('time_to_kill kills the whole process group', async () => {
    const { core: c2 } = fakeCore();
    const m2 = await load(exec, c2, { time_to_kill: 1 });
    const t0 = Date.now();
    // the background sleep keeps stderr open: only a group kill lets this finish early
    assert.equal(await m2.call(ctxOf(invite()), 'exec_msg', 'sleep 30 & sleep 30; wait'), -1);
    assert.equal(await m2.call(ctxOf(invite()), 'exec_dset', 'sleep 30; echo sip:a@b;:'), -1);
    assert.ok(Date.now() - t0 < 6000, `took ${Date.now() - t0} ms`);
  });
  it('max_output stops a runaway command', async () => {
    const { core: c2 } = fakeCore();
    const m2 = await load(exec, c2, { max_output: 1000 });
    const t0 = Date.now();
    assert.equal(await m2.call(ctxOf(invite()), 'exec_dset', 'yes sip:a@b;:'), -1);
    assert.ok(Date.now() - t0 < 5000);
  });
  it('rejects a negative time_to_kill', async () => {
    await assert.rejects(load(exec, fakeCore().core, { time_to_kill: -1 }), /time_to_kill/);
  });
  it('variable names follow SER', () => {
    assert.equal(hfVarName('call-id'), 'SIP_HF_CALLID');
    assert.equal(hfVarName('max-forwards'), 'SIP_HF_MAX_FORWARDS');
    assert.equal(hfVarName('x.odd~name'), 'SIP_HF_X_ODD_NAME');
  });
});
