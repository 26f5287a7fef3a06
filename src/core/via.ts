/** Via handling on receipt (RFC 3261 §18.2.1, RFC 3581) and reply routing (§18.2.2). */
import { hash } from 'node:crypto';
import type { Via } from '../sip/headers.js';
import type { SipMessage } from '../sip/message.js';
import { normHost } from './myself.js';
import type { Proto } from './context.js';

/**
 * The top Via with `received` (when the sent-by host is not the source address) and,
 * when the client asked for it (`rport` without value) or the script forced it,
 * `rport=<source port>`. Returns undefined when nothing has to change.
 */
export function viaWithReceived(
  via: Via,
  srcIp: string,
  srcPort: number,
  forceRport: boolean,
): string | undefined {
  const needRport = (via.rport && via.rportValue === undefined) || (forceRport && via.rportValue !== srcPort);
  const sameHost = via.host === srcIp || normHost(via.host) === normHost(srcIp);
  const needReceived = (!sameHost || needRport) && via.received !== srcIp;
  if (!needRport && !needReceived) return undefined;
  // rebuild the parameter list: drop old received/rport, keep the rest as written
  const raw = via.raw;
  const semi = raw.indexOf(';');
  const head = semi < 0 ? raw.trimEnd() : raw.slice(0, semi).trimEnd();
  let params = '';
  for (const p of via.params) {
    const k = p.name.toLowerCase();
    if (k === 'received' || k === 'rport') continue;
    params += p.value === undefined ? `;${p.name}` : `;${p.name}=${p.value}`;
  }
  if (needReceived || needRport) params += `;received=${srcIp}`;
  if (needRport || via.rport) params += `;rport=${needRport ? srcPort : via.rportValue}`;
  return head + params;
}

/** Replace the topmost Via value of a message. */
export function replaceTopVia(msg: SipMessage, value: string): void {
  msg.removeTopVia();
  msg.addHeader('Via', value, 'top');
}

/** Default port of a Via transport. */
export function viaDefaultPort(transport: string): number {
  const t = transport.toLowerCase();
  return t === 'tls' || t === 'wss' ? 5061 : 5060;
}

/**
 * What a loop leaves unchanged (RFC 3261 §16.3 step 4, §16.6 step 8), hashed: the originator's
 * (bottom) Via, the dialog identifiers and the outgoing Request-URI. Our branches start with
 * it (stateless forwarding and tm alike), so a request that comes back carrying one of our
 * Vias with the same hash is a loop, and one with a new Request-URI is a spiral. 32 hex digits.
 */
export function loopHash(msg: SipMessage, ruri: string): string {
  const vias = msg.vias;
  const v = vias[vias.length - 1];
  // the parts back to back, as successive updates of one hash would take them
  const head = v ? `${v.branch ?? ''}${v.host}${v.port ?? ''}` : '';
  return hash(
    'md5',
    `${head}${msg.callId}${msg.fromTag ?? ''}${msg.cseq.seq}${msg.toTag ?? ''}${ruri}`,
    'hex',
  );
}

/** The SIP URI of an explicit destination (forward(host, port), t_relay_to_*), for RFC 3263 resolution. */
export function destinationUri(dest: { host: string; port?: number; proto?: Proto }): string {
  const h = dest.host.includes(':') && !dest.host.startsWith('[') ? `[${dest.host}]` : dest.host;
  return `sip:${h}${dest.port ? `:${dest.port}` : ''}${dest.proto ? `;transport=${dest.proto}` : ''}`;
}
