/**
 * A server that is not there (closed port) or never answers (accepts, then silence):
 * every call rejects with a DbError within the time limit and nothing crashes the process.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isDbError, openDb } from '../../src/db/index.js';
import { sleep } from './helpers.js';

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('unreachable database server', () => {
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown) => uncaught.push(e);
  let silent: Server;
  const sockets: Socket[] = [];
  before(async () => {
    process.on('uncaughtException', onUncaught);
    silent = createServer((sock) => {
      sockets.push(sock);
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
    process.off('uncaughtException', onUncaught);
  });

  for (const scheme of ['mysql', 'postgres'] as const) {
    it(`${scheme}: a closed port rejects with a connect DbError naming the masked URL`, async () => {
      const port = await closedPort();
      const db = await openDb(`${scheme}://ser:secret@127.0.0.1:${port}/ser`, { connectTimeoutMs: 2000 });
      const t0 = Date.now();
      await assert.rejects(db.query('SELECT 1'), (e: unknown) => {
        assert.ok(isDbError(e));
        assert.equal(e.code, 'connect', e.message);
        assert.match(e.message, new RegExp(`${scheme}://ser:\\*\\*\\*@127\\.0\\.0\\.1:${port}/ser`));
        assert.doesNotMatch(e.message, /secret/);
        return true;
      });
      assert.ok(Date.now() - t0 < 2000);
      // still a DbError the second time, the process is up
      await assert.rejects(
        db.insert('acc', { sip_method: 'INVITE' }),
        (e: unknown) => isDbError(e) && e.code === 'connect',
      );
      await db.close();
      await sleep(50);
      assert.deepEqual(uncaught, []);
    });

    it(`${scheme}: a server that never answers rejects with a timeout DbError within the connect timeout`, async () => {
      const port = (silent.address() as AddressInfo).port;
      const db = await openDb(`${scheme}://ser:secret@127.0.0.1:${port}/ser`, { connectTimeoutMs: 400 });
      const t0 = Date.now();
      await assert.rejects(db.select('location'), (e: unknown) => isDbError(e) && e.code === 'timeout');
      const took = Date.now() - t0;
      assert.ok(took >= 350 && took < 1500, `rejected after ${took} ms`);
      await db.close();
      await sleep(50);
      assert.deepEqual(uncaught, []);
    });
  }
});
