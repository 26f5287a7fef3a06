/**
 * Calls from transactions. SER reports transactions and leaves the correlation of INVITE,
 * ACK and BYE to the operator (seed 000's self-join over `acc`); this does it as the records
 * pass: a 2xx to an initial INVITE opens a call (a `cdr` row with no end yet), the BYE of
 * either side closes it with its duration and who hung up, a call nobody ends is closed
 * after `timeoutMs`. A failed INVITE gives a finished row with its disposition.
 *
 * Pure bookkeeping: rows leave through `emit`; the clock is passed in.
 */
import type { AccRecord } from './record.js';

export type Disposition = 'answered' | 'busy' | 'cancelled' | 'no-answer' | 'failed';
export type Hangup = 'caller' | 'callee' | 'timeout' | '';

export type CdrRow = Record<string, string | number | Date | null>;

export interface CdrSink {
  insert(row: CdrRow): void;
  /** the row of one call: sip_callid, from_tag, to_tag */
  update(where: CdrRow, set: CdrRow): void;
}

interface OpenCall {
  readonly callId: string;
  readonly fromTag: string;
  readonly toTag: string;
  readonly start: number;
  acked: boolean;
}

export interface CdrStats {
  /** calls answered and not ended yet */
  open: number;
  /** call records written (answered and failed) */
  calls: number;
  ended: number;
  timedOut: number;
  /** BYEs that matched no open call (e.g. the call began before a restart) */
  unmatchedBye: number;
}

/** SIP final status → what happened to the call attempt */
export function disposition(code: number): Disposition {
  if (code >= 200 && code < 300) return 'answered';
  if (code === 486 || code === 600) return 'busy';
  if (code === 487) return 'cancelled';
  if (code === 408 || code === 480) return 'no-answer';
  return 'failed';
}

function splitUri(uri: string | undefined): { user: string; domain: string } {
  const m = /^[a-z]+:(?:([^@;?]*)@)?([^;?>:]*|\[[^\]]*\])/i.exec(uri ?? '');
  return { user: m?.[1] ?? '', domain: m?.[2] ?? '' };
}

export class CdrCorrelator {
  private readonly calls = new Map<string, OpenCall>();
  readonly stats: CdrStats = { open: 0, calls: 0, ended: 0, timedOut: 0, unmatchedBye: 0 };

  constructor(
    private readonly sink: CdrSink,
    /** a call open longer than this is closed as timed out */
    private readonly timeoutMs: number,
    /** most calls tracked at once; more are written but not closed by their BYE */
    private readonly maxOpen = 200_000,
  ) {}

  private key(callId: string, tag: string): string {
    return `${callId}\n${tag}`;
  }

  /**
   * The final reply to an initial INVITE (no To-tag in the request). `setup` is when the
   * INVITE arrived, `rec.time` when the final reply went out (the call's start on 2xx).
   */
  invite(rec: AccRecord, setup: Date): void {
    const caller = splitUri(rec.fromUri);
    const callee = splitUri(rec.toUri);
    const answered = rec.code >= 200 && rec.code < 300;
    const row: CdrRow = {
      sip_callid: rec.callId ?? '',
      from_tag: rec.fromTag ?? '',
      to_tag: rec.toTag ?? '',
      caller: rec.fromUri ?? '',
      callee: rec.toUri ?? '',
      caller_user: caller.user,
      caller_domain: caller.domain,
      callee_user: callee.user,
      callee_domain: callee.domain,
      i_uri: rec.iUri,
      src_ip: rec.srcIp,
      digest_username: rec.digest?.username ?? '',
      digest_realm: rec.digest?.realm ?? '',
      setup_time: setup,
      start_time: answered ? rec.time : null,
      end_time: answered ? null : rec.time,
      duration: 0,
      duration_ms: 0,
      sip_code: rec.code,
      sip_reason: rec.reason,
      disposition: disposition(rec.code),
      hangup: '',
    };
    this.sink.insert(row);
    this.stats.calls++;
    if (!answered || !rec.callId || !rec.fromTag) return;
    const k = this.key(rec.callId, rec.fromTag);
    if (this.calls.has(k) || this.calls.size >= this.maxOpen) return;
    this.calls.set(k, {
      callId: rec.callId,
      fromTag: rec.fromTag,
      toTag: rec.toTag ?? '',
      start: rec.time.getTime(),
      acked: false,
    });
    this.stats.open = this.calls.size;
  }

  /** A call still open in the table from before a restart: its BYE will close it. */
  restore(callId: string, fromTag: string, toTag: string, start: Date): void {
    const k = this.key(callId, fromTag);
    if (!callId || !fromTag || this.calls.has(k) || this.calls.size >= this.maxOpen) return;
    this.calls.set(k, { callId, fromTag, toTag, start: start.getTime(), acked: true });
    this.stats.open = this.calls.size;
  }

  /** The ACK of a 2xx: the caller confirmed the call. */
  ack(rec: AccRecord): void {
    if (!rec.callId || !rec.fromTag) return;
    const c = this.calls.get(this.key(rec.callId, rec.fromTag));
    if (c) c.acked = true;
  }

  /** A BYE passed the proxy: the side whose tag is in From hung up. */
  bye(rec: AccRecord): void {
    if (!rec.callId) return;
    let c: OpenCall | undefined;
    let who: Hangup = '';
    if (rec.fromTag && (c = this.calls.get(this.key(rec.callId, rec.fromTag)))) who = 'caller';
    else if (rec.toTag && (c = this.calls.get(this.key(rec.callId, rec.toTag)))) who = 'callee';
    if (!c) {
      this.stats.unmatchedBye++;
      return;
    }
    this.end(c, rec.time.getTime(), who);
    this.stats.ended++;
  }

  /** Close calls older than the timeout; `now` in ms since the epoch. */
  sweep(now: number): void {
    for (const c of this.calls.values()) {
      if (now - c.start >= this.timeoutMs) {
        this.end(c, now, 'timeout');
        this.stats.timedOut++;
      }
    }
  }

  private end(c: OpenCall, at: number, who: Hangup): void {
    this.calls.delete(this.key(c.callId, c.fromTag));
    this.stats.open = this.calls.size;
    const ms = Math.max(0, at - c.start);
    this.sink.update(
      { sip_callid: c.callId, from_tag: c.fromTag, to_tag: c.toTag },
      { end_time: new Date(at), duration: Math.round(ms / 1000), duration_ms: ms, hangup: who },
    );
  }
}
