/** Via handling on receipt (RFC 3261 §18.2.1, RFC 3581) and reply routing (§18.2.2). */
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
 * Four 32-bit multiplicative lanes over the parts, not md5: it needs to be stable and spread,
 * not secret, and crypto's md5 cost about 3 % of a proxied call (three per call).
 */
export function loopHash(msg: SipMessage, ruri: string, digits = 32): string {
  const vias = msg.vias;
  const v = vias[vias.length - 1];
  const h = LANES_INIT.slice();
  // only the lanes the caller keeps are computed (tm keeps 16 digits, sl 20)
  const lanes = Math.ceil(digits / 8);
  const wide = lanes > 2;
  if (v) {
    mixLanes(h, v.branch ?? '', wide);
    mixLanes(h, v.host, wide);
    mixLanes(h, v.port === undefined ? '' : String(v.port), wide);
  }
  mixLanes(h, msg.callId, wide);
  mixLanes(h, msg.fromTag ?? '', wide);
  mixLanes(h, String(msg.cseq.seq), wide);
  mixLanes(h, msg.toTag ?? '', wide);
  mixLanes(h, ruri, wide);
  let out = '';
  for (let i = 0; i < lanes; i++) out += hex8(fmix(h[i]));
  return out.length === digits ? out : out.slice(0, digits);
}

const LANES_INIT = [0x811c9dc5, 0x9e3779b9, 0x7feb352d, 0x846ca68b];

/** `wide`: lanes 3 and 4 too (the first two are the same either way) */
function mixLanes(h: number[], s: string, wide: boolean): void {
  let a = h[0];
  let b = h[1];
  let c = h[2];
  let d = h[3];
  // each part ends with a separator, so "ab"+"c" and "a"+"bc" differ
  for (let i = 0; i <= s.length; i++) {
    const x = i < s.length ? s.charCodeAt(i) : 0x1f;
    a = Math.imul(a ^ x, 0x01000193);
    b = Math.imul(b ^ x, 0x5bd1e995);
    b ^= b >>> 15;
    if (wide) {
      c = Math.imul(c + x, 0x85ebca6b);
      c ^= c >>> 13;
      d = Math.imul(d ^ x, 0xc2b2ae35);
      d ^= d >>> 16;
    }
  }
  h[0] = a;
  h[1] = b;
  h[2] = c;
  h[3] = d;
}

/** murmur3's finalizer: every input bit reaches every output bit */
function fmix(x0: number): number {
  let x = x0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** two hex digits per byte value: Number#toString(16) is a call into the runtime per lane */
const HEX2: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex8(x: number): string {
  return HEX2[x >>> 24] + HEX2[(x >>> 16) & 255] + HEX2[(x >>> 8) & 255] + HEX2[x & 255];
}

/** The SIP URI of an explicit destination (forward(host, port), t_relay_to_*), for RFC 3263 resolution. */
export function destinationUri(dest: { host: string; port?: number; proto?: Proto }): string {
  const h = dest.host.includes(':') && !dest.host.startsWith('[') ? `[${dest.host}]` : dest.host;
  return `sip:${h}${dest.port ? `:${dest.port}` : ''}${dest.proto ? `;transport=${dest.proto}` : ''}`;
}
