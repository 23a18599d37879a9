// offerSection (src/client/voter.ts): a later replica's copy of a run of records is compared
// with the first version's bytes in one memcmp and counted for every event in it. These tests
// hold it to the per-record vote (paper §3.3: f+1 byte-identical copies) where runs line up,
// partly line up, or are broken by a faulty replica, and bound what a faulty replica can make
// the comparison cost.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Voter, type Copy, type VoterOptions } from '../../src/client/index.js';
import { makeRecord, T0_MS } from '../helpers/records.js';

const NOW = T0_MS;
const BFT_F1: VoterOptions = { replicas: 4, threshold: 2, ttlMs: 60_000, pendingMax: 1000, deliveredMax: 1000, pendingMs: 30_000 };
const EVENT_BYTES_MAX = 1 << 20;

function harness(o: Partial<VoterOptions> = {}) {
  const delivered: string[] = [];
  const resolved: Copy[] = [];
  const v = new Voter({ ...BFT_F1, ...o }, { deliver: (buf, start, end) => delivered.push(buf.toString('latin1', start, end)), resolve: (replica, pos) => resolved.push({ replica, pos }) });
  const pos = [0, 0, 0, 0];
  /** Sends `recs` as one section of a fresh frame from `replica`. */
  const section = (replica: number, recs: Buffer[]): Buffer => {
    const frame = Buffer.concat(recs);
    v.offerSection(replica, frame, 0, frame.length, pos[replica]!, NOW, EVENT_BYTES_MAX);
    pos[replica]! += recs.length;
    return frame;
  };
  return { v, delivered, resolved, section, pos };
}

const events = (n: number, content = (i: number) => `event ${i}`): Buffer[] =>
  Array.from({ length: n }, (_, i) => makeRecord({ seq: i + 1, content: content(i) }));

/** Every copy offered so far resolved exactly once, but those still held (`held`). */
function assertResolvedOnce(resolved: Copy[], pos: number[], held: Copy[] = []): void {
  const seen = new Set(resolved.map((c) => `${c.replica}:${c.pos}`));
  assert.equal(seen.size, resolved.length, 'a copy resolved twice');
  for (const c of held) assert.ok(!seen.has(`${c.replica}:${c.pos}`), `copy ${c.replica}:${c.pos} resolved while its event waits`);
  for (let r = 0; r < pos.length; r++) for (let p = 0; p < pos[r]!; p++) if (!held.some((c) => c.replica === r && c.pos === p)) assert.ok(seen.has(`${r}:${p}`), `copy ${r}:${p} never resolved`);
}

test('a section that repeats another replica\'s run delivers every event once, in order, after f+1 copies', () => {
  const { v, delivered, resolved, section, pos } = harness();
  const recs = events(50);
  section(0, recs);
  assert.equal(delivered.length, 0, 'one replica is not enough');
  section(1, recs.map((r) => Buffer.from(r)));
  assert.deepEqual(delivered, recs.map((r) => r.toString('latin1')));
  section(2, recs);
  section(3, recs);
  assert.equal(delivered.length, 50);
  assert.deepEqual(v.mismatches, [0, 0, 0, 0]);
  assert.equal(v.incompleteCount, 0, 'every replica\'s copy arrived');
  assertResolvedOnce(resolved, pos);
});

test('runs cut at other places than the first version\'s sections still match, across frames', () => {
  const { v, delivered, resolved, section, pos } = harness();
  const recs = events(30);
  section(0, recs.slice(0, 10));
  section(0, recs.slice(10, 30));
  section(1, recs.slice(0, 7));
  section(1, recs.slice(7, 23));
  section(1, recs.slice(23));
  section(2, recs.slice(5)); // starts mid-run: found by lookup, then compared as a run
  section(2, recs.slice(0, 5));
  assert.equal(delivered.length, 30);
  assert.deepEqual(v.mismatches, [0, 0, 0, 0]);
  assertResolvedOnce(resolved, pos);
});

test('a record altered in the middle of a run is blamed on its replica alone; the rest of the run still counts', () => {
  const { v, delivered, resolved, section, pos } = harness();
  const recs = events(20);
  const altered = recs.map((r, i) => (i === 9 ? makeRecord({ seq: 10, content: 'tampered!' }) : r));
  section(0, recs);
  section(3, altered);
  assert.equal(delivered.length, 19, 'the altered event waits for a second true copy');
  section(1, recs);
  assert.deepEqual(delivered, recs.map((r) => r.toString('latin1')).slice(0, 9).concat(recs.slice(10).map((r) => r.toString('latin1')), [recs[9]!.toString('latin1')]));
  assert.deepEqual(v.mismatches, [0, 0, 0, 1]);
  section(2, recs);
  assert.deepEqual(v.mismatches, [0, 0, 0, 1]);
  assertResolvedOnce(resolved, pos);
});

test('a faulty first version is outvoted, and later copies equal to it are blamed, in runs too', () => {
  const { v, delivered, resolved, section, pos } = harness();
  const recs = events(10);
  const forged = events(10, (i) => `forged ${i}`);
  section(3, forged); // the faulty replica is first: its bytes are the first version
  section(0, recs);
  section(1, recs);
  assert.deepEqual(delivered, recs.map((r) => r.toString('latin1')));
  section(3, forged); // duplicates from the faulty replica: no vote, no second blame
  assert.equal(v.counters.duplicateCopies, 10);
  section(2, recs);
  assert.deepEqual(v.mismatches, [0, 0, 0, 10]);
  assertResolvedOnce(resolved, pos);
});

test('an event forgotten while an earlier one of the same run is decided takes the ordinary path (a stale copy)', () => {
  // deliveredMax 1. Replica 1 matches [0] and [1] (its runs grow to two records); replicas 0
  // and 2 decide event 3; replica 1's run [2, 3] is compared whole, and delivering 2 forgets 3.
  const { v, delivered, resolved, section, pos } = harness({ deliveredMax: 1 });
  const recs = events(4);
  section(0, recs);
  section(1, [recs[0]!]);
  section(1, [recs[1]!]);
  section(2, [recs[3]!]);
  assert.equal(delivered.length, 3);
  section(1, [recs[2]!, recs[3]!]);
  assert.equal(delivered.length, 4);
  assert.equal(v.counters.stale, 1, 'the copy of the forgotten event is stale');
  assertResolvedOnce(resolved, pos);
});

test('a run stops at an event forgotten while it is counted: a slot freed and reused meanwhile is never taken for the event it named', () => {
  // deliveredMax 2. Replica 0 creates the run [a1..a4, d1, d2, k, j], k at priority 1.
  // Replica 1 matches [a1], [a2], [a3, a4] (its runs grow to four records). Replicas 2 and 3
  // make k win at priority 0 (so its floor is at level 0) and replica 2 decides j. Replica
  // 1's run [d1, d2, k, j] is compared whole: delivering d1 forgets k, delivering d2 forgets
  // j. k's copy (level 1, no floor there) makes a new event, in the slot j just gave up; j's
  // copy must still count for j (stale: delivered and forgotten), not as a copy of k's.
  const { v, delivered, resolved, section, pos } = harness({ deliveredMax: 2 });
  const a = [1, 2, 3, 4].map((seq) => makeRecord({ publisher: 'a', seq, content: `a${seq}` }));
  const [d1, d2, k, j] = ['d1', 'd2', 'k', 'j'].map((publisher) => makeRecord({ publisher, seq: 1, content: `from ${publisher}` })) as [Buffer, Buffer, Buffer, Buffer];
  const kAt1 = makeRecord({ publisher: 'k', seq: 1, priority: 1, content: 'from k' });
  section(0, [...a, d1, d2, kAt1, j]);
  section(1, [a[0]!]);
  section(1, [a[1]!]);
  section(1, [a[2]!, a[3]!]);
  section(2, [k]);
  section(3, [k]);
  section(2, [j]);
  assert.equal(delivered.length, 6);
  const before = { ...v.counters };
  section(1, [d1, d2, kAt1, j]);
  assert.equal(delivered.length, 8, 'd1 and d2 delivered');
  assert.equal(v.counters.duplicateCopies, before.duplicateCopies, "j's copy counted as a copy of another event");
  assert.equal(v.counters.stale, before.stale + 1, "j's copy is stale: j was delivered and forgotten");
  assert.equal(v.pendingCount, 1, 'k at level 1 waits for a second copy');
  assert.equal(v.incompleteCount, 2, 'd1 and d2 wait for replicas 2 and 3');
  assertResolvedOnce(resolved, pos, [{ replica: 1, pos: pos[1]! - 2 }]);
});

test('a faulty replica breaking every other record of long runs costs comparisons in proportion to the bytes it sends', () => {
  const { v, section } = harness({ pendingMax: 5000, deliveredMax: 5000 });
  const recs = events(2000);
  section(0, recs);
  section(1, recs);
  const broken = recs.map((r, i) => (i % 2 === 1 ? makeRecord({ seq: i + 1, content: `event ${i}`.replace('e', 'E') }) : r));
  const frame = Buffer.concat(broken);
  let compared = 0;
  const compare = frame.compare.bind(frame);
  // Count the bytes each comparison against the first version may read.
  frame.compare = ((target: Uint8Array, ts?: number, te?: number, ss?: number, se?: number) => {
    compared += (se ?? frame.length) - (ss ?? 0);
    return compare(target, ts, te, ss, se);
  }) as typeof frame.compare;
  v.offerSection(3, frame, 0, frame.length, 0, NOW, EVENT_BYTES_MAX);
  assert.equal(v.mismatches[3], 1000);
  assert.ok(compared <= 4 * frame.length, `compared ${compared} bytes for a frame of ${frame.length}`);
});

/** V8's collector, for the tests that hold the voter to letting memory go. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * Offers `recs` from `replica` in a frame of memory of its own (a read slab, in a subscriber),
 * the first at position `pos`; returns a weak reference to that memory.
 */
function offeredInMemoryOfItsOwn(v: Voter, recs: Buffer[], replica = 0, pos = 0, nowMs = NOW): WeakRef<ArrayBuffer> {
  const frame = Buffer.allocUnsafeSlow(recs.reduce((n, r) => n + r.length, 0));
  Buffer.concat(recs).copy(frame);
  v.offerSection(replica, frame, 0, frame.length, pos, nowMs, EVENT_BYTES_MAX);
  return new WeakRef(frame.buffer as ArrayBuffer);
}

/** True once nothing keeps `ref`'s target (after a turn of the event loop and a full collection). */
async function letGo(gc: () => void, ref: WeakRef<ArrayBuffer>): Promise<boolean> {
  await new Promise((r) => setImmediate(r));
  gc();
  return ref.deref() === undefined;
}

test('an event still missing a copy lets go of its frame after a second, and still compares the copy when it comes', async () => {
  const gc = collector();
  const { v, delivered, section, pos } = harness();
  const recs = events(40);
  const slab = offeredInMemoryOfItsOwn(v, recs);
  pos[0]! += recs.length;
  section(1, recs);
  section(2, recs);
  assert.equal(delivered.length, 40);
  assert.equal(v.incompleteCount, 40, 'replica 3 is down');
  v.sweep(NOW + 999);
  assert.equal(await letGo(gc, slab), false, 'within the second, the events compare copies with their frame');
  v.sweep(NOW + 1000);
  assert.equal(await letGo(gc, slab), true, 'the frame is let go');
  // Replica 3 comes back, with one event altered: compared with the events' own bytes.
  const late: Buffer[] = recs.map((r) => Buffer.from(r));
  late[7] = makeRecord({ seq: 8, content: 'altered' });
  section(3, late);
  assert.deepEqual(v.mismatches, [0, 0, 0, 1]);
  assert.equal(v.incompleteCount, 0);
  assert.equal(delivered.length, 40);
});

test('a frame is let go once its events are, whatever the voter parsed it with', async () => {
  const gc = collector();
  const { v, section } = harness();
  const recs = events(40);
  const slab = offeredInMemoryOfItsOwn(v, recs);
  assert.equal(v.pendingCount, 40);
  v.sweep(NOW + BFT_F1.pendingMs);
  assert.equal(v.pendingCount, 0, 'no other replica sent them: dropped');
  assert.equal(await letGo(gc, slab), true, 'nothing in the voter keeps the frame');
  section(1, events(1)); // the voter still parses
});

test('events delivered after a sweep let go of their frames at the next one, while older ones are forgotten meanwhile', async () => {
  const gc = collector();
  const { v, delivered } = harness({ deliveredMax: 20 });
  const first = events(20);
  const second = Array.from({ length: 20 }, (_, i) => makeRecord({ seq: 21 + i, content: `later ${i}` }));
  for (const r of [0, 1, 2]) offeredInMemoryOfItsOwn(v, first, r, 0, NOW);
  v.sweep(NOW + 1000);
  // Delivering these forgets every event of the first frame (deliveredMax 20): the sweep's
  // place in the delivered events moves back with them.
  const slab = offeredInMemoryOfItsOwn(v, second, 0, 20, NOW + 1000);
  for (const r of [1, 2]) offeredInMemoryOfItsOwn(v, second, r, 20, NOW + 1000);
  assert.equal(delivered.length, 40);
  assert.equal(v.incompleteCount, 20, 'replica 3 is down');
  v.sweep(NOW + 1999);
  assert.equal(await letGo(gc, slab), false);
  v.sweep(NOW + 2000);
  assert.equal(await letGo(gc, slab), true, 'the second frame is let go too');
});

test('an undecided event lets go of its frame after a second, and is delivered from its own bytes', async () => {
  const gc = collector();
  const { v, delivered } = harness();
  const recs = events(30);
  const slab = offeredInMemoryOfItsOwn(v, recs);
  assert.equal(v.pendingCount, 30, 'one copy each');
  v.sweep(NOW + 1000);
  assert.equal(await letGo(gc, slab), true);
  offeredInMemoryOfItsOwn(v, recs, 1);
  assert.deepEqual(delivered, recs.map((r) => r.toString('latin1')));
  assert.deepEqual(v.mismatches, [0, 0, 0, 0]);
});
