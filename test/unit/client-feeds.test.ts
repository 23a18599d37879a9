// What a publisher sends each replica (src/client/feeds.ts), against fake links that answer on
// command: a replica is left behind once the quorum acknowledged publishLagBytesMax of what it
// was sent and it did not, but only while the others make the quorum; it is never sent a
// batch after a later one on the same connection; and once every replica answers again,
// every batch in the window completes and no replica stays behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { publishQuorum, type FaultModel } from '../../src/core/index.js';
import { ReplicaFeeds, type FeedBatch, type FeedLink, type PublisherStatus } from '../../src/client/feeds.js';
import { assertProperty } from '../helpers/property.js';

const LIMIT = 256 * 1024;
const F = 1;
const N = 3 * F + 1;
const WINDOW = 8;
const FRAME_BYTES_MAX = 200 * 1024;
/** Lag grows when batches complete, and is looked at when the next one is sent: the window's worth past the limit at most. */
const LAG_BOUND = LIMIT + WINDOW * FRAME_BYTES_MAX;

class FakeLink implements FeedLink {
  ready = false;
  backlogBytes = 0;
  /** Batch seqs written on the current connection, in order. */
  sent: number[] = [];
  /** How many of `sent` the replica answered (it answers in order, as a replica reads). */
  answered = 0;

  constructor(
    readonly id: number,
    private readonly seqOf: (frame: Buffer) => number,
  ) {}

  send(frame: Buffer): void {
    if (!this.ready) return;
    this.sent.push(this.seqOf(frame));
  }

  connect(): void {
    this.ready = true;
    this.sent = [];
    this.answered = 0;
  }
}

interface Batch extends FeedBatch {
  acks: Set<number>;
  errors: Map<number, unknown>;
}

/** A publisher's window over fake links, completing batches as Publisher.check does. */
class Harness {
  readonly links: FakeLink[];
  readonly feeds: ReplicaFeeds;
  readonly inflight = new Map<number, Batch>();
  readonly statuses: PublisherStatus[] = [];
  private readonly bySeq = new WeakMap<Buffer, number>();
  private readonly sizes = new Map<number, number>();
  private nextSeq = 1;

  constructor() {
    this.links = Array.from({ length: N }, (_, id) => new FakeLink(id, (frame) => this.bySeq.get(frame)!));
    this.feeds = new ReplicaFeeds(this.links, {
      limitBytes: LIMIT,
      quorum: (fault) => publishQuorum(fault, F),
      inflight: () => this.inflight.values(),
      onStatus: (s) => this.statuses.push(s),
    });
  }

  connect(id: number): void {
    if (this.links[id]!.ready) return;
    this.links[id]!.connect();
    this.feeds.ready(this.links[id]!);
  }

  drop(id: number): void {
    this.links[id]!.ready = false;
    this.feeds.down();
    this.complete();
  }

  publish(fault: FaultModel, bytes: number): void {
    if (this.inflight.size >= WINDOW) return;
    const frame = Buffer.alloc(bytes);
    const b: Batch = { seq: this.nextSeq++, fault, frame, count: 1, acks: new Set(), errors: new Map() };
    this.bySeq.set(frame, b.seq);
    this.sizes.set(b.seq, bytes);
    this.inflight.set(b.seq, b);
    this.feeds.send(b);
  }

  /** The replica answers the next `count` batches it was sent on this connection. */
  answer(id: number, count = Infinity): void {
    const link = this.links[id]!;
    if (!link.ready) return;
    while (count-- > 0 && link.answered < link.sent.length) {
      const seq = link.sent[link.answered++]!;
      this.feeds.answered(link, seq);
      this.inflight.get(seq)?.acks.add(id);
    }
    this.complete();
  }

  private complete(): void {
    for (const b of [...this.inflight.values()]) {
      const done = b.fault === 'bft' ? b.acks.size >= publishQuorum('bft', F) : b.acks.size >= 1 && this.links.every((l) => !l.ready || b.acks.has(l.id));
      if (!done) continue;
      this.inflight.delete(b.seq);
      this.feeds.done(b);
    }
  }

  /** The properties that must hold between any two steps. */
  check(): void {
    const behind = new Set(this.feeds.behind);
    const reading = this.links.filter((l) => l.ready && !behind.has(l.id)).length;
    const stats = this.feeds.stats();
    assert.ok(behind.size <= N - publishQuorum('bft', F), `at most n - 2f - 1 replicas behind, found ${[...behind]}`);
    for (const l of this.links) {
      for (let i = 1; i < l.sent.length; i++) assert.ok(l.sent[i]! > l.sent[i - 1]!, `replica ${l.id} was sent batch ${l.sent[i]} after ${l.sent[i - 1]}`);
      if (!l.ready) continue;
      for (const b of this.inflight.values()) {
        if (l.sent.includes(b.seq) || b.acks.has(l.id)) continue;
        // The only batches a connected replica may lack: bft ones, while it is behind and the
        // replicas reading make the quorum without it.
        assert.ok(behind.has(l.id), `replica ${l.id} is reading and lacks batch ${b.seq}`);
        assert.equal(b.fault, 'bft', `replica ${l.id} lacks cft batch ${b.seq}`);
        assert.ok(reading >= publishQuorum('bft', F), `replica ${l.id} lacks batch ${b.seq} with only ${reading} replicas reading`);
      }
      // Lag: what it was sent on this connection, that left the window, and that it has not answered.
      const owed = l.sent.slice(l.answered).filter((seq) => !this.inflight.has(seq));
      const lag = owed.reduce((n, seq) => n + this.sizes.get(seq)!, 0);
      assert.equal(stats[l.id]!.lagBytes, lag, `replica ${l.id}'s lag`);
      assert.ok(lag <= LAG_BOUND, `replica ${l.id} lags ${lag} bytes`);
    }
  }
}

type Op =
  | { op: 'publish'; fault: FaultModel; bytes: number }
  | { op: 'answer'; id: number; count: number }
  | { op: 'drop'; id: number }
  | { op: 'connect'; id: number };

const replica = fc.integer({ min: 0, max: N - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('publish' as const), fault: fc.constantFrom<FaultModel>('bft', 'bft', 'bft', 'cft'), bytes: fc.integer({ min: 1, max: FRAME_BYTES_MAX }) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('answer' as const), id: replica, count: fc.integer({ min: 1, max: 2 * WINDOW }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drop' as const), id: replica }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('connect' as const), id: replica }) },
);

test('a replica is left behind only at the limit and only while the others make the quorum; none is sent a batch after a later one; once all answer again, the window empties', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 300 }), (ops) => {
      const h = new Harness();
      for (let id = 0; id < N; id++) h.connect(id);
      for (const o of ops) {
        if (o.op === 'publish') h.publish(o.fault, o.bytes);
        else if (o.op === 'answer') h.answer(o.id, o.count);
        else if (o.op === 'drop') h.drop(o.id);
        else h.connect(o.id);
        h.check();
      }
      // Every replica connected and answering: nothing may stay in the window, nor behind.
      for (let id = 0; id < N; id++) h.connect(id);
      for (let round = 0; round < 4 * WINDOW && (h.inflight.size > 0 || h.feeds.behind.length > 0); round++) {
        for (const l of h.links) {
          h.answer(l.id);
          h.check();
        }
      }
      assert.equal(h.inflight.size, 0, `batches ${[...h.inflight.keys()]} never completed with every replica answering`);
      assert.deepEqual(h.feeds.behind, [], 'every replica caught up');
    }),
    { numRuns: 300 },
  );
});

test('a stopped replica is left behind at the limit, counts what it missed, and is sent the window once it answers', () => {
  const h = new Harness();
  for (let id = 0; id < N; id++) h.connect(id);
  const stopped = 3;
  const frame = 100 * 1024;
  // The others answer everything at once; the stopped one answers nothing.
  for (let i = 0; i < 40; i++) {
    h.publish('bft', frame);
    for (const l of h.links) if (l.id !== stopped) h.answer(l.id);
    h.check();
  }
  const sentBeforeBehind = Math.ceil(LIMIT / frame);
  const stats = h.feeds.stats()[stopped]!;
  assert.equal(stats.behind, true);
  assert.equal(stats.behindSpells, 1);
  assert.equal(h.links[stopped]!.sent.length, sentBeforeBehind, 'sent batches until it lagged the limit');
  assert.equal(stats.lagBytes, sentBeforeBehind * frame);
  assert.equal(stats.missedEvents, 40 - sentBeforeBehind, 'every later batch was acknowledged without it');
  assert.deepEqual(h.statuses, [{ type: 'replicaBehind', replica: stopped, lagBytes: sentBeforeBehind * frame, limitBytes: LIMIT }]);
  // One batch in the window when it answers again: that one it is sent.
  h.publish('bft', frame);
  h.answer(stopped, 1);
  assert.equal(h.feeds.stats()[stopped]!.behind, true, 'still lagging more than half the limit');
  h.answer(stopped);
  assert.equal(h.feeds.stats()[stopped]!.behind, false, 'caught up once it answered what it had');
  assert.equal(h.links[stopped]!.sent.at(-1), 41, 'the batch still in the window was sent to it on catching up');
  assert.deepEqual(h.statuses.at(-1), { type: 'replicaCaughtUp', replica: stopped, behindMs: (h.statuses.at(-1) as { behindMs: number }).behindMs, missedEvents: 40 - sentBeforeBehind });
  h.check();
});

/** Four replicas, replica 3 stopped until it is behind, a batch in the window it lacks. */
function withReplica3Behind(): { h: Harness; lacking: number } {
  const h = new Harness();
  for (let id = 0; id < N; id++) h.connect(id);
  for (let i = 0; i < 5; i++) {
    h.publish('bft', 100 * 1024);
    for (const l of h.links) if (l.id !== 3) h.answer(l.id);
  }
  h.publish('bft', 100 * 1024);
  assert.deepEqual(h.feeds.behind, [3]);
  const lacking = [...h.inflight.keys()].at(-1)!;
  assert.ok(!h.links[3]!.sent.includes(lacking));
  return { h, lacking };
}

test('a replica behind is caught up at once, whatever its lag, when another drops and the quorum needs it', () => {
  const { h, lacking } = withReplica3Behind();
  h.drop(0);
  assert.deepEqual(h.feeds.behind, [], 'with replica 0 gone, 2f+1 means replica 3');
  assert.ok(h.links[3]!.sent.includes(lacking), 'sent the batch in the window it lacked');
  h.check();
});

test('a cft batch is never held back from a replica: it is sent what it lacks first, in order', () => {
  const { h, lacking } = withReplica3Behind();
  h.publish('cft', 1000);
  assert.deepEqual(h.feeds.behind, []);
  assert.deepEqual(h.links[3]!.sent.slice(-2), [lacking, lacking + 1], 'the bft batch it lacked, then the cft one');
  h.check();
});
