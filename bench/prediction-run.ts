// One run of one workload under one combination of monitoring sets, for eval:prediction: the
// workload is launched stopped before exec (launchTarget), the perf syscall counter and the
// real ptrace back end attach, the sets are applied BEFORE the target is resumed (so the whole
// run pays for them), and the run time is from resume to exit. The back end's cost reports
// around the run give its own estimate (and, untraced, the workload's observed rates: the basis
// the predictor uses). Nothing here predicts or compares; prediction.ts does.

import type { Calibration, CostReport } from '../src/monitoring/backend.js';
import { estimate, type Estimate } from '../src/monitoring/estimate.js';
import { ptraceBackend } from '../src/monitoring/ptrace.js';
import { startSyscallCounter } from '../src/monitoring/rates.js';
import type { SetSpec } from '../src/monitoring/sets.js';
import { launchTarget } from '../src/monitoring/target.js';
import type { Workload } from './prediction-workloads.js';

/** Cost reports are sampled this often during a run, for a window over part of it. */
const SAMPLE_MS = 25;

export interface RunResult {
  /** Wall time from resume to exit. */
  readonly wallNs: number;
  /** The back end's estimate over the whole run (its window: resume to exit). */
  readonly whole: Estimate;
  /** Reports sampled during the run, for a window over its first part. */
  readonly samples: readonly CostReport[];
  readonly first: CostReport;
  readonly exitCode: number | null;
}

/** Runs `workload` with `sets` applied from before its first instruction to its exit. */
export async function runWorkload(workload: Workload, sets: readonly SetSpec[], calibration: Calibration): Promise<RunResult> {
  const target = await launchTarget(workload.command, workload.args, { stdio: 'ignore' });
  const counter = await startSyscallCounter(target.pid);
  if (counter.unavailable !== null) {
    target.kill('SIGKILL');
    throw new Error(`eval:prediction needs the perf syscall counter: ${counter.unavailable}`);
  }
  const errors: string[] = [];
  const backend = ptraceBackend({ target, sink: () => {}, counter, calibration, onError: (m) => errors.push(m) });
  try {
    await backend.start();
    if (sets.length > 0) await backend.apply({ enable: [...sets], disable: [] });
    const first = backend.costs();
    const samples: CostReport[] = [];
    const timer = setInterval(() => samples.push(backend.costs()), SAMPLE_MS);
    target.resume();
    const exit = await target.exited;
    clearInterval(timer);
    const end = backend.costs();
    // perf prints a count every 100 ms; stopping it adds the interval in progress. The report
    // keeps the exit instant as its clock, so compute time is not stretched by the stop.
    await counter.stop();
    const last: CostReport = { ...end, syscallsTotal: Math.max(end.syscallsTotal, counter.total()) };
    if (exit.code !== 0) throw new Error(`${workload.name} exited ${exit.signal ?? exit.code}${errors.length > 0 ? `: ${errors.join('; ')}` : ''}`);
    return { wallNs: exit.wallNs, whole: estimate(first, last), samples, first, exitCode: exit.code };
  } finally {
    await backend.stop();
    if (target.alive()) target.kill('SIGKILL');
  }
}

/**
 * The estimate over the first `share` of a run's wall time: what an agent that had watched
 * only that long would know. Uses the last sample at or before that instant.
 */
export function firstPart(run: RunResult, share: number): Estimate | undefined {
  const untilNs = run.first.atNs + run.wallNs * share;
  const at = run.samples.filter((s) => s.atNs <= untilNs).at(-1);
  return at === undefined ? undefined : estimate(run.first, at);
}
