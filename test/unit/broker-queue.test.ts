// A subscriber's output queue (src/broker/queue.ts; paper §3.3, DESIGN §2-3): bounded by
// capacity and TTL with every drop counted, urgent events first, every attached session of
// the client gets the whole stream, and what a session was sent but never acknowledged goes
// back to the queue when it detaches, so a console that dies mid-batch loses nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Priority } from '../../src/core/index.js';
import { QueueBudget } from '../../src/broker/queue.js';
import { ClientQueue, type QueuedRecord, type QueueSession } from '../../src/broker/index.js';
import { assertProperty } from '../helpers/property.js';

const NOW = 1_000;
const FOREVER_MS = 1e12;
const names = (entries: QueuedRecord[]): string[] => entries.map((e) => e.rec.toString());

/** Enqueues `name` (its record bytes are the name) at `priority`, stamped `timestampMs`. */
function put(q: ClientQueue, name: string, priority: Priority = 0, timestampMs = NOW): void {
  q.enqueue(Buffer.from(name), priority, timestampMs);
}

const drain = (q: ClientQueue, s: QueueSession, nowMs = NOW): string[] => names(q.take(s, 1_000_000, nowMs));

test('at capacity, drops the oldest event of the lowest priority level first and counts it', () => {
  const q = new ClientQueue(3, FOREVER_MS);
  put(q, 'a0', 0);
  put(q, 'b0', 0);
  put(q, 'c1', 1);
  put(q, 'd1', 1); // drops a0
  put(q, 'e1', 1); // drops b0
  put(q, 'f1', 1); // level 0 is empty now: drops c1
  assert.equal(q.counters.droppedCapacity, 3);
  assert.equal(q.depth, 3);
  assert.deepEqual(names(q.pull(10, NOW)), ['d1', 'e1', 'f1']);
});

test('drops expired events oldest first, counts them in droppedTtl, and never returns them', () => {
  const ttl = 100;
  const q = new ClientQueue(100, ttl);
  put(q, 'old', 0, 0);
  put(q, 'mid', 0, 50);
  put(q, 'new', 0, 900);
  const s = q.attach();
  assert.deepEqual(drain(q, s, 120), ['mid', 'new'], 'old expired at 100 < 120');
  assert.equal(q.counters.droppedTtl, 1);
  const p = new ClientQueue(100, ttl);
  put(p, 'old', 0, 0);
  put(p, 'new', 0, 900);
  assert.deepEqual(names(p.pull(10, 120)), ['new']);
  assert.equal(p.counters.droppedTtl, 1);
});

test('an event is still live at exactly timestamp + ttlMs', () => {
  const q = new ClientQueue(10, 100);
  put(q, 'edge', 0, 0);
  assert.deepEqual(names(q.pull(10, 100)), ['edge']);
});

test('take skips an expired event queued behind a live one (publisher clocks differ)', () => {
  const q = new ClientQueue(10, 100);
  put(q, 'live', 0, 1000);
  put(q, 'stale', 0, 0);
  assert.deepEqual(drain(q, q.attach(), 500), ['live']);
});

test('counts an expired event that take skips behind a live one, exactly once', () => {
  const q = new ClientQueue(10, 100);
  put(q, 'live', 0, 1000);
  put(q, 'stale', 0, 0);
  assert.deepEqual(drain(q, q.attach(), 500), ['live']);
  assert.equal(q.counters.droppedTtl, 1);
  q.expire(2000);
  assert.equal(q.counters.droppedTtl, 1, 'an entry already counted is not counted again');
});

test('urgent events overtake: take and pull return priority 3 before 0, FIFO within a level', () => {
  const q = new ClientQueue(100, FOREVER_MS);
  put(q, 'n1', 0);
  put(q, 'u1', 3);
  put(q, 'm1', 1);
  put(q, 'n2', 0);
  put(q, 'u2', 3);
  assert.deepEqual(drain(q, q.attach()), ['u1', 'u2', 'm1', 'n1', 'n2']);
  const p = new ClientQueue(100, FOREVER_MS);
  put(p, 'n1', 0);
  put(p, 'u1', 3);
  assert.deepEqual(names(p.pull(1, NOW)), ['u1']);
});

test('two attached sessions each get every event, never half each', () => {
  const q = new ClientQueue(100, FOREVER_MS);
  const a = q.attach();
  const b = q.attach();
  for (const n of ['e1', 'e2', 'e3']) put(q, n);
  assert.deepEqual(names(q.take(a, 2, NOW)), ['e1', 'e2']);
  assert.deepEqual(drain(q, b), ['e1', 'e2', 'e3']);
  assert.deepEqual(drain(q, a), ['e3']);
});

test('an event leaves the queue only once every attached session was sent it', () => {
  const q = new ClientQueue(100, FOREVER_MS);
  const a = q.attach();
  const b = q.attach();
  put(q, 'e1');
  drain(q, a);
  assert.equal(q.depth, 1, 'b has not been sent e1');
  assert.equal(q.hasFor(a), false);
  assert.equal(q.hasFor(b), true);
  drain(q, b);
  assert.equal(q.depth, 0);
});

test('events published while no session is attached wait for the first one', () => {
  const q = new ClientQueue(100, FOREVER_MS);
  put(q, 'early');
  assert.deepEqual(drain(q, q.attach()), ['early']);
});

test('detach returns sent-but-unacknowledged events so a new session gets them', () => {
  const q = new ClientQueue(100, FOREVER_MS);
  const a = q.attach();
  for (const n of ['e1', 'e2', 'e3']) put(q, n);
  drain(q, a);
  q.ack(a, 0); // e1 acknowledged
  assert.equal(q.inflightOf(a), 2);
  q.detach(a);
  assert.equal(q.depth, 2);
  assert.deepEqual(drain(q, q.attach()), ['e2', 'e3']);
});

test('returns unacknowledged events exactly once even when two sessions that were sent them detach', () => {
  const q = new ClientQueue(100, FOREVER_MS);
  const a = q.attach();
  const b = q.attach();
  put(q, 'e1');
  put(q, 'e2', 3);
  drain(q, a);
  drain(q, b);
  q.detach(a);
  q.detach(b);
  q.detach(b); // a second detach of the same session is a no-op
  assert.equal(q.depth, 2);
  assert.deepEqual(drain(q, q.attach()), ['e2', 'e1']);
});

test('an event held unacknowledged by a detaching session reaches a session that attached after it was sent', () => {
  // Regression: e1 left the queue when `a` (then alone) was sent it; `b` attached later and
  // moved past it. Put back in place behind b's cursor, e1 was trimmed unseen and lost.
  const q = new ClientQueue(100, FOREVER_MS);
  const a = q.attach();
  put(q, 'e1');
  drain(q, a);
  const b = q.attach();
  put(q, 'e2');
  assert.deepEqual(drain(q, b), ['e2']);
  q.detach(a);
  assert.deepEqual(drain(q, b), ['e1']);
  q.detach(b); // b acknowledged nothing: both come back once
  assert.deepEqual(drain(q, q.attach()).sort(), ['e1', 'e2']);
});

test('an event dropped for TTL or capacity while in flight is not brought back by detach, nor counted twice', () => {
  const t = new ClientQueue(100, 100);
  const a = t.attach();
  const b = t.attach();
  put(t, 'e1', 0, 0);
  drain(t, a, 50);
  t.expire(200); // b was never sent e1; it expires and is counted
  t.detach(a);
  assert.equal(t.depth, 0);
  assert.deepEqual(drain(t, b, 300), []);
  assert.equal(t.counters.droppedTtl, 1);

  const c = new ClientQueue(2, FOREVER_MS);
  const x = c.attach();
  const y = c.attach();
  put(c, 'a');
  put(c, 'b');
  drain(c, x);
  put(c, 'c'); // drops a
  put(c, 'd'); // drops b
  c.detach(x);
  assert.equal(c.depth, 2, 'depth stays within capacity');
  assert.deepEqual(drain(c, y), ['c', 'd']);
  assert.equal(c.counters.droppedCapacity, 2);
});

test('ack(pos) trims the in-flight list up to and including pos', () => {
  const q = new ClientQueue(100, FOREVER_MS);
  const s = q.attach();
  for (const n of ['e0', 'e1', 'e2', 'e3']) put(q, n);
  drain(q, s);
  q.ack(s, 1);
  assert.equal(q.inflightOf(s), 2);
  q.ack(s, 1); // idempotent
  assert.equal(q.inflightOf(s), 2);
  q.ack(s, 10);
  assert.equal(q.inflightOf(s), 0);
  q.detach(s);
  assert.equal(q.depth, 0, 'acknowledged events do not come back');
});

test('pull dequeues: a pulled event is gone for later pulls and sessions', () => {
  const q = new ClientQueue(100, FOREVER_MS);
  for (const n of ['e1', 'e2', 'e3']) put(q, n);
  assert.deepEqual(names(q.pull(2, NOW)), ['e1', 'e2']);
  assert.equal(q.depth, 1);
  assert.deepEqual(drain(q, q.attach()), ['e3']);
  assert.deepEqual(names(q.pull(5, NOW)), []);
  assert.equal(q.counters.sent, 3);
});

type Op =
  | { k: 'enqueue'; priority: Priority }
  | { k: 'attach' }
  | { k: 'detach'; i: number }
  | { k: 'take'; i: number; max: number }
  | { k: 'ack'; i: number; keep: number };

// Small session indices and mostly one priority level, so schedules often make sessions
// overlap on the same events: that is where the detach bookkeeping can go wrong.
const session = fc.nat(3);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('enqueue' as const), priority: fc.constantFrom<Priority>(0, 0, 0, 1, 3) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('attach' as const) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('detach' as const), i: session }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('take' as const), i: session, max: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('ack' as const), i: session, keep: fc.nat(3) }) },
);

interface Tracked {
  s: QueueSession;
  sent: { pos: number; id: number }[];
  enqueuedWhileAttached: Set<number>;
}

test('no event is lost or duplicated across random attach, take, ack and detach schedules', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const budget = new QueueBudget(1e12);
      const q = new ClientQueue(1_000_000, FOREVER_MS, budget);
      // Queues keep a copy of each record, so events are told apart by their bytes.
      const idOf = new Map<string, number>();
      const live: Tracked[] = [];
      const acked = new Set<number>();
      let nextId = 0;
      let taken = 0;
      const takeFor = (x: Tracked, max: number): void => {
        const out = q.take(x.s, max, NOW);
        taken += out.length;
        out.forEach((e, k) => {
          if (k > 0) assert.ok(e.priority <= out[k - 1]!.priority, 'urgent first within a take');
          x.sent.push({ pos: x.s.nextPos - out.length + k, id: idOf.get(e.rec.toString())! });
        });
      };
      for (const o of ops) {
        const x = live.length ? live[('i' in o ? o.i : 0) % live.length]! : undefined;
        if (o.k === 'enqueue') {
          const rec = Buffer.from(`e${nextId}`);
          idOf.set(rec.toString(), nextId);
          q.enqueue(rec, o.priority, NOW);
          for (const l of live) l.enqueuedWhileAttached.add(nextId);
          nextId++;
        } else if (o.k === 'attach') live.push({ s: q.attach(), sent: [], enqueuedWhileAttached: new Set() });
        else if (o.k === 'detach' && x) {
          q.detach(x.s);
          live.splice(live.indexOf(x), 1);
        } else if (o.k === 'take' && x) takeFor(x, o.max);
        else if (o.k === 'ack' && x) {
          const pos = x.s.nextPos - 1 - o.keep;
          q.ack(x.s, pos);
          for (const m of x.sent) if (m.pos <= pos) acked.add(m.id);
        }
      }
      for (const x of live) {
        takeFor(x, 1_000_000);
        const got = new Set(x.sent.map((m) => m.id));
        for (const id of x.enqueuedWhileAttached) assert.ok(got.has(id), `a session attached before e${id} was published must get it`);
        q.detach(x.s);
      }
      const fresh = q.attach();
      const depth = q.depth;
      const rest = q.take(fresh, 1_000_000, NOW).map((e) => idOf.get(e.rec.toString())!);
      assert.equal(rest.length, depth, 'depth counts exactly the events still queued');
      assert.equal(new Set(rest).size, rest.length, 'no event is queued twice');
      for (let id = 0; id < nextId; id++) assert.ok(acked.has(id) || rest.includes(id), `e${id} was neither acknowledged nor still queued`);
      assert.equal(q.counters.enqueued, nextId);
      assert.equal(q.counters.sent, taken + rest.length);
      // Entries are slots the queue frees when nothing holds them: none may leak, none be freed early.
      q.ack(fresh, fresh.nextPos - 1);
      assert.equal(q.entriesHeld, 0, 'every entry is freed once acknowledged');
      assert.equal(budget.slabs.live, 0, 'every buffer is released once its records are');
    }),
    { numRuns: 2000 },
  );
});

test('never returns an expired event and never holds more than capacity (one session, random clock)', (t) => {
  const step = fc.record({ priority: fc.constantFrom<Priority>(0, 1, 2, 3), ageMs: fc.nat(300), advanceMs: fc.nat(60), take: fc.nat(3), pull: fc.boolean() });
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.integer({ min: 1, max: 8 }), fc.array(step, { maxLength: 60 }), (capacity, steps) => {
      const ttl = 100;
      const q = new ClientQueue(capacity, ttl);
      const s = q.attach();
      let now = 1000;
      for (const st of steps) {
        q.enqueue(Buffer.from('x'), st.priority, now - st.ageMs);
        assert.ok(q.depth <= capacity);
        now += st.advanceMs;
        const out = st.pull ? q.pull(st.take, now) : q.take(s, st.take, now);
        for (const e of out) assert.ok(e.expiresAtMs >= now, `returned an event that expired at ${e.expiresAtMs} < ${now}`);
        if (!st.pull) q.ack(s, s.nextPos - 1);
      }
      q.expire(now + ttl + 1);
      assert.equal(q.entriesHeld, 0, 'every entry is freed once acknowledged, pulled or expired');
    }),
  );
});

test('a pull with a byte bound returns what fits (one record alone when it is bigger) and leaves the rest queued', () => {
  const q = new ClientQueue(100, FOREVER_MS);
  for (const name of ['aaaa', 'bbbb', 'cccc', 'dddddddddddd', 'e']) put(q, name);
  assert.deepEqual(names(q.pull(10, NOW, 9)), ['aaaa', 'bbbb']);
  assert.deepEqual(names(q.pull(10, NOW, 9)), ['cccc']);
  assert.deepEqual(names(q.pull(10, NOW, 9)), ['dddddddddddd'], 'a record over the bound goes alone');
  assert.deepEqual(names(q.pull(10, NOW, 9)), ['e']);
  assert.equal(q.counters.sent, 5);
});

test('closing a queue (unsubscribed) drops what its sessions hold unacknowledged too, and frees every entry once they detach', () => {
  const budget = new QueueBudget(1e12);
  const q = new ClientQueue(100, FOREVER_MS, budget);
  const a = q.attach();
  const b = q.attach();
  for (const n of ['e1', 'e2', 'e3', 'e4']) q.enqueue(Buffer.from(n), 0, NOW);
  q.take(a, 3, NOW);
  q.take(b, 2, NOW);
  q.ack(b, 0);
  // e1 and e2 left the FIFO (both sessions were sent them); e3 is still queued for b; e4 for both.
  q.close();
  assert.equal(q.counters.droppedUnsubscribed, 4, 'two queued (e3, e4) and two only in flight (e1, e2), each once');
  q.detach(a);
  q.detach(b);
  assert.equal(q.depth, 0, 'a detach put nothing back into the closed queue');
  assert.equal(q.entriesHeld, 0);
  assert.equal(budget.slabs.live, 0);
  assert.equal(budget.bytes, 0);
});
