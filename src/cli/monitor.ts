// `fitbroker monitor`: runs the monitoring agent against one target through one back end,
// publishing what it collects, answering commands on monitor.control and reporting its cost
// on monitor.perf every second. With `-- CMD ARGS` the agent starts the target itself (stopped
// until the initial sets are in place, so tracing starts at its first instruction) and exits
// with the target's exit status, as strace and time do; with --pid it watches a running
// process; the sim back end runs until --duration or Ctrl-C.

import pino, { type Logger } from 'pino';
import { FitError } from '../core/index.js';
import { clientKeyPath, loadConfig, withTlsFiles } from '../config/index.js';
import { loadPrivateKey } from '../protection/index.js';
import { constants } from 'node:os';
import { GUEST_WORKLOADS, Guest, defaultVmCache, detectAccel, prepareGuest, vmiBackend } from '../monitoring/vmi/index.js';
import { MonitorAgent, SIM_COST_PROFILES, attachTarget, calibratePtraceBackend, launchTarget, procBackend, ptraceBackend, startSyscallCounter, type TargetExit, SIM_WORKLOADS, parseSetChange, simBackend, simInRealTime, type EventSink, type MonitorBackend, type SetChange, type SimCostProfileName } from '../monitoring/index.js';

export const BACKENDS = ['vmi', 'ptrace', 'proc', 'sim'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface MonitorCommandOptions {
  dir: string;
  as: string;
  backend: BackendName;
  pid?: number;
  /** Sets active from the start, in the CLI form (repeatable --set). */
  set: string[];
  issuers?: string;
  duration?: number;
  vmWorkload: string;
  vmCache?: string;
  vmConsole?: string;
  simWorkload: string;
  simCosts: string;
  seed: number;
  logLevel?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** The target a back end monitors, as the agent sees it. */
interface RunningTarget {
  pid: number | null;
  alive(): boolean;
  /** Lets a target started stopped run. */
  resume(): void;
  /** Resolves with the exit code the agent should exit with when the target ends; never for sim. */
  ended: Promise<number>;
  /** Ends the target if the agent started it. */
  kill(): void;
}

interface BuiltBackend {
  backend(sink: EventSink): MonitorBackend;
  target: RunningTarget;
  /** Runs after the back end starts (the sim's clock). */
  afterStart?(backend: MonitorBackend): () => void;
}

function logger(level: string | undefined, agent: string): Logger {
  const l = level ?? process.env.FITBROKER_LOG_LEVEL ?? 'info';
  if (!(l in pino.levels.values) && l !== 'silent') throw new FitError('FIT_ERR_USAGE', `log level "${l}" is not one of ${[...Object.keys(pino.levels.values), 'silent'].join(', ')} (--log-level or FITBROKER_LOG_LEVEL)`);
  return pino({ level: l, base: { agent, pid: process.pid } }, pino.destination(2));
}

function simTarget(o: MonitorCommandOptions): BuiltBackend {
  const workload = SIM_WORKLOADS[o.simWorkload as keyof typeof SIM_WORKLOADS];
  if (!workload) throw new FitError('FIT_ERR_USAGE', `--sim-workload ${o.simWorkload}: the sim workloads are ${Object.keys(SIM_WORKLOADS).join(', ')}`);
  const costs = SIM_COST_PROFILES[o.simCosts as SimCostProfileName];
  if (!costs) throw new FitError('FIT_ERR_USAGE', `--sim-costs ${o.simCosts}: the cost profiles are ${Object.keys(SIM_COST_PROFILES).join(', ')}`);
  let sim: ReturnType<typeof simBackend> | undefined;
  return {
    backend: (sink) => (sim = simBackend({ seed: o.seed, sink, workload, costs })),
    target: { pid: workload.pid, alive: () => true, resume: () => undefined, ended: new Promise(() => undefined), kill: () => undefined },
    afterStart: () => simInRealTime(() => sim),
  };
}

/** The vmi back end: the prepared guest under QEMU, introspected from outside. */
async function vmiTarget(o: MonitorCommandOptions, log: Logger): Promise<BuiltBackend> {
  if (!GUEST_WORKLOADS[o.vmWorkload]) throw new FitError('FIT_ERR_USAGE', `--vm-workload ${o.vmWorkload}: the guest's workloads are ${Object.keys(GUEST_WORKLOADS).join(', ')}`);
  const prepared = await prepareGuest({ cache: o.vmCache ?? defaultVmCache(), say: (line) => log.info(`vm prepare: ${line}`) });
  const accel = detectAccel();
  log.info({ accel: accel.accel }, `starting the guest under QEMU with ${accel.accel === 'kvm' ? 'KVM' : "QEMU's emulator (TCG)"}: ${accel.why}`);
  const guest = await Guest.start({ files: prepared.files, mode: 'run', workload: o.vmWorkload, accel: accel.accel, ...(o.vmConsole ? { consolePath: o.vmConsole } : {}), onLine: (line) => log.debug({ guest: line }, 'guest console') });
  try {
    await guest.waitFor(`its workload ${o.vmWorkload} started`, () => guest.ready || guest.workloadError !== undefined);
  } catch (err) {
    guest.kill();
    throw err;
  }
  if (guest.workloadError) {
    guest.kill();
    throw new FitError('FIT_ERR_VMI', `the guest refused its workload: ${guest.workloadError}; run \`fitbroker vm prepare --force\` to rebuild it`);
  }
  return {
    backend: (sink) => vmiBackend({ guest, profile: prepared.profile, sink, log: (line) => log.info(line) }),
    target: {
      pid: null,
      alive: () => guest.alive,
      resume: () => undefined,
      ended: guest.exited.then((e) => {
        log.warn({ code: e.code, signal: e.signal }, 'the guest stopped');
        return e.code ?? 1;
      }),
      kill: () => guest.kill(),
    },
  };
}

async function build(o: MonitorCommandOptions, command: string[], log: Logger): Promise<BuiltBackend> {
  if (o.backend === 'vmi') {
    if (command.length > 0 || o.pid !== undefined) throw new FitError('FIT_ERR_USAGE', 'the vmi back end monitors its own guest: give neither a command nor --pid (choose what the guest runs with --vm-workload)');
    return vmiTarget(o, log);
  }
  if (o.backend === 'sim') {
    if (command.length > 0 || o.pid !== undefined) throw new FitError('FIT_ERR_USAGE', 'the sim back end simulates its own target: give neither a command nor --pid');
    return simTarget(o);
  }
  return hostTarget(o, command, log);
}

/** The exit status a shell would report for a target that ended this way. */
function exitStatus(e: TargetExit): number {
  if (e.code !== null) return e.code;
  const n = e.signal === null ? undefined : constants.signals[e.signal as keyof typeof constants.signals];
  return n === undefined ? 1 : 128 + n;
}

/** The ptrace and proc back ends, on a real process tree. */
async function hostTarget(o: MonitorCommandOptions, command: string[], log: Logger): Promise<BuiltBackend> {
  if (command.length > 0 && o.pid !== undefined) throw new FitError('FIT_ERR_USAGE', 'give either a command after -- or --pid, not both');
  if (command.length === 0 && o.pid === undefined) throw new FitError('FIT_ERR_USAGE', `the ${o.backend} back end needs a target: a command after -- (e.g. -- tar cf /dev/null /usr/share/doc) or --pid PID`);
  // Calibrate before the target exists: the measurement must not compete with it for the CPU.
  // Through the back end itself: a stop as the agent imposes it (strace through a FIFO, parsed
  // here, the counter running) costs more than bare strace's (docs/prediction-accuracy.md).
  const calibration = o.backend === 'ptrace' ? await calibratePtraceBackend() : undefined;
  if (calibration) log.info({ calibration }, `ptrace calibrated on this machine: ${((calibration.trapNs + 2 * calibration.switchNs) / 1000).toFixed(1)} µs per stop`);
  const target = command.length > 0 ? await launchTarget(command[0]!, command.slice(1)) : attachTarget(o.pid!);
  const counter = await startSyscallCounter(target.pid);
  if (counter.unavailable) log.warn(`syscall rates of untraced calls are unknown (${counter.unavailable}); predictions for syscall tracing fall back on what strace sees while attached`);
  return {
    backend: (sink) =>
      o.backend === 'ptrace'
        ? ptraceBackend({ target, sink, counter, ...(calibration ? { calibration } : {}), onError: (m) => log.warn(`strace: ${m}`) })
        : procBackend({ target, sink, counter, log: (m) => log.warn(m) }),
    target: {
      pid: target.pid,
      alive: () => target.alive(),
      resume: () => target.resume(),
      ended: target.exited.then((e) => {
        log.info({ code: e.code, signal: e.signal, wallMs: Math.round(e.wallNs / 1e6) }, 'the target exited');
        return target.launched ? exitStatus(e) : 0;
      }),
      kill: () => {
        if (target.launched && target.alive()) target.kill('SIGTERM');
      },
    },
  };
}

export async function monitor(o: MonitorCommandOptions, command: string[]): Promise<void> {
  const config = withTlsFiles(loadConfig(o.dir), o);
  const key = loadPrivateKey(clientKeyPath(o.dir, o.as));
  const initial: SetChange = parseSetChange(o.set, []);
  const log = logger(o.logLevel, o.as);
  const built = await build(o, command, log);
  const agent = new MonitorAgent({
    config,
    name: o.as,
    key,
    log,
    backend: built.backend,
    target: built.target,
    ...(o.issuers ? { issuers: o.issuers.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
  });
  let fatal: FitError | undefined;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  let stopClock: (() => void) | undefined;
  try {
    await agent.start((err) => {
      fatal = err;
      wake();
    });
    stopClock = built.afterStart?.(agent.backend);
    if (initial.enable.length > 0) await agent.applyInitial(initial);
  } catch (err) {
    // A target started stopped must not be left stopped behind us.
    stopClock?.();
    await agent.stop(1000).catch(() => undefined);
    built.target.kill();
    throw err;
  }
  built.target.resume();
  log.info({ backend: o.backend, target: built.target.pid, supports: agent.backend.supports }, 'monitoring');
  let exitCode = 0;
  built.target.ended.then((code) => {
    exitCode = code;
    wake();
  }, wake);
  const duration = o.duration === undefined ? undefined : setTimeout(wake, o.duration * 1000);
  const onSignal = (): void => wake();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await stopped;
  clearTimeout(duration);
  stopClock?.();
  try {
    await agent.stop();
  } finally {
    built.target.kill();
  }
  if (fatal) throw fatal;
  process.exitCode = exitCode;
}
