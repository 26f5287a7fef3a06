/**
 * What the INVITE and non-INVITE client transactions share: the request as sent (kept as
 * bytes; parsed only to build an ACK or CANCEL), its destination, and the transaction user.
 */
import type { TimerHandle, TimerWheel } from '../core/timer.js';
import { parseMessage, type SipMessage } from '../sip/message.js';
import type { TmTimers } from './config.js';
import type { TxState } from './transaction-state.js';
import type { TxTransport } from './transport.js';

/** The transaction user: the proxy core's branch or a local UAC. */
export interface ClientTxUser {
  /** a reply the TU must see: provisional, every 2xx, the first non-2xx final */
  onReply(msg: SipMessage): void;
  /** no final reply in time: Timer B/F (fr_timer) or Timer C (fr_inv_timer) */
  onTimeout(): void;
  /** the request could not be sent (RFC 3261 §8.1.3.1: treated as a 503) */
  onTransportError(): void;
}

export abstract class ClientTransaction {
  abstract state: TxState;
  /** a provisional reply arrived */
  provisional = false;
  /** the final status the TU saw (0: none yet) */
  finalCode = 0;
  protected retrTimer: TimerHandle | undefined;
  protected frTimer: TimerHandle | undefined;
  protected waitTimer: TimerHandle | undefined;
  protected interval: number;
  private parsed: SipMessage | undefined;
  onTerminated: () => void = () => {};

  constructor(
    /** the request exactly as sent */
    readonly request: Buffer,
    protected readonly out: TxTransport,
    protected readonly timers: TimerWheel,
    protected readonly cfg: TmTimers,
    protected readonly user: ClientTxUser,
  ) {
    this.interval = cfg.t1;
  }

  abstract start(): void;
  abstract receiveReply(msg: SipMessage): void;

  get reliable(): boolean {
    return this.out.reliable;
  }

  /** the request we sent, parsed on first use */
  get sent(): SipMessage {
    if (!this.parsed) this.parsed = parseMessage(this.request, { datagram: true });
    return this.parsed;
  }

  protected transmit(data: Buffer, reportError = false): void {
    const fail = () => {
      if (reportError && this.state !== 'terminated') {
        this.terminate();
        this.user.onTransportError();
      }
    };
    let r: boolean | Promise<boolean>;
    try {
      r = this.out.send(data);
    } catch {
      r = false;
    }
    if (r instanceof Promise)
      r.then(
        (ok) => {
          if (!ok) fail();
        },
        () => fail(),
      );
    else if (!r) fail();
  }

  /**
   * The TU gave up on the request before any provisional reply (a CANCEL is owed but may not
   * be sent yet, §9.1): stop retransmitting, as SER does; fr_timer still ends the wait
   */
  stopRetransmissions(): void {
    this.retrTimer?.cancel();
    this.retrTimer = undefined;
  }

  /** stop every timer and leave the table */
  terminate(): void {
    if (this.state === 'terminated') return;
    this.retrTimer?.cancel();
    this.frTimer?.cancel();
    this.waitTimer?.cancel();
    this.state = 'terminated';
    this.onTerminated();
  }
}
