// What a full output queue does (src/broker/queue.ts; docs/operations.md, "Queues under
// pressure"; paper §3.3, "oldest events start to be discarded"): drop-oldest drops its oldest
// event of the lowest priority level, drop-newest refuses the newest (an urgent event still
// displaces a queued ordinary one), block takes the event and tells its channel to hold the
// publishers until a quarter of the queue is free again. TTL drops expired events under every
// policy; every drop is counted with its reason. The byte budget never drops from a block queue.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { OVERFLOW_POLICIES, limitsWith, type ChannelClass, type ClientInfo, type OverflowPolicy, type Priority } from '../../src/core/index.js';
import { ClientQueue, QueueBudget, QUEUE_ENTRY_OVERHEAD_BYTES, type QueueOverflow } from '../../src/broker/queue.js';
import { BrokerService } from '../../src/broker/index.js';
import { decodePublish } from '../../src/codec/index.js';
import { makeRecord, multiPublishFrame } from '../helpers/records.js';
import { assertProperty } from '../helpers/property.js';

const NOW = 1_000;
const FOREVER_MS = 1e12;
const REC_BYTES = 100;
const COST = REC_BYTES + QUEUE_ENTRY_OVERHEAD_BYTES;

function rec(tag: number, bytes = REC_BYTES): Buffer {
  const b = Buffer.alloc(bytes, 0x61);
  b.writeUInt32BE(tag, 0);
  return b;
}
const tags = (q: ClientQueue, max = 1_000_000, nowMs = NOW): number[] => q.pull(max, nowMs).map((e) => e.rec.readUInt32BE(0));

/** A policy with a clock and a log of the queue's block transitions. */
function policy(p: OverflowPolicy, clock = { ms: NOW }): QueueOverflow & { log: boolean[] } {
  const log: boolean[] = [];
  return { policy: p, nowMs: () => clock.ms, onBlock: (_q, blocking) => log.push(blocking), log };
}

test('drop-oldest (the default): a full queue drops its oldest event of the lowest priority, as before', () => {
  const q = new ClientQueue(3, FOREVER_MS, undefined, policy('drop-oldest'));
  for (let i = 0; i < 5; i++) q.enqueue(rec(i), 0, NOW);
  assert.deepEqual(tags(q), [2, 3, 4]);
  assert.deepEqual([q.counters.droppedCapacity, q.counters.droppedNewest], [2, 0]);
});

test('drop-newest: a full queue refuses the new event and keeps what it holds, counted as capacity and newest', () => {
  const o = policy('drop-newest');
  const q = new ClientQueue(3, FOREVER_MS, undefined, o);
  for (let i = 0; i < 5; i++) q.enqueue(rec(i), 0, NOW);
  assert.equal(q.depth, 3);
  assert.deepEqual(q.counters, { ...q.counters, enqueued: 3, droppedCapacity: 2, droppedNewest: 2, droppedBytes: 0 });
  assert.deepEqual(tags(q), [0, 1, 2]);
  assert.deepEqual(o.log, [], 'never blocks');
});

test('drop-newest: an urgent event displaces the newest event of the lowest level queued; one of that level or lower is refused', () => {
  const q = new ClientQueue(3, FOREVER_MS, undefined, policy('drop-newest'));
  q.enqueue(rec(0), 0, NOW);
  q.enqueue(rec(1), 1, NOW);
  q.enqueue(rec(2), 0, NOW);
  q.enqueue(rec(3), 3 as Priority, NOW); // drops 2, the newest of level 0
  q.enqueue(rec(4), 3 as Priority, NOW); // drops 0, then level 0 is empty
  q.enqueue(rec(5), 1, NOW); // level 1 is the lowest: the new one is refused
  q.enqueue(rec(6), 0, NOW); // lower than anything queued: refused
  assert.deepEqual(tags(q), [3, 4, 1], 'urgent first, then level 1');
  assert.deepEqual([q.counters.droppedCapacity, q.counters.droppedNewest, q.counters.enqueued], [4, 4, 5]);
});

test('block: a full queue takes the event over capacity, tells its channel once, and lets go once a quarter of it is free; the time is counted', () => {
  const clock = { ms: NOW };
  const o = policy('block', clock);
  const q = new ClientQueue(8, FOREVER_MS, undefined, o);
  for (let i = 0; i < 8; i++) q.enqueue(rec(i), 0, NOW);
  assert.deepEqual(o.log, [], 'full, not over: nothing to hold yet');
  q.enqueue(rec(8), 0, NOW);
  q.enqueue(rec(9), 0, NOW);
  assert.deepEqual(o.log, [true], 'held once, however many arrive on top');
  assert.equal(q.depth, 10, 'nothing dropped: what was read is queued');
  assert.equal(q.blocking, true);
  clock.ms += 1_500;
  assert.deepEqual(tags(q, 3), [0, 1, 2]);
  assert.equal(q.blocking, true, '7 of 8: still full enough to hold');
  assert.deepEqual(tags(q, 1), [3]);
  assert.deepEqual(o.log, [true, false], '6 of 8: a quarter free');
  assert.deepEqual([q.counters.blocks, q.counters.blockedMs, q.counters.droppedCapacity], [1, 1_500, 0]);
  assert.equal(q.blockedMsAt(clock.ms + 999), 1_500, 'not blocking: nothing added');
});

test('block: TTL still drops expired events, which gives a queue no console reads its room back', () => {
  const o = policy('block');
  const q = new ClientQueue(4, 100, undefined, o);
  for (let i = 0; i < 5; i++) q.enqueue(rec(i), 0, NOW);
  assert.deepEqual(o.log, [true]);
  q.expire(NOW + 101);
  assert.deepEqual(o.log, [true, false]);
  assert.deepEqual([q.depth, q.counters.droppedTtl, q.counters.droppedCapacity], [0, 5, 0]);
});

test('block: an unsubscribed client\'s queue lets its channel go', () => {
  const o = policy('block');
  const q = new ClientQueue(2, FOREVER_MS, undefined, o);
  for (let i = 0; i < 3; i++) q.enqueue(rec(i), 0, NOW);
  q.close();
  assert.deepEqual(o.log, [true, false]);
  assert.equal(q.counters.droppedUnsubscribed, 3);
});

test('the byte budget never drops from a block queue: a drop queue over its share pays, and a block queue holding its share is full instead', () => {
  const budget = new QueueBudget(10 * COST);
  const ob = policy('block');
  const blocked = new ClientQueue(1_000, FOREVER_MS, budget, ob);
  const dropping = new ClientQueue(1_000, FOREVER_MS, budget, policy('drop-oldest'));
  for (let i = 0; i < 8; i++) dropping.enqueue(rec(100 + i), 0, NOW);
  // Two fit; then the budget is full and the drop queue, over its half, pays for three more.
  for (let i = 0; i < 5; i++) blocked.enqueue(rec(i), 0, NOW);
  assert.deepEqual([dropping.depth, dropping.counters.droppedBytes, blocked.depth], [5, 3, 5]);
  assert.deepEqual(ob.log, [], 'room was made elsewhere');
  // The block queue holds its half of a full budget now: its next event is taken, and it is full.
  blocked.enqueue(rec(5), 0, NOW);
  assert.deepEqual(ob.log, [true]);
  assert.deepEqual([blocked.depth, dropping.depth], [6, 5], 'queued over the budget by what was read; nothing dropped for it');
  // Drained to 7/8 of the budget: room again.
  tags(blocked, 2);
  assert.deepEqual(ob.log, [true], '9 of 10 events');
  tags(blocked, 1);
  assert.deepEqual(ob.log, [true, false]);
  assert.equal(blocked.counters.droppedCapacity, 0);
});

test('a block queue held for the budget gets its room back when another queue frees bytes', () => {
  const budget = new QueueBudget(8 * COST);
  const ob = policy('block');
  const a = new ClientQueue(1_000, FOREVER_MS, budget, ob);
  const b = new ClientQueue(1_000, FOREVER_MS, budget, policy('block'));
  for (let i = 0; i < 4; i++) b.enqueue(rec(100 + i), 0, NOW);
  for (let i = 0; i < 5; i++) a.enqueue(rec(i), 0, NOW);
  assert.deepEqual(ob.log, [true], 'a holds more than its share of a full budget');
  tags(b, 2);
  assert.deepEqual(ob.log, [true, false], 'b drained: the budget is under 7/8 again');
  assert.equal(a.depth, 5);
});

test('drop-newest over the budget: the queue holding its share refuses its own new event, counted as bytes and newest', () => {
  const budget = new QueueBudget(4 * COST);
  const q = new ClientQueue(1_000, FOREVER_MS, budget, policy('drop-newest'));
  for (let i = 0; i < 6; i++) q.enqueue(rec(i), 0, NOW);
  assert.deepEqual(tags(q), [0, 1, 2, 3]);
  assert.deepEqual([q.counters.droppedCapacity, q.counters.droppedBytes, q.counters.droppedNewest], [2, 2, 2]);
});

test('under every policy, every event is queued, taken or counted once with its reason; only a block queue goes past its bounds, by what was read, and never drops for them', (t) => {
  const op = fc.oneof(
    { weight: 6, arbitrary: fc.record({ k: fc.constant('enqueue' as const), q: fc.nat(2), bytes: fc.integer({ min: 30, max: 600 }), priority: fc.constantFrom<Priority>(0, 1, 2, 3), ageMs: fc.nat(150) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('pull' as const), q: fc.nat(2), max: fc.integer({ min: 1, max: 6 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.nat(80) }) },
  );
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.tuple(fc.constantFrom(...OVERFLOW_POLICIES), fc.constantFrom(...OVERFLOW_POLICIES), fc.constantFrom(...OVERFLOW_POLICIES)), fc.integer({ min: 2_000, max: 8_000 }), fc.array(op, { maxLength: 120 }), (policies, bytesMax, ops) => {
      const budget = new QueueBudget(bytesMax);
      const overflows = policies.map((p) => policy(p));
      const qs = overflows.map((o) => new ClientQueue(6, 100, budget, o));
      const pulled = [0, 0, 0];
      const offered = [0, 0, 0];
      let now = NOW;
      let tag = 0;
      for (const o of ops) {
        if (o.k === 'tick') {
          now += o.ms;
          for (const q of qs) q.expire(now);
          continue;
        }
        const q = qs[o.q]!;
        if (o.k === 'enqueue') {
          offered[o.q]!++;
          q.enqueue(rec(tag++, o.bytes), o.priority, now - o.ageMs);
        } else pulled[o.q]! += q.pull(o.max, now).length;
        for (const [i, x] of qs.entries()) {
          const c = x.counters;
          assert.equal(offered[i], x.depth + pulled[i]! + c.droppedCapacity + c.droppedTtl, `queue ${i} (${policies[i]}): an event neither queued, taken nor counted`);
          assert.ok(c.droppedBytes <= c.droppedCapacity && c.droppedNewest <= c.droppedCapacity);
          if (policies[i] === 'block') {
            assert.equal(c.droppedCapacity, 0, 'a block queue dropped for a bound');
            assert.equal(x.blocking, overflows[i]!.log.length % 2 === 1, 'the channel was told of every change');
          } else {
            assert.ok(x.depth <= 6, `a ${policies[i]} queue holds ${x.depth} > capacity`);
            assert.equal(overflows[i]!.log.length, 0);
          }
          if (policies[i] !== 'drop-newest') assert.equal(c.droppedNewest, 0);
        }
        // The budget is over only by what block queues took, or by one event a queue could not make room for.
        const blockBytes = qs.filter((x) => x.policy === 'block').reduce((n, x) => n + x.bytes, 0);
        assert.ok(budget.bytes <= bytesMax + blockBytes + 600 + QUEUE_ENTRY_OVERHEAD_BYTES, `${budget.bytes} bytes queued, budget ${bytesMax}`);
      }
    }),
    { numRuns: 400 },
  );
});

const PUBLISHER: ClientInfo = { id: 'probe', publicKey: 'unused', publish: ['*'], subscribe: [], admin: false };
const SIEMS: ClientInfo[] = ['siem1', 'siem2'].map((id) => ({ id, publicKey: 'unused', publish: [], subscribe: ['*'], admin: false }));

test('the service reports a block channel\'s full queue on the publish that filled it, holds until it has room, and counts the time and drops per reason', () => {
  const cls = (overflow: OverflowPolicy): ChannelClass => ({ fault: 'bft', order: 'none', priority: 0, capacityEvents: 4, ttlMs: FOREVER_MS, overflow, persist: 'memory', protection: 'si' });
  const clock = { ms: NOW };
  const svc = new BrokerService(
    { channels: new Map([['held', cls('block')], ['lossy', cls('drop-newest')]]), clients: new Map([PUBLISHER, ...SIEMS].map((c) => [c.id, c])) },
    limitsWith({}),
    () => clock.ms,
  );
  const changes: string[] = [];
  svc.onBlocked = (channel, blocked) => changes.push(`${channel} ${blocked ? 'blocked' : 'free'}`);
  let seq = 0;
  const publish = (channel: string, n: number) => {
    const body = multiPublishFrame([{ channel, records: Array.from({ length: n }, () => makeRecord({ seq: ++seq, timestampMs: NOW })) }]).subarray(4);
    return svc.publish(PUBLISHER, body, decodePublish(body).sections);
  };
  assert.equal(publish('held', 4).blocked, undefined, 'full, not over');
  assert.deepEqual(publish('held', 2).blocked, ['held']);
  assert.deepEqual(publish('lossy', 6).blocked, undefined);
  assert.deepEqual(changes, ['held blocked'], 'once, though both consoles\' queues are full');
  clock.ms += 2_000;
  let held = svc.stats().find((c) => c.tag === 'held')!;
  assert.deepEqual([held.overflow, held.blocked, held.blockedBy, held.blocks, held.blockedMs], ['block', true, ['siem1', 'siem2'], 1, 2_000]);
  assert.deepEqual(held.dropped, { capacity: 0, bytes: 0, ttl: 0, unsubscribed: 0 });
  assert.deepEqual([held.queues.siem1!.depth, held.queues.siem1!.blocking], [6, true]);
  svc.queueFor(SIEMS[0]!, 'held').pull(3, clock.ms);
  assert.deepEqual(changes, ['held blocked'], 'siem2 still holds it');
  svc.queueFor(SIEMS[1]!, 'held').pull(3, clock.ms);
  assert.deepEqual(changes, ['held blocked', 'held free']);
  held = svc.stats().find((c) => c.tag === 'held')!;
  assert.deepEqual([held.blocked, held.blockedBy, held.blockedMs], [false, [], 2_000]);
  const lossy = svc.stats().find((c) => c.tag === 'lossy')!;
  assert.deepEqual(lossy.dropped, { capacity: 4, bytes: 0, ttl: 0, unsubscribed: 0 }, 'two refused for each console');
  assert.deepEqual([lossy.queues.siem1!.droppedNewest, lossy.queues.siem1!.dropped.capacity], [2, 2]);
});
