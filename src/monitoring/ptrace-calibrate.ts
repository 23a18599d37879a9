// Measures what one ptrace stop costs a target on THIS machine, now: the figure the ptrace back
// end multiplies its trap count by (ptrace cannot time each stop, and the target's CPU time is
// inflated by them), and the predictor's per-stop cost. It varies several-fold between days on
// the same machine (28.7 µs once, 100–150 µs another day), so the agent calls this at start
// instead of trusting a constant.
//
// Method: `dd if=/dev/zero of=/dev/null bs=1 count=N status=none` makes 2N syscalls (a read
// and a write per byte) and nothing else of note. It is timed untraced and under
// `strace -f -qq -o /dev/null -e trace=all -ttt -s 256` (what the back end runs, less the output
// parsing, which happens in the agent, not in the target's stops). The same two runs with
// count=0 measure the start-up (process creation, strace attaching, dd's own start-up calls),
// which is subtracted so that only the 2N calls are divided among (all runs pinned to one CPU,
// as the back end pins strace with the target, affinity.ts):
//   perCallNs = ((traced(N) − traced(0)) − (untraced(N) − untraced(0))) / 2N
// N is chosen so that the traced run takes about TRACED_RUN_MS; each figure is the median of
// several runs, as the machine is noisy.
//
// One "stop" here is one traced call (its entry and exit stops together), as the back end
// counts traps. switchNs, the two context switches between target and tracer, is a share of
// it (SWITCH_SHARE, from the split of the default ptrace profile: 2 µs of 28.4 µs); trapNs is
// the rest.

import { spawn } from 'node:child_process';
import { ensureDebianPackage, FitError, median } from '../core/index.js';
import { lastCpu } from './affinity.js';
import type { Calibration } from './backend.js';
import { STRACE, STRACE_PATH, STRACE_STRING_BYTES_MAX } from './strace.js';

export interface PtraceCalibration extends Calibration {
  /** What was measured, for the agent's log and docs. */
  readonly measured: {
    readonly perCallNs: number;
    readonly count: number;
    readonly runs: number;
    readonly untracedMs: number;
    readonly tracedMs: number;
  };
}

/** The share of one stop's cost that is the two switches (2 × switchNs): 4 µs of 28.4 µs. */
export const SWITCH_SHARE = (2 * 2_000) / 28_400;
/** How long one traced run should take: long against start-up noise, short for the agent's start. */
const TRACED_RUN_MS = 400;
const PROBE_COUNT = 2000;
const COUNT_MIN = 1000;
/**
 * The cost is bimodal on a 2-vCPU VM (~13 µs when strace and dd share a CPU, ~100–140 µs when
 * each wakeup crosses CPUs), so the probe can guess 10× low; this caps a traced run at ~1 s
 * even then.
 */
const COUNT_MAX = 4000;

function timed(command: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ns = Number(process.hrtime.bigint() - t0);
      if (code === 0) resolve(ns);
      else reject(new FitError('FIT_ERR_INTERNAL', `${command} ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
    });
  });
}

const dd = (count: number): string[] => ['if=/dev/zero', 'of=/dev/null', 'bs=1', `count=${count}`, 'status=none'];
/**
 * Both runs on one CPU, as the back end pins strace and the target together (affinity.ts):
 * unpinned, the cost is ~10× higher or not, at the scheduler's whim.
 */
const pinned = (): string[] => ['-c', String(lastCpu(process.pid) ?? 0)];
const untraced = (count: number): Promise<number> => timed('taskset', [...pinned(), 'dd', ...dd(count)]);
const traced = (count: number): Promise<number> => timed('taskset', [...pinned(), STRACE_PATH, '-f', '-qq', '-o', '/dev/null', '-e', 'trace=all', '-ttt', '-s', String(STRACE_STRING_BYTES_MAX), 'dd', ...dd(count)]);


/**
 * Measures the per-call cost of tracing on this machine (1–4 s with the default 3 runs).
 * Throws FIT_ERR_NOT_SUPPORTED when strace is missing and cannot be installed.
 */
export async function calibratePtrace(options: { runs?: number } = {}): Promise<PtraceCalibration> {
  const runs = options.runs ?? 3;
  const missing = await ensureDebianPackage(STRACE);
  if (missing !== undefined) throw new FitError('FIT_ERR_NOT_SUPPORTED', `the ptrace back end needs strace: ${missing}`);
  const probeNs = (await traced(PROBE_COUNT)) - (await traced(0));
  const perCallGuessNs = Math.max(1_000, probeNs / (2 * PROBE_COUNT));
  const count = Math.round(Math.min(COUNT_MAX, Math.max(COUNT_MIN, (TRACED_RUN_MS * 1e6) / (2 * perCallGuessNs))));
  const samples = { u0: [] as number[], uN: [] as number[], t0: [] as number[], tN: [] as number[] };
  // Interleaved, so a burst of load on the machine hits both kinds of run alike.
  for (let i = 0; i < runs; i++) {
    samples.u0.push(await untraced(0));
    samples.t0.push(await traced(0));
    samples.uN.push(await untraced(count));
    samples.tN.push(await traced(count));
  }
  const tracedNs = median(samples.tN) - median(samples.t0);
  const untracedNs = median(samples.uN) - median(samples.u0);
  const perCallNs = Math.max(0, (tracedNs - untracedNs) / (2 * count));
  const switchNs = (perCallNs * SWITCH_SHARE) / 2;
  return {
    trapsEverySyscall: true,
    trapNs: perCallNs - 2 * switchNs,
    switchNs,
    proclistBaseNs: 0,
    proclistPerProcessNs: 0,
    filesBaseNs: 0,
    filesPerFileNs: 0,
    measured: { perCallNs, count, runs, untracedMs: median(samples.uN) / 1e6, tracedMs: median(samples.tN) / 1e6 },
  };
}
