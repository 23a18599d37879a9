// The predictor: the overhead a proposed configuration would cost the target, before it is
// applied, from the target's observed per-syscall rates (an Estimate over a recent window) and
// the per-stop costs of the back end in use (measured in that window where it has stops of the
// kind, its calibration otherwise). Pure: no clock, no back end.
//
// The model (docs/prediction.md has the derivation, assumptions and where it is wrong):
//   T   = sum over traced syscalls s of rate_s          traps per second of compute
//         (every syscall's rate on a back end that stops at each call while any is traced)
//   c_t = cost of one trap (handling + 2 switches)
//   c_i = cost of one extraction of periodic set i (2 switches + base + per item * items)
//   d_i = c_i / (P_i + c_i)                             share of wall time set i keeps the
//                                                       target paused (the next extraction is
//                                                       due P_i after the previous one ended)
//   slowdown = (1 + T * c_t) / (1 - sum_i d_i)          wall time per unit of compute
//   overhead = slowdown - 1                             stopped time per unit of compute
// Traps stretch wall time, and periodic extraction runs on wall time, so the two multiply; the
// naive sum T*c_t + sum c_i/P_i (kept in the result for comparison) underestimates.

import { z } from 'zod';
import type { Calibration } from './backend.js';
import type { Estimate, StopEstimate } from './estimate.js';
import type { MonitorConfig } from './sets.js';

/** Fewer stops than this in the window and the calibration is used instead of their mean. */
export const MEASURED_STOPS_MIN = 20;
/** The same for extractions, which are rarer. */
export const MEASURED_EXTRACTIONS_MIN = 3;

const costBasis = z.enum(['measured', 'calibration']);

const extractionTermSchema = z.strictObject({
  set: z.enum(['proclist', 'files']),
  periodMs: z.number(),
  items: z.number(),
  pauseNs: z.number(),
  pauseBasis: costBasis,
  /** Share of wall time this set keeps the target paused: pauseNs / (period + pauseNs). */
  wallShare: z.number(),
});

export const predictionSchema = z.strictObject({
  /** Predicted stopped time over compute time; null when the extractions alone saturate. */
  overheadFraction: z.number().nullable(),
  /** Predicted wall time per unit of compute; null when saturated. */
  slowdown: z.number().nullable(),
  /** The paused shares of wall time add up to 1 or more: the target would never run. */
  saturated: z.boolean(),
  /** What summing each set's cost on its own would say: shown to explain the combination. */
  naiveOverheadFraction: z.number(),
  traps: z.strictObject({
    /** Stops per second of compute: the traced calls, or every call on a back end that stops at each. */
    perComputeSec: z.number(),
    /** Traced calls per second of compute: what the syscalls set would publish. */
    reportedPerComputeSec: z.number(),
    costNs: z.number(),
    costBasis,
    /** T * c_t: stopped time from traps per unit of compute. */
    share: z.number(),
    /** Traced syscalls named in the config that the window never saw (predicted at rate 0). */
    unseen: z.array(z.string()),
  }),
  extractions: z.array(extractionTermSchema),
  /** Events the configuration would publish per wall second (syscalls, proclist, files). */
  eventsPerWallSec: z.number().nullable(),
  /** The compute time the rates were observed over. */
  basisComputeNs: z.number(),
});

export type Prediction = z.infer<typeof predictionSchema>;
export type ExtractionTerm = z.infer<typeof extractionTermSchema>;

/**
 * One trap's cost at `perComputeSec` traps per second of compute: the window's measured mean
 * where it has enough traps, the calibration otherwise; rescaled to the new density where the
 * back end's cost depends on it (Calibration.trapGapExponent), from the density it was
 * measured at (the window's compute per trap, or the calibration's trapGapNs). Never below
 * the two switches a stop costs at least.
 */
function trapCost(observed: Estimate, cal: Calibration, perComputeSec: number): { costNs: number; basis: 'measured' | 'calibration' } {
  const m = observed.traps;
  const measured = m.count >= MEASURED_STOPS_MIN && m.meanNs !== null;
  const costNs = measured ? m.meanNs! : cal.trapNs + 2 * cal.switchNs;
  const basis = measured ? 'measured' : 'calibration';
  const exponent = cal.trapGapExponent;
  const fromGap = measured ? observed.computeNs / m.count : cal.trapGapNs;
  if (exponent === undefined || fromGap === undefined || fromGap <= 0 || perComputeSec <= 0) return { costNs, basis };
  return { costNs: Math.max(2 * cal.switchNs, costNs * (1e9 / perComputeSec / fromGap) ** exponent), basis };
}

/** Pause of one extraction with `items` items: the measured mean, rescaled to `items` by the calibration's shape. */
function extractionCost(m: StopEstimate, observedItems: number, items: number, baseNs: number, perItemNs: number, switchNs: number): { pauseNs: number; basis: 'measured' | 'calibration' } {
  const model = (n: number): number => 2 * switchNs + baseNs + perItemNs * n;
  if (m.count >= MEASURED_EXTRACTIONS_MIN && m.meanNs !== null) {
    const scale = model(observedItems) > 0 ? model(items) / model(observedItems) : 1;
    return { pauseNs: m.meanNs * scale, basis: 'measured' };
  }
  return { pauseNs: model(items), basis: 'calibration' };
}

/** Predicts the overhead of `config` for the workload seen in `observed`, with the back end's calibration. */
export function predict(config: MonitorConfig, observed: Estimate, cal: Calibration): Prediction {
  const traced = config.syscalls?.syscalls;
  let reportedPerComputeSec = 0;
  const unseen: string[] = [];
  if (traced === 'all') reportedPerComputeSec = observed.syscallRateTotal;
  else if (traced !== undefined) {
    for (const s of traced) {
      const rate = observed.syscallRates[s];
      if (rate === undefined) unseen.push(s);
      else reportedPerComputeSec += rate;
    }
  }
  // ptrace stops at every call while anything is traced; the list only changes what is reported.
  const perComputeSec = traced !== undefined && cal.trapsEverySyscall ? observed.syscallRateTotal : reportedPerComputeSec;
  const trap = trapCost(observed, cal, perComputeSec);
  const trapShare = traced === undefined ? 0 : (perComputeSec * trap.costNs) / 1e9;

  const extractions: ExtractionTerm[] = [];
  if (config.proclist) {
    const c = extractionCost(observed.extractions.proclist, observed.processes, observed.processes, cal.proclistBaseNs, cal.proclistPerProcessNs, cal.switchNs);
    extractions.push(term('proclist', config.proclist.periodMs, observed.processes, c));
  }
  if (config.files) {
    const c = extractionCost(observed.extractions.files, observed.openFiles, observed.openFiles, cal.filesBaseNs, cal.filesPerFileNs, cal.switchNs);
    extractions.push(term('files', config.files.periodMs, observed.openFiles, c));
  }
  const pausedShare = extractions.reduce((a, e) => a + e.wallShare, 0);
  const naiveOverheadFraction = trapShare + extractions.reduce((a, e) => a + e.pauseNs / (e.periodMs * 1e6), 0);
  const saturated = pausedShare >= 1;
  const slowdown = saturated ? null : (1 + trapShare) / (1 - pausedShare);
  const eventsPerWallSec =
    slowdown === null ? null : (traced === undefined ? 0 : reportedPerComputeSec / slowdown) + extractions.reduce((a, e) => a + 1e9 / (e.periodMs * 1e6 + e.pauseNs), 0);
  return {
    overheadFraction: slowdown === null ? null : slowdown - 1,
    slowdown,
    saturated,
    naiveOverheadFraction,
    traps: { perComputeSec, reportedPerComputeSec, costNs: trap.costNs, costBasis: trap.basis, share: trapShare, unseen },
    extractions,
    eventsPerWallSec,
    basisComputeNs: observed.computeNs,
  };
}

function term(set: 'proclist' | 'files', periodMs: number, items: number, c: { pauseNs: number; basis: 'measured' | 'calibration' }): ExtractionTerm {
  return { set, periodMs, items, pauseNs: c.pauseNs, pauseBasis: c.basis, wallShare: c.pauseNs / (periodMs * 1e6 + c.pauseNs) };
}
