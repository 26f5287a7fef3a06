/**
 * Negative final replies and failure_route with SIPp callees:
 * - the voicemail pattern of seed 000 (route[3] sets flag 28 and t_on_failure("2");
 *   failure_route[2] on 486/480/603/408 re-targets the call with route[16]): the callee
 *   answers 486, the call goes to the voicemail peer, and ACK and BYE then pass the proxy
 *   by Route. The seed's Asterisk host 193.206.158.201 is a loopback SIPp UAS, so
 *   rewritehost becomes rewritehostport (host and port differ only by port here).
 * - a 6xx on one of two parallel branches: the other branch is CANCELled and the caller
 *   gets the 603 (RFC 3261 §16.7 step 5), with the seed's default script forking to two
 *   contacts of one user.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort, haveSeeds, type Ser, seedScript, startSer } from './harness.js';
import { explain, haveSipp, registerContact, sippUac, sippUas } from './proxy-sipp.js';

function voicemailCfg(vmPort: number): string {
  return `
debug=3
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
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
		t_relay();
		break;
	};
	if (method == "REGISTER") {
		save("location");
		break;
	};
	if (!lookup("location")) {
		sl_send_reply("404", "Not Found");
		break;
	};
	route(3);
}

# seed 000 route[3]: the callee has voicemail forwarding (fw_voicemail=1 in its preferences)
route[3] {
	setflag(28);
	t_on_failure("2");
	route(1);
}

route[1] {
	if (!t_relay()) {
		sl_reply_error();
	};
}

# seed 000 failure_route[2], voicemail part
failure_route[2] {
	if (isflagset(28) && (t_check_status("480") || t_check_status("486") ||
		t_check_status("603") || t_check_status("408"))) {
		resetflag(28);
		route(16);
		break;
	};
}

# seed 000 route[16]: to the voicemail server
route[16] {
	rewritehostport("127.0.0.1:${vmPort}");
	append_branch();
	route(1);
}
`;
}

describe('seed 000 voicemail pattern: 486 enters failure_route, the new branch gets the call', {
  skip: !haveSipp && 'sipp missing',
}, () => {
  let ser: Ser;
  let vmPort: number;
  before(async () => {
    vmPort = await freePort();
    ser = await startSer(voicemailCfg(vmPort));
  });
  after(async () => {
    await ser.stop();
  });

  it('3 calls: the callee answers 486, voicemail answers 200, ACK and BYE reach voicemail by Route', async () => {
    const busyPort = await freePort();
    assert.equal(await registerContact(ser.port, 'busy', busyPort), 200);
    const busy = sippUas('proxy-uas-busy.xml', busyPort, 3);
    const vm = sippUas('proxy-uas.xml', vmPort, 3);
    const uac = await sippUac('proxy-uac.xml', ser.port, 'busy', 3, ['-r', '2']);
    const c = await uac.done;
    if (c.code !== 0) {
      busy.kill();
      vm.kill();
    }
    const b = await busy.done;
    const v = await vm.done;
    assert.equal(c.code, 0, explain('uac', c));
    assert.equal(b.code, 0, explain('busy callee', b));
    assert.equal(v.code, 0, explain('voicemail', v));
    assert.equal(v.stat('SuccessfulCall(C)'), 3);
  });
});

describe('a 6xx on one of two parallel branches cancels the other (seed 003 Example 2-17)', {
  skip: (!haveSeeds || !haveSipp) && 'seeds or sipp missing',
}, () => {
  let ser: Ser;
  before(async () => {
    ser = await startSer(seedScript('003-ex2-17-default-ser.cfg').replace(/^fifo=.*$/m, ''));
  });
  after(async () => {
    await ser.stop();
  });

  it('3 calls: the decliner answers 603, the ringing branch gets CANCEL and answers 487, the caller gets 603', async () => {
    const ringPort = await freePort();
    const declinePort = await freePort();
    assert.equal(await registerContact(ser.port, 'twice', ringPort), 200);
    assert.equal(await registerContact(ser.port, 'twice', declinePort), 200);
    const ring = sippUas('proxy-uas-cancel.xml', ringPort, 3);
    const decline = sippUas('proxy-uas-decline.xml', declinePort, 3);
    const uac = await sippUac('proxy-uac-decline.xml', ser.port, 'twice', 3, ['-r', '2']);
    const c = await uac.done;
    if (c.code !== 0) {
      ring.kill();
      decline.kill();
    }
    const r = await ring.done;
    const d = await decline.done;
    assert.equal(c.code, 0, explain('uac', c));
    assert.equal(r.code, 0, explain('ringing branch', r));
    assert.equal(d.code, 0, explain('declining branch', d));
    assert.equal(r.stat('SuccessfulCall(C)'), 3);
  });
});
