// The subscriber's voter for ordered channels (`order: channel|global`; docs/consensus.md):
// n replicas each push their copy of every envelope (src/codec/ordered.ts), and the console
// must see the one order the replicas decided, each seq once, in increasing order, whatever up
// to f of them send. A seq is decided once `threshold` replicas (f+1) sent byte-identical
// envelopes, so position and content are voted together: a faulty replica can neither alter an
// event nor move it to another seq. Copies that differ are evidence against their replica.
// Pure: no sockets, no timers; time comes in as arguments, and tick() is the subscriber's timer.
//
// Unlike the unordered voter, a decided seq may have to wait for a lower one: it is held until
// every seq below it is delivered, or until the hole has lasted gapWaitMs and is skipped (a
// hole only correct replicas can fill: a seq above it was decided, so some correct replica is
// past it). Without `from`, the start is chosen from the first seq of 2·threshold − 1 replicas
// (2f+1): their threshold-th smallest first seq. Waiting for only `threshold` of them would let
// one faulty replica that opens with a huge seq push the start past every event the others
// hold, and the voter would resolve, and so acknowledge, all of those as stale.
//
// Bounded whatever faulty replicas send: only seqs in [expected, expected + pendingMax) are held
// (pendingMax distinct seqs before the start is chosen), one version per replica and seq, and
// delivered versions are remembered for late copies for at most pendingMax seqs. A copy past
// the window is resolved at once, so correct replicas must not run further ahead than that:
// the subscriber's credits per stream must not exceed pendingMax.
//
// Protected channels check the winning version's MAC or signature (`check`) when it is
// decided; threshold copies are still needed, because the seq is the replicas' to assign. A
// winner that fails was sealed wrongly by its publisher (threshold replicas agree on it): its
// seq is passed over, counted as rejected, never delivered.

import { FitError } from '../core/index.js';
import { Deque } from '../broker/index.js';
import { ORDERED_HEADER_BYTES, readOrdered } from '../codec/index.js';
import type { CheckResult } from '../protection/index.js';

export interface OrderedVoterOptions {
  replicas: number;
  /** Byte-identical envelopes that decide a seq: f+1 for bft, 1 for cft. */
  threshold: number;
  /** Seqs held at once, decided or not; also how far past `expected` a copy is taken. */
  pendingMax: number;
  /** How long a hole below a decided seq is waited for before it is skipped. */
  gapWaitMs: number;
  /** The first seq to deliver; without it the replicas' first envelopes choose the start. */
  from?: number;
  /**
   * Protected channels: is the record at buf[start, end) authentic? 'unknown' (its publisher
   * or key is not known here) is passed over like 'invalid': the order cannot wait for it.
   */
  check?: (buf: Buffer, start: number, end: number) => CheckResult;
  checkReason?: () => string;
}

export interface OrderedSink {
  /** The event at `seq`, whose record is buf[start, end). buf is the voter's own copy. */
  deliver(seq: number, buf: Buffer, start: number, end: number): void;
  /** The copy at `pos` of `replica`'s stream needs nothing more: the subscriber may acknowledge it. */
  resolve(replica: number, pos: number): void;
  /** Seqs fromSeq..toSeq (inclusive) were given up on and will never be delivered. */
  skipped?(fromSeq: number, toSeq: number): void;
  /** The event decided at `seq` failed the protection check; it is passed over. */
  rejected?(seq: number, buf: Buffer, start: number, end: number, mask: number, reason: string): void;
}

export interface OrderedVoterCounters {
  delivered: number;
  /** Seqs given up on (holes skipped after gapWaitMs). */
  skipped: number;
  /** Copies below the start, or for a seq delivered or skipped and no longer remembered. */
  stale: number;
  /** Copies too far past `expected` to hold (or, before the start, past pendingMax seqs). */
  ahead: number;
  /** The same replica sending the same version of a seq again. */
  duplicateCopies: number;
  /** Per replica: copies that differ from the decided version or from its own first version. */
  mismatches: number[];
  /** Per replica: sections abandoned at an envelope that does not parse. */
  malformed: number[];
  /** Decided seqs whose event failed the protection check: the publisher sealed it wrongly. */
  rejected: number;
}

/** Replica sets are bitmasks; 30 keeps `1 << r` a positive small integer. */
export const ORDERED_VOTER_REPLICAS_MAX = 30;

/** One distinct envelope for a seq, the replicas whose first copy it was, and their copies. */
interface Version {
  env: Buffer;
  mask: number;
  /** (replica, pos) pairs held until the seq is delivered or skipped, or this version loses. */
  held: number[];
  /** Why the winner failed the protection check, if it did: its seq is passed over. */
  rejected?: string;
}

/** A seq held: undecided (winner undefined) or decided and waiting for the seqs below it. */
interface Entry {
  seq: number;
  versions: Version[];
  /** Replicas that sent any copy of this seq. */
  seen: number;
  winner: Version | undefined;
}

/** A delivered seq, kept to judge copies that arrive after it. */
interface Delivered {
  seq: number;
  env: Buffer;
  /** Replicas whose first copy was the delivered version. */
  won: number;
  seen: number;
}

function popcount(x: number): number {
  let c = 0;
  for (let v = x; v; v &= v - 1) c++;
  return c;
}

function sameBytes(env: Buffer, buf: Buffer, start: number, end: number): boolean {
  return env.length === end - start && buf.compare(env, 0, env.length, start, end) === 0;
}

function isCount(x: number, min: number): boolean {
  return Number.isSafeInteger(x) && x >= min;
}

export class OrderedVoter {
  readonly counters: OrderedVoterCounters;
  private readonly entries = new Map<number, Entry>();
  /** Entries decided but not delivered: while there are any, `expected` is a hole. */
  private decidedHeld = 0;
  private next: number | undefined;
  /** When the current hole at `next` was first seen under a decided seq. */
  private holeSinceMs: number | undefined;
  /** Per replica, the seq of its first envelope; only used to choose the start. */
  private readonly firstSeq: (number | undefined)[];
  private firstSeen = 0;
  /** Replicas whose first seq choose the start: 2·threshold − 1 (2f+1; 1 for cft), see the top. */
  private readonly startReplicas: number;
  private readonly recent = new Map<number, Delivered>();
  private readonly recentOrder = new Deque<Delivered>();
  private readonly allMask: number;

  constructor(
    private readonly o: OrderedVoterOptions,
    private readonly sink: OrderedSink,
  ) {
    const bad = (what: string): FitError => new FitError('FIT_ERR_INTERNAL', `invariant broken: ordered voter ${what}; this is a bug, please report it`);
    if (!isCount(o.replicas, 1) || o.replicas > ORDERED_VOTER_REPLICAS_MAX) throw bad(`replicas ${o.replicas} outside 1..${ORDERED_VOTER_REPLICAS_MAX}`);
    if (!isCount(o.threshold, 1) || o.threshold > o.replicas) throw bad(`threshold ${o.threshold} outside 1..${o.replicas}`);
    if (!isCount(o.pendingMax, 1)) throw bad(`pendingMax ${o.pendingMax} is not a positive integer`);
    if (!(o.gapWaitMs >= 0 && Number.isFinite(o.gapWaitMs))) throw bad(`gapWaitMs ${o.gapWaitMs} is not a finite number >= 0`);
    if (o.from !== undefined && !isCount(o.from, 1)) throw bad(`from ${o.from} is not a positive safe integer`);
    this.allMask = (1 << o.replicas) - 1;
    this.counters = { delivered: 0, skipped: 0, stale: 0, ahead: 0, duplicateCopies: 0, mismatches: new Array<number>(o.replicas).fill(0), malformed: new Array<number>(o.replicas).fill(0), rejected: 0 };
    this.firstSeq = new Array<number | undefined>(o.replicas).fill(undefined);
    this.startReplicas = Math.min(o.replicas, 2 * o.threshold - 1);
    this.next = o.from;
  }

  /** Seqs held: decided but waiting for a lower one, or undecided. */
  get pending(): number {
    return this.entries.size;
  }

  /** The next seq to deliver; undefined until the start is chosen. */
  get expected(): number | undefined {
    return this.next;
  }

  /**
   * Offers the envelopes in buf[start, end) of `replica`'s stream, the first at position
   * `firstPos`. buf may be reused once this returns. Never throws for what a replica sent: at an
   * envelope that does not parse it counts `malformed` and drops the rest of the section (those
   * positions are never resolved: only a faulty replica sends them).
   */
  offerSection(replica: number, buf: Buffer, start: number, end: number, firstPos: number, nowMs: number): void {
    if (!Number.isInteger(replica) || replica < 0 || replica >= this.o.replicas || start < 0 || end > buf.length) {
      throw new FitError('FIT_ERR_INTERNAL', `invariant broken: ordered voter offered replica ${replica}, bytes [${start}, ${end}) of ${buf.length}; this is a bug, please report it`);
    }
    let pos = firstPos;
    for (let at = start; at < end; pos++) {
      let seq: number;
      let envEnd: number;
      try {
        const v = readOrdered(buf, at, end);
        seq = v.seq;
        envEnd = v.end;
      } catch (e) {
        if (!(e instanceof FitError) || e.code !== 'FIT_ERR_MALFORMED') throw e;
        this.counters.malformed[replica]!++;
        break;
      }
      if (this.firstSeq[replica] === undefined) this.noteFirst(replica, seq, nowMs);
      this.vote(replica, seq, buf, at, envEnd, pos);
      at = envEnd;
    }
    this.drain(nowMs);
    this.checkHole(nowMs);
  }

  /**
   * Nothing below `seq` can be delivered any more (the caller learned that fewer than
   * `threshold` replicas still hold it): give those seqs up now, counted as skipped, instead of
   * waiting gapWaitMs for each hole.
   */
  skipTo(seq: number, nowMs: number): void {
    const from = this.next;
    if (from === undefined || !isCount(seq, 1) || seq <= from) return;
    this.holeSinceMs = undefined;
    this.giveUp(from, Math.min(seq, from + this.o.pendingMax), nowMs);
    this.checkHole(nowMs);
  }

  /** Skips a hole that has waited gapWaitMs; call it periodically. */
  tick(nowMs: number): void {
    this.checkHole(nowMs);
  }

  private vote(replica: number, seq: number, buf: Buffer, start: number, end: number, pos: number): void {
    const next = this.next;
    if (next !== undefined && seq < next) return this.lateCopy(replica, seq, buf, start, end, pos);
    let p = this.entries.get(seq);
    if (!p) {
      const full = next === undefined ? this.entries.size >= this.o.pendingMax : seq >= next + this.o.pendingMax;
      if (full) {
        this.counters.ahead++;
        return this.sink.resolve(replica, pos);
      }
      p = { seq, versions: [], seen: 0, winner: undefined };
      this.entries.set(seq, p);
    }
    const bit = 1 << replica;
    if (p.seen & bit) return this.againCopy(p, replica, buf, start, end, pos);
    p.seen |= bit;
    let v = p.versions.find((x) => sameBytes(x.env, buf, start, end));
    if (p.winner !== undefined && v !== p.winner) {
      this.counters.mismatches[replica]!++;
      return this.sink.resolve(replica, pos);
    }
    if (!v) p.versions.push((v = { env: Buffer.from(buf.subarray(start, end)), mask: 0, held: [] }));
    v.mask |= bit;
    v.held.push(replica, pos);
    if (p.winner === undefined && popcount(v.mask) >= this.o.threshold) this.decide(p, v);
  }

  /** A second copy of a held seq from the same replica: only its first copy votes. */
  private againCopy(p: Entry, replica: number, buf: Buffer, start: number, end: number, pos: number): void {
    const own = p.versions.find((x) => x.mask & (1 << replica));
    if (own !== undefined && sameBytes(own.env, buf, start, end)) this.counters.duplicateCopies++;
    else this.counters.mismatches[replica]!++;
    this.sink.resolve(replica, pos);
  }

  /** A copy of a seq below `expected`: judged against the delivered version while remembered. */
  private lateCopy(replica: number, seq: number, buf: Buffer, start: number, end: number, pos: number): void {
    const d = this.recent.get(seq);
    if (!d) {
      this.counters.stale++;
      return this.sink.resolve(replica, pos);
    }
    const bit = 1 << replica;
    const same = sameBytes(d.env, buf, start, end);
    if (d.seen & bit) {
      if (same && d.won & bit) this.counters.duplicateCopies++;
      else this.counters.mismatches[replica]!++;
    } else {
      d.seen |= bit;
      if (same) d.won |= bit;
      else this.counters.mismatches[replica]!++;
      if (d.seen === this.allMask) this.recent.delete(seq);
    }
    this.sink.resolve(replica, pos);
  }

  /** `winner` reached threshold: every replica whose first copy differs is blamed, its copies let go. */
  private decide(p: Entry, winner: Version): void {
    for (const v of p.versions) {
      if (v === winner) continue;
      for (let r = 0; r < this.o.replicas; r++) if (v.mask & (1 << r)) this.counters.mismatches[r]!++;
      this.resolveHeld(v);
    }
    p.versions = [winner];
    p.winner = winner;
    if (this.o.check !== undefined && this.o.check(winner.env, ORDERED_HEADER_BYTES, winner.env.length) !== 'valid') winner.rejected = this.o.checkReason?.() ?? 'it failed its check';
    this.decidedHeld++;
  }

  private resolveHeld(v: Version): void {
    const held = v.held;
    v.held = [];
    for (let i = 0; i < held.length; i += 2) this.sink.resolve(held[i]!, held[i + 1]!);
  }

  private noteFirst(replica: number, seq: number, nowMs: number): void {
    this.firstSeq[replica] = seq;
    if (this.next !== undefined || ++this.firstSeen < this.startReplicas) return;
    const firsts = this.firstSeq.filter((s): s is number => s !== undefined).sort((a, b) => a - b);
    this.startAt(firsts[this.o.threshold - 1]!, nowMs);
  }

  /** Lets go of what was held before the start and outside the window it opens. */
  private startAt(start: number, nowMs: number): void {
    this.next = start;
    for (const p of [...this.entries.values()]) {
      if (p.seq >= start && p.seq < start + this.o.pendingMax) continue;
      for (const v of p.versions) {
        if (p.seq < start) this.counters.stale += v.held.length / 2;
        else this.counters.ahead += v.held.length / 2;
      }
      this.drop(p);
    }
    this.drain(nowMs);
  }

  private drop(p: Entry): void {
    this.entries.delete(p.seq);
    if (p.winner !== undefined) this.decidedHeld--;
    for (const v of p.versions) this.resolveHeld(v);
  }

  /** Delivers decided seqs from `expected` on; a new hole under a decided seq starts its wait now. */
  private drain(nowMs: number): void {
    const from = this.next;
    if (from === undefined) return;
    for (let p = this.entries.get(this.next!); p?.winner !== undefined; p = this.entries.get(this.next!)) this.deliver(p);
    if (this.next !== from) this.holeSinceMs = undefined;
    if (this.decidedHeld === 0) this.holeSinceMs = undefined;
    else this.holeSinceMs ??= nowMs;
  }

  private deliver(p: Entry): void {
    const w = p.winner!;
    this.entries.delete(p.seq);
    this.decidedHeld--;
    this.next = p.seq + 1;
    if (w.rejected === undefined) this.counters.delivered++;
    this.remember({ seq: p.seq, env: w.env, won: w.mask, seen: p.seen });
    if (w.rejected !== undefined) {
      this.counters.rejected++;
      this.sink.rejected?.(p.seq, w.env, ORDERED_HEADER_BYTES, w.env.length, w.mask, w.rejected);
    } else {
      this.sink.deliver(p.seq, w.env, ORDERED_HEADER_BYTES, w.env.length);
    }
    this.resolveHeld(w);
  }

  private remember(d: Delivered): void {
    if (d.seen === this.allMask) return;
    this.recent.set(d.seq, d);
    this.recentOrder.push(d);
    while (this.recentOrder.length > this.o.pendingMax) {
      const old = this.recentOrder.shift()!;
      if (this.recent.get(old.seq) === old) this.recent.delete(old.seq);
    }
  }

  private checkHole(nowMs: number): void {
    while (this.holeSinceMs !== undefined && nowMs - this.holeSinceMs >= this.o.gapWaitMs) this.skipHole(nowMs);
  }

  /** Gives up on every seq from `expected` to the lowest decided one above it. */
  private skipHole(nowMs: number): void {
    const from = this.next!;
    let to = from;
    // decidedHeld > 0, and every held seq lies in [from, from + pendingMax).
    while (this.entries.get(to)?.winner === undefined) {
      if (++to >= from + this.o.pendingMax) throw new FitError('FIT_ERR_INTERNAL', `invariant broken: ordered voter found no decided seq above hole ${from}; this is a bug, please report it`);
    }
    this.giveUp(from, to, nowMs);
  }

  /** Gives up on seqs [from, to): dropped (their copies resolved), counted, reported; delivery goes on from `to`. */
  private giveUp(from: number, to: number, nowMs: number): void {
    for (let s = from; s < to; s++) {
      const p = this.entries.get(s);
      if (p) this.drop(p);
    }
    this.next = to;
    this.counters.skipped += to - from;
    this.sink.skipped?.(from, to - 1);
    this.drain(nowMs);
  }
}
