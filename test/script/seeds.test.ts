/**
 * Every seed config parses as its INDEX.md row says (OK, OK-frag, FAIL, STRIP),
 * and the checker over the complete seeds, with no modules in the build,
 * reports exactly the missing modules and functions.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { check } from '../../src/script/checker.js';
import { ScriptSyntaxError } from '../../src/script/diagnostics.js';
import { parseConfig, stripElisions } from '../../src/script/parser.js';
import { createRegistry } from '../../src/script/registry.js';

// dist/test/script → repo root → ../shared
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const dir = join(repo, '..', 'shared', 'seed-configs');
const present = existsSync(join(dir, 'INDEX.md'));

/** the line each FAIL seed is rejected at (as-is; after stripping when it differs) */
const FAIL_LINES: Record<string, { line: number; stripped?: number; hint?: RegExp }> = {
  '003-ex2-14-using-modules.cfg': { line: 9, hint: /closing quote missing/ },
  '001-missed-calls-fragment.cfg': { line: 12, stripped: 12, hint: /without parentheses/ },
  '003-missed-calls-fragment.cfg': { line: 13, stripped: 13, hint: /without parentheses/ },
  '003-ex2-3-search-action-fragment.cfg': {
    line: 15,
    hint: /string at line 13, column 12 runs over several lines/,
  },
  '003-ex2-4-operators-fragment.cfg': { line: 33, hint: /missing '}'/ },
  '003-ex2-5-uri-myself-alias-fragment.cfg': { line: 19, hint: /missing ';' after log/ },
  '003-ex2-6-domain-regex-fragment.cfg': { line: 12, hint: /unexpected '}'/ },
  '003-ex2-8-rewriting-uris-fragment.cfg': { line: 9, hint: /missing ';' after rewriteuri/ },
  '003-ex2-13-user-location-actions-fragment.cfg': { line: 17, hint: /expected '\)'/ },
  '003-ex3-4-ip-comparison-fragment.cfg': { line: 11, stripped: 15, hint: /unexpected character '\.'/ },
  '003-ex3-6-routing-history-labels-fragment.cfg': { line: 10 },
  '003-ex6-3-if-fragment.cfg': { line: 9, hint: /string at line 8, column 13 runs over several lines/ },
  '003-ex6-4-if-else-fragment.cfg': { line: 9, hint: /string at line 8, column 13 runs over several lines/ },
};

interface Row {
  file: string;
  verdict: string;
}

function rows(): Row[] {
  const out: Row[] = [];
  for (const line of readFileSync(join(dir, 'INDEX.md'), 'utf8').split('\n')) {
    const m = /^\|\s*([\w.-]+\.cfg)\s*\|(.*)\|\s*$/.exec(line);
    if (!m) continue;
    const cells = m[2]!.split('|').map((c) => c.trim());
    // complete scripts: what | dup | parse | notes; fragments: what | dup | parse
    out.push({ file: m[1]!, verdict: cells[2]! });
  }
  return out;
}

function parseError(text: string, file: string): ScriptSyntaxError | undefined {
  try {
    parseConfig(text, file, { fragment: file.includes('-fragment') });
    return undefined;
  } catch (e) {
    if (e instanceof ScriptSyntaxError) return e;
    throw e;
  }
}

describe('seed configs', {
  skip: present ? false : `seed folder not found at ${dir} (CI puts shared/ beside the repo)`,
}, () => {
  const all = present ? rows() : [];
  it('INDEX.md lists all 65 files and each exists', () => {
    assert.equal(all.length, 65);
    const files = new Set(readdirSync(dir).filter((f) => f.endsWith('.cfg')));
    for (const r of all) assert.ok(files.has(r.file), r.file);
  });
  for (const r of all) {
    it(`${r.file}: ${r.verdict}`, () => {
      const text = readFileSync(join(dir, r.file), 'utf8');
      const v = r.verdict.replace(/\*/g, '');
      if (v.startsWith('OK')) {
        const e = parseError(text, r.file);
        assert.equal(e, undefined, e?.message);
        return;
      }
      if (v.startsWith('FAIL')) {
        const want = FAIL_LINES[r.file];
        assert.ok(want, `no expected line recorded for ${r.file}`);
        const e = parseError(text, r.file);
        assert.ok(e, 'must be rejected');
        assert.match(e.message, new RegExp(`^${r.file.replace(/\./g, '\\.')}:${want.line}:\\d+: `));
        if (want.hint && want.stripped === undefined) assert.match(e.message, want.hint);
        if (want.stripped !== undefined) {
          const s = parseError(stripElisions(text), r.file);
          assert.ok(s, 'must be rejected after stripping too');
          assert.equal(s.pos.line, want.stripped, s.message);
          if (want.hint) assert.match(`${e.message} ${s.message}`, want.hint);
        }
        return;
      }
      assert.ok(v.startsWith('STRIP'), `unknown verdict ${r.verdict}`);
      const asIs = parseError(text, r.file);
      assert.ok(asIs, 'the elision lines make it fail as-is');
      assert.match(asIs.message, /unexpected character '(…|\.)'/);
      const stripped = stripElisions(text);
      const e = parseError(stripped, r.file);
      assert.equal(e, undefined, e?.message);
      if (/duplicate route\[(\d+)\]/.test(v)) {
        const n = /duplicate route\[(\d+)\]/.exec(v)![1]!;
        const ast = parseConfig(stripped, r.file, { fragment: true });
        const res = check(ast, createRegistry({}), stripped, { partial: true });
        const dups = res.errors.filter((x) => x.code === 'duplicate-block');
        assert.equal(dups.length, 1);
        assert.match(
          dups[0]!.message,
          new RegExp(`duplicate block route\\[${n}\\] \\(first defined at line \\d+`),
        );
      }
    });
  }

  describe('checker over the complete seeds with no modules in the build', () => {
    for (const r of all.filter((x) => !x.file.includes('-fragment') && x.verdict.startsWith('OK'))) {
      it(r.file, () => {
        const text = readFileSync(join(dir, r.file), 'utf8');
        const ast = parseConfig(text, r.file);
        const res = check(ast, createRegistry({}), text);
        const other = res.errors.filter(
          (e) => e.code !== 'unknown-function' && e.code !== 'module-not-available',
        );
        assert.deepEqual(other, []);
        // exactly the loadmodule lines, and one error per call
        const loads = ast.items.filter((i) => i.type === 'loadmodule').length;
        assert.equal(res.errors.filter((e) => e.code === 'module-not-available').length, loads);
        let calls = 0;
        const count = (s: unknown): void => {
          if (s && typeof s === 'object') {
            if ((s as { type?: string }).type === 'call' && 'args' in s) calls++;
            for (const v of Object.values(s))
              if (v && typeof v === 'object' && !('file' in v && 'line' in v)) count(v);
          }
        };
        count(ast.items.filter((i) => i.type === 'block'));
        assert.equal(res.errors.filter((e) => e.code === 'unknown-function').length, calls);
        for (const e of res.errors)
          assert.match(`${e.pos.file}:${e.pos.line}:${e.pos.col}`, /\.cfg:\d+:\d+$/);
      });
    }
  });
});
