/**
 * tm — the transaction module: stateful forwarding (t_relay and its variants, forking to the
 * whole destination set), stateful replies (t_newtran, t_reply), failure and reply routes,
 * t_replicate, statistics, and FIFO t_uac_dlg for requests the server itself originates.
 */
import type { CoreApi } from '../../core/api.js';
import type { MsgContext, Proto } from '../../core/context.js';
import { ANY_ROUTE, defineModule, FixupError, type ParamSpec, type ParamValue } from '../../core/module.js';
import * as A from '../../script/args.js';
import { DEFAULT_TIMERS, type TmTimers } from '../../tm/config.js';
import { type RelayDest, TransactionManager } from '../../tm/tm.js';
import { uacDlgCommand } from './uac-dlg.js';

export interface TmState {
  core: CoreApi;
  tm: TransactionManager;
}

const hostArg = A.hostOrIp('host', { allowUriHost: true });
const portArg = A.port('port', { allowUriPort: true });

/** percent of V8's heap limit for transactions; the other half for usrloc, the rest of the server and the GC's headroom */
const DEFAULT_MAX_HEAP = 50;

function intParam(def: number, min: number, what: string): ParamSpec {
  return {
    type: 'int',
    default: def,
    validate(v: ParamValue) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
        throw new FixupError(`${what} must be an integer ≥ ${min}, not ${JSON.stringify(v)}`);
    },
  };
}

/** host/port arguments → next hop; uri:host / uri:port are taken from the Request-URI */
function dest(
  ctx: MsgContext,
  host: string | null | undefined,
  port: number | null | undefined,
  proto?: Proto,
): RelayDest | undefined {
  if (host === undefined && port === undefined) return proto ? destFromUri(ctx, proto) : undefined;
  let h = host ?? undefined;
  let p = port ?? undefined;
  if (host === null || port === null) {
    const u = destFromUri(ctx, proto);
    if (host === null) h = u.host;
    if (port === null) p = u.port;
  }
  return { host: h!, port: p, proto };
}

function destFromUri(ctx: MsgContext, proto?: Proto): RelayDest {
  const m = /^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;?>]+)(?::(\d+))?/i.exec(ctx.dstUri ?? ctx.ruri);
  return { host: m?.[1] ?? '', port: m?.[2] ? Number(m[2]) : undefined, proto };
}

function relayFn(proto?: Proto) {
  return {
    signatures: [[], [hostArg, portArg]],
    routes: ['request', 'failure'] as const,
    async: true,
    run: (ctx: MsgContext, st: TmState, host?: string | null, port?: number | null) =>
      st.tm.relay(ctx, dest(ctx, host, port, proto)),
  };
}

function replicateFn(proto?: Proto) {
  return {
    signatures: [[hostArg, portArg]],
    routes: ['request'] as const,
    async: true,
    run: (ctx: MsgContext, st: TmState, host: string | null, port: number | null) =>
      st.tm.replicate(ctx, dest(ctx, host, port, proto)!),
  };
}

function statsOf(st: TmState): Record<string, number> {
  const tm = st.tm;
  const c = tm.stats.completed;
  return {
    current: tm.current,
    waiting: tm.waiting,
    total: tm.stats.total,
    local: tm.stats.local,
    replied_localy: tm.stats.replied_localy,
    completed_6xx: c[6],
    completed_5xx: c[5],
    completed_4xx: c[4],
    completed_3xx: c[3],
    completed_2xx: c[2],
    refused: tm.admission.refused,
  };
}

const onFailure = {
  signatures: [[A.routeRef('failure', 'failure route')]],
  routes: ['request', 'failure', 'branch'] as const,
  run(ctx: MsgContext, st: TmState, route: string) {
    st.tm.arm(ctx, 'failure', route);
    return 1;
  },
};

export default defineModule<TmState>({
  name: 'tm',
  deps: [],
  params: {
    // SER's units: seconds for the final-response and wait timers, milliseconds for retransmissions
    fr_timer: intParam(DEFAULT_TIMERS.fr / 1000, 1, 'fr_timer (seconds)'),
    fr_inv_timer: intParam(DEFAULT_TIMERS.frInv / 1000, 1, 'fr_inv_timer (seconds)'),
    wt_timer: intParam(DEFAULT_TIMERS.wait / 1000, 0, 'wt_timer (seconds)'),
    retr_timer1: intParam(DEFAULT_TIMERS.t1, 10, 'retr_timer1 (milliseconds)'),
    retr_timer2: intParam(DEFAULT_TIMERS.t2, 10, 'retr_timer2 (milliseconds)'),
    retr_timer4: intParam(DEFAULT_TIMERS.t4, 0, 'retr_timer4 (milliseconds)'),
    noisy_ctimer: intParam(0, 0, 'noisy_ctimer'),
    loop_detect: intParam(0, 0, 'loop_detect'),
    // not in SER, whose shared memory bounded the table: src/tm/overload.ts
    max_transactions: intParam(0, 0, 'max_transactions'),
    max_heap: {
      type: 'int',
      default: DEFAULT_MAX_HEAP,
      validate(v: ParamValue) {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 100)
          throw new FixupError(`max_heap must be a percentage from 0 to 100, not ${JSON.stringify(v)}`);
      },
    },
  },
  init(core, params) {
    const timers: TmTimers = {
      fr: Number(params.fr_timer) * 1000,
      frInv: Number(params.fr_inv_timer) * 1000,
      wait: Number(params.wt_timer) * 1000,
      t1: Number(params.retr_timer1),
      t2: Number(params.retr_timer2),
      t4: Number(params.retr_timer4),
    };
    if (timers.t2 < timers.t1) throw new FixupError('retr_timer2 must not be below retr_timer1');
    const tm = new TransactionManager(core, {
      timers,
      noisyCtimer: Number(params.noisy_ctimer) !== 0,
      loopDetect: Number(params.loop_detect) !== 0,
      maxTransactions: Number(params.max_transactions),
      maxHeapPercent: Number(params.max_heap),
    });
    core.setReplyHandler((msg, origin) => tm.receiveReply(msg, origin));
    const st: TmState = { core, tm };
    core.addStats('tm', () => statsOf(st));
    core.provideApi('tm', tm);
    return st;
  },
  functions: {
    t_relay: relayFn(),
    t_relay_to_udp: relayFn('udp'),
    t_relay_to_tcp: relayFn('tcp'),
    t_newtran: {
      signatures: [[]],
      routes: ['request'],
      run: (ctx, st) => st.tm.newtran(ctx),
    },
    t_reply: {
      signatures: [[A.replyCode(), A.str('reason', { allowBare: true })]],
      routes: ['request', 'failure'],
      run: (ctx, st, code: number, reason: string) => st.tm.reply(ctx, code, reason),
    },
    t_on_failure: onFailure,
    // the name before SER 0.8.11
    t_on_negative: onFailure,
    t_on_reply: {
      signatures: [[A.routeRef('onreply', 'reply route')]],
      routes: ['request', 'failure', 'branch'],
      run(ctx, st, route: string) {
        st.tm.arm(ctx, 'reply', route);
        return 1;
      },
    },
    t_check_status: {
      signatures: [[A.regex('status regex')]],
      routes: ANY_ROUTE,
      run(ctx, st, re: RegExp) {
        let code: number;
        if (ctx.routeKind === 'onreply') code = ctx.msg.status;
        else {
          const cell = st.tm.cellOf(ctx);
          if (!cell) return -1;
          code = ctx.routeKind === 'failure' ? cell.pickedCode : cell.uas.lastCode;
        }
        if (code === 0) return -1;
        re.lastIndex = 0;
        return re.test(String(code)) ? 1 : -1;
      },
    },
    t_replicate: replicateFn(),
    t_replicate_udp: replicateFn('udp'),
    t_replicate_tcp: replicateFn('tcp'),
  },
  mgmt: {
    t_stats: {
      help: 'transaction statistics: current, waiting, total, local, replied locally, completions per class',
      run(st) {
        const s = statsOf(st);
        const body = [
          `Current: ${s.current} (${s.waiting} waiting) Total: ${s.total} (${s.local} local)`,
          `Replied localy: ${s.replied_localy}`,
          `Completion status 6xx: ${s.completed_6xx}, 5xx: ${s.completed_5xx}, 4xx: ${s.completed_4xx}, 3xx: ${s.completed_3xx},2xx: ${s.completed_2xx}`,
        ].join('\n');
        return { code: 200, reason: 'ok', body, data: s };
      },
    },
    t_hash: {
      help: 'occupation of the transaction tables (for debugging)',
      run(st) {
        const tm = st.tm;
        const data = { server: tm.server.size, client: tm.clients.size, local: tm.localActive };
        const body = `server transactions: ${data.server}\nclient transactions: ${data.client}\nlocal transactions in progress: ${data.local}`;
        return { code: 200, reason: 'ok', body, data };
      },
    },
    t_uac_dlg: uacDlgCommand,
  },
});
