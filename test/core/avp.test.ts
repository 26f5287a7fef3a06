import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { avpOf, type MsgContext, replyHeaders, REPLY_HF_AVP } from '../../src/core/context.js';
import { MessageContext } from '../../src/core/msg-context.js';
import { parseMessage } from '../../src/sip/message.js';

const msg = () =>
  parseMessage(
    Buffer.from(
      'OPTIONS sip:a@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n' +
        'From: <sip:b@example.org>;tag=1\r\nTo: <sip:a@example.org>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n',
      'latin1',
    ),
  );
const ep = { ip: '192.0.2.1', port: 5060, proto: 'udp' as const, af: 4 as const };

describe('avpOf: AVP reads without creating the AVP map', () => {
  it('reads nothing from a fresh context and leaves it without a map; sees values once set', () => {
    const ctx = new MessageContext(msg(), ep, ep);
    assert.equal(avpOf(ctx, 'x'), undefined);
    assert.deepEqual(replyHeaders(ctx), []);
    assert.equal((ctx as unknown as { avpMap?: unknown }).avpMap, undefined);
    ctx.avps.set('x', ['1']);
    ctx.avps.set(REPLY_HF_AVP, ['B: 2', 'A: 1']);
    assert.deepEqual(avpOf(ctx, 'x'), ['1']);
    assert.deepEqual(replyHeaders(ctx), ['A: 1', 'B: 2']);
  });

  it('falls back to ctx.avps for a context without peekAvp', () => {
    const avps = new Map([['y', ['v']]]);
    const ctx = { avps } as unknown as MsgContext;
    assert.deepEqual(avpOf(ctx, 'y'), ['v']);
    assert.equal(avpOf(ctx, 'z'), undefined);
  });
});
