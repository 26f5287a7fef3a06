/**
 * What the tm module publishes to other modules (SER's `struct tm_binds` from `load_tm`):
 * callbacks on transaction events, so that acc, and later dialog-aware modules, see every
 * transaction without reaching into tm's internals.
 *
 * tm calls `core.provideApi('tm', api)` in its init(); a module loaded after tm fetches it with
 * `core.getApi<TmApi>('tm')` in its own init() and fails to load with a clear error when tm is
 * not loaded.
 */
import type { Endpoint, MsgContext } from '../core/context.js';
import type { SipMessage } from '../sip/message.js';

/** A transaction that has sent (or relayed) its final reply upstream: SER's TMCB_RESPONSE_OUT. */
export interface TmCompletion {
  /** the request as the server transaction received it (the UAS side) */
  readonly request: SipMessage;
  /**
   * Script flags of the transaction at completion: the flags the request route set before
   * t_relay()/t_newtran(), with the changes failure_route made (SER writes them back).
   */
  readonly flags: number;
  /** where the request came from */
  readonly src: Endpoint;
  /** Request-URI the request route left (after rewrites), as SER's acc reports it */
  readonly ruri: string;
  /** the final status sent upstream and its reason phrase */
  readonly code: number;
  readonly reason: string;
  /** the reply as relayed; undefined when tm generated it locally (t_reply, 408, 500 …) */
  readonly reply: SipMessage | undefined;
  /** the request's script context (AVPs, digest credentials the auth module left) */
  readonly ctx: MsgContext;
  /** clock time (ms) the transaction was created and completed */
  readonly createdAt: number;
  readonly completedAt: number;
}

/** An ACK for a 2xx relayed by t_relay() (end-to-end ACK): SER's TMCB_E2EACK_IN. */
export interface TmE2eAck {
  /** the ACK */
  readonly request: SipMessage;
  /** the ACK's own script flags when t_relay() forwarded it */
  readonly flags: number;
  readonly src: Endpoint;
  readonly ruri: string;
  readonly ctx: MsgContext;
  /**
   * Flags of the INVITE transaction the ACK belongs to (matched by Call-ID, From-tag and CSeq
   * number while that transaction is still kept, wt_timer after its 2xx); undefined otherwise
   */
  readonly inviteFlags?: number;
}

export interface TmApi {
  /** every transaction's completion, once (retransmissions of the final reply do not repeat it) */
  onCompleted(fn: (ev: TmCompletion) => void): void;
  /** every ACK to a 2xx that t_relay() forwards */
  onE2eAck(fn: (ev: TmE2eAck) => void): void;
  /** is the request of this context already in a transaction (t_newtran or t_relay ran) */
  hasTransaction(ctx: MsgContext): boolean;
}
