/** The non-INVITE client transaction, RFC 3261 §17.1.2 (Figure 6); SER's fr_timer is Timer F. */
import type { SipMessage } from '../sip/message.js';
import { ClientTransaction } from './client-transaction.js';
import type { TxState } from './transaction-state.js';

export class NonInviteClientTransaction extends ClientTransaction {
  state: TxState = 'trying';

  start(): void {
    // "The 'Trying' state is entered when the TU initiates a new client transaction with a
    // request ... the request MUST be passed to the transport layer for transmission"
    this.transmit(this.request, true);
    // "If an unreliable transport is in use, the client transaction MUST set timer E to fire in T1 seconds"
    if (!this.out.reliable) this.armE();
    this.frTimer = this.timers.add(this.cfg.fr, () => {
      if (this.state !== 'trying' && this.state !== 'proceeding') return;
      // "If Timer F fires while the client transaction is still in the 'Trying' state, the
      // client transaction SHOULD inform the TU about the timeout, and then it SHOULD enter
      // the 'Terminated' state"; likewise in 'Proceeding'
      this.terminate();
      this.user.onTimeout();
    });
  }

  private armE(): void {
    this.retrTimer = this.timers.add(this.interval, () => {
      if (this.state === 'trying') {
        // "it MUST reset timer E with a value of MIN(2*T1, T2)" and so on doubling up to T2
        this.transmit(this.request);
        this.interval = Math.min(2 * this.interval, this.cfg.t2);
        this.armE();
      } else if (this.state === 'proceeding') {
        // "If Timer E fires while in the 'Proceeding' state, the request MUST be passed to the
        // transport layer for retransmission, and Timer E MUST be reset with a value of T2 seconds"
        this.transmit(this.request);
        this.interval = this.cfg.t2;
        this.armE();
      }
    });
  }

  receiveReply(msg: SipMessage): void {
    if (this.state !== 'trying' && this.state !== 'proceeding') return; // Completed absorbs retransmissions
    const code = msg.status;
    if (code < 200) {
      // "If a provisional response is received while in the 'Trying' state, the response MUST
      // be passed to the TU, and then the client transaction SHOULD move to the 'Proceeding' state"
      this.state = 'proceeding';
      this.provisional = true;
      this.user.onReply(msg);
      return;
    }
    // "If a final response (status codes 200-699) is received while in the 'Trying' [or
    // 'Proceeding'] state, the response MUST be passed to the TU, and the client transaction
    // MUST transition to the 'Completed' state"; Timer K: T4 unreliable, zero reliable
    this.retrTimer?.cancel();
    this.frTimer?.cancel();
    this.finalCode = code;
    this.state = 'completed';
    this.waitTimer = this.timers.add(this.out.reliable ? 0 : this.cfg.t4, () => this.terminate());
    this.user.onReply(msg);
  }
}
