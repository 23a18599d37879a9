// A subscriber's output queue (paper §3.3: "each subscriber has its own output queue").
// It belongs to the client, not to a connection: it fills while no session is attached, and
// every attached session receives the whole stream from the queue's position, so two
// processes subscribed as one client each get every event (DESIGN §2).
//
// One FIFO per priority level; sessions take the highest level first, so urgent events
// overtake queued ones. Each session keeps a cursor per level (the index of the last entry it
// was sent). An entry leaves the queue once every attached session was sent it; a session's
// sent-but-unacknowledged entries go back into the queue when it detaches, so a console that
// dies mid-batch loses nothing. Bounded by capacity, by TTL, and by the replica's byte budget
// shared by all its queues; every drop is counted. What a full queue does is its channel's
// overflow policy: drop its oldest event of the lowest level (the paper's behaviour), refuse
// the newest, or take it and tell its channel to hold the publishers until there is room
// (docs/operations.md, "Queues under pressure"). TTL drops expired events under every policy.
//
// A queued record must not be a view of the socket read it arrived in: that read holds every
// channel's events, so one console that stops reading one channel would pin every other
// channel's bytes too, unseen by any limit. BrokerService copies each section of a PUBLISH
// frame once, and the queues keep views of that copy, which holds one channel's records only.
//
// Entries are slots of an EntryTable (entries.ts), not objects: a FIFO, a session's in-flight
// list, hold slot numbers, and the table frees a slot once nothing holds it.

import { DEFAULT_LIMITS, PRIORITY_LEVELS, type OverflowPolicy, type Priority } from '../core/index.js';
import type { RecordRef, RecordSink } from '../codec/index.js';
import { SlotDeque } from './deque.js';
import { DROPPED, EntryTable, QUEUED, SLOT_F64, SlabTable } from './entries.js';
import type { ResolvedPrefix } from './prefix.js';

/**
 * A record taken from a queue: where the service copied it (buf, at, len), not a Buffer view
 * of its own (a view per record per replica was a measured allocation cost), so records lying
 * back to back in one buffer are sent with one copy (EventsWriter). It lives until its frame
 * is written, young, unlike the queue's entries.
 */
export class QueuedRecord implements RecordRef {
  constructor(
    readonly buf: Buffer,
    readonly at: number,
    readonly len: number,
    readonly priority: number,
    readonly expiresAtMs: number,
  ) {}

  /** The record as a Buffer view, for the paths that want one (pull, faults, tests). */
  get rec(): Buffer {
    return this.buf.subarray(this.at, this.at + this.len);
  }
}

export interface QueueSession {
  readonly cursors: number[];
  /** Sent, unacknowledged entries (slots), in position order: the head is at nextPos - length. */
  readonly inflight: SlotDeque;
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
  /** Of droppedCapacity, the newest event rather than the oldest (overflow: drop-newest). */
  droppedNewest: number;
  droppedTtl: number;
  /** Dropped because the client was unsubscribed from the channel (`fitbroker acl unsubscribe`). */
  droppedUnsubscribed: number;
  /** overflow: block: the times this queue filled up and held its channel's publishers. */
  blocks: number;
  /** overflow: block: how long those spells lasted, ms, the current one not included. */
  blockedMs: number;
}

/** What a full queue does, and whom it tells (overflow: block). */
export interface QueueOverflow {
  readonly policy: OverflowPolicy;
  /** block: the queue became full (true), or has room again (false). */
  onBlock?(q: ClientQueue, blocking: boolean): void;
  /** The replica's clock, for the time spent blocking. */
  nowMs?(): number;
}

const DROP_OLDEST: QueueOverflow = { policy: 'drop-oldest' };

/** Why a block queue is full: it holds capacityEvents, or its share of the byte budget. */
const FULL_EVENTS = 1;
const FULL_BYTES = 2;
/** What a queue the byte budget chose does for its own new event (overBudget). */
const enum OverBudget {
  /** One of its queued events was dropped: look again. */
  Dropped,
  /** The new event is refused (drop-newest). */
  Refused,
  /** The new event is queued over the budget (block: the queue is full; or nothing to drop). */
  Queued,
}

/**
 * What one queued copy of an event is counted for besides its record bytes: its slot in the
 * entry table and its FIFO, with room for the tables' doubling and for in-flight lists, and for
 * the slab it shares; at most this, measured (and checked to stay so) by
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
  /** The buffers every queue sharing this budget keeps records in. */
  readonly slabs = new SlabTable();
  /**
   * Every queue sharing the budget, and how many hold an event. A count, not a set of holders:
   * at a modest rate a queue empties and fills again with every event, and a Set add and delete
   * each time showed in profiles; the queues are scanned only when the budget is exceeded.
   */
  private readonly queues: ClientQueue[] = [];
  private holders = 0;
  /** The largest queue that may drop (not block) at the last scan; reused while it holds more than an equal share. */
  private largest: ClientQueue | undefined;
  /** Block queues full for their share of the budget: they get room back as it frees up. */
  private readonly heldForBytes: ClientQueue[] = [];
  /** The budget has room again for a block queue once it is down to this (7/8 of the max). */
  private readonly resumeBytes: number;

  constructor(readonly bytesMax: number) {
    this.resumeBytes = bytesMax - Math.floor(bytesMax / 8);
  }

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

  /**
   * Drops events until `cost` more bytes fit, from another queue that may drop or, when `q`
   * holds at least an equal share (or no other queue may drop), as q's own policy says. False
   * when q's new event (of `priority`) is refused instead (drop-newest).
   */
  makeRoom(q: ClientQueue, cost: number, priority: Priority): boolean {
    while (this.bytes + cost > this.bytesMax && this.holders > 0) {
      const v = this.victim(q);
      if (v !== undefined && v !== q) {
        v.dropForBudget();
        continue;
      }
      const r = q.overBudget(priority);
      if (r !== OverBudget.Dropped) return r === OverBudget.Queued;
    }
    return true;
  }

  /** True when a block queue full for the budget has room again: the budget freed up, or it holds under half an equal share. */
  roomFor(q: ClientQueue): boolean {
    return this.bytes <= this.resumeBytes || 2 * q.bytes < this.bytesMax / Math.max(1, this.holders);
  }

  heldForBudget(q: ClientQueue, held: boolean): void {
    const i = this.heldForBytes.indexOf(q);
    if (held && i < 0) this.heldForBytes.push(q);
    else if (!held && i >= 0) this.heldForBytes.splice(i, 1);
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
    // Another queue's events went: a block queue held for its share may have room now.
    if (this.heldForBytes.length > 0 && this.bytes <= this.resumeBytes) for (const h of [...this.heldForBytes]) h.recheck();
  }

  /**
   * q if it holds at least an equal share, else the largest queue that may drop. A block queue
   * is never dropped from: its channel promised its publishers that nothing is lost.
   */
  private victim(q: ClientQueue): ClientQueue | undefined {
    const share = this.bytesMax / this.holders;
    if (q.bytes >= share) return q;
    let v = this.largest;
    if (v === undefined || v.bytes < share) {
      v = undefined;
      for (const h of this.queues) if (h.bytes > 0 && h.policy !== 'block' && (v === undefined || h.bytes > v.bytes)) v = h;
      this.largest = v;
    }
    return v;
  }
}

export class ClientQueue {
  private readonly levels: SlotDeque[] = Array.from({ length: PRIORITY_LEVELS }, () => new SlotDeque());
  private readonly t: EntryTable;
  private readonly sessions = new Set<QueueSession>();
  private nextIdx = 0;
  private size = 0;
  private attaches = 0;
  /** Bytes counted for the events in the level FIFOs (record + QUEUE_ENTRY_OVERHEAD_BYTES each). */
  bytes = 0;
  readonly counters: QueueCounters = { enqueued: 0, sent: 0, droppedCapacity: 0, droppedBytes: 0, droppedNewest: 0, droppedTtl: 0, droppedUnsubscribed: 0, blocks: 0, blockedMs: 0 };
  /**
   * On a disk channel: the indexes this client is done with (acknowledged, pulled, or dropped
   * and counted), which the replica writes to disk as its position (durable.ts).
   */
  done: ResolvedPrefix | undefined;
  /** block: why the queue is full now (FULL_EVENTS, FULL_BYTES), 0 when it is not. */
  private full = 0;
  private blockedSinceMs = 0;
  /** block: a full queue has room again at this depth (a quarter free), not at every event taken. */
  private readonly resumeDepth: number;

  constructor(
    private readonly capacityEvents: number,
    private readonly ttlMs: number,
    /** The replica's budget, shared by all its queues; a queue on its own gets one to itself. */
    private readonly budget: QueueBudget = new QueueBudget(DEFAULT_LIMITS.queuedBytesMax),
    private readonly overflow: QueueOverflow = DROP_OLDEST,
  ) {
    this.resumeDepth = capacityEvents - Math.max(1, Math.floor(capacityEvents / 4));
    this.t = new EntryTable(budget.slabs);
    budget.register(this);
  }

  get policy(): OverflowPolicy {
    return this.overflow.policy;
  }

  /** block: true while this queue is full and its channel's publishers are held. */
  get blocking(): boolean {
    return this.full !== 0;
  }

  /** block: ms spent full in all, the current spell included. */
  blockedMsAt(nowMs: number): number {
    return this.counters.blockedMs + (this.full !== 0 ? Math.max(0, nowMs - this.blockedSinceMs) : 0);
  }

  get depth(): number {
    return this.size;
  }

  /** Entries held in memory: queued, or sent to a session that has not acknowledged them. */
  get entriesHeld(): number {
    return this.t.live;
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
    const slabs = this.budget.slabs;
    const slab = slabs.hold(buf);
    this.enqueueIn(slab, at, len, priority, timestampMs, logIdx);
    slabs.release(slab);
  }

  /** enqueueAt() for a buffer held in the budget's SlabTable as `slab` (BrokerService's hot path). */
  enqueueIn(slab: number, at: number, len: number, priority: Priority, timestampMs: number, logIdx = -1): void {
    if (this.size >= this.capacityEvents && !this.whenFull(priority)) return this.refused(logIdx);
    const budget = this.budget;
    const cost = len + QUEUE_ENTRY_OVERHEAD_BYTES;
    if (budget.bytes + cost > budget.bytesMax && !budget.makeRoom(this, cost, priority)) return this.refused(logIdx);
    const e = this.t.add(slab, at, len, this.nextIdx++, priority, timestampMs + this.ttlMs, logIdx);
    this.levels[priority]!.push(e);
    this.counted(e);
    this.counters.enqueued++;
  }

  /** drop-newest refused the record at `logIdx` (counted): on a disk channel this client is done with it. */
  private refused(logIdx: number): void {
    if (this.done !== undefined && logIdx >= 0) this.done.resolve(logIdx);
  }

  /** An entry went into a level FIFO. */
  private counted(e: number): void {
    const cost = this.t.len(e) + QUEUE_ENTRY_OVERHEAD_BYTES;
    const wasEmpty = this.size === 0;
    this.size++;
    this.bytes += cost;
    this.budget.added(this, cost, wasEmpty);
  }

  /** An entry left its level FIFO, which lets go of it: read what you need of it before. */
  private uncounted(e: number): void {
    const t = this.t;
    const cost = t.len(e) + QUEUE_ENTRY_OVERHEAD_BYTES;
    t.unmark(e, QUEUED);
    t.release(e);
    this.size--;
    this.bytes -= cost;
    this.budget.removed(this, cost, this.size === 0);
    if (this.full !== 0) this.recheck();
  }

  /** Marks `e` dropped and counted, and lets its disk channel's position move past it. */
  private dropped(e: number): void {
    this.t.mark(e, DROPPED);
    this.finished(e);
  }

  /** The queue holds capacityEvents and one more comes: false when it is refused. */
  private whenFull(priority: Priority): boolean {
    switch (this.overflow.policy) {
      case 'drop-oldest':
        this.dropOldest();
        return true;
      case 'drop-newest':
        if (this.dropNewestBelow(priority)) return true;
        this.refuseNewest();
        return false;
      case 'block':
        // Taken over capacity: it was read already. The channel stops reading its publishers,
        // so what comes on top is at most what their connections had read when it filled.
        this.block(FULL_EVENTS);
        return true;
    }
  }

  /** The byte budget chose this queue to make room for its own new event (of `priority`). */
  overBudget(priority: Priority): OverBudget {
    switch (this.overflow.policy) {
      case 'drop-oldest':
        return this.dropForBudget() ? OverBudget.Dropped : OverBudget.Queued;
      case 'drop-newest': {
        this.counters.droppedBytes++;
        if (this.dropNewestBelow(priority)) return OverBudget.Dropped;
        this.refuseNewest();
        return OverBudget.Refused;
      }
      case 'block':
        this.block(FULL_BYTES);
        return OverBudget.Queued;
    }
  }

  /**
   * drop-newest: the newest event of the lowest priority level present, a new one (of
   * `priority`) included, goes: an urgent event still displaces a queued ordinary one. Drops
   * and counts the newest queued event of the lowest level below `priority`; false if there is
   * none, and then the new one is refused (refuseNewest).
   */
  private dropNewestBelow(priority: number): boolean {
    for (let level = 0; level < priority; level++) {
      const e = this.levels[level]!.pop();
      if (e >= 0) {
        this.dropped(e);
        this.uncounted(e);
        this.counters.droppedCapacity++;
        this.counters.droppedNewest++;
        return true;
      }
    }
    return false;
  }

  private refuseNewest(): void {
    this.counters.droppedCapacity++;
    this.counters.droppedNewest++;
  }

  private block(why: number): void {
    if ((this.full & why) !== 0) return;
    if (why === FULL_BYTES) this.budget.heldForBudget(this, true);
    const was = this.full;
    this.full |= why;
    if (was !== 0) return;
    this.counters.blocks++;
    this.blockedSinceMs = this.overflow.nowMs?.() ?? 0;
    this.overflow.onBlock?.(this, true);
  }

  /** block: a full queue lets its channel's publishers go once it has room again. */
  recheck(): void {
    if (this.full === 0 || this.size > this.resumeDepth) return;
    if ((this.full & FULL_BYTES) !== 0 && !this.budget.roomFor(this)) return;
    this.unblock();
  }

  private unblock(): void {
    if ((this.full & FULL_BYTES) !== 0) this.budget.heldForBudget(this, false);
    this.full = 0;
    this.counters.blockedMs += Math.max(0, (this.overflow.nowMs?.() ?? 0) - this.blockedSinceMs);
    this.overflow.onBlock?.(this, false);
  }

  attach(): QueueSession {
    const s: QueueSession = { cursors: new Array<number>(PRIORITY_LEVELS).fill(-1), inflight: new SlotDeque(), nextPos: 0, attachedAt: ++this.attaches };
    this.sessions.add(s);
    return s;
  }

  /** Detaches a session; what it was sent and did not acknowledge goes back into the queue. */
  detach(s: QueueSession): void {
    if (!this.sessions.delete(s)) return;
    const t = this.t;
    for (let e = s.inflight.shift(); e >= 0; e = s.inflight.shift()) {
      if ((t.flags(e) & (QUEUED | DROPPED)) === 0) {
        t.mark(e, QUEUED);
        t.hold(e);
        // A session attached after e left the FIFO was never sent it, yet its cursor may be past
        // e's index: put back in place, e would be trimmed unseen behind that cursor and lost.
        // Such an e goes to the back of its level (a session that had it already gets a copy
        // voters drop).
        if (this.skippedBySome(e)) {
          t.setIdx(e, this.nextIdx++);
          this.levels[t.priority(e)]!.push(e);
        } else this.levels[t.priority(e)]!.insertSorted(e, t.f64, SLOT_F64);
        // Counted again, over the budget if need be: these are in memory either way, and the
        // next enqueue drops what it takes to get back under it.
        this.counted(e);
      }
      t.release(e);
    }
    this.trimSent();
  }

  /** Acknowledges everything up to and including position `pos` of the session's stream. */
  ack(s: QueueSession, pos: number): void {
    // Positions are consecutive, so the count to drop follows from the head's position.
    const drop = Math.min(s.inflight.length, pos - (s.nextPos - s.inflight.length) + 1);
    const t = this.t;
    for (let i = 0; i < drop; i++) {
      const e = s.inflight.shift();
      this.finished(e);
      t.release(e);
    }
  }

  /** The client is done with `e`: on a disk channel, its position may move past it. */
  private finished(e: number): void {
    if (this.done === undefined) return;
    const logIdx = this.t.logIdx(e);
    if (logIdx >= 0) this.done.resolve(logIdx);
  }

  /** Unacknowledged entries a session holds; the credit window bounds it. */
  inflightOf(s: QueueSession): number {
    return s.inflight.length;
  }

  /** Up to `max` entries this session was not yet sent, urgent first; expired ones dropped. */
  take(s: QueueSession, max: number, nowMs: number): QueuedRecord[] {
    const out: QueuedRecord[] = [];
    this.takeInto(s, max, nowMs, { record: (buf, at, len, priority, expiresAtMs) => out.push(new QueuedRecord(buf, at, len, priority, expiresAtMs)) });
    return out;
  }

  /**
   * take() for the push path: hands each entry to `sink` (the frame being built) as it is
   * taken, with no object per entry; returns how many it handed.
   */
  takeInto(s: QueueSession, max: number, nowMs: number, sink: RecordSink): number {
    this.expire(nowMs);
    const t = this.t;
    let n = 0;
    for (let level = PRIORITY_LEVELS - 1; level >= 0 && n < max; level--) {
      const fifo = this.levels[level]!;
      if (fifo.length === 0) continue;
      for (let i = fifo.firstAfter(s.cursors[level]!, t.f64, SLOT_F64); i < fifo.length && n < max; i++) {
        const e = fifo.at(i);
        s.cursors[level] = t.idx(e);
        if (t.expiresAtMs(e) < nowMs) {
          // Expired behind a live entry: count it now, once; trimSent removes it later.
          this.countExpired(e);
          continue;
        }
        sink.record(t.buf(e), t.at(e), t.len(e), t.priority(e), t.expiresAtMs(e));
        n++;
        t.hold(e);
        s.inflight.push(e);
        s.nextPos++;
      }
    }
    this.counters.sent += n;
    this.trimSent();
    return n;
  }

  /** True when `take` would return something for this session. */
  hasFor(s: QueueSession): boolean {
    for (let level = 0; level < PRIORITY_LEVELS; level++) {
      const fifo = this.levels[level]!;
      if (fifo.firstAfter(s.cursors[level]!, this.t.f64, SLOT_F64) < fifo.length) return true;
    }
    return false;
  }

  /** Pull (the paper's receive with a count): dequeues up to `max` entries, urgent first. */
  pull(max: number, nowMs: number, bytesMax = Infinity): QueuedRecord[] {
    this.expire(nowMs);
    const t = this.t;
    const out: QueuedRecord[] = [];
    let bytes = 0;
    for (let level = PRIORITY_LEVELS - 1; level >= 0 && out.length < max; level--) {
      const fifo = this.levels[level]!;
      while (out.length < max && fifo.length > 0) {
        // Whatever fits one frame (one record alone when it is bigger): what is pulled is gone.
        if (out.length > 0 && bytes + t.len(fifo.peek()) > bytesMax) return this.pulled(out);
        const e = fifo.shift();
        bytes += t.len(e);
        this.finished(e);
        if (t.expiresAtMs(e) < nowMs) this.countExpired(e);
        else out.push(this.recordOf(e));
        this.uncounted(e);
      }
    }
    return this.pulled(out);
  }

  private recordOf(e: number): QueuedRecord {
    const t = this.t;
    return new QueuedRecord(t.buf(e), t.at(e), t.len(e), t.priority(e), t.expiresAtMs(e));
  }

  private pulled(out: QueuedRecord[]): QueuedRecord[] {
    this.counters.sent += out.length;
    return out;
  }

  /** Drops expired entries from the front of every level: the oldest go first. */
  expire(nowMs: number): void {
    if (this.size === 0) return;
    const t = this.t;
    for (const fifo of this.levels) {
      for (let e = fifo.peek(); e >= 0 && t.expiresAtMs(e) < nowMs; e = fifo.peek()) {
        fifo.shift();
        this.countExpired(e);
        this.uncounted(e);
      }
    }
  }

  private countExpired(e: number): void {
    if ((this.t.flags(e) & DROPPED) !== 0) return;
    this.dropped(e);
    this.counters.droppedTtl++;
  }

  /** Drops the oldest event of the lowest non-empty level; false if the queue is empty. */
  private dropOldest(): boolean {
    for (const fifo of this.levels) {
      const e = fifo.shift();
      if (e >= 0) {
        this.dropped(e);
        this.uncounted(e);
        this.counters.droppedCapacity++;
        return true;
      }
    }
    return false;
  }

  /** The client was unsubscribed: every queued event is dropped, counted, and the budget released. */
  close(): void {
    const t = this.t;
    for (const fifo of this.levels) {
      for (let e = fifo.shift(); e >= 0; e = fifo.shift()) {
        t.mark(e, DROPPED);
        this.uncounted(e);
        this.counters.droppedUnsubscribed++;
      }
    }
    // Sent and not acknowledged: their sessions end next, and a detach must not put them back
    // into a queue nobody will read again (they would stay there, with their slabs, for good).
    // Maybe delivered, maybe not: counted as dropped, never silently lost.
    for (const s of this.sessions) {
      for (let i = 0; i < s.inflight.length; i++) {
        const e = s.inflight.at(i);
        if ((t.flags(e) & (QUEUED | DROPPED)) !== 0) continue;
        t.mark(e, DROPPED);
        this.counters.droppedUnsubscribed++;
      }
    }
    // A queue that is gone holds no one.
    if (this.full !== 0) this.unblock();
    this.budget.unregister(this);
  }

  /**
   * Called by the budget this queue shares when the replica is over queuedBytesMax: drops one
   * event, the oldest or (drop-newest) the newest of the lowest level. Never on a block queue.
   */
  dropForBudget(): boolean {
    const dropped = this.overflow.policy === 'drop-newest' ? this.dropNewestBelow(PRIORITY_LEVELS) : this.dropOldest();
    if (dropped) this.counters.droppedBytes++;
    return dropped;
  }

  /** Removes front entries every attached session has been sent. */
  private trimSent(): void {
    if (this.sessions.size === 0) return;
    for (let level = 0; level < PRIORITY_LEVELS; level++) {
      const fifo = this.levels[level]!;
      if (fifo.length === 0) continue;
      let min = Infinity;
      for (const s of this.sessions) min = Math.min(min, s.cursors[level]!);
      const t = this.t;
      for (let e = fifo.peek(); e >= 0 && t.idx(e) <= min; e = fifo.peek()) {
        fifo.shift();
        t.setLeftAt(e, this.attaches);
        this.uncounted(e);
      }
    }
  }

  private skippedBySome(e: number): boolean {
    const t = this.t;
    for (const s of this.sessions) if (s.attachedAt > t.leftAt(e) && s.cursors[t.priority(e)]! >= t.idx(e)) return true;
    return false;
  }
}
