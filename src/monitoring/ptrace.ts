// The `ptrace` back end: a real Linux process tree traced through strace (strace.ts), with the
// proclist and files sets read from /proc (periodic.ts) and every call counted, traced or not,
// by an in-kernel counter (rates.ts) when one is given.
//
// What ptrace forces on the design (measured, /tmp/host-design.md and docs/prediction.md):
// - While a tracer is attached, EVERY syscall of the target stops, whatever list strace is
//   told to print (only --seccomp-bpf avoids that, and its filter outlives the tracer: calls
//   fail with ENOSYS after a detach, so it cannot be used with live reconfiguration). So
//   strace traces all calls, and the list is applied here: it changes what is reported, not
//   what stops. That also names every call, which gives per-syscall rates for free.
// - A list change needs no restart: the configurations are kept as a history of (instant,
//   configuration, configVersion), and each call is reported under the one in effect at its
//   strace timestamp. strace's output lags the target, but a call has exactly one timestamp,
//   so none is reported twice or lost because of a switch.
// - Enabling syscalls stops the tree (SIGSTOP), attaches, and continues it, so the whole tree
//   starts paying at one instant; a process that was already stopped (a launched target not
//   resumed yet) stays stopped. The target can tell: a parent in the tree gets SIGCHLD for the
//   stop and the continue of its child, which interrupts a blocking wait4 once (restarted by
//   the kernel or the libc). A tree of one process is attached without the stop. Disabling detaches (the target runs at full speed again);
//   calls timestamped after the disable instant are not reported, though they still stopped
//   the target and are counted as traps.
// - ptrace cannot see how long each stop held the target, and the stops inflate the target's
//   own CPU time (the kernel work of each stop is charged to it), so compute time is measured
//   by the target's progress: its calls while traced over its rate while untraced
//   (progress.ts); stopped time is the rest of the wall time. Before any untraced stretch (or
//   without the in-kernel counter) it falls back on traps × the calibrated per-call cost.
// - That cost is bimodal on a VM (~10 µs when strace and the target share a CPU, ~100 µs when
//   each stop wakes the other vCPU), so strace and the tree are pinned to one CPU while
//   attached (affinity.ts), and calibratePtrace measures the same way.

import { performance } from 'node:perf_hooks';
import { FitError } from '../core/index.js';
import { colocate, type Colocation } from './affinity.js';
import type { Calibration, CostReport, EventSink, MonitorBackend, StopTally } from './backend.js';
import { periodicExtractions } from './periodic.js';
import { ProgressSplit } from './progress.js';
import { readStat } from './procfs.js';
import type { SyscallCounter } from './rates.js';
import { EMPTY_CONFIG, applySetChange, tracesSyscall, type MonitorConfig, type SetChange, type SetEffect, type SetName } from './sets.js';
import { SIM_COST_PROFILES } from './sim-profiles.js';
import { startStrace, type StraceCall, type StraceSession } from './strace.js';
import type { Target } from './target.js';

export interface PtraceOptions {
  readonly target: Target;
  readonly sink: EventSink;
  /** Counts every call of the tree in the kernel (perf); without it syscallsTotal is the named calls. */
  readonly counter?: SyscallCounter;
  /** From calibratePtrace() at the agent's start; default SIM_COST_PROFILES.ptrace (prediction.md). */
  readonly calibration?: Calibration;
  /** strace's own complaints and unexpected exits, for the agent's log. */
  readonly onError?: (message: string) => void;
}

const SUPPORTS: readonly SetName[] = ['proclist', 'syscalls', 'files'];
/** How long to wait for SIGSTOP to take hold of the tree before attaching anyway. */
const STOP_WAIT_MS = 500;
const STOP_POLL_MS = 1;

/** One configuration and the instant (epoch ns) it took effect. */
interface Epoch {
  readonly fromEpochNs: number;
  readonly config: MonitorConfig;
  readonly configVersion: number;
}

/** One attachment of strace: calls after `untilEpochNs` (its disable instant) are not reported. */
interface Attachment {
  readonly fromEpochNs: number;
  untilEpochNs: number;
  session?: StraceSession;
  colocation?: Colocation;
}

/**
 * Epoch ns now, on the clock strace's -ttt uses (CLOCK_REALTIME) to well under a millisecond:
 * the realtime origin of this process plus monotonic time since, so it never steps backwards.
 */
function epochNowNs(): number {
  return (performance.timeOrigin + performance.now()) * 1e6;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * SIGSTOPs every process of the tree that is running and waits until each shows as stopped;
 * returns those it stopped, so only they are continued later. Children forked while we stop
 * their parents are picked up by listing the tree again.
 */
async function stopTree(target: Target): Promise<number[]> {
  const stopped: number[] = [];
  const seen = new Set<number>();
  for (let round = 0; round < 3; round++) {
    const fresh = target.pids().filter((p) => !seen.has(p));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      seen.add(pid);
      if (readStat(pid)?.state === 'T') continue;
      try {
        process.kill(pid, 'SIGSTOP');
        stopped.push(pid);
      } catch {
        // It exited since we listed it.
      }
    }
    for (const until = Date.now() + STOP_WAIT_MS; Date.now() < until; await sleep(STOP_POLL_MS)) {
      if (stopped.every((p) => { const s = readStat(p)?.state; return s === undefined || s === 'T' || s === 't' || s === 'Z'; })) break;
    }
  }
  return stopped;
}

function continueAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // Gone.
    }
  }
}

export function ptraceBackend(options: PtraceOptions): MonitorBackend {
  const { target, sink, counter } = options;
  const cal = options.calibration ?? SIM_COST_PROFILES.ptrace;
  const perCallNs = cal.trapNs + 2 * cal.switchNs;
  let startEpochNs = 0;
  const nowNs = (): number => epochNowNs() - startEpochNs;
  const periodic = periodicExtractions({ target, sink, nowNs });

  let started = false;
  let config: MonitorConfig = EMPTY_CONFIG;
  let configVersion = 0;
  let history: Epoch[] = [{ fromEpochNs: -Infinity, config: EMPTY_CONFIG, configVersion: 0 }];
  let attachment: Attachment | undefined;
  let syscallSeq = 0;
  let traps = 0;
  const named: Record<string, number> = {};
  // Compute and stopped time, by the target's progress where its untraced rate is known.
  const split = new ProgressSplit(perCallNs);
  const callsNow = (): number | null => (counter !== undefined && counter.unavailable === null ? counter.total() : null);
  /** Accounts the time since the last sample as traced (a tracer attached, or being attached) or not. */
  const sampleSplit = (traced = attachment !== undefined): void => split.sample(nowNs(), callsNow(), traps, traced);
  /** apply() and stop() run one at a time, in call order: each awaits strace. */
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const run = queue.then(f, f);
    queue = run.catch(() => undefined);
    return run;
  };

  /**
   * The configuration in effect at an instant: the last epoch that began at or before it (the
   * first kept one for an instant before all: history keeps the epoch in effect when the
   * running attachment began, and no call it reports is earlier).
   */
  function epochAt(atEpochNs: number): Epoch {
    for (let i = history.length - 1; i > 0; i--) if (history[i]!.fromEpochNs <= atEpochNs) return history[i]!;
    return history[0]!;
  }

  function onCall(a: Attachment, call: StraceCall): void {
    traps++;
    named[call.syscall] = (named[call.syscall] ?? 0) + 1;
    if (call.atEpochNs >= a.untilEpochNs) return;
    // strace's clock and ours may disagree by microseconds: a call this attachment saw cannot
    // precede the instant that started it.
    const at = Math.max(call.atEpochNs, a.fromEpochNs);
    const epoch = epochAt(at);
    if (!tracesSyscall(epoch.config, call.syscall)) return;
    sink({ set: 'syscalls', seq: ++syscallSeq, atNs: at - startEpochNs, pid: call.pid, syscall: call.syscall, args: call.args, result: call.result, configVersion: epoch.configVersion });
  }

  async function attach(fromEpochNs: number): Promise<void> {
    const a: Attachment = { fromEpochNs, untilEpochNs: Infinity };
    attachment = a;
    const stopped = target.pids().length > 1 ? await stopTree(target) : [];
    try {
      const pids = target.pids();
      // A target that has already exited has nothing to trace: the set is on, and reports nothing.
      if (pids.length > 0) {
        a.session = await startStrace({ pids, onCall: (c) => onCall(a, c), onError: options.onError });
        // One CPU for strace and the tree: the cheap, predictable mode of a stop (affinity.ts).
        a.colocation = colocate(a.session.pid, pids, options.onError);
      }
    } finally {
      continueAll(stopped);
    }
  }

  async function detach(untilEpochNs: number): Promise<void> {
    const a = attachment;
    attachment = undefined;
    if (a === undefined) return;
    a.untilEpochNs = untilEpochNs;
    await a.session?.detach();
    a.colocation?.restore(target.pids());
  }

  async function applyNow(change: SetChange): Promise<{ config: MonitorConfig; effects: SetEffect[]; configVersion: number }> {
    if (!started) throw new FitError('FIT_ERR_USAGE', 'the ptrace back end must be started before a set change is applied');
    const unsupported = change.enable.map((s) => s.set).find((s) => !SUPPORTS.includes(s));
    if (unsupported !== undefined) throw new FitError('FIT_ERR_MONITOR_CONFIG', `the ptrace back end cannot run the ${unsupported} set`, { set: unsupported });
    const { config: next, effects } = applySetChange(config, change);
    if (effects.length === 0) return { config, effects, configVersion };
    const instant = epochNowNs();
    const previous = { config, configVersion, history };
    const wasTracing = config.syscalls !== undefined;
    config = next;
    configVersion++;
    history = [...history, { fromEpochNs: instant, config, configVersion }];
    sampleSplit();
    if (!wasTracing && config.syscalls !== undefined) {
      try {
        await attach(instant);
        sampleSplit();
      } catch (e) {
        // All or nothing: a change whose tracer could not attach changes nothing.
        await detach(instant);
        ({ config, configVersion, history } = previous);
        throw e;
      }
    } else if (wasTracing && config.syscalls === undefined) {
      await detach(instant);
      // The detach itself is traced time: the target still stops until strace lets it go.
      sampleSplit(true);
    }
    periodic.configure(config, configVersion);
    // Calls of the running attachment are never earlier than its start: older epochs can go.
    const oldest = attachment?.fromEpochNs ?? instant;
    let keep = 0;
    for (let i = 0; i < history.length; i++) if (history[i]!.fromEpochNs <= oldest) keep = i;
    history = history.slice(keep);
    return { config, effects, configVersion };
  }

  function costs(): CostReport {
    const atNs = nowNs();
    sampleSplit();
    const trapTally: StopTally = { count: traps, stoppedNs: split.stoppedNs };
    const extractions = periodic.tallies();
    const stoppedNs = trapTally.stoppedNs + extractions.proclist.stoppedNs + extractions.files.stoppedNs;
    const namedTotal = Object.values(named).reduce((n, c) => n + c, 0);
    const sizes = periodic.lastSizes();
    return {
      kind: 'ptrace',
      atNs,
      computeNs: split.computeNs,
      stoppedNs,
      traps: trapTally,
      extractions,
      syscalls: { ...named },
      syscallsTotal: Math.max(counter?.total() ?? 0, namedTotal),
      processes: sizes.processes,
      openFiles: sizes.openFiles,
    };
  }

  return {
    kind: 'ptrace',
    supports: SUPPORTS,
    async start() {
      if (started) return;
      started = true;
      startEpochNs = epochNowNs();
      // The back end's clock starts at 0: compute plus stopped time is all of it.
      split.sample(0, callsNow(), traps, false);
    },
    stop() {
      return serial(async () => {
        if (!started) return;
        started = false;
        periodic.stop();
        // Account the time up to now as it was spent, and the detach as traced time.
        const traced = attachment !== undefined;
        sampleSplit();
        await detach(epochNowNs());
        if (traced) sampleSplit(true);
        await counter?.stop();
      });
    },
    apply: (change) => serial(() => applyNow(change)),
    config: () => config,
    costs,
    calibration: () => cal,
  };
}
