/**
 * The INVITE client transaction, RFC 3261 §17.1.1 (Figure 5) with RFC 6026's Accepted state.
 * SER's fr_timer stands in for Timer B, and fr_inv_timer is the proxy's Timer C (§16.8),
 * armed once a provisional reply arrived.
 */
import type { SipMessage } from '../sip/message.js';
import { ClientTransaction } from './client-transaction.js';
import { buildAck } from './hop-by-hop.js';
import type { TxState } from './transaction-state.js';

export class InviteClientTransaction extends ClientTransaction {
  state: TxState = 'calling';
  /** Timer C fired: the TU gave up on this branch and cancelled it */
  timedOut = false;
  private ack: Buffer | undefined;

  start(): void {
    // "The initial state, 'calling', MUST be entered when the TU initiates a new client
    // transaction with an INVITE request. The client transaction MUST pass the request to the transport"
    this.transmit(this.request, true);
    // "If an unreliable transport is being used, the client transaction MUST start timer A with a value of T1"
    if (!this.out.reliable) this.armA();
    // Timer B (SER: fr_timer) for every transport
    this.frTimer = this.timers.add(this.cfg.fr, () => {
      if (this.state !== 'calling') return;
      // "If the client transaction is still in the 'Calling' state when timer B fires, the
      // client transaction SHOULD inform the TU that a timeout has occurred"
      this.terminate();
      this.user.onTimeout();
    });
  }

  private armA(): void {
    this.retrTimer = this.timers.add(this.interval, () => {
      if (this.state !== 'calling' || !this.retrTimer) return;
      // "When timer A fires, the client transaction MUST retransmit the request ... and reset the timer with a value of 2*T1"
      this.transmit(this.request);
      this.interval *= 2;
      this.armA();
    });
  }

  /** Timer C (§16.8): (re)started by provisional replies */
  private armC(): void {
    this.frTimer?.cancel();
    this.frTimer = this.timers.add(this.cfg.frInv, () => {
      if (this.state !== 'proceeding') return;
      this.timedOut = true;
      // the TU cancels the branch; keep listening for its 487 to ACK it, at most 64*T1
      this.frTimer = this.timers.add(64 * this.cfg.t1, () => this.terminate());
      this.user.onTimeout();
    });
  }

  receiveReply(msg: SipMessage): void {
    const code = msg.status;
    switch (this.state) {
      case 'calling':
      case 'proceeding':
        if (code < 200) {
          // "If the client transaction receives a provisional response while in the 'Calling'
          // state, it transitions to the 'Proceeding' state"; §16.8: Timer C is reset by any
          // provisional response above 100
          this.retrTimer?.cancel();
          const first = this.state === 'calling';
          this.state = 'proceeding';
          this.provisional = true;
          if ((first || code > 100) && !this.timedOut) this.armC();
          this.user.onReply(msg);
          return;
        }
        this.retrTimer?.cancel();
        this.frTimer?.cancel();
        this.finalCode = code;
        if (code < 300) {
          // RFC 6026 §8.4: "a 2xx response MUST cause the client transaction to enter the 'Accepted' state" (Timer M)
          this.state = 'accepted';
          this.waitTimer = this.timers.add(this.cfg.wait, () => this.terminate());
          this.user.onReply(msg);
          return;
        }
        // "When in either the 'Calling' or 'Proceeding' states, reception of a response with
        // status code from 300-699 MUST cause the client transaction to transition to
        // 'Completed'. The client transaction MUST pass the received response up to the TU,
        // and the client transaction MUST generate an ACK request"; Timer D (SER: wt_timer), 0 if reliable
        this.state = 'completed';
        this.sendAck(msg);
        this.waitTimer = this.timers.add(this.out.reliable ? 0 : this.cfg.wait, () => this.terminate());
        this.user.onReply(msg);
        return;
      case 'accepted':
        // RFC 6026: "any 2xx responses that match this client transaction ... MUST be passed up to the TU"
        if (code >= 200 && code < 300) this.user.onReply(msg);
        return;
      case 'completed':
        // "Any retransmissions of the final response that are received while in the
        // 'Completed' state MUST cause the ACK to be re-passed to the transport layer"
        if (code >= 300 && this.ack) this.transmit(this.ack);
        return;
      default:
        return;
    }
  }

  private sendAck(reply: SipMessage): void {
    try {
      this.ack = buildAck(this.sent, reply);
    } catch {
      return; // our own request is always parsable; a reply with a broken To gets no ACK
    }
    this.transmit(this.ack);
  }
}
