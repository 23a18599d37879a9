// The timed workloads of the store-choice bench, each on a fresh store in its own temp
// directory: concurrent durable appends (optionally with position updates and low-end trims
// interleaved), and the restart scan. They measure; they decide nothing.

import { mkdtempSync, rmSync, openSync, writeSync, fdatasyncSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoreKind } from './types.js';
import { isIntact, recordBatch } from './records.js';
import { StallSampler } from './stalls.js';

/** Where the stores live: under the OS temp dir, which must be on the disk being measured (not tmpfs). */
export function tempDir(what: string): string {
  return mkdtempSync(join(tmpdir(), `fitbroker-store-${what}-`));
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * The disk's own floor: 4 KiB write + fdatasync in a loop, one at a time. A store that
 * acknowledges single batches from one writer faster than this is not syncing each one.
 */
export function fsyncRate(durationMs: number): number {
  const dir = tempDir('fsync');
  const fd = openSync(join(dir, 'f'), 'w');
  const page = Buffer.alloc(4096, 1);
  const t0 = performance.now();
  let n = 0;
  try {
    while (performance.now() - t0 < durationMs) {
      writeSync(fd, page);
      fdatasyncSync(fd);
      n++;
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  return (n * 1000) / (performance.now() - t0);
}

export interface AppendShape {
  writers: number;
  batch: number;
  durationMs: number;
  /** Position updates (lazy, not awaited) after each acknowledged batch; 0 for none. */
  positionsPerBatch: number;
  /** Trim each channel down to retainRecords every trimEveryMs; 0 for no trimming. */
  trimEveryMs: number;
  retainRecords: number;
}

export interface AppendResult {
  recordsPerSec: number;
  mbPerSec: number;
  batchesPerSec: number;
  /** Time from append() to its durable acknowledgement. */
  ackMs: { p50: number; p99: number };
  /** The JS thread's stalls meanwhile: what the replica's networking would feel. */
  eventLoopDelayMs: { p99: number; max: number };
  /**
   * The share of the run the JS thread was busy (performance.eventLoopUtilization): a store
   * that works on that thread takes it from the replica's networking and consensus; one that
   * works on threads of its own leaves it free.
   */
  jsThreadBusy: number;
  positionsPerSec: number;
  trimmedPerSec: number;
}

interface Writer {
  channel: string;
  /** Records [0, next) are acknowledged; [low, next) are kept. */
  next: number;
  low: number;
}

export async function appendRun(kind: StoreKind, shape: AppendShape): Promise<AppendResult> {
  const dir = tempDir(kind.name);
  const store = await kind.open(dir);
  try {
    const writers: Writer[] = Array.from({ length: shape.writers }, (_, w) => ({ channel: `bench.${w}`, next: 0, low: 0 }));
    // The values are made once per writer and reused: a replica has its records in hand when it
    // appends, and making 250 bytes per record would otherwise be part of what is timed.
    const templates = writers.map((w) => recordBatch(w.channel, 0, shape.batch));
    const batchBytes = templates.map((t) => t.reduce((n, b) => n + b.length, 0));
    const latencies: number[] = [];
    let records = 0;
    let bytes = 0;
    let positions = 0;
    let trimmed = 0;
    const stalls = new StallSampler();
    stalls.start();
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    const deadline = t0 + shape.durationMs;
    const writing = writers.map(async (w, i) => {
      while (performance.now() < deadline) {
        const start = performance.now();
        await store.append(w.channel, w.next, templates[i]!);
        latencies.push(performance.now() - start);
        w.next += shape.batch;
        records += shape.batch;
        bytes += batchBytes[i]!;
        for (let k = 0; k < shape.positionsPerBatch; k++) store.setPosition(w.channel, `sub${k}`, w.next - 1);
        positions += shape.positionsPerBatch;
      }
    });
    const trimming = (async () => {
      if (shape.trimEveryMs <= 0) return;
      while (performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, shape.trimEveryMs));
        await Promise.all(
          writers.map(async (w) => {
            const below = w.next - shape.retainRecords;
            if (below <= w.low) return;
            await store.trim(w.channel, w.low, below);
            trimmed += below - w.low;
            w.low = below;
          }),
        );
      }
    })();
    await Promise.all([...writing, trimming]);
    const seconds = (performance.now() - t0) / 1000;
    const jsThreadBusy = performance.eventLoopUtilization(elu0).utilization;
    const eventLoopDelayMs = stalls.stop();
    latencies.sort((a, b) => a - b);
    return {
      recordsPerSec: records / seconds,
      mbPerSec: bytes / seconds / 1e6,
      batchesPerSec: latencies.length / seconds,
      ackMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) },
      eventLoopDelayMs,
      jsThreadBusy,
      positionsPerSec: positions / seconds,
      trimmedPerSec: trimmed / seconds,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ScanResult {
  records: number;
  openMs: number;
  recordsPerSec: number;
}

const SCAN_CHANNEL = 'bench.scan';
/** The largest batch the replica appends; the load is setup, not what is timed. */
const LOAD_BATCH = 500;
const LOADERS = 8;

/** Appends records [from, below) of the scan channel, LOADERS batches in flight. */
async function load(kind: StoreKind, dir: string, from: number, below: number, trimBelow: number): Promise<void> {
  const store = await kind.open(dir);
  try {
    let next = from;
    await Promise.all(
      Array.from({ length: LOADERS }, async () => {
        while (next < below) {
          const first = next;
          const n = Math.min(LOAD_BATCH, below - first);
          next += n;
          await store.append(SCAN_CHANNEL, first, recordBatch(SCAN_CHANNEL, first, n));
        }
      }),
    );
    if (trimBelow > 0) await store.trim(SCAN_CHANNEL, 0, trimBelow);
  } finally {
    await store.close();
  }
}

/** Opens the store as a restarting replica would and reads the channel, checking order and (sampled) content. */
async function scanOnce(kind: StoreKind, dir: string, expectFirst: number, expectCount: number): Promise<ScanResult> {
  const t0 = performance.now();
  const store = await kind.open(dir);
  const t1 = performance.now();
  try {
    let expect = expectFirst;
    const n = await store.scan(SCAN_CHANNEL, (index, value) => {
      if (index !== expect) throw new Error(`${kind.name}: scan read index ${index} where ${expect} was due`);
      // One record in 64 compared byte for byte: enough to catch a scan that returns the wrong
      // bytes, without making the comparison what is timed.
      if ((index & 63) === 0 && !isIntact(SCAN_CHANNEL, index, value)) throw new Error(`${kind.name}: record ${index} read back different`);
      expect++;
    });
    const t2 = performance.now();
    if (n !== expectCount) throw new Error(`${kind.name}: scan read ${n} records, ${expectCount} were written`);
    return { records: n, openMs: t1 - t0, recordsPerSec: (n * 1000) / (t2 - t1) };
  } finally {
    await store.close();
  }
}

export interface ScanRuns {
  /** `rounds` restarts of a store holding `records` records. */
  fresh: ScanResult[];
  /**
   * The same after half as many again were appended and as many trimmed from the low end: the
   * scan starts where the deleted records were (LSM tombstones, freed B-tree pages).
   */
  afterTrim: ScanResult[];
}

export async function scanRuns(kind: StoreKind, records: number, rounds: number, afterTrim: boolean): Promise<ScanRuns> {
  const dir = tempDir(`${kind.name}-scan`);
  try {
    await load(kind, dir, 0, records, 0);
    const fresh: ScanResult[] = [];
    for (let r = 0; r < rounds; r++) fresh.push(await scanOnce(kind, dir, 0, records));
    const trimmed: ScanResult[] = [];
    if (afterTrim) {
      const more = Math.floor(records / 2);
      await load(kind, dir, records, records + more, more);
      for (let r = 0; r < rounds; r++) trimmed.push(await scanOnce(kind, dir, more, records));
    }
    return { fresh, afterTrim: trimmed };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
