/**
 * Transaction matching (RFC 3261 §17.2.3 for requests, §17.1.3 for replies). A request
 * with an RFC 3261 branch (magic cookie z9hG4bK) matches by branch, sent-by and method
 * (ACK counts as INVITE); an RFC 2543 request by Request-URI, From-tag, Call-ID, CSeq number
 * and top Via, which an ACK for a non-2xx reply shares with its INVITE.
 */
import type { SipMessage } from '../sip/message.js';

const MAGIC = 'z9hG4bK';

/** Key of the server transaction a request belongs to, as if its method were `method`. */
export function serverKey(msg: SipMessage, method = msg.method === 'ACK' ? 'INVITE' : msg.method): string {
  const v = msg.topVia;
  if (!v) return '';
  const sentBy = `${v.host.toLowerCase()}:${v.port ?? ''}`;
  const b = v.branch;
  if (b?.startsWith(MAGIC)) return `${b}|${sentBy}|${method}`;
  // RFC 2543: the To-tag is left out because the ACK has one the INVITE had not
  return `2543|${msg.ruri}|${msg.fromTag ?? ''}|${msg.callId}|${msg.cseq.seq}|${sentBy}|${b ?? ''}|${method}`;
}

/** Key of the client transaction a reply belongs to: our branch and the CSeq method (§17.1.3). */
export function clientKeyOfReply(msg: SipMessage): string | undefined {
  const b = msg.topVia?.branch;
  if (b === undefined) return undefined;
  return `${b}|${msg.cseq.method}`;
}

export function clientKey(branch: string, method: string): string {
  return `${branch}|${method}`;
}

/** What an INVITE and the ACK for its 2xx (which has a branch of its own) share. */
export function e2eKey(msg: SipMessage): string {
  return `${msg.callId}|${msg.fromTag ?? ''}|${msg.cseq.seq}`;
}
