/**
 * Pieces of the multi-process model that need no running server: ownership of messages,
 * the worker mark in tm branches and auth nonces, the mesh over real unix sockets, and
 * the attendant's sums of the workers' statistics.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isEveryWorker, isSummed, sumGroups, sumReplies } from '../../src/core/cluster.js';
import { statisticsReply } from '../../src/mgmt/dispatcher.js';
import { Mesh, type SteeredDatagram } from '../../src/core/cluster-mesh.js';
import { branchMark, hashString, workerOfBranch, workerOfNonce } from '../../src/core/cluster-role.js';
import { ownerOf } from '../../src/core/cluster-worker.js';
import { NonceSigner } from '../../src/modules/auth/nonce.js';
import { parseMessage } from '../../src/sip/message.js';

const req = (callId: string) =>
  parseMessage(
    Buffer.from(
      `INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`,
      'latin1',
    ),
    { datagram: true },
  );
const reply = (branch: string, callId: string) =>
  parseMessage(
    Buffer.from(
      `SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=${branch}\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`,
      'latin1',
    ),
    { datagram: true },
  );

describe('ownership', () => {
  it('a request belongs to hash(Call-ID) % N: stable, and spread over the workers', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const id = `call-${i}@host`;
      const k = ownerOf(req(id), 4);
      assert.equal(k, hashString(id) % 4);
      assert.equal(ownerOf(req(id), 4), k);
      seen.add(k);
    }
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
  });

  it("a reply to one of tm's branches belongs to the worker named in it, others to any", () => {
    const proxied = `z9hG4bK0123456789abcdef.${branchMark(3)}a1b2c35.0`;
    const local = `z9hG4bK${branchMark(2)}a1b2c3u1`;
    assert.equal(workerOfBranch(proxied), 3);
    assert.equal(workerOfBranch(local), 2);
    assert.equal(ownerOf(reply(proxied, 'x@y'), 4), 3);
    assert.equal(ownerOf(reply(local, 'x@y'), 4), 2);
    // a stateless forward's branch, or a mark beyond the workers: whoever read it
    assert.equal(ownerOf(reply('z9hG4bKsl0123', 'x@y'), 4), undefined);
    assert.equal(ownerOf(reply(`z9hG4bK${branchMark(9)}zz`, 'x@y'), 4), undefined);
    assert.equal(workerOfBranch('z9hG4bKw1'), undefined);
    assert.equal(workerOfBranch(undefined), undefined);
  });

  it('a nonce names the worker that issued it and still verifies everywhere', () => {
    for (const k of [0, 1, 7]) {
      const s = new NonceSigner('secret', k);
      const n = s.issue(2_000_000_000);
      assert.equal(workerOfNonce(n), k);
      assert.equal(new NonceSigner('secret', 5).verify(n), 2_000_000_000);
      assert.equal(new NonceSigner('other', k).verify(n), undefined);
    }
  });
});

describe('the mesh between workers (unix sockets)', () => {
  it('steers a datagram with its source, broadcasts events, answers requests and snapshots', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ser-mesh-'));
    const got: { at: number; d?: SteeredDatagram; ev?: [string, unknown, number] }[] = [];
    const make = (k: number) =>
      new Mesh(dir, k, 3, {
        onSteer: (d) => got.push({ at: k, d }),
        onEvent: (t, p, from) => {
          got.push({ at: k, ev: [t, p, from] });
          return undefined;
        },
        onSnapshot: (t) => (t === 'ul' ? [{ snap: k }] : []),
        onRequest: (t, p) => (t === 'double' ? Number(p) * 2 + k : undefined),
        onError: (m) => assert.fail(m),
      });
    const m = [make(0), make(1), make(2)];
    await Promise.all(m.map((x) => x.listen()));
    try {
      const data = Buffer.from('OPTIONS sip:a SIP/2.0\r\n\r\n');
      m[0].steer(2, { sockIndex: 1, srcIp: '::1', srcPort: 5062, af: 6, data });
      await m[1].broadcastApplied('ul', { aor: 'a' }, 1000);
      const wait = async (pred: () => boolean) => {
        for (let i = 0; i < 100 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
      };
      await wait(() => got.length >= 3);
      const st = got.find((g) => g.d)!;
      assert.equal(st.at, 2);
      assert.deepEqual(
        { ...st.d!, data: st.d!.data.toString() },
        {
          sockIndex: 1,
          srcIp: '::1',
          srcPort: 5062,
          af: 6,
          data: data.toString(),
        },
      );
      const evs = got.filter((g) => g.ev).map((g) => [g.at, ...g.ev!]);
      assert.deepEqual(evs.sort(), [
        [0, 'ul', { aor: 'a' }, 1],
        [2, 'ul', { aor: 'a' }, 1],
      ]);
      assert.equal(await m[2].request(1, 'double', 20, 1000), 41);
      assert.equal(await m[2].request(0, 'nobody', 1, 1000), undefined);
      got.length = 0;
      m[1].requestSnapshot('ul');
      await wait(() => got.length >= 1);
      assert.deepEqual(got[0], { at: 1, ev: ['ul', { snap: 0 }, 0] });
      // a peer that is gone: the request times out, the steered datagram is counted as lost
      await m[0].close();
      assert.equal(await m[2].request(0, 'double', 1, 200), undefined);
    } finally {
      await Promise.all(m.map((x) => x.close()));
    }
  });
});

describe('acknowledged broadcasts (usrloc waits for every worker before its 200)', () => {
  it('resolves only once each peer has applied the event; a closed peer does not hold it up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ser-mesh-'));
    const applied: string[] = [];
    // worker 2 applies slowly: its promise settles 150 ms after the event arrives
    const make = (k: number) =>
      new Mesh(dir, k, 3, {
        onSteer: () => {},
        onEvent: (_t, p) =>
          k === 2
            ? new Promise((r) => setTimeout(r, 150)).then(() => void applied.push(`${k}:${String(p)}`))
            : void applied.push(`${k}:${String(p)}`),
        onSnapshot: () => [],
        onRequest: () => undefined,
        onError: (m) => assert.fail(m),
      });
    const m = [make(0), make(1), make(2)];
    await Promise.all(m.map((x) => x.listen()));
    try {
      await Promise.all(m.map((x) => x.connectAll()));
      await m[0].broadcastApplied('ul', 'a', 5000);
      assert.deepEqual(applied.sort(), ['1:a', '2:a'], 'both peers applied before it resolved');
      assert.equal(m[0].stats.unconfirmed, 0);
      // a peer that is gone is not waited for: well under the 5 s bound
      await m[2].close();
      await new Promise((r) => setTimeout(r, 50));
      const t0 = Date.now();
      await m[0].broadcastApplied('ul', 'b', 5000);
      assert.ok(applied.includes('1:b'));
      assert.ok(Date.now() - t0 < 2000, 'did not wait for the closed peer');
    } finally {
      await Promise.all(m.map((x) => x.close()));
    }
  });

  it('gives up on a peer that never confirms after the bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ser-mesh-'));
    let got = 0;
    const make = (k: number) =>
      new Mesh(dir, k, 2, {
        onSteer: () => {},
        onEvent: () => {
          got++;
          return k === 1 ? new Promise(() => {}) : undefined; // stuck
        },
        onSnapshot: () => [],
        onRequest: () => undefined,
        onError: (m) => assert.fail(m),
      });
    const m = [make(0), make(1)];
    await Promise.all(m.map((x) => x.listen()));
    try {
      let done = false;
      const p = m[0].broadcastApplied('ul', 'x', 300).then(() => {
        done = true;
      });
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(got, 1, 'the peer has the event');
      assert.equal(done, false, 'still waiting for its confirmation');
      await p;
      assert.equal(m[0].stats.unconfirmed, 1, 'counted as answered without confirmation');
    } finally {
      await Promise.all(m.map((x) => x.close()));
    }
  });
});

describe("the attendant's sums", () => {
  it('get_statistics: counters summed, usrloc (replicated) taken once, filters as SER', () => {
    const g = sumGroups([
      { core: { rcv_requests: 3 }, usrloc: { location_registered: 5 } },
      { core: { rcv_requests: 4, bad_msgs: 1 }, usrloc: { location_registered: 5 } },
    ]);
    assert.deepEqual(g, { core: { rcv_requests: 7, bad_msgs: 1 }, usrloc: { location_registered: 5 } });
    assert.deepEqual(statisticsReply(g, ['core:rcv_requests']).body, 'core:rcv_requests = 7');
    assert.equal(statisticsReply(g, ['nope']).code, 404);
    assert.equal(statisticsReply(g, ['core:nope']).code, 404);
  });

  it("a command's text and data: the numbers after ':', '=' or '(' are added, labels kept", () => {
    const t = (cur: number, tot: number) => ({
      code: 200,
      reason: 'ok',
      body: `Current: ${cur} (0 waiting) Total: ${tot} (1 local)\nCompletion status 6xx: 0, 5xx: 1,2xx: ${tot}`,
      data: { current: cur, total: tot, name: 'tm' },
    });
    const r = sumReplies([t(1, 10), t(2, 20)]);
    assert.equal(
      r.body,
      'Current: 3 (0 waiting) Total: 30 (2 local)\nCompletion status 6xx: 0, 5xx: 2,2xx: 30',
    );
    assert.deepEqual(r.data, { current: 3, total: 30, name: 'tm' });
    const sl = sumReplies([
      { code: 200, reason: 'ok', body: '200: 4\n404: 1' },
      { code: 200, reason: 'ok', body: '200: 6\n404: 0' },
    ]);
    assert.equal(sl.body, '200: 10\n404: 1');
    assert.equal(
      sumReplies([
        { code: 200, reason: 'ok' },
        { code: 500, reason: 'broken' },
      ]).code,
      500,
    );
  });

  it('which commands are summed, and which run on every worker', () => {
    assert.ok(isSummed('sl_stats') && isSummed('t_stats') && isSummed('acc_stats') && isSummed('t_hash'));
    assert.ok(!isSummed('ul_stats') && !isSummed('ul_show_contact'));
    assert.ok(isEveryWorker('auth_db_flush') && isEveryWorker('domain_reload') && isEveryWorker('ul_flush'));
    assert.ok(!isEveryWorker('ul_add'));
  });
});
