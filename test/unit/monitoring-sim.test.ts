// The sim back end (src/monitoring/sim.ts): one seed and one schedule of advance()/apply() give
// the same events and costs; reconfiguring while it runs loses and duplicates nothing (the
// back-end contracts of src/monitoring/backend.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SET_NAMES, SIM_COST_PROFILES, SIM_WORKLOADS, simBackend, tracesSyscall, type MonitorConfig, type MonitorEvent, type SetChange, type SetName, type SetSpec } from '../../src/monitoring/index.js';
import { assertProperty } from '../helpers/property.js';

interface Step {
  readonly advanceMs: number;
  readonly change: SetChange;
}

function runSchedule(seed: number, steps: readonly Step[], workload = SIM_WORKLOADS.web) {
  const events: MonitorEvent[] = [];
  const sim = simBackend({ seed, sink: (e) => events.push(e), workload, costs: SIM_COST_PROFILES.ptrace, truthMax: 1_000_000 });
  void sim.start(); // synchronous for the sim: starts before it returns
  /** Truth index at which each configuration took effect, and the configuration. */
  const timeline: { from: number; config: MonitorConfig; version: number }[] = [{ from: 0, config: {}, version: 0 }];
  for (const step of steps) {
    sim.advance(step.advanceMs);
    const r = sim.applySync(step.change);
    timeline.push({ from: sim.truth().length, config: r.config, version: r.configVersion });
  }
  sim.advance(50);
  return { events, truth: sim.truth(), costs: sim.costs(), timeline };
}

const steady: Step[] = [
  { advanceMs: 100, change: { enable: [{ set: 'syscalls', syscalls: ['openat', 'close'] }, { set: 'proclist', periodMs: 20 }], disable: [] } },
  { advanceMs: 200, change: { enable: [{ set: 'files', periodMs: 30 }, { set: 'syscalls', syscalls: 'all' }], disable: ['proclist'] } },
  { advanceMs: 150, change: { enable: [], disable: ['syscalls'] } },
];

test('same seed and schedule give the same events and costs; another seed does not', () => {
  const a = runSchedule(7, steady);
  const b = runSchedule(7, steady);
  assert.ok(a.events.length > 100, `the schedule produces events (${a.events.length})`);
  assert.deepEqual(a.events, b.events);
  assert.deepEqual(a.costs, b.costs);
  const c = runSchedule(8, steady);
  assert.notDeepEqual(a.events, c.events);
});

const SYSCALL_POOL = ['read', 'write', 'openat', 'close', 'epoll_wait', 'getpid', 'execve'];

const specArb = (set: SetName): fc.Arbitrary<SetSpec> =>
  set === 'syscalls'
    ? fc.oneof(fc.constant<SetSpec>({ set: 'syscalls', syscalls: 'all' }), fc.subarray(SYSCALL_POOL, { minLength: 1 }).map((s): SetSpec => ({ set: 'syscalls', syscalls: s })))
    : fc.integer({ min: 10, max: 80 }).map((periodMs): SetSpec => ({ set, periodMs }));

/** A change: each set enabled (with parameters), disabled, or left alone. */
const changeArb: fc.Arbitrary<SetChange> = fc
  .tuple(...SET_NAMES.map((set) => fc.oneof(fc.constant<'keep'>('keep'), fc.constant<'disable'>('disable'), specArb(set))))
  .map((choices) => ({
    enable: choices.filter((c): c is SetSpec => typeof c === 'object'),
    disable: SET_NAMES.filter((_, i) => choices[i] === 'disable'),
  }));

const stepArb: fc.Arbitrary<Step> = fc.record({ advanceMs: fc.integer({ min: 0, max: 120 }), change: changeArb });

test('reconfiguring during a run loses and duplicates nothing (per-set sequences, every traced call reported once)', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.array(stepArb, { minLength: 1, maxLength: 8 }), (seed, steps) => {
      const { events, truth, costs, timeline } = runSchedule(seed, steps);
      // Per-set sequences run 1, 2, 3 … with no gap and no repeat, across every apply().
      for (const set of SET_NAMES) {
        const seqs = events.filter((e) => e.set === set).map((e) => e.seq);
        assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `${set} sequence numbers`);
      }
      // The syscall events are exactly the calls made while a configuration tracing them was in
      // effect, as the test's own timeline says, in order, once each.
      const expected: { atNs: number; syscall: string; version: number }[] = [];
      let stops = 0;
      for (let k = 0; k < timeline.length; k++) {
        const { from, config, version } = timeline[k]!;
        const to = timeline[k + 1]?.from ?? truth.length;
        for (const o of truth.slice(from, to)) if (tracesSyscall(config, o.syscall)) expected.push({ atNs: o.atNs, syscall: o.syscall, version });
        if (config.syscalls !== undefined) stops += to - from;
      }
      const got = events.flatMap((e) => (e.set === 'syscalls' ? [{ atNs: e.atNs, syscall: e.syscall, version: e.configVersion }] : []));
      assert.deepEqual(got, expected);
      // The ptrace profile stops at every call while any syscall is traced, and reports only the listed.
      assert.equal(costs.traps.count, stops, 'one trap per call made while syscalls was active');
      // Extractions happen only under a configuration with the set active, one event each.
      const versions = new Map(timeline.map((s) => [s.version, s.config]));
      for (const e of events) if (e.set !== 'syscalls') assert.ok(versions.get(e.configVersion)?.[e.set] !== undefined, `${e.set} extracted under version ${e.configVersion}`);
      assert.equal(events.filter((e) => e.set === 'proclist').length, costs.extractions.proclist.count);
      assert.equal(events.filter((e) => e.set === 'files').length, costs.extractions.files.count);
    }),
    { numRuns: 40 },
  );
});

test('the sim refuses to run or reconfigure before start, and a set change is not needed to advance', async () => {
  const sim = simBackend({ seed: 1, sink: () => {} });
  assert.throws(() => sim.advance(1), /must be started/);
  await assert.rejects(sim.apply({ enable: [], disable: [] }), /must be started/);
  await sim.start();
  sim.advance(100);
  const c = sim.costs();
  assert.equal(c.stoppedNs, 0);
  assert.ok(Math.abs(c.computeNs - c.atNs) < 1, 'with no set active, wall time is compute time');
  assert.ok(Object.keys(c.syscalls).length > 0, 'untraced syscalls are still counted');
});
