/**
 * Turns a run of the side-by-side runner (summary.jsonl + steps.jsonl) into results.json,
 * results.md and chart.svg: per scenario the best zero-failure rate of each server, response
 * times, CPU-seconds per 1,000 at equal offered rates, peak memory, and the ratio of our
 * server ("ts") to Kamailio ("kam…") and to the bare Node loop ("node").
 *
 * Usage: node dist/bench/report.js RESULTS_DIR [--ours ts] [--anchor kam-c2]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Summary {
  rep: number;
  scenario: string;
  server: string;
  best_rate: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  bye_p99_ms: number | null;
  server_cpu_s_per_1000: number | null;
  server_pss_kb_end: number | null;
  per_rate: Record<string, { pass: boolean; cpu1000: number | null; p99: number | null }>;
}

interface Step {
  kind: string;
  scenario: string;
  server: string;
  rate: number;
  pass: boolean;
  server_cpu_s_per_1000: number | null;
  server_pss_kb?: number | null;
  rt1?: { p50_ms: number; p90_ms: number; p99_ms: number } | null;
}

export interface ScenarioRow {
  server: string;
  bestRate: number | null;
  p50: number | null;
  p99: number | null;
  cpuPer1000AtBest: number | null;
  peakPssMb: number | null;
}

export interface RateRow {
  rate: number;
  /** server → mean CPU-s per 1000 over passing steps at that rate */
  cpu: Record<string, number | null>;
  /** ours / anchor at that rate */
  ratio: number | null;
  /** ours / bare Node loop at that rate (OPTIONS only) */
  nodeRatio: number | null;
}

export interface Report {
  run: string;
  ours: string;
  anchor: string;
  scenarios: Record<string, { servers: ScenarioRow[]; rates: RateRow[] }>;
}

function readJsonl<T>(file: string): T[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

const mean = (xs: number[]): number | null =>
  xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (x: number | null, d = 3): number | null =>
  x === null ? null : Math.round(x * 10 ** d) / 10 ** d;

export function buildReport(dir: string, ours = 'ts', anchorHint = 'kam'): Report {
  const summaries = readJsonl<Summary>(join(dir, 'summary.jsonl'));
  const steps = readJsonl<Step>(join(dir, 'steps.jsonl')).filter((s) => s.kind === 'step');
  const servers = [...new Set(summaries.map((s) => s.server))];
  const anchor = servers.find((s) => s.startsWith(anchorHint)) ?? anchorHint;
  const report: Report = { run: dir, ours, anchor, scenarios: {} };
  for (const scen of [...new Set(summaries.map((s) => s.scenario))]) {
    const rows: ScenarioRow[] = [];
    for (const server of servers) {
      const ss = summaries.filter((s) => s.scenario === scen && s.server === server);
      if (ss.length === 0) continue;
      const pss = steps
        .filter((s) => s.scenario === scen && s.server === server && typeof s.server_pss_kb === 'number')
        .map((s) => s.server_pss_kb as number);
      const nums = (f: (s: Summary) => number | null) =>
        ss.map(f).filter((x): x is number => typeof x === 'number');
      rows.push({
        server,
        bestRate: round(mean(nums((s) => s.best_rate)), 0),
        p50: round(mean(nums((s) => s.p50_ms)), 1),
        p99: round(mean(nums((s) => s.p99_ms)), 1),
        cpuPer1000AtBest: round(mean(nums((s) => s.server_cpu_s_per_1000))),
        peakPssMb: pss.length ? round(Math.max(...pss) / 1024, 1) : null,
      });
    }
    // CPU at equal offered rates: only steps that passed count
    const rates = [...new Set(steps.filter((s) => s.scenario === scen).map((s) => s.rate))].sort(
      (a, b) => a - b,
    );
    const rateRows: RateRow[] = [];
    for (const rate of rates) {
      const cpu: Record<string, number | null> = {};
      for (const server of servers) {
        const xs = steps
          .filter((s) => s.scenario === scen && s.server === server && s.rate === rate && s.pass)
          .map((s) => s.server_cpu_s_per_1000)
          .filter((x): x is number => typeof x === 'number');
        cpu[server] = round(mean(xs), 4);
      }
      const o = cpu[ours];
      const a = cpu[anchor];
      const n = cpu.node;
      rateRows.push({
        rate,
        cpu,
        ratio: o != null && a != null && a > 0 ? round(o / a, 2) : null,
        nodeRatio: o != null && n != null && n > 0 ? round(o / n, 2) : null,
      });
    }
    report.scenarios[scen] = { servers: rows, rates: rateRows };
  }
  return report;
}

const fmt = (x: number | null | undefined, d = 3): string => (x == null ? '–' : x.toFixed(d));

export function toMarkdown(r: Report): string {
  const out: string[] = [`# Benchmark ${r.run}`, '', `ours = \`${r.ours}\`, anchor = \`${r.anchor}\``, ''];
  for (const [scen, s] of Object.entries(r.scenarios)) {
    out.push(`## ${scen}`, '');
    out.push('| server | best rate/s (0 failures) | p50 / p99 ms | CPU-s/1000 at best | peak PSS MB |');
    out.push('|---|---|---|---|---|');
    for (const row of s.servers)
      out.push(
        `| ${row.server} | ${row.bestRate ?? '–'} | ${fmt(row.p50, 0)} / ${fmt(row.p99, 0)} | ${fmt(row.cpuPer1000AtBest)} | ${fmt(row.peakPssMb, 1)} |`,
      );
    const servers = s.servers.map((x) => x.server);
    out.push('', `CPU-seconds per 1,000 at the same offered rate (passing steps only):`, '');
    out.push(`| rate/s | ${servers.join(' | ')} | ${r.ours}/${r.anchor} | ${r.ours}/node |`);
    out.push(`|---|${servers.map(() => '---|').join('')}---|---|`);
    for (const rr of s.rates)
      out.push(
        `| ${rr.rate} | ${servers.map((sv) => fmt(rr.cpu[sv], 4)).join(' | ')} | ${fmt(rr.ratio, 2)} | ${fmt(rr.nodeRatio, 2)} |`,
      );
    out.push('');
  }
  return out.join('\n');
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

/** CPU ratio (ours / anchor) against offered rate, one line per scenario; 1.0 is parity. */
export function toSvg(r: Report): string {
  const W = 640;
  const H = 360;
  const L = 60;
  const B = 50;
  const T = 30;
  const R = 150;
  const pts = Object.entries(r.scenarios).map(([scen, s]) => ({
    scen,
    pts: s.rates.filter((x) => x.ratio !== null).map((x) => [x.rate, x.ratio as number] as const),
  }));
  const all = pts.flatMap((p) => p.pts);
  const xs = all.map((p) => Math.log10(p[0]));
  const xMin = xs.length ? Math.min(...xs) - 0.1 : 1;
  const xMax = xs.length ? Math.max(...xs) + 0.1 : 4;
  const yMax = Math.max(1.5, ...all.map((p) => p[1])) * 1.1;
  const px = (rate: number) => L + ((Math.log10(rate) - xMin) / (xMax - xMin || 1)) * (W - L - R);
  const py = (y: number) => H - B - (y / yMax) * (H - B - T);
  const e: string[] = [];
  e.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
  );
  e.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  e.push(
    `<text x="${L}" y="18" font-size="14">CPU-s per 1,000: ${r.ours} / ${r.anchor} by offered rate</text>`,
  );
  e.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`);
  e.push(`<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`);
  for (let y = 0; y <= yMax; y += 0.5) {
    e.push(`<text x="${L - 8}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(1)}</text>`);
    e.push(`<line x1="${L}" y1="${py(y)}" x2="${W - R}" y2="${py(y)}" stroke="#eee"/>`);
  }
  e.push(
    `<line x1="${L}" y1="${py(1)}" x2="${W - R}" y2="${py(1)}" stroke="#888" stroke-dasharray="6 4"/><text x="${W - R + 4}" y="${py(1) + 4}">parity</text>`,
  );
  const ticks = [...new Set(all.map((p) => p[0]))].sort((a, b) => a - b);
  for (const t of ticks) e.push(`<text x="${px(t)}" y="${H - B + 16}" text-anchor="middle">${t}</text>`);
  e.push(
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">offered rate (per second, log scale)</text>`,
  );
  pts.forEach((p, i) => {
    const c = COLORS[i % COLORS.length];
    if (p.pts.length > 1)
      e.push(
        `<polyline fill="none" stroke="${c}" stroke-width="2" points="${p.pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`,
      );
    for (const [x, y] of p.pts)
      e.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="4" fill="${c}"/>`);
    e.push(`<rect x="${W - R + 10}" y="${T + 20 * i}" width="12" height="12" fill="${c}"/>`);
    e.push(`<text x="${W - R + 28}" y="${T + 20 * i + 11}">${p.scen}</text>`);
  });
  e.push('</svg>');
  return e.join('\n');
}

export function writeReport(dir: string, ours = 'ts', anchor = 'kam'): Report {
  const r = buildReport(dir, ours, anchor);
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(dir, 'results.md'), `${toMarkdown(r)}\n`);
  writeFileSync(join(dir, 'chart.svg'), `${toSvg(r)}\n`);
  return r;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node dist/bench/report.js RESULTS_DIR [ours] [anchor]\n');
    process.exit(1);
  }
  const r = writeReport(dir, process.argv[3] ?? 'ts', process.argv[4] ?? 'kam');
  process.stdout.write(`${toMarkdown(r)}\n`);
}
