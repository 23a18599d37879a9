// A subscriber's output queue (paper §3.3: "each subscriber has its own output queue").
// It belongs to the client, not to a connection: it fills while no session is attached, and
// every attached session receives the whole stream from the queue's position, so two
// processes subscribed as one client each get every event (DESIGN §2).
//
// One FIFO per priority level; sessions take the highest level first, so urgent events
// overtake queued ones. Each session keeps a cursor per level (the index of the last entry it
// was sent). An entry leaves the queue once every attached session was sent it; a session's
// sent-but-unacknowledged entries go back into the queue when it detaches, so a console that
// dies mid-batch loses nothing. Bounded by capacity (oldest of the lowest level dropped first),
// by TTL, and by the replica's byte budget shared by all its queues; every drop is counted.
//
// A queued record must not be a view of the socket read it arrived in: that read holds every
// channel's events, so one console that stops reading one channel would pin every other
// channel's bytes too, unseen by any limit. BrokerService copies each section of a PUBLISH
// frame once, and the queues keep views of that copy, which holds one channel's records only.

import { DEFAULT_LIMITS, PRIORITY_LEVELS, type Priority } from '../core/index.js';
import type { RecordRef } from '../codec/index.js';
import { Deque } from './deque.js';
import type { ResolvedPrefix } from './prefix.js';

/**
 * One queued copy of an event. The record is where the service copied it (buf, at, len), not
 * a Buffer view of its own: a view per record per replica was a measured allocation cost, and
 * records lying back to back in one buffer are then sent with one copy (EventsWriter).
 */
export class QueueEntry implements RecordRef {
  /** True while the entry sits in a level FIFO (not only in sessions' in-flight lists). */
  queued = true;
  /** Dropped for capacity or TTL, and counted: a detach must not bring it back. */
  dropped = false;
  /** `attaches` when it last left its FIFO sent to every session: later sessions never had it. */
  leftAt = 0;

  constructor(
    readonly buf: Buffer,
    readonly at: number,
    readonly len: number,
    public idx: number,
    readonly priority: Priority,
    readonly expiresAtMs: number,
    /** Its index in a disk channel (durable.ts); -1 on a memory channel. */
    readonly logIdx: number,
  ) {}

  /** The record as a Buffer view, for the paths that want one (pull, faults, tests). */
  get rec(): Buffer {
    return this.buf.subarray(this.at, this.at + this.len);
  }
}

export interface QueueSession {
  readonly cursors: number[];
  /** Sent, unacknowledged entries, in position order: the head is at nextPos - length. */
  readonly inflight: Deque<QueueEntry>;
  nextPos: number;
  readonly attachedAt: number;
}

export interface QueueCounters {
  enqueued: number;
  sent: number;
  /** Dropped because the queue held capacityEvents or the replica held queuedBytesMax. */
  droppedCapacity: number;
  /** Of droppedCapacity, those dropped for the replica's byte budget (queuedBytesMax). */
  droppedBytes: number;
  droppedTtl: number;
  /** Dropped because the client was unsubscribed from the channel (`fitbroker acl unsubscribe`). */
  droppedUnsubscribed: number;
}

/**
 * What one queued copy of an event is counted for besides its record bytes: the entry object
 * and its FIFO slot, ~122 bytes on Node 20 x64, measured (and checked to stay so) by
 * test/unit/broker-budget.test.ts.
 */
export const QUEUE_ENTRY_OVERHEAD_BYTES = 128;

/**
 * The byte budget of every queue of one replica together (limits.queuedBytesMax). Going over
 * it drops the oldest event of the lowest priority level from the queue that enqueues, if that
 * queue holds at least an equal share of the budget, and otherwise from the queue holding the
 * most bytes: a console that keeps up never loses events because another one fell behind.
 */
export class QueueBudget {
  /** Bytes counted for every queued event of every queue sharing this budget. */
  bytes = 0;
  /**
   * Every queue sharing the budget, and how many hold an event. A count, not a set of holders:
   * at a modest rate a queue empties and fills again with every event, and a Set add and delete
   * each time showed in profiles; the queues are scanned only when the budget is exceeded.
   */
  private readonly queues: ClientQueue[] = [];
  private holders = 0;
  /** The largest queue at the last scan; reused while it holds more than an equal share. */
  private largest: ClientQueue | undefined;

  constructor(readonly bytesMax: number) {}

  /** A queue shares this budget from its creation on. */
  register(q: ClientQueue): void {
    this.queues.push(q);
  }

  /** A queue that was closed (emptied first) no longer shares the budget. */
  unregister(q: ClientQueue): void {
    const i = this.queues.indexOf(q);
    if (i >= 0) this.queues.splice(i, 1);
    if (this.largest === q) this.largest = undefined;
  }

  /** Drops events until `cost` more bytes fit (or nothing is left to drop). */
  makeRoom(q: ClientQueue, cost: number): void {
    while (this.bytes + cost > this.bytesMax && this.holders > 0) {
      if (!this.victim(q).dropForBudget()) return;
    }
  }

  added(q: ClientQueue, cost: number, wasEmpty: boolean): void {
    this.bytes += cost;
    if (wasEmpty) this.holders++;
  }

  removed(q: ClientQueue, cost: number, nowEmpty: boolean): void {
    this.bytes -= cost;
    if (nowEmpty) {
      this.holders--;
      if (this.largest === q) this.largest = undefined;
    }
  }

  private victim(q: ClientQueue): ClientQueue {
    const share = this.bytesMax / this.holders;
    if (q.bytes >= share) return q;
    let v = this.largest;
    if (v === undefined || v.bytes < share) {
      for (const h of this.queues) if (h.bytes > 0 && (v === undefined || h.bytes > v.bytes)) v = h;
      this.largest = v;
    }
    return v!;
  }
}

const idxOf = (e: QueueEntry): number => e.idx;

export class ClientQueue {
  private readonly levels: Deque<QueueEntry>[] = Array.from({ length: PRIORITY_LEVELS }, () => new Deque<QueueEntry>());
  private readonly sessions = new Set<QueueSession>();
  private nextIdx = 0;
  private size = 0;
  private attaches = 0;
  /** Bytes counted for the events in the level FIFOs (record + QUEUE_ENTRY_OVERHEAD_BYTES each). */
  bytes = 0;
  readonly counters: QueueCounters = { enqueued: 0, sent: 0, droppedCapacity: 0, droppedBytes: 0, droppedTtl: 0, droppedUnsubscribed: 0 };
  /**
   * On a disk channel: the indexes this client is done with (acknowledged, pulled, or dropped
   * and counted), which the replica writes to disk as its position (durable.ts).
   */
  done: ResolvedPrefix | undefined;

  constructor(
    private readonly capacityEvents: number,
    private readonly ttlMs: number,
    /** The replica's budget, shared by all its queues; a queue on its own gets one to itself. */
    private readonly budget: QueueBudget = new QueueBudget(DEFAULT_LIMITS.queuedBytesMax),
  ) {
    budget.register(this);
  }

  get depth(): number {
    return this.size;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /**
   * Queues `rec` as it is: the caller hands over bytes it will not reuse, and that pin no more
   * memory than the budget counts (BrokerService copies each section out of the socket read).
   */
  enqueue(rec: Buffer, priority: Priority, timestampMs: number): void {
    this.enqueueAt(rec, 0, rec.length, priority, timestampMs);
  }

  /** enqueue() for the record at [at, at + len) of buf; `logIdx` is its index in a disk channel. */
  enqueueAt(buf: Buffer, at: number, len: number, priority: Priority, timestampMs: number, logIdx = -1): void {
    if (this.size >= this.capacityEvents) this.dropOldest();
    this.budget.makeRoom(this, len + QUEUE_ENTRY_OVERHEAD_BYTES);
    const e = new QueueEntry(buf, at, len, this.nextIdx++, priority, timestampMs + this.ttlMs, logIdx);
    this.levels[priority]!.push(e);
    this.counted(e);
    this.counters.enqueued++;
  }

  /** An entry went into a level FIFO. */
  private counted(e: QueueEntry): void {
    const cost = e.len + QUEUE_ENTRY_OVERHEAD_BYTES;
    const wasEmpty = this.size === 0;
    this.size++;
    this.bytes += cost;
    this.budget.added(this, cost, wasEmpty);
  }

  /** An entry left its level FIFO. */
  private uncounted(e: QueueEntry): void {
    const cost = e.len + QUEUE_ENTRY_OVERHEAD_BYTES;
    e.queued = false;
    this.size--;
    this.bytes -= cost;
    this.budget.removed(this, cost, this.size === 0);
  }

  attach(): QueueSession {
    const s: QueueSession = { cursors: new Array<number>(PRIORITY_LEVELS).fill(-1), inflight: new Deque(), nextPos: 0, attachedAt: ++this.attaches };
    this.sessions.add(s);
    return s;
  }

  /** Detaches a session; what it was sent and did not acknowledge goes back into the queue. */
  detach(s: QueueSession): void {
    if (!this.sessions.delete(s)) return;
    for (let e = s.inflight.shift(); e; e = s.inflight.shift()) {
      if (e.queued || e.dropped) continue;
      e.queued = true;
      // A session attached after e left the FIFO was never sent it, yet its cursor may be past
      // e.idx: put back in place, e would be trimmed unseen behind that cursor and lost. Such an
      // e goes to the back of its level (a session that had it already gets a copy voters drop).
      if (this.skippedBySome(e)) {
        e.idx = this.nextIdx++;
        this.levels[e.priority]!.push(e);
      } else this.levels[e.priority]!.insertSorted(e, idxOf);
      // Counted again, over the budget if need be: these are in memory either way, and the
      // next enqueue drops what it takes to get back under it.
      this.counted(e);
    }
    this.trimSent();
  }

  /** Acknowledges everything up to and including position `pos` of the session's stream. */
  ack(s: QueueSession, pos: number): void {
    // Positions are consecutive, so the count to drop follows from the head's position.
    const drop = Math.min(s.inflight.length, pos - (s.nextPos - s.inflight.length) + 1);
    if (this.done === undefined) for (let i = 0; i < drop; i++) s.inflight.shift();
    else for (let i = 0; i < drop; i++) this.finished(s.inflight.shift()!);
  }

  /** The client is done with `e`: on a disk channel, its position may move past it. */
  private finished(e: QueueEntry): void {
    if (this.done !== undefined && e.logIdx >= 0) this.done.resolve(e.logIdx);
  }

  /** Unacknowledged entries a session holds; the credit window bounds it. */
  inflightOf(s: QueueSession): number {
    return s.inflight.length;
  }

  /** Up to `max` entries this session was not yet sent, urgent first; expired ones dropped. */
  take(s: QueueSession, max: number, nowMs: number): QueueEntry[] {
    this.expire(nowMs);
    const out: QueueEntry[] = [];
    for (let level = PRIORITY_LEVELS - 1; level >= 0 && out.length < max; level--) {
      const fifo = this.levels[level]!;
      if (fifo.length === 0) continue;
      for (let i = fifo.firstAfter(s.cursors[level]!, idxOf); i < fifo.length && out.length < max; i++) {
        const e = fifo.at(i)!;
        s.cursors[level] = e.idx;
        if (e.expiresAtMs < nowMs) {
          // Expired behind a live entry: count it now, once; trimSent removes it later.
          this.countExpired(e);
          continue;
        }
        out.push(e);
        s.inflight.push(e);
        s.nextPos++;
      }
    }
    this.counters.sent += out.length;
    this.trimSent();
    return out;
  }

  /** True when `take` would return something for this session. */
  hasFor(s: QueueSession): boolean {
    for (let level = 0; level < PRIORITY_LEVELS; level++) {
      const fifo = this.levels[level]!;
      if (fifo.firstAfter(s.cursors[level]!, idxOf) < fifo.length) return true;
    }
    return false;
  }

  /** Pull (the paper's receive with a count): dequeues up to `max` entries, urgent first. */
  pull(max: number, nowMs: number): QueueEntry[] {
    this.expire(nowMs);
    const out: QueueEntry[] = [];
    for (let level = PRIORITY_LEVELS - 1; level >= 0 && out.length < max; level--) {
      const fifo = this.levels[level]!;
      while (out.length < max && fifo.length > 0) {
        const e = fifo.shift()!;
        this.uncounted(e);
        this.finished(e);
        if (e.expiresAtMs < nowMs) this.countExpired(e);
        else out.push(e);
      }
    }
    this.counters.sent += out.length;
    return out;
  }

  /** Drops expired entries from the front of every level: the oldest go first. */
  expire(nowMs: number): void {
    if (this.size === 0) return;
    for (const fifo of this.levels) {
      for (let e = fifo.peek(); e && e.expiresAtMs < nowMs; e = fifo.peek()) {
        fifo.shift();
        this.uncounted(e);
        this.countExpired(e);
      }
    }
  }

  private countExpired(e: QueueEntry): void {
    if (e.dropped) return;
    e.dropped = true;
    this.finished(e);
    this.counters.droppedTtl++;
  }

  /** Drops the oldest event of the lowest non-empty level; false if the queue is empty. */
  private dropOldest(): boolean {
    for (const fifo of this.levels) {
      const e = fifo.shift();
      if (e) {
        this.uncounted(e);
        e.dropped = true;
        this.finished(e);
        this.counters.droppedCapacity++;
        return true;
      }
    }
    return false;
  }

  /** The client was unsubscribed: every queued event is dropped, counted, and the budget released. */
  close(): void {
    for (const fifo of this.levels) {
      for (let e = fifo.shift(); e; e = fifo.shift()) {
        this.uncounted(e);
        e.dropped = true;
        this.counters.droppedUnsubscribed++;
      }
    }
    this.budget.unregister(this);
  }

  /** Called by the budget this queue shares when the replica is over queuedBytesMax. */
  dropForBudget(): boolean {
    if (!this.dropOldest()) return false;
    this.counters.droppedBytes++;
    return true;
  }

  /** Removes front entries every attached session has been sent. */
  private trimSent(): void {
    if (this.sessions.size === 0) return;
    for (let level = 0; level < PRIORITY_LEVELS; level++) {
      const fifo = this.levels[level]!;
      if (fifo.length === 0) continue;
      let min = Infinity;
      for (const s of this.sessions) min = Math.min(min, s.cursors[level]!);
      for (let e = fifo.peek(); e && e.idx <= min; e = fifo.peek()) {
        fifo.shift();
        this.uncounted(e);
        e.leftAt = this.attaches;
      }
    }
  }

  private skippedBySome(e: QueueEntry): boolean {
    for (const s of this.sessions) if (s.attachedAt > e.leftAt && s.cursors[e.priority]! >= e.idx) return true;
    return false;
  }
}
