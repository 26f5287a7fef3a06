/** maxfwd — Max-Forwards processing (RFC 3261 §16.3 step 3, §16.6 step 3). */
import { defineModule, FixupError } from '../../core/module.js';
import * as A from '../../script/args.js';

interface MaxfwdState {
  maxLimit: number;
}

export default defineModule<MaxfwdState>({
  name: 'maxfwd',
  params: {
    // OpenSER 1.1: a larger incoming value is lowered to this
    max_limit: {
      type: 'int',
      default: 256,
      validate(v) {
        if (typeof v !== 'number' || v < 1 || v > 255 + 1) throw new FixupError('max_limit must be 1–256');
      },
    },
  },
  init(_core, params) {
    return { maxLimit: Number(params.max_limit ?? 256) };
  },
  functions: {
    mf_process_maxfwd_header: {
      signatures: [[A.int('max_value', { min: 1, max: 256 })]],
      routes: ['request'],
      run(ctx, st, initial: number) {
        const msg = ctx.msg;
        let mf: number | undefined;
        try {
          mf = msg.maxForwards;
        } catch {
          // SER: a malformed Max-Forwards makes the function fail (-2)
          return -2;
        }
        if (mf === undefined) {
          msg.addHeader('Max-Forwards', String(Math.min(initial, st.maxLimit)), 'top');
          return 1;
        }
        if (mf <= 0) return -1;
        msg.replaceHeader('Max-Forwards', String(Math.min(mf - 1, st.maxLimit)));
        return 1;
      },
    },
  },
});
