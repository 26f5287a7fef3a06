/**
 * FIFO t_uac_dlg (seed 003 Example 4-10): method, Request-URI, outbound proxy ('.' for none),
 * header lines up to a '.', an optional body up to a '.'. The request goes out as a local
 * client transaction; the answer is its final reply: `<code> <reason>` and the reply's header lines.
 */
import type { MgmtCommand, MgmtReply } from '../../core/module.js';
import { parseUri } from '../../sip/uri.js';
import type { TmState } from './index.js';

const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const HEADER = /^([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:/;

function bad(reason: string): MgmtReply {
  return { code: 400, reason: `t_uac_dlg: ${reason}` };
}

export const uacDlgCommand: MgmtCommand<TmState> = {
  help: 'send a request as a local transaction: method, R-URI, outbound URI or ".", headers ending with ".", optional body ending with "."',
  async run(st, args) {
    if (args.length < 4)
      return bad('method, request URI, outbound URI and a header list ending with "." expected');
    const [method, ruri, outbound] = args;
    if (!TOKEN.test(method)) return bad(`invalid method '${method}'`);
    for (const [what, u] of [
      ['request URI', ruri],
      ['outbound URI', outbound],
    ] as const) {
      if (what === 'outbound URI' && u === '.') continue;
      try {
        const p = parseUri(u);
        if (p.kind !== 'sip' && p.kind !== 'sips') return bad(`${what} '${u}' is not a SIP URI`);
      } catch {
        return bad(`invalid ${what} '${u}'`);
      }
    }
    const headers: string[] = [];
    let i = 3;
    for (; i < args.length && args[i] !== '.'; i++) {
      const l = args[i];
      if (l.trim() === '') continue;
      if (!HEADER.test(l)) return bad(`invalid header line '${l}'`);
      headers.push(l);
    }
    if (i >= args.length) return bad('the header list must end with a line "."');
    const bodyLines: string[] = [];
    for (i++; i < args.length && args[i] !== '.'; i++) bodyLines.push(args[i]);
    const body = bodyLines.length > 0 ? `${bodyLines.join('\r\n')}\r\n` : undefined;
    const names = headers.map((h) => HEADER.exec(h)![1].toLowerCase());
    if (!names.some((n) => n === 'from' || n === 'f')) return bad('From header field missing');
    if (!names.some((n) => n === 'to' || n === 't')) return bad('To header field missing');
    if (body !== undefined && !names.some((n) => n === 'content-type' || n === 'c'))
      return bad('Content-Type is mandatory with a body');
    const r = await st.tm.uac({
      method,
      ruri,
      outbound: outbound === '.' ? undefined : outbound,
      headers,
      body,
    });
    const replyHeaders = r.reply
      ? r.reply
          .headerFields()
          .map((f) => `${f.name}: ${f.value}`)
          .join('\n')
      : undefined;
    return {
      code: r.code,
      reason: r.reason,
      body: replyHeaders,
      data: { code: r.code, reason: r.reason, headers: replyHeaders?.split('\n') ?? [] },
    };
  },
};
