// The voter's event table (src/client/voter-table.ts): slots in typed-array columns, found by
// (process, seq) through a linear-probing index with backward-shift deletion. Held here to a
// Map keyed by the same pair, over random adds and removes that grow the table, reuse slots
// and leave long probe chains; the hash seed comes from the case, so a failure replays.
// Imported from its file, not the client's index: it is the voter's, not the package's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EventTable } from '../../src/client/voter-table.js';
import type { Stream } from '../../src/client/voter-streams.js';
import { assertProperty } from '../helpers/property.js';

function stream(uid: number): Stream {
  return { key: `p${uid}`, id: new Uint8Array(0), tag: uid, uid, events: 0, floors: undefined, delivered: undefined, passed: new Float64Array(0), closed: false, idle: false, idlePrev: undefined, idleNext: undefined };
}

const FRAME = Buffer.alloc(64);

type Op = { kind: 'add'; stream: number; seq: number } | { kind: 'remove'; pick: number } | { kind: 'find'; stream: number; seq: number };

/** Seqs from a small range (so that finds hit) and from the whole 2^53 (both halves of the hash). */
const seqArb = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.maxSafeNat());
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('add' as const), stream: fc.nat(3), seq: seqArb }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('find' as const), stream: fc.nat(3), seq: seqArb }) },
);

test('finds exactly the events a Map keyed by (process, seq) holds, through growth, slot reuse and deletions inside probe chains', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.nat(0x7fff_ffff), fc.array(op, { minLength: 50, maxLength: 600, size: 'max' }), (seed, ops) => {
      const table = new EventTable(seed);
      const streams = [0, 1, 2, 3].map(stream);
      const model = new Map<string, number>();
      const key = (s: number, seq: number): string => `${s}/${seq}`;
      for (const o of ops) {
        if (o.kind === 'add') {
          const k = key(o.stream, o.seq);
          if (model.has(k)) continue;
          const slot = table.add(streams[o.stream]!, o.seq, FRAME, 0, 8, 0, 0);
          assert.ok(![...model.values()].includes(slot), `slot ${slot} handed out twice`);
          model.set(k, slot);
        } else if (o.kind === 'remove') {
          if (model.size === 0) continue;
          const [k, slot] = [...model.entries()][o.pick % model.size]!;
          const gen = table.gen[slot]!;
          table.remove(slot);
          model.delete(k);
          assert.equal(table.gen[slot], gen + 1, 'a freed slot gets a new generation');
          assert.equal(table.fbuf[slot], undefined, 'a freed slot lets go of its frame');
        } else {
          assert.equal(table.find(streams[o.stream]!, o.seq), model.get(key(o.stream, o.seq)) ?? -1);
        }
        assert.equal(table.live, model.size);
      }
      for (const [k, slot] of model) {
        const [s, seq] = k.split('/').map(Number) as [number, number];
        assert.equal(table.find(streams[s]!, seq), slot, `event ${k} lost`);
        assert.equal(table.seq[slot], seq);
      }
      streams.forEach((s, i) => assert.equal(s.events, [...model.keys()].filter((k) => k.startsWith(`${i}/`)).length, `process ${i}'s event count`));
    }),
    { numRuns: 300 },
  );
});

test('what a slot held in the rare side tables does not outlive its event', () => {
  const table = new EventTable(1);
  const s = stream(0);
  const a = table.add(s, 1, FRAME, 0, 8, 0, 0);
  table.setOthers(a, [{ rec: Buffer.from('x'), mask: 2, check: 0 }]);
  table.setWon(a, Buffer.from('y'));
  table.setReason(a, 'bad mac');
  for (let r = 0; r < 4; r++) table.hold(a, r, 10 + r);
  table.remove(a);
  const b = table.add(s, 2, FRAME, 8, 16, 0, 0);
  assert.equal(b, a, 'the freed slot is reused');
  assert.equal(table.othersOf(b), undefined);
  assert.equal(table.wonOf(b), undefined);
  assert.equal(table.reasonOf(b), undefined);
  const held: number[] = [];
  table.takeHeld(b, (r, pos) => held.push(r, pos));
  assert.deepEqual(held, [], 'copies held for the old event are not resolved for the new one');
});

test('holds copies two inline and the rest aside, and gives each back once', () => {
  const table = new EventTable(1);
  const a = table.add(stream(0), 1, FRAME, 0, 8, 0, 0);
  for (let r = 0; r < 5; r++) table.hold(a, r, 100 + r);
  const held: number[] = [];
  table.takeHeld(a, (r, pos) => held.push(r, pos));
  assert.deepEqual(held, [0, 100, 1, 101, 2, 102, 3, 103, 4, 104]);
  table.takeHeld(a, (r, pos) => held.push(r, pos));
  assert.equal(held.length, 10, 'taken twice');
});
