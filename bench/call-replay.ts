/**
 * The call scenario of the bench (record-routed INVITE/100/180/200/ACK/BYE/200 through
 * t_relay, the shared bench's routing script) replayed inside one process, without sockets
 * and without SIPp: the messages of a caller and a callee are handed to the server's
 * receive pipeline, and what it sends is taken from its transport and answered.
 *
 * Why: on this shared 2-core box the CPU figure of one bench step varies by 10-20 % between
 * repetitions, more than most changes to the call path are worth. Here nothing but our
 * JavaScript and its garbage collection runs, on a clock moved by hand (so the transactions'
 * timers, wt_timer included, run as they would at the simulated rate), and repeated runs
 * agree better than bench steps do (though a busy box still moves them by 10 %). It measures the server's own work only: the kernel's share
 * (sendto, wakeups), a third of the real figure, is left out, and so is the event loop.
 * The peers' side (a line scan and a few concatenations per message) is counted with it.
 *
 * Run: node --max-semi-space-size=4 dist/bench/call-replay.js [calls] [rate] [warmup calls]
 * (defaults 20,000 calls at a simulated 200 cps after 6,000 warm-up calls). HEAPSNAP=file
 * writes a heap snapshot at the end, with the transactions of the last wt_timer seconds alive.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSerArgs } from '../src/cli/ser.js';
import type { Endpoint } from '../src/core/context.js';
import { MemorySink } from '../src/core/log.js';
import { startServer } from '../src/core/server.js';
import { ManualClock } from '../src/core/timer.js';
import type { ListenSocket, RecvInfo, SendTarget } from '../src/net/transports.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHARED = process.env.BENCH_SHARED ?? join(here, '..', '..', '..', 'shared', 'bench');
const CALLS = Number(process.argv[2] ?? 20000);
const RATE = Number(process.argv[3] ?? 200);
const WARMUP = Number(process.argv[4] ?? 6000);
const CALLEES = 100;
const UAC: Endpoint = { proto: 'udp', ip: '127.0.0.1', port: 5380, af: 4 };
const UAS: Endpoint = { proto: 'udp', ip: '127.0.0.1', port: 5390, af: 4 };
const SDP =
  'v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n' +
  'm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

// the shared bench's script on a port of our own (PORT, default 5299): bound, but every send is taken below
const cfg = readFileSync(join(SHARED, 'ser-cfg', 'ser-default.cfg'), 'latin1')
  .split('\n')
  .filter((l) => !/^\s*(listen|port|fork|log_stderror|children)\s*=/.test(l))
  .join('\n');
const clock = new ManualClock(0);
const srv = await startServer(parseSerArgs(['-f', 'replay.cfg', '-D']), {
  configText: `fork=no\nlisten=127.0.0.1\nport=${process.env.PORT ?? 5299}\nchildren=1\n${cfg}`,
  logSink: new MemorySink(),
  noMgmt: true,
  clock,
});
const core = srv.core;
const tr = core.transports;
if (!tr) throw new Error('no transports');
const ls = tr.listening.find((s) => s.proto === 'udp') as ListenSocket;
const PORT = ls.port;
const sent: { target: SendTarget; data: Buffer }[] = [];
tr.send = (target: SendTarget, data: Buffer) => {
  sent.push({ target, data });
  return true;
};
const info = (src: Endpoint): RecvInfo => ({ src, dst: ls.endpoint, socket: ls });
const fromUac = info(UAC);
const fromUas = info(UAS);

function deliver(text: string, from: RecvInfo): void {
  core.receive(Buffer.from(text, 'latin1'), from);
}

/** the sends since the last call, checked: `want` lists the status or method and the peer of each */
function take(want: [string, Endpoint][]): string[] {
  const got = sent.splice(0);
  const out: string[] = [];
  if (got.length !== want.length)
    throw new Error(
      `expected ${want.length} sends, got ${got.length}: ${got.map((g) => g.data.toString('latin1', 0, 40)).join(' | ')}`,
    );
  for (let i = 0; i < got.length; i++) {
    const t = got[i].data.toString('latin1');
    const [what, to] = want[i];
    if (!t.startsWith(what) && !t.startsWith(`SIP/2.0 ${what}`))
      throw new Error(`expected ${what}, got ${t.slice(0, 60)}`);
    if (got[i].target.port !== to.port) throw new Error(`${what} went to port ${got[i].target.port}`);
    out.push(t);
  }
  return out;
}

/** the values of the header lines `name` (one per line, as the UAS copies them) */
function lines(msg: string, name: string): string[] {
  const out: string[] = [];
  const key = `\r\n${name}:`;
  for (let i = msg.indexOf(key); i >= 0; i = msg.indexOf(key, i + 2)) {
    const e = msg.indexOf('\r\n', i + 2);
    out.push(msg.substring(i + 2, e));
  }
  return out;
}

function register(): void {
  for (let k = 0; k < CALLEES; k++) {
    deliver(
      `REGISTER sip:127.0.0.1:${PORT} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5381;branch=z9hG4bK-r${k}\r\n` +
        `Max-Forwards: 70\r\nFrom: <sip:callee${k}@127.0.0.1>;tag=r${k}\r\nTo: <sip:callee${k}@127.0.0.1>\r\n` +
        `Call-ID: reg${k}@127.0.0.1\r\nCSeq: 1 REGISTER\r\nContact: <sip:callee${k}@127.0.0.1:${UAS.port}>\r\n` +
        'Expires: 3600000\r\nContent-Length: 0\r\n\r\n',
      info({ ...UAC, port: 5381 }),
    );
    take([['200', { ...UAC, port: 5381 }]]);
  }
}

let tick = 0;
function call(n: number): void {
  const callee = `callee${n % CALLEES}`;
  const cid = `${n}-replay@127.0.0.1`;
  const from = `From: <sip:caller@127.0.0.1:5380>;tag=${process.pid}SIPpTag00${n}`;
  const to = `To: <sip:${callee}@127.0.0.1:${PORT}>`;
  const head = (method: string, ruri: string, branch: string, routes: string) =>
    `${method} ${ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5380;branch=z9hG4bK-${branch}\r\n${routes}Max-Forwards: 70\r\n${from}\r\n`;
  deliver(
    `${head('INVITE', `sip:${callee}@127.0.0.1:${PORT}`, `${n}-1`, '')}${to}\r\nCall-ID: ${cid}\r\nCSeq: 1 INVITE\r\n` +
      'Contact: <sip:caller@127.0.0.1:5380>\r\nUser-Agent: sipp-bench\r\nContent-Type: application/sdp\r\n' +
      `Content-Length: ${SDP.length}\r\n\r\n${SDP}`,
    fromUac,
  );
  const [, inv] = take([
    ['100', UAC],
    ['INVITE', UAS],
  ]);
  // the callee: 180 and 200 with the Vias and Record-Route copied
  const vias = lines(inv, 'Via').join('\r\n');
  const rr = lines(inv, 'Record-Route');
  const uasTo = `${to};tag=${process.pid}SIPpTag01${n}`;
  const reply = (status: string, cseq: string, toLine: string, rrs: string, body: string) =>
    `SIP/2.0 ${status}\r\n${vias}\r\n${from}\r\n${toLine}\r\nCall-ID: ${cid}\r\nCSeq: ${cseq}\r\n${rrs}` +
    `Contact: <sip:127.0.0.1:${UAS.port};transport=UDP>\r\n${body}`;
  const rrLines = rr.map((l) => `${l}\r\n`).join('');
  deliver(reply('180 Ringing', '1 INVITE', uasTo, rrLines, 'Content-Length: 0\r\n\r\n'), fromUas);
  take([['180', UAC]]);
  deliver(
    reply(
      '200 OK',
      '1 INVITE',
      uasTo,
      rrLines,
      `Content-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`,
    ),
    fromUas,
  );
  const [ok] = take([['200', UAC]]);
  // the caller: ACK and BYE to the callee's Contact along the recorded route
  const routes = lines(ok, 'Record-Route')
    .map((l) => `Route:${l.slice(l.indexOf(':') + 1)}\r\n`)
    .reverse()
    .join('');
  const target = `sip:127.0.0.1:${UAS.port};transport=UDP`;
  const tail = (cseq: string) =>
    `${uasTo}\r\nCall-ID: ${cid}\r\nCSeq: ${cseq}\r\nContact: <sip:caller@127.0.0.1:5380>\r\nContent-Length: 0\r\n\r\n`;
  deliver(head('ACK', target, `${n}-2`, routes) + tail('1 ACK'), fromUac);
  take([['ACK', UAS]]);
  deliver(head('BYE', target, `${n}-3`, routes) + tail('2 BYE'), fromUac);
  const [bye] = take([['BYE', UAS]]);
  const byeVias = lines(bye, 'Via').join('\r\n');
  deliver(
    `SIP/2.0 200 OK\r\n${byeVias}\r\n${from}\r\n${uasTo}\r\nCall-ID: ${cid}\r\nCSeq: 2 BYE\r\n` +
      `Contact: <sip:127.0.0.1:${UAS.port};transport=UDP>\r\nContent-Length: 0\r\n\r\n`,
    fromUas,
  );
  take([['200', UAC]]);
  // time moves as at RATE calls a second; the wheel runs what fell due (wt_timer, fr_timer...)
  tick += 1000 / RATE;
  clock.set(tick);
  core.timers.advance();
}

async function run(count: number, first: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    call(first + i);
    // let the event loop turn now and then, as it would between datagrams
    if (i % 200 === 199) await new Promise((r) => setImmediate(r));
  }
}

register();
await run(WARMUP, 0);
const c0 = process.cpuUsage();
const t0 = performance.now();
await run(CALLS, WARMUP);
const c = process.cpuUsage(c0);
const wall = performance.now() - t0;
const cpu = (c.user + c.system) / 1e6;
const tm = core.statGroups.get('tm')?.();
console.log(
  `${CALLS} calls at a simulated ${RATE} cps: ${((cpu / CALLS) * 1000).toFixed(4)} CPU-s per 1,000 calls ` +
    `(${cpu.toFixed(2)} s CPU in ${(wall / 1000).toFixed(2)} s; user ${(c.user / 1e6).toFixed(2)} s, system ${(c.system / 1e6).toFixed(2)} s); ` +
    `heap ${(process.memoryUsage().heapUsed / 1048576).toFixed(1)} MB; tm transactions ${tm?.current ?? '?'}`,
);
// HEAPSNAP=file: what the live transactions hold, for a heap snapshot viewer
if (process.env.HEAPSNAP) {
  const { writeHeapSnapshot } = await import('node:v8');
  console.log(`heap snapshot: ${writeHeapSnapshot(process.env.HEAPSNAP)}`);
}
await srv.stop();
