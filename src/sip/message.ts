/**
 * Placeholder: the shape of a parsed SIP message that the other layers rely on.
 * The message layer replaces this file with the real implementation.
 */
export interface SipMessage {
  readonly isRequest: boolean;
  /** request method, or the CSeq method of a reply */
  readonly method: string;
  /** status code of a reply, 0 for a request */
  readonly status: number;
  readonly reason: string;
  /** Request-URI as received ('' for replies) */
  readonly ruri: string;
  /** the bytes as received */
  readonly raw: Buffer;
}
