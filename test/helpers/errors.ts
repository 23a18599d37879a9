// Expected failures are FitErrors with a code (STYLE 4); tests check them through this one helper.
import assert from 'node:assert/strict';
import { FitError } from '../../src/core/index.js';

/** Runs fn, asserts it throws a FitError, and returns it; `what` names the expected failure. */
export function fitErrorFrom(fn: () => unknown, what = 'a FitError'): FitError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FitError, `expected a FitError, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected ${what}, nothing was thrown`);
}
