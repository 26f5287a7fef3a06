/**
 * The management plane of a running ser: raw FIFO requests as serweb and shell scripts
 * write them (seed 003 §4.2), JSON-RPC on the unix socket and over HTTP, /metrics.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants as C, existsSync, openSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { mkfifo } from '../../src/mgmt/fifo.js';
import { fifoCall } from '../../src/mgmt/fifo-client.js';
import { freePort, request, type Ser, sleep, startSer, testChildren, UdpPeer } from './harness.js';

const uniq = () => `${process.pid}_${randomBytes(4).toString('hex')}`;

/** A reply FIFO in /tmp, opened for reading before the request is sent. */
function replyFifo(name = `it_reply_${uniq()}`): { name: string; text: Promise<string>; close(): void } {
  const path = `/tmp/${name}`;
  mkfifo(path, 0o600);
  const fd = openSync(path, C.O_RDONLY | C.O_NONBLOCK);
  const s = new Socket({ fd, readable: true, writable: false });
  const chunks: Buffer[] = [];
  const text = new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`no reply in ${path}`)), 4000);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => {
      clearTimeout(t);
      res(Buffer.concat(chunks).toString());
    });
  });
  return {
    name,
    text,
    close() {
      s.destroy();
      if (existsSync(path)) unlinkSync(path);
    },
  };
}

function rpcLine(path: string, msg: unknown): Promise<Record<string, unknown>> {
  return new Promise((res, rej) => {
    const c = connect(path);
    let buf = '';
    c.on('connect', () => c.write(`${JSON.stringify(msg)}\n`));
    c.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        c.destroy();
        res(JSON.parse(buf.slice(0, nl)));
      }
    });
    c.on('error', rej);
  });
}

const CFG = (fifo: string) => `fifo="${fifo}"
loadmodule "sl.so"
route { sl_send_reply("404", "Not Found"); }
`;

describe('FIFO server of a running ser', () => {
  const fifo = `/tmp/ser_it_fifo_${uniq()}`;
  let ser: Ser;
  before(async () => {
    ser = await startSer(CFG(fifo));
  });
  after(async () => {
    await ser.stop();
  });

  it('creates the FIFO with fifo_mode (default 0620) and removes it on stop (checked in the next suite)', async () => {
    const { statSync } = await import('node:fs');
    const st = statSync(fifo);
    assert.ok(st.isFIFO());
    assert.equal(st.mode & 0o777, 0o620);
  });

  it('raw `:uptime:reply` (M4): the reply FIFO relative to /tmp gets 200 and the three lines', async () => {
    const r = replyFifo();
    writeFileSync(fifo, `:uptime:${r.name}\n\n`);
    const text = await r.text;
    r.close();
    const lines = text.split('\n');
    assert.equal(lines[0], '200 ok');
    assert.match(lines[1], /^Now: \w{3} \w{3} \d{1,2} \d\d:\d\d:\d\d \d{4}$/);
    assert.match(lines[2], /^Up Since: \w{3} \w{3} \d{1,2} \d\d:\d\d:\d\d \d{4}$/);
    assert.match(lines[3], /^Up time: \d+ \[sec\]$/);
  });

  it('which lists the core set in SER order and the module commands; version prints the signature', async () => {
    const w = await fifoCall(fifo, 'which');
    assert.equal(w.code, 200);
    assert.deepEqual(w.body.slice(0, 5), ['ps', 'which', 'version', 'uptime', 'print']);
    for (const c of ['arg', 'pwd', 'kill', 'sl_stats']) assert.ok(w.body.includes(c), c);
    const v = await fifoCall(fifo, 'version');
    assert.match(v.body[0], /^Server: Sip EXpress router \(.+ \(.+\/.+\)\)$/);
  });

  it("an unknown command: 500 command 'foobar' not available (M3)", async () => {
    const r = await fifoCall(fifo, 'foobar');
    assert.equal(`${r.code} ${r.reason}`, "500 command 'foobar' not available");
  });

  it('ps prints `<n> <pid> <description>` with the real pid; print echoes; arg and pwd', async () => {
    const ps = await fifoCall(fifo, 'ps');
    if (testChildren() > 1) {
      // the multi-process model: SER's one line per process (test/integration/children.test.ts)
      assert.equal(ps.body[0], `0 ${ser.proc.pid} attendant`);
      assert.match(ps.body[1], new RegExp(`^1 \\d+ receiver child=0 sock=0 @ 127\\.0\\.0\\.1::${ser.port}`));
      assert.ok(ps.body.includes(`${testChildren() + 1} ${ser.proc.pid} fifo server`), ps.body.join('\n'));
    } else {
      assert.match(
        ps.body[0],
        new RegExp(`^0 ${ser.proc.pid} attendant, receiver sock=0 @ 127\\.0\\.0\\.1::${ser.port}`),
      );
      assert.match(ps.body[0], /timer, fifo server/);
    }
    assert.deepEqual((await fifoCall(fifo, 'print', ['a b', 'c'])).body, ['a b', 'c']);
    assert.ok((await fifoCall(fifo, 'arg')).body.some((l) => l.endsWith('ser.cfg')));
    assert.equal((await fifoCall(fifo, 'pwd')).body.length, 1);
  });

  it('sl_stats moves after a stateless 404', async () => {
    const before404 = await fifoCall(fifo, 'sl_stats');
    const n = (r: { body: string[] }) => Number(r.body.find((l) => l.startsWith('404:'))!.split(' ')[1]);
    const ua = await UdpPeer.open();
    ua.send(request('OPTIONS', `sip:x@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port }), ser.port);
    const rep = await ua.nextMsg();
    ua.close();
    assert.equal(rep.status, 404);
    assert.equal(n(await fifoCall(fifo, 'sl_stats')), n(before404) + 1);
  });

  it('a malformed request gets a 400 status line', async () => {
    const r = replyFifo();
    writeFileSync(fifo, `:bad command!:${r.name}\nx\n\n`);
    const text = await r.text;
    r.close();
    assert.match(text, /^400 malformed command name 'bad command!'\n$/);
  });

  it('two clients at once, and two requests in one write, are framed apart', async () => {
    const a = replyFifo();
    const b = replyFifo();
    writeFileSync(fifo, `:print:${a.name}\none\n\n:print:${b.name}\ntwo\n\n`);
    const [ta, tb] = await Promise.all([a.text, b.text]);
    a.close();
    b.close();
    assert.equal(ta, '200 ok\none\n');
    assert.equal(tb, '200 ok\ntwo\n');
    const many = await Promise.all(
      Array.from({ length: 8 }, (_, i) => fifoCall(fifo, 'print', [`client ${i}`])),
    );
    for (const [i, r] of many.entries()) assert.deepEqual(r.body, [`client ${i}`]);
  });

  it('a request ended by EOF instead of the empty line is answered', async () => {
    const r = replyFifo();
    writeFileSync(fifo, `:print:${r.name}\nlast line`);
    assert.equal(await r.text, '200 ok\nlast line\n');
    r.close();
  });

  it('a client that never opens its reply FIFO does not block the next request', async () => {
    const name = `it_never_${uniq()}`;
    mkfifo(`/tmp/${name}`, 0o600);
    writeFileSync(fifo, `:uptime:${name}\n\n`);
    const t0 = Date.now();
    const r = await fifoCall(fifo, 'uptime');
    assert.equal(r.code, 200);
    assert.ok(Date.now() - t0 < 500, `took ${Date.now() - t0} ms`);
    await ser.waitLog(/cannot open reply FIFO .*it_never_.*ENXIO/, 3000);
    unlinkSync(`/tmp/${name}`);
  });

  it('JSON-RPC on the unix socket next to the FIFO: result, error, unknown method', async () => {
    const sock = `${fifo}.sock`;
    const up = await rpcLine(sock, { jsonrpc: '2.0', id: 7, method: 'uptime' });
    assert.equal(up.id, 7);
    const res = up.result as { status: number; data: { uptime: number } };
    assert.equal(res.status, 200);
    assert.equal(typeof res.data.uptime, 'number');
    const pr = await rpcLine(sock, { jsonrpc: '2.0', id: 8, method: 'print', params: ['x', 1] });
    assert.deepEqual((pr.result as { body: string[] }).body, ['x', '1']);
    const un = await rpcLine(sock, { jsonrpc: '2.0', id: 9, method: 'foobar' });
    assert.deepEqual(un.error, { code: -32601, message: "command 'foobar' not available" });
    const bad = await rpcLine(sock, { jsonrpc: '2.0', id: 10, method: 'help', params: ['nope'] });
    assert.equal((bad.error as { code: number }).code, -32000);
    const st = await rpcLine(sock, { jsonrpc: '2.0', id: 11, method: 'get_statistics', params: ['sl:404'] });
    assert.equal(typeof (st.result as { data: { sl: Record<string, number> } }).data.sl['404'], 'number');
  });
});

describe('HTTP JSON-RPC and /metrics', () => {
  const fifo = `/tmp/ser_it_fifo_${uniq()}`;
  const token = randomBytes(12).toString('hex');
  let ser: Ser;
  let base: string;
  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const saved = { ...process.env };
    process.env.SER_HTTP = String(port);
    process.env.SER_HTTP_TOKEN = token;
    process.env.SER_HTTP_AUTH = 'admin:s3cret';
    try {
      ser = await startSer(CFG(fifo));
    } finally {
      for (const k of ['SER_HTTP', 'SER_HTTP_TOKEN', 'SER_HTTP_AUTH']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
  after(async () => {
    await ser.stop();
  });

  const post = (body: unknown, auth?: string) =>
    fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
      body: JSON.stringify(body),
    });

  it('401 without credentials or with a wrong token, on RPC and /metrics', async () => {
    assert.equal((await post({ jsonrpc: '2.0', id: 1, method: 'uptime' })).status, 401);
    assert.equal((await post({ jsonrpc: '2.0', id: 1, method: 'uptime' }, 'Bearer nope')).status, 401);
    const m = await fetch(`${base}/metrics`);
    assert.equal(m.status, 401);
    assert.match(m.headers.get('www-authenticate') ?? '', /Bearer/);
  });

  it('bearer token and basic auth both work; batches are answered', async () => {
    const r = await post({ jsonrpc: '2.0', id: 1, method: 'version' }, `Bearer ${token}`);
    assert.equal(r.status, 200);
    const j = (await r.json()) as { result: { body: string[] } };
    assert.match(j.result.body[0], /^Server: Sip EXpress router/);
    const basic = `Basic ${Buffer.from('admin:s3cret').toString('base64')}`;
    const b = await post(
      [
        { jsonrpc: '2.0', id: 1, method: 'which' },
        { jsonrpc: '2.0', id: 2, method: 'nope' },
      ],
      basic,
    );
    const arr = (await b.json()) as { id: number; result?: unknown; error?: { code: number } }[];
    assert.equal(arr.length, 2);
    assert.ok(arr[0].result);
    assert.equal(arr[1].error?.code, -32601);
  });

  it('/metrics has core, net and sl counters in Prometheus text, and they move', async () => {
    const get = async () => {
      const r = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      return r.text();
    };
    const val = (t: string, n: string) => Number(new RegExp(`^${n} (\\S+)$`, 'm').exec(t)?.[1]);
    const t1 = await get();
    for (const n of [
      'ser_core_rcv_requests',
      'ser_sl_404',
      'ser_net_udp_msgsIn',
      'ser_uptime_seconds',
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
    ]) {
      assert.ok(!Number.isNaN(val(t1, n)), `${n} missing`);
    }
    assert.match(t1, /^# TYPE ser_sl_404 untyped$/m);
    const ua = await UdpPeer.open();
    ua.send(request('OPTIONS', `sip:y@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port }), ser.port);
    await ua.nextMsg();
    ua.close();
    await sleep(20);
    const t2 = await get();
    assert.equal(val(t2, 'ser_sl_404'), val(t1, 'ser_sl_404') + 1);
    assert.equal(val(t2, 'ser_core_rcv_requests'), val(t1, 'ser_core_rcv_requests') + 1);
  });

  it('the FIFO and socket are gone after the server stopped', async () => {
    await ser.stop();
    assert.equal(existsSync(fifo), false);
    assert.equal(existsSync(`${fifo}.sock`), false);
  });
});
