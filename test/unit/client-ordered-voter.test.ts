// The subscriber's voter for ordered channels (src/client/ordered-voter.ts; docs/consensus.md):
// with n = 4 replicas and f = 1 it delivers each seq once, in increasing order, after f+1
// byte-identical envelopes (position and content voted together), never a version only one
// replica sent; it skips a hole only after gapWaitMs; it holds at most pendingMax seqs whatever
// a faulty replica sends; and it resolves every copy it read exactly once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OrderedVoter, type OrderedVoterOptions } from '../../src/client/index.js';
import { encodeOrdered, ORDERED_HEADER_BYTES } from '../../src/codec/index.js';
import { assertProperty } from '../helpers/property.js';

const NOW = 1_700_000_000_000;
const BFT_F1: OrderedVoterOptions = { replicas: 4, threshold: 2, pendingMax: 64, gapWaitMs: 1000 };

/** A record as readOrdered sees one: its own u32 length prefix, then any bytes. */
function record(content: string | Uint8Array): Buffer {
  const body = Buffer.from(content);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

const truthOf = (seq: number): Buffer => record(`event ${seq}`);
const env = (seq: number, content?: string): Buffer => encodeOrdered(seq, content === undefined ? truthOf(seq) : record(content));
const envs = (from: number, to: number): Buffer[] => Array.from({ length: to - from + 1 }, (_, i) => env(from + i));

interface Delivery {
  seq: number;
  record: Buffer;
}

/**
 * A voter wired to arrays, with a per-replica position counter like a subscribe stream's. Each
 * section is offered from one buffer that is overwritten right after, as a frame buffer would be.
 */
function harness(o: Partial<OrderedVoterOptions> = {}) {
  const delivered: Delivery[] = [];
  const resolved: string[] = [];
  const skips: [number, number][] = [];
  const v = new OrderedVoter(
    { ...BFT_F1, ...o },
    {
      deliver: (seq, buf, start, end) => delivered.push({ seq, record: Buffer.from(buf.subarray(start, end)) }),
      resolve: (replica, pos) => resolved.push(`${replica}:${pos}`),
      skipped: (fromSeq, toSeq) => skips.push([fromSeq, toSeq]),
    },
  );
  const pos = new Array<number>(BFT_F1.replicas).fill(0);
  const offered: string[] = [];
  /** Offers `items` as one section; a garbage item takes a position too. */
  const send = (replica: number, items: Buffer[], nowMs = NOW): void => {
    const section = Buffer.concat(items);
    for (let i = 0; i < items.length; i++) offered.push(`${replica}:${pos[replica]! + i}`);
    v.offerSection(replica, section, 0, section.length, pos[replica]!, nowMs);
    pos[replica]! += items.length;
    section.fill(0xee);
  };
  const seqs = (): number[] => delivered.map((d) => d.seq);
  return { v, delivered, resolved, skips, offered, send, seqs };
}

/** Every offered copy resolved exactly once, nothing else resolved. */
function assertAllResolvedOnce(offered: string[], resolved: string[]): void {
  assert.deepEqual([...resolved].sort(), [...offered].sort());
}

test('delivers each seq once f+1 replicas sent the same envelope, strictly in seq order (n=4, f=1)', () => {
  const { v, delivered, send, seqs } = harness({ from: 1 });
  send(0, [env(2)]);
  send(1, [env(2)]);
  assert.deepEqual(seqs(), [], 'seq 2 is decided but must wait for seq 1');
  assert.equal(v.pending, 1);
  send(0, [env(1)]);
  assert.deepEqual(seqs(), [], 'one copy is not enough: that replica may be lying');
  send(1, [env(1)]);
  assert.deepEqual(seqs(), [1, 2]);
  send(2, envs(1, 2));
  send(3, envs(1, 2));
  assert.deepEqual(seqs(), [1, 2], 'later copies never deliver again');
  assert.deepEqual(delivered.map((d) => d.record), [truthOf(1), truthOf(2)], 'the record, not the envelope, and intact although every section buffer was overwritten');
  assert.equal(v.counters.delivered, 2);
  assert.equal(v.expected, 3);
  assert.equal(v.pending, 0);
  assert.deepEqual(v.counters.mismatches, [0, 0, 0, 0]);
});

test('never delivers a version only one replica sent, altered or moved to another seq, and blames that replica', () => {
  const { v, send, seqs, delivered } = harness({ from: 1 });
  send(3, [env(1, 'forged'), encodeOrdered(2, truthOf(1))]); // altered seq 1, and event 1 moved to seq 2
  send(2, [env(1, 'forged differently')]);
  assert.deepEqual(seqs(), [], 'two different versions are two single votes');
  send(0, envs(1, 2));
  send(1, envs(1, 2));
  assert.deepEqual(seqs(), [1, 2]);
  assert.deepEqual(delivered.map((d) => d.record), [truthOf(1), truthOf(2)]);
  assert.deepEqual(v.counters.mismatches, [0, 0, 1, 2]);
  send(0, [env(3)]);
  send(1, [env(3)]);
  send(3, [env(3, 'late and forged')]);
  assert.deepEqual(v.counters.mismatches, [0, 0, 1, 3], 'a differing copy counts also when it arrives after delivery');
});

test('a replica counts once per seq: the same copy again is a duplicate, another version is a mismatch', () => {
  const { v, send, seqs, offered, resolved } = harness({ from: 1 });
  send(0, [env(1)]);
  send(0, [env(1)]);
  assert.deepEqual(seqs(), [], 'one replica twice is still one vote');
  assert.equal(v.counters.duplicateCopies, 1);
  send(2, [env(1, 'changed its mind')]);
  send(2, [env(1)]);
  assert.deepEqual(seqs(), [], 'only the first copy of a replica votes');
  assert.equal(v.counters.mismatches[2], 1);
  send(1, [env(1)]);
  assert.deepEqual(seqs(), [1]);
  assert.equal(v.counters.mismatches[2], 2, 'its first version lost');
  send(1, [env(1)]);
  assert.equal(v.counters.duplicateCopies, 2, 'after delivery too');
  send(3, [env(1)]);
  assert.deepEqual(v.counters.mismatches, [0, 0, 2, 0]);
  send(3, [env(1)]);
  assert.equal(v.counters.stale, 1, 'once every replica sent its copy, the seq is forgotten: a copy of it is only stale');
  assertAllResolvedOnce(offered, resolved);
});

test('from: delivers seqs >= from only; lower copies are stale and resolved at once', () => {
  const { v, send, seqs, resolved } = harness({ from: 5 });
  assert.equal(v.expected, 5);
  send(0, envs(3, 6));
  assert.deepEqual(resolved, ['0:0', '0:1'], 'seqs 3 and 4 need nothing more');
  send(1, envs(3, 6));
  assert.deepEqual(seqs(), [5, 6]);
  assert.equal(v.counters.stale, 4);
});

test('skipTo: asked for seqs the replicas no longer hold, it gives them up at once instead of waiting for the hole', () => {
  const { v, send, seqs, skips } = harness({ from: 5 });
  send(0, envs(9, 10));
  send(1, envs(9, 10));
  assert.deepEqual(seqs(), [], 'seq 9 is decided, but waits for 5..8');
  v.skipTo(9, NOW);
  assert.deepEqual(seqs(), [9, 10]);
  assert.deepEqual(skips, [[5, 8]]);
  assert.equal(v.counters.skipped, 4);
  v.skipTo(3, NOW);
  assert.equal(v.expected, 11, 'never back');
});

test('without from, the start is the threshold-th smallest first seq of 2f+1 replicas, whoever sends first (10, 10, 12 -> 10)', () => {
  const firstOf = [10, 10, 12];
  for (const order of [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]) {
    const { v, send, seqs, offered, resolved } = harness();
    for (const [k, r] of order.entries()) {
      send(r, envs(firstOf[r]!, 13));
      assert.equal(v.expected === undefined, k < 2, `start chosen only once 3 replicas sent (order ${order})`);
    }
    assert.deepEqual(seqs(), [10, 11, 12, 13], `order ${order}`);
    assert.equal(v.counters.stale, 0);
    assertAllResolvedOnce(offered, resolved);
  }
});

test('a faulty replica opening with a huge or a low seq cannot move the start', () => {
  {
    const { v, send, seqs } = harness();
    send(3, [env(1e12)]);
    send(0, envs(1, 3));
    assert.equal(v.expected, undefined);
    send(1, envs(1, 3));
    assert.equal(v.expected, 4);
    assert.deepEqual(seqs(), [1, 2, 3]);
    assert.equal(v.counters.ahead, 1, 'the huge seq is past the window the start opens');
  }
  {
    const { v, send, seqs } = harness();
    send(3, [env(1, 'fabricated')]);
    send(0, envs(10, 11));
    send(1, envs(10, 11));
    assert.deepEqual(seqs(), [10, 11]);
    assert.equal(v.counters.stale, 1);
  }
});

test('skips a hole once it has lasted gapWaitMs, reporting the range to sink.skipped, and each new hole waits anew', () => {
  const { v, send, seqs, skips, resolved, offered } = harness({ from: 1, gapWaitMs: 1000 });
  send(0, [env(1)]); // seq 1 and 2 never reach f+1 copies
  send(0, [env(3), env(4)], NOW + 10);
  send(1, [env(3), env(4)], NOW + 20);
  v.tick(NOW + 1019);
  assert.deepEqual(seqs(), [], 'the hole is waited for gapWaitMs from when a seq above it was decided');
  v.tick(NOW + 1020);
  assert.deepEqual(skips, [[1, 2]], 'the whole hole at once');
  assert.equal(v.counters.skipped, 2);
  assert.deepEqual(seqs(), [3, 4]);
  assert.ok(resolved.includes('0:0'), 'the lone copy of a skipped seq is resolved');
  send(2, [env(1)]);
  assert.equal(v.counters.stale, 1, 'a late copy of a skipped seq is stale');
  send(0, [env(6)], NOW + 1500);
  send(1, [env(6)], NOW + 1500);
  v.tick(NOW + 2499);
  assert.equal(v.counters.skipped, 2);
  send(2, [env(7)], NOW + 2500); // no tick: an offer checks the hole too
  assert.deepEqual(skips, [[1, 2], [5, 5]]);
  assert.deepEqual(seqs(), [3, 4, 6]);
  send(0, [env(7)], NOW + 2600);
  send(3, [env(7)], NOW + 2600);
  assert.deepEqual(seqs(), [3, 4, 6, 7]);
  assertAllResolvedOnce(offered, resolved);
});

test('a hole filled within gapWaitMs is not skipped', () => {
  const { v, send, seqs } = harness({ from: 1, gapWaitMs: 1000 });
  send(0, [env(2)]);
  send(1, [env(2)]);
  v.tick(NOW + 999);
  send(2, [env(1)], NOW + 999);
  send(3, [env(1)], NOW + 999);
  v.tick(NOW + 10_000);
  assert.deepEqual(seqs(), [1, 2]);
  assert.equal(v.counters.skipped, 0);
});

test('holds at most pendingMax seqs whatever a faulty replica sends (a seq of 1e12 does not grow memory)', () => {
  const pendingMax = 8;
  {
    const { v, send, seqs, resolved } = harness({ from: 1, pendingMax });
    send(3, [env(1e12), env(9), env(100), env(2 ** 53 - 1)]);
    assert.equal(v.pending, 0);
    assert.equal(v.counters.ahead, 4, 'seq >= expected + pendingMax is dropped');
    assert.deepEqual(resolved, ['3:0', '3:1', '3:2', '3:3'], 'and resolved at once');
    send(3, Array.from({ length: 20 }, (_, i) => env(i + 1, 'forged')));
    assert.equal(v.pending, pendingMax);
    for (let s = 1; s <= 12; s++) {
      for (const r of [0, 1]) {
        send(r, [env(s)]);
        assert.ok(v.pending <= pendingMax);
      }
    }
    assert.deepEqual(seqs(), Array.from({ length: 12 }, (_, i) => i + 1), 'the window moves with delivery');
    assert.equal(v.counters.mismatches[3], pendingMax, 'its forged copies inside the window are evidence');
  }
  {
    const { v, send } = harness({ pendingMax });
    send(3, Array.from({ length: 20 }, (_, i) => env(1e12 + i)));
    assert.equal(v.expected, undefined, 'one replica does not choose the start');
    assert.equal(v.pending, pendingMax, 'before the start: pendingMax distinct seqs');
    assert.equal(v.counters.ahead, 12);
  }
});

/** Envelopes that readOrdered refuses, one per way of being wrong. */
function malformedVariants(): Buffer[] {
  const good = env(1);
  const kind = Buffer.from(good);
  kind[4] = 0x50;
  const seq0 = Buffer.from(good);
  seq0.fill(0, 6, 14);
  const inner = Buffer.from(good);
  inner.writeUInt32BE(inner.readUInt32BE(ORDERED_HEADER_BYTES) + 1, ORDERED_HEADER_BYTES);
  const huge = Buffer.from(good);
  huge.writeUInt32BE(0x20_0000, 6); // seq past 2^53
  const overlong = Buffer.from(good);
  overlong.writeUInt32BE(0xffff_ffff, 0);
  return [Buffer.from('garbage bytes, not an envelope'), good.subarray(0, good.length - 1), Buffer.alloc(5), kind, seq0, inner, huge, overlong];
}

test('a malformed section is counted against its replica and never throws; envelopes before it still count', () => {
  const { v, send, seqs } = harness({ from: 1 });
  const bad = malformedVariants();
  for (const g of bad) assert.doesNotThrow(() => send(3, [g]));
  assert.equal(v.counters.malformed[3], bad.length);
  send(3, [env(1), Buffer.from('trailing garbage'), env(2)]);
  assert.equal(v.counters.malformed[3], bad.length + 1);
  send(0, envs(1, 2));
  assert.deepEqual(seqs(), [1], "the faulty replica's envelope before the garbage voted; the one after it was never read");
  assert.deepEqual(v.counters.malformed, [0, 0, 0, bad.length + 1]);
});

test('resolves every (replica, pos) exactly once when every seq is decided', () => {
  const { v, send, offered, resolved, seqs } = harness();
  send(0, envs(1, 3));
  send(3, [env(2, 'forged'), env(1), env(1), env(50)]);
  send(1, envs(1, 2));
  send(2, [env(1)]);
  send(2, envs(2, 5));
  send(1, envs(3, 5));
  send(0, envs(4, 5));
  send(0, envs(4, 5)); // resent after a reconnect
  send(3, envs(3, 5));
  assert.deepEqual(seqs(), [1, 2, 3, 4, 5]);
  assert.equal(v.pending, 1, 'only the faulty seq 50 is still held');
  send(0, envs(6, 50));
  send(1, envs(6, 50));
  assert.equal(v.pending, 0);
  assertAllResolvedOnce(offered, resolved);
});

test('cft (threshold 1): the first copy wins and one replica chooses the start', () => {
  const { v, send, seqs } = harness({ replicas: 2, threshold: 1 });
  send(1, envs(7, 8));
  assert.deepEqual(seqs(), [7, 8]);
  send(0, [env(7), env(8, 'differs')]);
  assert.deepEqual(seqs(), [7, 8]);
  assert.deepEqual(v.counters.mismatches, [1, 0]);
});

test('refuses options outside their range with FIT_ERR_INTERNAL', () => {
  const bad: Partial<OrderedVoterOptions>[] = [{ threshold: 0 }, { threshold: 5 }, { replicas: 31, threshold: 2 }, { pendingMax: 0 }, { gapWaitMs: -1 }, { gapWaitMs: NaN }, { from: 0 }, { from: 1.5 }];
  for (const o of bad) {
    assert.throws(
      () => new OrderedVoter({ ...BFT_F1, ...o }, { deliver() {}, resolve() {} }),
      (e: unknown) => (e as { code?: string }).code === 'FIT_ERR_INTERNAL',
      JSON.stringify(o),
    );
  }
});

// ---- Randomized schedules with one Byzantine replica -----------------------------------

type Act = 'correct' | 'omit' | 'alter' | 'move' | 'duplicate' | 'huge' | 'garbage';
const ACTS: Act[] = ['correct', 'omit', 'alter', 'move', 'duplicate', 'huge', 'garbage'];
const HUGE = 1e12;

interface Plan {
  contents: Uint8Array[];
  byzantine: number;
  /** Per seq, what the Byzantine replica does; undefined: it is silent. */
  acts: Act[] | undefined;
  moveBy: number[];
  /** A correct replica (index among the three) that starts at seq `lateFrom` instead of 1. */
  late: { who: number; from: number } | undefined;
  /** Per replica, section sizes (in items), used in turn. */
  splits: number[][];
  steps: number[];
}

const planArb: fc.Arbitrary<Plan> = fc.integer({ min: 1, max: 24 }).chain((k) =>
  fc.record({
    contents: fc.array(fc.uint8Array({ maxLength: 12 }), { minLength: k, maxLength: k }),
    byzantine: fc.nat(3),
    acts: fc.option(fc.array(fc.constantFrom(...ACTS), { minLength: k, maxLength: k }), { freq: 5 }).map((a) => a ?? undefined),
    moveBy: fc.array(fc.constantFrom(-2, -1, 1, 3), { minLength: k, maxLength: k }),
    late: fc.option(fc.record({ who: fc.nat(2), from: fc.integer({ min: 2, max: Math.max(2, k) }) }), { freq: 2 }).map((l) => (l === null || k < 2 ? undefined : l)),
    splits: fc.array(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 }), { minLength: 4, maxLength: 4 }),
    steps: fc.array(fc.nat(5), { minLength: 1, maxLength: 16 }),
  }),
);

interface Item {
  bytes: Buffer;
  /** Undefined for a garbage item. */
  seq: number | undefined;
}

/** Bytes readOrdered refuses, chosen by `i`; a garbage item always ends its section. */
function garbage(i: number, seq: number): Buffer {
  const good = env(seq);
  const out = Buffer.from(good);
  switch (i % 4) {
    case 0:
      return Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), good]);
    case 1:
      return good.subarray(0, good.length - 1);
    case 2:
      out[4] = 0x00;
      return out;
    default:
      out.writeUInt32BE(out.readUInt32BE(ORDERED_HEADER_BYTES) + 1, ORDERED_HEADER_BYTES);
      return out;
  }
}

function streamsOf(p: Plan, truth: Buffer[]): Item[][] {
  const k = truth.length;
  const envOf = (seq: number, rec: Buffer): Item => ({ bytes: encodeOrdered(seq, rec), seq });
  const correct = [0, 1, 2, 3].filter((r) => r !== p.byzantine);
  const streams: Item[][] = [[], [], [], []];
  correct.forEach((r, i) => {
    const first = p.late?.who === i ? p.late.from : 1;
    for (let s = first; s <= k; s++) streams[r]!.push(envOf(s, truth[s - 1]!));
  });
  if (p.acts) {
    const out = streams[p.byzantine]!;
    for (let s = 1; s <= k; s++) {
      const rec = truth[s - 1]!;
      switch (p.acts[s - 1]!) {
        case 'correct':
          out.push(envOf(s, rec));
          break;
        case 'omit':
          break;
        case 'alter':
          out.push(envOf(s, record(Buffer.concat([rec.subarray(4), Buffer.from([0xa5])]))));
          break;
        case 'move':
          out.push(envOf(Math.max(1, s + p.moveBy[s - 1]!), rec));
          break;
        case 'duplicate':
          out.push(envOf(s, rec), envOf(s, rec));
          break;
        case 'huge':
          out.push(envOf(HUGE + s, rec));
          break;
        case 'garbage':
          out.push({ bytes: garbage(s, s), seq: undefined });
          break;
      }
    }
  }
  return streams;
}

interface Section {
  replica: number;
  items: Item[];
}

/** Cuts each replica's stream into sections of the planned sizes; a garbage item ends one. */
function cut(p: Plan, streams: Item[][]): Item[][][] {
  return streams.map((items, r) => {
    const out: Item[][] = [];
    let cur: Item[] = [];
    let cut = 0;
    for (const it of items) {
      cur.push(it);
      const size = p.splits[r]![cut % p.splits[r]!.length]!;
      if (cur.length >= size || it.seq === undefined) {
        out.push(cur);
        cur = [];
        cut++;
      }
    }
    if (cur.length > 0) out.push(cur);
    return out;
  });
}

/** Interleaves the replicas' sections: order lists a replica per section, each in its stream's order. */
function schedule(perReplica: Item[][][], order: number[]): Section[] {
  const next = [0, 0, 0, 0];
  return order.map((r) => ({ replica: r, items: perReplica[r]![next[r]!++]! }));
}

test('delivers exactly the seqs from the start to the last, in order and with the right records, resolving every copy once, with one Byzantine replica under any interleaving (n=4, f=1)', (t) => {
  const scenario = planArb.chain((p) => {
    const truth = p.contents.map((c) => record(c));
    const sectionsOf = cut(p, streamsOf(p, truth));
    const slots = sectionsOf.flatMap((list, r) => Array<number>(list.length).fill(r));
    return fc.record({
      p: fc.constant(p),
      truth: fc.constant(truth),
      sectionsOf: fc.constant(sectionsOf),
      order: fc.shuffledSubarray(slots, { minLength: slots.length, maxLength: slots.length }),
    });
  });
  assertProperty(
    t,
    import.meta.url,
    fc.property(scenario, ({ p, truth, sectionsOf, order }) => {
      const k = truth.length;
      const pendingMax = 4 * k + 16;
      const byz = p.byzantine;
      const delivered: Delivery[] = [];
      const resolved = new Map<string, number>();
      const v = new OrderedVoter(
        { replicas: 4, threshold: 2, pendingMax, gapWaitMs: 1_000_000 },
        {
          deliver: (seq, buf, start, end) => delivered.push({ seq, record: Buffer.from(buf.subarray(start, end)) }),
          resolve: (replica, pos) => resolved.set(`${replica}:${pos}`, (resolved.get(`${replica}:${pos}`) ?? 0) + 1),
        },
      );
      const sections = schedule(sectionsOf, order);
      const pos = [0, 0, 0, 0];
      const copies: { replica: number; pos: number; seq: number; bytes: Buffer }[] = [];
      const firsts: [number, number][] = []; // [replica, first seq], in the order the voter saw them
      let garbageSections = 0;
      let nowMs = NOW;
      sections.forEach((s, i) => {
        const buf = Buffer.concat(s.items.map((it) => it.bytes));
        s.items.forEach((it, j) => {
          if (it.seq === undefined) return;
          copies.push({ replica: s.replica, pos: pos[s.replica]! + j, seq: it.seq, bytes: it.bytes });
          if (!firsts.some(([r]) => r === s.replica)) firsts.push([s.replica, it.seq]);
        });
        if (s.items.some((it) => it.seq === undefined)) garbageSections++;
        nowMs += p.steps[i % p.steps.length]!;
        v.offerSection(s.replica, buf, 0, buf.length, pos[s.replica]!, nowMs);
        buf.fill(0xee);
        pos[s.replica]! += s.items.length;
        assert.ok(v.pending <= pendingMax, `pending ${v.pending} > pendingMax`);
      });
      v.tick(nowMs + 10_000_000);

      const start = firsts.slice(0, 3).map(([, seq]) => seq).sort((a, b) => a - b)[1]!;
      const want = Array.from({ length: k - start + 1 }, (_, i) => start + i);
      assert.deepEqual(delivered.map((d) => d.seq), want, `each seq from the start ${start} to ${k} once, in order`);
      delivered.forEach((d) => assert.ok(d.record.equals(truth[d.seq - 1]!), `seq ${d.seq} carries the published record`));
      assert.equal(v.counters.skipped, 0, 'three correct replicas sent everything: no hole');
      assert.equal(v.expected, k + 1);

      for (const [key, times] of resolved) {
        assert.equal(times, 1, `copy ${key} resolved ${times} times`);
        assert.ok(copies.some((c) => `${c.replica}:${c.pos}` === key), `resolved ${key} was never read`);
      }
      const unresolved = copies.filter((c) => !resolved.has(`${c.replica}:${c.pos}`));
      for (const c of unresolved) {
        assert.equal(c.replica, byz, `copy ${c.replica}:${c.pos} of a correct replica never resolved`);
        assert.ok(c.seq > k, `copy ${c.replica}:${c.pos} of seq ${c.seq} (<= ${k}) never resolved`);
      }
      assert.equal(v.pending, new Set(unresolved.map((c) => c.seq)).size, 'held: one Byzantine copy per seq past the last');

      const correct = [0, 1, 2, 3].filter((r) => r !== byz);
      for (const r of correct) {
        assert.equal(v.counters.mismatches[r], 0, `correct replica ${r} blamed`);
        assert.equal(v.counters.malformed[r], 0);
      }
      const byzCopies = copies.filter((c) => c.replica === byz);
      const honest = (c: (typeof copies)[number]) => c.seq >= HUGE || (c.seq <= k && c.bytes.equals(encodeOrdered(c.seq, truth[c.seq - 1]!)));
      if (byzCopies.every(honest)) assert.equal(v.counters.mismatches[byz], 0, 'the Byzantine replica sent nothing wrong');
      // Its first copy of a seq is always judged; a later one only while the voter still
      // remembers the seq (not once every replica's copy arrived).
      const firstOfSeq = byzCopies.filter((c, i) => byzCopies.findIndex((d) => d.seq === c.seq) === i);
      if (firstOfSeq.some((c) => c.seq >= start && c.seq <= k && !honest(c))) assert.ok(v.counters.mismatches[byz]! > 0, 'a wrong first envelope for a delivered seq is evidence');
      assert.equal(v.counters.malformed[byz], garbageSections);
    }),
    { numRuns: 200 },
  );
});
