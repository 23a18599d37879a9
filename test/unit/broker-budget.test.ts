// A replica's memory for queued events (src/broker/queue.ts, docs/limits.md queuedBytesMax):
// one byte budget shared by every queue of the replica, so fifty channels times two consoles
// cannot add up to gigabytes; going over it drops the oldest event of the queue that holds
// the most (or of the enqueuing one, if it holds its share) and counts it. Queued records are
// copies, so a record never keeps the socket read it arrived in alive.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import type { Priority } from '../../src/core/index.js';
import { ClientQueue, QueueBudget, QUEUE_ENTRY_OVERHEAD_BYTES, type QueueSession } from '../../src/broker/queue.js';
import { BrokerService } from '../../src/broker/index.js';
import { limitsWith, type ChannelClass, type ClientInfo } from '../../src/core/index.js';
import { decodePublish } from '../../src/codec/index.js';
import { makeRecord, multiPublishFrame } from '../helpers/records.js';
import { assertProperty } from '../helpers/property.js';

const NOW = 1_000;
const FOREVER_MS = 1e12;
const REC_BYTES = 100;
const COST = REC_BYTES + QUEUE_ENTRY_OVERHEAD_BYTES;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * Collects garbage and lets V8 free what it swept: ArrayBuffer backing stores are released on
 * a background thread, so on a busy machine process.memoryUsage().arrayBuffers lags one gc().
 */
async function settledGc(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
}

function rec(tag: number, bytes = REC_BYTES): Buffer {
  const b = Buffer.alloc(bytes, 0x61);
  b.writeUInt32BE(tag, 0);
  return b;
}
const tagOf = (b: Buffer): number => b.readUInt32BE(0);
const drain = (q: ClientQueue, s: QueueSession): number[] => q.take(s, 1_000_000, NOW).map((e) => tagOf(e.rec));

const PUBLISHER: ClientInfo = { id: 'probe', publicKey: 'unused', publish: ['*'], subscribe: [], admin: false };
const SIEM1: ClientInfo = { id: 'siem1', publicKey: 'unused', publish: [], subscribe: ['*'], admin: false };
const SIEM2: ClientInfo = { id: 'siem2', publicKey: 'unused', publish: [], subscribe: ['*'], admin: false };

/** A service with fifty channels, and PUBLISH frame bodies made on demand with one 200-byte event for each. */
function fiftyChannelService(): { svc: BrokerService; frame(): { body: Buffer; sections: Buffer[][] } } {
  const cls: ChannelClass = { fault: 'bft', order: 'none', priority: 0, capacityEvents: 1_000_000, ttlMs: FOREVER_MS, overflow: 'drop-oldest', persist: 'memory', protection: 'si' };
  const names = Array.from({ length: 50 }, (_, i) => `ch${i}`);
  const svc = new BrokerService(
    { channels: new Map(names.map((n) => [n, cls])), clients: new Map([PUBLISHER, SIEM1, SIEM2].map((c) => [c.id, c])) },
    limitsWith({ queuedBytesMax: 1e12 }),
    () => NOW,
  );
  let seq = 0;
  const frame = () => {
    const sections = names.map(() => [makeRecord({ seq: ++seq, timestampMs: NOW, content: Buffer.alloc(200, 0x63) })]);
    return { body: multiPublishFrame(names.map((channel, i) => ({ channel, records: sections[i]! }))).subarray(4), sections };
  };
  return { svc, frame };
}

test('queues sharing a budget never hold more bytes than it, and every event over it is counted', () => {
  const budget = new QueueBudget(10 * COST);
  const qs = [0, 1, 2].map(() => new ClientQueue(1_000, FOREVER_MS, budget));
  for (let i = 0; i < 100; i++) {
    qs[i % 3]!.enqueue(rec(i), 0, NOW);
    assert.ok(budget.bytes <= budget.bytesMax, `after event ${i}: ${budget.bytes} > ${budget.bytesMax}`);
  }
  assert.equal(budget.bytes, 10 * COST);
  const depth = qs.reduce((n, q) => n + q.depth, 0);
  const dropped = qs.reduce((n, q) => n + q.counters.droppedBytes, 0);
  assert.equal(depth, 10);
  assert.equal(depth + dropped, 100, 'every event is queued or counted as dropped');
  for (const q of qs) assert.equal(q.counters.droppedCapacity, q.counters.droppedBytes, 'budget drops are capacity drops too');
  assert.equal(budget.bytes, qs.reduce((n, q) => n + q.bytes, 0));
});

test('over budget, the queue holding the most pays: a console that keeps up loses nothing to one that stopped', () => {
  const budget = new QueueBudget(20 * COST);
  const stuck = new ClientQueue(1_000, FOREVER_MS, budget);
  const live = new ClientQueue(1_000, FOREVER_MS, budget);
  const s = live.attach();
  const got: number[] = [];
  for (let i = 0; i < 200; i++) {
    stuck.enqueue(rec(i), 0, NOW);
    live.enqueue(rec(i), 0, NOW);
    if (i % 5 === 4) {
      got.push(...drain(live, s));
      live.ack(s, s.nextPos - 1);
    }
  }
  assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i), 'the live console got every event, in order');
  assert.equal(live.counters.droppedBytes, 0);
  assert.ok(stuck.counters.droppedBytes > 150, `the stuck console's queue paid: ${stuck.counters.droppedBytes}`);
  assert.equal(stuck.depth + stuck.counters.droppedBytes, 200);
  // What stayed is the newest, as at capacity: the oldest go first.
  const fresh = stuck.attach();
  const kept = drain(stuck, fresh);
  assert.deepEqual(kept, Array.from({ length: kept.length }, (_, i) => 200 - kept.length + i));
});

test('a queue at or over its equal share drops its own oldest, lowest priority first', () => {
  const budget = new QueueBudget(4 * COST);
  const a = new ClientQueue(1_000, FOREVER_MS, budget);
  const b = new ClientQueue(1_000, FOREVER_MS, budget);
  a.enqueue(rec(1), 0, NOW);
  b.enqueue(rec(100), 0, NOW);
  a.enqueue(rec(2), 3 as Priority, NOW);
  b.enqueue(rec(101), 0, NOW);
  // Full: b holds its share (2 of 4), so b pays for its own next event.
  b.enqueue(rec(102), 0, NOW);
  assert.deepEqual([a.counters.droppedBytes, b.counters.droppedBytes], [0, 1]);
  // a holds its share too; its urgent event survives, its normal one goes.
  a.enqueue(rec(3), 0, NOW);
  assert.deepEqual([a.counters.droppedBytes, b.counters.droppedBytes], [1, 1]);
  assert.deepEqual(drain(a, a.attach()), [2, 3]);
  assert.deepEqual(drain(b, b.attach()), [101, 102]);
});

test('the budget counts only what sits in a queue: taking, pulling, expiring and requeueing keep the count exact', (t) => {
  const op = fc.oneof(
    { weight: 5, arbitrary: fc.record({ k: fc.constant('enqueue' as const), q: fc.nat(2), bytes: fc.integer({ min: 30, max: 5_000 }), priority: fc.constantFrom<Priority>(0, 1, 2, 3), ageMs: fc.nat(150) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('attach' as const), q: fc.nat(2) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('detach' as const), q: fc.nat(2) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('take' as const), q: fc.nat(2), max: fc.integer({ min: 1, max: 5 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('ack' as const), q: fc.nat(2) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('pull' as const), q: fc.nat(2), max: fc.integer({ min: 1, max: 5 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.nat(80) }) },
  );
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.integer({ min: 1, max: 30_000 }), fc.array(op, { maxLength: 80 }), (bytesMax, ops) => {
      const ttl = 100;
      const budget = new QueueBudget(bytesMax);
      const qs = [0, 1, 2].map(() => new ClientQueue(8, ttl, budget));
      const sessions = qs.map((): QueueSession[] => []);
      let now = 1_000;
      let tag = 0;
      for (const o of ops) {
        if (o.k === 'tick') now += o.ms;
        else {
          const q = qs[o.q]!;
          const ss = sessions[o.q]!;
          if (o.k === 'enqueue') {
            q.enqueue(rec(tag++, o.bytes), o.priority, now - o.ageMs);
            const cost = o.bytes + QUEUE_ENTRY_OVERHEAD_BYTES;
            // Over the budget after an enqueue only when that one event is bigger than all of it.
            if (cost <= bytesMax) assert.ok(budget.bytes <= bytesMax, `${budget.bytes} > ${bytesMax}`);
          } else if (o.k === 'attach') ss.push(q.attach());
          else if (o.k === 'detach' && ss.length) q.detach(ss.shift()!);
          else if (o.k === 'take' && ss.length) q.take(ss[0]!, o.max, now);
          else if (o.k === 'ack' && ss.length) q.ack(ss[0]!, ss[0]!.nextPos - 1);
          else if (o.k === 'pull') q.pull(o.max, now);
        }
        for (const q of qs) {
          // Count what is really queued: a fresh session sees every queued event.
          const probe = q.attach();
          const queued = q.take(probe, 1_000_000, 0);
          q.detach(probe);
          assert.equal(queued.length, q.depth);
          assert.equal(q.bytes, queued.reduce((n, e) => n + e.rec.length + QUEUE_ENTRY_OVERHEAD_BYTES, 0), 'a queue counts exactly its queued events');
          const c = q.counters;
          assert.equal(c.droppedBytes <= c.droppedCapacity, true);
        }
        assert.equal(budget.bytes, qs.reduce((n, q) => n + q.bytes, 0), 'the budget is the sum of its queues');
      }
    }),
    { numRuns: 500 },
  );
});

test('a queued record is no view of the socket read: the service copies each section once, and the channel\'s queues share the copy', () => {
  const { svc, frame } = fiftyChannelService();
  const { body, sections } = frame();
  svc.publish(PUBLISHER, body, decodePublish(body).sections);
  const [a] = svc.queueFor(SIEM1, 'ch0').pull(1, NOW);
  const [b] = svc.queueFor(SIEM2, 'ch0').pull(1, NOW);
  assert.notEqual(a!.rec.buffer, body.buffer);
  assert.equal(a!.rec.buffer, b!.rec.buffer, 'one copy for both subscribers');
  assert.equal(a!.rec.byteOffset, b!.rec.byteOffset);
  const published = Buffer.from(sections[0]![0]!);
  body.fill(0);
  assert.deepEqual(a!.rec, published, 'bytes as they were when published');
});

test('one console that stopped reading one of fifty channels keeps that channel\'s events, not every frame they came in', async () => {
  // Each frame holds an event of every channel. siem1 stops reading ch0 and reads the other
  // forty-nine; siem2 reads all. As views of the frames, ch0's events would keep every frame.
  const FRAMES = 200;
  const { svc, frame } = fiftyChannelService();
  const readers = [
    ...Array.from({ length: 49 }, (_, i) => svc.queueFor(SIEM1, `ch${i + 1}`)),
    ...Array.from({ length: 50 }, (_, i) => svc.queueFor(SIEM2, `ch${i}`)),
  ].map((q) => ({ q, s: q.attach() }));
  await settledGc();
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < FRAMES; i++) {
    const { body } = frame();
    svc.publish(PUBLISHER, body, decodePublish(body).sections);
    for (const r of readers) r.q.ack(r.s, r.s.nextPos + r.q.take(r.s, 1_000, NOW).length - 1);
  }
  await settledGc();
  const held = process.memoryUsage().arrayBuffers - before;
  const stalled = svc.queueFor(SIEM1, 'ch0');
  const kept = stalled.bytes - stalled.depth * QUEUE_ENTRY_OVERHEAD_BYTES;
  assert.equal(stalled.depth, FRAMES);
  // The frames add up to 200 x ~13 KB = 2.6 MB; ch0's events to ~50 KB, and every channel
  // keeps the 16 KiB slab its next records go into.
  assert.ok(held < 2 * kept + 50 * 16 * 1024 + 256 * 1024, `queued ${kept} bytes of records for the stalled console, holding ${held} bytes of buffers`);
});

test('QUEUE_ENTRY_OVERHEAD_BYTES is at least what a queued and sent entry costs in memory', async () => {
  // 2^16 + 1 entries: the entry table has just doubled, its worst case.
  const N = 65_537;
  const q = new ClientQueue(N, FOREVER_MS, new QueueBudget(1e12));
  const read = Buffer.alloc(64 * 1024, 0x64);
  const used = (): number => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  await settledGc();
  const before = used();
  for (let i = 0; i < N; i++) {
    const off = (i * REC_BYTES) % (read.length - REC_BYTES);
    q.enqueueAt(read, off, REC_BYTES, 0, 1.7e12 + i);
  }
  // Sent to one session and not acknowledged, the other still to be sent it: each entry is in
  // its FIFO and in an in-flight list, as at saturation.
  q.attach();
  q.take(q.attach(), N, NOW);
  assert.equal(q.depth, N);
  await settledGc();
  const perEntry = (used() - before) / N;
  assert.ok(perEntry <= QUEUE_ENTRY_OVERHEAD_BYTES, `an entry costs ${perEntry.toFixed(0)} bytes of heap and typed arrays, counted as ${QUEUE_ENTRY_OVERHEAD_BYTES}`);
});
