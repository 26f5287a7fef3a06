/**
 * The multi-process model (fork=yes, children=4) over real sockets: steering of requests
 * and replies to the owning worker, CANCEL across workers, usrloc replication (REGISTER on
 * one worker, lookup on another; ul_add over the FIFO), auth nonce replay across workers,
 * `ps`, summed statistics, and a crashed worker restarted with the location table.
 *
 * Which worker handles a message is chosen here by its Call-ID: the owner is
 * hash(Call-ID) % 4 (src/core/cluster-role.ts), whichever worker the kernel handed the
 * datagram to.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashString } from '../../src/core/cluster-role.js';
import { fifoCall } from '../../src/mgmt/fifo-client.js';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import { AUTH_CFG, answer, exchange, makeSubscribers, REALM, register } from './auth-helpers.test.js';
import { request, type Ser, sleep, startSer, UdpPeer } from './harness.js';
import { isReq, isStatus, nextWhere, replyFor } from './tm-helpers.js';

const N = 4;
let uniq = 0;
/** a Call-ID owned by worker `k` */
function callIdFor(k: number, tag: string): string {
  for (let i = 0; i < 10_000; i++) {
    const id = `${tag}-${process.pid}-${uniq++}@children.it`;
    if (hashString(id) % N === k) return id;
  }
  throw new Error('no Call-ID found');
}

const CFG = (fifo: string) => `fork=yes
children=${N}
fifo="${fifo}"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); break; };
  if (method=="REGISTER") { save("location"); break; };
  if (method=="OPTIONS" && uri=~"^sip:ping@") { sl_send_reply("200", "pong"); break; };
  if (!lookup("location")) { sl_send_reply("404", "Not Found"); break; };
  if (!t_relay()) { sl_reply_error(); };
}`;

async function stats(fifo: string, what: string): Promise<Record<string, number>> {
  const r = await fifoCall(fifo, 'get_statistics', [what]);
  assert.equal(r.code, 200, r.reason);
  const out: Record<string, number> = {};
  for (const l of r.body) {
    const m = /^(\S+) = (\d+)$/.exec(l);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

function msg(b: string): SipMessage {
  return parseMessage(Buffer.from(b, 'latin1'), { datagram: true });
}

function ackOrCancel(method: 'ACK' | 'CANCEL', inv: string, to?: string): string {
  const m = msg(inv);
  return [
    `${method} ${m.ruri} SIP/2.0`,
    `Via: ${m.header('via')}`,
    'Max-Forwards: 70',
    `From: ${m.header('from')}`,
    `To: ${to ?? m.header('to')}`,
    `Call-ID: ${m.callId}`,
    `CSeq: ${m.cseq.seq} ${method}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

describe('children=4: steering, replication, mgmt, restart', () => {
  let ser: Ser;
  let uac: UdpPeer;
  let uas: UdpPeer;
  const fifo = join(mkdtempSync(join(tmpdir(), 'ser-children-')), 'fifo');
  const from = () => ({ ip: '127.0.0.1', port: uac.port });

  const registerUser = async (user: string, owner: number) => {
    const r = request('REGISTER', 'sip:127.0.0.1', from(), [
      `To: <sip:${user}@127.0.0.1>`,
      `From: <sip:${user}@127.0.0.1>;tag=r1`,
      `Contact: <sip:${user}@127.0.0.1:${uas.port}>;expires=3600`,
      `Call-ID: ${callIdFor(owner, `reg-${user}`)}`,
    ]);
    uac.send(r, ser.port);
    const ok = await nextWhere(uac, isStatus(200));
    assert.equal(ok.cseq.method, 'REGISTER');
  };

  /** INVITE user (handled by worker `owner`): the UAS must get it, answers 486, ACK. */
  const callUser = async (user: string, owner: number) => {
    const i = request('INVITE', `sip:${user}@127.0.0.1`, from(), [
      `Call-ID: ${callIdFor(owner, `inv-${user}`)}`,
    ]);
    uac.send(i, ser.port);
    const f = await nextWhere(uas, isReq('INVITE'));
    assert.equal(f.ruri, `sip:${user}@127.0.0.1:${uas.port}`);
    uas.send(replyFor(f, 486, 'Busy Here'), ser.port);
    const busy = await nextWhere(uac, isStatus(486));
    uac.send(ackOrCancel('ACK', i, busy.header('to')), ser.port);
    await nextWhere(uas, isReq('ACK'));
  };

  before(async () => {
    uac = await UdpPeer.open();
    uas = await UdpPeer.open();
    ser = await startSer(CFG(fifo));
  });
  after(async () => {
    uac.close();
    uas.close();
    await ser.stop();
  });

  it('serctl ps: the attendant, one receiver per worker (every socket), the FIFO server', async () => {
    const r = await fifoCall(fifo, 'ps');
    assert.equal(r.code, 200);
    assert.equal(r.body.length, N + 3, r.body.join('\n'));
    assert.equal(r.body[0], `0 ${ser.proc.pid} attendant`);
    const pids = new Set<string>();
    for (let k = 0; k < N; k++) {
      const m = new RegExp(
        `^${k + 1} (\\d+) receiver child=${k} sock=0 @ 127\\.0\\.0\\.1::${ser.port} \\(udp\\), sock=1 @ 127\\.0\\.0\\.1::${ser.port} \\(tcp\\), timer$`,
      ).exec(r.body[k + 1]);
      assert.ok(m, r.body[k + 1]);
      assert.notEqual(Number(m[1]), ser.proc.pid);
      pids.add(m[1]);
    }
    assert.equal(pids.size, N, 'one process per worker');
    assert.equal(r.body[N + 1], `${N + 1} ${ser.proc.pid} fifo server`);
    assert.match(r.body[N + 2], new RegExp(`^${N + 2} ${ser.proc.pid} rpc server @ `));
  });

  it('REGISTER on each worker, INVITE looked up on every other worker (usrloc replication)', async () => {
    for (let k = 0; k < N; k++) await registerUser(`u${k}`, k);
    // replicated in memory on the other three workers: 4 changes × 3
    await sleep(100);
    assert.equal((await stats(fifo, 'cluster:events_in'))['cluster:events_in'], N * (N - 1));
    for (let k = 0; k < N; k++) for (let j = 0; j < N; j++) if (j !== k) await callUser(`u${k}`, j);
  });

  it('ul_show_contact over the FIFO sees a binding saved by any worker; ul_add reaches all', async () => {
    for (let k = 0; k < N; k++) {
      const r = await fifoCall(fifo, 'ul_show_contact', ['location', `u${k}`]);
      assert.equal(r.code, 200, r.reason);
      assert.match(r.body.join('\n'), new RegExp(`sip:u${k}@127\\.0\\.0\\.1:${uas.port}`));
    }
    const add = await fifoCall(fifo, 'ul_add', [
      'location',
      'fifo1',
      `sip:fifo1@127.0.0.1:${uas.port}`,
      '3600',
      '1',
    ]);
    assert.equal(add.code, 200, add.reason);
    await sleep(100);
    for (let j = 0; j < N; j++) await callUser('fifo1', j);
    const rm = await fifoCall(fifo, 'ul_rm', ['location', 'fifo1']);
    assert.equal(rm.code, 200, rm.reason);
    await sleep(100);
    for (let j = 0; j < N; j++) {
      uac.send(
        request('INVITE', 'sip:fifo1@127.0.0.1', from(), [`Call-ID: ${callIdFor(j, 'gone')}`]),
        ser.port,
      );
      assert.equal((await nextWhere(uac, (m) => !m.isRequest && m.status >= 200)).status, 404);
    }
  });

  it('CANCEL after INVITE on every worker: 200, CANCEL to the branch, 487 relayed', async () => {
    for (let k = 0; k < N; k++) {
      const i = request('INVITE', 'sip:u0@127.0.0.1', from(), [`Call-ID: ${callIdFor(k, 'cancel')}`]);
      uac.send(i, ser.port);
      const f = await nextWhere(uas, isReq('INVITE'));
      uas.send(replyFor(f, 180, 'Ringing'), ser.port);
      await nextWhere(uac, isStatus(180));
      uac.send(ackOrCancel('CANCEL', i), ser.port);
      const c200 = await nextWhere(uac, isStatus(200));
      assert.equal(c200.cseq.method, 'CANCEL');
      const c = await nextWhere(uas, isReq('CANCEL'));
      assert.equal(c.topVia?.branch, f.topVia?.branch);
      uas.send(replyFor(c, 200, 'OK'), ser.port);
      uas.send(replyFor(f, 487, 'Request Terminated'), ser.port);
      const t = await nextWhere(uac, isStatus(487));
      uac.send(ackOrCancel('ACK', i, t.header('to')), ser.port);
      await nextWhere(uas, isReq('ACK'));
    }
  });

  it('replies reached the worker owning their transaction (some were steered)', async () => {
    // the workers' counters are read one after the other: let frames in flight land
    let s = await stats(fifo, 'cluster');
    for (let i = 0; i < 20 && s['cluster:steered_in'] !== s['cluster:steered_out']; i++) {
      await sleep(50);
      s = await stats(fifo, 'cluster');
    }
    // 20 transactions with owners spread over 4 workers: whatever worker the kernel picks
    // for each datagram, some requests and some replies arrived at a non-owner
    assert.ok(s['cluster:steered_requests'] > 0, JSON.stringify(s));
    assert.ok(s['cluster:steered_replies'] > 0, JSON.stringify(s));
    assert.equal(s['cluster:steered_in'], s['cluster:steered_out']);
    assert.equal(s['cluster:dropped'], 0);
    assert.equal(s['cluster:unconfirmed'], 0);
  });

  it('statistics are summed over the workers (get_statistics, sl_stats)', async () => {
    const before = await stats(fifo, 'sl');
    const sl0 = await fifoCall(fifo, 'sl_stats');
    const n200 = Number(/^200: (\d+)$/m.exec(sl0.body.join('\n'))?.[1]);
    for (let i = 0; i < 12; i++) {
      uac.send(
        request('OPTIONS', 'sip:ping@127.0.0.1', from(), [`Call-ID: ${callIdFor(i % N, 'opt')}`]),
        ser.port,
      );
      assert.equal((await nextWhere(uac, isStatus(200))).cseq.method, 'OPTIONS');
    }
    const after = await stats(fifo, 'sl');
    assert.equal(after['sl:200'] - before['sl:200'], 12);
    const sl1 = await fifoCall(fifo, 'sl_stats');
    assert.equal(Number(/^200: (\d+)$/m.exec(sl1.body.join('\n'))?.[1]), n200 + 12);
    // usrloc is replicated: its figures are one worker's, not four times them
    const ul = await stats(fifo, 'usrloc');
    const reg = Object.entries(ul).find(([k]) => k.includes('registered'));
    assert.ok(reg, JSON.stringify(ul));
    assert.equal(reg[1], N);
  });

  it('a killed worker is restarted (logged) and gets the location table from a peer', async () => {
    const ps = await fifoCall(fifo, 'ps');
    const old = Number(/^3 (\d+) /.exec(ps.body[3])?.[1]);
    assert.ok(old > 0);
    process.kill(old, 'SIGKILL');
    await ser.waitLog(/worker 2 \(pid \d+\) exited with SIGKILL, restarting it/, 5000);
    await ser.waitLog(/worker 2 restarted, pid \d+/, 15000);
    const ps2 = await fifoCall(fifo, 'ps');
    const now = Number(/^3 (\d+) receiver child=2 /.exec(ps2.body[3])?.[1]);
    assert.ok(now > 0 && now !== old, ps2.body.join('\n'));
    await sleep(300);
    // worker 2 owns these calls: the bindings saved before the crash are there
    for (let k = 0; k < N; k++) await callUser(`u${k}`, 2);
    const r = request('OPTIONS', 'sip:ping@127.0.0.1', from(), [`Call-ID: ${callIdFor(2, 'alive')}`]);
    uac.send(r, ser.port);
    assert.equal((await nextWhere(uac, isStatus(200))).reason, 'pong');
  });
});

describe('children=4: digest nonces across workers', () => {
  let ser: Ser;
  let phone: UdpPeer;
  before(async () => {
    const dbUrl = `sqlite://${join(mkdtempSync(join(tmpdir(), 'ser-children-auth-')), 'ser.db')}`;
    await makeSubscribers(dbUrl, { alice: 'wonderland' });
    ser = await startSer(`fork=yes\nchildren=${N}\n${AUTH_CFG(dbUrl)}`);
    phone = await UdpPeer.open();
  });
  after(async () => {
    phone.close();
    await ser.stop();
  });

  /** REGISTER for alice whose Call-ID worker `k` owns */
  const reg = (k: number, extra: string[], cseq: number) => {
    const id = callIdFor(k, 'auth');
    return register(phone, 'alice', extra, cseq).replace(/^Call-ID: .*$/m, `Call-ID: ${id}`);
  };

  it('a header replayed to another worker is refused; nc growth is accepted on any worker', async () => {
    const c = await exchange(phone, reg(0, [], 1), ser.port);
    assert.equal(c.status, 401);
    const a1 = answer({
      user: 'alice',
      password: 'wonderland',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
    });
    assert.equal((await exchange(phone, reg(0, [a1], 2), ser.port)).status, 200);
    for (let k = 0; k < N; k++) {
      // an attacker's REGISTER with the captured header, on every worker
      const r = await exchange(phone, reg(k, [a1], 3), ser.port);
      assert.equal(r.status, 401, `replay on worker ${k}`);
      assert.equal(r.wwwAuthenticate[0]!.stale, true);
    }
    // the honest UA counting up: nc 2 on worker 1, nc 3 on worker 3, then nc 3 again refused
    const a2 = answer({
      user: 'alice',
      password: 'wonderland',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
      nc: 2,
    });
    assert.equal((await exchange(phone, reg(1, [a2], 4), ser.port)).status, 200);
    const a3 = answer({
      user: 'alice',
      password: 'wonderland',
      challenge: c,
      method: 'REGISTER',
      uri: `sip:${REALM}`,
      nc: 3,
    });
    assert.equal((await exchange(phone, reg(3, [a3], 5), ser.port)).status, 200);
    assert.equal((await exchange(phone, reg(2, [a3], 6), ser.port)).status, 401);
  });
});
