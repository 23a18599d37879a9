// The `proc` back end: monitors a process tree on this host by reading /proc, never stopping
// it. It runs proclist and files (periodic.ts) and cannot trace syscalls: that needs a tracer
// (the ptrace back end). It observes the rate of ALL syscalls through the perf counter
// (rates.ts) the agent gives it, which counts in the kernel without stopping the target; with
// no counter, or one that cannot count, syscallsTotal stays 0 and the log says why.
//
// Its costs are those of a back end that never stops the target: all wall time is the
// target's compute time, no traps, extractions tallied with stoppedNs 0. It never kills the
// target, and stop() leaves it running: the agent decides what happens to it.

import { FitError } from '../core/index.js';
import type { Calibration, CostReport, EventSink, MonitorBackend } from './backend.js';
import { periodicExtractions, type PeriodicExtractions } from './periodic.js';
import type { SyscallCounter } from './rates.js';
import { EMPTY_CONFIG, applySetChange, type MonitorConfig, type SetName } from './sets.js';
import type { Target } from './target.js';

export interface ProcOptions {
  readonly target: Target;
  readonly sink: EventSink;
  /** Counts the tree's syscalls; the agent starts it before resuming the target. Stopped by stop(). */
  readonly counter?: SyscallCounter;
  /** Where the back end says what it cannot do (a counter that cannot count). */
  readonly log?: (line: string) => void;
}

const PROC_SUPPORTS: readonly SetName[] = ['proclist', 'files'];

/** /proc reads stop nothing, so every per-stop cost is 0. */
const PROC_CALIBRATION: Calibration = Object.freeze({
  trapsEverySyscall: false,
  trapNs: 0,
  switchNs: 0,
  proclistBaseNs: 0,
  proclistPerProcessNs: 0,
  filesBaseNs: 0,
  filesPerFileNs: 0,
});

const hrNs = (): number => Number(process.hrtime.bigint());

export function procBackend(options: ProcOptions): MonitorBackend {
  const { target, sink, counter } = options;
  let startNs: number | undefined;
  let config: MonitorConfig = EMPTY_CONFIG;
  let configVersion = 0;
  let periodic: PeriodicExtractions | undefined;
  let stopped = false;
  const nowNs = (): number => (startNs === undefined ? 0 : hrNs() - startNs);

  function costs(): CostReport {
    const atNs = nowNs();
    const sizes = periodic?.lastSizes() ?? { processes: 0, openFiles: 0 };
    const none = { count: 0, stoppedNs: 0 };
    return {
      kind: 'proc',
      atNs,
      computeNs: atNs,
      stoppedNs: 0,
      traps: none,
      extractions: periodic?.tallies() ?? { proclist: none, files: none },
      syscalls: {},
      syscallsTotal: counter?.total() ?? 0,
      processes: sizes.processes,
      openFiles: sizes.openFiles,
    };
  }

  return {
    kind: 'proc',
    supports: PROC_SUPPORTS,
    async start() {
      if (startNs !== undefined) return;
      startNs = hrNs();
      periodic = periodicExtractions({ target, sink, nowNs });
      if (counter === undefined) options.log?.('proc: no syscall counter: syscallsTotal stays 0');
      else if (counter.unavailable !== null) options.log?.(`proc: syscallsTotal stays 0: ${counter.unavailable}`);
    },
    async stop() {
      stopped = true;
      periodic?.stop();
      await counter?.stop();
    },
    async apply(change) {
      if (periodic === undefined || stopped) throw new FitError('FIT_ERR_USAGE', 'the proc back end applies set changes between start() and stop() only');
      // The control module refuses unsupported sets already; this guard keeps the back end
      // honest when driven directly, and refuses before anything changes.
      if (change.enable.some((s) => s.set === 'syscalls')) {
        throw new FitError('FIT_ERR_MONITOR_CONFIG', 'the proc back end cannot trace syscalls (it only reads /proc); use the ptrace back end for the syscalls set', { set: 'syscalls' });
      }
      const { config: next, effects } = applySetChange(config, change);
      config = next;
      if (effects.length > 0) configVersion++;
      periodic.configure(config, configVersion);
      return { config, effects, configVersion };
    },
    config: () => config,
    costs,
    calibration: () => PROC_CALIBRATION,
  };
}
