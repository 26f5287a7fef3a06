/**
 * Script benchmark: load+check+compile time of a generated 2,000-line script,
 * and the per-message run rate of a default-ser.cfg-like main route with
 * stand-in actions (synchronous, as sl/rr/maxfwd/registrar are for the script).
 *
 *   npm run build && node dist/bench/script-load.js
 */
import type { MsgContext } from '../src/core/context.js';
import { ANY_ROUTE, type FunctionSpec, type ModuleDef } from '../src/core/module.js';
import { int, str } from '../src/script/args.js';
import { loadConfig } from '../src/script/load.js';

const fn = (
  value: number | ((ctx: MsgContext) => number),
  sigs: FunctionSpec['signatures'] = [[]],
): FunctionSpec => ({
  signatures: sigs,
  routes: ANY_ROUTE,
  run: typeof value === 'number' ? () => value : (ctx) => value(ctx),
});

let sent = 0;
const countSent = (): number => {
  sent++;
  return 1;
};
const setFlag = (ctx: MsgContext): number => {
  ctx.flags |= 2;
  return 1;
};
const core: ModuleDef = {
  name: 'core',
  functions: {
    setflag: fn(setFlag, [[int('flag')]]),
    isflagset: fn(-1, [[int('flag')]]),
    log: fn(1, [[str('m')], [int('l'), str('m')]]),
    len_gt: fn(-1, [[int('n', { allowMaxLen: true })]]),
    rewritehostport: fn(1, [[str('hp')]]),
    append_hf: fn(1, [[str('hf')]]),
  },
};
const mods: Record<string, ModuleDef> = {
  core,
  sl: {
    name: 'sl',
    functions: { sl_send_reply: fn(countSent, [[str('c'), str('r')]]), sl_reply_error: fn(1) },
  },
  tm: { name: 'tm', functions: { t_relay: fn(countSent), t_on_failure: fn(1, [[str('r')]]) } },
  rr: { name: 'rr', functions: { record_route: fn(1), loose_route: fn(-1) } },
  maxfwd: { name: 'maxfwd', functions: { mf_process_maxfwd_header: fn(1, [[str('n')]]) } },
  usrloc: { name: 'usrloc' },
  registrar: {
    name: 'registrar',
    functions: { save: fn(countSent, [[str('t')]]), lookup: fn(1, [[str('t')]]) },
  },
};

const HEADER = `debug=3
fork=yes
check_via=no
dns=no
rev_dns=no
fifo="/tmp/ser_fifo"
loadmodule "/usr/local/lib/ser/modules/sl.so"
loadmodule "/usr/local/lib/ser/modules/tm.so"
loadmodule "/usr/local/lib/ser/modules/rr.so"
loadmodule "/usr/local/lib/ser/modules/maxfwd.so"
loadmodule "/usr/local/lib/ser/modules/usrloc.so"
loadmodule "/usr/local/lib/ser/modules/registrar.so"
`;

const MAIN = `route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); break; };
  if (msg:len >= max_len) { sl_send_reply("513", "Message too big"); break; };
  if (!method=="REGISTER") record_route();
  if (loose_route()) { append_hf("P-hint: rr-enforced\\r\\n"); t_relay(); break; };
  if (!uri==myself) { append_hf("P-hint: outbound\\r\\n"); route(1); break; };
  if (uri==myself) {
    if (method=="REGISTER") { save("location"); break; };
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); break; };
    append_hf("P-hint: usrloc applied\\r\\n");
  };
  route(1);
}
route[1] {
  if (!t_relay()) { sl_reply_error(); };
}
`;

function generated(lines: number): string {
  const out: string[] = [HEADER, MAIN];
  let n = HEADER.split('\n').length + MAIN.split('\n').length;
  for (let r = 2; n < lines; r++) {
    const block = `route[${r}] {
  # generated block ${r}
  if (method=="INVITE" && uri=~"^sip:${r}[0-9]{3}@" || src_ip==10.${r % 256}.0.0/16) {
    setflag(${r % 32});
    rewritehostport("gw${r}.example.net:5060");
    log(1, "route ${r}\\n");
  } else if (isflagset(${r % 32})) {
    route(${r - 1});
  } else {
    sl_send_reply("404", "Not here ${r}");
    break;
  };
  if (src_port == ${5000 + r}) { t_relay(); return(1); };
}
`;
    out.push(block);
    n += block.split('\n').length - 1;
  }
  return out.join('');
}

function ctxFor(method: string, ruri: string): MsgContext {
  return {
    msg: {
      isRequest: true,
      method,
      status: 0,
      reason: '',
      ruri,
      raw: Buffer.alloc(700),
    } as unknown as MsgContext['msg'],
    routeKind: 'request',
    flags: 0,
    ruri,
    src: { ip: '192.0.2.55', port: 5060, proto: 'udp', af: 4 },
    dst: { ip: '192.0.2.1', port: 5060, proto: 'udp', af: 4 },
    branches: [],
    ruriQ: -1,
    dstUri: undefined,
    avps: new Map(),
    lastError: undefined,
    drop: false,
  };
}

async function main(): Promise<void> {
  const text = generated(2000);
  const lines = text.split('\n').length;
  const hooks = {
    isMyself: (h: string) => h === 'example.com' || h === '192.0.2.1',
    resolve: async () => ['127.0.0.1'],
  };
  // warm-up, then measure
  await loadConfig({ text, file: 'gen.cfg' }, { registry: mods, hooks });
  const runs = 10;
  const t0 = process.hrtime.bigint();
  let r = await loadConfig({ text, file: 'gen.cfg' }, { registry: mods, hooks });
  for (let k = 1; k < runs; k++) r = await loadConfig({ text, file: 'gen.cfg' }, { registry: mods, hooks });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / runs;
  if (r.errors.length > 0) throw new Error(`generated script has errors: ${r.errors[0]!.message}`);
  console.log(`load+check+compile: ${lines} lines in ${ms.toFixed(2)} ms (mean of ${runs})`);

  const script = r.script!;
  if (script.isAsync('request', '0')) throw new Error('main route should be synchronous');
  const msgs = [
    ctxFor('INVITE', 'sip:bob@example.com'),
    ctxFor('REGISTER', 'sip:example.com'),
    ctxFor('INVITE', 'sip:carol@elsewhere.org'),
    ctxFor('BYE', 'sip:bob@192.0.2.1:5060;transport=udp'),
  ];
  const N = 2_000_000;
  for (let k = 0; k < 200_000; k++) script.run('request', '0', msgs[k & 3]!);
  sent = 0;
  const t1 = process.hrtime.bigint();
  for (let k = 0; k < N; k++) {
    const c = msgs[k & 3]!;
    c.flags = 0;
    script.run('request', '0', c);
  }
  const s = Number(process.hrtime.bigint() - t1) / 1e9;
  console.log(
    `default-ser.cfg-like main route: ${N} messages in ${s.toFixed(2)} s = ${Math.round(N / s).toLocaleString('en-US')} msg/s (${((s / N) * 1e9).toFixed(0)} ns/msg, ${sent} replies/relays)`,
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
