// An ordered channel's log (src/broker/ordered-log.ts) and the sequencer that fills it (sequencer.ts): the decided order kept for readers
// from any retained seq, bounded by capacity, bytes and TTL, with what each client missed
// counted, and an append out of order refused as the bug it would be.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OrderedLog, Sequencer } from '../../src/broker/index.js';
import { DEFAULT_LIMITS } from '../../src/core/index.js';
import { readOrdered } from '../../src/codec/index.js';

const env = (seq: number, bytes = 10): Buffer => Buffer.alloc(bytes, seq & 0xff);
const seqs = (log: OrderedLog, from: number, max = 100): number[] => log.read(from, max).map((e) => e.seq);

test('reads from any retained seq, and from the oldest retained when asked for an evicted one', () => {
  const log = new OrderedLog({ capacityEvents: 3, bytesMax: 1 << 20, ttlMs: 60_000 });
  assert.deepEqual([log.low, log.high], [1, 0]);
  for (let s = 1; s <= 5; s++) log.append(s, env(s), 0);
  assert.deepEqual([log.low, log.high, log.depth], [3, 5, 3]);
  assert.deepEqual(seqs(log, 4), [4, 5]);
  assert.deepEqual(seqs(log, 1), [3, 4, 5]);
  assert.deepEqual(seqs(log, 3, 2), [3, 4]);
  assert.deepEqual(seqs(log, 6), []);
  assert.equal(log.counters.evictedCapacity, 2);
});

test('an append that does not follow the last seq is refused', () => {
  const log = new OrderedLog({ capacityEvents: 10, bytesMax: 1 << 20, ttlMs: 60_000 });
  log.append(1, env(1), 0);
  assert.throws(() => log.append(3, env(3), 0), /invariant broken: ordered log appended seq 3 after 1/);
  assert.throws(() => log.append(1, env(1), 0), /invariant broken/);
});

test('a client starts at the beginning or at the next event, moves with its acknowledgements, and is told what it missed', () => {
  const log = new OrderedLog({ capacityEvents: 2, bytesMax: 1 << 20, ttlMs: 60_000 });
  log.addClient('early', true);
  log.append(1, env(1), 0);
  log.addClient('late', false);
  assert.deepEqual([log.position('early'), log.position('late')], [1, 2]);
  log.append(2, env(2), 0);
  log.ack('early', 1);
  log.append(3, env(3), 0);
  // seq 1 left: early had acknowledged it, late never needed it.
  assert.deepEqual([log.missedBy('early'), log.missedBy('late')], [0, 0]);
  log.append(4, env(4), 0);
  // seq 2 left: neither had acknowledged it.
  assert.deepEqual([log.missedBy('early'), log.missedBy('late')], [1, 1]);
  assert.deepEqual([log.position('early'), log.position('late')], [3, 3]);
  log.ack('late', 99);
  assert.equal(log.position('late'), 5, 'an acknowledgement past the end is capped at the end');
});

test('counts what was sent to each client that may read it, for status', () => {
  const log = new OrderedLog({ capacityEvents: 10, bytesMax: 1 << 20, ttlMs: 60_000 });
  log.addClient('siem', true);
  log.countSent('siem', 3);
  log.countSent('siem', 2);
  log.countSent('stranger', 4);
  assert.deepEqual([log.sentTo('siem'), log.sentTo('stranger')], [5, 0]);
  log.removeClient('siem');
  assert.equal(log.sentTo('siem'), 0, 'an unsubscribed client is forgotten');
});

test('bytes and TTL bound the log too', () => {
  const log = new OrderedLog({ capacityEvents: 100, bytesMax: 25, ttlMs: 1000 });
  for (let s = 1; s <= 4; s++) log.append(s, env(s, 10), s * 100);
  assert.deepEqual(seqs(log, 1), [3, 4], 'two 10-byte envelopes fit in 25 bytes');
  log.expire(1350);
  assert.deepEqual(seqs(log, 1), [4]);
  assert.equal(log.counters.evictedTtl, 1);
  const big = new OrderedLog({ capacityEvents: 100, bytesMax: 5, ttlMs: 1000 });
  big.append(1, env(1, 50), 0);
  assert.equal(big.depth, 1, 'one envelope bigger than the budget is still kept: the log never empties itself');
});

test('the sequencer counts each ordered channel from 1 and every ordered event in one global order, and refuses a channel without order', () => {
  const cls = (order: 'none' | 'channel' | 'global') => ({ fault: 'bft' as const, order, priority: 0 as const, capacityEvents: 10, ttlMs: 60_000, overflow: 'drop-oldest' as const, persist: 'memory' as const, protection: 'si' as const });
  const s = new Sequencer(new Map([['a', cls('channel')], ['b', cls('global')], ['c', cls('none')]]), DEFAULT_LIMITS);
  assert.deepEqual(s.channels, ['a', 'b']);
  const rec = Buffer.from([0, 0, 0, 1, 9]);
  const placed = ['a', 'b', 'a', 'b', 'b'].map((ch) => s.place(ch, rec, 0));
  assert.deepEqual(placed.map((p) => [p.seq, p.global]), [[1, 1], [1, 2], [2, 3], [2, 4], [3, 5]]);
  const v = readOrdered(placed[4]!.envelope, 0);
  assert.deepEqual([v.seq, v.global], [3, 5]);
  assert.deepEqual(seqs(s.log('b')!, 1), [1, 2, 3]);
  assert.throws(() => s.place('c', rec, 0), /has no order/);
});

test('a snapshot moves the order on: the log keeps what it held, skips what it never had (counted against each reader), and numbering goes on from there', () => {
  const cls = (order: 'none' | 'channel' | 'global') => ({ fault: 'bft' as const, order, priority: 0 as const, capacityEvents: 10, ttlMs: 60_000, overflow: 'drop-oldest' as const, persist: 'memory' as const, protection: 'si' as const });
  const behind = new Sequencer(new Map([['b', cls('channel')], ['a', cls('global')]]), DEFAULT_LIMITS);
  const rec = Buffer.from([0, 0, 0, 1, 9]);
  behind.place('a', rec, 0);
  behind.place('a', rec, 0);
  behind.log('a')!.addClient('siem', true);
  behind.log('a')!.ack('siem', 1);
  const ahead = new Sequencer(new Map([['a', cls('global')], ['b', cls('channel')]]), DEFAULT_LIMITS);
  for (const ch of ['a', 'b', 'a', 'a', 'a']) ahead.place(ch, rec, 0);
  const snap = ahead.snapshot();
  assert.deepEqual(snap, { global: 5, channels: [['a', 4], ['b', 1]] }, 'sorted by channel, whatever the order they were configured in');
  behind.restore(JSON.parse(JSON.stringify(snap)) as typeof snap);
  const log = behind.log('a')!;
  assert.deepEqual([log.low, log.high, log.depth, log.counters.skipped], [1, 4, 2, 2], 'seqs 1 and 2 it held stay, 3 and 4 it never had');
  assert.equal(log.missedBy('siem'), 2, 'siem will never get 3 and 4 from here');
  assert.deepEqual(behind.snapshot(), snap);
  assert.deepEqual([behind.place('a', rec, 0).seq, behind.place('a', rec, 0).global], [5, 7]);
  assert.deepEqual(seqs(log, 1), [1, 2, 5, 6], 'read across the gap');
  assert.deepEqual(seqs(log, 3), [5, 6], 'from a seq in the gap: the next one held');
  assert.deepEqual(seqs(log, 6), [6]);
  assert.deepEqual(seqs(log, 7), []);
  assert.equal(log.position('siem'), 2);
});
