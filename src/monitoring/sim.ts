// The `sim` back end: a simulated VM whose one monitored process runs a configurable workload,
// driven by a virtual clock and a seeded generator, so that one seed and one sequence of
// advance()/apply() calls give the same events and costs everywhere. It exists so the control
// and performance modules can be tested against known truth; it must never read a real clock
// or Math.random.
//
// How time passes (the cost model of docs/prediction.md, made executable):
// - The target computes; its syscalls arrive as a Poisson process in its compute time, at the
//   rates of the current workload phase (phases also advance in compute time).
// - A traced syscall stops the target: wall time advances by the trap cost (handling + two
//   switches, with jitter) and compute time does not. With a cost profile whose
//   trapsEverySyscall is set (ptrace), every syscall stops while any is traced, and only the
//   listed ones are reported.
// - A periodic set (proclist, files) extracts when its timer is due, pausing the target for
//   2 switches + base + per item * items; its next extraction is due periodMs after this one
//   ended (wall time), as a setTimeout-driven agent does.
// - The simulated kernel counts every syscall by name at no cost (like an in-kernel counter),
//   which is how the sim observes rates of syscalls it does not trace.

import { FitError, invariant, mulberry32 } from '../core/index.js';
import type { Calibration, CostReport, EventSink, MonitorBackend, MonitorEvent, ProcessInfo, StopTally } from './backend.js';
import { EMPTY_CONFIG, SET_NAMES, applySetChange, tracesSyscall, type MonitorConfig, type SetChange, type SetEffect, type SetName } from './sets.js';
import { SIM_COST_PROFILES, SIM_JITTER_DEFAULT, SIM_WORKLOADS, type SimWorkload } from './sim-profiles.js';

export interface SimOptions {
  readonly seed: number;
  readonly sink: EventSink;
  readonly workload?: SimWorkload;
  /** The true costs of the simulated VM; default SIM_COST_PROFILES['vmi-tcg']. */
  readonly costs?: Calibration;
  /** What calibration() reports; default the true costs (a back end calibrated for its host). */
  readonly calibration?: Calibration;
  /** Stop costs vary uniformly within ±jitter of nominal; default SIM_JITTER_DEFAULT. */
  readonly jitter?: number;
  /** Record every syscall occurrence (for tests that check nothing is lost); at most this many. */
  readonly truthMax?: number;
}

/** One syscall the simulated target made, whether traced or not. */
export interface SimOccurrence {
  readonly atNs: number;
  readonly syscall: string;
  readonly traced: boolean;
}

export interface SimBackend extends MonitorBackend {
  /** Runs the simulated VM until its wall clock has advanced `ms` (virtual) since the last call. */
  advance(ms: number): void;
  /** apply(), synchronously: the virtual clock does not move while it runs either way. */
  applySync(change: SetChange): { config: MonitorConfig; effects: SetEffect[]; configVersion: number };
  /** Occurrences recorded since start (empty unless truthMax was given). */
  truth(): readonly SimOccurrence[];
}

const FILE_PATHS = ['/etc/passwd', '/etc/hosts', '/var/log/app.log', '/usr/lib/libc.so.6', '/tmp/work.dat', '/srv/www/index.html', '/proc/self/stat'];
const PROCESS_NAMES = ['systemd', 'sshd', 'cron', 'rsyslogd', 'bash', 'nginx', 'postgres', 'python3', 'kworker', 'dbus-daemon'];
/**
 * Files the workload opens beyond those it holds at start, at most: the open-file count (and so
 * the cost of a files extraction) stays within [initial, initial + this], as a server's does,
 * instead of wandering like a random walk.
 */
const OPEN_FILES_TRANSIENT_MAX = 8;

export function simBackend(options: SimOptions): SimBackend {
  const workload = options.workload ?? SIM_WORKLOADS.web;
  const cost = options.costs ?? SIM_COST_PROFILES['vmi-tcg'];
  const cal = options.calibration ?? cost;
  const jitter = options.jitter ?? SIM_JITTER_DEFAULT;
  invariant(workload.phases.length > 0 && workload.phases.every((p) => p.computeMs > 0), 'a sim workload has phases of positive length');
  invariant(jitter >= 0 && jitter < 1, 'sim jitter is a share in [0, 1)');
  const random = mulberry32(options.seed);

  const processes: ProcessInfo[] = [];
  for (let i = 0; i < workload.processes; i++) {
    const pid = i === workload.processes - 1 ? workload.pid : 1 + i * 7;
    processes.push({ pid, ppid: i === 0 ? 0 : 1, name: i === workload.processes - 1 ? 'target' : PROCESS_NAMES[i % PROCESS_NAMES.length]! });
  }
  const openFds: { fd: number; path: string }[] = [];
  for (let fd = 0; fd < workload.openFiles; fd++) openFds.push({ fd, path: fd < 3 ? '/dev/pts/0' : FILE_PATHS[fd % FILE_PATHS.length]! });
  const openFilesMax = workload.openFiles + OPEN_FILES_TRANSIENT_MAX;

  let started = false;
  let config: MonitorConfig = EMPTY_CONFIG;
  let configVersion = 0;
  let wallNs = 0;
  let requestedNs = 0;
  let computeNs = 0;
  let stoppedNs = 0;
  let traps: StopTally = { count: 0, stoppedNs: 0 };
  const extractions: Record<'proclist' | 'files', StopTally> = { proclist: { count: 0, stoppedNs: 0 }, files: { count: 0, stoppedNs: 0 } };
  const counts: Record<string, number> = {};
  let countsTotal = 0;
  const seq: Record<SetName, number> = { proclist: 0, syscalls: 0, files: 0 };
  const due: Partial<Record<'proclist' | 'files', number>> = {};
  const lastEnd: Partial<Record<'proclist' | 'files', number>> = {};
  const truth: SimOccurrence[] = [];

  let phase = 0;
  let phaseEndNs = workload.phases[0]!.computeMs * 1e6;
  let nextCallNs = 0;
  let names: string[] = [];
  let cumulative: number[] = [];
  let total = 0;

  function enterPhase(i: number): void {
    const rates = workload.phases[i]!.ratesPerSec;
    names = Object.keys(rates).sort();
    cumulative = [];
    total = 0;
    for (const n of names) cumulative.push((total += rates[n]!));
    nextCallNs = drawNext(computeNs);
  }

  function drawNext(fromNs: number): number {
    if (total <= 0) return Infinity;
    return fromNs + (-Math.log(1 - random()) / total) * 1e9;
  }

  function pick(): string {
    const u = random() * total;
    const i = cumulative.findIndex((c) => u < c);
    return names[i === -1 ? names.length - 1 : i]!;
  }

  const jittered = (nominalNs: number): number => nominalNs * (1 + jitter * (2 * random() - 1));

  function emit(e: MonitorEvent): void {
    options.sink(e);
  }

  function syscall(): void {
    const name = pick();
    counts[name] = (counts[name] ?? 0) + 1;
    countsTotal++;
    const traced = tracesSyscall(config, name);
    if (options.truthMax !== undefined && truth.length < options.truthMax) truth.push({ atNs: wallNs, syscall: name, traced });
    const { args, result } = callEffects(name);
    const stops = traced || (cost.trapsEverySyscall && config.syscalls !== undefined);
    if (!stops) return;
    const c = jittered(cost.trapNs + 2 * cost.switchNs);
    if (traced) emit({ set: 'syscalls', seq: ++seq.syscalls, atNs: wallNs, pid: workload.pid, syscall: name, args, result, configVersion });
    traps = { count: traps.count + 1, stoppedNs: traps.stoppedNs + c };
    stoppedNs += c;
    wallNs += c;
  }

  /** What the call does to the simulated state, and how strace would print it. */
  function callEffects(name: string): { args: string[]; result: number } {
    switch (name) {
      case 'openat': {
        const path = FILE_PATHS[Math.floor(random() * FILE_PATHS.length)]!;
        const args = ['AT_FDCWD', JSON.stringify(path), 'O_RDONLY|O_CLOEXEC'];
        if (random() < 0.1) return { args, result: -2 }; // ENOENT
        if (openFds.length >= openFilesMax) return { args, result: -24 }; // EMFILE
        const fd = (openFds[openFds.length - 1]?.fd ?? 2) + 1;
        openFds.push({ fd, path });
        return { args, result: fd };
      }
      case 'close': {
        // Closes a file the workload opened; the files it held at start stay open.
        if (openFds.length <= workload.openFiles) return { args: ['99'], result: -9 }; // EBADF
        const [gone] = openFds.splice(workload.openFiles + Math.floor(random() * (openFds.length - workload.openFiles)), 1);
        return { args: [String(gone!.fd)], result: 0 };
      }
      case 'read':
      case 'write': {
        const fd = openFds[Math.floor(random() * openFds.length)]?.fd ?? 0;
        const n = Math.floor(random() * 4097);
        return { args: [String(fd), '"..."', '4096'], result: n };
      }
      case 'execve':
        return { args: ['"/usr/bin/cc"', '["cc", "-c", "x.c"]', '0x7ffd /* 20 vars */'], result: 0 };
      default:
        return { args: [], result: 0 };
    }
  }

  function extract(set: 'proclist' | 'files'): void {
    const items = set === 'proclist' ? processes.length : openFds.length;
    const nominal = set === 'proclist' ? cost.proclistBaseNs + cost.proclistPerProcessNs * items : cost.filesBaseNs + cost.filesPerFileNs * items;
    const c = jittered(2 * cost.switchNs + nominal);
    if (set === 'proclist') emit({ set, seq: ++seq.proclist, atNs: wallNs, processes: processes.map((p) => ({ ...p })), configVersion });
    else emit({ set, seq: ++seq.files, atNs: wallNs, pid: workload.pid, files: openFds.map((f) => ({ ...f })), configVersion });
    extractions[set] = { count: extractions[set].count + 1, stoppedNs: extractions[set].stoppedNs + c };
    stoppedNs += c;
    wallNs += c;
    lastEnd[set] = wallNs;
    const p = config[set]?.periodMs;
    invariant(p !== undefined, 'only an active set extracts');
    due[set] = wallNs + p * 1e6;
  }

  function nextTimer(): { set: 'proclist' | 'files'; at: number } | undefined {
    let best: { set: 'proclist' | 'files'; at: number } | undefined;
    for (const set of ['proclist', 'files'] as const) {
      const at = due[set];
      if (at !== undefined && (best === undefined || at < best.at)) best = { set, at };
    }
    return best;
  }

  function run(): void {
    while (wallNs < requestedNs) {
      const timer = nextTimer();
      const computeEventNs = Math.min(nextCallNs, phaseEndNs);
      const computeEventWallNs = wallNs + (computeEventNs - computeNs);
      const stopAt = Math.min(requestedNs, computeEventWallNs, timer?.at ?? Infinity);
      // The target computes until the first of: the end of the run, its next call or phase
      // change, a timer. A timer already overdue (it fell due during a stop) fires at once.
      if (stopAt > wallNs) {
        computeNs += stopAt - wallNs;
        wallNs = stopAt;
      }
      if (timer !== undefined && timer.at <= wallNs) extract(timer.set);
      else if (computeEventWallNs <= wallNs) {
        computeNs = Math.max(computeNs, computeEventNs); // exact, against rounding above; never backwards
        if (phaseEndNs <= nextCallNs) {
          phase = (phase + 1) % workload.phases.length;
          phaseEndNs = computeNs + workload.phases[phase]!.computeMs * 1e6;
          enterPhase(phase);
        } else {
          syscall();
          nextCallNs = drawNext(computeNs);
        }
      }
    }
  }

  function applyNow(change: SetChange): { config: MonitorConfig; effects: SetEffect[]; configVersion: number } {
    if (!started) throw new FitError('FIT_ERR_USAGE', 'the sim back end must be started before a set change is applied');
    const { config: next, effects } = applySetChange(config, change);
    config = next;
    for (const set of ['proclist', 'files'] as const) {
      const p = config[set]?.periodMs;
      if (p === undefined) delete due[set];
      else if (due[set] === undefined) due[set] = wallNs; // newly enabled: extract now
      else due[set] = Math.max(wallNs, (lastEnd[set] ?? wallNs) + p * 1e6); // new period from the last extraction
    }
    if (effects.length > 0) configVersion++;
    return { config, effects, configVersion };
  }

  function costs(): CostReport {
    return {
      kind: 'sim',
      atNs: wallNs,
      computeNs,
      stoppedNs,
      traps,
      extractions: { proclist: extractions.proclist, files: extractions.files },
      syscalls: { ...counts },
      syscallsTotal: countsTotal,
      processes: processes.length,
      openFiles: openFds.length,
    };
  }

  return {
    kind: 'sim',
    supports: SET_NAMES,
    async start() {
      if (started) return;
      started = true;
      enterPhase(0);
    },
    async stop() {
      started = false;
    },
    async apply(change) {
      return applyNow(change);
    },
    applySync: applyNow,
    config: () => config,
    costs,
    calibration: () => cal,
    advance(ms: number) {
      if (!started) throw new FitError('FIT_ERR_USAGE', 'the sim back end must be started before it can run');
      invariant(Number.isFinite(ms) && ms >= 0, 'advance takes a finite, non-negative number of ms');
      requestedNs += ms * 1e6;
      run();
    },
    truth: () => truth,
  };
}
