/** Helpers of the tm integration tests: a UAS that answers what the proxy relays. */
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import type { UdpPeer } from './harness.js';

/** A reply to `req` as a UAS builds it: Vias, From, Call-ID, CSeq copied, To with our tag. */
export function replyFor(
  req: SipMessage,
  code: number,
  reason: string,
  extra: string[] = [],
  toTag = 'uas1',
): string {
  const lines = [`SIP/2.0 ${code} ${reason}`];
  for (const v of req.headers('via')) lines.push(`Via: ${v}`);
  lines.push(`From: ${req.header('from')}`);
  const to = req.header('to') ?? '';
  lines.push(`To: ${/;\s*tag=/i.test(to) || code === 100 ? to : `${to};tag=${toTag}`}`);
  lines.push(`Call-ID: ${req.callId}`);
  lines.push(`CSeq: ${req.header('cseq')}`);
  lines.push(...extra);
  lines.push('Content-Length: 0');
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Next message the peer receives that satisfies `pred` (others are skipped), or throws. */
export async function nextWhere(
  peer: UdpPeer,
  pred: (m: SipMessage) => boolean,
  ms = 3000,
  /** messages looked at, at most (a flood's replies need more) */
  max = 50,
): Promise<SipMessage> {
  const end = Date.now() + ms;
  for (let i = 0; i < max; i++) {
    const left = end - Date.now();
    if (left <= 0) break;
    const b = await peer.next(left);
    if (!b) break;
    const m = parseMessage(b, { datagram: true });
    if (pred(m)) return m;
  }
  throw new Error(`no matching message within ${ms} ms`);
}

export const isReq = (method: string) => (m: SipMessage) => m.isRequest && m.method === method;
export const isStatus = (code: number) => (m: SipMessage) => !m.isRequest && m.status === code;

/** Collect everything the peer receives for `ms`. */
export async function drain(peer: UdpPeer, ms: number, max = 200): Promise<SipMessage[]> {
  const out: SipMessage[] = [];
  const end = Date.now() + ms;
  for (let i = 0; i < max; i++) {
    const left = end - Date.now();
    if (left <= 0) break;
    const b = await peer.next(left);
    if (!b) break;
    out.push(parseMessage(b, { datagram: true }));
  }
  return out;
}
