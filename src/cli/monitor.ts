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
import { MonitorAgent, SIM_COST_PROFILES, SIM_WORKLOADS, parseSetChange, simBackend, type EventSink, type MonitorBackend, type SetChange, type SimCostProfileName } from '../monitoring/index.js';

export const BACKENDS = ['ptrace', 'proc', 'sim'] as const;
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
    // The simulated VM runs on the wall clock: every 20 ms it catches up with real time.
    afterStart: () => {
      let last = performance.now();
      const t = setInterval(() => {
        const now = performance.now();
        sim!.advance(now - last);
        last = now;
      }, 20);
      return () => clearInterval(t);
    },
  };
}

async function build(o: MonitorCommandOptions, command: string[]): Promise<BuiltBackend> {
  if (o.backend === 'sim') {
    if (command.length > 0 || o.pid !== undefined) throw new FitError('FIT_ERR_USAGE', 'the sim back end simulates its own target: give neither a command nor --pid');
    return simTarget(o);
  }
  return hostTarget(o, command);
}

/** The ptrace and proc back ends, on a real process. */
async function hostTarget(o: MonitorCommandOptions, command: string[]): Promise<BuiltBackend> {
  void command;
  throw new FitError('FIT_ERR_NOT_SUPPORTED', `the ${o.backend} back end is not in this build`);
}

export async function monitor(o: MonitorCommandOptions, command: string[]): Promise<void> {
  const config = withTlsFiles(loadConfig(o.dir), o);
  const key = loadPrivateKey(clientKeyPath(o.dir, o.as));
  const initial: SetChange = parseSetChange(o.set, []);
  const log = logger(o.logLevel, o.as);
  const built = await build(o, command);
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
  await agent.start((err) => {
    fatal = err;
    wake();
  });
  const stopClock = built.afterStart?.(agent.backend);
  if (initial.enable.length > 0) await agent.applyInitial(initial);
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
  await agent.stop();
  built.target.kill();
  if (fatal) throw fatal;
  process.exitCode = exitCode;
}
