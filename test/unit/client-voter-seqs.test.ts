// The voter's delivered-seq bits (src/client/voter-seqs.ts): a window of bits that slides up
// with a floor, its words counted against a budget shared by every set. Held here to a Set of
// numbers over random adds (below, inside and far above the window), drops and clears.
// Imported from its file, not the client's index: it is the voter's, not the package's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SeqBits, type SeqBudget } from '../../src/client/voter-seqs.js';
import { assertProperty } from '../helpers/property.js';

type Op = { kind: 'add'; set: number; seq: number } | { kind: 'drop'; set: number; floor: number } | { kind: 'clear'; set: number };

const seqArb = fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 2 ** 40, max: 2 ** 40 + 2000 }), fc.maxSafeNat());
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('add' as const), set: fc.nat(2), seq: seqArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('drop' as const), set: fc.nat(2), floor: seqArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const), set: fc.nat(2) }) },
);

test('holds exactly the seqs a Set holds above its floor, and never more words than the shared budget', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 4, max: 200 }), (ops, max) => {
      const budget: SeqBudget = { words: 0, max };
      const sets = [0, 1, 2].map(() => ({ bits: new SeqBits(budget), model: new Set<number>() }));
      for (const o of ops) {
        const s = sets[o.set]!;
        if (o.kind === 'add') {
          if (s.bits.add(o.seq)) s.model.add(o.seq);
        } else if (o.kind === 'drop') {
          s.bits.dropThrough(o.floor);
          for (const q of s.model) if (q <= o.floor) s.model.delete(q);
        } else {
          s.bits.clear();
          s.model.clear();
        }
        assert.ok(budget.words <= budget.max, `${budget.words} words over a budget of ${max}`);
        assert.equal(s.bits.empty, s.model.size === 0);
        assert.equal(s.bits.highest(), s.model.size ? Math.max(...s.model) : -1);
        for (const q of s.model) assert.ok(s.bits.has(q), `lost ${q}`);
        for (const q of [o.kind === 'add' ? o.seq + 1 : 0, o.kind === 'add' ? o.seq - 1 : 1]) assert.equal(s.bits.has(q), s.model.has(q), `has(${q})`);
      }
      for (const s of sets) s.bits.clear();
      assert.equal(budget.words, 0, 'cleared sets give their words back');
    }),
    { numRuns: 300 },
  );
});

test('a seq whose words would not fit the budget is refused and changes nothing', () => {
  const budget: SeqBudget = { words: 0, max: 8 };
  const bits = new SeqBits(budget);
  assert.ok(bits.add(5));
  assert.equal(bits.add(5 + 32 * 8), false, 'nine words from the first');
  assert.ok(bits.has(5) && !bits.has(5 + 32 * 8));
  assert.ok(bits.add(5 + 32 * 7), 'eight words fit');
  bits.dropThrough(5 + 32 * 7 - 1);
  assert.ok(bits.add(5 + 32 * 14), 'the window slid up with the floor');
  assert.equal(bits.has(5), false);
});
