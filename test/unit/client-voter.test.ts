// The subscriber's voter (src/client/voter.ts; paper §3.3, DESIGN §4 "BFT without order"):
// with n = 3f+1 replicas it delivers each event exactly once, after f+1 byte-identical copies,
// never a version fewer than f+1 replicas sent, and counts every copy that differs from the
// delivered one against the replica that sent it. cft: the first copy wins.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Voter, type Copy, type VoterOptions } from '../../src/client/index.js';
import { voterSeqBitsMax } from '../../src/client/voter.js';
import { assertProperty } from '../helpers/property.js';
import { makeRecord, EPOCH_A, EPOCH_B, T0_MS, type EventSpec } from '../helpers/records.js';

const NOW = T0_MS;
const BFT_F1: VoterOptions = { replicas: 4, threshold: 2, ttlMs: 60_000, pendingMax: 1000, deliveredMax: 1000, pendingMs: 30_000 };

/** A voter wired to arrays, with a per-replica position counter like a subscribe stream's. */
function harness(o: Partial<VoterOptions> = {}) {
  const delivered: Buffer[] = [];
  const resolved: Copy[] = [];
  const v = new Voter({ ...BFT_F1, ...o }, { deliver: (buf, start, end) => delivered.push(buf.subarray(start, end)), resolve: (replica, pos) => resolved.push({ replica, pos }) });
  const pos = new Map<number, number>();
  const offer = (replica: number, rec: Buffer, nowMs = NOW): void => {
    const p = pos.get(replica) ?? 0;
    pos.set(replica, p + 1);
    v.offer(replica, rec, p, nowMs);
  };
  return { v, delivered, resolved, offer };
}

const ev = (spec: EventSpec = {}): Buffer => makeRecord({ seq: 1, ...spec });

test('delivers each event once after f+1 matching copies (n=4, f=1)', () => {
  const { v, delivered, offer } = harness();
  const e = ev();
  offer(0, e);
  assert.equal(delivered.length, 0, 'one copy is not enough: that replica may be lying');
  offer(1, Buffer.from(e)); // an equal copy in another buffer, as it arrives off the wire
  assert.deepEqual(delivered, [e]);
  offer(2, e);
  offer(3, e);
  assert.equal(delivered.length, 1, 'later copies never deliver again');
  assert.equal(v.counters.delivered, 1);
  assert.deepEqual(v.mismatches, [0, 0, 0, 0]);
});

test('never delivers a version sent by only one replica', () => {
  const { v, delivered, offer } = harness();
  offer(0, ev({ content: 'forged A' }));
  offer(1, ev({ content: 'forged B' }));
  offer(2, ev({ content: 'real' }));
  assert.equal(delivered.length, 0);
  assert.equal(v.pendingCount, 1);
  offer(3, ev({ content: 'real' }));
  assert.deepEqual(delivered, [ev({ content: 'real' })]);
  assert.deepEqual(v.mismatches, [1, 1, 0, 0]);
});

test('a difference in any byte (timestamp, priority) is a different version', () => {
  const { delivered, offer } = harness();
  offer(0, ev());
  offer(1, ev({ timestampMs: NOW + 1 }));
  offer(2, ev({ priority: 3 }));
  assert.equal(delivered.length, 0);
});

test('a copy that differs from the delivered version counts against its replica, also when it arrives late', () => {
  const { v, delivered, offer } = harness();
  offer(0, ev());
  offer(1, ev());
  offer(2, ev({ content: 'tampered' }));
  offer(3, ev({ content: 'tampered differently' }));
  assert.equal(delivered.length, 1);
  assert.deepEqual(v.mismatches, [0, 0, 1, 1]);
});

test('duplicate copies from the same replica never count twice, before or after delivery', () => {
  const { v, delivered, resolved, offer } = harness();
  offer(0, ev());
  offer(0, ev());
  assert.equal(delivered.length, 0, 'one replica twice is still one vote');
  offer(1, ev());
  offer(1, ev({ content: 'changed its mind' }));
  offer(2, ev({ content: 'tampered' }));
  offer(2, ev({ content: 'tampered' }));
  assert.equal(delivered.length, 1);
  assert.equal(v.counters.duplicateCopies, 3);
  assert.deepEqual(v.mismatches, [0, 0, 1, 0], 'only the first copy of a replica is judged');
  assert.equal(resolved.length, 6, 'every copy is resolved, duplicates at once');
});

test('a replica resending after a reconnect does not deliver an event twice', () => {
  const { v, delivered, offer } = harness();
  for (const r of [0, 1, 2, 3]) offer(r, ev());
  for (const r of [0, 1, 2, 3]) offer(r, ev());
  assert.equal(delivered.length, 1);
  assert.equal(v.counters.duplicateCopies, 4);
});

test('an expired copy (timestamp + ttlMs < now) is not delivered; exactly at the TTL it still is', () => {
  const ttlMs = 1000;
  const { v, delivered, resolved, offer } = harness({ ttlMs });
  const old = ev({ seq: 1, timestampMs: NOW - ttlMs - 1 });
  offer(0, old);
  offer(1, old);
  assert.equal(delivered.length, 0);
  assert.equal(v.counters.expired, 2);
  assert.equal(resolved.length, 2, 'expired copies are resolved so they are acknowledged');
  const edge = ev({ seq: 2, timestampMs: NOW - ttlMs });
  offer(0, edge);
  offer(1, edge);
  assert.deepEqual(delivered, [edge]);
});

test('sweep drops undecided events older than pendingMs and resolves their copies', () => {
  const pendingMs = 5000;
  const { v, delivered, resolved, offer } = harness({ pendingMs });
  offer(0, ev({ seq: 1 }), NOW);
  offer(0, ev({ seq: 2 }), NOW + 1000);
  v.sweep(NOW + pendingMs - 1);
  assert.equal(v.pendingCount, 2);
  v.sweep(NOW + pendingMs);
  assert.equal(v.pendingCount, 1, 'only the older one is dropped');
  assert.equal(v.counters.undecided, 1);
  assert.deepEqual(resolved, [{ replica: 0, pos: 0 }]);
  v.sweep(NOW + 1000 + pendingMs);
  assert.equal(v.pendingCount, 0);
  assert.equal(delivered.length, 0);
});

test('pendingMax bounds undecided events: the oldest is dropped and counted', () => {
  const { v, resolved, offer } = harness({ pendingMax: 2 });
  for (const seq of [1, 2, 3]) offer(0, ev({ seq }));
  assert.equal(v.pendingCount, 2);
  assert.equal(v.counters.undecided, 1);
  assert.deepEqual(resolved, [{ replica: 0, pos: 0 }]);
});

test('after deliveredMax newer deliveries, a late copy of a forgotten event is stale, not delivered again', () => {
  const { v, delivered, offer } = harness({ deliveredMax: 2 });
  for (const seq of [1, 2, 3]) for (const r of [0, 1]) offer(r, ev({ seq }));
  assert.equal(delivered.length, 3);
  offer(2, ev({ seq: 1 }));
  assert.equal(delivered.length, 3);
  assert.equal(v.counters.stale, 1);
  offer(2, ev({ seq: 1, epoch: EPOCH_B }));
  offer(3, ev({ seq: 1, epoch: EPOCH_B }));
  assert.equal(delivered.length, 4, 'the floor is per publisher process: another epoch is unaffected');
});

// A full queue or a TTL makes a replica skip events; it sends the rest of a level in order. A
// replica that skipped seqs 1-3 and sent newer ones first must not let the floor pass 1-3
// while the others still hold them (the twentieth full bench run lost 3,298 of 500,000 so).
for (const [name, o, skipping] of [
  ['cft, one replica', { replicas: 2, threshold: 1 }, [0]],
  ['bft, f+1 replicas', { replicas: 4, threshold: 2 }, [0, 1]],
] as const) {
  test(`${name} dropped seqs 1-3 and sent newer ones first: the others' copies of 1-3 are still delivered, later copies of 4-12 are not`, () => {
    const { v, delivered, offer } = harness({ ...o, deliveredMax: 4 });
    for (const r of skipping) for (let seq = 4; seq <= 12; seq++) offer(r, ev({ seq }));
    for (let r = 0; r < o.replicas; r++) if (!(skipping as readonly number[]).includes(r)) for (let seq = 1; seq <= 12; seq++) offer(r, ev({ seq }));
    assert.equal(delivered.length, 12, `${v.counters.stale} copies turned away as stale`);
    assert.equal(v.counters.delivered, 12);
    assert.equal(v.counters.floorsForced, 0);
  });
}

test('the floor rises once enough replicas passed: a copy below it that is not remembered is stale', () => {
  const { v, delivered, offer } = harness({ replicas: 2, threshold: 1, deliveredMax: 2 });
  for (let seq = 1; seq <= 6; seq++) for (const r of [0, 1]) if (seq !== 2 || r === 0) offer(r, ev({ seq }));
  assert.equal(delivered.length, 6);
  offer(1, ev({ seq: 2 })); // replica 1 passed seq 2 long ago: a resend of what it skipped
  offer(0, ev({ seq: 1 }));
  assert.equal(delivered.length, 6);
  assert.equal(v.counters.stale, 2);
});

test('floors do not wait for a replica whose link is down; its backlog, once back, is judged against them', () => {
  const deliveredMax = 4;
  const run = (downAtStart: boolean) => {
    const { v, delivered, offer } = harness({ replicas: 2, threshold: 1, deliveredMax });
    if (downAtStart) v.setLive(1, false);
    // Past voterSeqBitsMax seqs behind, a floor must pass replica 1.
    const events = voterSeqBitsMax(deliveredMax) + 100;
    for (let seq = 1; seq <= events; seq++) offer(0, ev({ seq }));
    v.setLive(1, true);
    offer(1, ev({ seq: 1 }));
    return { v, delivered };
  };
  const down = run(true);
  assert.equal(down.v.counters.floorsForced, 0, 'nothing waited for the replica that was down');
  assert.equal(down.delivered.length, voterSeqBitsMax(deliveredMax) + 100);
  assert.equal(down.v.counters.stale, 1, 'its late copy of a delivered event is stale');
  const up = run(false);
  assert.ok(up.v.counters.floorsForced > 0, 'a live replica that sends nothing holds floors until the bits run out, and that is counted');
  assert.equal(up.delivered.length, voterSeqBitsMax(deliveredMax) + 100, 'and still nothing is delivered twice');
});

test('delivers an event overtaken by more than deliveredMax urgent events of its publisher', () => {
  const { delivered, offer } = harness({ deliveredMax: 2 });
  // Replica queues hand out priority 3 before priority 0, so seq 1 (normal) comes after 2..4.
  for (const [seq, priority] of [[2, 3], [3, 3], [4, 3], [1, 0]] as const) for (const r of [0, 1, 2, 3]) offer(r, ev({ seq, priority }));
  assert.equal(delivered.length, 4);
});

test('cft (threshold 1): delivers the first copy and drops later duplicates', () => {
  const { v, delivered, offer } = harness({ replicas: 2, threshold: 1 });
  offer(1, ev());
  assert.deepEqual(delivered, [ev()]);
  offer(0, ev());
  offer(1, ev());
  assert.equal(delivered.length, 1);
  assert.equal(v.counters.duplicateCopies, 1);
  offer(0, ev({ seq: 2, content: 'first' }));
  offer(1, ev({ seq: 2, content: 'second' }));
  assert.deepEqual(delivered[1], ev({ seq: 2, content: 'first' }));
  assert.deepEqual(v.mismatches, [0, 1]);
});

test('refuses a threshold outside 1..replicas with FIT_ERR_INTERNAL', () => {
  for (const threshold of [0, 5]) {
    assert.throws(
      () => new Voter({ ...BFT_F1, threshold }, { deliver() {}, resolve() {} }),
      (e: unknown) => (e as { code?: string }).code === 'FIT_ERR_INTERNAL',
    );
  }
});

// ---- Randomized schedules with Byzantine replicas --------------------------------------

type Act = 'correct' | 'omit' | 'alter' | 'alterTwice' | 'duplicate' | 'alterAndCorrect' | 'fabricate';
const ACTS: Act[] = ['correct', 'omit', 'alter', 'alterTwice', 'duplicate', 'alterAndCorrect', 'fabricate'];

interface Plan {
  f: number;
  events: { publisher: 0 | 1; content: Uint8Array; priority: 0 | 1 | 2 | 3 }[];
  byzantine: number[];
  /** acts[event][k]: what the k-th Byzantine replica does with that event. */
  acts: Act[][];
  /** Colluding Byzantine replicas send the very same altered bytes for an event. */
  collude: boolean;
  /** Correct replicas resending an event after a reconnect: [replica seed, event seed]. */
  resends: [number, number][];
}

const plan: fc.Arbitrary<Plan> = fc.integer({ min: 1, max: 2 }).chain((f) => {
  const n = 3 * f + 1;
  return fc.record({
    f: fc.constant(f),
    events: fc.array(
      fc.record({ publisher: fc.constantFrom<0 | 1>(0, 1), content: fc.uint8Array({ maxLength: 24 }), priority: fc.constantFrom<0 | 1 | 2 | 3>(0, 1, 2, 3) }),
      { minLength: 1, maxLength: 12 },
    ),
    byzantine: fc.uniqueArray(fc.nat(n - 1), { maxLength: f }),
    acts: fc.array(fc.array(fc.constantFrom(...ACTS), { minLength: f, maxLength: f }), { minLength: 12, maxLength: 12 }),
    collude: fc.boolean(),
    resends: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 6 }),
  });
});

interface Sent {
  replica: number;
  rec: Buffer;
}

/** The copies every replica sends under `p`, in no particular order; and the true records. */
function copiesOf(p: Plan): { truth: Buffer[]; fabricated: Buffer[]; copies: Sent[] } {
  const n = 3 * p.f + 1;
  const seqs = [0, 0];
  const spec = p.events.map((e): EventSpec => ({
    publisher: e.publisher === 0 ? 'probe' : 'agent',
    epoch: e.publisher === 0 ? EPOCH_A : EPOCH_B,
    seq: ++seqs[e.publisher]!,
    priority: e.priority,
    content: Buffer.from(e.content),
  }));
  const truth = spec.map((s) => makeRecord(s));
  const fabricated: Buffer[] = [];
  const correct = Array.from({ length: n }, (_, r) => r).filter((r) => !p.byzantine.includes(r));
  const copies: Sent[] = [];
  truth.forEach((rec, i) => {
    for (const r of correct) copies.push({ replica: r, rec });
    p.byzantine.forEach((r, k) => {
      const salt = p.collude ? 0 : k + 1;
      const altered = (variant: number) =>
        makeRecord({ ...spec[i], content: Buffer.concat([Buffer.from(p.events[i]!.content), Buffer.from([0xa5 ^ salt, variant])]) });
      const send = (b: Buffer) => copies.push({ replica: r, rec: b });
      switch (p.acts[i]![k]!) {
        case 'correct':
          return send(rec);
        case 'omit':
          return;
        case 'alter':
          return send(altered(0));
        case 'alterTwice':
          return (send(altered(0)), send(altered(1)));
        case 'duplicate':
          return (send(rec), send(rec));
        case 'alterAndCorrect':
          return (send(altered(0)), send(rec)); // which goes first is up to the shuffle
        case 'fabricate': {
          // An event nobody published, under the real publisher's identity.
          const fake = makeRecord({ ...spec[i], seq: 1_000_000 + i, content: `fabricated ${i}` });
          fabricated.push(fake);
          return (send(fake), send(rec));
        }
      }
    });
  });
  for (const [rs, es] of p.resends) copies.push({ replica: correct[rs % correct.length]!, rec: truth[es % truth.length]! });
  return { truth, fabricated, copies };
}

test('delivers every event exactly once with the correct content and blames only Byzantine replicas, under any interleaving with up to f Byzantine replicas (n=3f+1, f=1,2)', (t) => {
  const scenario = plan.chain((p) => {
    const built = copiesOf(p);
    return fc.record({
      p: fc.constant(p),
      built: fc.constant(built),
      order: fc.shuffledSubarray(built.copies, { minLength: built.copies.length, maxLength: built.copies.length }),
    });
  });
  assertProperty(
    t,
    import.meta.url,
    fc.property(scenario, ({ p, built, order }) => {
      const n = 3 * p.f + 1;
      const { v, delivered, resolved } = harness({ replicas: n, threshold: p.f + 1 });
      const pos = new Array<number>(n).fill(0);
      const offered: Copy[] = [];
      const firstCopy = new Map<string, Buffer>(); // `${replica}/${event}` -> first bytes sent
      for (const c of order) {
        const copy = { replica: c.replica, pos: pos[c.replica]!++ };
        offered.push(copy);
        const key = `${c.replica}/${c.rec.toString('latin1', 8, 9 + c.rec[8]! + 16)}`;
        if (!firstCopy.has(key)) firstCopy.set(key, c.rec);
        v.offer(copy.replica, c.rec, copy.pos, NOW);
      }
      v.sweep(NOW + BFT_F1.pendingMs); // drops what can never be decided (fabricated events)

      const hex = (b: Buffer) => b.toString('hex');
      assert.deepEqual(delivered.map(hex).sort(), built.truth.map(hex).sort(), 'each true event exactly once, nothing else');
      for (let r = 0; r < n; r++) {
        if (!p.byzantine.includes(r)) {
          assert.equal(v.mismatches[r], 0, `correct replica ${r} blamed`);
          continue;
        }
        // A Byzantine replica is blamed once for each event whose first copy from it was wrong.
        const expected = built.truth.filter((rec) => {
          const first = firstCopy.get(`${r}/${rec.toString('latin1', 8, 9 + rec[8]! + 16)}`);
          return first !== undefined && !first.equals(rec);
        }).length;
        assert.equal(v.mismatches[r], expected, `Byzantine replica ${r}`);
      }
      assert.equal(v.counters.delivered, built.truth.length);
      assert.equal(v.counters.undecided, new Set(built.fabricated.map(hex)).size, 'fabricated events are never decided');
      assert.equal(v.pendingCount, 0);
      const seen = new Map<string, number>();
      for (const c of resolved) seen.set(`${c.replica}:${c.pos}`, (seen.get(`${c.replica}:${c.pos}`) ?? 0) + 1);
      for (const c of offered) assert.equal(seen.get(`${c.replica}:${c.pos}`), 1, `copy ${c.replica}:${c.pos} resolved exactly once`);
      assert.equal(resolved.length, offered.length);
    }),
    { numRuns: 300 },
  );
});

// ---- Replicas that skip events --------------------------------------------------------

/**
 * Correct replicas each hold some of the events (the rest their queues dropped), send a
 * publisher's events of one level in seq order but the levels interleaved as they like, and
 * reach the voter interleaved in any way, some far behind the others; some then resend copies
 * after a reconnect. deliveredMax is tiny, so floors are raised throughout.
 */
const skipping = fc.record({
  bft: fc.boolean(),
  deliveredMax: fc.integer({ min: 1, max: 6 }),
  events: fc.array(fc.record({ publisher: fc.constantFrom<0 | 1>(0, 1), priority: fc.constantFrom<0 | 3>(0, 3), holders: fc.nat(15) }), { minLength: 1, maxLength: 60 }),
  levelPicks: fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
  schedule: fc.array(fc.nat(3), { maxLength: 300 }),
  resends: fc.array(fc.tuple(fc.nat(3), fc.nat()), { maxLength: 8 }),
});

test('replicas that skip events: every event enough replicas hold is delivered exactly once, whatever the others skipped and however far behind they are', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(skipping, (p) => {
      const n = p.bft ? 4 : 2;
      const quorum = p.bft ? 2 : 1;
      const { v, delivered, offer } = harness({ replicas: n, threshold: quorum, deliveredMax: p.deliveredMax, pendingMax: 1000 });
      const seqs = [0, 0];
      const recs = p.events.map((e) =>
        ev({ publisher: e.publisher === 0 ? 'probe' : 'agent', epoch: e.publisher === 0 ? EPOCH_A : EPOCH_B, seq: ++seqs[e.publisher]!, priority: e.priority, content: `${e.publisher}` }),
      );
      // Each replica's send order: its events of each level in order, the levels merged as levelPicks say.
      const sends = Array.from({ length: n }, (_, r) => {
        const levels = [0, 3].map((l) => recs.filter((_, i) => p.events[i]!.priority === l && p.events[i]!.holders & (1 << r)));
        const out: Buffer[] = [];
        for (let k = 0; levels[0]!.length + levels[1]!.length > 0; k++) {
          const pick = levels[0]!.length === 0 ? 1 : levels[1]!.length === 0 ? 0 : p.levelPicks[(k + r) % 64] ? 1 : 0;
          out.push(levels[pick]!.shift()!);
        }
        return out;
      });
      const sent: Buffer[][] = Array.from({ length: n }, () => []);
      const next = new Array<number>(n).fill(0);
      const more = (r: number) => next[r]! < sends[r]!.length;
      const step = (r: number) => {
        const rec = sends[r]![next[r]!++]!;
        sent[r]!.push(rec);
        offer(r, rec);
      };
      for (const pick of p.schedule) if (more(pick % n)) step(pick % n);
      for (let r = 0; r < n; r++) while (more(r)) step(r);
      for (const [r, k] of p.resends) if (sent[r % n]!.length) offer(r % n, sent[r % n]![k % sent[r % n]!.length]!);

      const hex = (b: Buffer) => b.toString('hex');
      const got = delivered.map(hex);
      assert.equal(new Set(got).size, got.length, 'nothing delivered twice');
      const expected = recs.filter((_, i) => popcount(p.events[i]!.holders & ((1 << n) - 1)) >= quorum).map(hex);
      assert.deepEqual([...got].sort(), expected.sort(), 'every event held by enough replicas, and only those');
      assert.equal(v.counters.floorsForced, 0);
    }),
    { numRuns: 300 },
  );
});

function popcount(x: number): number {
  let c = 0;
  for (let v = x; v; v &= v - 1) c++;
  return c;
}
