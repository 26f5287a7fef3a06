/** A fake core that captures replies, and REGISTER builders, for the usrloc/registrar tests. */
import type { CoreApi } from '../../src/core/api.js';
import { L_DBG, Logger, MemorySink } from '../../src/core/log.js';
import type { ParamValue } from '../../src/core/module.js';
import { MessageContext } from '../../src/core/msg-context.js';
import { ManualClock, TimerWheel } from '../../src/core/timer.js';
import registrar, { type RegistrarState } from '../../src/modules/registrar/index.js';
import usrloc, { type Usrloc } from '../../src/modules/usrloc/index.js';
import { buildReply } from '../../src/sip/reply.js';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { DST, SRC, load, type Loaded } from './helpers.js';

export interface RegCore {
  core: CoreApi;
  sink: MemorySink;
  sent: SipMessage[];
  clock: ManualClock;
  timers: TimerWheel;
}

export function regCore(): RegCore {
  const sink = new MemorySink();
  const log = new Logger(L_DBG, sink);
  const sent: SipMessage[] = [];
  const clock = new ManualClock(0);
  const timers = new TimerWheel(clock);
  const stats = new Map<string, () => Record<string, number>>();
  const core = {
    log,
    clock,
    timers,
    stats,
    addStats: (g: string, f: () => Record<string, number>) => stats.set(g, f),
    buildReply: (
      ctx: MessageContext,
      code: number,
      reason: string,
      extras?: { headers?: string[]; toTag?: string },
    ) => buildReply(ctx.msg, code, reason, { toTag: extras?.toTag ?? 'tag1', headers: extras?.headers }),
    sendToOrigin: (_m: SipMessage, _o: unknown, data: Buffer) => {
      sent.push(parseMessage(data, { datagram: true }));
      return true;
    },
  } as unknown as CoreApi;
  return { core, sink, sent, clock, timers };
}

export interface Reg {
  rc: RegCore;
  ul: Loaded<Usrloc>;
  reg: Loaded<RegistrarState>;
  /** wall clock of usrloc, ms; move it with `advance` */
  t: { now: number };
  advance(seconds: number): void;
  /** send a REGISTER through save(); returns the function's value and the reply */
  save(req: Buffer, table?: string): Promise<{ ret: number; reply: SipMessage | undefined }>;
  lookup(ruri: string, table?: string): Promise<{ ret: number; ctx: MessageContext }>;
}

/** the tests' wall clock starts now (whole seconds): instances loading from a database compare with it */
export const T0 = Math.floor(Date.now() / 1000) * 1000;

export async function setup(
  ulParams: Record<string, ParamValue> = {},
  regParams: Record<string, ParamValue> = {},
  rc: RegCore = regCore(),
): Promise<Reg> {
  const t = { now: T0 };
  const ul = await load(usrloc, rc.core, { db_mode: 0, ...ulParams });
  ul.state.nowMs = () => t.now;
  (ul.state as { startedAt: number }).startedAt = T0;
  const reg = await load(registrar, rc.core, { min_expires: 0, ...regParams });
  return {
    rc,
    ul,
    reg,
    t,
    advance(s) {
      t.now += s * 1000;
    },
    async save(req, table = 'location') {
      const before = rc.sent.length;
      const ret = await reg.call(ctx(req), 'save', table);
      return { ret, reply: rc.sent.length > before ? rc.sent[rc.sent.length - 1] : undefined };
    },
    async lookup(ruri, table = 'location') {
      const c = ctx(invite(ruri));
      const ret = await reg.call(c, 'lookup', table);
      return { ret, ctx: c };
    },
  };
}

export function ctx(buf: Buffer): MessageContext {
  return new MessageContext(parseMessage(buf, { datagram: true }), SRC, DST, 'request');
}

let n = 0;
export interface RegOpts {
  user?: string;
  domain?: string;
  to?: string;
  contacts?: string[];
  expires?: number | string;
  callId?: string;
  cseq?: number;
  extra?: string[];
}

/** A REGISTER as a phone sends it. `contacts` are Contact header values (one line each). */
export function register(o: RegOpts = {}): Buffer {
  n++;
  const user = o.user ?? 'alice';
  const domain = o.domain ?? 'iptel.org';
  const lines = [
    `REGISTER sip:${domain} SIP/2.0`,
    `Via: SIP/2.0/UDP 195.37.77.100:5040;branch=z9hG4bK-r${n}`,
    'Max-Forwards: 70',
    `From: <sip:${user}@${domain}>;tag=f${n}`,
    `To: ${o.to ?? `<sip:${user}@${domain}>`}`,
    `Call-ID: ${o.callId ?? 'reg-1@195.37.77.100'}`,
    `CSeq: ${o.cseq ?? 1} REGISTER`,
    'User-Agent: TestPhone/2.0',
  ];
  for (const c of o.contacts ?? []) lines.push(`Contact: ${c}`);
  if (o.expires !== undefined) lines.push(`Expires: ${o.expires}`);
  lines.push(...(o.extra ?? []), 'Content-Length: 0');
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

export function invite(ruri: string): Buffer {
  n++;
  const lines = [
    `INVITE ${ruri} SIP/2.0`,
    `Via: SIP/2.0/UDP 195.37.77.100:5040;branch=z9hG4bK-i${n}`,
    'Max-Forwards: 70',
    '"bob" <sip:bob@iptel.org>;tag=b1'.replace(/^/, 'From: '),
    `To: <${ruri}>`,
    `Call-ID: inv-${n}@195.37.77.100`,
    'CSeq: 1 INVITE',
    'Content-Length: 0',
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** Contact header values of a reply, e.g. ['<sip:a@1.2.3.4>;expires=600'] */
export function replyContacts(m: SipMessage | undefined): string[] {
  return m ? m.headers('contact') : [];
}
