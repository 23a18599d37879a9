// The defaults of the `sim` back end: cost profiles (what a stop costs the simulated target on
// each real back end it stands in for) and workloads (what the simulated target does). Every
// number is documented, with its source, in docs/prediction.md, "Calibration defaults"; change
// both together. Costs are in ns; rates are calls per second of the target's compute time.

import type { Calibration } from './backend.js';

export type SimCostProfileName = 'ptrace' | 'vmi-tcg';

/**
 * ptrace: `strace -c` measured 28.7 µs per traced syscall against 0.26 µs untraced on the
 * project's machines (shared/notes/vmi-on-these-machines.md): 28.4 µs per stop, split as
 * handling plus two switches of about 2 µs. While any syscall is traced every syscall stops
 * (the tracer filters after the stop). proclist and files read /proc from outside
 * without stopping the target: no pause.
 *
 * vmi-tcg: QEMU's gdbstub under TCG measured 3.4–6.1 ms of host time per breakpoint stop (3–4
 * round trips of 0.1–0.3 ms each): 4.5 ms, of which 0.3 ms per switch. Walking the task list
 * of 49 tasks with the guest paused took 31 ms: 1 ms plus 0.6 ms per task. The open files of
 * one task (task->files->fdt, a few reads per descriptor) are assumed at 2 ms plus 0.8 ms per
 * file: not measured yet.
 */
export const SIM_COST_PROFILES: Readonly<Record<SimCostProfileName, Calibration>> = {
  ptrace: { trapsEverySyscall: true, trapNs: 24_400, switchNs: 2_000, proclistBaseNs: 0, proclistPerProcessNs: 0, filesBaseNs: 0, filesPerFileNs: 0 },
  'vmi-tcg': { trapsEverySyscall: false, trapNs: 3_900_000, switchNs: 300_000, proclistBaseNs: 1_000_000, proclistPerProcessNs: 600_000, filesBaseNs: 2_000_000, filesPerFileNs: 800_000 },
};

/** One stretch of the workload, in the target's compute time. */
export interface SimPhase {
  readonly computeMs: number;
  /** Calls per second of compute time, per syscall name. */
  readonly ratesPerSec: Readonly<Record<string, number>>;
}

export interface SimWorkload {
  readonly name: string;
  /** Run in order, then again from the first. */
  readonly phases: readonly SimPhase[];
  /** Processes in the simulated VM (the proclist size). */
  readonly processes: number;
  /** Files the target holds open at start (the files set's size); openat adds, close removes. */
  readonly openFiles: number;
  /** The monitored process. */
  readonly pid: number;
}

/**
 * web: a steady server (reads and writes on sockets, epoll, some file opens).
 * build: a compiler-like mix (many opens, reads, mmaps, some execve), more processes.
 * phased: a batch job alternating 2 s of quiet with 1 s of bursts ten times busier.
 */
export const SIM_WORKLOADS: Readonly<Record<'web' | 'build' | 'phased', SimWorkload>> = {
  web: {
    name: 'web',
    phases: [{ computeMs: 1000, ratesPerSec: { read: 4000, write: 2500, epoll_wait: 1500, openat: 300, close: 300, fstat: 300, getpid: 50 } }],
    processes: 60,
    openFiles: 40,
    pid: 4242,
  },
  build: {
    name: 'build',
    phases: [{ computeMs: 1000, ratesPerSec: { openat: 1200, close: 1200, read: 2500, mmap: 800, fstat: 900, write: 300, execve: 5, getpid: 20 } }],
    processes: 120,
    openFiles: 25,
    pid: 5151,
  },
  phased: {
    name: 'phased',
    phases: [
      { computeMs: 2000, ratesPerSec: { read: 500, write: 200, openat: 40, close: 40, nanosleep: 20 } },
      { computeMs: 1000, ratesPerSec: { read: 5000, write: 2000, openat: 400, close: 400, nanosleep: 20 } },
    ],
    processes: 40,
    openFiles: 15,
    pid: 6161,
  },
};

/** Each stop's cost is drawn uniformly within ±this share of its nominal cost. */
export const SIM_JITTER_DEFAULT = 0.2;
