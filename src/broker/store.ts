// The on-disk store of a replica's `persist: disk` channels: LMDB through the `lmdb` package,
// chosen by measurement (docs/persistence.md, "Why LMDB"). One environment per replica, in its
// data directory, with three databases:
//   sections   [channel, first index] -> records back to back, as the publisher sent them
//   positions  [channel, client]      -> the highest index that client is done with
//   streams    [channel, process]     -> the last seq accepted from a publishing process
//   logs       [channel, seq]         -> an ordered channel's decided event: when it was
//                                        placed (float64) and its envelope
// (An ordered channel's position is the highest seq its client acknowledged.)
// A section is one run of accepted records of one PUBLISH section, so a write costs one put
// per section, not per event, and trimming deletes whole sections.
//
// Group commit is LMDB's own: puts issued in one event-loop turn share one transaction,
// committed on lmdb-js's write thread while the next turn's puts queue. With overlappingSync
// off, a transaction's commit includes its sync, so the promise of the last put resolves once
// everything put so far is on disk (fsync): `durable()`, when the replica acknowledges the
// publisher. (With lmdb-js's default, overlappingSync, a put resolves when committed, before
// the sync; bench/store-choice.ts measured both, and the strace check there confirms that no
// acknowledgement precedes its sync.)

import { open, type Database, type RootDatabase } from 'lmdb';
import { FitError } from '../core/index.js';

export type StoreKey = [string, number];

export interface StoredChannel {
  /** Sections in index order: the index of the first record, and the records back to back. */
  sections: { first: number; records: Buffer }[];
  positions: Map<string, number>;
  /** Publishing processes (the latin1 key Dedupe uses) and the last seq accepted from each. */
  streams: Map<string, number>;
}

/** An ordered channel's events as the store holds them, oldest first, and each client's position. */
export interface StoredLog {
  events: { seq: number; timestampMs: number; envelope: Buffer }[];
  positions: Map<string, number>;
}

/** What the broker needs of a store; DiskStore is the one a replica runs with. */
export interface EventStore {
  putSection(channel: string, first: number, records: Uint8Array): void;
  putPosition(channel: string, client: string, done: number): void;
  deletePosition(channel: string, client: string): void;
  putStream(channel: string, process: string, last: number): void;
  deleteSection(channel: string, first: number): void;
  putLogged(channel: string, seq: number, timestampMs: number, envelope: Buffer): void;
  deleteLogged(channel: string, seq: number): void;
  /** Resolves once everything put so far is on disk; rejects with FIT_ERR_STORE if it cannot be. */
  durable(): Promise<void>;
  load(channel: string): StoredChannel;
  loadLog(channel: string): StoredLog;
  close(): Promise<void>;
}

export class DiskStore implements EventStore {
  private readonly root: RootDatabase;
  private readonly sections: Database<Buffer, StoreKey>;
  private readonly positions: Database<number, [string, string]>;
  private readonly streams: Database<number, [string, string]>;
  private readonly logs: Database<Buffer, StoreKey>;
  /** The last write issued: transactions commit (and sync) in order, so it covers every earlier one. */
  private last: Promise<boolean> = Promise.resolve(true);
  /** durable() for the writes so far, shared by every caller until the next write. */
  private flushed: Promise<void> | undefined;

  constructor(readonly path: string) {
    try {
      // No compression: records are small and mostly signatures and ids, which do not compress.
      this.root = open({ path, compression: false, overlappingSync: false });
    } catch (e) {
      throw new FitError('FIT_ERR_STORE', `cannot open the store at ${path}: ${(e as Error).message}; check the data directory's permissions and free space`, { path });
    }
    this.sections = this.root.openDB<Buffer, StoreKey>({ name: 'sections', encoding: 'binary' });
    this.positions = this.root.openDB<number, [string, string]>({ name: 'positions', encoding: 'msgpack' });
    this.streams = this.root.openDB<number, [string, string]>({ name: 'streams', encoding: 'msgpack' });
    this.logs = this.root.openDB<Buffer, StoreKey>({ name: 'logs', encoding: 'binary' });
  }

  putSection(channel: string, first: number, records: Uint8Array): void {
    this.written(this.sections.put([channel, first], records as Buffer));
  }

  deleteSection(channel: string, first: number): void {
    this.written(this.sections.remove([channel, first]));
  }

  putLogged(channel: string, seq: number, timestampMs: number, envelope: Buffer): void {
    const value = Buffer.allocUnsafe(8 + envelope.length);
    value.writeDoubleBE(timestampMs, 0);
    envelope.copy(value, 8);
    this.written(this.logs.put([channel, seq], value));
  }

  deleteLogged(channel: string, seq: number): void {
    this.written(this.logs.remove([channel, seq]));
  }

  putPosition(channel: string, client: string, done: number): void {
    this.written(this.positions.put([channel, client], done));
  }

  deletePosition(channel: string, client: string): void {
    this.written(this.positions.remove([channel, client]));
  }

  putStream(channel: string, process: string, last: number): void {
    this.written(this.streams.put([channel, process], last));
  }

  durable(): Promise<void> {
    this.flushed ??= this.last.then(
      () => undefined,
      (e: unknown) => {
        throw new FitError('FIT_ERR_STORE', `cannot write the store at ${this.path}: ${(e as Error).message}; check free space on the data directory's disk`, { path: this.path });
      },
    );
    return this.flushed;
  }

  load(channel: string): StoredChannel {
    const sections: StoredChannel['sections'] = [];
    // Copies: LMDB hands out views of its map, valid only until the next read.
    for (const { key, value } of this.sections.getRange({ start: [channel, 0], end: [channel, Number.MAX_SAFE_INTEGER] })) {
      sections.push({ first: key[1], records: Buffer.from(value) });
    }
    const positions = this.loadPositions(channel);
    const streams = new Map<string, number>();
    for (const { key, value } of this.streams.getRange({ start: [channel], end: [channel, '\uffff'] })) streams.set(key[1], value);
    return { sections, positions, streams };
  }

  loadLog(channel: string): StoredLog {
    const events: StoredLog['events'] = [];
    for (const { key, value } of this.logs.getRange({ start: [channel, 0], end: [channel, Number.MAX_SAFE_INTEGER] })) {
      events.push({ seq: key[1], timestampMs: value.readDoubleBE(0), envelope: Buffer.from(value.subarray(8)) });
    }
    return { events, positions: this.loadPositions(channel) };
  }

  private loadPositions(channel: string): Map<string, number> {
    const positions = new Map<string, number>();
    for (const { key, value } of this.positions.getRange({ start: [channel], end: [channel, '\uffff'] })) positions.set(key[1], value);
    return positions;
  }

  async close(): Promise<void> {
    await this.durable().catch(() => undefined);
    await this.root.close();
  }

  /** A write was issued: the next durable() waits for a flush that includes it. */
  private written(p: Promise<boolean>): void {
    this.last = p;
    this.flushed = undefined;
    // Failures surface through durable(); an unobserved rejection must not kill the process.
    p.catch(() => undefined);
  }
}
