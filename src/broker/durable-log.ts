// What makes an ordered `persist: disk` channel survive its replica: each decided event is
// written at its seq as it is placed, and each reader's position (the highest seq it
// acknowledged) is written every storeFlushMs, as for unordered disk channels (durable.ts).
// The log on disk is what the log in memory holds: an event the log evicts (capacity, bytes,
// TTL) is deleted at the next flush.
//
// Restarted, the replica reads the log back before the consensus journal is replayed: the
// journal re-executes only the batches above its snapshot, so the events below it come from
// here, and the ones above are placed again at the same seqs (Sequencer.place: a seq already
// held is a no-op). A publisher is acknowledged only once its events are on disk here too
// (the replica waits for the store as for unordered channels), so an acknowledged event is on
// the disks of at least f+1 correct replicas whatever crashed.

import type { OrderedLog } from './ordered-log.js';
import { StoredPositions } from './positions.js';
import type { EventStore, StoredLog } from './store.js';

/** An ordered disk channel in `fitbroker status`: events on disk, deleted, read back at start, and positions on disk. */
export interface LogDiskStats {
  events: number;
  trimmed: number;
  restored: number;
  positions: Record<string, number>;
}

export class DurableLog {
  private readonly positions: StoredPositions;
  /** The lowest seq on disk and the highest: below `low` everything was deleted. */
  private low = 1;
  private high = 0;
  private trimmed = 0;
  restored = 0;

  constructor(
    readonly tag: string,
    private readonly store: EventStore,
  ) {
    this.positions = new StoredPositions(tag, store);
  }

  /** What the store holds for this channel (once, at start). */
  load(): StoredLog {
    const stored = this.store.loadLog(this.tag);
    const first = stored.events[0];
    if (first) {
      this.low = first.seq;
      this.high = stored.events[stored.events.length - 1]!.seq;
    }
    this.restored = stored.events.length;
    this.positions.loaded(stored.positions);
    return stored;
  }

  /** Each reader's position as last written (at start: as the store kept it). */
  positionsOnDisk(): IterableIterator<[string, number]> {
    return this.positions.entries();
  }

  /** A decided event was placed at `seq`. */
  append(seq: number, timestampMs: number, envelope: Buffer): void {
    if (this.high < this.low) this.low = seq;
    this.high = seq;
    this.store.putLogged(this.tag, seq, timestampMs, envelope);
  }

  /** The client no longer reads the channel: its position goes. */
  untrack(client: string): void {
    this.positions.forget(client);
  }

  /** Writes positions that moved and deletes what the log no longer holds. */
  flush(log: OrderedLog): void {
    for (const [client, acked] of log.positions()) this.positions.write(client, acked);
    // LMDB has no range deletion: a key per seq, all in this turn's one transaction.
    const below = Math.min(log.low, this.high + 1);
    for (; this.low < below; this.low++) {
      this.store.deleteLogged(this.tag, this.low);
      this.trimmed++;
    }
  }

  stats(): LogDiskStats {
    return { events: Math.max(0, this.high - this.low + 1), trimmed: this.trimmed, restored: this.restored, positions: this.positions.toRecord() };
  }
}
