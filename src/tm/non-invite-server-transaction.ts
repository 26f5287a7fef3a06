/** The non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8). */
import { ServerTransaction } from './server-transaction.js';
import type { TxState } from './transaction-state.js';

export class NonInviteServerTransaction extends ServerTransaction {
  // "The state machine is initialized in the 'Trying' state"
  state: TxState = 'trying';

  receiveRequest(): void {
    // Trying: "any further request retransmissions are discarded"; Proceeding and Completed:
    // "the most recent provisional response" / "the last response" goes out again
    if ((this.state === 'proceeding' || this.state === 'completed') && this.lastReply)
      this.transmit(this.lastReply);
  }

  sendReply(code: number, data: Buffer): void {
    if (this.state !== 'trying' && this.state !== 'proceeding') return;
    this.lastReply = data;
    this.lastCode = code;
    this.transmit(data);
    if (code < 200) {
      this.state = 'proceeding';
      return;
    }
    // "the server transaction MUST enter the 'Completed' state ... Timer J ... 64*T1 seconds
    // for unreliable transports, and zero seconds for reliable"; SER waits wt_timer instead
    this.state = 'completed';
    this.timer = this.timers.add(this.out.reliable ? 0 : this.cfg.wait, () => this.terminate());
  }
}
