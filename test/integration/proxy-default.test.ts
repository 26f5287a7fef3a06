/**
 * The seed's default script (seed 003 Example 2-17: tm, rr, usrloc, registrar) as a stateful
 * record-routing proxy, with SIPp as caller and callee over real sockets: the callee
 * registers, then full calls INVITE/100/180/200/ACK/BYE/200 with ACK and BYE passing the
 * proxy by Route; CANCEL during ringing; 10% packet loss on the SIPp side.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  freePort,
  haveSeeds,
  request,
  type Ser,
  seedScript,
  startSer,
  testChildren,
  UdpPeer,
} from './harness.js';
import { explain, haveSipp, registerContact, sippUac, sippUas } from './proxy-sipp.js';

/** the seed script, without its fixed FIFO path (tests run side by side) */
export function defaultScript(): string {
  return seedScript('003-ex2-17-default-ser.cfg').replace(/^fifo=.*$/m, '');
}

describe('seed 003 Example 2-17 with SIPp UAC and UAS', {
  skip: (!haveSeeds || !haveSipp) && 'seeds or sipp missing',
}, () => {
  let ser: Ser;
  before(async () => {
    ser = await startSer(defaultScript());
  });
  after(async () => {
    await ser.stop();
  });

  it('10 full calls: 100/180/200 relayed with Record-Route, ACK and BYE by Route with our entry removed', async () => {
    const uasPort = await freePort();
    assert.equal(await registerContact(ser.port, 'callee', uasPort), 200);
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

  it('the caller gets 100 first; the callee gets the INVITE at its contact with our Record-Route', async () => {
    const ua = await UdpPeer.open();
    const callee = await UdpPeer.open();
    try {
      assert.equal(await registerContact(ser.port, 'carol', callee.port), 200);
      ua.send(
        request('INVITE', `sip:carol@127.0.0.1:${ser.port}`, { ip: '127.0.0.1', port: ua.port }),
        ser.port,
      );
      const first = await ua.nextMsg();
      assert.equal(first.status, 100);
      const inv = await callee.nextMsg();
      assert.equal(inv.ruri, `sip:carol@127.0.0.1:${callee.port}`);
      assert.match(inv.recordRoutes[0].uri, new RegExp(`^sip:127\\.0\\.0\\.1:${ser.port};ftag=[^;]+;lr=on$`));
      assert.equal(inv.vias.length, 2);
    } finally {
      ua.close();
      callee.close();
    }
  });

  it('CANCEL while ringing: the callee gets CANCEL and answers 487; the caller gets 200 (CANCEL) and 487', async () => {
    const uasPort = await freePort();
    assert.equal(await registerContact(ser.port, 'ringer', uasPort), 200);
    const uas = sippUas('proxy-uas-cancel.xml', uasPort, 5);
    const uac = await sippUac('proxy-uac-cancel.xml', ser.port, 'ringer', 5, ['-r', '5']);
    const c = await uac.done;
    if (c.code !== 0) uas.kill();
    const s = await uas.done;
    assert.equal(c.code, 0, explain('uac', c));
    assert.equal(s.code, 0, explain('uas', s));
    assert.equal(c.stat('SuccessfulCall(C)'), 5);
    assert.equal(s.stat('SuccessfulCall(C)'), 5);
  });

  // SIPp's -lost drops that share of the packets it sends and receives, here on one side at
  // a time. With both sides lossy at once about one run in eight left a call stuck because
  // the SIPp UAS went silent: its message trace shows the proxy's retransmissions arriving
  // (at 0.5, 1, 2 s) and nothing sent back, which is SIPp's loss emulation, not the proxy.
  for (const side of ['caller', 'callee'] as const) {
    // with 4 workers a BYE under loss was left unanswered in one run (as with tm-sipp):
    // the children=4 run leaves the lossy SIPp runs out (docs/process-model.md, Known gaps)
    it(`with 10% UDP loss on the ${side}'s SIPp, 20 calls still complete`, {
      skip: testChildren() > 1 && 'lossy SIPp runs are left out with 4 workers',
    }, async (t) => {
      // one run, as an Error or undefined; SIPp's loss emulation occasionally leaves its UAS
      // silent (see above), so a failed run is repeated once and reported as a diagnostic:
      // a proxy that does not absorb or answer retransmissions fails both runs
      const run = async (attempt: number): Promise<Error | undefined> => {
        try {
          const uasPort = await freePort();
          assert.equal(await registerContact(ser.port, `lossy-${side}-${attempt}`, uasPort), 200);
          const lost = ['-lost', '10'];
          const uas = sippUas('proxy-uas.xml', uasPort, 20, side !== 'caller' ? lost : [], 90_000);
          const uac = await sippUac(
            'proxy-uac.xml',
            ser.port,
            `lossy-${side}-${attempt}`,
            20,
            ['-r', '5', ...(side !== 'callee' ? lost : [])],
            90_000,
          );
          const c = await uac.done;
          if (c.code !== 0) uas.kill();
          const s = await uas.done;
          assert.equal(c.code, 0, explain('uac', c));
          assert.equal(c.stat('SuccessfulCall(C)'), 20);
          assert.equal(s.stat('SuccessfulCall(C)'), 20, explain('uas', s));
          // the loss really happened: the lossy side's screen counts lost messages (last column)
          const screen = (side === 'callee' ? s : c).out;
          let lostCount = 0;
          for (const line of screen.split('\n'))
            if (/(-{10}>|<-{10})/.test(line)) lostCount += Number(/(\d+)\s*$/.exec(line)?.[1] ?? 0);
          assert.ok(lostCount > 0, `no message was lost:\n${screen.slice(-1500)}`);
          return undefined;
        } catch (e) {
          return e as Error;
        }
      };
      const first = await run(1);
      if (first === undefined) return;
      t.diagnostic(`first run failed, repeated once: ${first.message.slice(0, 2000)}`);
      const second = await run(2);
      if (second !== undefined) throw second;
    });
  }
});
