// The monitoring part of `fitbroker demo`: a monitoring agent on the demo cluster, tracing a
// small workload of this host with the real ptrace back end (the simulated VM when strace
// cannot be installed, said so), and, a few seconds in, the analyst reconfiguring it through
// monitor.control, so the demo shows the agent's answer with the predicted overhead and then
// the measured one. Everything goes through the broker as `monitor` and `reconfigure` would.

import pino from 'pino';
import { join } from 'node:path';
import { ensureDebianPackage, type FitError } from '../core/index.js';
import { clientKeyPath, type ClusterConfig } from '../config/index.js';
import { loadPrivateKey } from '../protection/index.js';
import {
  MonitorAgent,
  SIM_COST_PROFILES,
  SIM_WORKLOADS,
  STRACE,
  calibratePtraceBackend,
  launchTarget,
  ptraceBackend,
  simBackend,
  simInRealTime,
  startSyscallCounter,
  type ControlCommand,
  type EventSink,
  type MonitorBackend,
  type Target,
} from '../monitoring/index.js';
import { commandId, describe, sendCommand } from './reconfigure.js';

/** The demo's target: a shell that keeps reading a few files and starting short commands. */
export const DEMO_WORKLOAD = 'while :; do cat /etc/hostname /etc/os-release >/dev/null; ls /usr/bin >/dev/null; sleep 0.2; done';
/** When the analyst's command goes out, after the agent started. */
const COMMAND_AFTER_MS = 2500;

export interface DemoMonitor {
  /** What the monitoring part says in the demo's header. */
  readonly description: string;
  stop(): Promise<void>;
}

export async function startDemoMonitor(config: ClusterConfig, say: (line: string) => void, onError: (err: FitError) => void): Promise<DemoMonitor> {
  const log = pino({ level: 'info', base: { agent: 'agent' } }, pino.destination({ dest: join(config.dir, 'agent.log'), sync: false }));
  const missing = await ensureDebianPackage(STRACE);
  let target: Target | undefined;
  let backend: (sink: EventSink) => MonitorBackend;
  let stopClock = (): void => undefined;
  if (missing === undefined) {
    const calibration = await calibratePtraceBackend({ runs: 1 });
    target = await launchTarget('sh', ['-c', DEMO_WORKLOAD], { stdio: 'ignore' });
    const counter = await startSyscallCounter(target.pid);
    const t = target;
    backend = (sink) => ptraceBackend({ target: t, sink, counter, calibration, onError: (m) => log.warn(`strace: ${m}`) });
  } else {
    say(`monitor   strace is not available (${missing}): the agent monitors a simulated VM instead`);
    let sim: ReturnType<typeof simBackend> | undefined;
    backend = (sink) => (sim = simBackend({ seed: 1, sink, workload: SIM_WORKLOADS.web, costs: SIM_COST_PROFILES.ptrace }));
    stopClock = simInRealTime(() => sim);
  }
  const agent = new MonitorAgent({ config, name: 'agent', key: loadPrivateKey(clientKeyPath(config.dir, 'agent')), backend, log, target: { pid: target?.pid ?? null, alive: () => target?.alive() ?? true } });
  await agent.start(onError);
  await agent.applyInitial({ enable: [{ set: 'proclist', periodMs: 2000 }], disable: [] });
  target?.resume();
  const command: ControlCommand = {
    type: 'monitor.command',
    id: commandId(),
    agent: 'agent',
    issuer: 'analyst',
    enable: [{ set: 'syscalls', syscalls: ['openat', 'execve'] }],
    disable: [],
    dryRun: false,
  };
  const timer = setTimeout(() => {
    say(`monitor   the analyst asks agent to trace openat and execve too (monitor.control, as analyst)`);
    sendCommand(config, loadPrivateKey(clientKeyPath(config.dir, 'analyst')), { dir: config.dir, as: 'analyst', agent: 'agent', timeout: 10 }, command).then(
      (r) => say(describe(r).trimEnd().split('\n').map((l) => `monitor   ${l}`).join('\n')),
      (err: FitError) => say(`monitor   the command got no answer: ${err.message}`),
    );
  }, COMMAND_AFTER_MS);
  const what = target ? `pid ${target.pid}, sh -c '${DEMO_WORKLOAD.slice(0, 40)}…'` : 'a simulated VM';
  return {
    description: `  monitor   a monitoring agent (as "agent", ${target ? 'ptrace back end' : 'sim back end'}) watches ${what}; its process list, syscalls and costs go to monitor.*; the analyst reconfigures it ${COMMAND_AFTER_MS / 1000} s in`,
    async stop() {
      clearTimeout(timer);
      stopClock();
      await agent.stop(3000);
      if (target?.alive()) target.kill('SIGTERM');
      log.flush();
    },
  };
}
