import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FixupError } from '../../src/core/module.js';
import textops, { REPLY_HF_AVP, replyHeaders } from '../../src/modules/textops/index.js';
import { BODY, ctxOf, fakeCore, invite, load, reparse, reply } from './helpers.js';

const { core, sink } = fakeCore();
const m = await load(textops, core);

describe('textops search', () => {
  it('matches headers and body, case-insensitively, per line', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'search', '^user-agent: testua'), 1);
    assert.equal(await m.call(ctx, 'search', '^c=IN IP4 123\\.20'), 1, 'body is searched');
    assert.equal(await m.call(ctx, 'search', '^Contact:\\ +\\*'), -1);
    assert.equal(await m.call(ctx, 'search', '^To:.*tag='), -1, '. does not cross lines');
    assert.equal(await m.call(ctx, 'search', '2 INVITE$'), -1, '$ is before LF; the CR is a character');
    assert.equal(await m.call(ctx, 'search', '2 INVITE.$'), 1);
  });
  it('sees headers added by earlier edits', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'search', '^P-hint'), -1);
    await m.call(ctx, 'append_hf', 'P-hint: usrloc applied\r\n');
    assert.equal(await m.call(ctx, 'search', '^P-hint: usrloc'), 1);
  });
  it('refuses a bad regex at load time', () => {
    assert.throws(() => m.fixup('search', 'a(b'), FixupError);
  });
  it('works on replies', async () => {
    const ctx = ctxOf(reply(), 'onreply');
    assert.equal(await m.call(ctx, 'search', '^SIP/2.0 486'), 1);
  });
});

describe('textops replace / replace_all / search_append', () => {
  it('replace edits the first match only and the result re-parses', async () => {
    const ctx = ctxOf(invite(['X-A: one', 'X-B: one']));
    assert.equal(await m.call(ctx, 'replace', 'one', 'two'), 1);
    const t = ctx.msg.toString();
    assert.match(t, /X-A: two\r\nX-B: one\r\n/);
    assert.equal(reparse(ctx.msg).header('x-a'), 'two');
    assert.equal(ctx.msg.header('X-A'), 'two', 'the same object shows the new content');
    assert.equal(ctx.msg.modified, true);
  });
  it('replacement text is literal ($& and \\1 are not special)', async () => {
    const ctx = ctxOf(invite(['X-A: one']));
    assert.equal(await m.call(ctx, 'replace', 'X-A: (one)', 'X-A: $&\\1'), 1);
    assert.equal(ctx.msg.header('x-a'), '$&\\1');
  });
  it('replace_all edits every match', async () => {
    const ctx = ctxOf(invite(['X-A: one', 'X-B: one one']));
    assert.equal(await m.call(ctx, 'replace_all', 'one', '1'), 1);
    assert.equal(ctx.msg.header('x-a'), '1');
    assert.equal(ctx.msg.header('x-b'), '1 1');
  });
  it('replace_all stops at an empty match instead of inserting everywhere', async () => {
    const ctx = ctxOf(invite());
    const before = ctx.msg.toString();
    assert.equal(await m.call(ctx, 'replace_all', 'z*', 'Q'), -1);
    assert.equal(ctx.msg.toString(), before);
  });
  it('no match → -1 and the message is unchanged', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'replace', 'nothing-here', 'x'), -1);
    assert.equal(ctx.msg.modified, false);
  });
  it('a body edit recomputes Content-Length', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'replace_all', '123\\.20\\.128\\.35', '10.0.0.1'), 1);
    const again = reparse(ctx.msg);
    assert.equal(again.contentLength, again.body.length);
    assert.match(
      again.body.toString('latin1'),
      /o=alice 1 1 IN IP4 10\.0\.0\.1\r\ns=-\r\nc=IN IP4 10\.0\.0\.1\r/,
    );
    assert.equal(again.body.length, Buffer.byteLength(BODY) - 10);
    assert.equal(ctx.msg.header('contact'), '<sip:10.0.0.1:9315>');
  });
  it('an edit that breaks the message is refused and logged', async () => {
    const ctx = ctxOf(invite());
    const before = ctx.msg.toString();
    sink.lines.length = 0;
    assert.equal(await m.call(ctx, 'replace', '^Call-ID:[^\r]*\r\n', ''), -1);
    assert.equal(ctx.msg.toString(), before);
    assert.match(sink.lines.join(''), /replace: edit refused: .*Call-ID/);
  });
  it('an edit of the Request-URI moves ctx.ruri along unless the script rewrote it', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'replace', 'sip:jiri@iptel.org SIP', 'sip:bob@iptel.org SIP'), 1);
    assert.equal(ctx.ruri, 'sip:bob@iptel.org');
    const ctx2 = ctxOf(invite());
    ctx2.ruri = 'sip:carol@example.com';
    assert.equal(await m.call(ctx2, 'replace', 'sip:jiri@iptel.org SIP', 'sip:bob@iptel.org SIP'), 1);
    assert.equal(ctx2.ruri, 'sip:carol@example.com');
  });
  it('search_append inserts after the first match', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'search_append', 'TestUA/1.0', ' (patched)'), 1);
    assert.equal(ctx.msg.header('user-agent'), 'TestUA/1.0 (patched)');
    assert.equal(await m.call(ctx, 'search_append', 'nomatch', 'x'), -1);
  });
  it('keeps earlier header edits when editing the text', async () => {
    const ctx = ctxOf(invite());
    await m.call(ctx, 'append_hf', 'X-First: 1\r\n');
    assert.equal(await m.call(ctx, 'replace', 'TestUA', 'OtherUA'), 1);
    assert.equal(ctx.msg.header('x-first'), '1');
    assert.equal(ctx.msg.header('user-agent'), 'OtherUA/1.0');
  });
  it('a message growing beyond 65535 bytes is refused', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'replace', 'TestUA', 'x'.repeat(70000)), -1);
    assert.equal(ctx.msg.header('user-agent'), 'TestUA/1.0');
  });
  it('the edited message is equivalent to a fresh parse of its text (layout guard)', async () => {
    const ctx = ctxOf(invite());
    await m.call(ctx, 'replace', 'TestUA', 'NewUA');
    const fresh = reparse(ctx.msg);
    assert.deepEqual(Object.keys(ctx.msg).sort(), Object.keys(fresh).sort());
    assert.equal(ctx.msg.toString(), fresh.toString());
    assert.equal(ctx.msg.callId, fresh.callId);
    assert.equal(ctx.msg.from.tag, '76ff7a07');
    assert.equal(ctx.msg.cseq.seq, 2);
  });
  it('edits replies in onreply_route', async () => {
    const ctx = ctxOf(reply(), 'onreply');
    assert.equal(await m.call(ctx, 'replace', 'Busy Here', 'Busy'), 1);
    assert.equal(ctx.msg.reason, 'Busy');
    assert.equal(ctx.msg.status, 486);
  });
});

describe('textops subst', () => {
  it('back-references and the separator as first character', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'subst', '/^(User-Agent): ([^\r]*)/\\1: wrapped[\\2]/'), 1);
    assert.equal(ctx.msg.header('user-agent'), 'wrapped[TestUA/1.0]');
  });
  it('is case-sensitive unless i is given; g replaces all', async () => {
    const ctx = ctxOf(invite(['X-A: aaa']));
    assert.equal(await m.call(ctx, 'subst', '/X-A: AAA/X-A: b/'), -1);
    assert.equal(await m.call(ctx, 'subst', '/X-A: AAA/X-A: b/i'), 1);
    assert.equal(ctx.msg.header('x-a'), 'b');
    const ctx2 = ctxOf(invite(['X-A: qqQqqq']));
    assert.equal(await m.call(ctx2, 'subst', '#qq#yy#g'), 1);
    assert.equal(ctx2.msg.header('x-a'), 'yyQyyq', 'all matches, capital Q untouched without i');
  });
  it('\\0 is the whole match and an escaped separator is literal', async () => {
    const ctx = ctxOf(invite(['X-Path: a/b']));
    assert.equal(await m.call(ctx, 'subst', '/a\\/b/[\\0]\\/c/'), 1);
    assert.equal(ctx.msg.header('x-path'), '[a/b]/c');
  });
  it('refuses bad expressions at load time', () => {
    assert.throws(() => m.fixup('subst', '/a/b'), FixupError);
    assert.throws(() => m.fixup('subst', '/a/b/x'), /unknown flag/);
    assert.throws(() => m.fixup('subst', '/(a)/\\2/'), /group/);
  });
});

describe('textops header functions', () => {
  it('append_hf appends after the last header', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'append_hf', 'P-hint: usrloc applied\r\n'), 1);
    const t = ctx.msg.toString();
    assert.match(t, /Content-Length: \d+\r\nP-hint: usrloc applied\r\n\r\nv=0/);
    assert.equal(reparse(ctx.msg).header('p-hint'), 'usrloc applied');
  });
  it('append_hf refuses text that is not a header at load time', () => {
    assert.throws(() => m.fixup('append_hf', 'no colon here\r\n'), FixupError);
    assert.throws(() => m.fixup('append_hf', 'Bad Name: x\r\n'), FixupError);
  });
  it('append_hf cannot smuggle an extra line: each line must be a header', async () => {
    const ctx = ctxOf(invite());
    await m.call(ctx, 'append_hf', 'X-A: 1\r\nX-B: 2\r\n');
    assert.deepEqual([ctx.msg.header('x-a'), ctx.msg.header('x-b')], ['1', '2']);
    assert.throws(() => m.fixup('append_hf', 'X-A: 1\r\n\r\nINVITE'), FixupError);
  });
  it('append_urihf uses the original Request-URI', async () => {
    const ctx = ctxOf(invite());
    ctx.ruri = 'sip:6000@192.168.10.10';
    assert.equal(await m.call(ctx, 'append_urihf', 'CC-Diversion: ', '\r\n'), 1);
    assert.equal(ctx.msg.header('cc-diversion'), 'sip:jiri@iptel.org');
    assert.match(ctx.msg.toString(), /\r\nCC-Diversion: sip:jiri@iptel\.org\r\n\r\n/);
  });
  it('append_urihf is not allowed in onreply_route', async () => {
    const ctx = ctxOf(reply(), 'onreply');
    await assert.rejects(m.call(ctx, 'append_urihf', 'X: ', '\r\n'), /not allowed/);
  });
  it('is_present_hf finds compact forms both ways', async () => {
    const ctx = ctxOf(invite(['m: <sip:x@y>', 'k: 100rel']));
    assert.equal(await m.call(ctx, 'is_present_hf', 'Contact'), 1);
    assert.equal(await m.call(ctx, 'is_present_hf', 'supported'), 1);
    assert.equal(await m.call(ctx, 'is_present_hf', 'f'), 1);
    assert.equal(await m.call(ctx, 'is_present_hf', 'X-Missing'), -1);
  });
  it('remove_hf removes all occurrences and reports whether any', async () => {
    const ctx = ctxOf(invite(['X-A: 1', 'x-a: 2', 'X-B: 3']));
    assert.equal(await m.call(ctx, 'remove_hf', 'X-A'), 1);
    assert.equal(ctx.msg.hasHeader('x-a'), false);
    assert.equal(ctx.msg.header('x-b'), '3');
    assert.equal(await m.call(ctx, 'remove_hf', 'X-A'), -1);
    assert.doesNotMatch(reparse(ctx.msg).toString(), /x-a/i);
  });
  it('remove_hf of a compact name removes the long form too', async () => {
    const ctx = ctxOf(invite(['Subject: hi', 's: again']));
    assert.equal(await m.call(ctx, 'remove_hf', 's'), 1);
    assert.equal(ctx.msg.hasHeader('subject'), false);
  });
});

describe('textops append_to_reply', () => {
  it('queues header lines in order in the documented AVP', async () => {
    const ctx = ctxOf(invite());
    assert.equal(await m.call(ctx, 'append_to_reply', 'Contact: <sip:a@b>\r\n'), 1);
    assert.equal(await m.call(ctx, 'append_to_reply', 'X-A: 1\r\nX-B: 2\r\n'), 1);
    assert.deepEqual(replyHeaders(ctx), ['Contact: <sip:a@b>', 'X-A: 1', 'X-B: 2']);
    assert.deepEqual(ctx.avps.get(REPLY_HF_AVP), ['X-B: 2', 'X-A: 1', 'Contact: <sip:a@b>']);
    assert.equal(ctx.msg.modified, false, 'the request is not changed');
  });
  it('is allowed in request routes only', async () => {
    const ctx = ctxOf(invite(), 'failure');
    await assert.rejects(m.call(ctx, 'append_to_reply', 'X: 1\r\n'), /not allowed/);
    assert.deepEqual(replyHeaders(ctxOf(invite())), []);
  });
});
