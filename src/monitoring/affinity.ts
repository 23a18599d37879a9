// Keeps the tracer (strace) on the same CPU as the target tree while syscalls are traced, so
// that what one ptrace stop costs is predictable. Measured on this 2-vCPU Firecracker VM
// (eval:prediction, 2026-11-30): a stop costs ~10–15 µs when strace and the target share a
// CPU, and ~100–140 µs when they do not, because then every stop and every resume is a wakeup
// of the other vCPU, which the hypervisor has to deliver (and the wakee's vCPU may be halted).
// Left to the scheduler, the same run lands in either mode, or switches between them mid-run
// (a busy second CPU pushes them together, an idle one pulls them apart), so no calibration
// could predict it. Pinned together, the cost is the cheap mode every time, on any machine.
//
// The price: while traced, the target tree runs on one CPU. A target that used more than one
// CPU at once runs slower for that, and the slowdown the agent measures includes it. The
// affinity of every process of the tree is restored when tracing stops. Uses taskset
// (util-linux, always on Debian); without it nothing is pinned and the log says so.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The CPU a process last ran on (field 39 of /proc/PID/stat); undefined when it has gone. */
export function lastCpu(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the comm, which ends at the last ')': state is field 3, processor field 39.
    const cpu = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[36]);
    return Number.isInteger(cpu) && cpu >= 0 ? cpu : undefined;
  } catch {
    return undefined;
  }
}

/** The CPUs a process may run on, as taskset's list (`0-1`); undefined when it has gone. */
export function allowedCpus(pid: number): string | undefined {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Sets the CPU list of every thread of pid; the reason it could not, or undefined. */
export function setAffinity(pid: number, cpus: string): string | undefined {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  return (r.error?.message ?? r.stderr ?? '').trim() || `taskset exited ${r.status}`;
}

/** The CPUs of a taskset list (`0-1,4`). */
function cpusOf(list: string): number[] {
  return list.split(',').flatMap((r) => {
    const [a, b] = r.split('-').map(Number);
    return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i);
  });
}

/**
 * A CPU of `allowed` other than the one this process (the agent, which parses strace's output
 * and must not compete with the target for its CPU) last ran on; `fallback` when there is none.
 */
function awayFromAgent(allowed: string, fallback: number | undefined): number | undefined {
  const agent = lastCpu(process.pid);
  const other = cpusOf(allowed).filter((c) => c !== agent);
  return other.includes(fallback ?? -1) ? fallback : (other[0] ?? fallback);
}

export interface Colocation {
  /** The CPU tracer and target share; undefined when they could not be pinned. */
  readonly cpu: number | undefined;
  /** Gives every live process of the tree its CPU list back (the root's, from before). */
  restore(pids: readonly number[]): void;
}

/**
 * Pins the tracer and every process of the target tree to one CPU (its children forked later
 * inherit it): the one the target's root last ran on, unless the agent runs there. Failures are reported through onError, never
 * thrown: unpinned tracing still works, only at an unpredictable cost.
 */
export function colocate(tracerPid: number, targetPids: readonly number[], onError?: (message: string) => void): Colocation {
  const root = targetPids[0];
  const before = root === undefined ? undefined : allowedCpus(root);
  const cpu = root === undefined || before === undefined ? undefined : awayFromAgent(before, lastCpu(root));
  if (cpu === undefined || before === undefined) return { cpu: undefined, restore: () => {} };
  for (const pid of [tracerPid, ...targetPids]) {
    const failed = setAffinity(pid, String(cpu));
    if (failed !== undefined && pid === tracerPid) {
      onError?.(`could not pin strace to CPU ${cpu} with the target (${failed}): the cost of a stop is unpredictable`);
      return { cpu: undefined, restore: () => {} };
    }
  }
  return {
    cpu,
    restore(pids) {
      for (const pid of pids) setAffinity(pid, before);
    },
  };
}
