// The voter's events as columns of typed arrays, found by (publishing process, seq) through an
// open-addressing index, instead of an object per event in a Map per process. Each event
// lived until deliveredMax newer ones pushed it out (100,000 by default), long enough to be
// promoted to V8's old generation and marked by every major GC while it lived: in the
// subscribers' perf samples marking took 12-14 % and Map lookups 11 % (docs/performance.md,
// session 25). Numbers in typed arrays are never looked into by the collector, and a slot is
// reused as soon as its event is forgotten. Written by hand: no library keeps a free-listed
// struct-of-arrays with an integer-keyed index, and a Map<number, number> would keep the
// lookups this replaces.
//
// A slot is named by its index; a slot freed and handed out again names another event. Holders
// of a slot that may outlive its event keep its generation (gen) too, and compare it, unless
// what they do with a slot is safe for whatever event it names (the voter's run heads: see
// voter.ts).
//
// The index hashes with a seed drawn per table, so a faulty replica choosing seqs cannot aim
// them at one probe chain of ours (V8's Maps hash integer keys without a seed).

import { randomInt } from 'node:crypto';
import { grown } from '../core/index.js';
import type { Stream } from './voter-streams.js';

/** Flags of a slot. */
export const DECIDED = 1;
/** The first version seen is the one delivered. */
export const FIRST_WON = 2;
/** The slot has entries in the rare side tables (others, rec, reasons, moreHeld). */
const RARE = 4;

const INITIAL_SLOTS = 64;

/** A version of an event other than the first one seen: only a faulty replica makes these. */
export interface Variant {
  rec: Buffer;
  mask: number;
  check: number;
  /** Why the check failed. */
  reason?: string;
}

export class EventTable {
  /** Where the first version's bytes lie, fbuf[fat, fend): the frame it arrived in. */
  fbuf: (Buffer | undefined)[] = [];
  fat = new Int32Array(INITIAL_SLOTS);
  fend = new Int32Array(INITIAL_SLOTS);
  /** The slot created from the record right after this one in the same section (a run), or -1. */
  next = new Int32Array(INITIAL_SLOTS);
  /** Replicas whose copy equals the first version. */
  mask = new Int32Array(INITIAL_SLOTS);
  /** Replicas that sent any copy. */
  seenMask = new Int32Array(INITIAL_SLOTS);
  /**
   * The first two copies held while undecided (replica -1: none), inline because the copy
   * that decides is never held: f copies wait, one with f = 1 and two with f = 2. Any more
   * (mismatching versions, checks that cannot run yet) are in moreHeld.
   */
  heldReplica = new Int32Array(INITIAL_SLOTS);
  heldPos = new Float64Array(INITIAL_SLOTS);
  heldReplica2 = new Int32Array(INITIAL_SLOTS);
  heldPos2 = new Float64Array(INITIAL_SLOTS);
  firstSeenMs = new Float64Array(INITIAL_SLOTS);
  seq = new Float64Array(INITIAL_SLOTS);
  /** The delivered version's priority and timestamp (before that, the first copy's, unchecked). */
  priority = new Uint8Array(INITIAL_SLOTS);
  timestampMs = new Float64Array(INITIAL_SLOTS);
  /** The first version's protection check (the voter's Check). */
  firstCheck = new Uint8Array(INITIAL_SLOTS);
  flags = new Uint8Array(INITIAL_SLOTS);
  /** Bumped each time the slot is freed. */
  gen = new Int32Array(INITIAL_SLOTS);
  stream: (Stream | undefined)[] = [];
  private hash = new Int32Array(INITIAL_SLOTS);
  private free = new Int32Array(INITIAL_SLOTS);
  private freeTop = 0;
  private used = 0;
  private liveSlots = 0;
  /** Slot + 1 per position, 0 for empty; a power of two at least twice the slots. */
  private index = new Int32Array(2 * INITIAL_SLOTS);
  private indexMask = 2 * INITIAL_SLOTS - 1;
  // Rare: only versions that differ, failed checks and copies past the first while undecided.
  private readonly others = new Map<number, Variant[]>();
  private readonly won = new Map<number, Buffer>();
  private readonly reasons = new Map<number, string>();
  private readonly moreHeld = new Map<number, number[]>();

  /** `seed` is for tests that replay a case; otherwise each table draws its own. */
  constructor(private readonly seed = randomInt(0x7fff_ffff)) {}

  get live(): number {
    return this.liveSlots;
  }

  get capacity(): number {
    return this.fat.length;
  }

  /** The slot of `stream`'s event `seq`, or -1. */
  find(stream: Stream, seq: number): number {
    const h = this.hashOf(stream, seq);
    for (let i = h & this.indexMask; ; i = (i + 1) & this.indexMask) {
      const e = this.index[i]!;
      if (e === 0) return -1;
      const s = e - 1;
      if (this.hash[s] === h && this.seq[s] === seq && this.stream[s] === stream) return s;
    }
  }

  /**
   * A new undecided event, its first version at buf[fat, fend); the caller made sure `stream`
   * has no event `seq`.
   */
  add(stream: Stream, seq: number, buf: Buffer, fat: number, fend: number, priority: number, nowMs: number): number {
    let s: number;
    if (this.freeTop > 0) s = this.free[--this.freeTop]!;
    else {
      if (this.used === this.fat.length) this.resize(this.fat.length * 2);
      s = this.used++;
    }
    this.liveSlots++;
    stream.events++;
    this.stream[s] = stream;
    this.seq[s] = seq;
    this.fbuf[s] = buf;
    this.fat[s] = fat;
    this.fend[s] = fend;
    this.next[s] = -1;
    this.mask[s] = 0;
    this.seenMask[s] = 0;
    this.heldReplica[s] = -1;
    this.heldReplica2[s] = -1;
    this.firstSeenMs[s] = nowMs;
    this.priority[s] = priority;
    this.timestampMs[s] = 0;
    this.firstCheck[s] = 0;
    this.flags[s] = 0;
    const h = this.hashOf(stream, seq);
    this.hash[s] = h;
    let i = h & this.indexMask;
    while (this.index[i] !== 0) i = (i + 1) & this.indexMask;
    this.index[i] = s + 1;
    return s;
  }

  /** Forgets slot `s`'s event: it is found no more, and the slot may name another. */
  remove(s: number): void {
    this.unindex(s);
    this.stream[s]!.events--;
    this.stream[s] = undefined;
    this.fbuf[s] = undefined;
    if (this.flags[s]! & RARE) {
      this.others.delete(s);
      this.won.delete(s);
      this.reasons.delete(s);
      this.moreHeld.delete(s);
    }
    this.flags[s] = 0;
    this.gen[s]!++;
    this.liveSlots--;
    this.free[this.freeTop++] = s;
  }

  othersOf(s: number): Variant[] | undefined {
    return this.flags[s]! & RARE ? this.others.get(s) : undefined;
  }

  setOthers(s: number, v: Variant[] | undefined): void {
    this.setRare(this.others, s, v);
  }

  /** The delivered version when it is not the first one. */
  wonOf(s: number): Buffer | undefined {
    return this.flags[s]! & RARE ? this.won.get(s) : undefined;
  }

  setWon(s: number, rec: Buffer | undefined): void {
    this.setRare(this.won, s, rec);
  }

  /** Why the first version's check failed. */
  reasonOf(s: number): string | undefined {
    return this.flags[s]! & RARE ? this.reasons.get(s) : undefined;
  }

  setReason(s: number, reason: string): void {
    this.setRare(this.reasons, s, reason);
  }

  /** Holds the copy at `pos` of `replica`'s stream until the event is decided or dropped. */
  hold(s: number, replica: number, pos: number): void {
    if (this.heldReplica[s]! < 0) {
      this.heldReplica[s] = replica;
      this.heldPos[s] = pos;
      return;
    }
    if (this.heldReplica2[s]! < 0) {
      this.heldReplica2[s] = replica;
      this.heldPos2[s] = pos;
      return;
    }
    const more = this.flags[s]! & RARE ? this.moreHeld.get(s) : undefined;
    if (more) more.push(replica, pos);
    else this.setRare(this.moreHeld, s, [replica, pos]);
  }

  /** The copies held, (replica, pos) by (replica, pos); they are not held any more. */
  takeHeld(s: number, each: (replica: number, pos: number) => void): void {
    if (this.heldReplica[s]! < 0) return;
    each(this.heldReplica[s]!, this.heldPos[s]!);
    this.heldReplica[s] = -1;
    if (this.heldReplica2[s]! < 0) return;
    each(this.heldReplica2[s]!, this.heldPos2[s]!);
    this.heldReplica2[s] = -1;
    if (!(this.flags[s]! & RARE)) return;
    const more = this.moreHeld.get(s);
    if (!more) return;
    this.moreHeld.delete(s);
    for (let i = 0; i < more.length; i += 2) each(more[i]!, more[i + 1]!);
  }

  private setRare<T>(table: Map<number, T>, s: number, value: T | undefined): void {
    if (value === undefined) {
      if (this.flags[s]! & RARE) table.delete(s);
      return;
    }
    this.flags[s]! |= RARE;
    table.set(s, value);
  }

  /** murmur3's finalizer over the seq's two halves and the process, seeded. */
  private hashOf(stream: Stream, seq: number): number {
    let h = (seq >>> 0) ^ this.seed;
    h = Math.imul(h ^ (h >>> 16), 0x85eb_ca6b);
    h ^= Math.imul(((seq / 0x1_0000_0000) | 0) ^ stream.uid, 0x27d4_eb2d);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2_ae35);
    return (h ^ (h >>> 16)) & 0x7fff_ffff;
  }

  /** Linear probing's deletion: later entries of the chain move back over the hole. */
  private unindex(s: number): void {
    const m = this.indexMask;
    let i = this.hash[s]! & m;
    while (this.index[i] !== s + 1) i = (i + 1) & m;
    for (let j = (i + 1) & m; this.index[j] !== 0; j = (j + 1) & m) {
      const home = this.hash[this.index[j]! - 1]! & m;
      // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
      if (i <= j ? home > i && home <= j : home > i || home <= j) continue;
      this.index[i] = this.index[j]!;
      i = j;
    }
    this.index[i] = 0;
  }

  private resize(capacity: number): void {
    this.fat = grown(this.fat, capacity);
    this.fend = grown(this.fend, capacity);
    this.next = grown(this.next, capacity);
    this.mask = grown(this.mask, capacity);
    this.seenMask = grown(this.seenMask, capacity);
    this.heldReplica = grown(this.heldReplica, capacity);
    this.heldPos = grown(this.heldPos, capacity);
    this.heldReplica2 = grown(this.heldReplica2, capacity);
    this.heldPos2 = grown(this.heldPos2, capacity);
    this.firstSeenMs = grown(this.firstSeenMs, capacity);
    this.seq = grown(this.seq, capacity);
    this.priority = grown(this.priority, capacity);
    this.timestampMs = grown(this.timestampMs, capacity);
    this.firstCheck = grown(this.firstCheck, capacity);
    this.flags = grown(this.flags, capacity);
    this.gen = grown(this.gen, capacity);
    this.hash = grown(this.hash, capacity);
    this.free = grown(this.free, capacity);
    this.index = new Int32Array(2 * capacity);
    this.indexMask = 2 * capacity - 1;
    for (let s = 0; s < this.used; s++) {
      if (this.stream[s] === undefined) continue;
      let i = this.hash[s]! & this.indexMask;
      while (this.index[i] !== 0) i = (i + 1) & this.indexMask;
      this.index[i] = s + 1;
    }
  }
}
