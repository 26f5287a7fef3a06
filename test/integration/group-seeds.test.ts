/**
 * The seeds' scripts that use group, domain or permissions load as far as these modules
 * go (whatever else they lack belongs to other modules): function names, arities, the
 * header names of is_user_in, modparams including OpenSER's module-list form
 * modparam("usrloc|auth_db|domain|…", "db_url", …) of 004.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { modules } from '../../src/modules/index.js';
import { check } from '../../src/script/checker.js';
import { parseConfig, stripElisions } from '../../src/script/parser.js';
import { createRegistry } from '../../src/script/registry.js';
import { haveSeeds, SEED_CONFIGS } from './harness.js';

const OURS = new Set([
  'is_user_in',
  'is_from_local',
  'is_uri_host_local',
  'is_domain_local',
  'allow_trusted',
  'allow_routing',
]);
const OUR_MODULES = ['group', 'domain', 'permissions'];

function ourErrors(file: string): string[] {
  let text = readFileSync(join(SEED_CONFIGS, file), 'utf8');
  const fragment = file.includes('-fragment');
  if (fragment) text = stripElisions(text);
  const ast = parseConfig(text, file, { fragment });
  const res = check(ast, createRegistry(modules), text, { partial: fragment });
  return res.errors
    .filter((e) => {
      const fn = /function '([^']+)'/.exec(e.message)?.[1] ?? '';
      // fragments leave out the loadmodule lines of what they call
      if (e.code === 'function-not-loaded') return !fragment && OURS.has(fn);
      return OURS.has(fn) || OUR_MODULES.some((m) => e.message.includes(`module '${m}'`));
    })
    .map((e) => `${e.code}: ${e.message}`);
}

describe('seed scripts using group, domain, permissions', {
  skip: !haveSeeds && 'seed folder missing',
}, () => {
  for (const f of [
    '003-ex3-8-pstn-gateway.cfg',
    '001-ex4-8-pstn-gateway.cfg',
    '004-openser-nat-mediaproxy.cfg',
    '000-garr-incoming-call-route3-fragment.cfg',
    '000-garr-pstn-authz-route5-route15-fragment.cfg',
  ]) {
    it(`${f}: nothing of group, domain or permissions is missing or rejected`, () => {
      assert.deepEqual(ourErrors(f), []);
    });
  }

  it('a wrong header name in is_user_in is a load-time error with file:line:column', () => {
    const text = 'loadmodule "group.so"\nroute {\n  if (is_user_in("Contact", "int")) { break; };\n}\n';
    const res = check(parseConfig(text, 'x.cfg'), createRegistry(modules), text);
    assert.equal(res.errors.length, 1);
    const e = res.errors[0];
    assert.match(`${e.message}`, /unknown header "Contact"/);
    assert.equal(e.pos?.line, 3);
  });
});
