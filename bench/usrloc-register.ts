/**
 * Registrations per second through registrar save() + usrloc, without the network:
 * each REGISTER is parsed, saved and answered (the 200 is built, then dropped).
 * db_mode 0 (memory), 1 (write-through) and 2 (write-back) on an SQLite file; then
 * lookups per second and the memory of 100,000 registered contacts.
 * Run: node --expose-gc dist/bench/usrloc-register.js [count]   (about 20 s)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreApi } from '../src/core/api.js';
import type { Endpoint } from '../src/core/context.js';
import { Logger, MemorySink } from '../src/core/log.js';
import { MessageContext } from '../src/core/msg-context.js';
import { ManualClock, TimerWheel } from '../src/core/timer.js';
import registrar, { lookup, type RegistrarState, save } from '../src/modules/registrar/index.js';
import usrloc, { type Usrloc } from '../src/modules/usrloc/index.js';
import { parseMessage } from '../src/sip/message.js';
import { buildReply } from '../src/sip/reply.js';

const SRC: Endpoint = { ip: '198.51.100.7', port: 5060, proto: 'udp', af: 4 };
const DST: Endpoint = { ip: '192.0.2.1', port: 5060, proto: 'udp', af: 4 };

function fakeCore(): CoreApi {
  const timers = new TimerWheel(new ManualClock(0));
  return {
    log: new Logger(1, new MemorySink()),
    clock: timers.clock,
    timers,
    addStats: () => {},
    buildReply: (
      ctx: MessageContext,
      code: number,
      reason: string,
      x?: { headers?: string[]; toTag?: string },
    ) => buildReply(ctx.msg, code, reason, { toTag: x?.toTag, headers: x?.headers }),
    sendToOrigin: () => true,
  } as unknown as CoreApi;
}

function registerText(i: number): Buffer {
  return Buffer.from(
    [
      'REGISTER sip:example.org SIP/2.0',
      `Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-reg${i};rport`,
      'Max-Forwards: 70',
      `From: <sip:user${i}@example.org>;tag=reg-${i}`,
      `To: <sip:user${i}@example.org>`,
      `Call-ID: reg-${i}-98765@198.51.100.7`,
      'CSeq: 20 REGISTER',
      `Contact: <sip:user${i}@198.51.${(i >> 8) & 255}.${i & 255}:5060;transport=udp>;expires=3600`,
      'User-Agent: test-phone/1.0',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
}

async function instance(params: Record<string, number | string>) {
  const core = fakeCore();
  const all = (def: typeof usrloc | typeof registrar, p: Record<string, number | string>) => {
    const out: Record<string, number | string> = {};
    for (const [k, s] of Object.entries(def.params ?? {})) if (s.default !== undefined) out[k] = s.default;
    return { ...out, ...p };
  };
  const ul = (await usrloc.init!(core, all(usrloc, params))) as Usrloc;
  const reg = (await registrar.init!(core, all(registrar, {}))) as RegistrarState;
  return { ul, reg };
}

async function run(label: string, n: number, params: Record<string, number | string>, concurrency = 1) {
  const { ul, reg } = await instance(params);
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const ctx = new MessageContext(parseMessage(registerText(i), { datagram: true }), SRC, DST, 'request');
      if ((await save(reg, ctx, 'location', true)) !== 1) throw new Error(`save ${i} failed`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - t0;
  console.log(
    `${label.padEnd(44)} ${String(Math.round((n / ms) * 1000)).padStart(8)} REGISTER/s  (${n} in ${ms.toFixed(0)} ms)`,
  );
  return { ul, reg };
}

const N = Number(process.argv[2] ?? 20000);
// the memory figure first, in a fresh process (the SQLite runs leave native memory behind)
const dir = mkdtempSync(join(tmpdir(), 'ser-bench-ul-'));
try {
  const sqlite = (name: string) => `sqlite://${join(dir, name)}`;
  // lookups and memory: 100,000 contacts in memory
  const M = 100_000;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  const { ul, reg } = await run('db_mode 0, 100,000 users', M, { db_mode: 0 });
  gc?.();
  const afterMem = process.memoryUsage();
  const ctxs = Array.from({ length: 20000 }, (_, i) => {
    const inv = Buffer.from(
      `INVITE sip:user${(i * 7) % M}@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK${i}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: ${i}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`,
    );
    return new MessageContext(parseMessage(inv, { datagram: true }), SRC, DST, 'request');
  });
  const t0 = performance.now();
  for (const c of ctxs) if ((await lookup(reg, c, 'location')) !== 1) throw new Error('lookup failed');
  const ms = performance.now() - t0;
  console.log(
    `${'lookup() among 100,000 users'.padEnd(44)} ${String(Math.round((ctxs.length / ms) * 1000)).padStart(8)} lookups/s`,
  );
  const mb = (b: number) => (b / 1048576).toFixed(1);
  console.log(
    `memory with 100,000 contacts: RSS ${mb(afterMem.rss)} MB, heap used ${mb(afterMem.heapUsed)} MB ` +
      `(+${mb(afterMem.heapUsed - before.heapUsed)} MB heap for the contacts${gc ? '' : '; run with --expose-gc for exact figures'})`,
  );
  await ul.stop();

  await run('db_mode 0 (memory)', N, { db_mode: 0 }).then(({ ul }) => ul.stop());
  await run('db_mode 1 (write-through, SQLite), 1 at a time', Math.min(N, 5000), {
    db_mode: 1,
    db_url: sqlite('m1a.db'),
  }).then(({ ul }) => ul.stop());
  await run(
    'db_mode 1 (write-through, SQLite), 50 in flight',
    Math.min(N, 5000),
    { db_mode: 1, db_url: sqlite('m1b.db') },
    50,
  ).then(({ ul }) => ul.stop());
  {
    const { ul } = await run('db_mode 2 (write-back, SQLite)', N, { db_mode: 2, db_url: sqlite('m2.db') });
    const t0 = performance.now();
    await ul.flush();
    console.log(
      `${'  write-back of those contacts (one flush)'.padEnd(44)} ${(performance.now() - t0).toFixed(0).padStart(8)} ms`,
    );
    await ul.stop();
  }
  // the same on database servers, given as db_urls: UL_BENCH_SERVERS="mysql://root@127.0.0.1/test postgres://postgres@127.0.0.1/test"
  for (const url of (process.env.UL_BENCH_SERVERS ?? '').split(/\s+/).filter(Boolean)) {
    const kind = url.split(':')[0];
    const fresh = async () => {
      // each run starts on an empty location table
      const { openDb } = await import('../src/db/index.js');
      const db = await openDb(url);
      await db.delete('location').catch(() => undefined);
      await db.close();
    };
    await fresh();
    await run(
      `db_mode 1 (write-through, ${kind}), 50 in flight`,
      Math.min(N, 5000),
      { db_mode: 1, db_url: url },
      50,
    ).then(({ ul }) => ul.stop());
    await fresh();
    const { ul } = await run(`db_mode 2 (write-back, ${kind})`, N, { db_mode: 2, db_url: url });
    const t0 = performance.now();
    await ul.flush();
    console.log(
      `${`  write-back of those contacts (one flush, ${kind})`.padEnd(44)} ${(performance.now() - t0).toFixed(0).padStart(8)} ms`,
    );
    await ul.stop();
    await fresh();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
