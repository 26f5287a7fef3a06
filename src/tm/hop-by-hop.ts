/**
 * Requests a transaction builds itself from the request it sent: the ACK for a non-2xx
 * final reply (RFC 3261 §17.1.1.3) and the CANCEL of a pending INVITE (§9.1). Both carry
 * the request's top Via (so they reach the same hop and match its transaction there), its
 * Request-URI, Call-ID, From, CSeq number and Route set.
 */
import type { SipMessage } from '../sip/message.js';

function common(method: string, req: SipMessage, to: string): string {
  const lines = [`${method} ${req.requestUri} SIP/2.0`];
  const via = req.headers('via')[0];
  // only the top via-parm: ours
  lines.push(`Via: ${req.vias[0]?.raw ?? via}`);
  for (const r of req.headers('route')) lines.push(`Route: ${r}`);
  lines.push('Max-Forwards: 70');
  lines.push(`From: ${req.header('from') ?? ''}`);
  lines.push(`To: ${to}`);
  lines.push(`Call-ID: ${req.callId}`);
  lines.push(`CSeq: ${req.cseq.seq} ${method}`);
  lines.push('Content-Length: 0');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** "The To header field in the ACK MUST equal the To header field in the response being acknowledged." */
export function buildAck(req: SipMessage, reply: SipMessage): Buffer {
  return Buffer.from(common('ACK', req, reply.header('to') ?? req.header('to') ?? ''), 'latin1');
}

/** "The Request-URI, Call-ID, To, the numeric part of CSeq, and From ... MUST be identical to those of the request being cancelled." */
export function buildCancel(req: SipMessage): Buffer {
  return Buffer.from(common('CANCEL', req, req.header('to') ?? ''), 'latin1');
}
