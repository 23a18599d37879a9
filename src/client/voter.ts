// The subscriber's voter (paper §3.3, DESIGN §4): n replicas each send their copy of every
// event; deliver it exactly once, after `threshold` byte-identical copies (f+1 for bft, so at
// least one correct replica vouches for it; 1 for cft), and never a version only a minority
// sent. Copies that differ from the delivered version are evidence against the replica that
// sent them. Pure: no sockets, no timers; time comes in as arguments.
//
// Bounded by construction: undecided events wait at most pendingMs and at most pendingMax of
// them; delivered keys are remembered until every replica's copy arrived or deliveredMax
// newer ones push them out, and a per-stream floor then turns very late copies away.

import { FitError } from '../core/index.js';

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

interface Variant {
  rec: Buffer;
  replicas: number[];
}

interface Pending {
  variants: Variant[];
  copies: Copy[];
  firstSeenMs: number;
}

interface Delivered {
  /** Kept for comparing late copies; released once every replica's copy arrived. */
  rec: Buffer | undefined;
  seenBy: number[];
  streamKey: string;
  seq: number;
}

export interface VoterSink {
  deliver(rec: Buffer): void;
  /** The copy needs nothing more from its replica: the subscriber may acknowledge it. */
  resolve(copy: Copy): void;
}

const ID_BYTES = 16;

export class Voter {
  private readonly pending = new Map<string, Pending>();
  private readonly delivered = new Map<string, Delivered>();
  private readonly floors = new Map<string, number>();
  private incomplete = 0;
  readonly mismatches: number[];
  readonly counters: VoterCounters = { delivered: 0, expired: 0, undecided: 0, stale: 0, duplicateCopies: 0 };

  constructor(
    private readonly o: VoterOptions,
    private readonly sink: VoterSink,
  ) {
    if (o.threshold < 1 || o.threshold > o.replicas) {
      throw new FitError('FIT_ERR_INTERNAL', `invariant broken: voter threshold ${o.threshold} outside 1..${o.replicas}`);
    }
    this.mismatches = new Array<number>(o.replicas).fill(0);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Delivered events still missing a copy from some replica. */
  get incompleteCount(): number {
    return this.incomplete;
  }

  /**
   * Takes a copy only if its event was already delivered (for a subscriber that is closing:
   * it must not resolve, and so acknowledge, events it will never hand to the application).
   */
  offerLate(replica: number, rec: Buffer, pos: number): boolean {
    const key = rec.toString('latin1', 8, 9 + rec[8]! + ID_BYTES);
    const done = this.delivered.get(key);
    if (!done) return false;
    this.lateCopy(done, replica, rec, { replica, pos });
    return true;
  }

  offer(replica: number, rec: Buffer, pos: number, nowMs: number): void {
    const idEnd = 9 + rec[8]! + ID_BYTES;
    const key = rec.toString('latin1', 8, idEnd);
    const copy = { replica, pos };
    const done = this.delivered.get(key);
    if (done) return this.lateCopy(done, replica, rec, copy);
    let p = this.pending.get(key);
    if (!p) {
      const seq = rec.readUInt32BE(idEnd - 8) * 0x1_0000_0000 + rec.readUInt32BE(idEnd - 4);
      const floor = this.floors.get(key.slice(0, key.length - 8));
      if ((floor !== undefined && seq <= floor) || rec.readDoubleBE(idEnd) + this.o.ttlMs < nowMs) {
        if (floor !== undefined && seq <= floor) this.counters.stale++;
        else this.counters.expired++;
        return this.sink.resolve(copy);
      }
      if (this.pending.size >= this.o.pendingMax) this.evictPending(this.pending.keys().next().value!);
      p = { variants: [], copies: [], firstSeenMs: nowMs };
      this.pending.set(key, p);
    }
    if (p.copies.some((c) => c.replica === replica)) {
      this.counters.duplicateCopies++;
      return this.sink.resolve(copy);
    }
    p.copies.push(copy);
    let v = p.variants.find((x) => x.rec.equals(rec));
    if (!v) p.variants.push((v = { rec, replicas: [] }));
    v.replicas.push(replica);
    if (v.replicas.length >= this.o.threshold) this.decide(key, p, v, idEnd);
  }

  /** Drops undecided events older than pendingMs; call it from a timer. */
  sweep(nowMs: number): void {
    for (const [key, p] of this.pending) {
      if (nowMs - p.firstSeenMs < this.o.pendingMs) break;
      this.evictPending(key);
    }
  }

  private decide(key: string, p: Pending, winner: Variant, idEnd: number): void {
    this.pending.delete(key);
    for (const v of p.variants) if (v !== winner) for (const r of v.replicas) this.mismatches[r]!++;
    this.counters.delivered++;
    this.sink.deliver(winner.rec);
    for (const c of p.copies) this.sink.resolve(c);
    // Remembered even after every replica's copy arrived: a reconnect makes replicas resend
    // what they sent but never saw acknowledged, and that must not deliver it twice.
    if (this.delivered.size >= this.o.deliveredMax) this.forgetOldestDelivered();
    const streamKey = key.slice(0, key.length - 8);
    const seq = winner.rec.readUInt32BE(idEnd - 8) * 0x1_0000_0000 + winner.rec.readUInt32BE(idEnd - 4);
    const complete = p.copies.length >= this.o.replicas;
    if (!complete) this.incomplete++;
    this.delivered.set(key, { rec: complete ? undefined : winner.rec, seenBy: p.copies.map((c) => c.replica), streamKey, seq });
  }

  private lateCopy(done: Delivered, replica: number, rec: Buffer, copy: Copy): void {
    if (done.seenBy.includes(replica)) {
      this.counters.duplicateCopies++;
    } else {
      if (done.rec && !done.rec.equals(rec)) this.mismatches[replica]!++;
      done.seenBy.push(replica);
      if (done.seenBy.length >= this.o.replicas && done.rec) {
        done.rec = undefined;
        this.incomplete--;
      }
    }
    this.sink.resolve(copy);
  }

  private evictPending(key: string): void {
    const p = this.pending.get(key)!;
    this.pending.delete(key);
    this.counters.undecided++;
    for (const c of p.copies) this.sink.resolve(c);
  }

  private forgetOldestDelivered(): void {
    const [key, d] = this.delivered.entries().next().value!;
    this.delivered.delete(key);
    if (d.rec) this.incomplete--;
    const floor = this.floors.get(d.streamKey);
    if (floor === undefined || d.seq > floor) {
      if (floor === undefined && this.floors.size >= this.o.deliveredMax) this.floors.delete(this.floors.keys().next().value!);
      this.floors.set(d.streamKey, d.seq);
    }
  }
}
