/**
 * The identity proven by auth's www_authorize/proxy_authorize for this request, as SER's
 * group module took it from the authorized credentials: the user part of the digest
 * username, and as domain the username's own domain ("user@domain") or else the realm.
 */
import type { MsgContext } from '../../core/context.js';
import { authorizedCredentials } from '../auth/credentials.js';

export function authorizedIdentity(ctx: MsgContext): { user: string; domain: string } | undefined {
  const c = authorizedCredentials(ctx);
  if (c === undefined || c.user === '') return undefined;
  return { user: c.user, domain: (c.domain ?? c.realm).toLowerCase() };
}
