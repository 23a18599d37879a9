// What a replica's queues hold, as columns of typed arrays instead of an object per queued copy
// of an event. At saturation a replica holds hundreds of thousands of queued and in-flight
// copies for a second or more: as objects they were promoted to V8's old generation, copied
// by every scavenge on the way and marked by every major GC while they lived, and the four
// replicas' garbage collectors took about half of their CPU (perf, docs/performance.md,
// session 24). Numbers in typed arrays are never looked into by the collector, and a slot is
// reused as soon as nothing holds it. Written by hand: no library keeps a free-listed
// struct-of-arrays with reference counts, and the queue needs exactly that.

import { grown } from '../core/index.js';

/** The size of the buffers a channel's sections are copied into (BrokerService). */
export const SLAB_BYTES = 16 * 1024;
/**
 * Free slabs kept for reuse, per replica (4 MiB). A slab every queue is done with is reused
 * instead of freed: each new one was memory V8 counts as external, and its growth started
 * major GCs (half of a replica's GC time once queue entries were no longer objects).
 */
const POOL_SLABS = 256;

/**
 * The buffers queued records lie in (a channel's 16 KiB slabs, a record read back from disk),
 * by a small integer id, each with the number of references to it: queued entries point at a
 * slab by id, so the collector sees one pointer per buffer instead of one per record.
 */
export class SlabTable {
  private bufs: (Buffer | undefined)[] = [];
  private refs = new Int32Array(64);
  /** 1 for a slab that goes back to the pool when released (see slab()). */
  private recycled = new Uint8Array(64);
  private readonly free: number[] = [];
  private readonly pool: Buffer[] = [];
  /** The last buffer held, so that records of one buffer enqueued one by one share its id. */
  private lastBuf: Buffer | undefined;
  private lastId = -1;

  /** Buffers held now (for tests and metrics). */
  get live(): number {
    return this.bufs.length - this.free.length;
  }

  /**
   * A SLAB_BYTES buffer held (id) for the caller, which gives it back with release(): a reused
   * one when the pool has one. Only for records nothing else keeps a view of once every queue
   * is done with them (not those a disk channel hands its store).
   */
  slab(): number {
    const id = this.hold(this.pool.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES));
    this.recycled[id] = 1;
    return id;
  }

  /** An id for `buf` with one reference, the caller's, which it gives back with release(). */
  hold(buf: Buffer): number {
    if (buf === this.lastBuf && this.bufs[this.lastId] === buf) {
      this.refs[this.lastId]!++;
      return this.lastId;
    }
    let id = this.free.pop();
    if (id === undefined) {
      id = this.bufs.length;
      this.bufs.push(buf);
      if (id >= this.refs.length) {
        this.refs = grown(this.refs, this.refs.length * 2);
        this.recycled = grown(this.recycled, this.refs.length);
      }
    } else this.bufs[id] = buf;
    this.refs[id] = 1;
    this.recycled[id] = 0;
    this.lastBuf = buf;
    this.lastId = id;
    return id;
  }

  ref(id: number): void {
    this.refs[id]!++;
  }

  release(id: number): void {
    if (--this.refs[id]! > 0) return;
    if (this.recycled[id] === 1 && this.pool.length < POOL_SLABS) this.pool.push(this.bufs[id]!);
    this.bufs[id] = undefined;
    this.free.push(id);
    if (id === this.lastId) this.lastBuf = undefined;
  }

  buf(id: number): Buffer {
    return this.bufs[id]!;
  }
}

/** Flags of an entry. */
export const QUEUED = 1;
export const DROPPED = 2;

const INITIAL_SLOTS = 16;
/** A table this big that empties is made small again: a drained queue gives its memory back. */
const SHRINK_ABOVE = 4096;

// A slot is 48 bytes, on one or two cache lines: three float64 fields, then int32 fields, all
// read through two views of one buffer. At a paced load every event is a section of its own,
// and each queue's enqueue, take and acknowledge of it touched ten columns: ten cold lines per
// queue per event once the other processes on the cores had run (docs/performance.md, session
// 29). 48, not 64: with the free list and the rings, a slot in a table that just doubled then
// stays within the QUEUE_ENTRY_OVERHEAD_BYTES counted for it.
/** Float64 elements per slot; a slot's index in the queue is its first, so the FIFOs read `f64` with this stride. */
export const SLOT_F64 = 6;
const SLOT_I32 = SLOT_F64 * 2;
const F_IDX = 0;
const F_EXPIRES = 1;
const F_LOG_IDX = 2;
const I_SLAB = 6;
const I_AT = 7;
const I_LEN = 8;
const I_HOLDERS = 9;
const I_LEFT_AT = 10;
/** Priority in the low byte, flags above it. */
const I_PRIORITY_FLAGS = 11;
const FLAGS_SHIFT = 8;

/**
 * One queue's entries. An entry is a slot: its fields say where its record is (slab id,
 * offset, length), its index in the queue, priority, expiry, its index in a disk channel (-1
 * on a memory channel), flags (QUEUED: in a level FIFO; DROPPED: dropped and counted, a detach
 * must not bring it back), `leftAt` (the queue's attach count when it left its FIFO sent to
 * every session) and how many hold it: its FIFO while it is QUEUED, and every session that was
 * sent it and has not acknowledged it. A slot whose count reaches 0 is free, and its slab
 * reference is released.
 */
export class EntryTable {
  /** The slots' float64 fields; a slot's index in the queue is f64[slot * SLOT_F64]. */
  f64 = new Float64Array(INITIAL_SLOTS * SLOT_F64);
  private i32 = new Int32Array(this.f64.buffer);
  private free = new Int32Array(INITIAL_SLOTS);
  private freeTop = 0;
  /** Slots handed out at least once since the table was last (re)made: beyond it, all are free. */
  private used = 0;
  private liveSlots = 0;
  private slots = INITIAL_SLOTS;

  constructor(readonly slabs: SlabTable) {}

  /** Slots held now. */
  get live(): number {
    return this.liveSlots;
  }

  /** Slots allocated (for tests: an emptied table gives its memory back). */
  get capacity(): number {
    return this.slots;
  }

  /** A new QUEUED entry held once (by its FIFO), referencing slab `slab`. */
  add(slab: number, at: number, len: number, idx: number, priority: number, expiresAtMs: number, logIdx: number): number {
    let s: number;
    if (this.freeTop > 0) s = this.free[--this.freeTop]!;
    else {
      if (this.used === this.slots) this.resize(this.slots * 2);
      s = this.used++;
    }
    this.slabs.ref(slab);
    const f = s * SLOT_F64;
    const f64 = this.f64;
    f64[f + F_IDX] = idx;
    f64[f + F_EXPIRES] = expiresAtMs;
    f64[f + F_LOG_IDX] = logIdx;
    const i = s * SLOT_I32;
    const i32 = this.i32;
    i32[i + I_SLAB] = slab;
    i32[i + I_AT] = at;
    i32[i + I_LEN] = len;
    i32[i + I_HOLDERS] = 1;
    i32[i + I_LEFT_AT] = 0;
    i32[i + I_PRIORITY_FLAGS] = priority | (QUEUED << FLAGS_SHIFT);
    this.liveSlots++;
    return s;
  }

  idx(s: number): number {
    return this.f64[s * SLOT_F64 + F_IDX]!;
  }

  setIdx(s: number, idx: number): void {
    this.f64[s * SLOT_F64 + F_IDX] = idx;
  }

  expiresAtMs(s: number): number {
    return this.f64[s * SLOT_F64 + F_EXPIRES]!;
  }

  logIdx(s: number): number {
    return this.f64[s * SLOT_F64 + F_LOG_IDX]!;
  }

  leftAt(s: number): number {
    return this.i32[s * SLOT_I32 + I_LEFT_AT]!;
  }

  setLeftAt(s: number, attaches: number): void {
    this.i32[s * SLOT_I32 + I_LEFT_AT] = attaches;
  }

  at(s: number): number {
    return this.i32[s * SLOT_I32 + I_AT]!;
  }

  len(s: number): number {
    return this.i32[s * SLOT_I32 + I_LEN]!;
  }

  priority(s: number): number {
    return this.i32[s * SLOT_I32 + I_PRIORITY_FLAGS]! & 0xff;
  }

  flags(s: number): number {
    return this.i32[s * SLOT_I32 + I_PRIORITY_FLAGS]! >>> FLAGS_SHIFT;
  }

  /** Sets `flags` on `s` (QUEUED, DROPPED). */
  mark(s: number, flags: number): void {
    this.i32[s * SLOT_I32 + I_PRIORITY_FLAGS]! |= flags << FLAGS_SHIFT;
  }

  /** Clears `flags` on `s`. */
  unmark(s: number, flags: number): void {
    this.i32[s * SLOT_I32 + I_PRIORITY_FLAGS]! &= ~(flags << FLAGS_SHIFT);
  }

  /** The record's buffer. */
  buf(s: number): Buffer {
    return this.slabs.buf(this.i32[s * SLOT_I32 + I_SLAB]!);
  }

  hold(s: number): void {
    this.i32[s * SLOT_I32 + I_HOLDERS]!++;
  }

  /** One holder let go of `s`; the last one frees it: read what you need of it before. */
  release(s: number): void {
    const i = s * SLOT_I32;
    if (--this.i32[i + I_HOLDERS]! > 0) return;
    this.slabs.release(this.i32[i + I_SLAB]!);
    this.liveSlots--;
    if (this.liveSlots === 0 && this.slots > SHRINK_ABOVE) return this.remake(INITIAL_SLOTS);
    this.free[this.freeTop++] = s;
  }

  private resize(capacity: number): void {
    this.table(capacity, true);
  }

  /** Every slot free, in a table of `capacity` slots. */
  private remake(capacity: number): void {
    this.freeTop = 0;
    this.used = 0;
    this.table(capacity, false);
  }

  /** Room for `capacity` slots, holding what the old ones held when `keep`. */
  private table(capacity: number, keep: boolean): void {
    this.f64 = grown(this.f64, capacity * SLOT_F64, keep);
    this.i32 = new Int32Array(this.f64.buffer);
    this.free = grown(this.free, capacity, keep);
    this.slots = capacity;
  }
}
