/** Text formats of the management plane: SER's dates, `serctl monitor`, MySQL-style tables. */

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/**
 * ctime(3) in local time as the seeds print it: `Fri Dec 6 17:56:10 2002`
 * (the day of the month is not padded, as in seed 003's `serctl fifo uptime`).
 */
export function ctime(d: Date): string {
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${d.getDate()} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

/** `YYYY-MM-DD HH:MM:SS` (UTC), as MySQL prints a DATETIME. */
export function sqlDate(v: unknown): string {
  if (v instanceof Date) {
    return `${v.getUTCFullYear()}-${p2(v.getUTCMonth() + 1)}-${p2(v.getUTCDate())} ${p2(v.getUTCHours())}:${p2(v.getUTCMinutes())}:${p2(v.getUTCSeconds())}`;
  }
  return v === null || v === undefined ? 'NULL' : String(v);
}

/** A result set drawn as the mysql client does (the seed's `serctl acl grant` output). */
export function mysqlTable(headers: string[], rows: unknown[][]): string {
  const cells = rows.map((r) =>
    r.map((c) => (c instanceof Date ? sqlDate(c) : c === null ? 'NULL' : String(c))),
  );
  const w = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const sep = `+${w.map((n) => '-'.repeat(n + 2)).join('+')}+`;
  const line = (r: string[]) => `| ${r.map((c, i) => (c ?? '').padEnd(w[i])).join(' | ')} |`;
  return [sep, line(headers), sep, ...cells.map(line), sep].join('\n');
}

export type StatGroups = Record<string, Record<string, number>>;

/** First present key of a stats group. */
function pick(g: Record<string, number> | undefined, ...keys: string[]): number | undefined {
  if (!g) return undefined;
  for (const k of keys) if (typeof g[k] === 'number') return g[k];
  return undefined;
}

/** Everything one `serctl monitor` cycle shows. */
export interface MonitorSnapshot {
  /** `Sip EXpress router (…)` from `version`, undefined when the server did not answer */
  server?: string;
  /** the `uptime` reply lines (Now / Up Since / Up time) */
  uptime?: string[];
  stats?: StatGroups;
  /** body of `ul_stats` when usrloc exports it and has no stats group of its own */
  ulStats?: string;
}

/**
 * One cycle of `serctl monitor` in seed 003 Example 5-2's layout. Blocks of modules
 * that are not loaded say so instead of printing invented zeros.
 */
export function renderMonitor(cycle: number, s: MonitorSnapshot): string {
  const out: string[] = [`[cycle #: ${cycle}; if constant make sure server lives and fifo is on]`];
  if (s.server === undefined) {
    out.push('Server: (no answer from the FIFO server)');
    return `${out.join('\n')}\n`;
  }
  out.push(`Server: ${s.server}`, ...(s.uptime ?? []), '');
  const st = s.stats ?? {};
  out.push('Transaction Statistics');
  const tm = st.tm;
  if (!tm) out.push('n/a (tm is not loaded)');
  else {
    const v = (...k: string[]) => pick(tm, ...k) ?? 0;
    out.push(
      `Current: ${v('current', 'transactions')} (${v('waiting')} waiting) Total: ${v('total')} (${v('local', 'total_local')} local)`,
      `Replied localy: ${v('replied_localy', 'replied_locally', 'rpl_generated')}`,
      `Completion status 6xx: ${v('completed_6xx', '6xx')}, 5xx: ${v('completed_5xx', '5xx')}, 4xx: ${v('completed_4xx', '4xx')}, 3xx: ${v('completed_3xx', '3xx')},2xx: ${v('completed_2xx', '2xx')}`,
    );
  }
  out.push('', 'Stateless Server Statistics');
  const sl = st.sl;
  if (!sl) out.push('n/a (sl is not loaded)');
  else {
    const v = (k: string) => sl[k] ?? 0;
    const codes = (list: string[]) => list.map((c) => `${c}: ${v(c)}`).join(' ');
    out.push(
      codes(['200', '202', '2xx']),
      codes(['300', '301', '302', '3xx']),
      codes(['400', '401', '403', '404', '407', '408', '483', '4xx', '500', '5xx']),
      codes(['6xx']),
      `xxx: ${v('xxx')}`,
      `failures: ${v('failures')}`,
    );
  }
  out.push('', 'UsrLoc Stats');
  const tables = usrlocTables(st.usrloc);
  if (tables.length > 0) {
    out.push('Domain Registered Expired');
    for (const t of tables) out.push(`'${t.table}' ${t.registered} ${t.expired}`);
  } else if (s.ulStats !== undefined) out.push(s.ulStats);
  else out.push('n/a (usrloc is not loaded)');
  return `${out.join('\n')}\n`;
}

/** usrloc's per-table counters: keys `<table>_registered` / `<table>_expired` (or with `:` or `.`). */
export function usrlocTables(
  g: Record<string, number> | undefined,
): { table: string; registered: number; expired: number }[] {
  if (!g) return [];
  const m = new Map<string, { table: string; registered: number; expired: number }>();
  for (const [k, v] of Object.entries(g)) {
    const r = /^(.+)[:._](registered|expired)$/.exec(k);
    if (!r) continue;
    const t = m.get(r[1]) ?? { table: r[1], registered: 0, expired: 0 };
    t[r[2] as 'registered' | 'expired'] = v;
    m.set(r[1], t);
  }
  return [...m.values()].sort((a, b) => a.table.localeCompare(b.table));
}

/** Parse `group:name = value` lines of `get_statistics`. */
export function parseStatLines(lines: string[]): StatGroups {
  const out: StatGroups = {};
  for (const l of lines) {
    const m = /^([^:\s]+):(\S+) = (-?[\d.e+]+)$/.exec(l.trim());
    if (!m) continue;
    out[m[1]] ??= {};
    out[m[1]][m[2]] = Number(m[3]);
  }
  return out;
}
