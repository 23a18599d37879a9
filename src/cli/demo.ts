// `fitbroker demo`: the whole system on one machine in one command. It writes a fresh
// 4-replica cluster config, runs `fitbroker up` as a child process, publishes real events of
// this host through the replicas (src/adapters/hostprobe.ts), and prints what a console
// delivers after voting. Nothing here is a shortcut around the broker: the events take the same
// path as `fitbroker publish | … | fitbroker subscribe` would. It must never leave replica
// processes behind: every way out (Ctrl-C, --duration, an error) goes through one shutdown.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { FitError, publishQuorum, type BrokerEvent } from '../core/index.js';
import { clientKeyPath, initCluster, metricsBasePortFor, type ClusterConfig } from '../config/index.js';
import { loadPrivateKey } from '../protection/index.js';
import { Publisher, Subscriber, queryStatus, type SubscriberSummary } from '../client/index.js';
import { hostProbe, type HostEvent } from '../adapters/index.js';
import { eventToJson } from './subscribe.js';
import { CLI_PATH } from './up.js';
import { startDemoMonitor, type DemoMonitor, type DemoMonitorKind } from './demo-monitor.js';

export interface DemoOptions {
  dir: string;
  duration?: number;
  basePort: number;
  /** What the monitoring agent watches: a workload of this host (ptrace) or a QEMU guest (vmi). */
  monitor?: DemoMonitorKind;
}

const HOST = '127.0.0.1';
const REPLICAS = 4;
const FAULTS = 1;
const CHANNELS = ['alerts', 'metrics'] as const;
/** Alerts go through consensus: every console sees them in one order, each numbered. */
const ORDERED = ['alerts'];
const READY_TIMEOUT_MS = 20_000;
const READY_POLL_MS = 250;
const SUBSCRIBE_TIMEOUT_MS = 10_000;
const FLUSH_TIMEOUT_MS = 3_000;
const DELIVERY_GRACE_MS = 2_000;
const CLUSTER_STOP_TIMEOUT_MS = 8_000;
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** What the console shows of the monitoring agent's channels (its answers print where the command is sent). */
const MONITOR_CHANNELS = ['monitor.syscalls', 'monitor.perf'] as const;
/** At most one traced syscall line a second, and one perf report in this many: the rest are counted. */
const SYSCALL_LINE_EVERY_MS = 1000;
const PERF_LINE_EVERY = 3;

interface Stop {
  why: string;
  err?: Error;
}

export async function demo(o: DemoOptions): Promise<void> {
  await assertPortsFree(HOST, o.basePort, REPLICAS);
  // init's default metrics ports (base port + 1000), checked the same way.
  await assertPortsFree(HOST, metricsBasePortFor({ basePort: o.basePort, replicas: REPLICAS }), REPLICAS, 'metrics of replica', o.basePort);
  const config = initCluster({
    dir: o.dir,
    replicas: REPLICAS,
    faults: FAULTS,
    channels: CHANNELS.filter((c) => !ORDERED.includes(c)),
    ordered: ORDERED,
    basePort: o.basePort,
    host: HOST,
    faultModel: 'bft',
    // What an operator would run: events and positions survive a replica's crash or restart.
    persist: 'disk',
    clients: [],
    force: true,
    monitoring: true,
  });
  const logPath = join(o.dir, 'replicas.log');
  say(header(config, o.dir, logPath));

  const cluster = startCluster(o.dir, logPath);
  const orphanGuard = (): void => killGroup(cluster.child, 'SIGKILL');
  process.on('exit', orphanGuard);
  let requestStop: (s: Stop) => void = () => undefined;
  const stopped = new Promise<Stop>((resolve) => (requestStop = resolve));
  void cluster.exited.then((how) => requestStop({ why: 'cluster exited', err: clusterError(`the replicas stopped (${how})`, logPath) }));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals === 1) {
      say(`\n${signal}: stopping (again to force)…`);
      return requestStop({ why: signal });
    }
    killGroup(cluster.child, 'SIGKILL');
    process.exit(130);
  };
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  // `fitbroker demo | head` closes the pipe under us: a normal way to stop, not a crash. The
  // listener stays to the end, since the summary's write fails the same way a tick later.
  process.stdout.on('error', () => {
    stdoutClosed = true;
    requestStop({ why: 'stdout closed' });
  });

  const delivered: Record<string, number> = Object.fromEntries(CHANNELS.map((c) => [c, 0]));
  const subs: Subscriber[] = [];
  const probe = hostProbe();
  const sent = { published: 0, droppedWhileFull: 0 };
  let pub: Publisher | undefined;
  let monitorPart: DemoMonitor | undefined;
  const monitored = { syscalls: 0, perf: 0, lastSyscallLineMs: 0 };

  const run = async (): Promise<Stop> => {
    const ready = await raceStop(waitReady(config, logPath, cluster.exited), stopped);
    if (ready === undefined) return stopped;
    say(`ready: ${ready.up} of ${REPLICAS} replicas answered after ${(ready.ms / 1000).toFixed(1)} s (a quorum is ${REPLICAS - FAULTS})`);

    const consoleKey = loadPrivateKey(clientKeyPath(o.dir, 'console'));
    for (const channel of CHANNELS) {
      const onEvent = (ev: BrokerEvent): void => {
        delivered[channel]!++;
        say(formatEvent(ev));
      };
      subs.push(new Subscriber(config, 'console', consoleKey, { channel, onEvent, onError: (err) => requestStop({ why: 'subscriber failed', err }) }));
    }
    const onMonitorEvent = (ev: BrokerEvent): void => {
      const now = Date.now();
      if (ev.channel === 'monitor.perf' && monitored.perf++ % PERF_LINE_EVERY !== 0) return;
      if (ev.channel === 'monitor.syscalls') {
        monitored.syscalls++;
        if (now - monitored.lastSyscallLineMs < SYSCALL_LINE_EVERY_MS) return;
        monitored.lastSyscallLineMs = now;
      }
      say(formatEvent(ev, now));
    };
    subs.push(new Subscriber(config, 'console', consoleKey, { channels: [...MONITOR_CHANNELS], onEvent: onMonitorEvent, onError: (err) => requestStop({ why: 'subscriber failed', err }) }));
    const subscribed = withTimeout(Promise.all(subs.map((s) => s.start())), SUBSCRIBE_TIMEOUT_MS, () =>
      clusterError(`the console could not subscribe within ${SUBSCRIBE_TIMEOUT_MS / 1000} s`, logPath),
    );
    if ((await raceStop(subscribed, stopped)) === undefined) return stopped;

    pub = new Publisher(config, 'probe', loadPrivateKey(clientKeyPath(o.dir, 'probe'))).connect();
    probe.start(publishTo(pub, sent, (err) => requestStop({ why: 'publisher failed', err })));
    say(`console subscribed to ${CHANNELS.join(' and ')} (and ${MONITOR_CHANNELS.join(', ')}); the probe is publishing as "probe"${o.duration ? ` for ${o.duration} s` : ''} (Ctrl-C stops)\n`);
    monitorPart = await raceStop(startDemoMonitor(config, say, (err) => requestStop({ why: 'monitoring agent failed', err }), o.monitor), stopped);
    if (monitorPart === undefined) return stopped;
    say(monitorPart.description);
    const timer = o.duration === undefined ? undefined : setTimeout(() => requestStop({ why: `${o.duration} s elapsed` }), o.duration * 1000);
    return stopped.finally(() => clearTimeout(timer));
  };

  let stop: Stop | undefined;
  try {
    stop = await run();
  } finally {
    // One way down, in dependency order: no new events, the last ones acknowledged and
    // delivered, consoles closed (their final acks and evidence reach the replicas), then the
    // replicas, then the guards.
    probe.stop();
    await monitorPart?.stop().catch((err: unknown) => say(`note: the monitoring agent did not stop cleanly: ${(err as Error).message}`));
    if (pub && stop && !stop.err) await settle(pub, delivered);
    await Promise.all(subs.map((s) => s.close().catch(() => undefined)));
    pub?.close();
    await stopCluster(cluster);
    process.off('exit', orphanGuard);
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
  if (pub) say(summary(stop.why, sent, pub?.counters.acknowledged ?? 0, delivered, subs.map((s) => s.summary()), logPath, monitored));
  if (stop.err) throw stop.err;
}

/**
 * The probe pushes; a full publish window means the cluster stopped acknowledging, so events
 * are then counted and dropped rather than queued without bound.
 */
function publishTo(pub: Publisher, sent: { published: number; droppedWhileFull: number }, onFail: (err: Error) => void): (e: HostEvent) => void {
  let full = false;
  return (e) => {
    if (full) {
      sent.droppedWhileFull++;
      return;
    }
    try {
      sent.published++;
      if (pub.publish(e.channel, e.content, { priority: e.priority })) return;
      full = true;
      pub.drained().then(() => (full = false), onFail);
    } catch (err) {
      onFail(err as Error);
    }
  };
}

let stdoutClosed = false;

function say(text: string): void {
  if (!stdoutClosed) process.stdout.write(`${text}\n`);
}

function header(config: ClusterConfig, dir: string, logPath: string): string {
  const ports = config.replicas.map((r) => r.port);
  const rel = relative(process.cwd(), CLI_PATH);
  const cli = `node ${rel.startsWith('..') ? CLI_PATH : rel}`;
  return [
    'fitbroker demo: a fault- and intrusion-tolerant event broker, all on this machine',
    `  cluster   ${config.file}: ${REPLICAS} replicas on ${HOST} ports ${ports[0]}-${ports.at(-1)}, f=${FAULTS} (one replica may crash or lie)`,
    `  replicas  \`fitbroker up\` runs them as child processes; their output goes to ${logPath}`,
    '  probe     publishes real events of this host: metrics every 2 s, new processes, auth failures, load and memory alerts',
    `  console   subscribes to ${CHANNELS.join(' and ')}; its voter delivers an event once ${FAULTS + 1} replicas sent matching copies`,
    `  order     ${ORDERED.join(', ')} ${ORDERED.length > 1 ? 'are' : 'is'} ordered by consensus among the replicas: every console gets the same order, each event numbered (#seq)`,
    `  disk      every channel is persist: disk, and each replica journals its consensus state: a replica killed (kill -9) and started again (${cli} replica --dir ${dir} --id N) comes back with its events, positions and votes`,
    ...(config.replicas[0]?.metricsPort ? [`  metrics   http://${HOST}:${config.replicas[0].metricsPort}/metrics (and /healthz, /readyz), one port per replica up to ${config.replicas.at(-1)!.metricsPort}`] : []),
    'in another terminal, while this runs:',
    `  ${cli} subscribe --dir ${dir} --as console --channel alerts`,
    `  echo '{"type":"note","text":"hello"}' | ${cli} publish --dir ${dir} --as probe --channel alerts`,
    `  ${cli} status --dir ${dir}`,
    'to watch a faulty replica being outvoted: stop this demo, then run the cluster with replica 2 tampering',
    `  FITBROKER_ALLOW_FAULTS=1 ${cli} up --dir ${dir} --fault 2:tamper`,
    '  and subscribe and publish as above: events arrive intact and the subscriber names replica 2',
    '',
  ].join('\n');
}

// ---- the cluster child ----------------------------------------------------------------------

interface Cluster {
  child: ChildProcess;
  /** Resolves with how the `up` process ended. */
  exited: Promise<string>;
}

/** Fails with the port and a way out, before anything is written or started. */
async function assertPortsFree(host: string, basePort: number, n: number, what = 'replica', demoBasePort = basePort): Promise<void> {
  const last = basePort + n - 1;
  if (last > 65535) {
    throw new FitError('FIT_ERR_USAGE', `--base-port ${basePort}: the demo needs ports ${basePort}-${last} and the last is over 65535; choose a lower --base-port, e.g. 7400`, { basePort });
  }
  for (let id = 0; id < n; id++) {
    const port = basePort + id;
    await new Promise<void>((resolve, reject) => {
      const server = createServer();
      server.once('error', (e: NodeJS.ErrnoException) => {
        const why = e.code === 'EADDRINUSE' ? 'is already in use (another demo or `fitbroker up` still running, or another program)' : `cannot be used (${e.code ?? e.message})`;
        reject(new FitError('FIT_ERR_USAGE', `port ${port} on ${host}, for ${what} ${id}, ${why}; stop what holds it, or choose other ports with --base-port (e.g. --base-port ${demoBasePort + 100})`, { port }));
      });
      server.listen(port, host, () => server.close(() => resolve()));
    });
  }
}

function startCluster(dir: string, logPath: string): Cluster {
  const log = openSync(logPath, 'w');
  // Its own process group: a Ctrl-C in the terminal reaches only the demo, which then stops
  // the replicas after the consoles closed, instead of all of them dying at once.
  const child = spawn(process.execPath, [CLI_PATH, 'up', '--dir', dir], { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  const exited = new Promise<string>((resolve) => {
    child.on('exit', (code, signal) => resolve(signal ?? `exit code ${code}`));
    child.on('error', (e) => resolve(e.message));
  });
  return { child, exited };
}

async function stopCluster(c: Cluster): Promise<void> {
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGTERM');
  const timer = setTimeout(() => killGroup(c.child, 'SIGKILL'), CLUSTER_STOP_TIMEOUT_MS);
  await c.exited;
  clearTimeout(timer);
}

/** Signals `up` and every replica it started (they share its process group). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

async function waitReady(config: ClusterConfig, logPath: string, exited: Promise<string>): Promise<{ ms: number; up: number }> {
  const started = Date.now();
  const key = loadPrivateKey(clientKeyPath(config.dir, 'admin'));
  const quorum = config.replicas.length - config.f;
  let ended: string | undefined;
  void exited.then((how) => (ended = how));
  let up = 0;
  while (Date.now() - started < READY_TIMEOUT_MS) {
    up = (await queryStatus(config, 'admin', key, READY_POLL_MS * 2)).filter((r) => r.reachable).length;
    if (up >= quorum) return { ms: Date.now() - started, up };
    if (ended) throw clusterError(`the replicas exited (${ended}) before a quorum answered`, logPath);
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
  throw clusterError(`only ${up} of ${config.replicas.length} replicas answered within ${READY_TIMEOUT_MS / 1000} s, a quorum needs ${quorum}`, logPath);
}

function clusterError(what: string, logPath: string): FitError {
  let lines: string[] = [];
  try {
    lines = readFileSync(logPath, 'utf8').trim().split('\n');
  } catch {
    // no log yet
  }
  // The line that says why beats the last one, which is often `up` noting an exit.
  const telling = lines.findLast((l) => /^fitbroker: |"level":[56]0/.test(l)) ?? lines.at(-1) ?? '';
  return new FitError('FIT_ERR_QUORUM_TIMEOUT', `${what}; see ${logPath} for what they said${telling ? ` (e.g. ${telling.slice(0, 300)})` : ''}`, { log: logPath });
}

/** Resolves with p's value, or undefined if a stop was requested first. */
function raceStop<T>(p: Promise<T>, stopped: Promise<Stop>): Promise<T | undefined> {
  return Promise.race([p, stopped.then(() => undefined)]);
}

function withTimeout<T>(p: Promise<T>, ms: number, err: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(err()), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Waits, briefly, for what was published to be acknowledged and then delivered. */
async function settle(pub: Publisher, delivered: Record<string, number>): Promise<void> {
  try {
    await pub.flush(FLUSH_TIMEOUT_MS);
  } catch (e) {
    say(`note: ${(e as Error).message}`);
  }
  const deadline = Date.now() + DELIVERY_GRACE_MS;
  const total = (): number => Object.values(delivered).reduce((a, b) => a + b, 0);
  while (total() < pub.counters.acknowledged && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

// ---- what the console prints ----------------------------------------------------------------

export function formatEvent(ev: BrokerEvent, nowMs = Date.now()): string {
  const t = new Date(ev.timestampMs);
  const time = `${t.toTimeString().slice(0, 8)}.${String(t.getMilliseconds()).padStart(3, '0')}`;
  const mark = ev.priority === 3 ? 'URGENT' : ev.priority > 0 ? `p${ev.priority}` : '';
  const from = ev.publisher === 'probe' ? '' : ` [from ${ev.publisher}]`;
  const channel = ev.seq === undefined ? ev.channel : `${ev.channel} #${ev.seq}`;
  return `${time} ${channel.padEnd(11)} ${mark.padEnd(6)} ${summarizeContent(eventToJson(ev).content)}${from}  (+${nowMs - ev.timestampMs} ms)`;
}

/** One line for an event's content: the host probe's types in words, anything else as JSON. */
export function summarizeContent(content: unknown): string {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return clip(typeof content === 'string' ? content : JSON.stringify(content));
  const c = content as Record<string, unknown>;
  if (c.set === 'syscalls') return clip(`${'syscall'.padEnd(13)} pid ${c.pid}${typeof c.comm === 'string' ? ` ${c.comm}:` : ''} ${c.syscall}(${(c.args as string[]).join(', ')}) = ${c.result ?? '?'}`);
  if (c.type === 'monitor.perf') {
    const now = c.now as { slowdown: number | null; traps: { count: number } };
    const p = c.prediction as { slowdown: number | null } | null;
    const x = (v: number | null | undefined): string => (v == null ? '?' : `${v.toFixed(3)}×`);
    return `${'cost'.padEnd(13)} slowdown now ${x(now.slowdown)} (${now.traps.count} stops in the last second), model says ${x(p?.slowdown)}`;
  }
  const mib = (kb: unknown): number => Math.round(Number(kb) / 1024);
  const type = `${String(c.type ?? 'event').padEnd(13)} `;
  switch (c.type) {
    case 'host.metrics':
      return (
        type +
        [
          c.loadavg !== undefined && `load ${c.loadavg} on ${c.cpus} cpus`,
          c.memTotalKb !== undefined && `mem ${mib(c.memAvailableKb)} of ${mib(c.memTotalKb)} MiB available (${Math.round((Number(c.memAvailableKb) / Number(c.memTotalKb)) * 100)}%)`,
          c.processes !== undefined && `${c.processes} processes`,
          c.uptimeS !== undefined && `up ${hms(Number(c.uptimeS))}`,
        ]
          .filter(Boolean)
          .join(' · ')
      );
    case 'process.start':
      return clip(`${type}pid ${c.pid} (parent ${c.ppid}, uid ${c.uid}) ${c.comm}: ${c.cmdline || `[${c.comm}]`}`);
    case 'process.start.burst':
      return `${type}${c.unreported} more processes started within ${c.inMs} ms, not listed one by one`;
    case 'auth.failure':
      return clip(`${type}${c.line}`);
    case 'load.high':
    case 'load.normal':
      return `${type}1-minute load ${Number(c.load1).toFixed(2)} ${c.type === 'load.high' ? 'is over' : 'is back within'} the ${c.cpus} cpus`;
    case 'memory.low':
    case 'memory.normal':
      return `${type}${mib(c.memAvailableKb)} of ${mib(c.memTotalKb)} MiB available`;
    case 'probe.source.skipped':
      return clip(`${type}${c.source}: ${c.reason}`);
    default: {
      const { type: _t, host: _h, ...rest } = c;
      return clip(`${type}${JSON.stringify(rest)}`);
    }
  }
}

function clip(s: string, charsMax = 160): string {
  return s.length > charsMax ? `${s.slice(0, charsMax - 1)}…` : s;
}

function hms(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

function summary(
  why: string,
  { published, droppedWhileFull }: { published: number; droppedWhileFull: number },
  acknowledged: number,
  delivered: Record<string, number>,
  subs: SubscriberSummary[],
  logPath: string,
  monitored: { syscalls: number; perf: number },
): string {
  const total = Object.values(delivered).reduce((a, b) => a + b, 0);
  const mismatches = new Map<string, number>();
  for (const s of subs) for (const [r, m] of Object.entries(s.mismatches)) if (m > 0) mismatches.set(r, (mismatches.get(r) ?? 0) + m);
  const expired = subs.reduce((n, s) => n + s.expired, 0);
  const undecided = subs.reduce((n, s) => n + s.undecided, 0);
  return [
    '',
    `summary (${why}):`,
    `  published  ${published} events as probe, ${acknowledged} acknowledged by ${publishQuorum('bft', FAULTS)} of ${REPLICAS} replicas${droppedWhileFull ? `; ${droppedWhileFull} dropped while the publish window was full` : ''}`,
    `  delivered  ${Object.entries(delivered).map(([c, n]) => `${c} ${n}`).join(', ')} (total ${total}) to console${expired || undecided ? `; ${expired} expired, ${undecided} undecided in the voter` : ''}`,
    `  replicas   ${mismatches.size ? `mismatching copies: ${[...mismatches].map(([r, m]) => `replica ${r}: ${m}`).join(', ')}` : 'no mismatching copies: every replica agreed'}`,
    `  monitor    ${monitored.syscalls} traced syscalls and ${monitored.perf} cost reports from the agent delivered to console (agent log: ${join(relative(process.cwd(), logPath), '..', 'agent.log')})`,
    `  log        ${logPath}`,
  ].join('\n');
}
