/**
 * exec: run external commands from the script (SER 0.9 exec module).
 *
 * exec_msg(cmd) runs `/bin/sh -c cmd` with the message on stdin; exec_dset(cmd) runs
 * `cmd '<current R-URI>'` and turns its output lines into the destination set. Both pass
 * the message in SIP_* environment variables. Values from the network travel only in the
 * environment and on stdin; the one exception, the Request-URI appended by exec_dset, is
 * single-quoted so the shell sees it as one inert word.
 *
 * The child runs in its own process group; on `time_to_kill` or when its output passes
 * `max_output` bytes the whole group gets SIGKILL and the function returns false.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { CoreApi } from '../../core/api.js';
import type { MsgContext } from '../../core/context.js';
import { L_ERR, L_WARN, type Logger } from '../../core/log.js';
import { defineModule, FixupError, type RouteKind } from '../../core/module.js';
import { str } from '../../script/args.js';
import { parseUri } from '../../sip/uri.js';
import { prettyName } from '../../sip/util.js';

/** SER's MAX_BRANCHES: the R-URI plus 11 more */
export const MAX_BRANCHES = 12;
const STDERR_CAP = 4096;
const ROUTES: readonly RouteKind[] = ['request', 'failure'];

interface State {
  log: Logger;
  /** milliseconds, 0 = no limit */
  timeToKill: number;
  maxOutput: number;
  /** the server's environment without SIP_* and the other names we set */
  baseEnv: Record<string, string>;
}

/** `'…'` quoting for /bin/sh: the value becomes exactly one word, nothing in it is expanded. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Environment variable for a header: SIP_HF_ + name upper-cased, `-` → `_` (Call-ID → CALLID). */
export function hfVarName(key: string): string {
  if (key === 'call-id') return 'SIP_HF_CALLID';
  return `SIP_HF_${prettyName(key)
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_')}`;
}

function uriUser(uri: string): string {
  try {
    return parseUri(uri).user ?? '';
  } catch {
    return '';
  }
}

/** NUL is refused by execve */
const NUL = /\0/g;

/**
 * SIP_TID: a token naming the transaction, the same for retransmissions: an MD5 over the
 * RFC 3261 branch and sent-by of the top Via, or (for RFC 2543 requests) over Call-ID,
 * CSeq number, From tag, Request-URI and the top Via.
 */
export function transactionId(ctx: MsgContext): string {
  const msg = ctx.msg;
  const h = createHash('md5');
  let via = '';
  try {
    const v = msg.topVia;
    if (v !== undefined) {
      const branch = v.branch ?? '';
      if (branch.startsWith('z9hG4bK')) {
        const m = msg.method === 'ACK' || msg.method === 'CANCEL' ? msg.method : '';
        return h.update(`${branch}\n${v.host}:${v.port ?? ''}\n${m}`, 'latin1').digest('hex');
      }
      via = `${v.host}:${v.port ?? ''};${branch}`;
    }
  } catch {
    // fall through with what we have
  }
  let ftag = '';
  try {
    ftag = msg.from.tag ?? '';
  } catch {}
  let seq = '';
  try {
    seq = String(msg.cseq.seq);
  } catch {}
  return h.update(`${msg.callId}\n${seq}\n${ftag}\n${msg.ruri}\n${via}`, 'latin1').digest('hex');
}

/** The SIP_* variables SER set for a message (seed 003 §4.1). */
export function sipEnvironment(ctx: MsgContext): Record<string, string> {
  const msg = ctx.msg;
  const env: Record<string, string> = {};
  for (const f of msg.headerFields()) {
    const name = hfVarName(f.key);
    const prev = env[name];
    env[name] = prev === undefined ? f.value : `${prev},${f.value}`;
  }
  let did = '';
  try {
    did = msg.to.tag ?? '';
  } catch {}
  const ruri = msg.isRequest ? ctx.ruri : '';
  const oruri = msg.isRequest ? msg.ruri : '';
  env.SIP_TID = transactionId(ctx);
  env.SIP_DID = did;
  env.SIP_SRCIP = ctx.src.ip;
  env.SRCIP = ctx.src.ip;
  env.SIP_RURI = ruri;
  env.SIP_ORURI = oruri;
  env.SIP_USER = uriUser(ruri);
  env.SIP_OUSER = uriUser(oruri);
  env.URI_USER = env.SIP_USER;
  for (const k of Object.keys(env)) if (env[k]!.includes('\0')) env[k] = env[k]!.replace(NUL, '');
  return env;
}

const OWN_NAMES = new Set(['SRCIP', 'URI_USER']);
function baseEnvironment(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('SIP_') || OWN_NAMES.has(k)) continue;
    out[k] = v;
  }
  return out;
}

export interface RunResult {
  /** exit status, or undefined when killed / failed to start */
  code: number | undefined;
  stdout: string;
  /** why it did not finish normally */
  failure?: 'timeout' | 'output' | 'spawn';
}

/** Runs `/bin/sh -c cmd` in its own process group. */
export function runShell(
  st: State,
  cmd: string,
  env: Record<string, string>,
  stdin: Buffer | undefined,
  wantStdout: boolean,
): Promise<RunResult> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn('/bin/sh', ['-c', cmd], {
        env: { ...st.baseEnv, ...env },
        detached: true,
        stdio: [stdin === undefined ? 'ignore' : 'pipe', wantStdout ? 'pipe' : 'ignore', 'pipe'],
      });
    } catch (e) {
      st.log.err(`exec: cannot start "${cmd}": ${(e as Error).message}\n`);
      resolve({ code: undefined, stdout: '', failure: 'spawn' });
      return;
    }
    const out: Buffer[] = [];
    let outLen = 0;
    let errText = '';
    let failure: RunResult['failure'];
    let timer: NodeJS.Timeout | undefined;
    const killGroup = (why: 'timeout' | 'output') => {
      failure ??= why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    if (st.timeToKill > 0) timer = setTimeout(() => killGroup('timeout'), st.timeToKill);
    child.stdout?.on('data', (b: Buffer) => {
      outLen += b.length;
      if (outLen > st.maxOutput) killGroup('output');
      else out.push(b);
    });
    child.stderr?.on('data', (b: Buffer) => {
      if (errText.length < STDERR_CAP)
        errText += b.toString('utf8', 0, Math.min(b.length, STDERR_CAP - errText.length));
    });
    child.stdin?.on('error', () => {
      // the command did not read all of its input (EPIPE): not an error of ours
    });
    let started = true;
    child.on('error', (e) => {
      started = false;
      st.log.err(`exec: cannot start "${cmd}": ${e.message}\n`);
    });
    child.on('close', (code) => {
      if (timer !== undefined) clearTimeout(timer);
      if (errText !== '')
        st.log.log(L_WARN, `WARNING: exec: "${cmd}" wrote to stderr: ${errText.trimEnd()}\n`);
      if (failure === 'timeout')
        st.log.log(L_ERR, `ERROR: exec: "${cmd}" killed after ${st.timeToKill} ms\n`);
      if (failure === 'output')
        st.log.log(L_ERR, `ERROR: exec: "${cmd}" killed: more than ${st.maxOutput} bytes of output\n`);
      resolve({
        code: failure === undefined && started ? (code ?? undefined) : undefined,
        stdout: Buffer.concat(out).toString('latin1'),
        failure: failure ?? (started ? undefined : 'spawn'),
      });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

/** Output of exec_dset as URIs: non-empty lines, trimmed; undefined when a line is not a URI. */
export function outputUris(out: string): { uris: string[]; bad?: string } {
  const uris: string[] = [];
  for (const raw of out.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (/\s/.test(line)) return { uris, bad: line };
    try {
      parseUri(line);
    } catch {
      return { uris, bad: line };
    }
    uris.push(line);
  }
  return { uris };
}

export default defineModule<State>({
  name: 'exec',
  params: {
    time_to_kill: {
      type: 'int',
      default: 10,
      validate(v) {
        if (typeof v !== 'number' || v < 0)
          throw new FixupError('time_to_kill must be a number of seconds, 0 for no limit');
      },
    },
    max_output: {
      type: 'int',
      default: 65536,
      validate(v) {
        if (typeof v !== 'number' || v < 1)
          throw new FixupError('max_output must be a positive number of bytes');
      },
    },
  },
  init(core: CoreApi, params): State {
    return {
      log: core.log,
      timeToKill: Number(params.time_to_kill ?? 10) * 1000,
      maxOutput: Number(params.max_output ?? 65536),
      baseEnv: baseEnvironment(),
    };
  },
  functions: {
    exec_msg: {
      signatures: [[str('command', { nonEmpty: true })]],
      routes: ROUTES,
      async: true,
      async run(ctx, st, cmd: string) {
        const r = await runShell(st, cmd, sipEnvironment(ctx), ctx.msg.serialize(), false);
        return r.code === 0 ? 1 : -1;
      },
    },
    exec_dset: {
      signatures: [[str('command', { nonEmpty: true })]],
      routes: ROUTES,
      async: true,
      async run(ctx, st, cmd: string) {
        if (!ctx.msg.isRequest) return -1;
        const r = await runShell(st, `${cmd} ${shellQuote(ctx.ruri)}`, sipEnvironment(ctx), undefined, true);
        if (r.code !== 0) {
          if (r.code !== undefined)
            st.log.log(L_WARN, `WARNING: exec_dset: "${cmd}" exited with status ${r.code}\n`);
          return -1;
        }
        const { uris, bad } = outputUris(r.stdout);
        if (bad !== undefined) {
          st.log.err(
            `exec_dset: "${cmd}" printed a line that is not a URI: ${JSON.stringify(bad.slice(0, 200))}\n`,
          );
          return -1;
        }
        if (uris.length === 0) {
          st.log.err(`exec_dset: no URI from "${cmd}"\n`);
          return -1;
        }
        if (uris.length > MAX_BRANCHES) {
          st.log.warn(
            `exec_dset: "${cmd}" printed ${uris.length} URIs; only the first ${MAX_BRANCHES} are used\n`,
          );
          uris.length = MAX_BRANCHES;
        }
        ctx.ruri = uris[0]!;
        ctx.branches = uris.slice(1).map((uri) => ({ uri, q: -1 }));
        return 1;
      },
    },
  },
});
