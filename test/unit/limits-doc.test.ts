// docs/limits.md must list every limit in src/core/limits.ts and no other.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DEFAULT_LIMITS } from '../../src/core/index.js';

it('documents every limit in docs/limits.md, and only those', () => {
  const doc = readFileSync(new URL('../../../docs/limits.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), Object.keys(DEFAULT_LIMITS).sort());
});
