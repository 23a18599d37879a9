// The consensus journal on disk (journal.ts, docs/consensus.md "Restart from the journal"):
// one LMDB environment at the path the replica gives (DIR/data/replica-N/consensus), one
// database whose keys are journal.ts's (ordered, so truncation is a range deletion).
//
// Each append is one LMDB transaction callback; lmdb-js runs every write of an event-loop turn
// in one transaction, so a turn's appends commit together or not at all, and `durable()`
// resolves once they are committed and flushed (fsync). A value is the entry as JSON behind a
// CRC-32 of it: LMDB never shows a half-committed transaction, so a value that fails its check
// was damaged on the disk, and load() refuses the journal with the key it found it at rather
// than recover from half of it.
//
// It must never: report durable before the flush, or reorder one caller's appends.

import { crc32 } from 'node:zlib';
import { open, type Database, type RootDatabase } from 'lmdb';
import { FitError } from '../core/index.js';
import { journalOps, type JournalEntry, type JournalKey, type JournalStore, type StoredEntry } from './journal.js';

/** What an on-disk journal did since it was opened: appends, entries, value bytes written by kind, keys deleted. */
export interface JournalStoreStats {
  appends: number;
  entries: number;
  bytes: number;
  bytesByType: Record<string, number>;
  deleted: number;
}

const KINDS: Record<string, StoredEntry['type']> = { m: 'meta', v: 'view', l: 'leave', p: 'pre-prepare', c: 'prepared', d: 'decided', k: 'stable', s: 'snapshot', h: 'hold', x: 'letgo' };

export class LmdbJournalStore implements JournalStore {
  private readonly root: RootDatabase;
  private readonly db: Database<Buffer, JournalKey>;
  /** The last append's commit; durable() waits for it, then for the flush. */
  private lastWrite: Promise<unknown> = Promise.resolve();
  private flushed: Promise<void> | undefined;
  readonly stats: JournalStoreStats = { appends: 0, entries: 0, bytes: 0, bytesByType: {}, deleted: 0 };

  constructor(readonly path: string) {
    try {
      // No compression: the bulk is digests, signatures and base64 bodies.
      this.root = open({ path, compression: false });
      this.db = this.root.openDB<Buffer, JournalKey>({ name: 'journal', encoding: 'binary' });
    } catch (e) {
      throw new FitError('FIT_ERR_JOURNAL', `cannot open the consensus journal at ${path}: ${(e as Error).message}; check the data directory's permissions and free space`, { path });
    }
  }

  append(entries: readonly JournalEntry[]): void {
    if (entries.length === 0) return;
    // Encoded now: the caller's objects may change after this returns, the transaction runs later.
    const ops = entries.flatMap(journalOps).map((op) => (op.op === 'put' ? { ...op, value: encode(op.entry) } : op));
    this.stats.appends++;
    this.stats.entries += entries.length;
    for (const op of ops) {
      if (op.op !== 'put') continue;
      this.stats.bytes += op.value.length;
      this.stats.bytesByType[op.entry.type] = (this.stats.bytesByType[op.entry.type] ?? 0) + op.value.length;
    }
    const write = this.root.transaction(() => {
      for (const op of ops) {
        if (op.op === 'put') this.db.putSync(op.key, op.value);
        else if (op.op === 'del') {
          if (this.db.removeSync(op.key)) this.stats.deleted++;
        } else {
          // Keys first, then deletions: not while a cursor walks the range.
          const keys = [...this.db.getKeys({ start: op.start, end: op.end })];
          for (const k of keys) this.db.removeSync(k);
          this.stats.deleted += keys.length;
        }
      }
    });
    // Failures surface through durable(); an unobserved rejection must not end the process.
    write.catch(() => undefined);
    this.lastWrite = write;
    this.flushed = undefined;
  }

  durable(): Promise<void> {
    this.flushed ??= this.lastWrite
      .then(() => this.root.flushed)
      .then(
        () => undefined,
        (e: unknown) => {
          throw new FitError('FIT_ERR_JOURNAL', `cannot write the consensus journal at ${this.path}: ${(e as Error).message}; check free space on the data directory's disk, then restart the replica`, { path: this.path });
        },
      );
    return this.flushed;
  }

  /** Everything stored, in key order; refuses a journal with a damaged value. */
  load(): StoredEntry[] {
    const out: StoredEntry[] = [];
    for (const { key, value } of this.db.getRange({})) out.push(decode(this.path, key, value));
    return out;
  }

  /** Keys stored (for tests and status). */
  get size(): number {
    return this.db.getKeysCount();
  }

  async close(): Promise<void> {
    await this.durable().catch(() => undefined);
    await this.root.close();
  }
}

function encode(e: StoredEntry): Buffer {
  // Written in place after the checksum: a snapshot entry is megabytes, and every copy of it
  // costs (a fresh buffer's pages are slow to fault in on these VMs).
  const json = JSON.stringify(e);
  const out = Buffer.allocUnsafe(4 + Buffer.byteLength(json, 'utf8'));
  out.write(json, 4, 'utf8');
  out.writeUInt32BE(crc32(out.subarray(4)), 0);
  return out;
}

function decode(path: string, key: JournalKey, value: Buffer): StoredEntry {
  const where = JSON.stringify(key);
  const damaged = (why: string): FitError =>
    new FitError('FIT_ERR_JOURNAL', `the consensus journal at ${path} is damaged at key ${where} (${why}); move the directory away and restart the replica: it then recovers from the others, passively`, { path, key: where });
  if (value.length < 4) throw damaged(`${value.length} bytes, not even a checksum`);
  const body = value.subarray(4);
  if (crc32(body) !== value.readUInt32BE(0)) throw damaged('checksum mismatch: a partial or altered value');
  let e: StoredEntry;
  try {
    e = JSON.parse(body.toString('utf8')) as StoredEntry;
  } catch {
    throw damaged('not JSON');
  }
  if (e?.type !== KINDS[String(key[0])]) throw damaged(`a ${String(e?.type)} entry under a ${String(key[0])} key`);
  return e;
}
