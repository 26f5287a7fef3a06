/**
 * sl — the stateless UA server: replies statelessly ("sends and forgets"), lists the
 * destination set in the Contact of 3xx replies, and absorbs ACKs to its own replies.
 */
import { randomBytes } from 'node:crypto';
import type { CoreApi } from '../../core/api.js';
import type { MsgContext } from '../../core/context.js';
import { L_ERR } from '../../core/log.js';
import { defineModule } from '../../core/module.js';
import * as A from '../../script/args.js';
import { requestTag } from '../../sip/reply.js';

/** reply codes SER's sl_stats reports one by one (the rest are counted per class) */
const LISTED = [200, 202, 300, 301, 302, 400, 401, 403, 404, 407, 408, 483, 500];

export interface SlState {
  core: CoreApi;
  /** To-tag prefix of our stateless replies: an ACK carrying it is for us (SER's sl tag) */
  tagPrefix: string;
  codes: Map<number, number>;
  classes: number[];
  failures: number;
  acksAbsorbed: number;
}

/** q as SER prints it (qvalue_t in thousandths): 0.5 → "0.5", 1000 → "1" */
function fmtQ(q: number): string {
  return String(q / 1000);
}

/** The destination set as one Contact header: the Request-URI first, then the branches. */
export function dsetContact(ctx: MsgContext): string | undefined {
  const entries = [{ uri: ctx.ruri, q: ctx.ruriQ }, ...ctx.branches];
  const parts = entries.map((e) => (e.q >= 0 ? `<${e.uri}>;q=${fmtQ(e.q)}` : `<${e.uri}>`));
  return parts.length > 0 ? `Contact: ${parts.join(', ')}` : undefined;
}

export function slReply(st: SlState, ctx: MsgContext, code: number, reason: string): number {
  const msg = ctx.msg;
  if (msg.method === 'ACK') return 1; // an ACK is never answered
  const headers: string[] = [];
  if (code >= 300 && code < 400) {
    const c = dsetContact(ctx);
    if (c) headers.push(c);
  }
  let buf: Buffer;
  try {
    buf = st.core.buildReply(ctx, code, reason, { headers, toTag: requestTag(st.tagPrefix, ctx.msg) });
  } catch (e) {
    st.core.log.log(L_ERR, `ERROR: sl_send_reply: cannot build the reply: ${(e as Error).message}`);
    st.failures++;
    return -1;
  }
  if (
    !st.core.sendToOrigin(
      msg,
      { src: ctx.src, dst: ctx.dst, connId: (ctx as { connId?: number }).connId },
      buf,
    )
  ) {
    st.failures++;
    return -1;
  }
  st.codes.set(code, (st.codes.get(code) ?? 0) + 1);
  st.classes[Math.floor(code / 100)]++;
  return 1;
}

export function slStats(st: SlState): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of LISTED) out[String(c)] = st.codes.get(c) ?? 0;
  for (let k = 1; k <= 6; k++) out[`${k}xx`] = st.classes[k];
  out.failures = st.failures;
  out.acks_absorbed = st.acksAbsorbed;
  return out;
}

export default defineModule<SlState>({
  name: 'sl',
  init(core) {
    const st: SlState = {
      core,
      tagPrefix: randomBytes(8).toString('hex'),
      codes: new Map(),
      classes: [0, 0, 0, 0, 0, 0, 0],
      failures: 0,
      acksAbsorbed: 0,
    };
    // SER's sl_filter_ACK: an ACK to one of our stateless replies ends here
    core.addRequestFilter((ctx) => {
      if (ctx.msg.method !== 'ACK') return true;
      const tag = ctx.msg.toTag;
      if (tag?.startsWith(`${st.tagPrefix}.`)) {
        st.acksAbsorbed++;
        return false;
      }
      return true;
    });
    core.addStats('sl', () => slStats(st));
    return st;
  },
  functions: {
    sl_send_reply: {
      signatures: [[A.replyCode(), A.str('reason', { allowBare: true })]],
      routes: ['request', 'failure'],
      run: (ctx, st, code: number, reason: string) => slReply(st, ctx, code, reason),
    },
    sl_reply_error: {
      signatures: [[]],
      routes: ['request', 'failure'],
      run(ctx, st) {
        const e = ctx.lastError ?? { code: 500, reason: 'Server Internal Error' };
        return slReply(st, ctx, e.code, e.reason);
      },
    },
  },
  mgmt: {
    sl_stats: {
      help: 'stateless reply counters per code and class',
      run(st) {
        const s = slStats(st);
        const body = Object.entries(s)
          .map(([k, v]) => `${k}: ${v}`)
          .join('\n');
        return { code: 200, reason: 'ok', body, data: s };
      },
    },
  },
});
