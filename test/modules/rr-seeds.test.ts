/**
 * The seed scripts that record-route load with this build's modules: no error about rr, its
 * functions or parameters (other modules may still be missing); the default scripts and
 * examples/ser.cfg load without any error.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { modules } from '../../src/modules/index.js';
import { check } from '../../src/script/checker.js';
import { parseConfig } from '../../src/script/parser.js';
import { createRegistry } from '../../src/script/registry.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const dir = join(repo, '..', 'shared', 'seed-configs');
const present = existsSync(join(dir, 'INDEX.md'));

const rrNames = ['rr', ...Object.keys(modules.rr.functions ?? {}), ...Object.keys(modules.rr.params ?? {})];

function errorsOf(path: string, name: string) {
  const text = readFileSync(path, 'utf8');
  return check(parseConfig(text, name), createRegistry(modules), text).errors;
}

describe('seed scripts with rr', { skip: present ? false : `seed folder not found at ${dir}` }, () => {
  const seeds = present
    ? readdirSync(dir).filter(
        (f) =>
          f.endsWith('.cfg') &&
          !f.includes('-fragment') &&
          /record_route|loose_route|\/rr\.so"/.test(readFileSync(join(dir, f), 'utf8')),
      )
    : [];
  it('there are such seeds (the default scripts, the PSTN gateway, seed 004)', () => {
    for (const f of ['003-ex2-17-default-ser.cfg', '001-ex4-3-default-ser.cfg', '003-ex3-8-pstn-gateway.cfg'])
      assert.ok(seeds.includes(f), f);
  });
  for (const f of seeds) {
    it(`${f}: nothing about rr`, () => {
      const aboutRr = errorsOf(join(dir, f), f).filter(
        (e) =>
          e.code !== 'module-not-available' &&
          rrNames.some((n) => e.message.includes(`'${n}'`) || e.message.startsWith(`${n}(`)),
      );
      assert.deepEqual(
        aboutRr.map((e) => e.message),
        [],
      );
    });
  }
  it('the default scripts (seed 003 Example 2-17, seed 001 Example 4-3) load without any error', () => {
    for (const f of ['003-ex2-17-default-ser.cfg', '001-ex4-3-default-ser.cfg'])
      assert.deepEqual(
        errorsOf(join(dir, f), f).map((e) => e.message),
        [],
        f,
      );
  });
});

describe('examples/ser.cfg', () => {
  it('loads without any error', () => {
    assert.deepEqual(
      errorsOf(join(repo, 'examples', 'ser.cfg'), 'ser.cfg').map((e) => e.message),
      [],
    );
  });
});
