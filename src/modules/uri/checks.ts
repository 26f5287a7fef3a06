/**
 * The identity checks of SER's uri and uri_db modules: does the authenticated user match
 * the To (REGISTER: nobody registers someone else's AOR) or From (nobody calls as someone
 * else), is it a given user, is the request in a dialog.
 */
import type { MsgContext } from '../../core/context.js';
import { parseUri, unescapeUnreserved } from '../../sip/uri.js';
import { authorizedCredentials } from '../auth/credentials.js';

/** the user part of the To or From URI, unescaped; undefined when it has none or is unparsable */
function userOf(ctx: MsgContext, which: 'to' | 'from'): string | undefined {
  try {
    const u = parseUri(which === 'to' ? ctx.msg.to.uri : ctx.msg.from.uri);
    return u.user ? unescapeUnreserved(u.user) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * check_to() / check_from(): 1 when the user part of the URI equals the user part of the
 * authorized digest username (case-insensitively, as SER compared them), -1 otherwise or
 * when nothing was authorized.
 */
export function checkUsername(ctx: MsgContext, which: 'to' | 'from'): number {
  const cred = authorizedCredentials(ctx);
  if (!cred) return -1;
  const user = userOf(ctx, which);
  if (user === undefined) return -1;
  return user.toLowerCase() === cred.user.toLowerCase() ? 1 : -1;
}

/** is_user(name): the authorized digest username (its user part) is exactly `name`. */
export function isUser(ctx: MsgContext, name: string): number {
  const cred = authorizedCredentials(ctx);
  return cred !== undefined && cred.user === name ? 1 : -1;
}

/** has_totag(): the To header has a tag, i.e. the request belongs to a dialog. */
export function hasToTag(ctx: MsgContext): number {
  try {
    return ctx.msg.toTag ? 1 : -1;
  } catch {
    return -1;
  }
}
