// The figures of eval:prediction and how they are written: one case per workload and
// combination of sets (predicted against measured slowdown, medians over the repetitions), the
// summary (MAPE, worst ratio), the JSON document (its `cases[].workload, sets,
// predictedSlowdown, measuredSlowdown` and `mape` are a contract read outside the project:
// fields may be added, never renamed) and the markdown of docs/prediction-accuracy.md,
// generated from that document and never edited by hand.

import type { Estimate } from '../src/monitoring/estimate.js';
import type { Prediction } from '../src/monitoring/predict.js';
import type { Machine } from './machine.js';
import type { RunResult } from './prediction-run.js';
import { median } from '../src/core/index.js';
import type { VmiEval } from './prediction-vmi.js';

/** What every case of the evaluation states, whatever the back end. */
export interface CaseFigures {
  readonly workload: string;
  readonly sets: string;
  readonly predictedSlowdown: number;
  readonly measuredSlowdown: number;
  /** |predicted − measured| / measured. */
  readonly error: number;
  /** max(predicted / measured, measured / predicted). */
  readonly ratio: number;
  /** The back end's own estimate while the sets ran (the median over runs for ptrace). */
  readonly estimatedSlowdown: number | null;
  /** What the prediction charged per trap. */
  readonly trapCostNs: number;
}

export function figures(workload: string, sets: string, predicted: number, measured: number, estimated: number | null, trapCostNs: number): CaseFigures {
  return {
    workload,
    sets,
    predictedSlowdown: predicted,
    measuredSlowdown: measured,
    error: Math.abs(predicted - measured) / measured,
    ratio: Math.max(predicted / measured, measured / predicted),
    estimatedSlowdown: estimated,
    trapCostNs,
  };
}

export interface EvalCase extends CaseFigures {
  /** Untraced and traced run times, medians, ms. */
  readonly untracedMs: number;
  readonly tracedMs: number;
  /** Every traced run's slowdown against the untraced run of its repetition; measured is their median. */
  readonly measuredRuns: readonly number[];
  /** The basis: calls per second of compute observed untraced, and the trap cost used. */
  readonly basisCallsPerSec: number;
  /** For a workload whose activity changes: the prediction from its first phase only. */
  readonly firstPhasePredictedSlowdown?: number;
}

export interface EvalDoc {
  readonly mape: number;
  readonly worstRatio: number;
  readonly worstCase: string;
  readonly cases: readonly EvalCase[];
  readonly workloads: readonly { name: string; what: string }[];
  readonly repetitions: number;
  readonly quick: boolean;
  readonly calibration: { perCallNs: number; trapNs: number; switchNs: number; measured: unknown; bare: { perCallNs: number }; perRepetitionNs: readonly number[] };
  readonly machine: Machine;
  readonly loadavg: readonly number[];
  readonly date: string;
  readonly durationS: number;
  readonly command: string;
  /** The vmi back end's cases, on a real QEMU guest (absent with --backend ptrace). */
  readonly vmi?: VmiEval;
}


/** The window whose overall call rate is the median of several (the lower middle one for an even count). */
export function medianWindow(windows: readonly Estimate[]): Estimate {
  if (windows.length === 0) throw new Error('medianWindow() needs at least one window');
  const sorted = [...windows].sort((a, b) => a.syscallRateTotal - b.syscallRateTotal);
  return sorted[(sorted.length - 1) >> 1]!;
}

export function caseOf(input: { workload: string; sets: string; prediction: Prediction; firstPhase: Prediction | undefined; t0Ns: number; traced: readonly RunResult[]; untraced: readonly RunResult[]; basis: Estimate }): EvalCase {
  const { prediction, t0Ns, traced, untraced } = input;
  if (prediction.slowdown === null) throw new Error(`${input.workload} under ${input.sets}: the prediction saturates`);
  const t1Ns = median(traced.map((r) => r.wallNs));
  // Each traced run against the untraced run of the same repetition (seconds apart): the
  // machine's speed drifts by tens of % over minutes, and pairing cancels the drift.
  const paired = traced.map((r, i) => r.wallNs / untraced[i]!.wallNs);
  const measured = median(paired);
  const predicted = prediction.slowdown;
  const estimates = traced.map((r) => r.whole.slowdown).filter((s): s is number => s !== null);
  return {
    ...figures(input.workload, input.sets, predicted, measured, estimates.length > 0 ? median(estimates) : null, prediction.traps.costNs),
    untracedMs: t0Ns / 1e6,
    tracedMs: t1Ns / 1e6,
    measuredRuns: paired,
    basisCallsPerSec: input.basis.syscallRateTotal,
    ...(input.firstPhase?.slowdown != null ? { firstPhasePredictedSlowdown: input.firstPhase.slowdown } : {}),
  };
}

export function summary(cases: readonly CaseFigures[]): { mape: number; worstRatio: number; worstCase: string } {
  const mape = cases.reduce((a, c) => a + c.error, 0) / cases.length;
  const worst = cases.reduce((w, c) => (c.ratio > w.ratio ? c : w), cases[0]!);
  return { mape, worstRatio: worst.ratio, worstCase: `${worst.workload} under ${worst.sets}` };
}

const f2 = (x: number): string => x.toFixed(2);
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;

export function markdown(doc: EvalDoc): string {
  const m = doc.machine;
  const verdict = (ok: boolean): string => (ok ? 'met' : '**missed**');
  const floor = doc.mape < 0.15 && doc.worstRatio <= 2;
  const target = doc.mape < 0.1 && doc.worstRatio <= 1.5;
  const lines = [
    '# Prediction accuracy (generated)',
    '',
    `Generated by \`${doc.command}\` on ${doc.date} (${doc.durationS.toFixed(0)} s); do not edit: run it again.`,
    'How the evaluation works and what the figures say: docs/prediction.md, "Accuracy on real workloads".',
    '',
    `- **MAPE ${pct(doc.mape)}**, worst case off by **${f2(doc.worstRatio)}×** (${doc.worstCase}).`,
    `  Issue 8's floor (MAPE < 15 %, no case off by more than 2×): ${verdict(floor)}; target (MAPE < 10 %, every case within 1.5×): ${verdict(target)}.`,
    `- Calibration (calibratePtraceBackend: dd bs=1 through the back end, once in every repetition, the median used): ${(doc.calibration.perCallNs / 1000).toFixed(1)} µs per traced call (trap ${(doc.calibration.trapNs / 1000).toFixed(1)} µs + 2 × switch ${(doc.calibration.switchNs / 1000).toFixed(2)} µs), of ${doc.calibration.perRepetitionNs.map((n) => (n / 1000).toFixed(1)).join(', ')} µs; bare strace (calibratePtrace) said ${(doc.calibration.bare.perCallNs / 1000).toFixed(1)} µs.`,
    `- ${doc.repetitions} repetitions, interleaved: each runs every workload untraced and under every combination, in a rotated order. Measured = median over the repetitions of traced / untraced run time of the same repetition; predicted from the rates of the untraced run whose rate is the median (one run: an agent's window). Untraced runs had the perf syscall counter attached, as an agent's would.`,
    `- Machine: ${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}; load average at the end ${doc.loadavg.map((l) => l.toFixed(2)).join(' ')}.`,
    '',
    '| workload | sets | predicted | measured | error | back end\'s estimate | untraced ms | traced ms | measured runs |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
    ...doc.cases.map(
      (c) =>
        `| ${c.workload} | \`${c.sets}\` | ${f2(c.predictedSlowdown)} | ${f2(c.measuredSlowdown)} | ${pct(c.error)} | ${c.estimatedSlowdown === null ? '—' : f2(c.estimatedSlowdown)} | ${c.untracedMs.toFixed(0)} | ${c.tracedMs.toFixed(0)} | ${c.measuredRuns.map(f2).join(' ')} |`,
    ),
    '',
  ];
  const phased = doc.cases.filter((c) => c.firstPhasePredictedSlowdown !== undefined);
  if (phased.length > 0) {
    lines.push(
      '## The workload whose activity changes',
      '',
      'The MAPE uses the agent\'s window over the whole untraced run. An agent that had watched only the first phase (the',
      'start of the run, before the activity changed) would have predicted:',
      '',
      '| workload | sets | from the first phase | from the whole run | measured |',
      '|---|---|---:|---:|---:|',
      ...phased.map((c) => `| ${c.workload} | \`${c.sets}\` | ${f2(c.firstPhasePredictedSlowdown!)} | ${f2(c.predictedSlowdown)} | ${f2(c.measuredSlowdown)} |`),
      '',
    );
  }
  if (doc.vmi) lines.push(...vmiMarkdown(doc.vmi));
  lines.push('## Workloads', '', '| workload | what it does | calls per second of compute (untraced) |', '|---|---|---:|');
  for (const w of doc.workloads) {
    const c = doc.cases.find((x) => x.workload === w.name);
    lines.push(`| ${w.name} | ${w.what} | ${c === undefined ? '—' : Math.round(c.basisCallsPerSec).toLocaleString('en-US')} |`);
  }
  lines.push('');
  return lines.join('\n');
}

/** The section of docs/prediction-accuracy.md on the vmi cases. */
export function vmiMarkdown(v: VmiEval): string[] {
  const f2 = (x: number | null): string => (x === null || !Number.isFinite(x) ? '—' : x.toFixed(2));
  const lines = [
    '## The vmi back end (a real QEMU guest)',
    '',
    `QEMU ${v.accel === 'kvm' ? 'with KVM' : "'s emulator (TCG)"}; one guest per workload; measured = the guest's rounds per second untraced (the mean of right before and right after the case) over traced, from its console. Predicted from 3 s of the guest untraced and the back end's calibration (its start-up census: every handler trapped for 3 s). How the costs arise: docs/vmi.md.`,
    '',
    `- **MAPE ${(v.mape * 100).toFixed(1)} %**, worst case off by **${f2(v.worstRatio)}×** (${v.worstCase}).`,
    ...v.calibrations.map((c) => `- Calibration on ${c.workload}: ${((c.calibration.trapNs + 2 * c.calibration.switchNs) / 1e6).toFixed(2)} ms per trap, ${(c.calibration.proclistPerProcessNs / 1e6).toFixed(2)} ms per task walked.`),
    '',
    '| workload | sets | predicted | measured | error | back end\'s estimate | trap cost used | rounds/s untraced | rounds/s traced |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...v.cases.map(
      (c) =>
        `| ${c.workload} | \`${c.sets}\` | ${f2(c.predictedSlowdown)} | ${f2(c.measuredSlowdown)} | ${(c.error * 100).toFixed(1)} % | ${f2(c.estimatedSlowdown)} | ${(c.trapCostNs / 1e6).toFixed(2)} ms (${c.trapCostBasis}) | ${c.untracedRoundsPerSec.toFixed(1)} | ${c.tracedRoundsPerSec.toFixed(1)} |`,
    ),
    '',
  ];
  return lines;
}
