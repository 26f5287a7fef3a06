/** Shared by the auth integration tests: a digest-answering UA, the subscriber DB, scripts. */
import { createSchema, openDb } from '../../src/db/index.js';
import { credentials } from '../../src/cli/serctl.js';
import { digestResponse } from '../../src/sip/digest.js';
import type { SipMessage } from '../../src/sip/message.js';
import { request, type UdpPeer } from './harness.js';

export const REALM = 'test.realm';

/** subscribers as serctl add stores them: no clear-text password, HA1 and HA1b */
export async function makeSubscribers(
  url: string,
  users: Record<string, string>,
  realm = REALM,
  opts: { plain?: boolean; rpid?: Record<string, string> } = {},
): Promise<void> {
  const db = await openDb(url);
  try {
    await createSchema(db);
    for (const [u, pw] of Object.entries(users)) {
      const c = credentials(u, realm, realm, pw);
      await db.delete('subscriber', { username: u, domain: realm });
      await db.insert('subscriber', {
        username: u,
        domain: realm,
        password: opts.plain ? pw : '',
        ha1: c.ha1,
        ha1b: c.ha1b,
        rpid: opts.rpid?.[u] ?? null,
        email_address: `${u}@${realm}`,
      });
    }
  } finally {
    await db.close();
  }
}

export const AUTH_CFG = (dbUrl: string, extra = '') => `
loadmodule "sl.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "uri.so"
modparam("auth", "secret", "alsdkhglaksdhfkloiwr")
modparam("auth_db", "db_url", "${dbUrl}")
${extra}
route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); break; };
  if (method=="REGISTER") {
    if (!www_authorize("${REALM}", "subscriber")) { www_challenge("${REALM}", "1"); break; };
    if (!check_to()) { sl_send_reply("403", "Forbidden: To does not match the credentials"); break; };
    consume_credentials();
    save("location");
    break;
  };
  if (!proxy_authorize("", "subscriber")) { proxy_challenge("", "0"); break; };
  if (!check_from()) { sl_send_reply("403", "Forbidden: From does not match the credentials"); break; };
  sl_send_reply("488", "Authenticated");
}`;

export interface Answer {
  user: string;
  password: string;
  /** the challenge (401/407) to answer */
  challenge: SipMessage;
  method: string;
  uri: string;
  nc?: number;
  /** answer with this qop (default: the first offered, none when none) */
  qop?: string;
  body?: string;
}

/** The Authorization / Proxy-Authorization line answering a challenge. */
export function answer(a: Answer): string {
  const proxy = a.challenge.status === 407;
  const ch = (proxy ? a.challenge.proxyAuthenticate : a.challenge.wwwAuthenticate)[0]!;
  const qop = a.qop ?? ch.qop[0];
  const nc = qop ? (a.nc ?? 1).toString(16).padStart(8, '0') : undefined;
  const cnonce = qop ? 'c0ffee42' : undefined;
  const algorithm = ch.algorithm ?? 'MD5';
  const response = digestResponse({
    algorithm,
    username: a.user,
    realm: ch.realm!,
    password: a.password,
    method: a.method,
    uri: a.uri,
    nonce: ch.nonce!,
    qop,
    nc,
    cnonce,
    body: a.body,
  });
  let v = `Digest username="${a.user}", realm="${ch.realm}", nonce="${ch.nonce}", uri="${a.uri}", response="${response}", algorithm=${algorithm}`;
  if (qop) v += `, qop=${qop}, nc=${nc}, cnonce="${cnonce}"`;
  return `${proxy ? 'Proxy-Authorization' : 'Authorization'}: ${v}`;
}

/** REGISTER from `phone` for the AOR `toUser`, with extra header lines. */
export function register(
  phone: UdpPeer,
  toUser: string,
  extra: string[] = [],
  cseq = 1,
  callId = 'reg',
): string {
  return request('REGISTER', `sip:${REALM}`, { ip: '127.0.0.1', port: phone.port }, [
    `To: <sip:${toUser}@${REALM}>`,
    `From: <sip:${toUser}@${REALM}>;tag=r${cseq}`,
    `Contact: <sip:${toUser}@127.0.0.1:${phone.port}>`,
    `Call-ID: ${callId}-${phone.port}@it`,
    `CSeq: ${cseq} REGISTER`,
    ...extra,
  ]);
}

export async function exchange(peer: UdpPeer, text: string, port: number): Promise<SipMessage> {
  peer.send(text, port);
  return peer.nextMsg(4000);
}
