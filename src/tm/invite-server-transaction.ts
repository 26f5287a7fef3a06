/** The INVITE server transaction, RFC 3261 §17.2.1 (Figure 7) with RFC 6026's Accepted state. */
import type { TimerWheel } from '../core/timer.js';
import type { TmTimers } from './config.js';
import { ServerTransaction } from './server-transaction.js';
import type { TxState } from './transaction-state.js';
import type { TxTransport } from './transport.js';

export class InviteServerTransaction extends ServerTransaction {
  // "When a server transaction is constructed for a request, it enters the 'Proceeding' state."
  state: TxState = 'proceeding';
  private interval: number;

  constructor(out: TxTransport, timers: TimerWheel, cfg: TmTimers) {
    super(out, timers, cfg);
    this.interval = cfg.t1;
  }

  receiveRequest(): void {
    switch (this.state) {
      case 'proceeding':
        // "If a request retransmission is received while in the 'Proceeding' state, the most
        // recent provisional response that was received from the TU MUST be passed to the transport"
        if (this.lastReply) this.transmit(this.lastReply);
        return;
      case 'completed':
        // "while in the 'Completed' state ... the server SHOULD pass the response to the transport"
        if (this.lastReply) this.transmit(this.lastReply);
        return;
      case 'accepted':
        // RFC 6026 absorbs it; SER re-sends the 2xx it keeps, which helps a client that lost it
        if (this.lastReply) this.transmit(this.lastReply);
        return;
      default:
        // confirmed: "any retransmissions of the ACK ... are absorbed"; terminated: nothing left
        return;
    }
  }

  sendReply(code: number, data: Buffer): void {
    if (this.state === 'accepted' && code >= 200 && code < 300) {
      // RFC 6026 §7.1: every 2xx the TU passes in Accepted goes to the transport
      this.transmit(data);
      return;
    }
    if (this.state !== 'proceeding') return;
    this.lastReply = data;
    this.lastCode = code;
    this.transmit(data);
    if (code < 200) return;
    if (code < 300) {
      // RFC 6026: "the server transaction MUST transition to the 'Accepted' state" and starts Timer L
      this.state = 'accepted';
      this.timer = this.timers.add(Math.max(this.cfg.wait, 0), () => this.terminate());
      return;
    }
    // "If ... a response with status code from 300 to 699, the server transaction MUST
    // transition to the 'Completed' state"; Timer G only for unreliable transports; Timer H always
    this.state = 'completed';
    if (!this.out.reliable) this.armG();
    this.timer = this.timers.add(64 * this.cfg.t1, () => {
      // Timer H: "the server transaction MUST transition to the 'Terminated' state" (no ACK came)
      this.terminate();
    });
  }

  private armG(): void {
    this.retrTimer = this.timers.add(this.interval, () => {
      if (this.state !== 'completed' || !this.lastReply) return;
      // Timer G: "the response is passed to the transport layer once more ... reset with a
      // value of MIN(2*T1, T2)"
      this.transmit(this.lastReply);
      this.interval = Math.min(2 * this.interval, this.cfg.t2);
      this.armG();
    });
  }

  /** The ACK for our non-2xx final reply; true when this transaction absorbed it. */
  receiveAck(): boolean {
    if (this.state === 'confirmed') return true; // ACK retransmissions are absorbed
    if (this.state !== 'completed') return false;
    // "If an ACK is received while the server transaction is in the 'Completed' state, the
    // server transaction MUST transition to the 'Confirmed' state" and sets Timer I (T4, 0 if reliable)
    this.state = 'confirmed';
    this.retrTimer?.cancel();
    this.timer?.cancel();
    this.timer = this.timers.add(this.out.reliable ? 0 : this.cfg.t4, () => this.terminate());
    return true;
  }
}
