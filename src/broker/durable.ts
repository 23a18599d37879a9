// What makes a `persist: disk` channel survive its replica (paper §3.2, DESIGN §2): every
// accepted record gets an index in the channel, is written with it before the publisher is
// acknowledged, and each subscribing client's queue records which indexes it is done with
// (acknowledged by a session, pulled, or dropped and counted). What every client is done
// with is deleted. Restarted, the replica refills each queue with the records above that
// client's position, in index order, which keeps each publisher's order within a priority.
//
// "Done" is kept as a prefix (ResolvedPrefix): urgent events are acknowledged before older
// normal ones, and the prefix stops below the oldest not done. Positions reach the disk every
// storeFlushMs, not with each acknowledgement: after a crash a subscriber may be sent again
// what it acknowledged in the last moments, and its voter drops those copies (floors per
// publishing process and priority, src/client/voter.ts). Nothing acknowledged to a publisher
// is lost: its records were on disk first.

import { Deque } from './deque.js';
import { ResolvedPrefix } from './prefix.js';
import { StoredPositions } from './positions.js';
import type { EventStore, StoredChannel } from './store.js';

/** A disk channel in `fitbroker status`: indexes given, sections held and deleted, records read back at start, positions on disk. */
export interface DiskStats {
  nextIdx: number;
  sections: number;
  trimmed: number;
  restored: number;
  positions: Record<string, number>;
}

interface Section {
  first: number;
  last: number;
}

export class DurableChannel {
  /** The index the next accepted record gets. */
  nextIdx = 0;
  /** Sections on disk, oldest first. */
  private readonly sections = new Deque<Section>();
  private readonly done = new Map<string, ResolvedPrefix>();
  private readonly positions: StoredPositions;
  /** Sections deleted so far. */
  private trimmed = 0;
  /** Records read back from the store at start. */
  restored = 0;

  constructor(
    readonly tag: string,
    private readonly store: EventStore,
  ) {
    this.positions = new StoredPositions(tag, store);
  }

  /** What the store holds for this channel, to refill queues from (once, at start). */
  load(): StoredChannel {
    const stored = this.store.load(this.tag);
    for (const s of stored.sections) {
      // The last index follows from the next section's first; the final one is counted by the caller.
      const prev = this.sections.at(this.sections.length - 1);
      if (prev) prev.last = s.first - 1;
      this.sections.push({ first: s.first, last: s.first });
    }
    this.positions.loaded(stored.positions);
    return stored;
  }

  /** After load(): the records of the newest section were counted; indexes go on from there. */
  loaded(nextIdx: number): void {
    this.nextIdx = nextIdx;
    const newest = this.sections.at(this.sections.length - 1);
    if (newest) newest.last = nextIdx - 1;
  }

  /** The client's done-prefix; `from` is its position when the queue is new here. */
  track(client: string, from = this.positions.get(client) ?? -1): ResolvedPrefix {
    let d = this.done.get(client);
    if (!d) {
      d = new ResolvedPrefix(Infinity);
      d.ackedPos = from;
      this.done.set(client, d);
    }
    return d;
  }

  /** The client no longer subscribes: its position goes, and what only it held can be trimmed. */
  untrack(client: string): void {
    this.done.delete(client);
    this.positions.forget(client);
  }

  /** Records [first, first + count) were accepted, as `records` back to back. */
  append(first: number, count: number, records: Uint8Array): void {
    this.store.putSection(this.tag, first, records);
    this.sections.push({ first, last: first + count - 1 });
  }

  /** The last seq accepted from a publishing process (Dedupe's key), so a restart still knows it. */
  accepted(process: string, last: number): void {
    this.store.putStream(this.tag, process, last);
  }

  /** Writes positions that moved and deletes sections every client is done with. */
  flush(): void {
    let low = this.nextIdx - 1;
    for (const [client, d] of this.done) {
      this.positions.write(client, d.ackedPos);
      low = Math.min(low, d.ackedPos);
    }
    for (let s = this.sections.peek(); s && s.last <= low; s = this.sections.peek()) {
      this.store.deleteSection(this.tag, s.first);
      this.sections.shift();
      this.trimmed++;
    }
  }

  stats(): DiskStats {
    return { nextIdx: this.nextIdx, sections: this.sections.length, trimmed: this.trimmed, restored: this.restored, positions: this.positions.toRecord() };
  }
}
