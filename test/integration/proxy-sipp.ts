/** Runs SIPp against a running ser for the proxy tests: UAS in the background, UAC to completion. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, request, UdpPeer } from './harness.js';

export const SCEN = fileURLToPath(new URL('../../../test/integration/sipp/', import.meta.url));
export const haveSipp = existsSync('/usr/bin/sipp');

export interface SippRun {
  /** exit code (0: every call succeeded), null when killed at the deadline */
  code: number | null;
  out: string;
  /** the last line of the -trace_stat file, by column name */
  stat(col: string): number;
  /** the -trace_err file (unexpected messages), '' when none */
  errors(): string;
}

export interface Sipp {
  proc: ChildProcess;
  done: Promise<SippRun>;
  kill(): void;
}

/**
 * Start sipp with a scenario of test/integration/sipp/; `args` are sipp's own options.
 * It is killed after `ms` whatever happens, so a test never hangs on it.
 */
export function sipp(scenario: string, args: string[], ms = 30_000): Sipp {
  const dir = mkdtempSync(join(tmpdir(), 'sipp-'));
  const proc = spawn(
    'sipp',
    [
      '-sf',
      join(SCEN, scenario),
      ...args,
      '-nostdin',
      '-trace_stat',
      '-stf',
      join(dir, 'stat.csv'),
      '-fd',
      '1',
      '-trace_err',
      '-error_file',
      join(dir, 'err.log'),
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    if (out.length < 200_000) out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    if (out.length < 200_000) out += d.toString();
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
  const done = new Promise<SippRun>((res) => {
    proc.on('exit', (code) => {
      clearTimeout(timer);
      res({
        code,
        out,
        stat(col: string) {
          const f = join(dir, 'stat.csv');
          if (!existsSync(f)) return Number.NaN;
          const rows = readFileSync(f, 'utf8').trim().split('\n');
          const head = rows[0].split(';');
          const last = rows[rows.length - 1].split(';');
          return Number(last[head.indexOf(col)]);
        },
        errors() {
          const f = join(dir, 'err.log');
          return existsSync(f) ? readFileSync(f, 'utf8') : '';
        },
      });
    });
  });
  return {
    proc,
    done,
    kill() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

/** sipp as UAS on 127.0.0.1:port, answering `calls` calls */
export function sippUas(
  scenario: string,
  port: number,
  calls: number,
  extra: string[] = [],
  ms?: number,
): Sipp {
  return sipp(scenario, ['-i', '127.0.0.1', '-p', String(port), '-m', String(calls), ...extra], ms);
}

/**
 * sipp as UAC toward ser at 127.0.0.1:serPort calling `service`, from a free port (sipp's
 * `-p 0` means 5060, which parallel test files would share)
 */
export async function sippUac(
  scenario: string,
  serPort: number,
  service: string,
  calls: number,
  extra: string[] = [],
  ms?: number,
): Promise<Sipp> {
  const port = await freePort();
  return sipp(
    scenario,
    [
      `127.0.0.1:${serPort}`,
      '-s',
      service,
      '-i',
      '127.0.0.1',
      '-p',
      String(port),
      '-m',
      String(calls),
      '-timeout',
      '25s',
      '-timeout_error',
      ...extra,
    ],
    ms,
  );
}

/** a failed run's story for the assertion message */
export function explain(name: string, r: SippRun): string {
  return `${name} exit ${r.code}\n${r.out.slice(-3000)}\n${r.errors().slice(-3000)}`;
}

/** REGISTER `user` at ser with a Contact on 127.0.0.1:contactPort; resolves with the reply status */
export async function registerContact(serPort: number, user: string, contactPort: number): Promise<number> {
  const ua = await UdpPeer.open();
  try {
    ua.send(
      request('REGISTER', `sip:127.0.0.1:${serPort}`, { ip: '127.0.0.1', port: ua.port }, [
        `To: <sip:${user}@127.0.0.1>`,
        `From: <sip:${user}@127.0.0.1>;tag=reg${contactPort}`,
        `Contact: <sip:${user}@127.0.0.1:${contactPort}>;expires=600`,
      ]),
      serPort,
    );
    return (await ua.nextMsg(3000)).status;
  } finally {
    ua.close();
  }
}
