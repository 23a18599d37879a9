// The estimator: from two cost reports of one back end (the start and the end of a window) it
// computes the overhead the active sets cost the target in that window, as the poster defines
// it, and the target's own workload rates. Pure: reports in, an estimate out; the performance
// module around it decides the window (every second) and publishes on monitor.perf.
//
// Definitions (docs/prediction.md, "What is measured"):
//   overheadFraction = stoppedNs / computeNs      time stopped for monitoring (trap handling
//                                                 and switches to and from the monitor) over
//                                                 the target's own compute time
//   slowdown         = (computeNs + stoppedNs) / computeNs = 1 + overheadFraction
//                                                 how much longer the same work takes
// Rates are per second of the target's compute time, not of wall time: a traced target runs
// slower in wall time, but per unit of its own work it makes the same calls, which is what
// lets the predictor carry them over to another configuration.

import type { CostReport, StopTally } from './backend.js';
import { invariant } from '../core/index.js';

export interface StopEstimate {
  readonly count: number;
  readonly stoppedNs: number;
  /** Mean cost of one stop in the window; null when there was none. */
  readonly meanNs: number | null;
}

export interface Estimate {
  /** The window on the back end's clock. */
  readonly fromNs: number;
  readonly toNs: number;
  readonly computeNs: number;
  readonly stoppedNs: number;
  /** stopped / compute; null when the target did not compute in the window. */
  readonly overheadFraction: number | null;
  /** 1 + overheadFraction; null likewise. */
  readonly slowdown: number | null;
  readonly traps: StopEstimate;
  readonly extractions: Readonly<Record<'proclist' | 'files', StopEstimate>>;
  /** Calls per second of target compute time, per syscall, traced or not. */
  readonly syscallRates: Readonly<Record<string, number>>;
  /** All calls per second of target compute time, named or not. */
  readonly syscallRateTotal: number;
  readonly processes: number;
  readonly openFiles: number;
}

function stops(a: StopTally, b: StopTally): StopEstimate {
  const count = b.count - a.count;
  const stoppedNs = b.stoppedNs - a.stoppedNs;
  invariant(count >= 0 && stoppedNs >= -1e-6, 'cost reports are cumulative: stop tallies never go down');
  return { count, stoppedNs, meanNs: count > 0 ? stoppedNs / count : null };
}

/** The estimate for the window between two cumulative reports of the same back end. */
export function estimate(from: CostReport, to: CostReport): Estimate {
  invariant(from.kind === to.kind, 'an estimate compares two reports of one back end');
  invariant(to.atNs >= from.atNs && to.computeNs >= from.computeNs, 'cost reports are cumulative: time never goes back');
  const computeNs = to.computeNs - from.computeNs;
  const stoppedNs = to.stoppedNs - from.stoppedNs;
  const overheadFraction = computeNs > 0 ? stoppedNs / computeNs : null;
  const syscallRates: Record<string, number> = {};
  let named = 0;
  if (computeNs > 0) {
    for (const [name, n] of Object.entries(to.syscalls)) {
      const d = n - (from.syscalls[name] ?? 0);
      if (d <= 0) continue;
      syscallRates[name] = (d * 1e9) / computeNs;
      named += d;
    }
  }
  const total = Math.max(named, to.syscallsTotal - from.syscallsTotal);
  return {
    fromNs: from.atNs,
    toNs: to.atNs,
    computeNs,
    stoppedNs,
    overheadFraction,
    slowdown: overheadFraction === null ? null : 1 + overheadFraction,
    traps: stops(from.traps, to.traps),
    extractions: { proclist: stops(from.extractions.proclist, to.extractions.proclist), files: stops(from.extractions.files, to.extractions.files) },
    syscallRates,
    syscallRateTotal: computeNs > 0 ? (total * 1e9) / computeNs : 0,
    processes: to.processes,
    openFiles: to.openFiles,
  };
}
