/** Runs dnsmasq as a child process on a free loopback port, for DNS tests. */
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { promises as dnsp } from 'node:dns';
import { existsSync } from 'node:fs';
import { delay } from './helpers.js';

export const DNSMASQ = '/usr/sbin/dnsmasq';

export function dnsmasqAvailable(): boolean {
  return existsSync(DNSMASQ);
}

export interface Dnsmasq {
  port: number;
  server: string;
  stop: () => Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Starts dnsmasq answering only from the given records (`--srv-host=…` etc.), all names
 * under `.test` being local (NXDOMAIN for unknown ones). `probe` is an A name that exists,
 * used to wait until it answers.
 */
export async function startDnsmasq(records: string[], probe: string): Promise<Dnsmasq> {
  let lastErr = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort();
    const child: ChildProcess = spawn(
      DNSMASQ,
      [
        '--no-daemon',
        '--keep-in-foreground',
        `--port=${port}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        '--no-resolv',
        '--no-hosts',
        '--conf-file=/dev/null',
        '--pid-file=',
        '--log-facility=-',
        '--local=/test/',
        '--local-ttl=60',
        ...records,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += String(d);
    });
    let exited = false;
    child.on('exit', () => {
      exited = true;
    });
    const stop = async () => {
      if (exited) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([gone, delay(2000)]);
      if (!exited) child.kill('SIGKILL');
    };
    const r = new dnsp.Resolver({ timeout: 200, tries: 1 });
    r.setServers([`127.0.0.1:${port}`]);
    for (let i = 0; i < 25 && !exited; i++) {
      try {
        await r.resolve4(probe);
        return { port, server: `127.0.0.1:${port}`, stop };
      } catch {
        await delay(50);
      }
    }
    lastErr = stderr;
    await stop();
  }
  throw new Error(`dnsmasq did not start: ${lastErr}`);
}
