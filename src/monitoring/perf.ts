// The performance module: every second it takes the back end's cumulative cost report, turns
// the last second into an estimate of what monitoring costs the target now (estimate.ts), keeps
// a longer window of reports as the basis for predictions (predict.ts), and builds the report
// an agent publishes on monitor.perf. The report carries everything a reader needs to predict
// a change itself (the basis estimate, the back end's calibration, the sets it supports), which
// is how `reconfigure --dry-run` predicts without publishing anything.

import { z } from 'zod';
import type { BackendKind, Calibration, CostReport, MonitorBackend } from './backend.js';
import { estimate, type Estimate } from './estimate.js';
import { predict, predictionSchema, type Prediction } from './predict.js';
import { SET_NAMES, monitorConfigSchema, type MonitorConfig } from './sets.js';

/** The prediction basis: the reports of about the last this many ms (whole seconds of work). */
export const PREDICTION_WINDOW_MS_DEFAULT = 10_000;
/** A basis with less target compute than this gives no prediction (rates would be noise). */
export const PREDICTION_BASIS_MIN_NS = 200e6;
/** How far back the basis may reach to hold PREDICTION_BASIS_MIN_NS of compute. */
export const PREDICTION_WINDOW_MAX_MS = 300_000;

const stopEstimateSchema = z.strictObject({ count: z.number(), stoppedNs: z.number(), meanNs: z.number().nullable() });
export const estimateSchema = z.strictObject({
  fromNs: z.number(),
  toNs: z.number(),
  computeNs: z.number(),
  stoppedNs: z.number(),
  overheadFraction: z.number().nullable(),
  slowdown: z.number().nullable(),
  traps: stopEstimateSchema,
  extractions: z.strictObject({ proclist: stopEstimateSchema, files: stopEstimateSchema }),
  syscallRates: z.record(z.string(), z.number()),
  syscallRateTotal: z.number(),
  processes: z.number(),
  openFiles: z.number(),
});

export const calibrationSchema = z.strictObject({
  trapsEverySyscall: z.boolean(),
  trapNs: z.number(),
  switchNs: z.number(),
  proclistBaseNs: z.number(),
  proclistPerProcessNs: z.number(),
  filesBaseNs: z.number(),
  filesPerFileNs: z.number(),
  trapGapNs: z.number().optional(),
  trapGapExponent: z.number().optional(),
});

const BACKEND_KINDS = ['sim', 'proc', 'ptrace', 'vmi'] as const satisfies readonly BackendKind[];

export const perfReportSchema = z.strictObject({
  type: z.literal('monitor.perf'),
  agent: z.string(),
  backend: z.enum(BACKEND_KINDS),
  supports: z.array(z.enum(SET_NAMES)),
  config: monitorConfigSchema,
  configVersion: z.number().int().min(0),
  /** The last interval: what the active sets cost the target now. */
  now: estimateSchema,
  /** The prediction basis: the last PREDICTION_WINDOW_MS of reports. */
  basis: estimateSchema,
  calibration: calibrationSchema,
  /** The model's figure for the active configuration over the basis, beside the measured one. */
  prediction: predictionSchema.nullable(),
  /** What the agent did with the events it collected, since it started. */
  events: z.strictObject({
    collected: z.record(z.string(), z.number()),
    published: z.number(),
    dropped: z.number(),
    backlog: z.number(),
  }),
  target: z.strictObject({ pid: z.number().nullable(), alive: z.boolean() }),
});
export type PerfReport = z.infer<typeof perfReportSchema>;

/** A prediction, or null when the basis is too thin to carry rates over. */
export function predictFrom(config: MonitorConfig, basis: Estimate, cal: Calibration): Prediction | null {
  return basis.computeNs < PREDICTION_BASIS_MIN_NS ? null : predict(config, basis, cal);
}

/** Keeps the cost reports of the prediction window and answers estimates over it. */
export class PerfWindow {
  private readonly reports: CostReport[] = [];

  constructor(
    private readonly backend: MonitorBackend,
    private readonly windowMs = PREDICTION_WINDOW_MS_DEFAULT,
  ) {}

  /** Takes a report now; returns the estimate of the interval since the previous one. */
  sample(): Estimate {
    const r = this.backend.costs();
    const prev = this.reports[this.reports.length - 1] ?? r;
    this.reports.push(r);
    // Keep one report at or before the window's start, so the basis spans the whole window. A
    // target slowed a hundredfold (a VM trapping every call) computes little in a window: the
    // basis then reaches further back until it holds PREDICTION_BASIS_MIN_NS of compute, up to
    // PREDICTION_WINDOW_MAX_MS, so predictions stay possible however heavy the monitoring.
    const spanNs = (i: number): number => r.atNs - this.reports[i]!.atNs;
    const enough = (i: number): boolean => spanNs(i) >= this.windowMs * 1e6 && r.computeNs - this.reports[i]!.computeNs >= PREDICTION_BASIS_MIN_NS;
    while (this.reports.length > 2 && (enough(1) || spanNs(1) >= PREDICTION_WINDOW_MAX_MS * 1e6)) this.reports.shift();
    return estimate(prev, r);
  }

  /** The estimate over the window, up to this instant. */
  basis(): Estimate {
    const now = this.backend.costs();
    return estimate(this.reports[0] ?? now, now);
  }

  prediction(config: MonitorConfig): Prediction | null {
    return predictFrom(config, this.basis(), this.backend.calibration());
  }
}
