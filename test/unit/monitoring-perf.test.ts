// The performance module's pure parts against the sim (docs/prediction.md): the estimator
// recovers the slowdown the sim really imposed, and the predictor's figure for a configuration,
// made before it is applied, matches what the sim then measures, for several workloads, cost
// profiles and combinations of sets. This is the sim-level precursor of eval:prediction.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  SIM_COST_PROFILES,
  SIM_WORKLOADS,
  PerfWindow,
  estimate,
  formatConfig,
  predict,
  simBackend,
  type CostReport,
  type MonitorBackend,
  type MonitorConfig,
  type SetChange,
  type SimBackend,
  type SimCostProfileName,
  type SimWorkload,
} from '../../src/monitoring/index.js';
import { assertProperty } from '../helpers/property.js';

/** Runs the sim (in steps of stepMs of wall time) until it has computed at least computeMs more. */
function runCompute(sim: SimBackend, computeMs: number, stepMs = 50): void {
  const target = sim.costs().computeNs + computeMs * 1e6;
  while (sim.costs().computeNs < target) sim.advance(stepMs);
}

function toChange(from: MonitorConfig, to: MonitorConfig): SetChange {
  const enable = [];
  if (to.proclist) enable.push({ set: 'proclist' as const, ...to.proclist });
  if (to.syscalls) enable.push({ set: 'syscalls' as const, ...to.syscalls });
  if (to.files) enable.push({ set: 'files' as const, ...to.files });
  const disable = (['proclist', 'syscalls', 'files'] as const).filter((s) => from[s] !== undefined && to[s] === undefined);
  return { enable, disable };
}

test('the estimator recovers the slowdown the sim imposed: wall time for the same work, against an unmonitored run', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom<SimCostProfileName>('ptrace', 'vmi-tcg'), (seed, profile) => {
      const config: MonitorConfig = { syscalls: { syscalls: ['openat', 'close', 'execve'] }, proclist: { periodMs: 300 } };
      const sim = simBackend({ seed, sink: () => {}, workload: SIM_WORKLOADS.build, costs: SIM_COST_PROFILES[profile] });
      void sim.start();
      sim.applySync(toChange({}, config));
      const windows: number[] = [];
      let prev = sim.costs();
      const first = prev;
      while (sim.costs().computeNs < 4e9) {
        sim.advance(1000); // one estimate per second of wall time, as the performance module publishes
        const cur = sim.costs();
        windows.push(estimate(prev, cur).slowdown!);
        prev = cur;
      }
      // An unmonitored target does the same work in its compute time: wall = compute.
      const truth = (prev.atNs - first.atNs) / (prev.computeNs - first.computeNs);
      const whole = estimate(first, prev).slowdown!;
      assert.ok(Math.abs(whole - truth) / truth < 1e-9, `whole-run estimate ${whole} against true slowdown ${truth}`);
      const weighted = windows.reduce((a, s) => a + s, 0) / windows.length;
      assert.ok(Math.abs(weighted - truth) / truth < 0.1, `mean of per-second estimates ${weighted} against ${truth}`);
      // And the workload's own rates come back, per second of compute, whatever the slowdown.
      const rates = estimate(first, prev).syscallRates;
      assert.ok(Math.abs(rates.read! - 2500) / 2500 < 0.08, `read rate ${rates.read} against 2500/s`);
    }),
    { numRuns: 4 },
  );
});

interface Case {
  readonly workload: SimWorkload;
  readonly profile: SimCostProfileName;
  readonly observe: MonitorConfig;
  readonly propose: MonitorConfig;
  /**
   * Compute time to observe and to measure over: long enough that the Poisson noise of the
   * traced calls' counts (1/sqrt(count) in each window) stays well inside the tolerance, and
   * whole phase cycles for the phased workload.
   */
  readonly computeMs: number;
  readonly tolerance: number;
}

const CASES: Case[] = [
  { workload: SIM_WORKLOADS.web, profile: 'vmi-tcg', observe: {}, propose: { syscalls: { syscalls: ['openat', 'close'] } }, computeMs: 10000, tolerance: 0.05 },
  { workload: SIM_WORKLOADS.web, profile: 'vmi-tcg', observe: {}, propose: { proclist: { periodMs: 200 } }, computeMs: 10000, tolerance: 0.05 },
  { workload: SIM_WORKLOADS.web, profile: 'vmi-tcg', observe: { syscalls: { syscalls: ['getpid'] } }, propose: { syscalls: { syscalls: ['openat', 'close'] }, proclist: { periodMs: 200 } }, computeMs: 10000, tolerance: 0.05 },
  // 12 s: at 6 s one seed in a few hundred erred by 5.1 % (seed 1908417542; 3.9 % at 12 s).
  { workload: SIM_WORKLOADS.build, profile: 'vmi-tcg', observe: { proclist: { periodMs: 1000 } }, propose: { proclist: { periodMs: 250 }, files: { periodMs: 500 }, syscalls: { syscalls: ['execve', 'openat'] } }, computeMs: 12000, tolerance: 0.05 },
  { workload: SIM_WORKLOADS.build, profile: 'ptrace', observe: { syscalls: { syscalls: ['execve'] } }, propose: { syscalls: { syscalls: 'all' }, proclist: { periodMs: 100 } }, computeMs: 3000, tolerance: 0.03 },
  { workload: SIM_WORKLOADS.web, profile: 'ptrace', observe: {}, propose: { syscalls: { syscalls: ['read', 'write', 'epoll_wait'] }, files: { periodMs: 50 } }, computeMs: 3000, tolerance: 0.03 },
  { workload: SIM_WORKLOADS.phased, profile: 'vmi-tcg', observe: {}, propose: { syscalls: { syscalls: ['openat'] }, proclist: { periodMs: 500 } }, computeMs: 18000, tolerance: 0.1 },
  { workload: SIM_WORKLOADS.phased, profile: 'ptrace', observe: { syscalls: { syscalls: ['nanosleep'] } }, propose: { syscalls: { syscalls: 'all' } }, computeMs: 18000, tolerance: 0.1 },
];

test('the predicted slowdown of a configuration matches what the sim measures once it is applied', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
      for (const c of CASES) {
        const sim = simBackend({ seed, sink: () => {}, workload: c.workload, costs: SIM_COST_PROFILES[c.profile] });
        void sim.start();
        sim.applySync(toChange({}, c.observe));
        const o0 = sim.costs();
        runCompute(sim, c.computeMs);
        const p = predict(c.propose, estimate(o0, sim.costs()), sim.calibration());
        sim.applySync(toChange(c.observe, c.propose));
        const m0 = sim.costs();
        runCompute(sim, c.computeMs);
        const measured = estimate(m0, sim.costs()).slowdown!;
        const what = `${c.workload.name} on ${c.profile}: ${formatConfig(c.observe)} -> ${formatConfig(c.propose)}`;
        assert.ok(p.slowdown !== null, `${what}: not saturated`);
        const error = Math.abs(p.slowdown - measured) / measured;
        assert.ok(error < c.tolerance, `${what}: predicted slowdown ${p.slowdown.toFixed(4)}, measured ${measured.toFixed(4)} (error ${(error * 100).toFixed(1)} %, tolerance ${c.tolerance * 100} %)`);
      }
    }),
    { numRuns: 2 },
  );
});

test('traps and periodic extraction combine multiplicatively: the model beats the naive sum where both are heavy', () => {
  const sim = simBackend({ seed: 11, sink: () => {}, workload: SIM_WORKLOADS.web, costs: SIM_COST_PROFILES['vmi-tcg'] });
  void sim.start();
  const o0 = sim.costs();
  runCompute(sim, 10_000);
  const propose: MonitorConfig = { syscalls: { syscalls: ['openat', 'close'] }, proclist: { periodMs: 100 } };
  const p = predict(propose, estimate(o0, sim.costs()), sim.calibration());
  sim.applySync(toChange({}, propose));
  const m0 = sim.costs();
  runCompute(sim, 10_000);
  const measured = estimate(m0, sim.costs()).slowdown!;
  const naive = 1 + p.naiveOverheadFraction;
  assert.ok(Math.abs(p.slowdown! - measured) < Math.abs(naive - measured) / 3, `model ${p.slowdown}, naive ${naive}, measured ${measured}`);
});

test('a configuration whose extractions alone would keep the target paused is reported saturated, not as a number', () => {
  const observed = estimate(
    { kind: 'sim', atNs: 0, computeNs: 0, stoppedNs: 0, traps: { count: 0, stoppedNs: 0 }, extractions: { proclist: { count: 0, stoppedNs: 0 }, files: { count: 0, stoppedNs: 0 } }, syscalls: {}, syscallsTotal: 0, processes: 0, openFiles: 0 },
    { kind: 'sim', atNs: 1e9, computeNs: 1e9, stoppedNs: 0, traps: { count: 0, stoppedNs: 0 }, extractions: { proclist: { count: 0, stoppedNs: 0 }, files: { count: 0, stoppedNs: 0 } }, syscalls: { read: 1000 }, syscallsTotal: 1000, processes: 2000, openFiles: 2000 },
  );
  const p = predict({ proclist: { periodMs: 10 }, files: { periodMs: 10 } }, observed, SIM_COST_PROFILES['vmi-tcg']);
  assert.equal(p.saturated, true);
  assert.equal(p.slowdown, null);
  assert.equal(predict({}, observed, SIM_COST_PROFILES['vmi-tcg']).slowdown, 1, 'nothing active: no slowdown');
});

test('a back end whose trap cost follows the density of traps: the cost is rescaled from the gap it was measured at', () => {
  const none = { count: 0, stoppedNs: 0 };
  const report = (atNs: number, syscalls: Record<string, number>, traps = none) =>
    ({ kind: 'vmi', atNs, computeNs: atNs, stoppedNs: traps.stoppedNs, traps, extractions: { proclist: none, files: none }, syscalls, syscallsTotal: Object.values(syscalls).reduce((a, b) => a + b, 0), processes: 40, openFiles: 0 }) as const;
  // 1 s of compute: 1000 reads and 100 openat calls.
  const observed = estimate(report(0, {}), report(1e9, { read: 1000, openat: 100 }));
  // Calibrated at 1 ms of compute between traps (every call trapped would be ~0.9 ms), exponent 0.5.
  const cal = { ...SIM_COST_PROFILES['vmi-tcg'], trapNs: 9e6, switchNs: 0.5e6, trapGapNs: 1e6, trapGapExponent: 0.5 };
  const all = predict({ syscalls: { syscalls: 'all' } }, observed, cal);
  const sparse = predict({ syscalls: { syscalls: ['openat'] } }, observed, cal);
  assert.ok(Math.abs(all.traps.costNs - 10e6 * Math.sqrt(1e9 / 1100 / 1e6)) < 1, `dense: ${all.traps.costNs}`);
  assert.ok(Math.abs(sparse.traps.costNs - 10e6 * Math.sqrt(10)) < 1, `sparse (10 ms between traps): ${sparse.traps.costNs}`);
  assert.equal(predict({ syscalls: { syscalls: ['openat'] } }, observed, { ...cal, trapGapExponent: undefined }).traps.costNs, 10e6, 'without an exponent, one cost');
  // A window with enough traps rescales its own mean from its own gap: 100 traps in 1 s of compute at 40 ms each.
  const traced = estimate(report(0, {}), report(1e9, { read: 1000, openat: 100 }, { count: 100, stoppedNs: 4e9 }));
  const fromWindow = predict({ syscalls: { syscalls: ['openat'] } }, traced, cal);
  assert.equal(fromWindow.traps.costBasis, 'measured');
  assert.ok(Math.abs(fromWindow.traps.costNs - 40e6) < 1, 'same density as the window: its own mean');
  const denser = predict({ syscalls: { syscalls: 'all' } }, traced, cal);
  assert.ok(Math.abs(denser.traps.costNs - 40e6 * Math.sqrt(1 / 11)) < 1, `the window's mean at eleven times the density: ${denser.traps.costNs}`);
});

test('the prediction basis reaches back past 10 s until it holds enough of the target\'s compute (a VM slowed a hundredfold still gets predictions)', () => {
  const none = { count: 0, stoppedNs: 0 };
  let now = 0;
  let compute = 0;
  const backend = {
    costs: (): CostReport => ({ kind: 'vmi', atNs: now, computeNs: compute, stoppedNs: now - compute, traps: { count: now / 1e7, stoppedNs: now - compute }, extractions: { proclist: none, files: none }, syscalls: { openat: compute / 1e6 }, syscallsTotal: compute / 1e6, processes: 40, openFiles: 0 }),
    calibration: () => SIM_COST_PROFILES['vmi-tcg'],
  } as unknown as MonitorBackend;
  const w = new PerfWindow(backend);
  // One report a second; the target computes 10 ms of each (slowed 100x).
  for (let s = 0; s <= 60; s++) {
    now = s * 1e9;
    compute = s * 1e7;
    w.sample();
  }
  const basis = w.basis();
  assert.ok(basis.computeNs >= 200e6, `the basis holds ${basis.computeNs / 1e6} ms of compute`);
  assert.ok(basis.toNs - basis.fromNs <= 22e9, `and reaches back no further than it needs: ${(basis.toNs - basis.fromNs) / 1e9} s`);
  assert.notEqual(w.prediction({ syscalls: { syscalls: ['openat'] } }), null, 'so a prediction is made');
});
