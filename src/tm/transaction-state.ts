/**
 * The states of RFC 3261 §17, with RFC 6026's Accepted for an INVITE answered by a 2xx.
 * - calling: INVITE client, request sent, nothing heard yet
 * - trying: non-INVITE, request sent (client) or received (server), no reply yet
 * - proceeding: a provisional reply was received (client) or sent (server)
 * - completed: a non-2xx final reply was received / sent; retransmissions are absorbed
 * - confirmed: INVITE server, the ACK for our non-2xx final arrived
 * - accepted: INVITE, a 2xx went through; further 2xx from other forks still pass
 */
export type TxState =
  | 'calling'
  | 'trying'
  | 'proceeding'
  | 'completed'
  | 'confirmed'
  | 'accepted'
  | 'terminated';
