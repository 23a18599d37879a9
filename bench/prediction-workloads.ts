// The workloads `npm run eval:prediction` traces: real processes made only of what a Debian
// system always has (dash, coreutils, findutils), no compiler, each chosen for a different
// ratio of syscalls to compute, so that the overhead model is tried from "no stops at all" to
// "stopped most of the time", on one process and on a tree that forks.
//
// Sizes: an untraced run takes roughly 0.1–0.5 s on this 2-core machine (dd on /dev/zero is the
// exception: its calls are so cheap that any size worth tracing is short untraced). The
// syscall-heavy ones are sized from the calibrated per-call cost (`perCallNs`) so that a traced
// run stays within a few seconds whatever ptrace costs that day (it has varied 10× between days
// on this machine); the sizing never uses a measured slowdown, so it cannot tune the answers.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface Workload {
  readonly name: string;
  /** What it exercises, for the doc's table of workloads. */
  readonly what: string;
  readonly command: string;
  readonly args: readonly string[];
  /**
   * For a workload whose activity changes: the share of its untraced run time its first phase
   * takes, so the evaluation can say what a prediction from the first phase alone would give.
   */
  readonly firstPhaseShare?: number;
}

export interface WorkloadSet {
  readonly workloads: readonly Workload[];
  /** The temp directory holding the generated files; removed by cleanup(). */
  readonly dir: string;
  cleanup(): void;
}

/** Budget of stopped time for the heaviest runs: traced run time is about this plus the untraced time. */
const TRACED_STOP_BUDGET_MS = { quick: 1000, full: 2000 } as const;

/** A dash arithmetic loop: no syscalls at all, pure compute in the shell. */
const shLoop = (n: number, body = ''): string => `i=0; while [ $i -lt ${n} ]; do i=$((i+1)); ${body}done`;

function clampInt(x: number, min: number, max: number): number {
  return Math.round(Math.min(max, Math.max(min, x)));
}

/**
 * Generates the files the workloads read (under a fresh temp dir) and returns the workloads,
 * sized for a traced run of a few seconds at `perCallNs` per traced call.
 */
export function makeWorkloads(options: { perCallNs: number; quick: boolean }): WorkloadSet {
  const dir = mkdtempSync(join(tmpdir(), 'fit-eval-prediction-'));
  const budgetNs = (options.quick ? TRACED_STOP_BUDGET_MS.quick : TRACED_STOP_BUDGET_MS.full) * 1e6;
  const perCall = Math.max(1_000, options.perCallNs);
  /** How many calls fit in the stop budget. */
  const calls = (share = 1): number => (budgetNs * share) / perCall;

  // 1,200 files of 16 KiB in 24 directories: sha256sum hashes each (~0.1 ms of compute) after
  // find and the opens, fstats, reads and closes of the files (~8 calls per file).
  const tree = join(dir, 'tree');
  const files = options.quick ? 800 : 1200;
  for (let d = 0; d < 24; d++) {
    mkdirSync(join(tree, `d${d}`), { recursive: true });
    for (let f = 0; f < files / 24; f++) writeFileSync(join(tree, `d${d}`, `f${f}`), randomBytes(16_384));
  }
  writeFileSync(join(dir, 'big.bin'), randomBytes(48 * 2 ** 20));
  // 600 files of 100 bytes: cat spends almost nothing per file but its calls.
  const small = join(dir, 'small');
  mkdirSync(small);
  for (let f = 0; f < 600; f++) writeFileSync(join(small, `s${f}`), `line ${f}\n`.repeat(10));

  const zeroCount = clampInt(calls() / 2, 5_000, 400_000);
  const w1024 = clampInt(calls() / 2, 2_000, 200_000);
  const w16k = options.quick ? 6_000 : 8_000;
  const phasedCount = clampInt(calls(0.6) / 2, 2_000, 200_000);

  const workloads: Workload[] = [
    {
      name: 'cpu-sh',
      what: 'dash arithmetic loop: compute only, a few dozen calls at start-up',
      command: 'sh',
      args: ['-c', shLoop(options.quick ? 150_000 : 250_000)],
    },
    {
      name: 'cpu-sha256',
      what: 'sha256sum of a 48 MiB file: compute, with one 32 KiB read per ~0.2 ms',
      command: 'sha256sum',
      args: [join(dir, 'big.bin')],
    },
    {
      name: 'dd-zero-bs1',
      what: `dd /dev/zero to /dev/null, 1-byte blocks (${zeroCount} blocks): almost nothing but calls`,
      command: 'dd',
      args: ['if=/dev/zero', 'of=/dev/null', 'bs=1', `count=${zeroCount}`, 'status=none'],
    },
    {
      name: 'dd-urandom-1k',
      what: `dd /dev/urandom to /dev/null, 1 KiB blocks (${w1024}): a call per ~2 µs of compute`,
      command: 'dd',
      args: ['if=/dev/urandom', 'of=/dev/null', 'bs=1024', `count=${w1024}`, 'status=none'],
    },
    {
      name: 'dd-urandom-16k',
      what: `dd /dev/urandom to /dev/null, 16 KiB blocks (${w16k}): a call per ~25 µs of compute`,
      command: 'dd',
      args: ['if=/dev/urandom', 'of=/dev/null', 'bs=16384', `count=${w16k}`, 'status=none'],
    },
    {
      name: 'files-sha256',
      what: `find + sha256sum over ${files} files of 16 KiB: opens, reads and hashing`,
      command: 'sh',
      args: ['-c', `find ${tree} -type f -exec sha256sum {} + > /dev/null`],
    },
    {
      name: 'files-cat',
      what: 'cat of 600 small files, 5 times: opens and reads with little compute',
      command: 'sh',
      args: ['-c', `for r in 1 2 3 4 5; do cat ${small}/* > /dev/null; done`],
    },
    {
      name: 'mix-fork',
      what: 'dash loop that runs cat every 2,000 iterations (fork + exec), then a short dd: compute, forks, calls',
      command: 'sh',
      args: ['-c', `${shLoop(options.quick ? 60_000 : 100_000, 'if [ $((i % 2000)) = 0 ]; then cat /etc/hostname > /dev/null; fi; ')}; dd if=/dev/urandom of=/dev/null bs=1024 count=${clampInt(calls(0.3) / 2, 1_000, 50_000)} status=none`],
    },
    {
      name: 'phased',
      what: `a dash loop (compute only), then dd /dev/urandom 1 KiB blocks (${phasedCount}): activity changes mid-run`,
      command: 'sh',
      args: ['-c', `${shLoop(options.quick ? 150_000 : 250_000)}; dd if=/dev/urandom of=/dev/null bs=1024 count=${phasedCount} status=none`],
      firstPhaseShare: 0.4,
    },
  ];
  return { workloads, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
