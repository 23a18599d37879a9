// The bodies a replica attests, as its journal holds them (src/consensus/holds.ts): one group
// per step, referred to by the decided batches instead of written twice, and gone only once
// every request in it was decided and nothing on disk refers to it any more.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refOf, type Req } from '../../src/consensus/index.js';
import { HeldBodies } from '../../src/consensus/holds.js';

const req = (seq: number): Req => ({ client: 'ev/ch/p', seq, payload: `body ${seq}` });

test('a hold group is referred to by the batch that decides its bodies, and goes only once that batch is truncated', () => {
  const h = new HeldBodies();
  for (const q of [req(1), req(2)]) h.add(q, refOf(q));
  const g = h.takeGroup();
  assert.deepEqual(g?.reqs.map((q) => q.seq), [1, 2]);
  assert.equal(h.takeGroup(), undefined, 'one group per step');
  const fetched = { client: 'other', seq: 9, payload: 'not held' };
  const batch = h.batch(5, [req(1), fetched]);
  assert.ok(!('payload' in batch[0]!), 'a held body by reference');
  assert.deepEqual(batch[1], fetched, 'a body no group holds, by itself');
  assert.deepEqual(h.decided(req(1)), []);
  assert.deepEqual(h.decided(req(2)), [], 'all decided, but the batch at 5 refers to the group');
  assert.deepEqual(h.truncated(4), []);
  assert.deepEqual(h.truncated(5), [{ type: 'unhold', id: g!.id }]);
});

test('a group all decided that nothing refers to goes at once; a body decided in the step that took it never reaches the journal', () => {
  const h = new HeldBodies();
  h.add(req(1), refOf(req(1)));
  const g = h.takeGroup()!;
  assert.deepEqual(h.decided(req(1)), [{ type: 'unhold', id: g.id }]);
  h.add(req(2), refOf(req(2)));
  h.add(req(3), refOf(req(3)));
  h.decided(req(2));
  assert.deepEqual(h.takeGroup()?.reqs.map((q) => q.seq), [3]);
});

test('recovery: bodies not decided are held again; a group only truncated batches referred to goes', () => {
  const h = new HeldBodies();
  const held: number[] = [];
  const out = h.restore(
    [
      { type: 'hold', id: 3, reqs: [req(1), req(2)] },
      { type: 'hold', id: 4, reqs: [req(3)] },
    ],
    new Map(),
    10,
    (ref) => ref.seq === 3,
    (q) => held.push(q.seq) > 0,
    { to: 0, spare: () => false },
  );
  assert.deepEqual(held, [1, 2]);
  assert.deepEqual(out, [{ type: 'unhold', id: 4 }]);
  h.add(req(7), refOf(req(7)));
  assert.equal(h.takeGroup()?.id, 5, 'new groups after the highest on disk');
});
