/**
 * Durability over real processes: register, kill -9 the server, start it again on the
 * same database, and the binding is still there (db_mode 1 on SQLite, MariaDB and
 * PostgreSQL; db_mode 2 after one timer_interval); two servers sharing MariaDB in
 * db_mode 3; a database that cannot be reached does not stop registrations.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Backend } from '../../src/db/index.js';
import { makeTestDb, probe, SKIP_EXTERNAL, type TestDb } from '../db/helpers.js';
import { request, type Ser, sleep, startSer, UdpPeer } from './harness.js';
import { REGISTRAR_CFG, reg, replyTo } from './registrar-helpers.test.js';

const cfg = (url: string, mode: number, extra = '') =>
  REGISTRAR_CFG(`modparam("usrloc", "db_url", "${url}")
modparam("usrloc", "db_mode", ${mode})
${extra}`);

async function kill9(ser: Ser): Promise<void> {
  const gone = new Promise((r) => ser.proc.once('exit', r));
  ser.proc.kill('SIGKILL');
  await gone;
}

/** 302 for a MESSAGE to the user lists the contacts (lookup + sl's destination set). */
async function contactsOf(
  peer: UdpPeer,
  ser: Ser,
  user: string,
): Promise<{ status: number; uris: string[] }> {
  const m = await replyTo(
    peer,
    request('MESSAGE', `sip:${user}@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: peer.port }),
    ser.port,
  );
  return { status: m.status ?? 0, uris: m.status === 302 ? m.contacts.map((c) => c.uri) : [] };
}

const unreachable: Partial<Record<Backend, string>> = {};
for (const b of ['mysql', 'postgres'] as const) {
  const why = await probe(b);
  if (why) unreachable[b] = why;
}
const skipOf = (b: Backend) => (unreachable[b] && SKIP_EXTERNAL ? unreachable[b] : undefined);

describe('db_mode 0 (S1.17): a restart loses the registrations', () => {
  it('registered, killed, restarted: 404', async () => {
    const phone = await UdpPeer.open();
    let ser = await startSer(REGISTRAR_CFG());
    try {
      assert.equal((await replyTo(phone, reg(phone, 'alice', ['Expires: 600']), ser.port)).status, 200);
      await kill9(ser);
      ser = await startSer(REGISTRAR_CFG());
      assert.equal((await contactsOf(phone, ser, 'alice')).status, 404);
    } finally {
      phone.close();
      await ser.stop();
    }
  });
});

for (const backend of ['sqlite', 'mysql', 'postgres'] as Backend[]) {
  describe(`persistence on ${backend}`, { skip: skipOf(backend) }, () => {
    let t: TestDb;
    let phone: UdpPeer;
    const running: Ser[] = [];
    before(async () => {
      if (unreachable[backend]) throw new Error(unreachable[backend]);
      t = await makeTestDb(backend);
      phone = await UdpPeer.open();
    });
    after(async () => {
      for (const s of running) await s.stop();
      phone?.close();
      await t?.cleanup();
    });
    const start = async (text: string) => {
      const s = await startSer(text);
      running.push(s);
      return s;
    };

    it('db_mode 1: the binding survives kill -9 and a restart', async () => {
      const a = await start(cfg(t.url, 1));
      const r = await replyTo(phone, reg(phone, 'wt', ['Expires: 600']), a.port);
      assert.equal(r.status, 200);
      await kill9(a);
      const b = await start(cfg(t.url, 1));
      assert.deepEqual(
        await contactsOf(phone, b, 'wt'),
        { status: 302, uris: [`sip:wt@127.0.0.1:${phone.port}`] },
        `first server:\n${a.stderr()}\nsecond server:\n${b.stderr()}`,
      );
    });

    it('db_mode 2: after one timer_interval the binding survives kill -9', async () => {
      const a = await start(cfg(t.url, 2, 'modparam("usrloc", "timer_interval", 1)'));
      assert.equal((await replyTo(phone, reg(phone, 'wb', ['Expires: 600']), a.port)).status, 200);
      await sleep(2500);
      await kill9(a);
      const b = await start(cfg(t.url, 2, 'modparam("usrloc", "timer_interval", 1)'));
      assert.equal((await contactsOf(phone, b, 'wb')).status, 302);
    });

    it('db_mode 3: two servers share the database; register on one, found on the other', async () => {
      const a = await start(cfg(t.url, 3));
      const b = await start(cfg(t.url, 3));
      assert.equal((await replyTo(phone, reg(phone, 'sh', ['Expires: 600']), a.port)).status, 200);
      assert.deepEqual(await contactsOf(phone, b, 'sh'), {
        status: 302,
        uris: [`sip:sh@127.0.0.1:${phone.port}`],
      });
      // removed on b, gone on a
      assert.equal(
        (await replyTo(phone, reg(phone, 'sh', ['Expires: 0', 'Call-ID: x@y'], '*'), b.port)).status,
        200,
      );
      assert.equal((await contactsOf(phone, a, 'sh')).status, 404);
    });
  });
}

describe('an unreachable database (closed port)', () => {
  for (const url of ['mysql://root@127.0.0.1:1/ser', 'postgres://root@127.0.0.1:1/ser']) {
    it(`db_mode 1 on ${url.split(':')[0]}: REGISTERs are answered from memory and the failure is logged`, async () => {
      const phone = await UdpPeer.open();
      const ser = await startSer(cfg(url, 1));
      try {
        const r = await replyTo(phone, reg(phone, 'mem', ['Expires: 600']), ser.port);
        assert.equal(r.status, 200);
        assert.equal((await contactsOf(phone, ser, 'mem')).status, 302);
        await ser.waitLog(/ERROR: usrloc: /);
        assert.equal(ser.proc.exitCode, null, 'still running');
      } finally {
        phone.close();
        await ser.stop();
      }
    });
  }

  it('db_mode 3: save answers 500, lookup fails (404 from the script), the server keeps running', async () => {
    const phone = await UdpPeer.open();
    const ser = await startSer(cfg('mysql://root@127.0.0.1:1/ser', 3));
    try {
      assert.equal((await replyTo(phone, reg(phone, 'x', ['Expires: 600']), ser.port)).status, 500);
      assert.equal((await contactsOf(phone, ser, 'x')).status, 404);
    } finally {
      phone.close();
      await ser.stop();
    }
  });
});
