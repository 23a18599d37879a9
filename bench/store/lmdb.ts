// The lmdb candidate (npm lmdb, LMDB through lmdb-js). lmdb-js does its own group commit: every
// put issued in one event turn goes into one write transaction, committed on a write thread
// while the next turn's puts queue for the next one.
//
// Durability: with overlappingSync (lmdb-js's default off Windows) a put's promise resolves
// when the transaction is *committed* (visible), and the fsync happens afterwards, outside the
// write lock. Awaiting the put alone would acknowledge before the data is on disk. So the store
// is opened with separateFlushed and append() awaits the put's `.flushed` promise, which
// resolves when that transaction is synced. With overlappingSync off, the commit itself syncs
// and `.flushed` is the commit promise.

import type { Database, RootDatabase } from 'lmdb';
import type { EventStore, StoreKind } from './types.js';
import { channelEnd, keyIndex, positionKey, readU64BE, recordKey, u64Value } from './records.js';

const R = 0x72; // 'r'
const P = 0x70; // 'p'

/** A put's promise with separateFlushed: resolves on commit; .flushed on fsync. */
type PutPromise = Promise<boolean> & { flushed?: Promise<boolean> };

async function durable(p: PutPromise): Promise<void> {
  const flushed = p.flushed;
  // Without separateFlushed there is no .flushed and the put promise means only "committed".
  if (!flushed) throw new Error('lmdb: a put promise has no .flushed: the store must be opened with separateFlushed: true');
  const [ok] = await Promise.all([p, flushed]);
  if (!ok) throw new Error('lmdb: an unconditional put resolved false');
}

class LmdbStore implements EventStore {
  private lazyError: unknown;

  constructor(
    private readonly root: RootDatabase,
    private readonly records: Database<Buffer, Buffer>,
    private readonly positions: Database<Buffer, Buffer>,
  ) {}

  append(channel: string, first: number, values: Buffer[]): Promise<void> {
    if (this.lazyError !== undefined) return Promise.reject(this.lazyError);
    let last: PutPromise | undefined;
    // All in this turn: one transaction, so the batch is atomic as well as durable.
    for (let i = 0; i < values.length; i++) last = this.records.put(recordKey(R, channel, first + i), values[i]!);
    return last ? durable(last) : Promise.resolve();
  }

  setPosition(channel: string, client: string, index: number): void {
    this.positions.put(positionKey(P, channel, client), u64Value(index)).catch((e: unknown) => (this.lazyError ??= e));
  }

  trim(channel: string, from: number, below: number): Promise<void> {
    // LMDB has no range delete: one remove per key, all in this turn's transaction. The
    // replica knows its low end, so the keys are built, not read back.
    let last: PutPromise | undefined;
    for (let i = from; i < below; i++) last = this.records.remove(recordKey(R, channel, i));
    return last ? durable(last) : Promise.resolve();
  }

  async scan(channel: string, onRecord: (index: number, value: Uint8Array) => void): Promise<number> {
    let n = 0;
    for (const { key, value } of this.records.getRange({ start: recordKey(R, channel, 0), end: channelEnd(R, channel) })) {
      onRecord(keyIndex(key), value);
      n++;
    }
    return n;
  }

  async position(channel: string, client: string): Promise<number | undefined> {
    const v = this.positions.get(positionKey(P, channel, client));
    return v === undefined ? undefined : readU64BE(v, 0);
  }

  async check(): Promise<string | undefined> {
    return undefined; // lmdb-js exposes no checker; the crash check opens and scans instead.
  }

  async close(): Promise<void> {
    await this.root.close();
    if (this.lazyError !== undefined) throw this.lazyError;
  }
}

export function lmdbKind(overlappingSync: boolean): StoreKind {
  return {
    name: overlappingSync ? 'lmdb' : 'lmdb-sync',
    settings: overlappingSync
      ? 'lmdb: overlappingSync (default), separateFlushed, await put().flushed'
      : 'lmdb: overlappingSync: false, await put()',
    durable: true,
    package: 'lmdb',
    async open(dir: string): Promise<EventStore> {
      const { open } = await import('lmdb');
      const root = open({ path: dir, compression: false, overlappingSync, separateFlushed: true });
      const records = root.openDB<Buffer, Buffer>({ name: 'records', keyEncoding: 'binary', encoding: 'binary' });
      const positions = root.openDB<Buffer, Buffer>({ name: 'positions', keyEncoding: 'binary', encoding: 'binary' });
      return new LmdbStore(root, records, positions);
    },
  };
}
