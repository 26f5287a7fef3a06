/** The identity proven by auth's www_authorize/proxy_authorize for this request. */
import type { MsgContext } from '../../core/context.js';

export function authorizedIdentity(_ctx: MsgContext): { user: string; domain: string } | undefined {
  return undefined;
}
