/** Shared helpers for the module tests: messages, contexts, a fake core, fixup + run. */
import type { CoreApi } from '../../src/core/api.js';
import type { Endpoint } from '../../src/core/context.js';
import { L_DBG, Logger, MemorySink } from '../../src/core/log.js';
import type { FixupEnv, ModuleDef, ParamValue, RouteKind, ScriptArg } from '../../src/core/module.js';
import { MessageContext } from '../../src/core/msg-context.js';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';

export const SRC: Endpoint = { ip: '195.37.77.100', port: 5040, proto: 'udp', af: 4 };
export const DST: Endpoint = { ip: '195.37.77.101', port: 5060, proto: 'udp', af: 4 };

/** The INVITE of SER's exec example (seed 003 §4.1), with a short SDP body. */
export const BODY = 'v=0\r\no=alice 1 1 IN IP4 123.20.128.35\r\ns=-\r\nc=IN IP4 123.20.128.35\r\nt=0 0\r\n';
export function invite(extra: readonly string[] = [], ruri = 'sip:jiri@iptel.org', body = BODY): Buffer {
  const lines = [
    `INVITE ${ruri} SIP/2.0`,
    'Via: SIP/2.0/UDP 195.37.77.100:5040;branch=z9hG4bK-1',
    'Max-Forwards: 10',
    'From: "alice" <sip:alice@iptel.org>;tag=76ff7a07',
    'To: <sip:jiri@iptel.org>',
    'Call-ID: d10815e0@213.20.128.35',
    'CSeq: 2 INVITE',
    'Contact: <sip:123.20.128.35:9315>',
    'User-Agent: TestUA/1.0',
    ...extra,
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(body, 'latin1')}`,
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
}

export function reply(): Buffer {
  const lines = [
    'SIP/2.0 486 Busy Here',
    'Via: SIP/2.0/UDP 195.37.77.100:5040;branch=z9hG4bK-1',
    'From: "alice" <sip:alice@iptel.org>;tag=76ff7a07',
    'To: <sip:jiri@iptel.org>;tag=xyz',
    'Call-ID: d10815e0@213.20.128.35',
    'CSeq: 2 INVITE',
    'Content-Length: 0',
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

export function ctxOf(buf: Buffer, kind: RouteKind = 'request'): MessageContext {
  return new MessageContext(parseMessage(buf, { datagram: true }), SRC, DST, kind);
}

export function reparse(msg: SipMessage): SipMessage {
  return parseMessage(msg.serialize(), { datagram: true });
}

export interface FakeCore {
  core: CoreApi;
  sink: MemorySink;
}

export function fakeCore(debug = L_DBG): FakeCore {
  const sink = new MemorySink();
  const log = new Logger(debug, sink);
  return { core: { log } as unknown as CoreApi, sink };
}

const ENV: FixupEnv = { routeKind: 'request', routeExists: () => true, modules: new Set() };

function toArg(v: string | number): ScriptArg {
  return typeof v === 'number'
    ? { kind: 'number', value: v, text: String(v) }
    : { kind: 'string', value: v, quote: '"' };
}

/** Loaded module: `fn(name, ...args)` fixes the arguments up once and returns a runner. */
export interface Loaded<S> {
  state: S;
  fixup(name: string, ...args: (string | number)[]): unknown[];
  fn(name: string, ...args: (string | number)[]): (ctx: MessageContext) => Promise<number>;
  call(ctx: MessageContext, name: string, ...args: (string | number)[]): Promise<number>;
}

export async function load<S>(
  mod: ModuleDef<S>,
  core: CoreApi,
  params: Record<string, ParamValue> = {},
): Promise<Loaded<S>> {
  const all: Record<string, ParamValue> = {};
  for (const [k, p] of Object.entries(mod.params ?? {})) {
    if (p.default !== undefined) all[k] = p.default;
  }
  for (const [k, v] of Object.entries(params)) {
    const spec = mod.params?.[k];
    if (!spec) throw new Error(`no parameter ${k}`);
    spec.validate?.(v);
    all[k] = v;
  }
  const state = (await mod.init?.(core, all)) as S;
  const fixup = (name: string, ...args: (string | number)[]) => {
    const f = mod.functions?.[name];
    if (!f) throw new Error(`no function ${name}`);
    const sig = f.signatures.find((s) => s.length === args.length);
    if (!sig) throw new Error(`${name}: no signature with ${args.length} argument(s)`);
    return sig.map((spec, i) => spec.fixup(toArg(args[i]!), ENV));
  };
  const fn = (name: string, ...args: (string | number)[]) => {
    const fixed = fixup(name, ...args);
    const f = mod.functions![name]!;
    return async (ctx: MessageContext) => {
      if (!f.routes.includes(ctx.routeKind)) throw new Error(`${name} not allowed in ${ctx.routeKind} route`);
      return await f.run(ctx, state, ...fixed);
    };
  };
  return { state, fixup, fn, call: (ctx, name, ...args) => fn(name, ...args)(ctx) };
}
