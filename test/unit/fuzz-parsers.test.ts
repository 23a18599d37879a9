// Hardening (docs/security.md): every input parser takes a few thousand seeded random and
// mutated inputs and either accepts them or refuses with a FitError of an expected code and
// a clear message; none crashes or believes a huge length. The long run is `npm run fuzz`.
// FUZZ_SEED=<seed> replays a run; each failure prints the command that replays its one case.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { TARGETS } from '../fuzz/targets.js';
import { describeFailure, runFuzz } from '../helpers/fuzz.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : randomInt(0, 2 ** 32);
const CASES = Number(process.env.FUZZ_CASES ?? 3_000);

describe(`parser fuzzing (seed ${SEED}, ${CASES} cases each; replay: FUZZ_SEED=${SEED} node scripts/run-tests.mjs fuzz-parsers)`, () => {
  for (const t of TARGETS) {
    it(`${t.name}: ${t.what} accepts or refuses with ${t.allowed.join(' / ') || 'a value, never a throw'}`, (ctx) => {
      const r = runFuzz(t, SEED, CASES);
      ctx.diagnostic(`${r.cases} cases in ${Math.round(r.ms)} ms: accepted ${r.accepted}, refused ${r.refused}`);
      assert.equal(r.failures.length, 0, r.failures.map(describeFailure).join('\n'));
      // A target whose mutations never get past the first check would test nothing.
      assert.ok(r.accepted > 0, `${t.name}: no case was accepted; the samples or the mutator are broken`);
    });
  }
});
