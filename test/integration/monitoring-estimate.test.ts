// Issue 8, "Tests": the overhead estimate on a syscall-heavy workload is within the stated error
// of the measured slowdown. A real shell loop of dd (16 KiB blocks of /dev/urandom) writes a
// timestamp after each round; it runs untraced for a while, then the ptrace back end starts
// tracing every syscall. Measured slowdown: the median round traced over the median round
// untraced (the workload's own run time, traced against untraced). Estimated: the back end's
// running estimate over the traced stretch, from its cost reports (estimate.ts), with compute
// time measured by the target's progress (progress.ts). The back end is given a calibration
// 10× off on purpose: the estimate must not lean on it.
//
// Tolerance: rounds vary ±20–30 % on this 2-vCPU VM, and the call rate per unit of work of a
// dd round is steady, so medians agree within ~15 %; the test allows a factor of 1.4 either
// way, so a noisy CI machine passes while a wrong term (stops not counted, compute taken as
// wall time, the rate taken from the wrong stretch) fails. The full table over many workloads
// and combinations of sets is `npm run eval:prediction` (docs/prediction-accuracy.md).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIM_COST_PROFILES, estimate, launchTarget, ptraceBackend, startSyscallCounter } from '../../src/monitoring/index.js';
import { sleep } from '../helpers/cluster.js';
import { median } from '../../src/core/index.js';

const RATIO_MAX = 1.4;
const ROUNDS_MIN = 12;


test(`the running estimate of a traced syscall-heavy loop is within ${RATIO_MAX}× of its measured slowdown`, { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-estimate-'));
  const stamps = join(dir, 'stamps');
  const script = `while :; do dd if=/dev/urandom of=/dev/null bs=16384 count=100 status=none; date +%s%N >> ${stamps}; done`;
  const rounds = (): number[] => {
    try {
      return readFileSync(stamps, 'utf8').trim().split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const target = await launchTarget('sh', ['-c', script], { stdio: 'ignore' });
  const counter = await startSyscallCounter(target.pid);
  assert.equal(counter.unavailable, null, 'the in-kernel syscall counter works here');
  const wrong = { ...SIM_COST_PROFILES.ptrace, trapNs: SIM_COST_PROFILES.ptrace.trapNs * 10 };
  const backend = ptraceBackend({ target, sink: () => {}, counter, calibration: wrong });
  try {
    await backend.start();
    target.resume();
    const startedMs = Date.now();
    while (rounds().length < ROUNDS_MIN || Date.now() - startedMs < 1500) await sleep(20);
    await backend.apply({ enable: [{ set: 'syscalls', syscalls: 'all' }], disable: [] });
    const from = backend.costs();
    const tracedFrom = rounds().length;
    const tracedAtMs = Date.now();
    while (rounds().length < tracedFrom + ROUNDS_MIN || Date.now() - tracedAtMs < 2000) await sleep(20);
    const to = backend.costs();
    const all = rounds();
    const gaps = (a: number, b: number): number[] => all.slice(a + 1, b).map((t, i) => t - all[a + i]!);
    // Rounds that ran entirely untraced, and entirely traced (the round the attach fell in is left out).
    const untraced = median(gaps(0, tracedFrom - 1));
    const traced = median(gaps(tracedFrom, all.length));
    const measured = traced / untraced;
    const est = estimate(from, to).slowdown;
    assert.ok(measured > 1.5, `the loop is syscall-heavy: a round takes ${(traced / 1e6).toFixed(1)} ms traced, ${(untraced / 1e6).toFixed(1)} ms untraced`);
    assert.ok(est !== null, 'the target computed while traced');
    const ratio = Math.max(est / measured, measured / est);
    process.stderr.write(`estimate ${est.toFixed(2)} measured ${measured.toFixed(2)} rounds ${(untraced / 1e6).toFixed(1)}/${(traced / 1e6).toFixed(1)} ms\n`);
    assert.ok(ratio <= RATIO_MAX, `estimate ${est.toFixed(2)} vs measured ${measured.toFixed(2)}: off by ${ratio.toFixed(2)}×, at most ${RATIO_MAX}×`);
  } finally {
    target.kill('SIGKILL');
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
