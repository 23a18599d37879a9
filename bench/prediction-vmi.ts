// The vmi cases of eval:prediction: the predictor against a real QEMU guest monitored through
// the vmi back end (issue 9). One guest per workload: the back end starts (with its census),
// the agent's window is 3 s of the guest untraced, then each combination of sets is predicted
// from that window and the back end's calibration, applied while the guest runs, and measured
// by the guest's own progress: the rounds per second its workload prints on the console,
// untraced (the mean of the rates right before and right after the case) over traced. The guest's
// progress is ground truth that owes nothing to the back end's accounting.

import { estimate } from '../src/monitoring/estimate.js';
import { predict } from '../src/monitoring/predict.js';
import { EMPTY_CONFIG, applySetChange, parseSetSpec } from '../src/monitoring/sets.js';
import type { Calibration, CostReport, MonitorEvent } from '../src/monitoring/backend.js';
import { figures, summary, type CaseFigures } from './prediction-report.js';
import { Guest, defaultVmCache, detectAccel, prepareGuest, vmiBackend, GUEST_WORKLOADS } from '../src/monitoring/vmi/index.js';

export const VMI_COMBINATIONS: readonly string[] = ['syscalls:openat', 'syscalls:all', 'proclist:200', 'syscalls:openat+proclist:200'];
export const VMI_WORKLOADS: readonly string[] = ['files', 'exec'];

export interface VmiCase extends CaseFigures {
  readonly untracedRoundsPerSec: number;
  readonly tracedRoundsPerSec: number;
  /** Whether the trap cost was the window's measured mean or the calibration. */
  readonly trapCostBasis: string;
}

export interface VmiEval {
  readonly accel: string;
  readonly cases: readonly VmiCase[];
  readonly mape: number;
  readonly worstRatio: number;
  readonly worstCase: string;
  readonly calibrations: readonly { workload: string; calibration: Calibration }[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const MEASURE_MS = 6000;
const MEASURE_ROUNDS = 8;
const MEASURE_MAX_MS = 60_000;

/**
 * Rounds per second the guest completes: from one round's end to another's, at least `ms`
 * and MEASURE_ROUNDS rounds apart (at most MEASURE_MAX_MS), so a slow guest's rate is not
 * off by the part of a round a fixed window cuts.
 */
async function roundRate(guest: Guest, ms: number): Promise<number> {
  const t0 = performance.now();
  let first: { round: number; at: number } | undefined;
  let last: { round: number; at: number } | undefined;
  let seen = guest.rounds;
  while (guest.alive && performance.now() - t0 < MEASURE_MAX_MS) {
    await sleep(5);
    if (guest.rounds === seen) continue;
    seen = guest.rounds;
    const now = { round: seen, at: performance.now() };
    if (first === undefined) first = now;
    else last = now;
    if (last && last.at - first.at >= ms && last.round - first.round >= MEASURE_ROUNDS) break;
  }
  return first === undefined || last === undefined ? 0 : ((last.round - first.round) * 1000) / (last.at - first.at);
}

export async function evalVmi(log: (line: string) => void, quick: boolean, workloads: readonly string[] = VMI_WORKLOADS): Promise<VmiEval> {
  const prepared = await prepareGuest({ cache: defaultVmCache(), say: (l) => log(`  vm prepare: ${l}`) });
  const accel = detectAccel();
  const cases: VmiCase[] = [];
  const calibrations: { workload: string; calibration: Calibration }[] = [];
  for (const workload of workloads) {
    if (!GUEST_WORKLOADS[workload]) continue;
    const guest = await Guest.start({ files: prepared.files, mode: 'run', workload, accel: accel.accel });
    const sink = (_: MonitorEvent): void => undefined;
    const backend = vmiBackend({ guest, profile: prepared.profile, sink, log: (l) => log(`  ${l}`) });
    try {
      await guest.waitFor('its workload', () => guest.ready);
      await backend.start();
      const cal = backend.calibration();
      calibrations.push({ workload, calibration: cal });
      const b0 = backend.costs();
      await sleep(3000);
      const basis = estimate(b0, backend.costs());
      // Each case's untraced reference is the mean of the rates measured right before and
      // right after it: the machine's speed drifts by more than a light set costs.
      const untracedRates = [await roundRate(guest, MEASURE_MS)];
      const measured: { label: string; rate: number; untraced: number; prediction: ReturnType<typeof predict>; est: number | null }[] = [];
      for (const label of VMI_COMBINATIONS) {
        const sets = label.split('+').map(parseSetSpec);
        const prediction = predict(applySetChange(EMPTY_CONFIG, { enable: sets, disable: [] }).config, basis, cal);
        await backend.apply({ enable: sets, disable: [] });
        await sleep(1000);
        const c0: CostReport = backend.costs();
        const rate = await roundRate(guest, quick ? MEASURE_MS : 2 * MEASURE_MS);
        const e = estimate(c0, backend.costs());
        await backend.apply({ enable: [], disable: sets.map((s) => s.set) });
        await sleep(1500);
        untracedRates.push(await roundRate(guest, MEASURE_MS));
        const untraced = (untracedRates.at(-2)! + untracedRates.at(-1)!) / 2;
        measured.push({ label, rate, untraced, prediction, est: e.slowdown });
        log(`  ${workload} ${label}: ${rate.toFixed(1)} rounds/s (untraced ${untraced.toFixed(1)}), predicted ${prediction.slowdown?.toFixed(2)}×, estimated ${e.slowdown?.toFixed(2)}×`);
      }
      for (const m of measured) {
        const measuredSlowdown = m.rate > 0 ? m.untraced / m.rate : Infinity;
        const predicted = m.prediction.slowdown ?? Infinity;
        cases.push({
          ...figures(workload, m.label, predicted, measuredSlowdown, m.est, m.prediction.traps.costNs),
          untracedRoundsPerSec: m.untraced,
          tracedRoundsPerSec: m.rate,
          trapCostBasis: m.prediction.traps.costBasis,
        });
      }
    } finally {
      await backend.stop().catch(() => undefined);
      guest.kill();
      await guest.exited;
    }
  }
  return { accel: accel.accel, cases, ...summary(cases), calibrations };
}
