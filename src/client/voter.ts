// The subscriber's voter (paper §3.3, DESIGN §4): n replicas each send their copy of every
// event; deliver it exactly once, after `threshold` byte-identical copies (f+1 for bft, so at
// least one correct replica vouches for it; 1 for cft), and never a version only a minority
// sent. Copies that differ from the delivered version are evidence against the replica that
// sent them. Pure: no sockets, no timers; time comes in as arguments.
//
// Bounded by construction: undecided events wait at most pendingMs and at most pendingMax of
// them; delivered keys are remembered until deliveredMax newer ones push them out, and a floor
// per publishing process and priority then turns very late copies away. Per priority, because
// urgent events overtake normal ones in replica queues; within one level a replica keeps each
// publisher's order, so a seq below the floor of its level was already seen.
//
// It runs once per copy (n times per event), so it allocates little: replica sets are
// bitmasks, the first version of an event is stored inline, and eviction order lives in FIFOs
// (taking the oldest key of a Map that has seen many deletes walks every deleted slot).
// Events are found by publishing process and then seq, and floors belong to the process, so
// that a copy costs no string: see voter-streams.ts.

import { FitError } from '../core/index.js';
import { Deque } from '../broker/index.js';
import { StreamIndex, type Stream } from './voter-streams.js';

export interface VoterOptions {
  replicas: number;
  threshold: number;
  ttlMs: number;
  pendingMax: number;
  deliveredMax: number;
  pendingMs: number;
}

export interface VoterCounters {
  delivered: number;
  expired: number;
  undecided: number;
  stale: number;
  duplicateCopies: number;
}

/** A copy of an event as one replica sent it, and where in that replica's stream it sat. */
export interface Copy {
  replica: number;
  pos: number;
}

export interface VoterSink {
  deliver(rec: Buffer): void;
  /** The copy at `pos` of `replica`'s stream needs nothing more: the subscriber may acknowledge it. */
  resolve(replica: number, pos: number): void;
}

/** Replica sets are bitmasks; 30 keeps `1 << r` a positive small integer. */
export const VOTER_REPLICAS_MAX = 30;

interface Variant {
  rec: Buffer;
  mask: number;
}

/**
 * One event, undecided and then delivered: the same object, so a copy costs one lookup and an
 * event two allocations (this and its list of copies). While undecided, `rec`/`mask` are the
 * first version seen; once decided, `rec` is the delivered version, kept for comparing late
 * copies and released once every replica's copy arrived.
 */
interface Entry {
  decided: boolean;
  stream: Stream<Entry>;
  rec: Buffer | undefined;
  mask: number;
  /** Versions that differ from the first: only a faulty replica makes these. */
  others: Variant[] | undefined;
  seenMask: number;
  /** Flat (replica, pos) pairs of the copies received, to resolve them once decided. */
  copies: number[] | undefined;
  firstSeenMs: number;
  seq: number;
  priority: number;
}

/** Record offset of the identity (publisherBytes, publisher, epoch, seq). */
const ID_AT = 8;
const EPOCH_BYTES = 8;

function sameBytes(rec: Buffer, buf: Buffer, start: number, end: number): boolean {
  return rec.length === end - start && buf.compare(rec, 0, rec.length, start, end) === 0;
}

function popcount(x: number): number {
  let c = 0;
  for (let v = x; v; v &= v - 1) c++;
  return c;
}

export class Voter {
  /** Undecided and delivered events, by publishing process and then seq. */
  private readonly streams: StreamIndex<Entry>;
  private pendingSize = 0;
  private readonly pendingOrder = new Deque<Entry>();
  private readonly deliveredOrder = new Deque<Entry>();
  private readonly allMask: number;
  private incomplete = 0;
  readonly mismatches: number[];
  readonly counters: VoterCounters = { delivered: 0, expired: 0, undecided: 0, stale: 0, duplicateCopies: 0 };

  constructor(
    private readonly o: VoterOptions,
    private readonly sink: VoterSink,
  ) {
    if (o.threshold < 1 || o.threshold > o.replicas || o.replicas > VOTER_REPLICAS_MAX) {
      throw new FitError('FIT_ERR_INTERNAL', `invariant broken: voter threshold ${o.threshold} outside 1..${o.replicas}, or more than ${VOTER_REPLICAS_MAX} replicas`);
    }
    this.allMask = (1 << o.replicas) - 1;
    this.mismatches = new Array<number>(o.replicas).fill(0);
    // Floors of up to deliveredMax idle processes: the bound of the delivered events they outlast.
    this.streams = new StreamIndex(o.replicas, o.deliveredMax);
  }

  get pendingCount(): number {
    return this.pendingSize;
  }

  /** Delivered events still missing a copy from some replica. */
  get incompleteCount(): number {
    return this.incomplete;
  }

  /** Publishing processes remembered, for events or floors. */
  get streamCount(): number {
    return this.streams.size;
  }

  offer(replica: number, rec: Buffer, pos: number, nowMs: number): void {
    this.offerAt(replica, rec, 0, rec.length, pos, nowMs);
  }

  /**
   * offer() for a record at [start, end) of a received frame. Most copies are compared and
   * dropped, so the record gets its own Buffer view only when the voter keeps it.
   */
  offerAt(replica: number, buf: Buffer, start: number, end: number, pos: number, nowMs: number): void {
    const from = start + ID_AT;
    const to = from + 1 + buf[from]! + EPOCH_BYTES;
    let s = this.streams.find(replica, buf, from, to);
    const seq = buf.readUInt32BE(to) * 0x1_0000_0000 + buf.readUInt32BE(to + 4);
    let p = s?.events.get(seq);
    if (p?.decided) return this.lateCopy(p, replica, buf, start, end, pos);
    if (!p) {
      const priority = buf[start + 5]!;
      const floor = s?.floors?.[priority];
      if (floor !== undefined && seq <= floor) {
        this.counters.stale++;
        return this.sink.resolve(replica, pos);
      }
      if (buf.readDoubleBE(to + 8) + this.o.ttlMs < nowMs) {
        this.counters.expired++;
        return this.sink.resolve(replica, pos);
      }
      // Woken first, or making room could give up its floors as the oldest idle process;
      // making room may still take its last event, and so make it idle again or close it.
      if (s) this.streams.wake(s);
      if (this.pendingSize >= this.o.pendingMax) this.evictOldestPending();
      if (!s || s.closed) s = this.streams.open(replica, buf, from, to);
      else this.streams.wake(s);
      const rec = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
      p = { decided: false, stream: s, rec, mask: 0, others: undefined, seenMask: 0, copies: [], firstSeenMs: nowMs, seq, priority };
      s.events.set(seq, p);
      this.pendingSize++;
      this.pendingOrder.push(p);
      if (this.pendingOrder.length > 4 * this.o.pendingMax) this.compactPendingOrder();
    }
    const bit = 1 << replica;
    if (p.seenMask & bit) {
      this.counters.duplicateCopies++;
      return this.sink.resolve(replica, pos);
    }
    p.seenMask |= bit;
    p.copies!.push(replica, pos);
    if (p.mask === 0 || sameBytes(p.rec!, buf, start, end)) {
      p.mask |= bit;
      if (popcount(p.mask) >= this.o.threshold) this.decide(p, undefined);
      return;
    }
    let v = p.others?.find((x) => sameBytes(x.rec, buf, start, end));
    if (!v) (p.others ??= []).push((v = { rec: buf.subarray(start, end), mask: 0 }));
    v.mask |= bit;
    if (popcount(v.mask) >= this.o.threshold) this.decide(p, v);
  }

  /**
   * Takes a copy only if its event was already delivered (for a subscriber that is closing:
   * it must not resolve, and so acknowledge, events it will never hand to the application).
   */
  offerLate(replica: number, rec: Buffer, pos: number): boolean {
    return this.offerLateAt(replica, rec, 0, rec.length, pos);
  }

  offerLateAt(replica: number, buf: Buffer, start: number, end: number, pos: number): boolean {
    const from = start + ID_AT;
    const to = from + 1 + buf[from]! + EPOCH_BYTES;
    const done = this.streams.find(replica, buf, from, to)?.events.get(buf.readUInt32BE(to) * 0x1_0000_0000 + buf.readUInt32BE(to + 4));
    if (!done?.decided) return false;
    this.lateCopy(done, replica, buf, start, end, pos);
    return true;
  }

  /** Drops undecided events older than pendingMs; call it from a timer. */
  sweep(nowMs: number): void {
    for (let p = this.oldestPending(); p && nowMs - p.firstSeenMs >= this.o.pendingMs; p = this.oldestPending()) this.evictPending(p);
  }

  /** Delivers the first version seen (winner undefined) or another one. */
  private decide(p: Entry, winner: Variant | undefined): void {
    this.pendingSize--;
    if (p.others) {
      const versions: Variant[] = [{ rec: p.rec!, mask: p.mask }, ...p.others];
      for (const v of versions) {
        if (v.mask === (winner ?? versions[0]!).mask) continue;
        for (let r = 0; r < this.o.replicas; r++) if (v.mask & (1 << r)) this.mismatches[r]!++;
      }
    }
    const rec = winner ? winner.rec : p.rec!;
    this.counters.delivered++;
    this.sink.deliver(rec);
    this.resolveCopies(p);
    // Remembered even after every replica's copy arrived: a reconnect makes replicas resend
    // what they sent but never saw acknowledged, and that must not deliver it twice.
    if (this.deliveredOrder.length >= this.o.deliveredMax) this.forgetOldestDelivered();
    const complete = p.seenMask === this.allMask;
    if (!complete) this.incomplete++;
    p.decided = true;
    p.rec = complete ? undefined : rec;
    p.others = undefined;
    p.copies = undefined;
    this.deliveredOrder.push(p);
  }

  private lateCopy(done: Entry, replica: number, buf: Buffer, start: number, end: number, pos: number): void {
    const bit = 1 << replica;
    if (done.seenMask & bit) {
      this.counters.duplicateCopies++;
    } else {
      if (done.rec && !sameBytes(done.rec, buf, start, end)) this.mismatches[replica]!++;
      done.seenMask |= bit;
      if (done.seenMask === this.allMask && done.rec) {
        done.rec = undefined;
        this.incomplete--;
      }
    }
    this.sink.resolve(replica, pos);
  }

  private resolveCopies(p: Entry): void {
    const copies = p.copies!;
    for (let i = 0; i < copies.length; i += 2) this.sink.resolve(copies[i]!, copies[i + 1]!);
  }

  /** The oldest still-undecided event, dropping decided ones from the front of the FIFO. */
  private oldestPending(): Entry | undefined {
    for (let p = this.pendingOrder.peek(); p; p = this.pendingOrder.peek()) {
      if (!p.decided && p.stream.events.get(p.seq) === p) return p;
      this.pendingOrder.shift();
    }
    return undefined;
  }

  private evictOldestPending(): void {
    const p = this.oldestPending();
    if (p) this.evictPending(p);
  }

  private evictPending(p: Entry): void {
    p.stream.events.delete(p.seq);
    if (p.stream.events.size === 0) this.streams.emptied(p.stream);
    this.pendingSize--;
    this.counters.undecided++;
    this.resolveCopies(p);
  }

  private compactPendingOrder(): void {
    const live: Entry[] = [];
    for (let p = this.pendingOrder.shift(); p; p = this.pendingOrder.shift()) if (!p.decided && p.stream.events.get(p.seq) === p) live.push(p);
    for (const p of live) this.pendingOrder.push(p);
  }

  private forgetOldestDelivered(): void {
    const d = this.deliveredOrder.shift()!;
    const s = d.stream;
    if (s.events.get(d.seq) === d) s.events.delete(d.seq);
    if (d.rec) this.incomplete--;
    const floors = (s.floors ??= [-1, -1, -1, -1]); // one per priority level; no seq is below 0
    const floor = floors[d.priority];
    if (floor === undefined || d.seq > floor) floors[d.priority] = d.seq;
    if (s.events.size === 0) this.streams.emptied(s);
  }
}
