/**
 * What the INVITE and non-INVITE server transactions share: the request, the way back to
 * the client, the last reply (re-sent on request retransmissions) and the end of life.
 */
import type { TimerHandle, TimerWheel } from '../core/timer.js';
import type { TmTimers } from './config.js';
import type { TxState } from './transaction-state.js';
import type { TxTransport } from './transport.js';

export abstract class ServerTransaction {
  abstract state: TxState;
  /** the last reply sent, re-sent when the request is retransmitted */
  lastReply: Buffer | undefined;
  lastCode = 0;
  protected timer: TimerHandle | undefined;
  protected retrTimer: TimerHandle | undefined;
  onTerminated: () => void = () => {};

  constructor(
    protected readonly out: TxTransport,
    protected readonly timers: TimerWheel,
    protected readonly cfg: TmTimers,
  ) {}

  /** a retransmission of the request arrived */
  abstract receiveRequest(): void;
  /** the TU (proxy core or script) sends a reply */
  abstract sendReply(code: number, data: Buffer): void;

  /** a final reply went out */
  get isFinal(): boolean {
    return this.lastCode >= 200;
  }

  protected transmit(data: Buffer): void {
    const r = this.out.send(data);
    if (r instanceof Promise) r.catch(() => {});
  }

  /** leave the table now (also used when the TU gives the transaction up) */
  terminate(): void {
    if (this.state === 'terminated') return;
    this.timer?.cancel();
    this.retrTimer?.cancel();
    this.state = 'terminated';
    this.onTerminated();
  }
}
