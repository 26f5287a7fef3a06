/** What a transaction needs of the transport layer: one destination, bytes out. */
export interface TxTransport {
  /** false, or a promise of false, when the message could not be handed to the transport */
  send(data: Buffer): boolean | Promise<boolean>;
  /** TCP/TLS: the transport retransmits, so the transaction runs no retransmission timers (§17.1.1.2) */
  readonly reliable: boolean;
}
