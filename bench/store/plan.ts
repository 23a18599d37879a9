// What one store-choice run measures, and the shape of the JSON it writes: the results file is
// the record; the tables in docs/persistence.md are printed from it (table.ts).

import type { Machine } from '../machine.js';
import type { AppendResult, ScanRuns } from './workloads.js';
import type { CrashResult } from './crash.js';
import type { SyncCheck } from './sync-check.js';

export const WRITERS = [1, 8, 64] as const;
export const BATCHES = [32, 256] as const;
/** The mixed runs' shape: many publishers, small batches, where per-commit costs show most. */
export const MIXED = { writers: 8, batch: 32, positionsPerBatch: 4, trimEveryMs: 100, retainRecords: 256 } as const;

export interface Plan {
  quick: boolean;
  /** Passes over the append matrix and mixed runs; each figure is reported as the median and range of these. */
  repeat: number;
  cellMs: number;
  scanRecords: number;
  scanRounds: number;
  /** Whether to scan again after as many records again were appended and the first ones trimmed. */
  scanAfterTrim: boolean;
  crashRounds: number;
  /** How long the crash child runs under strace for the sync check. */
  syncCheckMs: number;
  seed: number;
  mixed: typeof MIXED;
}

export function planFor(quick: boolean, seed: number): Plan {
  return quick
    ? { quick, repeat: 1, cellMs: 350, scanRecords: 200_000, scanRounds: 1, scanAfterTrim: false, crashRounds: 2, syncCheckMs: 400, seed, mixed: MIXED }
    : { quick, repeat: 2, cellMs: 700, scanRecords: 200_000, scanRounds: 2, scanAfterTrim: true, crashRounds: 5, syncCheckMs: 800, seed, mixed: MIXED };
}

export interface AppendCell {
  writers: number;
  batch: number;
  /** One result per pass. */
  runs: AppendResult[];
}

export interface KindResult {
  name: string;
  settings: string;
  durable: boolean;
  package: string;
  version: string;
  appends: AppendCell[];
  /** MIXED without and with lazy position updates, and with trims too; one result per pass each. */
  mixed: { plain: AppendResult[]; positions: AppendResult[]; positionsAndTrim: AppendResult[] };
  scan: ScanRuns;
  crash: CrashResult;
  /** The strace check that acknowledgements follow a sync (one per run; why not, when it did not run). */
  syncChecks: (SyncCheck | { skipped: string })[];
  /** The disk's own 4 KiB write + fdatasync rate, one at a time, measured just before each pass of this kind. */
  fsyncPerSec: number[];
  errors: string[];
}

export interface StoreChoiceDoc {
  bench: 'store-choice';
  machine: Machine;
  date: string;
  args: string[];
  command: string;
  plan: Plan;
  tmpdir: string;
  /** os.loadavg() at the start and the end: other work on the machine shows here. */
  loadAverage: { start: number[]; end: number[] };
  kinds: KindResult[];
}
