// What a replica of the ordering protocol must find again after a crash (docs/consensus.md,
// "Restart from the journal"): the pure core (replica.ts) emits journal entries with every
// output, the caller makes them durable BEFORE it sends that output's messages or acts on its
// decisions (write-ahead), and a restarted replica is rebuilt from what is stored.
//
// Entries are deltas, each stored under a key of its own so that the journal stays the size of
// the log window plus the retained batches: a put overwrites or adds one key, a deletion
// removes one key or a range (truncation at a stable checkpoint). `journalOps` is the one
// mapping from entries to keys; the in-memory store here (the simulator's) and the LMDB store
// (journal-store.ts) both apply it, so the simulator exercises the same layout as the disk.
//
// It must never: drop a key that recovery needs (a vote, a certificate, a batch above the
// snapshot it restores from), or keep growing while the stable checkpoint moves.

import { sha256, type NewView, type PrePrepare, type Prepare, type Ref, type Req, type StableCheckpoint, type ViewChange } from './messages.js';

/**
 * Who the journal belongs to, and whether that replica is passive (it restarted once without a
 * journal, and may have voted before on what it no longer knows). `passiveView`/`passiveSeq`
 * null: not known yet (Infinity in the core); -1/0: not passive.
 */
export interface MetaEntry {
  type: 'meta';
  id: number;
  n: number;
  f: number;
  passiveView: number | null;
  passiveSeq: number | null;
  startedOver: boolean;
}

/** The replica entered `view` (by `newView`; none for view 0) and is not changing views. */
export interface ViewEntry {
  type: 'view';
  view: number;
  newView: NewView | null;
}

/** The replica left its view for `target` and sent `viewChange` (none while it had no say). */
export interface LeaveEntry {
  type: 'leave';
  target: number;
  viewChange: ViewChange | null;
}

/**
 * A PRE-PREPARE this replica sent (as leader) or accepted; `prepare`: it sent its PREPARE for
 * it. Written before the PRE-PREPARE or PREPARE leaves, and before a certificate on it.
 */
export interface PrePrepareEntry {
  type: 'pre-prepare';
  pp: PrePrepare;
  prepare: boolean;
}

/** Prepared: the 2f PREPAREs that, with the PRE-PREPARE at (seq, view), form the certificate; written before the COMMIT leaves. */
export interface PreparedEntry {
  type: 'prepared';
  view: number;
  seq: number;
  prepares: Prepare[];
}

/**
 * A decided batch, written before anything acts on the decision: each request by its body, or
 * by reference (a Ref: no payload) when its body is in a hold group of this journal, which then
 * stays until this entry is truncated. Bodies are written once.
 */
export interface DecidedEntry {
  type: 'decided';
  seq: number;
  view: number;
  batch: (Req | Ref)[];
}

/** The latest stable checkpoint with its proof. */
export interface StableEntry {
  type: 'stable';
  stable: StableCheckpoint;
}

/** This replica's state after `seq` (its own, at a stable checkpoint, or one it installed): where recovery starts. */
export interface SnapshotEntry {
  type: 'snapshot';
  seq: number;
  /** The hash-chain state digest after seq. */
  state: string;
  body: string;
}

/**
 * Request bodies this replica holds (and attests in HOLD messages), one group per submit:
 * on disk before the attestation leaves. `id` rises with each group; the group goes once
 * every request in it was decided and the decided entries that refer to its bodies are
 * truncated.
 */
export interface HoldEntry {
  type: 'hold';
  id: number;
  reqs: Req[];
}

/**
 * A body of hold group `id` that this replica let go undecided (its attestation ended,
 * availability.ts) while the group's other bodies stay: recovery neither holds nor attests it
 * again. It goes with its group.
 */
export interface LetGoEntry {
  type: 'letgo';
  id: number;
  ref: Ref;
}

/** What stays in the store: the entries recovery reads back. */
export type StoredEntry = MetaEntry | ViewEntry | LeaveEntry | PrePrepareEntry | PreparedEntry | DecidedEntry | StableEntry | SnapshotEntry | HoldEntry | LetGoEntry;

export type JournalEntry =
  | StoredEntry
  /** The PRE-PREPARE and certificate at (seq, view) are no longer needed (a newer view's replaced them). */
  | { type: 'drop'; seq: number; view: number }
  /** The bodies of hold group `id` are no longer needed: all were decided, and no decided entry on disk refers to them. */
  | { type: 'unhold'; id: number }
  /** A checkpoint became stable: PRE-PREPAREs and certificates up to slotsThrough and batches up to decidedThrough go. */
  | { type: 'truncate'; slotsThrough: number; decidedThrough: number };

/**
 * Keys: arrays of strings and numbers in the order LMDB's ordered-binary keeps them, so each
 * kind is a contiguous range and truncation is a range deletion.
 */
export type JournalKey = (string | number)[];

export type JournalOp = { op: 'put'; key: JournalKey; entry: StoredEntry } | { op: 'del'; key: JournalKey } | { op: 'del-range'; start: JournalKey; end: JournalKey };

/** The one mapping from journal entries to store operations. A range is [start, end): end excluded, as LMDB's getRange. */
export function journalOps(e: JournalEntry): JournalOp[] {
  switch (e.type) {
    case 'meta':
      return [{ op: 'put', key: ['m'], entry: e }];
    case 'view':
      return [
        { op: 'put', key: ['v'], entry: e },
        { op: 'del', key: ['l'] },
      ];
    case 'leave':
      return [{ op: 'put', key: ['l'], entry: e }];
    case 'pre-prepare':
      return [{ op: 'put', key: ['p', e.pp.seq, e.pp.view], entry: e }];
    case 'prepared':
      return [{ op: 'put', key: ['c', e.seq, e.view], entry: e }];
    case 'drop':
      return [
        { op: 'del', key: ['p', e.seq, e.view] },
        { op: 'del', key: ['c', e.seq, e.view] },
      ];
    case 'decided':
      return [{ op: 'put', key: ['d', e.seq], entry: e }];
    case 'stable':
      return [{ op: 'put', key: ['k'], entry: e }];
    case 'snapshot':
      return [{ op: 'put', key: ['s'], entry: e }];
    case 'hold':
      return [{ op: 'put', key: ['h', e.id], entry: e }];
    case 'unhold':
      return [
        { op: 'del', key: ['h', e.id] },
        { op: 'del-range', start: ['x', e.id], end: ['x', e.id + 1] },
      ];
    case 'letgo':
      // Keyed by a hash of the reference: a client's name may be longer than a key may be.
      return [{ op: 'put', key: ['x', e.id, sha256(JSON.stringify([e.ref.client, e.ref.seq, e.ref.digest, e.ref.urgent === true]))], entry: e }];
    case 'truncate':
      return [
        { op: 'del-range', start: ['p'], end: ['p', e.slotsThrough + 1] },
        { op: 'del-range', start: ['c'], end: ['c', e.slotsThrough + 1] },
        { op: 'del-range', start: ['d'], end: ['d', e.decidedThrough + 1] },
      ];
  }
}

/**
 * Where a replica's consensus state goes. `append` takes entries in the order the core emitted
 * them; `durable()` resolves once everything appended before the call is on disk (group commit:
 * one flush for all appends of an event-loop turn); `load()` reads back what is stored, for
 * recovery at start.
 */
export interface JournalStore {
  append(entries: readonly JournalEntry[]): void;
  durable(): Promise<void>;
  load(): StoredEntry[];
}

/** Compares journal keys as LMDB's ordered-binary does for these keys: numbers before strings, element by element, a prefix first. */
export function compareKeys(a: JournalKey, b: JournalKey): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * The journal in memory: for the simulator and tests. Appended entries are not durable until
 * `sync()` (or `durable()`), and `crash()` loses them, as a process killed before its flush
 * would — all of them, or the appends after a prefix: LMDB commits each append whole and in
 * order, and a commit the flush had not confirmed may still be found after a process crash.
 * Entries are copied through JSON, as a disk store would, so an entry the core later mutates,
 * or one JSON cannot carry, shows up here.
 */
export class MemoryJournalStore implements JournalStore {
  private readonly stored = new Map<string, { key: JournalKey; entry: StoredEntry }>();
  /** Appends not flushed yet, each as its entries in JSON. */
  private unsynced: string[][] = [];
  /** Flushes that wrote something, and the bytes of the entries appended (as JSON). */
  flushes = 0;
  bytes = 0;

  append(entries: readonly JournalEntry[]): void {
    if (entries.length === 0) return;
    const texts = entries.map((e) => JSON.stringify(e));
    for (const t of texts) this.bytes += t.length;
    this.unsynced.push(texts);
  }

  /** Makes everything appended so far durable, synchronously. */
  sync(): void {
    if (this.unsynced.length === 0) return;
    this.flushes++;
    this.keep(this.unsynced.length);
  }

  /** The process died: what was not flushed is gone, but the first `survivors` appends (committed, not yet confirmed). */
  crash(survivors = 0): void {
    this.keep(Math.min(survivors, this.unsynced.length));
    this.unsynced = [];
  }

  private keep(appends: number): void {
    for (const texts of this.unsynced.slice(0, appends)) for (const t of texts) this.apply(JSON.parse(t) as JournalEntry);
    this.unsynced = this.unsynced.slice(appends);
  }

  /** Appends not flushed yet. */
  get pending(): number {
    return this.unsynced.length;
  }

  durable(): Promise<void> {
    this.sync();
    return Promise.resolve();
  }

  load(): StoredEntry[] {
    return [...this.stored.values()].sort((a, b) => compareKeys(a.key, b.key)).map((s) => JSON.parse(JSON.stringify(s.entry)) as StoredEntry);
  }

  /** Keys stored, for tests of the bounds. */
  get size(): number {
    return this.stored.size;
  }

  private apply(e: JournalEntry): void {
    for (const op of journalOps(e)) {
      if (op.op === 'put') this.stored.set(JSON.stringify(op.key), { key: op.key, entry: op.entry });
      else if (op.op === 'del') this.stored.delete(JSON.stringify(op.key));
      else for (const [k, s] of this.stored) if (compareKeys(s.key, op.start) >= 0 && compareKeys(s.key, op.end) < 0) this.stored.delete(k);
    }
  }
}
