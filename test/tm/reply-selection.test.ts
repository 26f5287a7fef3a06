/** Best-reply selection of a forking proxy, RFC 3261 §16.7 step 6, and transaction matching keys. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMessage } from '../../src/sip/message.js';
import { clientKeyOfReply, serverKey } from '../../src/tm/matching.js';
import { pickBranch, upstreamCode } from '../../src/tm/reply-selection.js';
import { req, rpl } from './helpers.js';

describe('reply selection', () => {
  it('a 6xx wins over everything else', () => {
    assert.equal(pickBranch([486, 603, 302]), 1);
  });
  it('otherwise the lowest class, then the lowest code', () => {
    assert.equal(pickBranch([486, 302, 500]), 1);
    assert.equal(pickBranch([486, 480, 500]), 1);
  });
  it('within 4xx, 401/407/415/420/484 are preferred', () => {
    assert.equal(pickBranch([404, 407, 480]), 1);
    assert.equal(pickBranch([404, 484]), 1);
  });
  it('pending (0) and 2xx entries are skipped; nothing final gives -1', () => {
    assert.equal(pickBranch([0, 200, 486]), 2);
    assert.equal(pickBranch([0, 0]), -1);
  });
  it('503 goes upstream as 500', () => {
    assert.equal(upstreamCode(503), 500);
    assert.equal(upstreamCode(486), 486);
  });
});

describe('transaction matching', () => {
  const parse = (b: Buffer) => parseMessage(b, { datagram: true });
  it('RFC 3261: branch, sent-by and method; the ACK and CANCEL find their INVITE', () => {
    const inv = parse(req('INVITE'));
    const ack = parse(req('ACK'));
    const cancel = parse(req('CANCEL'));
    assert.equal(serverKey(ack), serverKey(inv));
    assert.notEqual(serverKey(cancel), serverKey(inv));
    assert.equal(serverKey(cancel, 'INVITE'), serverKey(inv));
    assert.notEqual(serverKey(parse(req('INVITE', 'z9hG4bKother'))), serverKey(inv));
  });
  it('RFC 2543 (no magic cookie): Request-URI, From-tag, Call-ID, CSeq number and top Via', () => {
    const inv = parse(req('INVITE', 'old1'));
    const ack = parse(req('ACK', 'old1'));
    assert.match(serverKey(inv), /^2543\|/);
    assert.equal(serverKey(ack), serverKey(inv));
    const other = parse(Buffer.from(req('INVITE', 'old1').toString('latin1').replace('CSeq: 7', 'CSeq: 8')));
    assert.notEqual(serverKey(other), serverKey(inv));
  });
  it('replies match by their top branch and CSeq method', () => {
    assert.equal(clientKeyOfReply(rpl(200)), 'z9hG4bKabc|INVITE');
    assert.equal(clientKeyOfReply(rpl(200, 'CANCEL')), 'z9hG4bKabc|CANCEL');
  });
});
