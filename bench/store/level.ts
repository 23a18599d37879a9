// The LevelDB candidate (npm classic-level). Two ways to group commits, measured side by side:
//
// - `level`: each batch is its own db.batch(ops, { sync: true }). LevelDB itself merges writers
//   that are waiting at the same time into one log write and one fsync, but each batch waits on
//   a libuv thread-pool thread (4 by default), so at most 4 batches can meet there.
// - `level-group`: the application merges every batch queued while a commit runs into the next
//   db.batch (group-commit.ts), one batch call in flight at a time.
//
// Positions are written without sync in `level`: LevelDB appends them to the same log, so the
// next synced write makes them durable too.

import type { EventStore, StoreKind } from './types.js';
import { channelEnd, keyIndex, positionKey, readU64BE, recordKey, u64Value } from './records.js';
import { GroupCommit } from './group-commit.js';
import { importOptional } from './optional.js';

const R = 0x72; // 'r'
const P = 0x70; // 'p'

type Op = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };
/** The part of classic-level's ClassicLevel this bench uses (installed on demand: optional.ts). */
interface Db {
  open(): Promise<void>;
  close(): Promise<void>;
  batch(ops: Op[], o: { sync: boolean }): Promise<void>;
  put(key: Buffer, value: Buffer): Promise<void>;
  get(key: Buffer): Promise<Buffer | undefined>;
  iterator(o: { gte: Buffer; lt: Buffer }): { nextv(n: number): Promise<[Buffer, Buffer][]>; close(): Promise<void> };
}

function puts(channel: string, first: number, values: Buffer[]): Op[] {
  return values.map((value, i) => ({ type: 'put', key: recordKey(R, channel, first + i), value }));
}

function dels(channel: string, from: number, below: number): Op[] {
  const ops: Op[] = [];
  // One delete per key, not db.clear(): clear() has no sync option, so its deletes would be
  // durable only at some later synced write.
  for (let i = from; i < below; i++) ops.push({ type: 'del', key: recordKey(R, channel, i) });
  return ops;
}

class LevelStore implements EventStore {
  private lazyError: unknown;
  private readonly group: GroupCommit<Op> | undefined;

  constructor(
    private readonly db: Db,
    grouped: boolean,
  ) {
    this.group = grouped ? new GroupCommit<Op>((ops) => db.batch(ops, { sync: true })) : undefined;
  }

  private write(ops: Op[]): Promise<void> {
    if (this.lazyError !== undefined) return Promise.reject(this.lazyError);
    return this.group ? this.group.submit(ops) : this.db.batch(ops, { sync: true });
  }

  append(channel: string, first: number, values: Buffer[]): Promise<void> {
    return this.write(puts(channel, first, values));
  }

  setPosition(channel: string, client: string, index: number): void {
    const key = positionKey(P, channel, client);
    const value = u64Value(index);
    if (this.group) this.group.submitLazy(key.toString('latin1'), { type: 'put', key, value });
    else this.db.put(key, value).catch((e: unknown) => (this.lazyError ??= e));
  }

  trim(channel: string, from: number, below: number): Promise<void> {
    return from < below ? this.write(dels(channel, from, below)) : Promise.resolve();
  }

  async scan(channel: string, onRecord: (index: number, value: Uint8Array) => void): Promise<number> {
    let n = 0;
    const it = this.db.iterator({ gte: recordKey(R, channel, 0), lt: channelEnd(R, channel) });
    try {
      // nextv: entries in chunks, not a promise per entry.
      for (;;) {
        const entries = await it.nextv(1000);
        if (entries.length === 0) break;
        for (const [key, value] of entries) onRecord(keyIndex(key), value);
        n += entries.length;
      }
    } finally {
      await it.close();
    }
    return n;
  }

  async position(channel: string, client: string): Promise<number | undefined> {
    const v = await this.db.get(positionKey(P, channel, client));
    return v === undefined ? undefined : readU64BE(v, 0);
  }

  async check(): Promise<string | undefined> {
    return undefined; // opening replays the log and fails on a corrupt one; the scan reads the rest.
  }

  async close(): Promise<void> {
    await this.group?.drain();
    await this.db.close();
    if (this.lazyError !== undefined) throw this.lazyError;
  }
}

export function levelKind(grouped: boolean): StoreKind {
  return {
    name: grouped ? 'level-group' : 'level',
    settings: grouped
      ? 'classic-level: batch(ops, { sync: true }), batches merged by the application, one in flight'
      : 'classic-level: batch(ops, { sync: true }) per batch, merged by LevelDB (up to 4 thread-pool threads)',
    durable: true,
    package: 'classic-level',
    async open(dir: string): Promise<EventStore> {
      const { ClassicLevel } = (await importOptional('classic-level')) as { ClassicLevel: new (dir: string, o: object) => Db };
      const db = new ClassicLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open();
      return new LevelStore(db, grouped);
    },
  };
}
