// The one interface every monitoring back end implements (sim now; ptrace, proc and vmi next),
// the events back ends emit, and the cost report the performance module reads. The interface is
// shaped so that back ends whose per-stop costs differ by orders of magnitude (ptrace: tens of
// µs per syscall stop; VMI over QEMU's gdbstub under TCG: milliseconds) report the same terms
// and the predictor (predict.ts) treats them alike.
//
// Contracts a back end must keep (docs/monitoring.md, "Back ends"):
// - Events of each set carry `seq`, 1, 2, 3 … per set for the back end's whole life: never reset
//   by apply(), never skipped, never repeated. A consumer that sees a gap knows events were lost.
// - apply() takes effect at one instant of the back end's clock: an occurrence before it is
//   reported under the old configuration, one after it under the new; none is reported twice or
//   dropped because of the switch (no restart of the target, no detach/attach gap).
// - costs() is cumulative since start() and monotone, so any two reports give a window.
// - A back end observes the target's syscall rates for ALL syscalls, traced or not, by a cheap
//   means that does not stop the target at each call (each back end says which in its file).

import type { MonitorConfig, SetChange, SetEffect, SetName } from './sets.js';

export type BackendKind = 'sim' | 'proc' | 'ptrace' | 'vmi';

/** One call of a traced syscall. */
export interface SyscallEvent {
  readonly set: 'syscalls';
  readonly seq: number;
  /** When the call was made, on the back end's clock (virtual for sim), in ns since start(). */
  readonly atNs: number;
  readonly pid: number;
  /** The calling process's name (its comm), where the back end reads it (vmi). */
  readonly comm?: string;
  readonly syscall: string;
  /** Arguments as strace prints them (a path in quotes, a flag set, a number). */
  readonly args: readonly string[];
  /**
   * The return value: >= 0 on success, -errno on failure; null when the call had not returned
   * when tracing of it ended (the set was disabled, or the monitor stopped, while it blocked),
   * and always from a back end that sees entries only (vmi: a breakpoint on the handler).
   */
  readonly result: number | null;
  /** Which applied configuration traced it (counts apply() calls that changed something). */
  readonly configVersion: number;
}

export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly name: string;
}

/** One extraction of the process list. */
export interface ProclistEvent {
  readonly set: 'proclist';
  readonly seq: number;
  readonly atNs: number;
  readonly processes: readonly ProcessInfo[];
  readonly configVersion: number;
}

/** One extraction of the target's open files. */
export interface FilesEvent {
  readonly set: 'files';
  readonly seq: number;
  readonly atNs: number;
  readonly pid: number;
  readonly files: readonly { readonly fd: number; readonly path: string }[];
  readonly configVersion: number;
}

export type MonitorEvent = SyscallEvent | ProclistEvent | FilesEvent;

/** Stops of one kind: how many, and the target time they took in total. */
export interface StopTally {
  readonly count: number;
  /** Target time lost to these stops: handling plus the switches to and from the monitor. */
  readonly stoppedNs: number;
}

/**
 * What a back end has measured since start(), cumulative. The terms of the overhead model
 * (docs/prediction.md):
 * - computeNs: the target's own compute time (it ran, not stopped for monitoring). Wall time
 *   of the target = computeNs + stoppedNs (for a CPU-bound target; see the model's assumptions).
 * - stoppedNs: all time the target was stopped for monitoring = sum of the tallies below.
 * - traps: syscall stops (a ptrace syscall-stop, a VMI breakpoint hit), one per traced call.
 * - extractions: pauses for periodic extraction, per set (proclist, files); 0 for a back end
 *   that reads without pausing the target (proc reading /proc).
 * - syscalls: calls observed per syscall name, traced or not (the target's workload), as far
 *   as the back end can name them (ptrace names calls only while tracing is attached).
 * - syscallsTotal: every call observed, named or not (ptrace and proc count all calls with an
 *   in-kernel tracepoint counter); at least the sum of `syscalls`.
 * - processes, openFiles: the sizes the last extraction (or a cheap count) saw; extraction
 *   cost grows with them.
 */
export interface CostReport {
  readonly kind: BackendKind;
  /** The back end's clock when sampled, ns since start() (virtual for sim). */
  readonly atNs: number;
  readonly computeNs: number;
  readonly stoppedNs: number;
  readonly traps: StopTally;
  readonly extractions: Readonly<Record<'proclist' | 'files', StopTally>>;
  readonly syscalls: Readonly<Record<string, number>>;
  readonly syscallsTotal: number;
  readonly processes: number;
  readonly openFiles: number;
}

/**
 * Per-stop costs a back end expects before it has measured anything (its calibration), in ns.
 * A trap costs trapNs + 2 * switchNs; an extraction costs 2 * switchNs + baseNs + perItemNs *
 * items (processes for proclist, open files for files). Defaults per back end: docs/prediction.md.
 */
export interface Calibration {
  /**
   * true when, while any syscall is traced, EVERY syscall of the target stops (ptrace: the
   * kernel stops at each syscall and the tracer filters after the stop, so the list changes
   * what is reported, not what stops); false when only the listed calls trap (a VMI breakpoint
   * on each listed handler; the sim's vmi-tcg profile).
   */
  readonly trapsEverySyscall: boolean;
  readonly trapNs: number;
  readonly switchNs: number;
  readonly proclistBaseNs: number;
  readonly proclistPerProcessNs: number;
  readonly filesBaseNs: number;
  readonly filesPerFileNs: number;
  /**
   * For a back end whose trap cost grows with the target's compute between traps (vmi under
   * QEMU's emulator: each debug stop flushes the translated code, and the guest re-translates
   * what it runs until the next trap): trapNs + 2 × switchNs was measured with trapGapNs of
   * compute between traps, and the cost scales as (gap / trapGapNs) ^ trapGapExponent.
   * Absent: one cost whatever the density (ptrace).
   */
  readonly trapGapNs?: number;
  readonly trapGapExponent?: number;
}

export type EventSink = (event: MonitorEvent) => void;

export interface MonitorBackend {
  readonly kind: BackendKind;
  /** The sets this back end can run; the control module refuses the others. */
  readonly supports: readonly SetName[];
  /** Begins monitoring the target with no set active; events go to the sink given at creation. */
  start(): Promise<void>;
  /** Stops monitoring and releases the target (detaches, resumes it); idempotent. */
  stop(): Promise<void>;
  /**
   * Applies a validated change while monitoring runs (see the contracts above). Returns the
   * resulting configuration and what changed. Throws FIT_ERR_MONITOR_CONFIG, changing nothing,
   * for a set the back end does not support.
   */
  apply(change: SetChange): Promise<{ config: MonitorConfig; effects: SetEffect[]; configVersion: number }>;
  /** The active configuration. */
  config(): MonitorConfig;
  /** Cumulative costs since start(). */
  costs(): CostReport;
  /** Per-stop costs to assume where nothing has been measured yet. */
  calibration(): Calibration;
}

/** A report with nothing measured yet. */
export function zeroCosts(kind: BackendKind): CostReport {
  const none = { count: 0, stoppedNs: 0 };
  return { kind, atNs: 0, computeNs: 0, stoppedNs: 0, traps: none, extractions: { proclist: none, files: none }, syscalls: {}, syscallsTotal: 0, processes: 0, openFiles: 0 };
}
