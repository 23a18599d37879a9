// The voter finds events by publishing process (publisher + epoch) and then seq, remembering
// per replica the process of its previous copy (src/client/voter.ts). These tests hold that
// index to the plain meaning of the vote: against a reference model that keys every event by
// its whole identity and forgets nothing, over frames mixing processes, priorities and a
// faulty replica; and they check that a faulty replica inventing processes cannot grow it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Voter, type Copy, type VoterOptions } from '../../src/client/index.js';
import { assertProperty } from '../helpers/property.js';
import { makeRecord, EPOCH_A, EPOCH_B, T0_MS } from '../helpers/records.js';
import type { Priority } from '../../src/core/index.js';

const NOW = T0_MS;
const BFT_F1: VoterOptions = { replicas: 4, threshold: 2, ttlMs: 60_000, pendingMax: 1000, deliveredMax: 1000, pendingMs: 30_000 };
const N = 4;

/** The identity (publisherBytes, publisher, epoch, seq) as a string, as the voter used to key it. */
const idOf = (rec: Buffer): string => rec.toString('latin1', 8, 9 + rec[8]! + 16);
const hex = (b: Buffer): string => b.toString('hex');

function harness(o: Partial<VoterOptions> = {}) {
  const delivered: Buffer[] = [];
  const resolved: Copy[] = [];
  const v = new Voter({ ...BFT_F1, ...o }, { deliver: (buf, start, end) => delivered.push(Buffer.from(buf.subarray(start, end))), resolve: (replica, pos) => resolved.push({ replica, pos }) });
  const pos = new Array<number>(N).fill(0);
  const offer = (replica: number, rec: Buffer, nowMs = NOW): void => v.offer(replica, rec, pos[replica]!++, nowMs);
  return { v, delivered, resolved, offer };
}

/**
 * The vote with nothing to bound: every event under its whole identity, forever. A replica's
 * first copy of an event is its vote; the first version with `threshold` votes is delivered.
 */
class ReferenceVoter {
  readonly deliveries: string[] = [];
  readonly delivered = new Map<string, string>();
  readonly votes = new Map<string, Map<string, Set<number>>>();
  readonly first = new Map<string, string>();
  duplicates = 0;

  constructor(private readonly threshold: number) {}

  offer(replica: number, rec: Buffer): void {
    const id = idOf(rec);
    const version = hex(rec);
    if (this.first.has(`${replica}|${id}`)) {
      this.duplicates++;
      return;
    }
    this.first.set(`${replica}|${id}`, version);
    if (this.delivered.has(id)) return;
    const byVersion = this.votes.get(id) ?? new Map<string, Set<number>>();
    this.votes.set(id, byVersion);
    const voters = byVersion.get(version) ?? new Set<number>();
    byVersion.set(version, voters.add(replica));
    if (voters.size >= this.threshold) {
      this.delivered.set(id, version);
      this.deliveries.push(version);
    }
  }

  mismatches(replicas: number): number[] {
    const out = new Array<number>(replicas).fill(0);
    for (const [id, version] of this.delivered) {
      for (let r = 0; r < replicas; r++) {
        const first = this.first.get(`${r}|${id}`);
        if (first !== undefined && first !== version) out[r]!++;
      }
    }
    return out;
  }
}

// ---- Random worlds: publishing processes, replicas that drop, a faulty replica ---------------

/** Processes that share a publisher, an epoch, or the length of the publisher id. */
const STREAMS: { publisher: string; epoch: Buffer }[] = [
  { publisher: 'probe', epoch: EPOCH_A },
  { publisher: 'probe', epoch: EPOCH_B },
  { publisher: 'agent', epoch: EPOCH_A },
  { publisher: 'p', epoch: EPOCH_B },
  { publisher: 'edr-collector-7', epoch: EPOCH_A },
];

type Fault = 'copy' | 'alter' | 'alterPriority' | 'duplicate' | 'randomSeq' | 'garbage';

interface World {
  events: { stream: number; priority: Priority; gap: number; content: Uint8Array }[];
  /** Per correct replica, indexes (mod events) of the events it dropped (TTL, overflow). */
  drops: number[][];
  faulty: number;
  faults: { kind: Fault; event: number; seq: number; publisher: Uint8Array; epoch: Uint8Array; priority: Priority }[];
  /** Per replica, a random key per copy; the order within one process and priority is kept. */
  sortKeys: number[][];
  /** Per replica, whether it sends in publish order, so that its frames repeat runs of another's. */
  inOrder: boolean[];
  /** Frames go to offerSection (runs compared whole) rather than record by record. */
  bySection: boolean;
  /** Which replica's next frame goes next, and how many records it carries. */
  schedule: [number, number][];
  limits: { pendingMax: number; deliveredMax: number } | undefined;
}

const priority = fc.constantFrom<Priority>(0, 1, 2, 3);
const worldEvent = fc.record({ stream: fc.nat(STREAMS.length - 1), priority, gap: fc.nat(3), content: fc.uint8Array({ maxLength: 12 }) });
const world: fc.Arbitrary<World> = fc.record({
  events: fc.array(worldEvent, { minLength: 1, maxLength: 40 }),
  drops: fc.array(fc.array(fc.nat(), { maxLength: 3 }), { minLength: N, maxLength: N }),
  faulty: fc.integer({ min: -1, max: N - 1 }),
  faults: fc.array(
    fc.record({
      kind: fc.constantFrom<Fault>('copy', 'alter', 'alterPriority', 'duplicate', 'randomSeq', 'garbage'),
      event: fc.nat(),
      seq: fc.nat(60),
      publisher: fc.uint8Array({ minLength: 1, maxLength: 6 }),
      epoch: fc.uint8Array({ minLength: 8, maxLength: 8 }),
      priority,
    }),
    { maxLength: 40 },
  ),
  sortKeys: fc.array(fc.array(fc.nat(), { minLength: 100, maxLength: 100 }), { minLength: N, maxLength: N }),
  inOrder: fc.array(fc.boolean(), { minLength: N, maxLength: N }),
  bySection: fc.boolean(),
  schedule: fc.array(fc.tuple(fc.nat(N - 1), fc.integer({ min: 1, max: 12 })), { minLength: 1, maxLength: 60 }),
  limits: fc.option(fc.record({ pendingMax: fc.integer({ min: 1, max: 6 }), deliveredMax: fc.integer({ min: STREAMS.length, max: 8 }) }), { nil: undefined }),
});

interface Built {
  truth: Buffer[];
  /** Per replica, the records it sends, in its order. */
  sends: Buffer[][];
}

function build(w: World): Built {
  const seqs = new Array<number>(STREAMS.length).fill(0);
  const meta = w.events.map((e) => ({ ...e, seq: (seqs[e.stream]! += 1 + e.gap) }));
  const truth = meta.map((e) => makeRecord({ ...STREAMS[e.stream]!, seq: e.seq, priority: e.priority, content: Buffer.from(e.content), timestampMs: NOW }));
  const sends: Buffer[][] = [];
  for (let r = 0; r < N; r++) {
    if (r === w.faulty) {
      const out: Buffer[] = [];
      for (const f of w.faults) {
        const i = f.event % truth.length;
        const e = meta[i]!;
        const real = { ...STREAMS[e.stream]!, seq: e.seq, priority: e.priority, content: Buffer.from(e.content), timestampMs: NOW };
        if (f.kind === 'copy') out.push(truth[i]!);
        else if (f.kind === 'duplicate') out.push(truth[i]!, truth[i]!);
        else if (f.kind === 'alter') out.push(makeRecord({ ...real, content: Buffer.concat([Buffer.from(e.content), Buffer.from([0xa5])]) }));
        else if (f.kind === 'alterPriority') out.push(makeRecord({ ...real, priority: ((e.priority + 1) % 4) as Priority }));
        else if (f.kind === 'randomSeq') out.push(makeRecord({ ...real, seq: f.seq, content: 'fabricated' }));
        else out.push(makeRecord({ publisher: Buffer.from(f.publisher), epoch: Buffer.from(f.epoch), seq: f.seq, priority: f.priority, content: 'garbage', timestampMs: NOW }));
      }
      sends.push(out);
      continue;
    }
    // A correct replica: every event it did not drop, in an order that keeps each process's
    // seqs rising within a priority level (urgent events may overtake others).
    const dropped = new Set(w.drops[r]!.map((d) => d % truth.length));
    const keep = meta.map((e, i) => ({ e, i })).filter(({ i }) => !dropped.has(i));
    const keys = keep.map((_, k) => (w.inOrder[r] ? 0 : w.sortKeys[r]![k % 100]! * 100) + k);
    const groups = new Map<string, number[]>();
    keep.forEach(({ e }, k) => groups.set(`${e.stream}/${e.priority}`, [...(groups.get(`${e.stream}/${e.priority}`) ?? []), k]));
    const ordered = new Array<number>(keep.length);
    for (const members of groups.values()) {
      const sorted = members.map((k) => keys[k]!).sort((a, b) => a - b);
      members.forEach((k, j) => (ordered[k] = sorted[j]!));
    }
    sends.push(
      keep
        .map(({ i }, k) => ({ i, key: ordered[k]! }))
        .sort((a, b) => a.key - b.key)
        .map(({ i }) => truth[i]!),
    );
  }
  return { truth, sends };
}

/** Frames of 1..12 records from one replica at a time, as the schedule says. */
function* frames(w: World, sends: Buffer[][]): Generator<{ replica: number; frame: Buffer; offsets: number[] }> {
  const next = new Array<number>(N).fill(0);
  for (let k = 0; ; k++) {
    const left = sends.map((s, r) => s.length - next[r]!);
    if (left.every((x) => x === 0)) return;
    const [want, count] = w.schedule[k % w.schedule.length]!;
    let replica = want;
    while (left[replica] === 0) replica = (replica + 1) % N;
    const recs = sends[replica]!.slice(next[replica], next[replica]! + count);
    next[replica]! += recs.length;
    const offsets = [0];
    for (const rec of recs) offsets.push(offsets[offsets.length - 1]! + rec.length);
    yield { replica, frame: Buffer.concat(recs), offsets };
  }
}

test('delivers what a reference vote over whole identities delivers, in frames mixing processes, priorities and a faulty replica; within tight limits, only true events, each at most once', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(world, (w) => {
      const { truth, sends } = build(w);
      const { v, delivered, resolved } = harness(w.limits ?? {});
      const ref = new ReferenceVoter(BFT_F1.threshold);
      const pos = new Array<number>(N).fill(0);
      const offered: Copy[] = [];
      const senders = new Map<string, Set<number>>(); // version -> replicas that sent it
      const bound = w.limits ? w.limits.pendingMax + 2 * w.limits.deliveredMax : Infinity;
      for (const { replica, frame, offsets } of frames(w, sends)) {
        const firstPos = pos[replica]!;
        for (let i = 0; i + 1 < offsets.length; i++) {
          const rec = frame.subarray(offsets[i], offsets[i + 1]);
          senders.set(hex(rec), (senders.get(hex(rec)) ?? new Set()).add(replica));
          ref.offer(replica, rec);
          offered.push({ replica, pos: pos[replica]! });
          if (!w.bySection) v.offerAt(replica, frame, offsets[i]!, offsets[i + 1]!, pos[replica]!, NOW);
          pos[replica]!++;
          assert.ok(v.streamCount <= bound, `${v.streamCount} streams, over pendingMax + 2 deliveredMax`);
        }
        if (w.bySection) v.offerSection(replica, frame, 0, frame.length, firstPos, NOW, 1 << 20);
        assert.ok(v.streamCount <= bound, `${v.streamCount} streams, over pendingMax + 2 deliveredMax`);
        if (w.limits) assert.ok(v.eventCount <= w.limits.pendingMax + w.limits.deliveredMax, `${v.eventCount} events remembered, over pendingMax + deliveredMax`);
      }
      const deliveredHex = delivered.map(hex);
      for (const d of deliveredHex) assert.ok(senders.get(d)!.size >= BFT_F1.threshold, 'delivered a version fewer than threshold replicas sent');
      if (!w.limits) {
        assert.deepEqual(deliveredHex, ref.deliveries, 'the same deliveries in the same order as the reference');
        assert.deepEqual(v.mismatches, ref.mismatches(N));
        assert.equal(v.counters.duplicateCopies, ref.duplicates);
        assert.equal(v.counters.stale + v.counters.expired, 0);
      } else {
        const truths = new Set(truth.map(hex));
        for (const d of deliveredHex) assert.ok(truths.has(d), 'delivered a version no correct replica sent');
        assert.equal(new Set(delivered.map(idOf)).size, delivered.length, 'an event delivered twice');
      }
      if (w.faulty === -1 && !w.limits) {
        // Without a faulty replica and unbounded, every event that reached two replicas is delivered.
        const reached = truth.filter((rec) => sends.filter((s) => s.includes(rec)).length >= BFT_F1.threshold);
        assert.equal(new Set(delivered.map(idOf)).size, new Set(reached.map(idOf)).size);
      }
      const undecided = v.pendingCount;
      v.sweep(NOW + BFT_F1.pendingMs);
      assert.equal(v.pendingCount, 0);
      if (!w.limits) assert.equal(v.counters.undecided, undecided);
      assert.ok(v.streamCount <= new Set(truth.map((rec) => rec.toString('latin1', 8, 9 + rec[8]! + 8))).size, 'a process without events or floors is still remembered');
      const seen = new Map<string, number>();
      for (const c of resolved) seen.set(`${c.replica}:${c.pos}`, (seen.get(`${c.replica}:${c.pos}`) ?? 0) + 1);
      for (const c of offered) assert.equal(seen.get(`${c.replica}:${c.pos}`), 1, `copy ${c.replica}:${c.pos} resolved exactly once`);
      assert.equal(resolved.length, offered.length);
    }),
    { numRuns: 400 },
  );
});

// Longer histories, mostly sent in publish order, so that runs of many records form; limits
// down to one event, so that processes are given up too (deliveredMax below their number).
const tightLimits = fc.option(fc.record({ pendingMax: fc.integer({ min: 1, max: 6 }), deliveredMax: fc.integer({ min: 1, max: 8 }) }), { nil: undefined });

test('offering a frame by sections votes exactly as offering it record by record: runs over reused slots included', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(world, fc.array(worldEvent, { minLength: 20, maxLength: 80 }), fc.array(fc.boolean(), { minLength: N, maxLength: N }), tightLimits, (w0, events, shuffled, l) => {
      const w: World = { ...w0, events, inOrder: shuffled.map((x, r) => !x || r === 0), limits: l };
      const { sends } = build(w);
      const a = harness(w.limits ?? {});
      const b = harness(w.limits ?? {});
      const pos = new Array<number>(N).fill(0);
      for (const { replica, frame, offsets } of frames(w, sends)) {
        a.v.offerSection(replica, frame, 0, frame.length, pos[replica]!, NOW, 1 << 20);
        for (let i = 0; i + 1 < offsets.length; i++) b.v.offerAt(replica, frame, offsets[i]!, offsets[i + 1]!, pos[replica]! + i, NOW);
        pos[replica]! += offsets.length - 1;
      }
      assert.deepEqual(a.delivered.map(hex), b.delivered.map(hex));
      assert.deepEqual(a.resolved, b.resolved);
      assert.deepEqual(a.v.counters, b.v.counters);
      assert.deepEqual(a.v.mismatches, b.v.mismatches);
      assert.equal(a.v.pendingCount, b.v.pendingCount);
      assert.equal(a.v.incompleteCount, b.v.incompleteCount);
    }),
    { numRuns: 1000 },
  );
});

// ---- Bounds under a faulty replica -------------------------------------------------------------

/** A record of a process nobody runs: publisher id and epoch from `i`. */
function invented(i: number, seq = 1): Buffer {
  const epoch = Buffer.alloc(8);
  epoch.writeUInt32BE(i, 4);
  return makeRecord({ publisher: `forged-${i % 97}`, epoch, seq, timestampMs: NOW, content: 'garbage' });
}

test('a faulty replica inventing publisher ids and epochs cannot grow the streams remembered past pendingMax', () => {
  const pendingMax = 100;
  const { v, delivered, offer } = harness({ pendingMax, deliveredMax: 50 });
  for (let i = 0; i < 20_000; i++) {
    offer(3, invented(i, i));
    if (i % 100 === 0) for (const r of [0, 1]) offer(r, makeRecord({ seq: i + 1, timestampMs: NOW }));
    assert.ok(v.streamCount <= pendingMax + 1, `${v.streamCount} streams after ${i + 1} invented ones`);
  }
  assert.equal(delivered.length, 200, 'the real publisher is still delivered');
  v.sweep(NOW + BFT_F1.pendingMs);
  assert.equal(v.streamCount, 1, 'only the real process, with its delivered events, is left');
});

test('many real processes (restarts) keep at most deliveredMax idle ones, oldest given up first', () => {
  const deliveredMax = 50;
  const { v, delivered, offer } = harness({ deliveredMax });
  const epochOf = (i: number) => Buffer.from(i.toString(16).padStart(16, '0'), 'hex');
  for (let i = 0; i < 1000; i++) for (const r of [0, 1]) offer(r, makeRecord({ epoch: epochOf(i), seq: 1 }));
  assert.equal(delivered.length, 1000);
  assert.equal(v.streamCount, 2 * deliveredMax, 'deliveredMax with events remembered, deliveredMax more idle with floors');
  // The newest idle process still turns its forgotten event away; the oldest no longer knows it.
  offer(2, makeRecord({ epoch: epochOf(1000 - deliveredMax - 1), seq: 1 }));
  assert.equal(v.counters.stale, 1);
  offer(2, makeRecord({ epoch: epochOf(0), seq: 1 }));
  assert.equal(v.counters.stale, 1);
  assert.equal(v.pendingCount, 1);
});

test('floors of real processes survive a faulty replica flooding invented ones', () => {
  const { v, delivered, offer } = harness({ pendingMax: 10, deliveredMax: 5 });
  for (let seq = 1; seq <= 10; seq++) for (const r of [0, 1]) offer(r, makeRecord({ seq }));
  // Another process's deliveries push all of the probe's out: it is left idle, with its floor.
  for (let seq = 1; seq <= 5; seq++) for (const r of [0, 1]) offer(r, makeRecord({ publisher: 'agent', seq }));
  assert.equal(delivered.length, 15);
  assert.equal(v.streamCount, 2);
  for (let i = 0; i < 5000; i++) offer(3, invented(i));
  // Replica 2 was far behind: its copy of seq 1 comes after seq 1 was forgotten.
  offer(2, makeRecord({ seq: 1 }));
  offer(3, makeRecord({ seq: 1 }));
  assert.equal(delivered.length, 15, 'a forgotten event is not delivered again');
  assert.equal(v.counters.stale, 2);
});

// ---- Remembering each replica's last process ---------------------------------------------------

test("a process given up while a replica still remembers it is not brought back by that replica's next copy", () => {
  const { delivered, offer } = harness({ pendingMax: 1 });
  offer(0, makeRecord({ seq: 1 }));
  offer(3, invented(1)); // pendingMax 1: the probe's only event is dropped, and the probe with it
  offer(1, makeRecord({ seq: 2 })); // the probe anew
  offer(0, makeRecord({ seq: 2 })); // replica 0 last saw the old probe: it must find the new one
  assert.deepEqual(delivered.map(idOf), [idOf(makeRecord({ seq: 2 }))]);
});

test('a process whose last event is dropped to make room for its next one keeps its floors and is not given up with that event live', () => {
  const { delivered, offer } = harness({ pendingMax: 1, deliveredMax: 1 });
  const probe = (seq: number) => makeRecord({ seq });
  for (const rec of [probe(1), probe(2), makeRecord({ publisher: 'agent', seq: 1 })]) for (const r of [0, 1]) offer(r, rec);
  // The probe is idle now, with floor 2. Its seq 3 waits; seq 4 needs room and takes seq 3's.
  offer(0, probe(3));
  offer(0, probe(4));
  offer(1, probe(4)); // delivered, and the agent goes idle: one idle process too many
  offer(2, probe(4));
  offer(3, probe(4));
  offer(2, probe(2));
  assert.deepEqual(delivered.map(idOf), [probe(1), probe(2), makeRecord({ publisher: 'agent', seq: 1 }), probe(4)].map(idOf));
});

test('a process whose only event is dropped to make room for its next one is opened again', () => {
  const { delivered, offer } = harness({ pendingMax: 1 });
  offer(0, makeRecord({ seq: 1 }));
  offer(0, makeRecord({ seq: 2 }));
  offer(1, makeRecord({ seq: 2 }));
  assert.deepEqual(delivered.map(idOf), [idOf(makeRecord({ seq: 2 }))]);
});

test('an idle process that gets an event keeps its floors while room is made for it', () => {
  const { v, delivered, offer } = harness({ pendingMax: 2, deliveredMax: 2 });
  const rec = (publisher: string, seq: number) => makeRecord({ publisher, seq });
  const deliver = (publisher: string, seq: number) => [0, 1].forEach((r) => offer(r, rec(publisher, seq)));
  deliver('P', 1);
  deliver('Q', 1);
  deliver('X', 1); // P idle, floor 1
  deliver('Y', 1); // Q idle
  offer(0, rec('Q', 2)); // Q waits for votes again
  deliver('Z', 1); // X idle: P and X are the two idle processes
  offer(0, rec('W', 1)); // pending full
  offer(0, rec('P', 2)); // makes room by dropping Q 2, and Q goes idle: P must not be the one given up
  offer(2, rec('P', 1));
  offer(3, rec('P', 1));
  assert.equal(delivered.filter((d) => idOf(d) === idOf(rec('P', 1))).length, 1, 'P 1 delivered again');
  assert.equal(v.counters.stale, 2);
});

test("a replica's last process is matched on bytes the voter owns, not on a frame that was reused", () => {
  const { v, delivered } = harness();
  const frame = Buffer.alloc(makeRecord({ publisher: 'probe' }).length);
  let pos = 0;
  const offerIn = (replica: number, rec: Buffer) => {
    rec.copy(frame);
    v.offerAt(replica, frame, 0, rec.length, pos++, NOW);
  };
  // Frames are only reused once the voter is done with their records: delivered by every replica.
  for (const r of [0, 1, 2, 3]) offerIn(r, makeRecord({ publisher: 'probe', seq: 1 }));
  offerIn(0, makeRecord({ publisher: 'agent', seq: 1 }));
  offerIn(1, makeRecord({ publisher: 'agent', seq: 1 }));
  assert.equal(delivered.length, 2, "agent's seq 1 is not mistaken for probe's");
  assert.equal(v.counters.duplicateCopies, 0);
});

test('offerLate finds delivered events whether or not the replica sent the same process last', () => {
  const { v, offer } = harness();
  const a = makeRecord({ publisher: 'probe', seq: 1 });
  const b = makeRecord({ publisher: 'agent', seq: 1 });
  for (const r of [0, 1]) for (const rec of [a, b]) offer(r, rec);
  assert.equal(v.offerLate(2, a, 0), true);
  assert.equal(v.offerLate(2, b, 1), true);
  assert.equal(v.offerLate(3, b, 0), true);
  assert.equal(v.offerLate(3, makeRecord({ publisher: 'agent', seq: 2 }), 1), false, 'not delivered');
  assert.equal(v.offerLate(3, invented(1), 2), false, 'unknown process');
  assert.equal(v.offerLate(3, a, 3), true);
  assert.equal(v.incompleteCount, 0);
});
