// Calibrates the ptrace back end through the back end itself: the per-call cost of a stop as
// the target pays it when the agent traces it, which is more than calibratePtrace's bare
// `strace -o /dev/null` measures. The agent's strace prints -s 256 through a FIFO that Node
// reads and parses, the perf counter counts every call, and strace is pinned to the target's
// CPU (affinity.ts); eval:prediction found the stop through the back end costing about twice
// the bare figure. The reference workload is still dd on /dev/zero with 1-byte blocks (every
// call alike, no compute), so nothing here depends on the workload being predicted.
//
//   perCallNs = ((traced(N) − traced(0)) − (untraced(N) − untraced(0))) / (traps(N) − traps(0))
// each figure the median of `runs` interleaved runs; traps are the calls the back end counted.

import type { Calibration } from './backend.js';
import { calibratePtrace, SWITCH_SHARE, type PtraceCalibration } from './ptrace-calibrate.js';
import { ptraceBackend } from './ptrace.js';
import { startSyscallCounter } from './rates.js';
import { launchTarget } from './target.js';
import { median } from '../core/index.js';

/** How long one traced reference run should take. */
const TRACED_RUN_MS = 400;
const COUNT_MIN = 500;
const COUNT_MAX = 20_000;


/** One dd run through the back end: wall ns from resume to exit and the traps it counted. */
async function ddRun(count: number, traced: boolean, calibration: Calibration): Promise<{ wallNs: number; traps: number }> {
  const target = await launchTarget('dd', ['if=/dev/zero', 'of=/dev/null', 'bs=1', `count=${count}`, 'status=none'], { stdio: 'ignore' });
  const counter = await startSyscallCounter(target.pid);
  const backend = ptraceBackend({ target, sink: () => {}, counter, calibration });
  try {
    await backend.start();
    if (traced) await backend.apply({ enable: [{ set: 'syscalls', syscalls: 'all' }], disable: [] });
    target.resume();
    const exit = await target.exited;
    await backend.stop();
    return { wallNs: exit.wallNs, traps: backend.costs().traps.count };
  } finally {
    await backend.stop();
  }
}

/**
 * The per-call cost of a ptrace stop as the back end imposes it (a few seconds). Starts from
 * calibratePtrace() to size the reference run; its `measured` block keeps the bare figure too.
 */
export async function calibratePtraceBackend(options: { runs?: number } = {}): Promise<PtraceCalibration & { readonly bare: PtraceCalibration['measured'] }> {
  const runs = options.runs ?? 3;
  const bare = await calibratePtrace({ runs: 1 });
  const count = Math.round(Math.min(COUNT_MAX, Math.max(COUNT_MIN, (TRACED_RUN_MS * 1e6) / (2 * 2 * Math.max(1_000, bare.measured.perCallNs)))));
  const s = { u0: [] as number[], uN: [] as number[], t0: [] as number[], tN: [] as number[], k0: [] as number[], kN: [] as number[] };
  for (let i = 0; i < runs; i++) {
    s.u0.push((await ddRun(0, false, bare)).wallNs);
    const t0 = await ddRun(0, true, bare);
    s.t0.push(t0.wallNs);
    s.k0.push(t0.traps);
    s.uN.push((await ddRun(count, false, bare)).wallNs);
    const tN = await ddRun(count, true, bare);
    s.tN.push(tN.wallNs);
    s.kN.push(tN.traps);
  }
  const calls = Math.max(1, median(s.kN) - median(s.k0));
  const perCallNs = Math.max(0, (median(s.tN) - median(s.t0) - (median(s.uN) - median(s.u0))) / calls);
  const switchNs = (perCallNs * SWITCH_SHARE) / 2;
  return {
    ...bare,
    trapNs: perCallNs - 2 * switchNs,
    switchNs,
    measured: { perCallNs, count, runs, untracedMs: median(s.uN) / 1e6, tracedMs: median(s.tN) / 1e6 },
    bare: bare.measured,
  };
}
