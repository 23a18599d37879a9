// A subscribe stream's acknowledgements (src/client/acks.ts): the cumulative position a
// replica may trim its in-flight list to, and the credit to grant back, which follows the
// voter resolving copies (not their arrival), so a replica that runs ahead is held back by its
// own copies waiting in the voter.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StreamAcks, RESOLVED_AHEAD_MAX } from '../../src/client/acks.js';
import { assertProperty } from '../helpers/property.js';

test('whatever order copies are resolved in, ackedPos is the longest resolved prefix and every resolution is one credit', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.integer({ min: 1, max: 60 }).chain((n) => fc.tuple(fc.constant(n), fc.shuffledSubarray([...Array(n).keys()], { minLength: 0, maxLength: n }))), ([, order]) => {
      const acks = new StreamAcks();
      const done = new Set<number>();
      let credit = 0;
      for (const pos of order) {
        acks.resolve(pos);
        done.add(pos);
        let prefix = -1;
        while (done.has(prefix + 1)) prefix++;
        assert.equal(acks.ackedPos, prefix);
        if (pos % 7 === 0) {
          credit += acks.resolved;
          acks.resolved = 0;
        }
      }
      assert.equal(credit + acks.resolved, order.length, 'every resolved copy returns exactly one credit');
    }),
  );
});

test('a copy still waiting in the voter keeps its credit', () => {
  const acks = new StreamAcks();
  acks.resolve(1);
  acks.resolve(2);
  assert.equal(acks.resolved, 2, 'two resolved, position 0 still held');
  assert.equal(acks.ackedPos, -1, 'nothing acknowledged past the held copy');
  acks.resolve(0);
  assert.equal(acks.resolved, 3);
  assert.equal(acks.ackedPos, 2);
});

test('positions far ahead of the prefix are kept as the window grows, and one beyond any window is never acknowledged', () => {
  const acks = new StreamAcks();
  acks.resolve(5000); // past the first ring: it grows
  for (let p = 1; p < 5000; p++) acks.resolve(p);
  assert.equal(acks.ackedPos, -1, 'position 0 still held');
  acks.resolve(0);
  assert.equal(acks.ackedPos, 5000);
  acks.resolve(5000 + RESOLVED_AHEAD_MAX + 1); // only a faulty replica sends this far ahead
  assert.equal(acks.resolved, 5002, 'it still returns its credit');
  for (let p = 5001; p <= 5000 + RESOLVED_AHEAD_MAX; p++) acks.resolve(p);
  assert.equal(acks.ackedPos, 5000 + RESOLVED_AHEAD_MAX, 'the prefix stops before the position it never kept');
});
