// The ring-backed FIFOs behind every output queue level and voter (src/broker/deque.ts): each
// must behave exactly like a plain array used as a queue, across the ring's wrap-around, its
// growth and its shrinking, and its binary search must agree with a linear scan. Deque holds
// anything; SlotDeque holds a queue's entry slots, ordered by a key column.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Deque } from '../../src/broker/index.js';
import { SlotDeque } from '../../src/broker/deque.js';
import { assertProperty } from '../helpers/property.js';

const key = (n: number): number => n;

/** The operations both rings have, on numbers as items and keys alike. */
interface Ring {
  readonly length: number;
  readonly capacity: number;
  push(v: number): void;
  shift(): number | undefined;
  pop(): number | undefined;
  peek(): number | undefined;
  at(i: number): number | undefined;
  firstAfter(k: number): number;
  insertSorted(v: number): void;
  clear(): void;
}

function deque(): Ring {
  const d = new Deque<number>();
  return {
    get length() {
      return d.length;
    },
    get capacity() {
      return d.capacity;
    },
    push: (v) => d.push(v),
    shift: () => d.shift(),
    pop: () => d.pop(),
    peek: () => d.peek(),
    at: (i) => d.at(i),
    firstAfter: (k) => d.firstAfter(k, key),
    insertSorted: (v) => d.insertSorted(v, key),
    clear: () => d.clear(),
  };
}

/** Slot s stands for the number s - 1 (so -1 is an item too), which is also its key. */
const KEYS = Float64Array.from({ length: 200_000 }, (_, s) => s - 1);
function slotDeque(): Ring {
  // No clear() in SlotDeque (queues never need one): clearing is starting again.
  let d = new SlotDeque();
  const item = (s: number): number | undefined => (s < 0 ? undefined : s - 1);
  return {
    get length() {
      return d.length;
    },
    get capacity() {
      return d.capacity;
    },
    push: (v) => d.push(v + 1),
    shift: () => item(d.shift()),
    pop: () => item(d.pop()),
    peek: () => item(d.peek()),
    at: (i) => item(d.at(i)),
    firstAfter: (k) => d.firstAfter(k, KEYS),
    insertSorted: (v) => d.insertSorted(v + 1, KEYS),
    clear: () => (d = new SlotDeque()),
  };
}

const RINGS: [string, () => Ring][] = [
  ['Deque', deque],
  ['SlotDeque', slotDeque],
];

function contents(d: Ring): number[] {
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

for (const [name, make] of RINGS) {
  test(`${name} keeps its contents across wrap-around and growth after many shifts`, () => {
    const d = make();
    for (let i = 0; i < 5000; i++) d.push(i);
    for (let i = 0; i < 3000; i++) assert.equal(d.shift(), i);
    assert.equal(d.length, 2000);
    assert.equal(d.at(0), 3000);
    assert.equal(d.at(1999), 4999);
    assert.equal(d.at(2000), undefined);
    assert.equal(d.firstAfter(3999), 1000);
  });

  test(`${name} gives its memory back once drained, and not for a small queue`, () => {
    const d = make();
    for (let i = 0; i < 100_000; i++) d.push(i);
    assert.ok(d.capacity >= 100_000 && d.capacity < 2 * 131_072, `capacity ${d.capacity}`);
    for (let i = 0; i < 99_990; i++) assert.equal(d.shift(), i);
    assert.ok(d.capacity <= 1024, `a drained deque keeps ${d.capacity} slots`);
    assert.deepEqual(contents(d), [99_990, 99_991, 99_992, 99_993, 99_994, 99_995, 99_996, 99_997, 99_998, 99_999]);
    const small = make();
    for (let i = 0; i < 1000; i++) small.push(i);
    const cap = small.capacity;
    for (let i = 0; i < 999; i++) small.shift();
    assert.equal(small.capacity, cap, 'a small deque shrank: it would reallocate at every burst');
  });

  test(`${name} behaves like an array queue under random push, shift, pop, insertSorted and clear`, (t) => {
    type Op = { k: 'push' } | { k: 'shift'; n: number } | { k: 'pop'; n: number } | { k: 'insert'; back: number } | { k: 'clear' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.constant({ k: 'push' as const }) },
      { weight: 3, arbitrary: fc.record({ k: fc.constant('shift' as const), n: fc.integer({ min: 1, max: 1500 }) }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('pop' as const), n: fc.integer({ min: 1, max: 1500 }) }) },
      { weight: 2, arbitrary: fc.record({ k: fc.constant('insert' as const), back: fc.nat(50) }) },
      { weight: 1, arbitrary: fc.constant({ k: 'clear' as const }) },
    );
    assertProperty(
      t,
      import.meta.url,
      fc.property(fc.array(op, { maxLength: 200 }), fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 200 }), (ops, burst) => {
        const d = make();
        const model: number[] = [];
        let next = 0;
        for (const o of ops) {
          if (o.k === 'push') {
            // Pushes come in bursts so the ring grows past the size where it may shrink again.
            const n = burst[next % Math.max(1, burst.length)] ?? 1;
            for (let i = 0; i < n; i++, next += 2) {
              d.push(next);
              model.push(next);
            }
          } else if (o.k === 'shift') {
            for (let i = 0; i < o.n; i++) assert.equal(d.shift(), model.shift());
          } else if (o.k === 'pop') {
            for (let i = 0; i < o.n; i++) assert.equal(d.pop(), model.pop());
          } else if (o.k === 'insert') {
            // An odd key between existing even keys, as detach re-inserts a returned entry.
            const k = Math.max(-1, next - 1 - 2 * o.back);
            d.insertSorted(k);
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
          assert.equal(d.firstAfter(probe), linear === -1 ? model.length : linear, `firstAfter(${probe})`);
        }
      }),
    );
  });
}
