import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PosixRegexError, posixRegExp, translatePosixEre } from '../../src/script/posix-regex.js';

const m = (re: string, s: string, o = {}) => posixRegExp(re, o).test(s);
function bad(re: string): PosixRegexError {
  try {
    posixRegExp(re);
  } catch (e) {
    assert.ok(e instanceof PosixRegexError);
    return e;
  }
  assert.fail(`${re} should be rejected`);
}

describe('POSIX ERE → RegExp', () => {
  it('seed regexes', () => {
    assert.ok(m('^sip:(\\+39)?3[0-9]{9}@', 'sip:+393331234567@x'));
    assert.ok(m('^sip:[0-79][0-9]*@', 'sip:7123@x'));
    assert.ok(!m('^sip:[0-79][0-9]*@', 'sip:8123@x'));
    assert.ok(m('(180)|(183)|2[0-9][0-9]', '183'));
    assert.ok(m('^sip:(.+@)?(192\\.168\\.0\\.10|(sip\\.)?foo\\.bar)([:;\\?].*)?$', 'sip:a@SIP.FOO.BAR;lr'));
    assert.ok(!m('^sip:(.+@)?(192\\.168\\.0\\.10|(sip\\.)?foo\\.bar)([:;\\?].*)?$', 'sip:a@192.168.0.101'));
  });
  it('case-insensitive by default, sensitive on request', () => {
    assert.ok(m('invite', 'INVITE'));
    assert.ok(!m('invite', 'INVITE', { icase: false }));
  });
  it('bracket classes', () => {
    assert.ok(m('^[[:digit:]]+$', '0123'));
    assert.ok(!m('^[[:digit:]]+$', '01a'));
    assert.ok(m('^[[:alpha:][:space:]]+$', 'ab c'));
    assert.ok(m('^[^[:alnum:]]$', '-'));
    assert.ok(m('^[[:xdigit:]]+$', 'DeadBeef'));
    assert.ok(m('^[[:punct:]]+$', '!@#[]'));
  });
  it('] first in a bracket is literal, - first or last is literal', () => {
    assert.ok(m('^[]a]+$', ']a]'));
    assert.ok(m('^[^]a]$', 'b'));
    assert.ok(!m('^[^]a]$', ']'));
    assert.ok(m('^[-a]+$', '-a'));
    assert.ok(m('^[a-]+$', '-a'));
  });
  it('backslash is literal inside brackets and escapes outside', () => {
    assert.ok(m('[\\.]', '\\'));
    assert.ok(m('a\\.b', 'a.b'));
    assert.ok(!m('a\\.b', 'axb'));
    assert.ok(m('\\ ', ' '));
    assert.ok(m('^\\+', '+1'));
  });
  it('. matches a newline and ^/$ anchor the string (no REG_NEWLINE)', () => {
    assert.ok(m('a.b', 'a\nb'));
    assert.ok(!m('^b', 'a\nb'));
  });
  it('REG_NEWLINE mode works per line (textops)', () => {
    assert.ok(m('^Contact:.*@10\\.', 'Via: x\r\nContact: <sip:a@10.0.0.1>\r\n', { newline: true }));
    assert.ok(!m('a.b', 'a\nb', { newline: true }));
    assert.ok(m('x$', 'x\ny', { newline: true }));
  });
  it('stacked quantifiers stay greedy repetitions', () => {
    const { source } = translatePosixEre('a+?');
    assert.equal(source, '(?:a+)?');
    assert.ok(m('^a**$', 'aaa'));
  });
  it('a quantifier with nothing to repeat is literal', () => {
    assert.ok(m('^*a', '*a'));
    assert.ok(m('(+)', '+'));
  });
  it('intervals', () => {
    assert.ok(m('^a{2,3}$', 'aaa'));
    assert.ok(!m('^a{2,3}$', 'aaaa'));
    assert.ok(m('^a{,2}$', 'a'));
    assert.ok(m('^a{2,}$', 'aaaaa'));
  });
  it('clear errors for invalid expressions', () => {
    assert.match(bad('(abc').message, /unmatched '\('/);
    assert.equal(bad('(abc').offset, 0);
    assert.match(bad('abc)').message, /unmatched '\)'/);
    assert.match(bad('[abc').message, /unmatched '\['/);
    assert.match(bad('[[:foo:]]').message, /unknown character class/);
    assert.match(bad('a{3,1}').message, /invalid repetition count/);
    assert.match(bad('a{x}').message, /invalid repetition/);
    assert.match(bad('[z-a]').message, /invalid range/);
    assert.match(bad('abc\\').message, /trailing backslash/);
    assert.match(bad('(a)\\1').message, /back-reference/);
    assert.match(bad('(?=a)').message, /not POSIX/);
  });
  it('the compiled RegExp keeps no state between tests', () => {
    const re = posixRegExp('a');
    assert.ok(re.test('a') && re.test('a'));
    assert.equal(re.flags.includes('g'), false);
  });
});
