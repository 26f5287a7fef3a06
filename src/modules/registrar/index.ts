/**
 * registrar — REGISTER processing (RFC 3261 §10.3) on top of usrloc: save() stores
 * the bindings of the To AOR and answers 200 with every current binding; lookup()
 * turns a Request-URI into the registered contacts (the best one in the R-URI, the
 * others as branches); registered() tells whether an AOR has a binding.
 */
import { randomBytes } from 'node:crypto';
import type { CoreApi } from '../../core/api.js';
import { MAX_BRANCHES } from '../../core/actions.js';
import { avpOf, type MsgContext } from '../../core/context.js';
import { L_DBG, L_ERR } from '../../core/log.js';
import {
  type ArgSpec,
  defineModule,
  FixupError,
  type ParamValue,
  REQUEST_ROUTES,
} from '../../core/module.js';
import { describeArg } from '../../script/args.js';
import type { Contact } from '../../sip/headers.js';
import { requestTag } from '../../sip/reply.js';
import { parseUri, type SipUri, unescapeUnreserved, uriEquals } from '../../sip/uri.js';
import {
  type Change,
  declareTable,
  FL_NAT,
  FL_PERMANENT,
  Q_UNSPECIFIED,
  type UContact,
  type Usrloc,
  usrlocFor,
} from '../usrloc/index.js';
import { intern, remaining } from '../usrloc/store.js';

export interface RegistrarOptions {
  defaultExpires: number;
  minExpires: number;
  maxExpires: number;
  /** raise a too short expiry to min_expires (SER 0.9 / OpenSER 1.1) instead of 423 */
  minExpiresRaise: boolean;
  maxContacts: number;
  appendBranches: boolean;
  descTimeOrder: boolean;
  /** script flag stored with the contact (FL_NAT) and set again by lookup; -1: none */
  natFlag: number;
  useDomain: boolean;
  caseSensitive: boolean;
  /** AVP holding the received URI of a NATed phone (nathelper's fix_nated_register) */
  receivedAvp: string;
  /** q (thousandths) of contacts registered without one; -1: unspecified */
  defaultQ: number;
}

export interface RegistrarState {
  core: CoreApi;
  opts: RegistrarOptions;
  tagPrefix: string;
  /** replies sent by save(), by code */
  replies: Map<number, number>;
  usrloc(): Usrloc;
}

/** A reply decided by save(): code, reason and extra header lines. */
export interface SaveResult {
  code: number;
  reason: string;
  headers: string[];
  /** the bindings after the request (200 only) */
  bindings?: UContact[];
}

const MAX_COLUMN = 255;

/** every SaveResult has the same four fields, so the code reading them sees one shape */
function r(code: number, reason: string, headers: string[] = [], bindings?: UContact[]): SaveResult {
  return { code, reason, headers, bindings };
}

/** The AOR of a SIP URI: its user, with use_domain user@host; undefined without a user. */
export function aorOf(u: SipUri, useDomain: boolean): string | undefined {
  if ((u.kind !== 'sip' && u.kind !== 'sips') || !u.user) return undefined;
  const user = unescapeUnreserved(u.user);
  return useDomain ? `${user}@${u.host.toLowerCase()}` : user;
}

/** The table argument of save()/lookup()/registered(). */
function tableArg(): ArgSpec<string> {
  return {
    name: 'table',
    fixup(a) {
      if (a.kind !== 'string' && a.kind !== 'ident')
        throw new FixupError(`table must be a name, not ${describeArg(a)}`);
      return declareTable(a.value);
    },
  };
}

function qText(q: number): string {
  return String(q / 1000);
}

/** The Contact line of a binding in the 200 OK. */
export function bindingLine(c: UContact, now: number, uptime = 0): string {
  const q = c.q === Q_UNSPECIFIED ? '' : `;q=${qText(c.q)}`;
  const exp = remaining(c, now, uptime);
  return `Contact: <${c.uri}>;expires=${exp}${q}`;
}

/**
 * RFC 3261 §10.3 steps 4–8 for one REGISTER: decides the bindings and the reply.
 * Writes through usrloc; throws only when the database of db_mode 3 fails.
 */
export function processRegister(
  st: RegistrarState,
  ctx: MsgContext,
  table: string,
): SaveResult | Promise<SaveResult> {
  const o = st.opts;
  const ul = st.usrloc();
  const msg = ctx.msg;
  // step 4: the address-of-record, from To
  let toUri: SipUri;
  try {
    toUri = parseUri(msg.to.uri);
  } catch {
    return r(400, 'Bad Request (bad To header)');
  }
  if (toUri.kind !== 'sip' && toUri.kind !== 'sips') return r(400, 'Bad Request (To is not a SIP URI)');
  const raw = aorOf(toUri, o.useDomain);
  if (raw === undefined) return r(400, 'Bad Request (no user in the To URI)');
  const aor = ul.normalizeAor(raw);

  let contacts: Contact[];
  let hdrExpires: number | undefined;
  try {
    contacts = msg.contacts;
  } catch {
    return r(400, 'Bad Request (bad Contact header)');
  }
  try {
    hdrExpires = msg.expires;
  } catch {
    return r(400, 'Bad Request (bad Expires header)');
  }
  const callId = msg.callId;
  const cseq = msg.cseq.seq;
  // step 6: "*"
  const star = contacts.some((c) => c.star);
  if (star) {
    if (contacts.length > 1) return r(400, 'Bad Request (* with other contacts)');
    if (hdrExpires !== 0) return r(400, 'Bad Request (* needs Expires: 0)');
  }
  // every contact is checked before anything changes (the request is all or nothing)
  type Want = { c: Contact; expires: number; q: number };
  const wants: Want[] = [];
  if (!star) {
    for (const c of contacts) {
      try {
        parseUri(c.uri);
      } catch {
        return r(400, 'Bad Request (bad Contact URI)');
      }
      if (ul.mode !== 0 && c.uri.length > MAX_COLUMN) return r(400, 'Bad Request (Contact URI too long)');
      let expires = c.expires ?? hdrExpires ?? o.defaultExpires;
      if (expires !== 0 && o.minExpires > 0 && expires < o.minExpires) {
        if (!o.minExpiresRaise) {
          return r(423, 'Interval Too Brief', [`Min-Expires: ${o.minExpires}`]);
        }
        expires = o.minExpires;
      }
      if (o.maxExpires > 0 && expires > o.maxExpires) expires = o.maxExpires;
      const q = c.q !== undefined ? Math.round(c.q * 1000) : o.defaultQ;
      wants.push({ c, expires, q });
    }
  }

  // the bindings after this request, and the change that makes them (none: nothing changes)
  const decide = (cur: UContact[]): { res: SaveResult; ch?: Change } => {
    if (contacts.length === 0) return { res: r(200, 'OK', [], cur) };
    const nowMs = ul.nowMs();
    // arrays, not a Map and a Set: a REGISTER names one contact or a few, and this runs for each
    const put: UContact[] = [];
    const del: string[] = [];
    const delAdd = (u: string) => {
      if (!del.includes(u)) del.push(u);
    };
    /** RFC 3261 §10.3 step 7: same Call-ID with a CSeq not higher leaves the binding alone */
    const stale = (b: UContact) => b.callId === callId && cseq <= b.cseq;
    if (star) {
      for (const b of cur) {
        if (stale(b))
          ul.core.log.log(L_DBG, `registrar: * keeps ${b.uri} of ${aor} (CSeq ${cseq} not newer)`);
        else delAdd(b.uri);
      }
    } else {
      let flags = 0;
      if (o.natFlag >= 0 && (ctx.flags & (1 << o.natFlag)) !== 0) flags |= FL_NAT;
      let received: string | undefined;
      if (o.receivedAvp) {
        const v = avpOf(ctx, o.receivedAvp) ?? avpOf(ctx, o.receivedAvp.replace(/^[si]:/, ''));
        if (v && v.length > 0) received = String(v[0]);
      }
      const pathValues = msg.values('path');
      const path = pathValues.length > 0 ? pathValues.join(',') : undefined;
      const ua = (msg.header('user-agent') ?? '').slice(0, MAX_COLUMN);
      const socket = socketName(ctx.dst);
      for (const w of wants) {
        const uri = w.c.uri;
        const old = cur.find((b) => b.uri === uri) ?? cur.find((b) => uriEquals(b.uri, uri));
        if (old && stale(old)) {
          ul.core.log.log(
            L_DBG,
            `registrar: ${uri} of ${aor} not updated (Call-ID same, CSeq ${cseq} ≤ ${old.cseq})`,
          );
          continue;
        }
        if (old && old.uri !== uri) delAdd(old.uri);
        const pi = put.findIndex((p) => p.uri === uri);
        if (w.expires === 0) {
          if (old) delAdd(old.uri);
          if (pi >= 0) put.splice(pi, 1);
          continue;
        }
        const c: UContact = {
          uri,
          expires: nowMs / 1000 + w.expires,
          q: w.q,
          callId: callId.slice(0, MAX_COLUMN),
          cseq,
          userAgent: intern(ua),
          received,
          path,
          socket,
          flags: flags & ~FL_PERMANENT,
          lastModified: nowMs,
        };
        if (pi >= 0) put[pi] = c;
        else put.push(c);
        const di = del.indexOf(uri);
        if (di >= 0) del.splice(di, 1);
      }
    }
    const after = cur.filter((b) => !del.includes(b.uri) && !put.some((p) => p.uri === b.uri));
    for (const c of put) after.push(c);
    if (o.maxContacts > 0 && after.length > o.maxContacts && after.length > cur.length) {
      return { res: r(503, 'Too many registered contacts', ['Retry-After: 60']) };
    }
    const res = r(200, 'OK', [], after);
    if (put.length === 0 && del.length === 0) return { res };
    return { res, ch: { put, del } };
  };

  // memory modes with the table open: no promise unless db_mode 1 writes the change
  const now = ul.contactsNow(table, aor, o.descTimeOrder);
  if (now) {
    const { res, ch } = decide(now);
    if (!ch) return res;
    const w = ul.applyNow(table, aor, ch);
    if (w === undefined) return res;
    if (w !== false) return w.then(() => res);
  }
  return ul.exclusive(table, aor, async () => {
    const { res, ch } = decide(await ul.contacts(table, aor, o.descTimeOrder));
    if (ch) await ul.apply(table, aor, ch);
    return res;
  });
}

let lastDst: MsgContext['dst'] | undefined;
let lastSocket = '';
/** "udp:1.2.3.4:5060" of the socket a REGISTER came in on; UDP's endpoint object is one per socket */
function socketName(dst: MsgContext['dst']): string {
  if (dst !== lastDst) {
    lastSocket = intern(`${dst.proto}:${dst.ip}:${dst.port}`);
    lastDst = dst;
  }
  return lastSocket;
}

let dateSec = -1;
let dateLine = '';
/** the Date header of a 200 (RFC 3261 §10.3 step 8), formatted once per second */
function dateHeader(nowMs: number): string {
  const sec = Math.floor(nowMs / 1000);
  if (sec !== dateSec) {
    dateSec = sec;
    dateLine = `Date: ${new Date(sec * 1000).toUTCString()}`;
  }
  return dateLine;
}

function sendReply(st: RegistrarState, ctx: MsgContext, res: SaveResult): boolean {
  const headers = [...res.headers];
  if (res.code === 200) {
    const ul = st.usrloc();
    const now = ul.now();
    const list = [...(res.bindings ?? [])];
    for (const c of list.sort((a, b) => b.q - a.q || b.lastModified - a.lastModified))
      headers.push(bindingLine(c, now, ul.uptime()));
    headers.push(dateHeader(ul.nowMs()));
  }
  let buf: Buffer;
  try {
    buf = st.core.buildReply(ctx, res.code, res.reason, {
      headers,
      toTag: requestTag(st.tagPrefix, ctx.msg),
    });
  } catch (e) {
    st.core.log.log(L_ERR, `ERROR: save: cannot build the reply: ${(e as Error).message}`);
    return false;
  }
  const sent = st.core.sendToOrigin(
    ctx.msg,
    { src: ctx.src, dst: ctx.dst, connId: (ctx as { connId?: number }).connId },
    buf,
  );
  if (sent) st.replies.set(res.code, (st.replies.get(res.code) ?? 0) + 1);
  return sent;
}

/** save() / save_noreply(): 1 on success, -1 when the request was refused or failed. */
export function save(
  st: RegistrarState,
  ctx: MsgContext,
  table: string,
  reply: boolean,
): number | Promise<number> {
  const failed = (e: unknown): SaveResult => {
    const why = (e as Error).message;
    // the same failure (a database down, memory full) is logged once a minute, not per REGISTER
    st.core.log.every(
      60_000,
      L_ERR,
      `save-failed:${table}:${why}`,
      `ERROR: save: cannot store the bindings in '${table}': ${why}`,
    );
    return r(500, 'Server Internal Error (cannot save the bindings)');
  };
  let res: SaveResult | Promise<SaveResult>;
  try {
    res = processRegister(st, ctx, table);
  } catch (e) {
    res = failed(e);
  }
  if (res instanceof Promise) return res.catch(failed).then((x) => saved(st, ctx, x, reply));
  return saved(st, ctx, res, reply);
}

function saved(st: RegistrarState, ctx: MsgContext, res: SaveResult, reply: boolean): number {
  if (res.code !== 200) ctx.lastError = { code: res.code, reason: res.reason };
  if (reply && !sendReply(st, ctx, res)) return -1;
  return res.code === 200 ? 1 : -1;
}

/**
 * lookup(): 1 with the R-URI rewritten to the best contact (and the others appended as
 * branches); -1 when the AOR has no binding, -2 when it had some but all expired,
 * -3 when the database (db_mode 3) failed.
 */
export function lookup(st: RegistrarState, ctx: MsgContext, table: string): number | Promise<number> {
  const o = st.opts;
  const ul = st.usrloc();
  let u: SipUri;
  try {
    u = parseUri(ctx.ruri);
  } catch {
    return -1;
  }
  const raw = aorOf(u, o.useDomain);
  if (raw === undefined) return -1;
  const aor = ul.normalizeAor(raw);
  const now = ul.contactsNow(table, aor, o.descTimeOrder);
  if (now) return lookedUp(st, ctx, table, aor, now);
  return ul.contacts(table, aor, o.descTimeOrder).then(
    (list) => lookedUp(st, ctx, table, aor, list),
    (e) => {
      st.core.log.log(L_ERR, `ERROR: lookup: cannot read '${table}': ${(e as Error).message}`);
      return -3;
    },
  );
}

function lookedUp(st: RegistrarState, ctx: MsgContext, table: string, aor: string, list: UContact[]): number {
  const o = st.opts;
  const ul = st.usrloc();
  if (list.length === 0) return ul.existing(table)?.has(aor) ? -2 : -1;
  const best = list[0];
  ctx.ruri = best.uri;
  ctx.ruriQ = best.q;
  if (best.received) ctx.dstUri = best.received;
  let nat = (best.flags & FL_NAT) !== 0;
  if (o.appendBranches) {
    for (let i = 1; i < list.length; i++) {
      if (ctx.branches.length + 1 >= MAX_BRANCHES) {
        st.core.log.log(L_ERR, 'ERROR: append_branch: max nr of branches exceeded');
        break;
      }
      const c = list[i];
      ctx.branches.push(c.received ? { uri: c.uri, q: c.q, dstUri: c.received } : { uri: c.uri, q: c.q });
      if (c.flags & FL_NAT) nat = true;
    }
  }
  if (nat && o.natFlag >= 0) ctx.flags |= 1 << o.natFlag;
  return 1;
}

/** registered(): 1 when the R-URI's AOR has a valid binding in the table. */
export function registered(st: RegistrarState, ctx: MsgContext, table: string): number | Promise<number> {
  const ul = st.usrloc();
  let u: SipUri;
  try {
    u = parseUri(ctx.ruri);
  } catch {
    return -1;
  }
  const raw = aorOf(u, st.opts.useDomain);
  if (raw === undefined) return -1;
  const aor = ul.normalizeAor(raw);
  const now = ul.contactsNow(table, aor);
  if (now) return now.length > 0 ? 1 : -1;
  return ul.contacts(table, aor).then(
    (l) => (l.length > 0 ? 1 : -1),
    () => -1,
  );
}

const int = (def: number, min?: number) => ({
  type: 'int' as const,
  default: def,
  validate(v: ParamValue) {
    if (!Number.isInteger(Number(v)) || (min !== undefined && Number(v) < min)) {
      throw new FixupError(`must be an integer${min !== undefined ? ` ≥ ${min}` : ''}`);
    }
  },
});

export default defineModule<RegistrarState>({
  name: 'registrar',
  deps: ['usrloc'],
  params: {
    default_expires: int(3600, 0),
    min_expires: int(60, 0),
    max_expires: int(0, 0),
    min_expires_raise: int(0, 0),
    max_contacts: int(0, 0),
    append_branches: int(1, 0),
    desc_time_order: int(0, 0),
    nat_flag: {
      type: 'int',
      default: -1,
      validate(v: ParamValue) {
        const n = Number(v);
        if (!Number.isInteger(n) || n < -1 || n > 31)
          throw new FixupError('nat_flag must be a flag number 0–31');
      },
    },
    use_domain: int(0, 0),
    case_sensitive: int(0, 0),
    received_avp: { type: 'string', default: '' },
    default_q: {
      type: 'int',
      default: -1,
      validate(v: ParamValue) {
        const n = Number(v);
        if (!Number.isInteger(n) || n < -1 || n > 1000)
          throw new FixupError('default_q must be -1 or 0–1000');
      },
    },
  },
  init(core, p) {
    const num = (k: string) => Number(p[k] ?? 0);
    const opts: RegistrarOptions = {
      defaultExpires: num('default_expires'),
      minExpires: num('min_expires'),
      maxExpires: num('max_expires'),
      minExpiresRaise: num('min_expires_raise') !== 0,
      maxContacts: num('max_contacts'),
      appendBranches: num('append_branches') !== 0,
      descTimeOrder: num('desc_time_order') !== 0,
      natFlag: num('nat_flag'),
      useDomain: num('use_domain') !== 0,
      caseSensitive: num('case_sensitive') !== 0,
      receivedAvp: String(p.received_avp ?? ''),
      defaultQ: num('default_q'),
    };
    let ul: Usrloc | undefined;
    const st: RegistrarState = {
      core,
      opts,
      tagPrefix: randomBytes(6).toString('hex'),
      replies: new Map(),
      usrloc() {
        if (!ul) {
          ul = usrlocFor(core);
          if (!ul) throw new Error('registrar: usrloc is not loaded');
          ul.caseSensitive = opts.caseSensitive;
          if (opts.useDomain) ul.opts.useDomain = true;
        }
        return ul;
      },
    };
    // usrloc is normally loaded first; if not, this happens on first use
    if (usrlocFor(core)) st.usrloc();
    return st;
  },
  functions: {
    save: {
      signatures: [[tableArg()]],
      routes: ['request', 'failure'],
      async: true,
      run: (ctx, st, table: string) => save(st, ctx, table, true),
    },
    save_noreply: {
      signatures: [[tableArg()]],
      routes: ['request', 'failure'],
      async: true,
      run: (ctx, st, table: string) => save(st, ctx, table, false),
    },
    lookup: {
      signatures: [[tableArg()]],
      routes: ['request', 'failure'],
      async: true,
      run: (ctx, st, table: string) => lookup(st, ctx, table),
    },
    registered: {
      signatures: [[tableArg()]],
      routes: REQUEST_ROUTES,
      async: true,
      run: (ctx, st, table: string) => registered(st, ctx, table),
    },
  },
});
