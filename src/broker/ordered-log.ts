// The events of one ordered channel (or of the one order `global` channels share), as the
// replicas decided them, kept for subscribers to read from any retained position: a bounded
// log, not a queue per subscriber, because `subscribe --from SEQ` must be able to go back, and
// because every correct replica must hand out the same event at the same seq.
//
// Each subscribing client has a position (the next seq it needs, moved by its acknowledgements)
// so that events wait for a console that is away, as queues do for unordered channels. The
// log is bounded by capacity, bytes and TTL; an event evicted before a client acknowledged it
// is counted against that client, never dropped silently.

import { FitError } from '../core/index.js';
import type { RecordRef } from '../codec/index.js';
import { Deque } from './deque.js';

export interface LoggedEvent extends RecordRef {
  readonly seq: number;
  readonly expiresAtMs: number;
}

export interface OrderedLogCounters {
  appended: number;
  evictedCapacity: number;
  evictedTtl: number;
  /** Events never held because a snapshot moved the log on (state transfer). */
  skipped: number;
}

export interface OrderedLogOptions {
  capacityEvents: number;
  bytesMax: number;
  ttlMs: number;
}

export class OrderedLog {
  private readonly entries = new Deque<LoggedEvent>();
  private bytes = 0;
  private top = 0;
  /** Per client: the highest seq it acknowledged. */
  private readonly acked = new Map<string, number>();
  /** Per client: events evicted before it acknowledged them. */
  private readonly missed = new Map<string, number>();
  /** Per client: events sent to its sessions (re-sends after a reconnect count again, as for queues). */
  private readonly sent = new Map<string, number>();
  readonly counters: OrderedLogCounters = { appended: 0, evictedCapacity: 0, evictedTtl: 0, skipped: 0 };

  constructor(private readonly o: OrderedLogOptions) {}

  /** The last seq appended (0 before any). */
  get high(): number {
    return this.top;
  }

  /** The oldest seq still retained (high + 1 when the log is empty). */
  get low(): number {
    return this.entries.peek()?.seq ?? this.top + 1;
  }

  get depth(): number {
    return this.entries.length;
  }

  /**
   * Adds the envelope at `seq`, which must follow the last one: the log is the decided order,
   * and a gap or a repeat here would be a bug upstream, never something to paper over.
   */
  append(seq: number, envelope: Buffer, timestampMs: number): void {
    if (seq !== this.top + 1) throw new FitError('FIT_ERR_INTERNAL', `invariant broken: ordered log appended seq ${seq} after ${this.top}; this is a bug, please report it`);
    this.top = seq;
    this.entries.push({ buf: envelope, at: 0, len: envelope.length, seq, expiresAtMs: timestampMs + this.o.ttlMs });
    this.bytes += envelope.length;
    this.counters.appended++;
    while (this.entries.length > this.o.capacityEvents || (this.bytes > this.o.bytesMax && this.entries.length > 1)) this.evict('capacity');
  }

  /**
   * Events read back from the store at start (a disk channel), oldest first, before anything
   * else is appended; `appended` does not count them, `restored` in DurableLog does.
   */
  load(events: readonly { seq: number; timestampMs: number; envelope: Buffer }[]): void {
    if (this.top !== 0 || this.entries.length > 0) throw new FitError('FIT_ERR_INTERNAL', 'invariant broken: an ordered log was loaded after it started; this is a bug, please report it');
    for (const e of events) {
      this.entries.push({ buf: e.envelope, at: 0, len: e.envelope.length, seq: e.seq, expiresAtMs: e.timestampMs + this.o.ttlMs });
      this.bytes += e.envelope.length;
      this.top = e.seq;
    }
  }

  /** The envelope held at `seq`, if the log still holds it. */
  envelopeAt(seq: number): Buffer | undefined {
    const e = this.entries.at(this.indexOf(seq));
    return e?.seq === seq ? e.buf : undefined;
  }

  /**
   * Continues after `seq` (a snapshot was installed): the events held stay (readers behind
   * still get them from here), the ones in between were never held, and every reader is told
   * of each of those it had not acknowledged. Not when this replica recovers from its own
   * journal: readers' positions of a memory channel were lost with the process, and a reader
   * reads from the other replicas what this one does not hold.
   */
  skipTo(seq: number, countMissed = true): void {
    if (seq <= this.top) return;
    if (countMissed) for (const [client, acked] of this.acked) this.missed.set(client, (this.missed.get(client) ?? 0) + seq - Math.max(acked, this.top));
    this.counters.skipped += seq - this.top;
    this.top = seq;
  }

  /** Up to `max` events from `fromSeq` on (from the next one held when it is not). */
  read(fromSeq: number, max: number): LoggedEvent[] {
    const out: LoggedEvent[] = [];
    for (let i = this.indexOf(fromSeq); i < this.entries.length && out.length < max; i++) out.push(this.entries.at(i)!);
    return out;
  }

  /** The index of the first entry at `seq` or after: by position while the log has no gap, by search across one. */
  private indexOf(seq: number): number {
    const n = this.entries.length;
    if (n === 0) return 0;
    const first = this.entries.at(0)!.seq;
    if (this.entries.at(n - 1)!.seq - first === n - 1) return Math.min(n, Math.max(0, seq - first));
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries.at(mid)!.seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** A client that may read this log from now on starts at the next event (one from the start starts at 1). */
  addClient(client: string, fromStart: boolean): void {
    if (!this.acked.has(client)) this.acked.set(client, fromStart ? 0 : this.top);
  }

  removeClient(client: string): void {
    this.acked.delete(client);
    this.missed.delete(client);
    this.sent.delete(client);
  }

  /** The next seq `client` needs: after what it acknowledged, and not before what is retained. */
  position(client: string): number {
    return Math.max((this.acked.get(client) ?? this.top) + 1, this.low);
  }

  /** Each reader and the highest seq it acknowledged. */
  positions(): IterableIterator<[string, number]> {
    return this.acked.entries();
  }

  /** A reader's acknowledged seq as the store kept it (a disk channel, at start). */
  restorePosition(client: string, acked: number): void {
    if (this.acked.has(client)) this.acked.set(client, acked);
  }

  ack(client: string, seq: number): void {
    const had = this.acked.get(client);
    if (had !== undefined && seq > had) this.acked.set(client, Math.min(seq, this.top));
  }

  countSent(client: string, events: number): void {
    if (this.acked.has(client)) this.sent.set(client, (this.sent.get(client) ?? 0) + events);
  }

  sentTo(client: string): number {
    return this.sent.get(client) ?? 0;
  }

  /** Events `client` never acknowledged that left the log (capacity, bytes or TTL). */
  missedBy(client: string): number {
    return this.missed.get(client) ?? 0;
  }

  /** Drops expired events from the front (the oldest go first). */
  expire(nowMs: number): void {
    for (let e = this.entries.peek(); e && e.expiresAtMs < nowMs; e = this.entries.peek()) this.evict('ttl');
  }

  private evict(why: 'capacity' | 'ttl'): void {
    const e = this.entries.shift()!;
    this.bytes -= e.len;
    if (why === 'ttl') this.counters.evictedTtl++;
    else this.counters.evictedCapacity++;
    for (const [client, acked] of this.acked) if (acked < e.seq) this.missed.set(client, (this.missed.get(client) ?? 0) + 1);
  }
}
