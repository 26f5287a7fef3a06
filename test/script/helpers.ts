/** Stand-in modules and a fake message context for the script tests. */
import type { MsgContext } from '../../src/core/context.js';
import type { ModuleDef } from '../../src/core/module.js';
import { flag, hostOrIp, int, port, regex, routeRef, str } from '../../src/script/args.js';
import { ANY_ROUTE, FixupError, REQUEST_ROUTES } from '../../src/core/module.js';
import type { AnyModule } from '../../src/script/registry.js';

export interface Rec {
  calls: string[];
}

/** a `core` with flags, log, append_branch, forward and a value-returning `ret(n)` */
export function coreModule(rec: Rec): ModuleDef<unknown> {
  return {
    name: 'core',
    functions: {
      setflag: {
        signatures: [[flag()]],
        routes: ANY_ROUTE,
        run(ctx, _s, f: number) {
          ctx.flags |= 1 << f;
          return 1;
        },
      },
      resetflag: {
        signatures: [[flag()]],
        routes: ANY_ROUTE,
        run(ctx, _s, f: number) {
          ctx.flags &= ~(1 << f);
          return 1;
        },
      },
      isflagset: {
        signatures: [[flag()]],
        routes: ANY_ROUTE,
        run: (ctx, _s, f: number) => ((ctx.flags & (1 << f)) !== 0 ? 1 : -1),
      },
      log: {
        signatures: [[str('message')], [int('level'), str('message')]],
        routes: ANY_ROUTE,
        run(_ctx, _s, a: unknown, b?: unknown) {
          rec.calls.push(`log:${b === undefined ? a : b}`);
          return 1;
        },
      },
      append_branch: {
        signatures: [[], [str('uri')]],
        routes: REQUEST_ROUTES,
        run(ctx, _s, uri?: string) {
          ctx.branches.push({ uri: uri ?? ctx.ruri, q: -1 });
          return 1;
        },
      },
      forward: {
        signatures: [
          [hostOrIp('host', { allowUriHost: true })],
          [hostOrIp('host', { allowUriHost: true }), port('port', { allowUriPort: true })],
        ],
        routes: REQUEST_ROUTES,
        run(_ctx, _s, h: string | null, p?: number | null) {
          rec.calls.push(`forward:${h ?? 'uri:host'}:${p === undefined ? '' : (p ?? 'uri:port')}`);
          return 1;
        },
      },
      ret: {
        signatures: [[int('value')]],
        routes: ANY_ROUTE,
        run(_ctx, _s, v: number) {
          rec.calls.push(`ret:${v}`);
          return v;
        },
      },
      rewriteuri: {
        signatures: [[str('uri')]],
        routes: REQUEST_ROUTES,
        run(ctx, _s, u: string) {
          ctx.ruri = u;
          return 1;
        },
      },
      search: {
        signatures: [[regex('re')]],
        routes: ANY_ROUTE,
        run: (ctx, _s, re: RegExp) => (re.test(ctx.msg.raw.toString('latin1')) ? 1 : -1),
      },
    },
  };
}

export interface TmState {
  relayed: number;
}

/** a `tm`-like module: t_on_failure checks its route, t_relay is async */
export function tmModule(rec: Rec): ModuleDef<TmState> {
  return {
    name: 'tm',
    params: {
      fr_timer: { type: 'int', default: 30 },
      fr_inv_timer: {
        type: 'int',
        default: 120,
        validate(v) {
          if (typeof v === 'number' && v < 1) throw new FixupError('must be at least 1 second');
        },
      },
    },
    functions: {
      t_on_failure: {
        signatures: [[routeRef('failure')]],
        routes: ['request', 'failure', 'branch'],
        run(_ctx, _s, name: string) {
          rec.calls.push(`t_on_failure:${name}`);
          return 1;
        },
      },
      t_relay: {
        signatures: [[]],
        routes: ['request', 'failure'],
        async: true,
        async run(_ctx, s) {
          await new Promise((r) => setImmediate(r));
          s.relayed++;
          rec.calls.push('t_relay');
          return 1;
        },
      },
      t_reply: {
        signatures: [[int('code', { min: 100, max: 699 }), str('reason')]],
        routes: ['request', 'failure'],
        run(_ctx, _s, code: number, reason: string) {
          rec.calls.push(`t_reply:${code} ${reason}`);
          return 1;
        },
      },
    },
  };
}

export function slModule(rec: Rec): ModuleDef<unknown> {
  return {
    name: 'sl',
    params: { enable_stats: { type: 'int', default: 1 } },
    functions: {
      sl_send_reply: {
        signatures: [[int('code', { min: 100, max: 699 }), str('reason')]],
        routes: ['request'],
        run(_ctx, _s, code: number, reason: string) {
          rec.calls.push(`sl_send_reply:${code} ${reason}`);
          return 1;
        },
      },
    },
  };
}

export function usrlocModule(): ModuleDef<unknown> {
  return {
    name: 'usrloc',
    params: { db_mode: { type: 'int', default: 0 }, db_url: { type: 'string', default: undefined } },
  };
}

export function testRegistry(rec: Rec = { calls: [] }): Record<string, AnyModule> {
  return { core: coreModule(rec), tm: tmModule(rec), sl: slModule(rec), usrloc: usrlocModule() };
}

export interface FakeCtxInit {
  method?: string;
  ruri?: string;
  status?: number;
  srcIp?: string;
  srcPort?: number;
  dstIp?: string;
  proto?: 'udp' | 'tcp' | 'tls';
  raw?: string;
}

export function fakeCtx(o: FakeCtxInit = {}): MsgContext {
  const isRequest = o.status === undefined;
  const ruri = o.ruri ?? 'sip:alice@example.com';
  const srcIp = o.srcIp ?? '192.168.1.10';
  return {
    msg: {
      isRequest,
      method: o.method ?? 'INVITE',
      status: o.status ?? 0,
      reason: '',
      ruri: isRequest ? ruri : '',
      raw: Buffer.from(o.raw ?? `${o.method ?? 'INVITE'} ${ruri} SIP/2.0\r\n\r\n`, 'latin1'),
    } as unknown as MsgContext['msg'],
    routeKind: 'request',
    flags: 0,
    ruri,
    src: { ip: srcIp, port: o.srcPort ?? 5060, proto: o.proto ?? 'udp', af: srcIp.includes(':') ? 6 : 4 },
    dst: { ip: o.dstIp ?? '10.0.0.1', port: 5060, proto: o.proto ?? 'udp', af: 4 },
    branches: [],
    ruriQ: -1,
    dstUri: undefined,
    avps: new Map(),
    lastError: undefined,
    drop: false,
  };
}
