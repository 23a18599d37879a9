// The subscriber's voter (paper §3.3, DESIGN §4): n replicas each send their copy of every
// event; deliver it exactly once, after `threshold` byte-identical copies (f+1 for bft, so at
// least one correct replica vouches for it; 1 for cft), and never a version only a minority
// sent. Copies that differ from the delivered version are evidence against the replica that
// sent them. Pure: no sockets, no timers; time comes in as arguments.
//
// Bounded by construction: undecided events wait at most pendingMs and at most pendingMax of
// them; delivered events are remembered until deliveredMax newer ones push them out, then as a
// bit (voter-seqs.ts) until a floor per publishing process and priority covers them, and the
// floor turns every copy at or below it away. Per priority, because urgent events overtake
// normal ones in replica queues; within one level a replica sends each publisher's events in
// seq order, though not every one: a full queue or a TTL drops some. So the floor rises only
// as far as the replicas have passed: to the seq that all but threshold-1 live replicas have
// sent a copy at or beyond. An event below it that is not in the table can no longer gather
// the copies it needs (only resends would come), while one that a replica far behind still
// holds, and the others dropped, stays above it and is delivered when that copy comes. A
// replica whose link is down is not waited for (setLive). Should a replica stay behind past
// what the bits may hold (a faulty one that withholds on a signed channel, one lagging by
// more than its queues hold), the floor passes it anyway, counted in floorsForced.
//
// It runs once per copy (n times per event), so it allocates nothing per event: an event is
// a slot in typed-array columns (voter-table.ts), replica sets are bitmasks, the first version
// is kept where it arrived, and eviction order lives in FIFOs of slots. Events are found by
// publishing process and seq, and floors belong to the process, so that a copy costs no
// string: see voter-streams.ts. A slot is reused once its event is forgotten; the undecided
// FIFO keeps each slot's generation so that it never evicts the slot's next event in its
// place, and a replica's expected run head needs none (see `expect`).
//
// Most copies need no lookup at all (offerSection): replicas forward a publisher's batch as
// the bytes it arrived in, so a later replica's section usually repeats, byte for byte, a run
// of records the first replica's copy created entries for, back to back in one frame. Such a
// run is compared with one memcmp against the first version's bytes and counted for every
// event in it; only records that do not line up are parsed and looked up one at a time. One
// comparison of equal bytes says as much as one per record, so the vote is unchanged.
//
// Protected channels (DESIGN §3) add a check of each version before it is delivered: the MAC
// or publisher signature (src/protection/check.ts), run once per version that would win, not
// per copy. With a signature (pks, pke) one valid copy is enough (`oneValidEnough`): no
// replica can forge it. A version that fails never wins; if `blameQuorum` replicas (f+1) sent
// it, the publisher itself sealed it wrongly, and the event is rejected and reported. A
// version that cannot be checked yet (its publisher or key is not known here) is not judged:
// the next copy tries again.
//
// One valid copy must not let one faulty replica replay an event this voter has forgotten (or
// delivered in a session before this one): a valid signature says who made an event, not that
// it is new. So one copy is enough only for events timestamped after `horizonMs` — the
// subscriber's start (plus the clock skew allowed between publishers and subscriber), raised
// to the signed timestamp of every delivered event the voter forgets. Older events need
// `threshold` copies, as on an si channel, and correct replicas do not replay.

import { FitError, PRIORITY_LEVELS } from '../core/index.js';
import { SlotDeque } from '../broker/index.js';
import { RecordCursor, f64be, u32 } from '../codec/index.js';
import type { CheckResult } from '../protection/index.js';
import { StreamIndex, type Stream } from './voter-streams.js';
import { SeqBits, type SeqBudget } from './voter-seqs.js';
import { DECIDED, EventTable, FIRST_WON, type Variant } from './voter-table.js';

export interface VoterOptions {
  replicas: number;
  threshold: number;
  ttlMs: number;
  pendingMax: number;
  deliveredMax: number;
  pendingMs: number;
  /** Protected channels: is the record at buf[start, end) authentic, or can it not be told yet? */
  check?: (buf: Buffer, start: number, end: number) => CheckResult;
  /** Why the last check failed, for the report. */
  checkReason?: () => string;
  /** Deliver the first version that passes `check`, without waiting for `threshold` copies. */
  oneValidEnough?: boolean;
  /** Copies of a failing version that make it the publisher's fault (f+1; default threshold). */
  blameQuorum?: number;
  /** With oneValidEnough: events timestamped at or before this need `threshold` copies (see the top). */
  horizonMs?: number;
}

export interface VoterCounters {
  delivered: number;
  expired: number;
  undecided: number;
  stale: number;
  duplicateCopies: number;
  /** Versions that failed the channel's protection check (each counted once). */
  forged: number;
  /** Events refused because `threshold` replicas sent a version that failed the check: the publisher's fault. */
  rejected: number;
  /**
   * Signed channels: copies of a version other than the one delivered that carry the
   * publisher's valid signature too. No replica can sign, so the publisher signed two versions
   * of one event (it equivocated): counted here, and no replica is blamed for passing one on.
   */
  equivocations: number;
  /**
   * Times a floor passed seqs that a live replica had not reached yet, because the bits of
   * delivered events waiting for it ran out of room: a copy of an event that replica alone
   * still held would be turned away as stale.
   */
  floorsForced: number;
}

/** A copy of an event as one replica sent it, and where in that replica's stream it sat. */
export interface Copy {
  replica: number;
  pos: number;
}

export interface VoterSink {
  /** The event whose record is buf[start, end). */
  deliver(buf: Buffer, start: number, end: number): void;
  /** The copy at `pos` of `replica`'s stream needs nothing more: the subscriber may acknowledge it. */
  resolve(replica: number, pos: number): void;
  /** A version of an event failed the protection check; `mask` holds the replicas that sent it so far. */
  forged?(buf: Buffer, start: number, end: number, mask: number, byPublisher: boolean, reason: string): void;
  /** f+1 replicas sent a version that cannot be checked here (its publisher is not in this config). */
  unverifiable?(buf: Buffer, start: number, end: number, reason: string): void;
  /** A second validly signed version of an event (see VoterCounters.equivocations): its publisher's fault. */
  equivocated?(buf: Buffer, start: number, end: number): void;
}

/** Replica sets are bitmasks; 30 keeps `1 << r` a positive small integer. */
export const VOTER_REPLICAS_MAX = 30;

/** A version's protection check: not yet run, passed, failed, failed and reported as the publisher's. */
const enum Check {
  Unknown = 0,
  Valid = 1,
  Invalid = 2,
  Rejected = 3,
}

/** Record offset of the identity (publisherBytes, publisher, epoch, seq). */
const ID_AT = 8;
const EPOCH_BYTES = 8;
/**
 * Records a run comparison may cover. After a comparison fails, the next one tries a single
 * record and each success doubles the span, so a faulty replica that breaks every other
 * record costs comparisons of a record or two, never a whole run per record.
 */
const RUN_RECORDS_MAX = 1 << 16;
/**
 * How long a delivered event still missing copies compares them with the frame it arrived in.
 * A frame is a view into the 1 MiB slab its socket read into (src/codec/frame-slab.ts): with a
 * replica down its copies never come, and a quiet channel beside busy ones would keep a slab
 * per event it remembers. Past this age the event keeps a copy of its own bytes instead.
 */
const FRAME_VIEW_MS = 1000;
const NO_BYTES = Buffer.alloc(0);
/**
 * How many seqs a replica may fall behind at one level of one publishing process before a
 * floor stops waiting for it, for all processes together: 512 per event deliveredMax allows
 * (at 50 channels, 1 M per channel, far more than a channel's share of a replica's queues),
 * and at least 128 Ki (16 KiB of bits).
 */
export function voterSeqBitsMax(deliveredMax: number): number {
  return 32 * Math.max(4096, 16 * deliveredMax);
}

function sameBytes(rec: Buffer, buf: Buffer, start: number, end: number): boolean {
  return rec.length === end - start && buf.compare(rec, 0, rec.length, start, end) === 0;
}

/** The signed timestamp of the record at `at`. */
function recordTimestamp(buf: Buffer, at: number): number {
  return f64be(buf, at + ID_AT + 1 + buf[at + ID_AT]! + EPOCH_BYTES + 8);
}

function popcount(x: number): number {
  let c = 0;
  for (let v = x; v; v &= v - 1) c++;
  return c;
}

export class Voter {
  /** Publishing processes, which events are found by (with their seq). */
  private readonly streams: StreamIndex;
  /** Undecided and delivered events: slots (see voter-table.ts). */
  private readonly t = new EventTable();
  private pendingSize = 0;
  /** Undecided events, oldest first, with each slot's gen when pushed: a slot may be reused since. */
  private readonly pendingOrder = new SlotDeque();
  private readonly pendingGens = new SlotDeque();
  /** Delivered events, oldest first; a slot is freed only when it leaves this FIFO. */
  private readonly deliveredOrder = new SlotDeque();
  /** deliveredOrder's entries before this index no longer hold a view of their frame. */
  private viewsFrom = 0;
  /** The same for pendingOrder (see ownOldFrames). */
  private pendingViewsFrom = 0;
  private readonly allMask: number;
  private incomplete = 0;
  /**
   * Per replica, the slot its next copy is expected to be (the run it is in the middle of), or
   * -1. It may have been freed and reused since: harmless, as a run is only ever taken after
   * its bytes compared equal, and equal bytes are copies of the event the slot names now.
   */
  private readonly expect: Int32Array;
  /** Per replica, how many records the next run comparison tries. */
  private readonly span: number[];
  /** The bytes of the run the last markRun() counted. */
  private runBytes = 0;
  /** The slot the last vote() created, or -1. */
  private created = -1;
  /** Reused by every offerSection() call (a section of one event each, at a modest rate). */
  private cursor: RecordCursor | undefined;
  /** One valid copy is enough only for events timestamped after this (see the top). */
  private horizonMs: number;
  /** Bound once: takeHeld() calls it for every held copy. */
  private readonly resolveHeld: (replica: number, pos: number) => void;
  readonly mismatches: number[];
  readonly counters: VoterCounters = { delivered: 0, expired: 0, undecided: 0, stale: 0, duplicateCopies: 0, forged: 0, rejected: 0, equivocations: 0, floorsForced: 0 };
  /** Replicas whose copies may still come: floors wait for these only. */
  private liveMask: number;
  /** Copies an event needs to be delivered, at least: what a floor must leave room for. */
  private readonly floorQuorum: number;
  private readonly seqBudget: SeqBudget;
  /** Reused by raiseFloor: the live replicas' progress, sorted. */
  private readonly passedSorted: Float64Array;

  constructor(
    private readonly o: VoterOptions,
    private readonly sink: VoterSink,
  ) {
    if (o.threshold < 1 || o.threshold > o.replicas || o.replicas > VOTER_REPLICAS_MAX) {
      throw new FitError('FIT_ERR_INTERNAL', `invariant broken: voter threshold ${o.threshold} outside 1..${o.replicas}, or more than ${VOTER_REPLICAS_MAX} replicas`);
    }
    this.allMask = (1 << o.replicas) - 1;
    this.liveMask = this.allMask;
    this.floorQuorum = o.oneValidEnough ? 1 : o.threshold;
    this.seqBudget = { words: 0, max: voterSeqBitsMax(o.deliveredMax) / 32 };
    this.passedSorted = new Float64Array(o.replicas);
    this.horizonMs = o.horizonMs ?? -Infinity;
    this.mismatches = new Array<number>(o.replicas).fill(0);
    this.expect = new Int32Array(o.replicas).fill(-1);
    this.span = new Array<number>(o.replicas).fill(RUN_RECORDS_MAX);
    // Floors of up to deliveredMax idle processes: the bound of the delivered events they outlast.
    this.streams = new StreamIndex(o.replicas, o.deliveredMax, (s) => {
      for (const bits of s.delivered ?? []) bits?.clear();
    });
    this.resolveHeld = (replica, pos) => sink.resolve(replica, pos);
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

  /** Events remembered, undecided or delivered (for tests: bounded by pendingMax + deliveredMax). */
  get eventCount(): number {
    return this.t.live;
  }

  /**
   * Whether `replica` may still send copies (its subscribe stream is up). Floors do not wait
   * for one that is down; its backlog, when it is back, is judged against them like any copy.
   */
  setLive(replica: number, live: boolean): void {
    if (live) this.liveMask |= 1 << replica;
    else this.liveMask &= ~(1 << replica);
  }

  offer(replica: number, rec: Buffer, pos: number, nowMs: number): void {
    this.offerAt(replica, rec, 0, rec.length, pos, nowMs);
  }

  /**
   * Offers every record of [from, to) of a replica's frame, the first at position `firstPos`
   * of its stream. Throws FIT_ERR_MALFORMED or FIT_ERR_EVENT_TOO_LARGE at the first record
   * that does not parse; the records before it still count.
   */
  offerSection(replica: number, buf: Buffer, from: number, to: number, firstPos: number, nowMs: number, eventBytesMax: number): void {
    const t = this.t;
    let at = from;
    let pos = firstPos;
    /** The slot the previous record of this section created: the one to link the next to. */
    let prevCreated = -1;
    let cursor: RecordCursor | undefined;
    while (at < to) {
      const head = this.expect[replica]!;
      if (head >= 0 && t.fbuf[head] !== undefined) {
        const n = this.matchRun(head, buf, at, to, this.span[replica]!);
        const marked = n > 0 ? this.markRun(head, n, replica, pos) : 0;
        if (marked > 0) {
          at += this.runBytes;
          pos += marked;
          this.span[replica] = Math.min(RUN_RECORDS_MAX, 2 * n);
          prevCreated = -1;
          continue;
        }
      }
      this.span[replica] = 1;
      if (cursor === undefined) cursor = (this.cursor ??= new RecordCursor(buf, at, eventBytesMax, to)).reset(buf, at, to);
      else cursor.seek(at);
      cursor.next();
      this.created = -1;
      const p = this.vote(replica, buf, cursor.start, cursor.end, pos++, nowMs);
      const created = this.created;
      if (created >= 0 && prevCreated >= 0 && t.fbuf[prevCreated] === buf && t.fend[prevCreated] === cursor.start) t.next[prevCreated] = created;
      prevCreated = created;
      this.expect[replica] = created >= 0 || p < 0 ? -1 : t.next[p]!;
      at = cursor.end;
    }
  }

  /**
   * How many records of the run starting at `head` (at most `span`) equal buf from `at` on,
   * compared in one memcmp; 0 if they do not. Stops where the run stops being comparable.
   */
  private matchRun(head: number, buf: Buffer, at: number, to: number, span: number): number {
    const t = this.t;
    const fbuf = t.fbuf[head]!;
    const base = t.fat[head]!;
    let n = 0;
    let end = base;
    for (let e = head; e >= 0 && t.fbuf[e] === fbuf && t.fat[e] === end && n < span; e = t.next[e]!) {
      if (at + (t.fend[e]! - base) > to) break;
      end = t.fend[e]!;
      n++;
    }
    if (n === 0 || buf.compare(fbuf, base, end, at, at + (end - base)) !== 0) return 0;
    return n;
  }

  /**
   * Counts up to `n` records of a matched run as copies from `replica`, and returns how many it
   * counted; runBytes says how many bytes they span.
   */
  private markRun(head: number, n: number, replica: number, pos: number): number {
    const t = this.t;
    const base = t.fat[head]!;
    let e = head;
    let i = 0;
    // What the replica passed, per process and level: the highest seq of each group of the
    // run's records that share them, once per group rather than once per record. Told after
    // the group's copies counted: a floor raised meanwhile waits for this replica a little
    // longer than it needs to, never less.
    let ps: Stream | undefined;
    let pl = -1;
    let pseq = 0;
    for (; i < n; i++) {
      const p = e;
      // Deciding an earlier event of the run may have forgotten this one (tiny deliveredMax):
      // the run ends before it, and offerSection parses and looks it up as any other record.
      // Never vote here: a vote may create an event in a freed slot, and the slot freed may be
      // one this run has yet to reach, which would then name another event.
      if (t.fbuf[p] === undefined) break;
      const st = t.stream[p];
      if (st !== ps || t.priority[p] !== pl) {
        if (ps) this.pass(ps, pl, replica, pseq);
        ps = st;
        pl = t.priority[p]!;
      }
      pseq = t.seq[p]!; // a replica sends a group in seq order: its last is its highest
      e = t.next[p]!;
      this.runBytes = t.fend[p]! - base;
      this.firstVersionCopy(p, replica, pos + i);
    }
    if (ps) this.pass(ps, pl, replica, pseq);
    this.expect[replica] = i === n ? e : -1;
    return i;
  }

  /** A copy from `replica` known to equal p's first version. */
  private firstVersionCopy(p: number, replica: number, pos: number): void {
    const t = this.t;
    const bit = 1 << replica;
    if (t.seenMask[p]! & bit) {
      this.counters.duplicateCopies++;
      return this.sink.resolve(replica, pos);
    }
    t.seenMask[p]! |= bit;
    if (t.flags[p]! & DECIDED) {
      if (!(t.flags[p]! & FIRST_WON)) this.mismatches[replica]!++;
      this.completeIfAll(p);
      return this.sink.resolve(replica, pos);
    }
    t.mask[p]! |= bit;
    this.settle(p, undefined);
    this.holdUnlessDecided(p, replica, pos);
  }

  /**
   * A copy that counted towards undecided p waits for p's decision; one that decided it (most
   * often the f+1st) is resolved at once and never held.
   */
  private holdUnlessDecided(p: number, replica: number, pos: number): void {
    if (this.t.flags[p]! & DECIDED) this.sink.resolve(replica, pos);
    else this.t.hold(p, replica, pos);
  }

  /**
   * offer() for a record at [start, end) of a received frame. Most copies are compared and
   * dropped; the record's bytes are kept in place, in the frame, only when the voter keeps it.
   */
  offerAt(replica: number, buf: Buffer, start: number, end: number, pos: number, nowMs: number): void {
    this.vote(replica, buf, start, end, pos, nowMs);
  }

  /** offerAt(), returning the event's slot if it has one (-1 for a stale or expired copy). */
  private vote(replica: number, buf: Buffer, start: number, end: number, pos: number, nowMs: number): number {
    const t = this.t;
    const from = start + ID_AT;
    const to = from + 1 + buf[from]! + EPOCH_BYTES;
    let s = this.streams.find(replica, buf, from, to);
    const seq = u32(buf, to) * 0x1_0000_0000 + u32(buf, to + 4);
    const priority = buf[start + 5]!;
    if (s) this.pass(s, priority, replica, seq);
    let p = s === undefined ? -1 : t.find(s, seq);
    if (p >= 0 && t.flags[p]! & DECIDED) {
      this.lateCopy(p, replica, buf, start, end, pos);
      return p;
    }
    if (p < 0) {
      const floor = s?.floors?.[priority];
      if (floor !== undefined && (seq <= floor || s!.delivered?.[priority]?.has(seq) === true)) {
        this.counters.stale++;
        this.sink.resolve(replica, pos);
        return -1;
      }
      if (f64be(buf, to + 8) + this.o.ttlMs < nowMs) {
        this.counters.expired++;
        this.sink.resolve(replica, pos);
        return -1;
      }
      // Woken first, or making room could give up its floors as the oldest idle process;
      // making room may still take its last event, and so make it idle again or close it.
      if (s) this.streams.wake(s);
      if (this.pendingSize >= this.o.pendingMax) this.evictOldestPending();
      if (!s || s.closed) {
        s = this.streams.open(replica, buf, from, to);
        this.pass(s, priority, replica, seq);
      } else this.streams.wake(s);
      p = t.add(s, seq, buf, start, end, priority, nowMs);
      this.pendingSize++;
      this.pendingOrder.push(p);
      this.pendingGens.push(t.gen[p]!);
      if (this.pendingOrder.length > 4 * this.o.pendingMax) this.compactPendingOrder();
      this.created = p;
    }
    const bit = 1 << replica;
    if (t.seenMask[p]! & bit) {
      this.counters.duplicateCopies++;
      this.sink.resolve(replica, pos);
      return p;
    }
    t.seenMask[p]! |= bit;
    if (t.mask[p] === 0 || this.isFirstVersion(p, buf, start, end)) {
      t.mask[p]! |= bit;
      this.settle(p, undefined);
      this.holdUnlessDecided(p, replica, pos);
      return p;
    }
    const others = t.othersOf(p);
    let v = others?.find((x) => sameBytes(x.rec, buf, start, end));
    if (!v) {
      v = { rec: buf.subarray(start, end), mask: 0, check: Check.Unknown };
      if (others) others.push(v);
      else t.setOthers(p, [v]);
    }
    v.mask |= bit;
    this.settle(p, v);
    this.holdUnlessDecided(p, replica, pos);
    return p;
  }

  private isFirstVersion(p: number, buf: Buffer, start: number, end: number): boolean {
    const t = this.t;
    const fat = t.fat[p]!;
    const fend = t.fend[p]!;
    return fend - fat === end - start && buf.compare(t.fbuf[p]!, fat, fend, start, end) === 0;
  }

  /**
   * A copy was added to version v of p (the first version if v is undefined): decides p if the
   * version has the copies it needs and passes the channel's check.
   */
  private settle(p: number, v: Variant | undefined): void {
    const t = this.t;
    const mask = v ? v.mask : t.mask[p]!;
    const check = this.o.check;
    const copies = popcount(mask);
    if (check === undefined) {
      if (copies >= this.o.threshold) this.decide(p, v);
      return;
    }
    const buf = v ? v.rec : t.fbuf[p]!;
    const start = v ? 0 : t.fat[p]!;
    const end = v ? v.rec.length : t.fend[p]!;
    if (copies < this.o.threshold && !(this.o.oneValidEnough && recordTimestamp(buf, start) > this.horizonMs)) return;
    let state: Check = v ? v.check : t.firstCheck[p]!;
    let report = false;
    if (state === Check.Unknown) {
      const verdict = check(buf, start, end);
      // Not judged: the next copy (or the same one, re-sent) tries again.
      if (verdict === 'unknown') {
        if (copies >= (this.o.blameQuorum ?? this.o.threshold)) this.sink.unverifiable?.(buf, start, end, this.o.checkReason?.() ?? '');
        return;
      }
      state = verdict === 'valid' ? Check.Valid : Check.Invalid;
      if (state === Check.Invalid) {
        this.counters.forged++;
        report = true;
        const reason = this.o.checkReason?.() ?? '';
        if (v) v.reason = reason;
        else t.setReason(p, reason);
      }
    }
    if (state === Check.Invalid && copies >= (this.o.blameQuorum ?? this.o.threshold)) {
      this.counters.rejected++;
      state = Check.Rejected;
      report = true;
    }
    if (v) v.check = state;
    else t.firstCheck[p] = state;
    if (report) this.sink.forged?.(buf, start, end, mask, state === Check.Rejected, (v ? v.reason : t.reasonOf(p)) ?? '');
    if (state === Check.Valid) this.decide(p, v);
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
    const s = this.streams.find(replica, buf, from, to);
    const seq = u32(buf, to) * 0x1_0000_0000 + u32(buf, to + 4);
    if (s) this.pass(s, buf[start + 5]!, replica, seq);
    const done = s === undefined ? -1 : this.t.find(s, seq);
    if (done < 0 || !(this.t.flags[done]! & DECIDED)) return false;
    this.lateCopy(done, replica, buf, start, end, pos);
    return true;
  }

  /** Drops undecided events older than pendingMs; call it from a timer. */
  sweep(nowMs: number): void {
    for (let p = this.oldestPending(); p >= 0 && nowMs - this.t.firstSeenMs[p]! >= this.o.pendingMs; p = this.oldestPending()) this.evictPending(p);
    this.ownOldFrames(nowMs);
    // Kept for the next section, the cursor must not keep the last one's read slab for long
    // (here rather than after each section: also after one that did not parse).
    this.cursor?.reset(NO_BYTES, 0);
  }

  /**
   * Gives events first seen over FRAME_VIEW_MS ago bytes of their own, so that they no longer
   * keep the slabs they arrived in: undecided ones (with no f+1 matching copies yet: replicas
   * far behind, or a publisher this config does not know), and delivered ones still waiting for
   * copies. In order of arrival, each once: those that came since the last sweep, unless they
   * were decided and every copy came first (the usual case).
   */
  private ownOldFrames(nowMs: number): void {
    const t = this.t;
    const pending = this.pendingOrder;
    for (; this.pendingViewsFrom < pending.length; this.pendingViewsFrom++) {
      const p = pending.at(this.pendingViewsFrom);
      if (t.gen[p] !== this.pendingGens.at(this.pendingViewsFrom) || t.stream[p] === undefined || t.flags[p]! & DECIDED) continue;
      if (nowMs - t.firstSeenMs[p]! < FRAME_VIEW_MS) break;
      this.ownBytes(p);
    }
    const delivered = this.deliveredOrder;
    for (; this.viewsFrom < delivered.length; this.viewsFrom++) {
      const p = delivered.at(this.viewsFrom);
      if (nowMs - t.firstSeenMs[p]! < FRAME_VIEW_MS) break;
      if (t.fbuf[p] !== undefined) this.ownBytes(p);
    }
  }

  /** Copies p's first version, and any other version or the one delivered, out of their frames. */
  private ownBytes(p: number): void {
    const t = this.t;
    // Buffer.from copies, into Node's shared pool for a record this small.
    t.fbuf[p] = Buffer.from(t.fbuf[p]!.subarray(t.fat[p]!, t.fend[p]!));
    t.fend[p] = t.fend[p]! - t.fat[p]!;
    t.fat[p] = 0;
    const won = t.wonOf(p);
    if (won !== undefined) t.setWon(p, Buffer.from(won));
    for (const v of t.othersOf(p) ?? []) v.rec = Buffer.from(v.rec);
  }

  /** Delivers the first version seen (winner undefined) or another one. */
  private decide(p: number, winner: Variant | undefined): void {
    const t = this.t;
    this.pendingSize--;
    const others = t.othersOf(p);
    if (others) {
      const versions: Variant[] = [{ rec: t.fbuf[p]!.subarray(t.fat[p]!, t.fend[p]!), mask: t.mask[p]!, check: t.firstCheck[p]! }, ...others];
      for (const v of versions) {
        if (v.mask === (winner ?? versions[0]!).mask) continue;
        if (this.publisherSigned(v.rec, 0, v.rec.length, v.check)) continue;
        for (let r = 0; r < this.o.replicas; r++) if (v.mask & (1 << r)) this.mismatches[r]!++;
      }
    }
    this.counters.delivered++;
    // The winner's own priority and timestamp: the first copy's were unchecked, and a faulty
    // replica's first copy would otherwise place this event's floor at another level.
    const wbuf = winner ? winner.rec : t.fbuf[p]!;
    const wat = winner ? 0 : t.fat[p]!;
    t.priority[p] = wbuf[wat + 5]!;
    t.timestampMs[p] = recordTimestamp(wbuf, wat);
    if (winner) this.sink.deliver(winner.rec, 0, winner.rec.length);
    else this.sink.deliver(t.fbuf[p]!, t.fat[p]!, t.fend[p]!);
    t.takeHeld(p, this.resolveHeld);
    // Remembered even after every replica's copy arrived: a reconnect makes replicas resend
    // what they sent but never saw acknowledged, and that must not deliver it twice.
    if (this.deliveredOrder.length >= this.o.deliveredMax) this.forgetOldestDelivered();
    t.flags[p]! |= winner === undefined ? DECIDED | FIRST_WON : DECIDED;
    t.setWon(p, winner?.rec);
    t.setOthers(p, undefined);
    this.incomplete++;
    this.completeIfAll(p);
    this.deliveredOrder.push(p);
  }

  /**
   * Once every replica's copy of a delivered event arrived, no copy is compared with it again.
   * Until then (fbuf kept) it counts as incomplete.
   */
  private completeIfAll(p: number): void {
    const t = this.t;
    if (t.seenMask[p] !== this.allMask || t.fbuf[p] === undefined) return;
    t.setWon(p, undefined);
    t.fbuf[p] = undefined;
    this.incomplete--;
  }

  private lateCopy(done: number, replica: number, buf: Buffer, start: number, end: number, pos: number): void {
    const t = this.t;
    const bit = 1 << replica;
    if (t.seenMask[done]! & bit) {
      this.counters.duplicateCopies++;
    } else {
      if (t.fbuf[done] !== undefined && !(t.flags[done]! & FIRST_WON ? this.isFirstVersion(done, buf, start, end) : sameBytes(t.wonOf(done)!, buf, start, end)) && !this.publisherSigned(buf, start, end, Check.Unknown)) this.mismatches[replica]!++;
      t.seenMask[done]! |= bit;
      this.completeIfAll(done);
    }
    this.sink.resolve(replica, pos);
  }

  /**
   * On a signed channel, is this version other than the delivered one signed by its publisher
   * too? Then the publisher equivocated, not the replicas that passed it on: counted and
   * reported once per version. Checked only for versions that lost, which are rare.
   */
  private publisherSigned(buf: Buffer, start: number, end: number, known: Check): boolean {
    if (!this.o.oneValidEnough || this.o.check === undefined) return false;
    const valid = known === Check.Valid || (known === Check.Unknown && this.o.check(buf, start, end) === 'valid');
    if (!valid) return false;
    this.counters.equivocations++;
    this.sink.equivocated?.(buf, start, end);
    return true;
  }

  /** The oldest still-undecided event, dropping decided and forgotten ones from the front of the FIFO. */
  private oldestPending(): number {
    const t = this.t;
    for (let p = this.pendingOrder.peek(); p >= 0; p = this.pendingOrder.peek()) {
      if (t.gen[p] === this.pendingGens.peek() && t.stream[p] !== undefined && !(t.flags[p]! & DECIDED)) return p;
      this.pendingOrder.shift();
      this.pendingGens.shift();
      if (this.pendingViewsFrom > 0) this.pendingViewsFrom--;
    }
    return -1;
  }

  private evictOldestPending(): void {
    const p = this.oldestPending();
    if (p >= 0) this.evictPending(p);
  }

  private evictPending(p: number): void {
    const t = this.t;
    const s = t.stream[p]!;
    this.pendingSize--;
    this.counters.undecided++;
    t.takeHeld(p, this.resolveHeld);
    t.remove(p);
    if (s.events === 0) this.streams.emptied(s);
  }

  private compactPendingOrder(): void {
    const t = this.t;
    this.pendingViewsFrom = 0;
    const live: number[] = [];
    for (let p = this.pendingOrder.shift(), g = this.pendingGens.shift(); p >= 0; p = this.pendingOrder.shift(), g = this.pendingGens.shift()) {
      if (t.gen[p] === g && t.stream[p] !== undefined && !(t.flags[p]! & DECIDED)) live.push(p);
    }
    for (const p of live) {
      this.pendingOrder.push(p);
      this.pendingGens.push(t.gen[p]!);
    }
  }

  private forgetOldestDelivered(): void {
    const t = this.t;
    const d = this.deliveredOrder.shift();
    if (this.viewsFrom > 0) this.viewsFrom--;
    const s = t.stream[d]!;
    if (t.fbuf[d] !== undefined) this.incomplete--;
    const floors = (s.floors ??= [-1, -1, -1, -1]); // one per priority level (PRIORITY_LEVELS); no seq is below 0
    const seq = t.seq[d]!;
    const priority = t.priority[d]!;
    if (seq > floors[priority]! && !this.passedEnough(s, priority, seq)) this.rememberDelivered(s, priority, seq);
    if (t.timestampMs[d]! > this.horizonMs) this.horizonMs = t.timestampMs[d]!;
    t.remove(d);
    if (s.events === 0) this.streams.emptied(s);
  }

  /** `replica` sent a copy of `s`'s event `seq` at `priority`: it has passed what lies below. */
  private pass(s: Stream, priority: number, replica: number, seq: number): void {
    if (priority >= PRIORITY_LEVELS) return;
    const k = priority * this.o.replicas + replica;
    if (seq > s.passed[k]!) s.passed[k] = seq;
  }

  /**
   * Whether all but floorQuorum-1 live replicas passed `seq` of `s` at `level`, so that the
   * floor may rise to it: at or below it, fewer than floorQuorum replicas may still send a
   * first copy. Raises the floor if so. The usual case, every replica keeping up, costs one
   * comparison per replica and no more.
   */
  private passedEnough(s: Stream, level: number, seq: number): boolean {
    const n = this.o.replicas;
    const at = level * n;
    let live = 0;
    let behind = 0;
    for (let r = 0; r < n; r++) {
      if (!(this.liveMask & (1 << r))) continue;
      live++;
      if (s.passed[at + r]! < seq) behind++;
    }
    if (live < this.floorQuorum || behind >= this.floorQuorum) return this.raiseFloor(s, level), false;
    s.floors![level] = seq;
    s.delivered?.[level]?.dropThrough(seq);
    return true;
  }

  /**
   * Raises the floor of `s` at `level` as far as the replicas have come: to the
   * floorQuorum-th lowest seq the live replicas have passed. For when the seq forgotten is
   * beyond it: the bits below go.
   */
  private raiseFloor(s: Stream, level: number): void {
    const n = this.o.replicas;
    const sorted = this.passedSorted;
    let m = 0;
    for (let r = 0; r < n; r++) {
      if (!(this.liveMask & (1 << r))) continue;
      const v = s.passed[level * n + r]!;
      let i = m++;
      for (; i > 0 && sorted[i - 1]! > v; i--) sorted[i] = sorted[i - 1]!;
      sorted[i] = v;
    }
    if (m < this.floorQuorum) return;
    const to = sorted[this.floorQuorum - 1]!;
    const floors = s.floors!;
    if (to <= floors[level]!) return;
    floors[level] = to;
    s.delivered?.[level]?.dropThrough(to);
  }

  /** A delivered event above its floor is forgotten: its seq is kept as a bit, or the floor passes it. */
  private rememberDelivered(s: Stream, level: number, seq: number): void {
    const bits = ((s.delivered ??= [])[level] ??= new SeqBits(this.seqBudget));
    if (bits.add(seq)) return;
    this.counters.floorsForced++;
    s.floors![level] = Math.max(s.floors![level]!, seq, bits.highest());
    bits.clear();
  }
}
