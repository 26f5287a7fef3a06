/**
 * Prometheus text exposition (format 0.0.4) of every statistics group the core and the
 * modules registered (core, net, sl, tm, usrloc …) plus process metrics.
 *
 * A counter `name` of group `g` becomes `ser_<g>_<name>` (characters outside
 * [a-zA-Z0-9_] turned into `_`, a leading digit prefixed), e.g. `ser_sl_404`,
 * `ser_core_rcv_requests`, `ser_usrloc_location_registered`.
 */
import type { StatGroups } from './format.js';

export function metricName(group: string, name: string): string {
  const s = `ser_${group}_${name}`.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

export interface ProcessMetrics {
  readonly startedAt: Date;
  readonly now?: Date;
}

export function renderMetrics(groups: StatGroups, p: ProcessMetrics): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const [g, stats] of Object.entries(groups)) {
    for (const [k, v] of Object.entries(stats)) {
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      const n = metricName(g, k);
      if (seen.has(n)) continue;
      seen.add(n);
      out.push(`# HELP ${n} ${g} statistic ${k}`, `# TYPE ${n} untyped`, `${n} ${v}`);
    }
  }
  const now = p.now ?? new Date();
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  const put = (n: string, type: string, help: string, v: number) =>
    out.push(`# HELP ${n} ${help}`, `# TYPE ${n} ${type}`, `${n} ${v}`);
  put(
    'ser_uptime_seconds',
    'gauge',
    'seconds since the server started',
    Math.floor((now.getTime() - p.startedAt.getTime()) / 1000),
  );
  put(
    'process_start_time_seconds',
    'gauge',
    'start time of the process since the epoch',
    p.startedAt.getTime() / 1000,
  );
  put('process_resident_memory_bytes', 'gauge', 'resident set size', mem.rss);
  put('process_heap_bytes', 'gauge', 'V8 heap in use', mem.heapUsed);
  put('process_cpu_user_seconds_total', 'counter', 'user CPU time', cpu.user / 1e6);
  put('process_cpu_system_seconds_total', 'counter', 'system CPU time', cpu.system / 1e6);
  put('process_cpu_seconds_total', 'counter', 'user and system CPU time', (cpu.user + cpu.system) / 1e6);
  return `${out.join('\n')}\n`;
}
