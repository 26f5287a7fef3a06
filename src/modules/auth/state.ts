/** The auth module's state, shared with the credential stores (auth_db) through getApi('auth'). */
import type { CoreApi } from '../../core/api.js';
import type { NonceSigner, NonceTracker } from './nonce.js';

export interface AuthState {
  core: CoreApi;
  signer: NonceSigner;
  tracker: NonceTracker;
  /** nonce lifetime, seconds */
  nonceExpire: number;
  /** reject a nonce used before (nonce-count / one-time nonce) */
  nonceCount: boolean;
  /** digest algorithms offered and accepted, most preferred first (RFC 8760) */
  algorithms: readonly string[];
  rpidPrefix: string;
  rpidSuffix: string;
  /** AVP name (without SER's "s:") holding the caller's Remote-Party-ID URI */
  rpidAvp: string;
  /** To-tag prefix of our challenges: their ACKs end here */
  tagPrefix: string;
  /** wall clock in ms (nonces carry Unix time so that replicas agree) */
  wallMs(): number;
  challenges: number;
  accepted: number;
  replays: number;
  acksAbsorbed: number;
}

/** SER writes AVP names as "s:name" (string name) or "i:7"; the context keys them by name. */
export function avpName(spec: string): string {
  return spec.replace(/^[si]:/, '');
}
