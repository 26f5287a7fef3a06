/**
 * usrloc's max_contacts_total over UDP: past the bound a REGISTER for a new AOR gets 500
 * and is not stored, registered phones keep refreshing and being found, the log says why
 * once, and the server keeps running.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request, type Ser, startSer, testChildren, UdpPeer } from './harness.js';
import { REGISTRAR_CFG, reg, replyTo } from './registrar-helpers.test.js';

describe('usrloc max_contacts_total (a flood of new AORs cannot exhaust memory)', () => {
  let ser: Ser;
  let phone: UdpPeer;
  before(async () => {
    ser = await startSer(REGISTRAR_CFG('modparam("usrloc", "max_contacts_total", 2)'));
    phone = await UdpPeer.open();
  });
  after(async () => {
    phone?.close();
    await ser?.stop();
  });
  const find = async (user: string) =>
    (
      await replyTo(
        phone,
        request('MESSAGE', `sip:${user}@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: phone.port }),
        ser.port,
      )
    ).status;

  it('two AORs register, the third is refused with 500 and not stored', async () => {
    assert.equal((await replyTo(phone, reg(phone, 'u1', ['Expires: 600']), ser.port)).status, 200);
    assert.equal((await replyTo(phone, reg(phone, 'u2', ['Expires: 600']), ser.port)).status, 200);
    for (let i = 0; i < 5; i++) {
      const r = await replyTo(phone, reg(phone, `flood${i}`, ['Expires: 600']), ser.port);
      assert.equal(r.status, 500, r.reason);
    }
    assert.equal(await find('flood0'), 404);
    assert.equal(await find('u1'), 302);
    await ser.waitLog(/ERROR: usrloc: 2 contacts in memory, max_contacts_total is 2/);
    // once per process (each worker with children > 1), not per REGISTER
    const n = ser.stderr().match(/ERROR: usrloc: \d+ contacts in memory/g)?.length ?? 0;
    assert.ok(n >= 1 && n <= Math.min(testChildren(), 5), `${n} lines`);
  });

  it('a registered phone still refreshes, and after an unregister a new AOR fits', async () => {
    assert.equal((await replyTo(phone, reg(phone, 'u1', ['Expires: 900']), ser.port)).status, 200);
    assert.equal((await replyTo(phone, reg(phone, 'u2', ['Expires: 0']), ser.port)).status, 200);
    assert.equal((await replyTo(phone, reg(phone, 'u3', ['Expires: 600']), ser.port)).status, 200);
    assert.equal(await find('u3'), 302);
    assert.equal(ser.proc.exitCode, null, 'still running');
  });
});
