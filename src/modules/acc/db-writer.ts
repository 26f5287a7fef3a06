/**
 * The accounting database writer. SER's acc logged an error and dropped the record when
 * an insert failed; billing cannot live with that. Here every record is queued in order:
 * written at once while the database answers, kept (and retried every `retryMs`) while
 * it does not, and, when a spool file is configured, mirrored to it so that a restart
 * loses nothing either. A record is only dropped when the queue is full, and then
 * counted as lost.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { type Db, type DbParam, isDbError, type Queryable } from '../../db/index.js';
import { createTable, tableDef } from '../../db/schema.js';

export type DbOp =
  | { readonly op: 'insert'; readonly table: string; readonly layout: string; readonly row: DbRow }
  | {
      readonly op: 'update';
      readonly table: string;
      readonly layout: string;
      readonly where: DbRow;
      readonly set: DbRow;
    };
export type DbRow = Record<string, string | number | Date | null>;

/** most records written in one transaction */
const BATCH = 200;

export interface WriterStats {
  /** operations written to the database */
  written: number;
  /** operations waiting for the database now */
  queued: number;
  /** operations that had to wait at least once (the database failed) */
  spooled: number;
  /** operations dropped because the queue was full */
  lost: number;
  /** failed database attempts */
  errors: number;
}

export interface WriterOptions {
  /** opens the database; rejects with DbError when it cannot */
  open(): Promise<Db>;
  /** queue limit; beyond it records are lost (and counted) */
  maxQueue: number;
  /** wait after a failure before the next attempt */
  retryMs: number;
  /** file mirroring the queue while the database is failing ('' = none) */
  spoolFile: string;
  schedule(ms: number, fn: () => void): { cancel(): void };
  warn(text: string): void;
  error(text: string): void;
}

/** JSON lines in the spool file: Dates as {"$date": ms} */
function encode(op: DbOp): string {
  return JSON.stringify(op, function (this: Record<string, unknown>, k, v) {
    const raw = this[k];
    return raw instanceof Date ? { $date: raw.getTime() } : v;
  });
}
function decode(line: string): DbOp {
  return JSON.parse(line, (_k, v) =>
    v && typeof v === 'object' && typeof v.$date === 'number' ? new Date(v.$date) : v,
  ) as DbOp;
}

function sameKeys(cols: readonly string[], row: DbRow): boolean {
  const k = Object.keys(row);
  return k.length === cols.length && k.every((x, i) => x === cols[i]);
}

/** Cuts strings to their column's width, so a long From never blocks the queue (strict SQL modes). */
function fit(layout: string, row: DbRow): Record<string, DbParam> {
  const def = tableDef(layout);
  if (!def) return row;
  const out: Record<string, DbParam> = {};
  for (const [k, v] of Object.entries(row)) {
    const c = def.columns.find((x) => x.name === k);
    out[k] =
      typeof v === 'string' && c?.type === 'varchar' && c.length && v.length > c.length
        ? v.slice(0, c.length)
        : v;
  }
  return out;
}

export class AccDbWriter {
  readonly stats: WriterStats = { written: 0, queued: 0, spooled: 0, lost: 0, errors: 0 };
  private readonly queue: DbOp[] = [];
  private db: Db | undefined;
  private readonly prepared = new Set<string>();
  private draining: Promise<void> | undefined;
  private retry: { cancel(): void } | undefined;
  /** the database is failing: new records go to the spool file as well */
  private failing = false;
  /** the last attempt failed (logged once per outage) */
  private down = false;
  private closed = false;
  /** ops of the queue already in the spool file */
  private inFile = 0;

  constructor(private readonly o: WriterOptions) {
    if (o.spoolFile && existsSync(o.spoolFile)) {
      const lines = readFileSync(o.spoolFile, 'utf8').split('\n').filter(Boolean);
      for (const l of lines) {
        try {
          this.queue.push(decode(l));
        } catch {
          o.error(`acc: spool file ${o.spoolFile}: skipping a damaged line`);
        }
      }
      this.inFile = this.queue.length;
      this.stats.queued = this.queue.length;
      if (this.queue.length > 0) {
        o.warn(
          `acc: ${this.queue.length} record(s) from the spool file ${o.spoolFile} wait for the database`,
        );
      }
    }
  }

  get database(): Db | undefined {
    return this.db;
  }

  submit(op: DbOp): void {
    if (this.queue.length >= this.o.maxQueue) {
      this.stats.lost++;
      if (this.stats.lost === 1 || this.stats.lost % 1000 === 0) {
        this.o.error(`acc: accounting queue full (${this.o.maxQueue}); ${this.stats.lost} record(s) lost`);
      }
      return;
    }
    this.queue.push(op);
    this.stats.queued = this.queue.length;
    if (this.failing) {
      this.stats.spooled++;
      this.toFile([op]);
      return; // the retry timer drains
    }
    this.kick();
  }

  /** Write what is queued now; resolves true when the queue is empty. */
  async flush(): Promise<boolean> {
    this.retry?.cancel();
    this.retry = undefined;
    this.failing = false;
    await this.kick();
    return this.queue.length === 0;
  }

  /** The Db once it could be opened (for the management commands). */
  async connection(): Promise<Db> {
    if (this.db) return this.db;
    // callers that ask while the first open is under way share it: two opens would leave
    // one pool that nobody closes
    this.opening ??= this.o.open().finally(() => {
      this.opening = undefined;
    });
    this.db = await this.opening;
    return this.db;
  }
  private opening: Promise<Db> | undefined;

  private kick(): Promise<void> {
    if (!this.draining) {
      this.draining = this.drain().finally(() => {
        this.draining = undefined;
        // records that arrived while the last write was finishing
        if (this.queue.length > 0 && !this.failing && !this.closed) void this.kick();
      });
    }
    return this.draining;
  }

  private async drain(): Promise<void> {
    // one transaction per batch: a commit per record limited MariaDB/PostgreSQL to ~1400/s
    let batchMax = BATCH;
    while (this.queue.length > 0 && !this.failing) {
      const batch = this.queue.slice(0, batchMax);
      try {
        const db = await this.connection();
        for (const op of batch) {
          if (!this.prepared.has(op.table)) {
            await this.prepare(db, op);
            this.prepared.add(op.table);
          }
        }
        const write = async (q: Queryable) => {
          for (let i = 0; i < batch.length; ) {
            const op = batch[i];
            if (op.op === 'update') {
              await q.update(op.table, op.where, fit(op.layout, op.set));
              i++;
              continue;
            }
            // consecutive rows for the same table and columns: one multi-row INSERT
            const cols = Object.keys(op.row);
            const rows = [fit(op.layout, op.row)];
            let j = i + 1;
            while (j < batch.length && rows.length < 100) {
              const n = batch[j];
              if (n.op !== 'insert' || n.table !== op.table || !sameKeys(cols, n.row)) break;
              rows.push(fit(n.layout, n.row));
              j++;
            }
            if (rows.length === 1) await q.insert(op.table, rows[0]);
            else {
              const tuple = `(${cols.map(() => '?').join(', ')})`;
              await q.exec(
                `INSERT INTO ${q.quoteIdent(op.table)} (${cols.map((c) => q.quoteIdent(c)).join(', ')}) VALUES ${rows.map(() => tuple).join(', ')}`,
                rows.flatMap((r) => cols.map((c) => r[c])),
              );
            }
            i = j;
          }
        };
        // all or nothing: a failed batch is retried whole, so no record is written twice
        if (batch.length === 1) await write(db);
        else await db.transaction(write);
      } catch (e) {
        this.stats.errors++;
        if (!isDbError(e)) {
          if (batchMax > 1) {
            batchMax = 1; // find the record at fault, one at a time
            continue;
          }
          // not the database: a record that cannot be written at all would block the queue forever
          this.o.error(`acc: record dropped, it cannot be written: ${(e as Error)?.stack ?? e}`);
          this.take(1);
          this.stats.lost++;
          continue;
        }
        this.prepared.clear();
        this.fail(`${e.message}`);
        return;
      }
      if (this.down) {
        this.down = false;
        this.o.warn(`acc: database back; writing ${this.queue.length} kept record(s)`);
      }
      this.take(batch.length);
      this.stats.written += batch.length;
    }
    if (this.queue.length === 0 && this.o.spoolFile && existsSync(this.o.spoolFile)) {
      writeFileSync(this.o.spoolFile, '');
      this.inFile = 0;
    }
  }

  /** drops the first n records of the queue (written, or dropped) */
  private take(n: number): void {
    this.queue.splice(0, n);
    this.inFile = Math.max(0, this.inFile - n);
    this.stats.queued = this.queue.length;
  }

  /** Creates the table with its SER layout when the database lacks it. */
  private async prepare(db: Db, op: DbOp): Promise<void> {
    const have = await db.listTables();
    if (!have.includes(op.table)) await createTable(db, op.layout, op.table);
  }

  private fail(why: string): void {
    if (!this.down) {
      this.down = true;
      this.o.error(
        `acc: database write failed (${why}); ${this.queue.length} record(s) kept, retrying every ${this.o.retryMs / 1000} s`,
      );
      this.stats.spooled += this.queue.length;
    }
    // the queue goes to the file once; records arriving while failing are appended by submit()
    this.toFile(this.queue.slice(this.inFile));
    this.failing = true;
    if (this.closed) return;
    this.retry?.cancel();
    this.retry = this.o.schedule(this.o.retryMs, () => {
      this.retry = undefined;
      this.failing = false;
      void this.kick();
    });
  }

  private toFile(ops: DbOp[]): void {
    if (!this.o.spoolFile || ops.length === 0) return;
    try {
      appendFileSync(this.o.spoolFile, ops.map((x) => `${encode(x)}\n`).join(''));
      this.inFile += ops.length;
    } catch (e) {
      this.o.error(`acc: cannot write the spool file ${this.o.spoolFile}: ${(e as Error).message}`);
    }
  }

  /**
   * At shutdown: one last attempt, then whatever is left is in the spool file (rewritten
   * to hold exactly the queue) or, without one, reported as lost.
   */
  async close(): Promise<void> {
    this.retry?.cancel();
    this.retry = undefined;
    if (this.queue.length > 0) {
      this.failing = false;
      await this.kick();
    } else await this.draining;
    this.closed = true;
    if (this.queue.length > 0) {
      if (this.o.spoolFile) {
        const tmp = `${this.o.spoolFile}.tmp`;
        writeFileSync(tmp, this.queue.map((x) => `${encode(x)}\n`).join(''));
        renameSync(tmp, this.o.spoolFile);
        this.o.warn(`acc: ${this.queue.length} record(s) left in ${this.o.spoolFile} for the next start`);
      } else {
        this.stats.lost += this.queue.length;
        this.o.error(
          `acc: ${this.queue.length} record(s) lost at shutdown: the database is down and no spool_file is set`,
        );
      }
    }
    await this.opening?.catch(() => undefined);
    await this.db?.close().catch(() => {});
  }
}
