/** Shared by the registrar integration tests: the script, REGISTER builder, request/reply helper. */
import type { SipMessage } from '../../src/sip/message.js';
import { request, type UdpPeer } from './harness.js';

export const REGISTRAR_CFG = (extra = '') => `
loadmodule "sl.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("registrar", "min_expires", 60)
${extra}
route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); break; };
  if (method=="REGISTER") { save("location"); break; };
  if (!lookup("location")) { sl_send_reply("404", "Not Found"); break; };
  if (method=="MESSAGE") { sl_send_reply("302", "Moved Temporarily"); break; };
  forward(uri:host, uri:port);
}`;

/** REGISTER for `user` from `phone`, To = the AOR on the server. */
export function reg(
  phone: UdpPeer,
  user: string,
  extra: string[] = [],
  contact = `<sip:${user}@127.0.0.1:${phone.port}>`,
): string {
  return request('REGISTER', 'sip:127.0.0.1', { ip: '127.0.0.1', port: phone.port }, [
    `To: <sip:${user}@127.0.0.1>`,
    `From: <sip:${user}@127.0.0.1>;tag=r1`,
    ...(contact ? [`Contact: ${contact}`] : ['Contact: -']),
    ...extra,
  ]);
}

export async function replyTo(peer: UdpPeer, text: string, port: number): Promise<SipMessage> {
  peer.send(text, port);
  return peer.nextMsg(3000);
}
