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

import { FitError } from '../core/index.js';
import { Deque } from '../broker/index.js';
import { RecordCursor, f64be, u32 } from '../codec/index.js';
import type { CheckResult } from '../protection/index.js';
import { StreamIndex, type Stream } from './voter-streams.js';

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

interface Variant {
  rec: Buffer;
  mask: number;
  check: Check;
  /** Why the check failed. */
  reason?: string;
}

/**
 * One event, undecided and then delivered: the same object, so a copy costs at most one lookup
 * and an event one allocation. The first version seen stays where it arrived (fbuf); once
 * decided, the delivered version is kept for comparing late copies until every replica's copy
 * arrived.
 */
interface Entry {
  decided: boolean;
  stream: Stream<Entry>;
  /**
   * The first version's bytes, fbuf[fat, fend): the frame it arrived in, which later copies
   * are compared with in place. Undefined once nothing more can match it: every replica's copy
   * arrived, or the event was dropped or forgotten.
   */
  fbuf: Buffer | undefined;
  fat: number;
  fend: number;
  /** The entry created from the record right after this one in the same section: a run. */
  next: Entry | undefined;
  /** Replicas whose copy equals the first version. */
  mask: number;
  /** The first version's protection check, and why it failed. */
  firstCheck: Check;
  firstReason?: string;
  /** The first version is the delivered one. */
  firstWon: boolean;
  /** The delivered version when it is not the first one. */
  rec: Buffer | undefined;
  /** Versions that differ from the first: only a faulty replica makes these. */
  others: Variant[] | undefined;
  seenMask: number;
  /**
   * The copies received while undecided, to resolve once decided: the first inline (with f = 1
   * the second copy usually decides), any others as flat (replica, pos) pairs.
   */
  heldReplica: number;
  heldPos: number;
  moreHeld: number[] | undefined;
  firstSeenMs: number;
  seq: number;
  /** The delivered version's priority and timestamp (before that, the first copy's, unchecked). */
  priority: number;
  timestampMs: number;
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

function sameBytes(rec: Buffer, buf: Buffer, start: number, end: number): boolean {
  return rec.length === end - start && buf.compare(rec, 0, rec.length, start, end) === 0;
}

function isFirstVersion(p: Entry, buf: Buffer, start: number, end: number): boolean {
  return p.fend - p.fat === end - start && buf.compare(p.fbuf!, p.fat, p.fend, start, end) === 0;
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
  /** Undecided and delivered events, by publishing process and then seq. */
  private readonly streams: StreamIndex<Entry>;
  private pendingSize = 0;
  private readonly pendingOrder = new Deque<Entry>();
  private readonly deliveredOrder = new Deque<Entry>();
  private readonly allMask: number;
  private incomplete = 0;
  /** Per replica, the entry its next copy is expected to be (the run it is in the middle of). */
  private readonly expect: (Entry | undefined)[];
  /** Per replica, how many records the next run comparison tries. */
  private readonly span: number[];
  /** The entry the last offerAt() created, if it created one. */
  private created: Entry | undefined;
  /** Reused by every offerSection() call (a section of one event each, at a modest rate). */
  private cursor: RecordCursor | undefined;
  /** One valid copy is enough only for events timestamped after this (see the top). */
  private horizonMs: number;
  readonly mismatches: number[];
  readonly counters: VoterCounters = { delivered: 0, expired: 0, undecided: 0, stale: 0, duplicateCopies: 0, forged: 0, rejected: 0, equivocations: 0 };

  constructor(
    private readonly o: VoterOptions,
    private readonly sink: VoterSink,
  ) {
    if (o.threshold < 1 || o.threshold > o.replicas || o.replicas > VOTER_REPLICAS_MAX) {
      throw new FitError('FIT_ERR_INTERNAL', `invariant broken: voter threshold ${o.threshold} outside 1..${o.replicas}, or more than ${VOTER_REPLICAS_MAX} replicas`);
    }
    this.allMask = (1 << o.replicas) - 1;
    this.horizonMs = o.horizonMs ?? -Infinity;
    this.mismatches = new Array<number>(o.replicas).fill(0);
    this.expect = new Array<Entry | undefined>(o.replicas).fill(undefined);
    this.span = new Array<number>(o.replicas).fill(RUN_RECORDS_MAX);
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
   * Offers every record of [from, to) of a replica's frame, the first at position `firstPos`
   * of its stream. Throws FIT_ERR_MALFORMED or FIT_ERR_EVENT_TOO_LARGE at the first record
   * that does not parse; the records before it still count.
   */
  offerSection(replica: number, buf: Buffer, from: number, to: number, firstPos: number, nowMs: number, eventBytesMax: number): void {
    let at = from;
    let pos = firstPos;
    /** The entry the previous record of this section created: the one to link the next to. */
    let prevCreated: Entry | undefined;
    let cursor: RecordCursor | undefined;
    while (at < to) {
      const head = this.expect[replica];
      if (head?.fbuf !== undefined) {
        const n = this.matchRun(head, buf, at, to, this.span[replica]!);
        if (n > 0) {
          at = this.markRun(head, n, replica, buf, at, pos, nowMs);
          pos += n;
          this.span[replica] = Math.min(RUN_RECORDS_MAX, 2 * n);
          prevCreated = undefined;
          continue;
        }
      }
      this.span[replica] = 1;
      if (cursor === undefined) cursor = (this.cursor ??= new RecordCursor(buf, at, eventBytesMax, to)).reset(buf, at, to);
      else cursor.seek(at);
      cursor.next();
      this.created = undefined;
      const p = this.vote(replica, buf, cursor.start, cursor.end, pos++, nowMs);
      const created = this.created as Entry | undefined;
      if (created && prevCreated?.fbuf === buf && prevCreated.fend === cursor.start) prevCreated.next = created;
      prevCreated = created;
      this.expect[replica] = created ? undefined : p?.next;
      at = cursor.end;
    }
  }

  /**
   * How many records of the run starting at `head` (at most `span`) equal buf from `at` on,
   * compared in one memcmp; 0 if they do not. Stops where the run stops being comparable.
   */
  private matchRun(head: Entry, buf: Buffer, at: number, to: number, span: number): number {
    const fbuf = head.fbuf!;
    let n = 0;
    let end = head.fat;
    for (let e: Entry | undefined = head; e !== undefined && e.fbuf === fbuf && e.fat === end && n < span; e = e.next) {
      if (at + (e.fend - head.fat) > to) break;
      end = e.fend;
      n++;
    }
    if (n === 0 || buf.compare(fbuf, head.fat, end, at, at + (end - head.fat)) !== 0) return 0;
    return n;
  }

  /** Counts `n` records of a matched run as copies from `replica`; returns where they end in buf. */
  private markRun(head: Entry, n: number, replica: number, buf: Buffer, at: number, pos: number, nowMs: number): number {
    const base = head.fat;
    let e: Entry | undefined = head;
    let end = at;
    for (let i = 0; i < n; i++) {
      const p: Entry = e!;
      e = p.next;
      const start = at + (p.fat - base);
      end = at + (p.fend - base);
      // Deciding an earlier event of the run may have forgotten this one (tiny deliveredMax):
      // then it takes the ordinary path, as if it had not been in a run.
      if (p.fbuf === undefined) this.vote(replica, buf, start, end, pos + i, nowMs);
      else this.firstVersionCopy(p, replica, pos + i);
    }
    this.expect[replica] = e;
    return end;
  }

  /** A copy from `replica` known to equal p's first version. */
  private firstVersionCopy(p: Entry, replica: number, pos: number): void {
    const bit = 1 << replica;
    if (p.seenMask & bit) {
      this.counters.duplicateCopies++;
      return this.sink.resolve(replica, pos);
    }
    p.seenMask |= bit;
    if (p.decided) {
      if (!p.firstWon) this.mismatches[replica]!++;
      this.completeIfAll(p);
      return this.sink.resolve(replica, pos);
    }
    this.hold(p, replica, pos);
    p.mask |= bit;
    this.settle(p, undefined);
  }

  /**
   * offer() for a record at [start, end) of a received frame. Most copies are compared and
   * dropped; the record's bytes are kept in place, in the frame, only when the voter keeps it.
   */
  offerAt(replica: number, buf: Buffer, start: number, end: number, pos: number, nowMs: number): void {
    this.vote(replica, buf, start, end, pos, nowMs);
  }

  /** offerAt(), returning the event's entry if it has one (not for a stale or expired copy). */
  private vote(replica: number, buf: Buffer, start: number, end: number, pos: number, nowMs: number): Entry | undefined {
    const from = start + ID_AT;
    const to = from + 1 + buf[from]! + EPOCH_BYTES;
    let s = this.streams.find(replica, buf, from, to);
    const seq = u32(buf, to) * 0x1_0000_0000 + u32(buf, to + 4);
    let p = s?.events.get(seq);
    if (p?.decided) {
      this.lateCopy(p, replica, buf, start, end, pos);
      return p;
    }
    if (!p) {
      const priority = buf[start + 5]!;
      const floor = s?.floors?.[priority];
      if (floor !== undefined && seq <= floor) {
        this.counters.stale++;
        this.sink.resolve(replica, pos);
        return undefined;
      }
      if (f64be(buf, to + 8) + this.o.ttlMs < nowMs) {
        this.counters.expired++;
        this.sink.resolve(replica, pos);
        return undefined;
      }
      // Woken first, or making room could give up its floors as the oldest idle process;
      // making room may still take its last event, and so make it idle again or close it.
      if (s) this.streams.wake(s);
      if (this.pendingSize >= this.o.pendingMax) this.evictOldestPending();
      if (!s || s.closed) s = this.streams.open(replica, buf, from, to);
      else this.streams.wake(s);
      p = {
        decided: false,
        stream: s,
        fbuf: buf,
        fat: start,
        fend: end,
        next: undefined,
        mask: 0,
        firstCheck: Check.Unknown,
        firstWon: false,
        rec: undefined,
        others: undefined,
        seenMask: 0,
        heldReplica: -1,
        heldPos: 0,
        moreHeld: undefined,
        firstSeenMs: nowMs,
        seq,
        priority,
        timestampMs: 0,
      };
      s.events.set(seq, p);
      this.pendingSize++;
      this.pendingOrder.push(p);
      if (this.pendingOrder.length > 4 * this.o.pendingMax) this.compactPendingOrder();
      this.created = p;
    }
    const bit = 1 << replica;
    if (p.seenMask & bit) {
      this.counters.duplicateCopies++;
      this.sink.resolve(replica, pos);
      return p;
    }
    p.seenMask |= bit;
    this.hold(p, replica, pos);
    if (p.mask === 0 || isFirstVersion(p, buf, start, end)) {
      p.mask |= bit;
      this.settle(p, undefined);
      return p;
    }
    let v = p.others?.find((x) => sameBytes(x.rec, buf, start, end));
    if (!v) (p.others ??= []).push((v = { rec: buf.subarray(start, end), mask: 0, check: Check.Unknown }));
    v.mask |= bit;
    this.settle(p, v);
    return p;
  }

  /**
   * A copy was added to version v of p (the first version if v is undefined): decides p if the
   * version has the copies it needs and passes the channel's check.
   */
  private settle(p: Entry, v: Variant | undefined): void {
    const mask = v ? v.mask : p.mask;
    const check = this.o.check;
    const copies = popcount(mask);
    if (check === undefined) {
      if (copies >= this.o.threshold) this.decide(p, v);
      return;
    }
    const buf = v ? v.rec : p.fbuf!;
    const start = v ? 0 : p.fat;
    const end = v ? v.rec.length : p.fend;
    if (copies < this.o.threshold && !(this.o.oneValidEnough && recordTimestamp(buf, start) > this.horizonMs)) return;
    let state = v ? v.check : p.firstCheck;
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
        else p.firstReason = reason;
      }
    }
    if (state === Check.Invalid && copies >= (this.o.blameQuorum ?? this.o.threshold)) {
      this.counters.rejected++;
      state = Check.Rejected;
      report = true;
    }
    if (v) v.check = state;
    else p.firstCheck = state;
    if (report) this.sink.forged?.(buf, start, end, mask, state === Check.Rejected, (v ? v.reason : p.firstReason) ?? '');
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
    const done = this.streams.find(replica, buf, from, to)?.events.get(u32(buf, to) * 0x1_0000_0000 + u32(buf, to + 4));
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
      const versions: Variant[] = [{ rec: p.fbuf!.subarray(p.fat, p.fend), mask: p.mask, check: p.firstCheck }, ...p.others];
      for (const v of versions) {
        if (v.mask === (winner ?? versions[0]!).mask) continue;
        if (this.publisherSigned(v.rec, 0, v.rec.length, v.check)) continue;
        for (let r = 0; r < this.o.replicas; r++) if (v.mask & (1 << r)) this.mismatches[r]!++;
      }
    }
    this.counters.delivered++;
    // The winner's own priority and timestamp: the first copy's were unchecked, and a faulty
    // replica's first copy would otherwise place this event's floor at another level.
    const wbuf = winner ? winner.rec : p.fbuf!;
    const wat = winner ? 0 : p.fat;
    p.priority = wbuf[wat + 5]!;
    p.timestampMs = recordTimestamp(wbuf, wat);
    if (winner) this.sink.deliver(winner.rec, 0, winner.rec.length);
    else this.sink.deliver(p.fbuf!, p.fat, p.fend);
    this.resolveCopies(p);
    // Remembered even after every replica's copy arrived: a reconnect makes replicas resend
    // what they sent but never saw acknowledged, and that must not deliver it twice.
    if (this.deliveredOrder.length >= this.o.deliveredMax) this.forgetOldestDelivered();
    p.decided = true;
    p.firstWon = winner === undefined;
    p.rec = winner?.rec;
    p.others = undefined;
    this.incomplete++;
    this.completeIfAll(p);
    this.deliveredOrder.push(p);
  }

  /**
   * Once every replica's copy of a delivered event arrived, no copy is compared with it again.
   * Until then (fbuf kept) it counts as incomplete.
   */
  private completeIfAll(p: Entry): void {
    if (p.seenMask !== this.allMask || p.fbuf === undefined) return;
    p.rec = undefined;
    p.fbuf = undefined;
    this.incomplete--;
  }

  private lateCopy(done: Entry, replica: number, buf: Buffer, start: number, end: number, pos: number): void {
    const bit = 1 << replica;
    if (done.seenMask & bit) {
      this.counters.duplicateCopies++;
    } else {
      if (done.fbuf !== undefined && !(done.firstWon ? isFirstVersion(done, buf, start, end) : sameBytes(done.rec!, buf, start, end)) && !this.publisherSigned(buf, start, end, Check.Unknown)) this.mismatches[replica]!++;
      done.seenMask |= bit;
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

  private hold(p: Entry, replica: number, pos: number): void {
    if (p.heldReplica < 0) {
      p.heldReplica = replica;
      p.heldPos = pos;
    } else {
      (p.moreHeld ??= []).push(replica, pos);
    }
  }

  /** Resolves the copies held while undecided; they are not held any more. */
  private resolveCopies(p: Entry): void {
    if (p.heldReplica >= 0) this.sink.resolve(p.heldReplica, p.heldPos);
    const more = p.moreHeld;
    if (more) for (let i = 0; i < more.length; i += 2) this.sink.resolve(more[i]!, more[i + 1]!);
    p.heldReplica = -1;
    p.moreHeld = undefined;
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
    p.fbuf = undefined;
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
    if (d.fbuf !== undefined) this.incomplete--;
    d.rec = undefined;
    d.fbuf = undefined;
    const floors = (s.floors ??= [-1, -1, -1, -1]); // one per priority level; no seq is below 0
    const floor = floors[d.priority];
    if (floor === undefined || d.seq > floor) floors[d.priority] = d.seq;
    if (d.timestampMs > this.horizonMs) this.horizonMs = d.timestampMs;
    if (s.events.size === 0) this.streams.emptied(s);
  }
}
