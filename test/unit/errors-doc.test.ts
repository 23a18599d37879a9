// docs/errors.md is the operators' reference for every error code: it must list each code in
// src/core/errors.ts ERROR_CODES as a `## FIT_ERR_...` heading, once, list no code that does
// not exist, and give each one what it means, when it happens, its fields and what to do.
// (Compiled to dist/test/unit/, so the repo root is three levels up.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../../src/core/index.js';

const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const headings = [...doc.matchAll(/^## (FIT_ERR_[A-Z0-9_]+)\s*$/gm)].map((m) => m[1]!);
const codes = Object.keys(ERROR_CODES);

/** The text of one code's section, up to the next heading. */
function section(code: string): string {
  const start = doc.indexOf(`\n## ${code}\n`);
  if (start === -1) return '';
  const next = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, next === -1 ? undefined : next);
}

test('every error code in ERROR_CODES has a section in docs/errors.md', () => {
  const missing = codes.filter((c) => !headings.includes(c));
  assert.deepEqual(missing, [], `add a "## <code>" section to docs/errors.md for: ${missing.join(', ')}`);
});

test('docs/errors.md documents no code that does not exist', () => {
  const unknown = headings.filter((h) => !codes.includes(h));
  assert.deepEqual(unknown, [], `docs/errors.md has sections for codes not in src/core/errors.ts: ${unknown.join(', ')}`);
});

test('each code has exactly one section', () => {
  const twice = headings.filter((h, i) => headings.indexOf(h) !== i);
  assert.deepEqual(twice, []);
});

test('every section says what the code means, when it happens, its fields and what to do', () => {
  for (const code of codes) {
    const text = section(code);
    for (const part of ['**Means:**', '**When:**', '**Fields:**', '**What to do:**']) {
      assert.ok(text.includes(part), `docs/errors.md: ${code} lacks ${part}`);
    }
  }
});

test('every code mentioned anywhere in docs/errors.md exists', () => {
  const mentioned = new Set([...doc.matchAll(/FIT_ERR_[A-Z0-9_]+/g)].map((m) => m[0]));
  const unknown = [...mentioned].filter((c) => !codes.includes(c));
  assert.deepEqual(unknown, []);
});
