// The periodic sets of the host back ends (proc and ptrace): proclist, the host's process list,
// and files, the open files of every process of the target tree, each read from /proc on its
// own timer. Reading /proc never stops the target, so every extraction is tallied with
// stoppedNs 0: it costs the target nothing but a share of a CPU on a busy host.
//
// Timing follows docs/prediction.md's model: a newly enabled set extracts at once (during the
// configure() that enabled it, so its first event carries the new configVersion); the next
// extraction is due periodMs after the previous one ENDED, re-armed with setTimeout when it
// completes; a new period counts from the last extraction's end (at once if that is already
// past). Seqs count per set for the back end's life and are never reset, whatever is
// disabled and enabled again.
//
// files emits one FilesEvent per process of the target tree per extraction (root first, then
// its descendants), each with that process's pid: a consumer sees which process holds what,
// and a tree of one process gives one event. When the tree has gone, an extraction emits one
// event for the root with no files, so every extraction shows up in the stream.

import type { EventSink, ProcessInfo, StopTally } from './backend.js';
import { countOpenFiles, listPids, readOpenFiles, readProcessList } from './procfs.js';
import type { MonitorConfig } from './sets.js';
import type { Target } from './target.js';

export type PeriodicSet = 'proclist' | 'files';
const PERIODIC_SETS: readonly PeriodicSet[] = ['proclist', 'files'];

export interface PeriodicOptions {
  readonly target: Target;
  readonly sink: EventSink;
  /** The back end's clock, ns since its start(); events carry it as atNs. */
  readonly nowNs: () => number;
}

export interface PeriodicExtractions {
  /** Starts, stops or re-periods the proclist and files timers to match config. */
  configure(config: MonitorConfig, configVersion: number): void;
  /** The last seq each set emitted (0 before its first event); never reset. */
  seqs(): Record<PeriodicSet, number>;
  /** Extractions so far per set; stoppedNs is always 0 (a /proc read does not stop the target). */
  tallies(): Record<PeriodicSet, StopTally>;
  /** Host processes and the tree's open files the last extractions saw; a cheap count before the first. */
  lastSizes(): { processes: number; openFiles: number };
  /** Clears the timers; configure() may start them again. */
  stop(): void;
}

export function periodicExtractions(options: PeriodicOptions): PeriodicExtractions {
  const { target, sink, nowNs } = options;
  const seq: Record<PeriodicSet, number> = { proclist: 0, files: 0 };
  const count: Record<PeriodicSet, number> = { proclist: 0, files: 0 };
  const periodMs: Partial<Record<PeriodicSet, number>> = {};
  const lastEndNs: Partial<Record<PeriodicSet, number>> = {};
  const timers: Partial<Record<PeriodicSet, NodeJS.Timeout>> = {};
  let version = 0;
  let processes: number | undefined;
  let openFiles: number | undefined;

  function extract(set: PeriodicSet): void {
    if (set === 'proclist') {
      const list: ProcessInfo[] = readProcessList();
      processes = list.length;
      sink({ set, seq: ++seq.proclist, atNs: nowNs(), processes: list, configVersion: version });
    } else {
      const pids = target.pids();
      let total = 0;
      for (const pid of pids.length > 0 ? pids : [target.pid]) {
        const files = readOpenFiles(pid);
        total += files.length;
        sink({ set, seq: ++seq.files, atNs: nowNs(), pid, files, configVersion: version });
      }
      openFiles = total;
    }
    count[set]++;
    lastEndNs[set] = nowNs();
  }

  function arm(set: PeriodicSet, delayMs: number): void {
    clearTimeout(timers[set]);
    timers[set] = setTimeout(() => {
      delete timers[set];
      if (periodMs[set] === undefined) return;
      extract(set);
      arm(set, periodMs[set]!);
    }, Math.max(0, delayMs));
  }

  function disarm(set: PeriodicSet): void {
    clearTimeout(timers[set]);
    delete timers[set];
  }

  return {
    configure(config, configVersion) {
      version = configVersion;
      for (const set of PERIODIC_SETS) {
        const next = config[set]?.periodMs;
        const previous = periodMs[set];
        if (next === undefined) {
          delete periodMs[set];
          disarm(set);
        } else if (previous === undefined || timers[set] === undefined) {
          periodMs[set] = next;
          extract(set);
          arm(set, next);
        } else if (previous !== next) {
          periodMs[set] = next;
          arm(set, ((lastEndNs[set] ?? nowNs()) - nowNs()) / 1e6 + next);
        }
      }
    },
    seqs: () => ({ ...seq }),
    tallies: () => ({ proclist: { count: count.proclist, stoppedNs: 0 }, files: { count: count.files, stoppedNs: 0 } }),
    lastSizes() {
      return {
        processes: processes ?? listPids().length,
        openFiles: openFiles ?? target.pids().reduce((n, pid) => n + countOpenFiles(pid), 0),
      };
    },
    stop() {
      for (const set of PERIODIC_SETS) {
        delete periodMs[set];
        disarm(set);
      }
    },
  };
}
