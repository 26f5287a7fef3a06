/**
 * rr — record-routing and Route processing (RFC 3261 §16.4, §16.6 step 4, §16.12), as in
 * SER 0.9's rr module: record_route(), record_route_preset(), loose_route(), add_rr_param(),
 * check_route_param(), is_direction().
 */
import type { CoreApi } from '../../core/api.js';
import { avpOf, type MsgContext } from '../../core/context.js';
import { type ArgSpec, defineModule, FixupError, type ParamSpec } from '../../core/module.js';
import * as A from '../../script/args.js';
import { parseUri } from '../../sip/uri.js';
import { direction, looseRoute, ROUTE_PARAMS_AVP } from './loose.js';
import {
  addParamToRecordRoute,
  addRecordRoute,
  doubleRecordRoute,
  inboundSocket,
  markOf,
  type RrOptions,
} from './record.js';

interface RrState {
  core: CoreApi;
  opts: RrOptions;
}

function flagParam(def: 0 | 1): ParamSpec {
  return {
    type: 'int',
    default: def,
    validate(v) {
      if (v !== 0 && v !== 1) throw new FixupError('must be 0 or 1');
    },
  };
}

/** URI parameters to add to our Record-Route: ";name=value" (the leading ';' may be left out) */
const rrParamArg: ArgSpec<string> = {
  name: 'param',
  fixup(a, env) {
    let v = A.str('param').fixup(a, env);
    if (v !== '' && !v.startsWith(';')) v = `;${v}`;
    // they must form valid URI parameters: check on a sample URI
    try {
      parseUri(`sip:x${v}`);
    } catch {
      throw new FixupError(`"${v}" is not a list of URI parameters`);
    }
    if (/[<>,\s"]/.test(v)) throw new FixupError(`"${v}" is not a list of URI parameters`);
    return v;
  },
};

/** record_route_preset("host:port") or a full sip: URI, checked once at load time */
const presetArg: ArgSpec<string> = {
  name: 'address',
  fixup(a, env) {
    const v = A.str('address', { nonEmpty: true }).fixup(a, env);
    const uri = /^sips?:/i.test(v) ? v : `sip:${v}`;
    try {
      const u = parseUri(uri);
      if (u.kind !== 'sip' && u.kind !== 'sips') throw new Error('not sip');
    } catch {
      throw new FixupError(`"${v}" is not a host[:port] or SIP URI`);
    }
    if (/[<>,\s"]/.test(v)) throw new FixupError(`"${v}" is not a host[:port] or SIP URI`);
    return v;
  },
};

/** add_rr_param() values given before record_route() */
const PENDING_AVP = 'rr/pending_params';

function pending(ctx: MsgContext): string {
  const v = avpOf(ctx, PENDING_AVP);
  return v === undefined ? '' : String(v[0]);
}

export default defineModule<RrState>({
  name: 'rr',
  params: {
    // SER 0.9 defaults
    enable_full_lr: flagParam(0),
    append_fromtag: flagParam(1),
    enable_double_rr: flagParam(1),
  },
  init(core, params) {
    const opts: RrOptions = {
      fullLr: params.enable_full_lr === 1,
      appendFromtag: params.append_fromtag === 1,
      doubleRr: params.enable_double_rr === 1,
    };
    if (opts.doubleRr)
      core.addForwardHook((ctx, target, msg) => doubleRecordRoute(core, opts, ctx, target, msg));
    return { core, opts };
  },
  functions: {
    record_route: {
      signatures: [[], [rrParamArg]],
      routes: ['request'],
      run(ctx, st, params?: string) {
        const all = pending(ctx) + (params ?? '');
        const ok = addRecordRoute(ctx.msg, st.opts, inboundSocket(st.core, ctx), undefined, all);
        if (!ok) st.core.log.err('ERROR: record_route: no address for the receiving socket');
        return ok ? 1 : -1;
      },
    },
    record_route_preset: {
      signatures: [[presetArg]],
      routes: ['request'],
      run(ctx, st, preset: string) {
        return addRecordRoute(ctx.msg, st.opts, undefined, preset, pending(ctx)) ? 1 : -1;
      },
    },
    loose_route: {
      signatures: [[]],
      routes: ['request'],
      run: (ctx, st) => looseRoute(st.core, ctx),
    },
    add_rr_param: {
      signatures: [[rrParamArg]],
      routes: ['request'],
      run(ctx, st, param: string) {
        if (markOf(ctx.msg) === undefined) {
          // before record_route(): kept until it runs
          ctx.avps.set(PENDING_AVP, [pending(ctx) + param]);
          return 1;
        }
        return addParamToRecordRoute(ctx.msg, st.opts, param) ? 1 : -1;
      },
    },
    check_route_param: {
      signatures: [[A.regex('regex')]],
      routes: ['request'],
      run(ctx, _st, re: RegExp) {
        const p = avpOf(ctx, ROUTE_PARAMS_AVP)?.[0];
        return p !== undefined && re.test(String(p)) ? 1 : -1;
      },
    },
    is_direction: {
      signatures: [[A.oneOf('direction', ['downstream', 'upstream'] as const)]],
      routes: ['request'],
      run: (ctx, _st, dir: 'downstream' | 'upstream') => (direction(ctx) === dir ? 1 : -1),
    },
  },
});
