/**
 * SER-style logging: numeric levels compared with `debug=`, stderr when
 * `log_stderror=yes`, syslog otherwise. Lines carry SER's `<process_no>(<pid>)` prefix.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/** SER's log levels (dprint.h): a message is printed when its level <= debug. */
export const L_ALERT = -3;
export const L_CRIT = -2;
export const L_ERR = -1;
export const L_WARN = 1;
export const L_NOTICE = 2;
export const L_INFO = 3;
export const L_DBG = 4;

/** syslog severities for our levels (RFC 5424 numbering) */
function severity(level: number): number {
  if (level <= L_ALERT) return 1;
  if (level === L_CRIT) return 2;
  if (level === L_ERR) return 3;
  if (level === L_WARN) return 4;
  if (level === L_NOTICE) return 5;
  if (level === L_INFO) return 6;
  return 7;
}

const FACILITIES: Record<string, number> = {
  LOG_DAEMON: 3,
  LOG_LOCAL0: 16,
  LOG_LOCAL1: 17,
  LOG_LOCAL2: 18,
  LOG_LOCAL3: 19,
  LOG_LOCAL4: 20,
  LOG_LOCAL5: 21,
  LOG_LOCAL6: 22,
  LOG_LOCAL7: 23,
};

export interface LogSink {
  write(level: number, line: string): void;
  close?(): void;
}

/** Collects lines in memory; used by tests and by the checker's output. */
export class MemorySink implements LogSink {
  readonly lines: string[] = [];
  write(_level: number, line: string): void {
    this.lines.push(line);
  }
}

export class StderrSink implements LogSink {
  write(_level: number, line: string): void {
    process.stderr.write(line.endsWith('\n') ? line : `${line}\n`);
  }
}

/**
 * Syslog through one long-lived `logger` (util-linux, always on Debian) reading
 * prefixed lines from a pipe: Node has no unix datagram sockets to reach /dev/log.
 */
export class SyslogSink implements LogSink {
  private child: ChildProcess | undefined;
  constructor(
    private readonly ident: string,
    private readonly facility = FACILITIES.LOG_DAEMON,
  ) {
    if (!existsSync('/dev/log')) return;
    this.child = spawn('logger', ['--prio-prefix', '-t', ident, '--id', String(process.pid)], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    this.child.on('error', () => {
      this.child = undefined;
    });
    this.child.stdin?.on('error', () => {
      this.child = undefined;
    });
  }
  get available(): boolean {
    return this.child !== undefined;
  }
  write(level: number, line: string): void {
    const pri = this.facility * 8 + severity(level);
    const text = line.replace(/\n+$/, '').replace(/\n/g, ' ');
    if (this.child?.stdin?.writable) this.child.stdin.write(`<${pri}>${text}\n`);
    else process.stderr.write(`${this.ident}: ${text}\n`);
  }
  close(): void {
    this.child?.stdin?.end();
  }
}

export function syslogFacility(name: string): number | undefined {
  return FACILITIES[name.toUpperCase()];
}

export class Logger {
  /** SER's process number shown before the pid: 0 for the main process */
  processNo = 0;
  constructor(
    public debug: number,
    public sink: LogSink,
  ) {}

  enabled(level: number): boolean {
    return level <= this.debug;
  }

  /** `log()` from the script: the text is printed as given (SER adds no newline). */
  log(level: number, text: string): void {
    if (level > this.debug) return;
    this.sink.write(level, `${this.processNo}(${process.pid}) ${text}`);
  }

  err(text: string): void {
    this.log(L_ERR, `ERROR: ${text}`);
  }
  warn(text: string): void {
    this.log(L_WARN, `WARNING: ${text}`);
  }
  info(text: string): void {
    this.log(L_INFO, `INFO: ${text}`);
  }
  dbg(text: string): void {
    if (L_DBG <= this.debug) this.log(L_DBG, `DBG: ${text}`);
  }

  /**
   * Log a problem at most once per `periodMs` per key (suppressed repeats are counted in
   * the next line): a failure that every request meets must not flood the log.
   */
  private readonly lastKeys = new Map<string, { at: number; skipped: number }>();
  every(periodMs: number, level: number, key: string, text: string): void {
    const now = Date.now();
    const k = this.lastKeys.get(key);
    if (k && now - k.at < periodMs) {
      k.skipped++;
      return;
    }
    if (!k && this.lastKeys.size >= 1000) this.lastKeys.clear();
    const more = k && k.skipped > 0 ? ` (and ${k.skipped} more like it)` : '';
    this.lastKeys.set(key, { at: now, skipped: 0 });
    this.log(level, text + more);
  }

  /** Log a problem once per key: hostile traffic must not flood the log. */
  private readonly onceKeys = new Map<string, number>();
  once(level: number, key: string, text: string): void {
    const n = this.onceKeys.get(key) ?? 0;
    if (n === 0) this.log(level, text);
    if (this.onceKeys.size < 10_000) this.onceKeys.set(key, n + 1);
  }
}
