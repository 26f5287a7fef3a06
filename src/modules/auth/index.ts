/**
 * auth — digest authentication (RFC 2617, RFC 3261 §22, RFC 8760): challenges with signed,
 * expiring nonces, and the protocol checks that credential stores (auth_db) call around
 * their password lookup. consume_credentials() strips the accepted credentials before the
 * request is relayed; append_rpid_hf() adds the caller's Remote-Party-ID.
 */
import { randomBytes } from 'node:crypto';
import { L_WARN } from '../../core/log.js';
import { type ArgSpec, defineModule, FixupError, REQUEST_ROUTES, type RouteKind } from '../../core/module.js';

/** a challenge is a reply: where sl_send_reply may run */
const REPLY_ROUTES: readonly RouteKind[] = ['request', 'failure'];
import * as A from '../../script/args.js';
import { describeArg } from '../../script/args.js';
import { AUTH_HF_AVP } from './credentials.js';
import { challenge } from './challenge.js';
import { NonceSigner, NonceTracker } from './nonce.js';
import { appendRpid, isRpidUserE164 } from './rpid.js';
import { type AuthState, avpName } from './state.js';

export type { AuthState } from './state.js';
export { authorizedCredentials, type AuthorizedCredentials } from './credentials.js';

const ALGORITHMS = ['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess'];

/** qop of www_challenge/proxy_challenge: SER's "0"/"1", or the qop values themselves. */
export function qopArg(): ArgSpec<readonly string[]> {
  return {
    name: 'qop',
    fixup(a) {
      const v =
        a.kind === 'string' || a.kind === 'ident' ? a.value : a.kind === 'number' ? a.text : undefined;
      if (v === undefined)
        throw new FixupError(`qop must be "0", "1", "auth" or "auth-int", not ${describeArg(a)}`);
      if (v === '0' || v === '') return [];
      if (v === '1') return ['auth'];
      const list = v.split(',').map((s) => s.trim().toLowerCase());
      for (const q of list)
        if (q !== 'auth' && q !== 'auth-int')
          throw new FixupError(`qop must be "0", "1", "auth", "auth-int" or "auth,auth-int", not "${v}"`);
      return list;
    },
  };
}

/** parses the `algorithms` parameter: a comma list of RFC 8760 names, preferred first */
export function parseAlgorithms(v: string): string[] {
  const out: string[] = [];
  for (const part of v.split(',')) {
    const name = part.trim();
    if (name === '') continue;
    const canon = ALGORITHMS.find((a) => a.toUpperCase() === name.toUpperCase());
    if (!canon) throw new FixupError(`unknown digest algorithm "${name}" (use ${ALGORITHMS.join(', ')})`);
    if (!out.includes(canon)) out.push(canon);
  }
  if (out.length === 0) throw new FixupError('algorithms must name at least one digest algorithm');
  return out;
}

export default defineModule<AuthState>({
  name: 'auth',
  params: {
    secret: { type: 'string', default: undefined },
    nonce_expire: {
      type: 'int',
      default: 300,
      validate(v) {
        if (typeof v !== 'number' || v < 1) throw new FixupError('nonce_expire must be at least 1 (seconds)');
      },
    },
    nonce_count: { type: 'int', default: 1 },
    algorithms: {
      type: 'string',
      default: 'MD5',
      validate: (v) => void parseAlgorithms(String(v)),
    },
    rpid_prefix: { type: 'string', default: '' },
    rpid_suffix: { type: 'string', default: ';party=calling;id-type=subscriber;screen=yes' },
    rpid_avp: { type: 'string', default: 's:rpid' },
  },
  init(core, p) {
    let secret = p.secret === undefined ? undefined : String(p.secret);
    if (secret === '') secret = undefined;
    const st: AuthState = {
      core,
      signer: new NonceSigner(secret ?? randomBytes(32)),
      tracker: new NonceTracker(),
      nonceExpire: Number(p.nonce_expire ?? 300),
      nonceCount: Number(p.nonce_count ?? 1) !== 0,
      algorithms: parseAlgorithms(String(p.algorithms ?? 'MD5')),
      rpidPrefix: String(p.rpid_prefix ?? ''),
      rpidSuffix: String(p.rpid_suffix ?? ''),
      rpidAvp: avpName(String(p.rpid_avp ?? 's:rpid')),
      tagPrefix: randomBytes(6).toString('hex'),
      wallMs: () => Date.now(),
      challenges: 0,
      accepted: 0,
      replays: 0,
      acksAbsorbed: 0,
    };
    if (secret === undefined)
      core.log.log(
        L_WARN,
        'WARNING: auth: no secret set, using a random one: nonces will not be valid on other servers or after a restart',
      );
    // the ACK to a 407 we sent ends here, as sl does for its own replies
    core.addRequestFilter((ctx) => {
      if (ctx.msg.method !== 'ACK') return true;
      if (ctx.msg.toTag?.startsWith(`${st.tagPrefix}.`)) {
        st.acksAbsorbed++;
        return false;
      }
      return true;
    });
    core.addStats('auth', () => ({
      challenges: st.challenges,
      authorized: st.accepted,
      nonce_replays: st.replays,
      tracked_nonces: st.tracker.size,
    }));
    core.provideApi('auth', st);
    return st;
  },
  functions: {
    www_challenge: {
      signatures: [[A.str('realm', { allowBare: true }), qopArg()]],
      routes: REPLY_ROUTES,
      run: (ctx, st, realm: string, qop: readonly string[]) => challenge(st, ctx, 'www', realm, qop),
    },
    proxy_challenge: {
      signatures: [[A.str('realm', { allowBare: true }), qopArg()]],
      routes: REPLY_ROUTES,
      run: (ctx, st, realm: string, qop: readonly string[]) => challenge(st, ctx, 'proxy', realm, qop),
    },
    consume_credentials: {
      signatures: [[]],
      routes: REQUEST_ROUTES,
      run(ctx) {
        const v = ctx.avps.get(AUTH_HF_AVP);
        if (!v || v.length === 0) return -1;
        const [hf, idx] = String(v[0]).split(':');
        // once removed, the index no longer points at them
        ctx.avps.delete(AUTH_HF_AVP);
        return ctx.msg.removeHeaderValue(hf, Number(idx)) ? 1 : -1;
      },
    },
    append_rpid_hf: {
      signatures: [[], [A.str('prefix'), A.str('suffix')]],
      routes: REQUEST_ROUTES,
      run: (ctx, st, prefix?: string, suffix?: string) => appendRpid(st, ctx, prefix, suffix),
    },
    is_rpid_user_e164: {
      signatures: [[]],
      routes: REQUEST_ROUTES,
      run: (ctx, st) => isRpidUserE164(st, ctx),
    },
  },
});
