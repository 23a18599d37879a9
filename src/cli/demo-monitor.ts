// The monitoring part of `fitbroker demo`: a monitoring agent on the demo cluster, tracing a
// small workload of this host with the real ptrace back end (the simulated VM when strace
// cannot be installed, said so), or with `--monitor vmi` a QEMU guest from outside it (the
// guest prepared first if it is not, which takes a while once), and, a few seconds in, the
// analyst reconfiguring it through
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
import { Guest, defaultVmCache, detectAccel, prepareGuest, vmiBackend } from '../monitoring/vmi/index.js';
import { commandId, describe, sendCommand } from './reconfigure.js';

export const DEMO_MONITORS = ['ptrace', 'vmi'] as const;
export type DemoMonitorKind = (typeof DEMO_MONITORS)[number];

/** The demo's target: a shell that keeps reading a few files and starting short commands. */
export const DEMO_WORKLOAD = 'while :; do cat /etc/hostname /etc/os-release >/dev/null; ls /usr/bin >/dev/null; sleep 0.2; done';
/** When the analyst's command goes out, after the agent started. */
const COMMAND_AFTER_MS = 2500;

export interface DemoMonitor {
  /** What the monitoring part says in the demo's header. */
  readonly description: string;
  stop(): Promise<void>;
}

export async function startDemoMonitor(config: ClusterConfig, say: (line: string) => void, onError: (err: FitError) => void, kind: DemoMonitorKind = 'ptrace'): Promise<DemoMonitor> {
  const log = pino({ level: 'info', base: { agent: 'agent' } }, pino.destination({ dest: join(config.dir, 'agent.log'), sync: false }));
  const missing = kind === 'vmi' ? undefined : await ensureDebianPackage(STRACE);
  let target: Target | undefined;
  let guest: Guest | undefined;
  let backend: (sink: EventSink) => MonitorBackend;
  let stopClock = (): void => undefined;
  if (kind === 'vmi') {
    const prepared = await prepareGuest({ cache: defaultVmCache(), say: (line) => say(`monitor   vm prepare: ${line}`) });
    const accel = detectAccel();
    say(`monitor   booting the guest (${accel.accel === 'kvm' ? 'KVM' : "QEMU's emulator: this host has no hardware virtualization"}); the agent then takes a census of its syscalls (6–25 s)`);
    const g = (guest = await Guest.start({ files: prepared.files, mode: 'run', workload: 'exec', accel: accel.accel, consolePath: join(config.dir, 'guest-console.log') }));
    await g.waitFor('its workload', () => g.ready);
    backend = (sink) => vmiBackend({ guest: g, profile: prepared.profile, sink, log: (m) => log.info(m) });
  } else if (missing === undefined) {
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
  const agent = new MonitorAgent({ config, name: 'agent', key: loadPrivateKey(clientKeyPath(config.dir, 'agent')), backend, log, target: { pid: target?.pid ?? null, alive: () => guest?.alive ?? target?.alive() ?? true } });
  try {
    await agent.start(onError);
  } catch (err) {
    guest?.kill();
    throw err;
  }
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
  const what = guest ? "a QEMU guest running cat and head in a loop, from outside it (its console: guest-console.log)" : target ? `pid ${target.pid}, sh -c '${DEMO_WORKLOAD.slice(0, 40)}…'` : 'a simulated VM';
  return {
    description: `  monitor   a monitoring agent (as "agent", ${guest ? 'vmi' : target ? 'ptrace' : 'sim'} back end) watches ${what}; its process list, syscalls and costs go to monitor.*; the analyst reconfigures it ${COMMAND_AFTER_MS / 1000} s in`,
    async stop() {
      clearTimeout(timer);
      stopClock();
      await agent.stop(3000);
      if (target?.alive()) target.kill('SIGTERM');
      guest?.kill();
      log.flush();
    },
  };
}
