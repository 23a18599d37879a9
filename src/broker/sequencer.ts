// Turns the events the consensus protocol decided into positions: each ordered channel counts
// its own events from 1 (`seq`), and every ordered event also gets its place in the one order
// all of them were decided in (`global`). Every correct replica executes the same decisions in
// the same order from the same start, so it hands out the same positions: the subscriber votes
// on them with the content (src/codec/ordered.ts).

import { FitError, type ChannelClass, type Limits } from '../core/index.js';
import { encodeOrdered } from '../codec/index.js';
import { OrderedLog } from './ordered-log.js';

export interface Sequenced {
  seq: number;
  global: number;
  envelope: Buffer;
}

export class Sequencer {
  private readonly logs = new Map<string, OrderedLog>();
  private global = 0;

  constructor(channels: ReadonlyMap<string, ChannelClass>, limits: Limits) {
    const ordered = [...channels].filter(([, cls]) => cls.order !== 'none');
    for (const [tag, cls] of ordered) {
      // Each ordered channel's log gets an equal share of the replica's queued-bytes budget.
      this.logs.set(tag, new OrderedLog({ capacityEvents: cls.capacityEvents, ttlMs: cls.ttlMs, bytesMax: Math.floor(limits.queuedBytesMax / Math.max(1, ordered.length)) }));
    }
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
    return { global: this.global, channels: [...this.logs].map(([tag, log]): [string, number] => [tag, log.high]).sort((a, b) => (a[0] < b[0] ? -1 : 1)) };
  }

  /**
   * Moves to where a snapshot other replicas signed stands (state transfer). The events in
   * between were never executed here: each log skips them, and counts them against every
   * reader that had not acknowledged them (subscribers get them from the other replicas).
   */
  restore(s: { global: number; channels: [string, number][] }): void {
    this.global = Math.max(this.global, s.global);
    for (const [tag, high] of s.channels) this.logs.get(tag)?.skipTo(high);
  }

  /** Places a decided event (a whole record) at the end of its channel's order. */
  place(channel: string, record: Buffer, timestampMs: number): Sequenced {
    const log = this.logs.get(channel);
    if (!log) throw new FitError('FIT_ERR_INTERNAL', `invariant broken: an event of channel "${channel}" was ordered, but the channel has no order; this is a bug, please report it`);
    const seq = log.high + 1;
    const global = ++this.global;
    const envelope = encodeOrdered(seq, record, global);
    log.append(seq, envelope, timestampMs);
    return { seq, global, envelope };
  }
}
