import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildReport, writeReport } from '../../bench/report.js';

function fixture(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  const sum = (server: string, best: number, cpu: number) => ({
    rep: 1,
    scenario: 'options',
    server,
    best_rate: best,
    p50_ms: 0,
    p99_ms: 3,
    bye_p99_ms: null,
    server_cpu_s_per_1000: cpu,
    server_pss_kb_end: 1000,
    per_rate: {},
  });
  const step = (server: string, rate: number, cpu: number, pass = true, pss = 2048) => ({
    kind: 'step',
    scenario: 'options',
    server,
    rate,
    pass,
    server_cpu_s_per_1000: cpu,
    server_pss_kb: pss,
  });
  writeFileSync(
    join(dir, 'summary.jsonl'),
    [sum('kam-c2', 4000, 0.05), sum('ts', 4000, 0.04), sum('node', 4000, 0.02)]
      .map((x) => JSON.stringify(x))
      .join('\n'),
  );
  writeFileSync(
    join(dir, 'steps.jsonl'),
    [
      step('kam-c2', 2000, 0.06),
      step('kam-c2', 4000, 0.05),
      step('ts', 2000, 0.03),
      step('ts', 2000, 0.05), // two passing steps at one rate are averaged
      step('ts', 4000, 0.04, true, 4096),
      step('ts', 4000, 9.99, false), // a failed step does not count
      step('node', 4000, 0.02),
      { kind: 'warmup', scenario: 'options', server: 'ts', rate: 2000, pass: true, server_cpu_s_per_1000: 5 },
    ]
      .map((x) => JSON.stringify(x))
      .join('\n'),
  );
  return dir;
}

test('ratios at equal rates use passing steps only and the kamailio anchor', () => {
  const dir = fixture();
  try {
    const r = buildReport(dir);
    assert.equal(r.anchor, 'kam-c2');
    const rates = r.scenarios.options.rates;
    assert.deepEqual(
      rates.map((x) => x.rate),
      [2000, 4000],
    );
    assert.equal(rates[0].cpu.ts, 0.04);
    assert.equal(rates[0].ratio, 0.67);
    assert.equal(rates[1].ratio, 0.8);
    assert.equal(rates[1].nodeRatio, 2);
    assert.equal(rates[0].nodeRatio, null);
    const ts = r.scenarios.options.servers.find((s) => s.server === 'ts');
    assert.equal(ts?.peakPssMb, 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writes JSON, Markdown and an SVG chart with one point per measured rate', () => {
  const dir = fixture();
  try {
    writeReport(dir);
    const md = readFileSync(join(dir, 'results.md'), 'utf8');
    assert.match(md, /\| 4000 \| 0\.0500 \| 0\.0400 \| 0\.0200 \| 0\.80 \| 2\.00 \|/);
    const svg = readFileSync(join(dir, 'chart.svg'), 'utf8');
    assert.equal(svg.match(/<circle /g)?.length, 2);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')).anchor, 'kam-c2');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
