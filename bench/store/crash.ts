// Crash safety of a candidate store: a child process appends batches (1-500 records, 4
// channels, 4 batches in flight), trims the low end now and then, and prints each durable
// acknowledgement on stdout; the parent SIGKILLs it at a random moment, reopens the store and
// checks that every acknowledged record is there, intact, in a contiguous run, and that every
// acknowledged trim took effect. The next round restarts the child on the same directory, as a
// replica restarts on its own data after a crash.
//
// What this does not test: a SIGKILL leaves the OS page cache in place, so it shows the store's
// on-disk state is consistent after a process crash, not that an acknowledgement waited for an
// fsync (a store that never synced would pass). sync-check.ts looks at that.

import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { StoreKind } from './types.js';
import { isIntact, recordBatch } from './records.js';
// The simulator's seeded PRNG (mulberry32): a round's batch sizes and kill delay follow from its seed.
import { rng } from '../../test/helpers/consensus-sim.js';

export const CHANNELS = ['crash.0', 'crash.1', 'crash.2', 'crash.3'];
const BATCH_RECORDS_MAX = 500;
/** Records each channel keeps when the child trims. */
const RETAIN_RECORDS = 2000;
/** A child that was never killed stops by itself after this. */
const CHILD_LIFETIME_MS = 30_000;
const CLIENT = 'sub';

interface Extent {
  /** First and one-past-last index present; equal when the channel is empty. */
  low: number;
  high: number;
  problems: string[];
}

/** Reads a channel whole and checks it is one contiguous run of intact records. */
async function extent(store: Awaited<ReturnType<StoreKind['open']>>, channel: string): Promise<Extent> {
  let low = -1;
  let expect = -1;
  const problems: string[] = [];
  await store.scan(channel, (index, value) => {
    if (low < 0) low = expect = index;
    if (index !== expect && problems.length < 5) problems.push(`${channel}: index ${index} follows ${expect - 1} (a gap or disorder)`);
    if (!isIntact(channel, index, value) && problems.length < 5) problems.push(`${channel}: record ${index} is not what was written`);
    expect = index + 1;
  });
  return low < 0 ? { low: 0, high: 0, problems } : { low, high: expect, problems };
}

/**
 * The child: resumes every channel where the store ends and appends until killed, or until
 * stopAfterMs (the sync check runs it under strace for a set time). It prints `append` before
 * it hands a batch to the store and `ack` once the store says the batch is durable.
 */
export async function crashChild(kind: StoreKind, dir: string, seed: number, stopAfterMs?: number): Promise<void> {
  setTimeout(() => process.exit(3), CHILD_LIFETIME_MS).unref();
  if (stopAfterMs !== undefined) setTimeout(() => process.exit(0), stopAfterMs).unref();
  const store = await kind.open(dir);
  const rnd = rng(seed);
  const ext = await Promise.all(CHANNELS.map((c) => extent(store, c)));
  // stdout is a pipe: writeSync has the line in the pipe before the next batch starts, so a
  // kill never loses an acknowledgement the child made.
  writeSync(1, 'ready\n');
  await Promise.all(
    CHANNELS.map(async (channel, i) => {
      let { low, high: next } = ext[i]!;
      for (;;) {
        const n = 1 + Math.floor(rnd() * BATCH_RECORDS_MAX);
        writeSync(1, `append ${channel} ${next}\n`);
        await store.append(channel, next, recordBatch(channel, next, n));
        next += n;
        writeSync(1, `ack ${channel} ${next - 1}\n`);
        store.setPosition(channel, CLIENT, next - 1);
        if (rnd() < 1 / 16 && next - RETAIN_RECORDS > low) {
          const below = next - RETAIN_RECORDS;
          writeSync(1, `trimming ${channel} ${below}\n`);
          await store.trim(channel, low, below);
          low = below;
          writeSync(1, `trim ${channel} ${below}\n`);
        }
      }
    }),
  );
}

export interface CrashRound {
  seed: number;
  killAfterMs: number;
  acksThisRound: number;
  ok: boolean;
  problems: string[];
}

export interface CrashResult {
  rounds: CrashRound[];
  passed: number;
  /** Records acknowledged over all rounds and channels (trimmed ones included). */
  ackedRecords: number;
}

interface Acked {
  /** Highest acknowledged index per channel, -1 if none. */
  index: Map<string, number>;
  /** Highest acknowledged trim bound per channel: nothing below it may be left. */
  trimmedBelow: Map<string, number>;
  /** Highest trim bound ever asked for per channel: the store may start no later. */
  trimAskedBelow: Map<string, number>;
}

async function runChild(entry: string, kind: StoreKind, dir: string, seed: number, killAfterMs: number, acked: Acked): Promise<{ acks: number; error?: string }> {
  const child = spawn(process.execPath, [entry, '--crash-child', kind.name, '--dir', dir, '--seed', String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let acks = 0;
  let killedByUs = false;
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    const [what, channel, n] = line.split(' ');
    if (what === 'ready') {
      setTimeout(() => {
        killedByUs = true;
        child.kill('SIGKILL');
      }, killAfterMs);
    } else if (what === 'ack') {
      acks++;
      acked.index.set(channel!, Math.max(acked.index.get(channel!) ?? -1, Number(n)));
    } else if (what === 'trimming') {
      acked.trimAskedBelow.set(channel!, Math.max(acked.trimAskedBelow.get(channel!) ?? 0, Number(n)));
    } else if (what === 'trim') {
      acked.trimmedBelow.set(channel!, Math.max(acked.trimmedBelow.get(channel!) ?? 0, Number(n)));
    }
  });
  // 'close': the process has exited and its stdout is read to the end.
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  if (killedByUs && signal === 'SIGKILL') return { acks };
  return { acks, error: `child ended by itself (code ${code}, signal ${signal}): ${stderr.trim().slice(0, 500)}` };
}

async function verify(kind: StoreKind, dir: string, acked: Acked): Promise<string[]> {
  const problems: string[] = [];
  let store;
  try {
    store = await kind.open(dir);
  } catch (e) {
    return [`the store does not open: ${e instanceof Error ? e.message : String(e)}`];
  }
  try {
    const check = await store.check();
    if (check) problems.push(check);
    for (const channel of CHANNELS) {
      const e = await extent(store, channel);
      problems.push(...e.problems);
      const index = acked.index.get(channel) ?? -1;
      const trimmed = acked.trimmedBelow.get(channel) ?? 0;
      const asked = acked.trimAskedBelow.get(channel) ?? 0;
      if (e.high - 1 < index) problems.push(`${channel}: acknowledged up to ${index}, the store ends at ${e.high - 1}`);
      if (e.high > e.low && e.low > asked) problems.push(`${channel}: starts at ${e.low}, but no trim went past ${asked}`);
      if (e.high > e.low && e.low < trimmed) problems.push(`${channel}: starts at ${e.low}, though records below ${trimmed} were trimmed and acknowledged`);
      const pos = await store.position(channel, CLIENT);
      if (pos !== undefined && pos >= e.high) problems.push(`${channel}: position ${pos} is past the last record ${e.high - 1}`);
    }
  } finally {
    await store.close();
  }
  return problems;
}

/** Rounds of kill-and-check on one directory; the round seeds follow from seed. */
export async function crashRounds(entry: string, kind: StoreKind, dir: string, rounds: number, seed: number): Promise<CrashResult> {
  const rnd = rng(seed);
  const acked: Acked = { index: new Map(), trimmedBelow: new Map(), trimAskedBelow: new Map() };
  const out: CrashRound[] = [];
  for (let r = 0; r < rounds; r++) {
    const roundSeed = Math.floor(rnd() * 2 ** 31);
    const killAfterMs = Math.round(20 + rnd() * 480);
    const child = await runChild(entry, kind, dir, roundSeed, killAfterMs, acked);
    const problems = child.error ? [child.error] : await verify(kind, dir, acked);
    out.push({ seed: roundSeed, killAfterMs, acksThisRound: child.acks, ok: problems.length === 0, problems });
  }
  return { rounds: out, passed: out.filter((r) => r.ok).length, ackedRecords: [...acked.index.values()].reduce((n, i) => n + i + 1, 0) };
}
