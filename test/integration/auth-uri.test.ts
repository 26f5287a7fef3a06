/** uri's does_uri_exist() in a running server: subscribers (SQLite) and usrloc aliases. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fifoCall } from '../../src/mgmt/fifo-client.js';
import { exchange, makeSubscribers } from './auth-helpers.test.js';
import { request, type Ser, startSer, UdpPeer } from './harness.js';

describe('does_uri_exist: subscriber table and aliases', () => {
  let ser: Ser;
  let peer: UdpPeer;
  const fifo = `/tmp/ser_uri_fifo_${process.pid}_${randomBytes(4).toString('hex')}`;
  before(async () => {
    const url = `sqlite://${join(mkdtempSync(join(tmpdir(), 'ser-uri-')), 'ser.db')}`;
    await makeSubscribers(url, { bob: 'x' }, 'example.org');
    ser = await startSer(`fifo="${fifo}"
loadmodule "sl.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "uri.so"
modparam("uri", "db_url", "${url}")
route {
  if (method=="INFO") { lookup("aliases"); break; };
  if (does_uri_exist()) { sl_send_reply("200", "Exists"); } else { sl_send_reply("404", "No Such User"); };
}`);
    peer = await UdpPeer.open();
  });
  after(async () => {
    peer.close();
    await ser.stop();
  });
  const probe = async (user: string) =>
    (
      await exchange(
        peer,
        request('OPTIONS', `sip:${user}@example.org`, { ip: '127.0.0.1', port: peer.port }),
        ser.port,
      )
    ).status;

  it('a subscriber exists, a stranger does not', async () => {
    assert.equal(await probe('bob'), 200);
    assert.equal(await probe('carol'), 404);
  });

  it('an alias added over the FIFO (serctl alias add) exists', async () => {
    const r = await fifoCall(fifo, 'ul_add', ['aliases', 'robert', 'sip:bob@example.org', '0', '1'], {
      timeoutMs: 3000,
    });
    assert.equal(r.code, 200, r.reason);
    assert.equal(await probe('robert'), 200);
  });
});
