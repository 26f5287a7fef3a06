/** Unit-test helpers for the transaction layer: a hand-driven clock and a transport sink. */
import { ManualClock, TimerWheel } from '../../src/core/timer.js';
import { parseMessage, type SipMessage } from '../../src/sip/message.js';
import type { ClientTxUser } from '../../src/tm/client-transaction.js';
import type { TmTimers } from '../../src/tm/config.js';
import type { TxTransport } from '../../src/tm/transport.js';

export const TIMERS: TmTimers = { t1: 500, t2: 4000, t4: 5000, fr: 30_000, frInv: 120_000, wait: 5000 };

export class Clocked {
  readonly clock = new ManualClock(0);
  readonly wheel = new TimerWheel(this.clock, 10, 1024);
  /** move time forward in steps of the wheel's resolution, firing timers on the way */
  advance(ms: number): void {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      this.clock.set(Math.min(end, this.clock.now() + 10));
      this.wheel.advance();
    }
  }
}

/** Captures what a transaction sends, with the clock time of each send. */
export class Sink implements TxTransport {
  readonly sent: { at: number; data: string }[] = [];
  fail = false;
  constructor(
    private readonly c: Clocked,
    readonly reliable = false,
  ) {}
  send(data: Buffer): boolean {
    if (this.fail) return false;
    this.sent.push({ at: this.c.clock.now(), data: data.toString('latin1') });
    return true;
  }
  times(): number[] {
    return this.sent.map((s) => s.at);
  }
}

export class User implements ClientTxUser {
  readonly replies: number[] = [];
  timeouts = 0;
  transportErrors = 0;
  onReply(msg: SipMessage): void {
    this.replies.push(msg.status);
  }
  onTimeout(): void {
    this.timeouts++;
  }
  onTransportError(): void {
    this.transportErrors++;
  }
}

export function req(method: string, branch = 'z9hG4bKabc'): Buffer {
  return Buffer.from(
    [
      `${method} sip:bob@example.org SIP/2.0`,
      `Via: SIP/2.0/UDP 10.0.0.1:5060;branch=${branch}`,
      'Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKup',
      'Route: <sip:p2.example.org;lr>',
      'Max-Forwards: 69',
      'From: <sip:alice@example.org>;tag=f1',
      'To: <sip:bob@example.org>',
      'Call-ID: c1@10.0.0.2',
      `CSeq: 7 ${method}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
    'latin1',
  );
}

export function rpl(code: number, method = 'INVITE', branch = 'z9hG4bKabc'): SipMessage {
  return parseMessage(
    Buffer.from(
      [
        `SIP/2.0 ${code} Reason`,
        `Via: SIP/2.0/UDP 10.0.0.1:5060;branch=${branch}`,
        'Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKup',
        'From: <sip:alice@example.org>;tag=f1',
        `To: <sip:bob@example.org>${code > 100 ? ';tag=t9' : ''}`,
        'Call-ID: c1@10.0.0.2',
        `CSeq: 7 ${method}`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
      'latin1',
    ),
    { datagram: true },
  );
}
