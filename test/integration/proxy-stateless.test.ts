/**
 * Record-routing with stateless forwarding, over real sockets with SIPp as caller and callee:
 * the callee registers, calls go INVITE/180/200/ACK/BYE/200 with ACK and BYE routed by the
 * Route set the proxy's Record-Route made.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort, request, type Ser, startSer, UdpPeer } from './harness.js';
import { explain, haveSipp, registerContact, sippUac, sippUas } from './proxy-sipp.js';

const CFG = `
loadmodule "sl.so"
loadmodule "maxfwd.so"
loadmodule "rr.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("usrloc", "db_mode", 0)
modparam("rr", "enable_full_lr", 1)
route {
  if (!mf_process_maxfwd_header("10")) {
    sl_send_reply("483", "Too Many Hops");
    break;
  };
  record_route();
  if (loose_route()) {
    if (!forward()) { sl_reply_error(); };
    break;
  };
  if (uri == myself) {
    if (method == "REGISTER") {
      save("location");
      break;
    };
    if (!lookup("location")) {
      sl_send_reply("404", "Not Found");
      break;
    };
  };
  if (!forward()) { sl_reply_error(); };
}`;

describe('stateless record-routing proxy with SIPp UAC and UAS', {
  skip: !haveSipp && 'sipp missing',
}, () => {
  let ser: Ser;
  let uasPort: number;
  before(async () => {
    ser = await startSer(CFG);
    uasPort = await freePort();
    assert.equal(await registerContact(ser.port, 'callee', uasPort), 200);
  });
  after(async () => {
    await ser.stop();
  });

  it('10 calls complete; ACK and BYE reach the callee by Route with our entry removed', async () => {
    const uas = sippUas('proxy-uas.xml', uasPort, 10);
    const uac = await sippUac('proxy-uac.xml', ser.port, 'callee', 10, ['-r', '5']);
    const c = await uac.done;
    if (c.code !== 0) uas.kill();
    const s = await uas.done;
    assert.equal(c.code, 0, explain('uac', c));
    assert.equal(s.code, 0, explain('uas', s));
    assert.equal(c.stat('SuccessfulCall(C)'), 10);
    assert.equal(s.stat('SuccessfulCall(C)'), 10);
  });

  it('an unknown callee gets 404 and nothing is forwarded', async () => {
    const ua = await UdpPeer.open();
    ua.send(
      request('INVITE', `sip:nobody@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port }),
      ser.port,
    );
    assert.equal((await ua.nextMsg()).status, 404);
    ua.close();
  });
});
