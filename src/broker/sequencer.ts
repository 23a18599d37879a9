// Turns the events the consensus protocol decided into positions: each ordered channel counts
// its own events from 1 (`seq`), and every ordered event also gets its place in the one order
// all of them were decided in (`global`). Every correct replica executes the same decisions in
// the same order from the same start, so it hands out the same positions: the subscriber votes
// on them with the content (src/codec/ordered.ts).

import { FitError, type ChannelClass, type Limits } from '../core/index.js';
import { encodeOrdered } from '../codec/index.js';
import { OrderedLog } from './ordered-log.js';
import { DurableLog, type LogDiskStats } from './durable-log.js';
import type { EventStore } from './store.js';

export interface Sequenced {
  seq: number;
  global: number;
  envelope: Buffer;
}

export class Sequencer {
  private readonly logs = new Map<string, OrderedLog>();
  /**
   * Per channel, the last seq the order handed out: the log's high, except while a restarted
   * replica replays its journal over a disk log that already holds what the replay places.
   * The snapshot is made of these, not of what the logs hold.
   */
  private readonly placed = new Map<string, number>();
  /** `persist: disk` channels: what writes their logs and readers' positions to the store. */
  private readonly durable = new Map<string, DurableLog>();
  private global = 0;

  constructor(channels: ReadonlyMap<string, ChannelClass>, limits: Limits, store?: EventStore) {
    const ordered = [...channels].filter(([, cls]) => cls.order !== 'none');
    for (const [tag, cls] of ordered) {
      // Each ordered channel's log gets an equal share of the replica's queued-bytes budget.
      const log = new OrderedLog({ capacityEvents: cls.capacityEvents, ttlMs: cls.ttlMs, bytesMax: Math.floor(limits.queuedBytesMax / Math.max(1, ordered.length)) });
      this.logs.set(tag, log);
      this.placed.set(tag, 0);
      if (store && cls.persist === 'disk') {
        const durable = new DurableLog(tag, store);
        log.load(durable.load().events);
        this.durable.set(tag, durable);
      }
    }
  }

  /** A disk channel's readers' positions as the store kept them; after they were added as readers. */
  restorePositions(): void {
    for (const [tag, durable] of this.durable) for (const [client, acked] of durable.positionsOnDisk()) this.logs.get(tag)!.restorePosition(client, acked);
  }

  /** The log of an ordered channel, or undefined for a channel without order. */
  log(channel: string): OrderedLog | undefined {
    return this.logs.get(channel);
  }

  get channels(): string[] {
    return [...this.logs.keys()];
  }

  /** The last position handed out in the whole order. */
  get lastGlobal(): number {
    return this.global;
  }

  /** Where the order stands: the global position and each channel's last seq, canonically. */
  snapshot(): { global: number; channels: [string, number][] } {
    return { global: this.global, channels: [...this.placed].sort((a, b) => (a[0] < b[0] ? -1 : 1)) };
  }

  /**
   * Moves to where a snapshot stands: one the other replicas signed (state transfer), or this
   * replica's own from its journal (`recovering`). The events in between were never executed
   * here: each log skips those it does not hold. After state transfer they count against every
   * reader that had not acknowledged them (subscribers get them from the other replicas); at
   * recovery, a memory channel's readers' positions were lost with the process, so nothing is
   * counted against them.
   */
  restore(s: { global: number; channels: [string, number][] }, recovering = false): void {
    // Exactly the snapshot's: at recovery a disk log may hold more, which the replay places again.
    this.global = s.global;
    for (const [tag, high] of s.channels) {
      const log = this.logs.get(tag);
      if (!log) continue;
      this.placed.set(tag, high);
      log.skipTo(high, !recovering);
    }
  }

  /** Places a decided event (a whole record) at the end of its channel's order. */
  place(channel: string, record: Buffer, timestampMs: number): Sequenced {
    const log = this.logs.get(channel);
    if (!log) throw new FitError('FIT_ERR_INTERNAL', `invariant broken: an event of channel "${channel}" was ordered, but the channel has no order; this is a bug, please report it`);
    const seq = this.placed.get(channel)! + 1;
    this.placed.set(channel, seq);
    const global = ++this.global;
    const envelope = encodeOrdered(seq, record, global);
    if (seq <= log.high) {
      // A restarted replica replays a decision its disk log holds already: the same decision
      // at the same place, so the same bytes, unless the store is not this journal's.
      const held = log.envelopeAt(seq);
      if (held && !held.equals(envelope)) {
        throw new FitError('FIT_ERR_STORE', `the store holds a different event at seq ${seq} of channel "${channel}" than the consensus journal decided there: the data directory's store and consensus journal are not from the same replica or time; restore both together, or move both away (the replica then catches up from the others)`, { channel, seq });
      }
      return { seq, global, envelope: held ?? envelope };
    }
    log.append(seq, envelope, timestampMs);
    this.durable.get(channel)?.append(seq, timestampMs, envelope);
    return { seq, global, envelope };
  }

  /** Disk channels: writes readers' positions that moved and deletes what the logs no longer hold. */
  flush(): void {
    for (const [tag, durable] of this.durable) durable.flush(this.logs.get(tag)!);
  }

  /** A reader of a disk channel is gone for good (the control table took its right away). */
  untrack(channel: string, client: string): void {
    this.durable.get(channel)?.untrack(client);
  }

  /** The channel's log is kept on disk (persist: disk). */
  onDisk(channel: string): boolean {
    return this.durable.has(channel);
  }

  /** What a disk channel's log has on disk (for status), or undefined for a memory channel. */
  diskStats(channel: string): LogDiskStats | undefined {
    return this.durable.get(channel)?.stats();
  }
}
