// The array-backed FIFO behind every output queue level (src/broker/deque.ts): it must behave
// exactly like a plain array used as a queue, including across its periodic compaction, and
// its binary search must agree with a linear scan.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Deque } from '../../src/broker/index.js';
import { assertProperty } from '../helpers/property.js';

const key = (n: number): number => n;

function contents<T>(d: Deque<T>): T[] {
  return Array.from({ length: d.length }, (_, i) => d.at(i)!);
}

test('is first in, first out, and empty reads return undefined', () => {
  const d = new Deque<string>();
  assert.equal(d.shift(), undefined);
  assert.equal(d.peek(), undefined);
  d.push('a');
  d.push('b');
  assert.equal(d.peek(), 'a');
  assert.equal(d.shift(), 'a');
  assert.equal(d.shift(), 'b');
  assert.equal(d.shift(), undefined);
  assert.equal(d.length, 0);
});

test('keeps its contents across compaction after many shifts', () => {
  const d = new Deque<number>();
  for (let i = 0; i < 5000; i++) d.push(i);
  for (let i = 0; i < 3000; i++) assert.equal(d.shift(), i);
  assert.equal(d.length, 2000);
  assert.equal(d.at(0), 3000);
  assert.equal(d.at(1999), 4999);
  assert.equal(d.at(2000), undefined);
  assert.equal(d.firstAfter(3999, key), 1000);
});

test('behaves like an array queue under random push, shift, insertSorted and clear', (t) => {
  type Op = { k: 'push' } | { k: 'shift'; n: number } | { k: 'insert'; back: number } | { k: 'clear' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.constant({ k: 'push' as const }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('shift' as const), n: fc.integer({ min: 1, max: 1500 }) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('insert' as const), back: fc.nat(50) }) },
    { weight: 1, arbitrary: fc.constant({ k: 'clear' as const }) },
  );
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.array(op, { maxLength: 200 }), fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 200 }), (ops, burst) => {
      const d = new Deque<number>();
      const model: number[] = [];
      let next = 0;
      for (const o of ops) {
        if (o.k === 'push') {
          // Pushes come in bursts so shifts can cross the 1024-item compaction threshold.
          const n = burst[next % Math.max(1, burst.length)] ?? 1;
          for (let i = 0; i < n; i++, next += 2) {
            d.push(next);
            model.push(next);
          }
        } else if (o.k === 'shift') {
          for (let i = 0; i < o.n; i++) assert.equal(d.shift(), model.shift());
        } else if (o.k === 'insert') {
          // An odd key between existing even keys, as detach re-inserts a returned entry.
          const k = Math.max(-1, next - 1 - 2 * o.back);
          d.insertSorted(k, key);
          const at = model.findIndex((x) => x > k);
          model.splice(at === -1 ? model.length : at, 0, k);
        } else {
          d.clear();
          model.length = 0;
        }
        assert.equal(d.length, model.length);
        assert.equal(d.peek(), model[0]);
      }
      assert.deepEqual(contents(d), model);
      for (const probe of [-2, 0, 7, next / 2, next]) {
        const linear = model.findIndex((x) => x > probe);
        assert.equal(d.firstAfter(probe, key), linear === -1 ? model.length : linear, `firstAfter(${probe})`);
      }
    }),
  );
});
