/**
 * Prints where a V8 CPU profile (`node --cpu-prof`) spent its time: self time per function
 * (and per file), busy time only (idle and GC shown apart). Used by bench/profile.sh.
 *
 *   node dist/bench/cpuprofile-top.js FILE.cpuprofile [N]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, nArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: cpuprofile-top FILE.cpuprofile [N]\n');
  process.exit(2);
}
const top = Number(nArg ?? 30);
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map<number, Node>();
for (const n of prof.nodes) byId.set(n.id, n);
// time per node from the sample deltas (hitCount alone ignores the sampling interval's jitter)
const self = new Map<number, number>();
for (let i = 0; i < prof.samples.length; i++) {
  const id = prof.samples[i];
  self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i + 1] ?? 0));
}
const short = (url: string) => url.replace(/^file:\/\/.*?\/dist\//, '').replace(/^node:/, 'node:');
const fnKey = (n: Node) =>
  `${n.callFrame.functionName || '(anonymous)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const fileKey = (n: Node) => short(n.callFrame.url) || n.callFrame.functionName;

let total = 0;
let idle = 0;
let gc = 0;
const perFn = new Map<string, number>();
const perFile = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id);
  if (!n) continue;
  total += us;
  const name = n.callFrame.functionName;
  if (name === '(idle)') {
    idle += us;
    continue;
  }
  if (name === '(garbage collector)') gc += us;
  perFn.set(fnKey(n), (perFn.get(fnKey(n)) ?? 0) + us);
  perFile.set(fileKey(n), (perFile.get(fileKey(n)) ?? 0) + us);
}
const busy = total - idle;
const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
const out: string[] = [];
out.push(`profile ${file}: ${ms(total)} sampled, busy ${ms(busy)}, idle ${ms(idle)}, GC ${pct(gc)} of busy`);
out.push('', `self time by function (top ${top}, % of busy):`);
for (const [k, us] of [...perFn].sort((a, b) => b[1] - a[1]).slice(0, top))
  out.push(`${pct(us)} ${ms(us)}  ${k}`);
out.push('', 'self time by file (top 20):');
for (const [k, us] of [...perFile].sort((a, b) => b[1] - a[1]).slice(0, 20))
  out.push(`${pct(us)} ${ms(us)}  ${k}`);
process.stdout.write(`${out.join('\n')}\n`);
