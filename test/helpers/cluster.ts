// Starts a real cluster for integration tests: `fitbroker replica` child processes on
// loopback ports, each its own process as in production, with faults injected by flag.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parse as parseYaml, stringify } from 'yaml';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientKeyPath, initCluster, loadConfig, makeClusterTls, METRICS_PORT_OFFSET, type ClientRole, type ClusterConfig } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { Publisher, Subscriber, type PublisherOptions, type SubscriberOptions } from '../../src/client/index.js';
import type { ChannelClass, FaultModel, Limits, Persist, Protection } from '../../src/core/index.js';
import { withHeapFloor, withHugePages } from '../../src/core/index.js';

export const CLI = new URL('../../src/cli/main.js', import.meta.url).pathname;

export interface ClusterOptions {
  replicas?: number;
  f?: number;
  channels?: string[];
  faultModel?: FaultModel;
  clients?: { name: string; role: ClientRole }[];
  faults?: Record<number, string[]>;
  /** Overrides every channel's capacityEvents in cluster.yaml. */
  capacityEvents?: number;
  /** Settings of single channels written into cluster.yaml (after capacityEvents). */
  channelSettings?: Record<string, Partial<Pick<ChannelClass, 'capacityEvents' | 'ttlMs' | 'overflow'>>>;
  /** Written into cluster.yaml's limits: section. */
  limits?: Partial<Limits>;
  /** False leaves out init's probe, console and admin clients (a console never connected has a queue that fills). */
  defaultClients?: boolean;
  /** Extra node flags for the replica processes (e.g. --cpu-prof for a profile). */
  replicaNodeArgs?: string[];
  /** Channels with order: channel (init --ordered), and with order: global (--ordered-global). */
  ordered?: string[];
  orderedGlobal?: string[];
  /** Every channel's quality of protection (init --protection; default pks). */
  protection?: Protection;
  /** TLS on every connection, as `init --tls` sets it up (a CA and a certificate per node). */
  tls?: boolean;
  /** Where every channel keeps its events (init --persist; default memory). */
  persist?: Persist;
  /** The monitoring agent's channels and clients, as `fitbroker init` adds them by default. */
  monitoring?: boolean;
}

export interface TestCluster {
  dir: string;
  config: ClusterConfig;
  procs: (ChildProcess | undefined)[];
  start(id: number): Promise<void>;
  kill(id: number, signal?: NodeJS.Signals): Promise<void>;
  alive(id: number): boolean;
  publisher(client: string, o?: PublisherOptions): Publisher;
  /**
   * A publisher linked to every running replica. For a test that counts what one replica holds:
   * a replica reached only after the others acknowledged a batch never gets that batch from the
   * publisher (src/client/feeds.ts), and on a loaded machine the first links can be slow.
   */
  linkedPublisher(client: string, o?: PublisherOptions): Promise<Publisher>;
  subscriber(client: string, o: SubscriberOptions): Subscriber;
  log(id: number): string;
  stop(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A base port such that `count` replica ports from it are free, and so are their metrics ports
 * (init's default: each replica port + METRICS_PORT_OFFSET).
 */
export async function freeBasePort(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below Linux's ephemeral range (32768-60999), metrics ports included: replicas now connect
    // to each other, and the kernel may give one of those connections, as its local port, a
    // port this cluster's next replica is about to listen on.
    const base = 20000 + Math.floor(Math.random() * (32768 - 20000 - METRICS_PORT_OFFSET - 64));
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = (await portFree(base + i)) && (await portFree(base + METRICS_PORT_OFFSET + i));
    if (ok) return base;
  }
  throw new Error('no free port range found');
}

/** True when something accepts a TCP connection on the loopback port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitListening(port: number, proc: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`replica on port ${port} exited with ${proc.exitCode} before listening`);
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`replica on port ${port} did not listen within ${timeoutMs} ms`);
}

export async function startCluster(o: ClusterOptions = {}): Promise<TestCluster> {
  const replicas = o.replicas ?? 4;
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-test-'));
  const basePort = await freeBasePort(replicas);
  initCluster({
    dir,
    replicas,
    faults: o.f ?? 1,
    channels: o.channels ?? ['alerts'],
    basePort,
    host: '127.0.0.1',
    faultModel: o.faultModel ?? 'bft',
    clients: o.clients ?? [],
    force: false,
    defaultClients: o.defaultClients ?? true,
    ordered: o.ordered ?? [],
    orderedGlobal: o.orderedGlobal ?? [],
    ...(o.protection ? { protection: o.protection } : {}),
    ...(o.persist ? { persist: o.persist } : {}),
    tls: o.tls ?? false,
    monitoring: o.monitoring ?? false,
  });
  if (o.tls) await makeClusterTls(loadConfig(dir));
  if (o.capacityEvents !== undefined || o.limits !== undefined || o.channelSettings !== undefined) {
    const file = join(dir, 'cluster.yaml');
    const doc = parseYaml(readFileSync(file, 'utf8')) as { channels: Record<string, { capacityEvents: number }>; limits?: Partial<Limits> };
    if (o.capacityEvents !== undefined) for (const ch of Object.values(doc.channels)) ch.capacityEvents = o.capacityEvents;
    for (const [tag, settings] of Object.entries(o.channelSettings ?? {})) Object.assign(doc.channels[tag]!, settings);
    if (o.limits !== undefined) doc.limits = { ...doc.limits, ...o.limits };
    writeFileSync(file, stringify(doc));
  }
  const config = loadConfig(dir);
  const procs: (ChildProcess | undefined)[] = new Array(replicas).fill(undefined);
  const clients: { close(): unknown }[] = [];
  const start = async (id: number): Promise<void> => {
    const out = openSync(join(dir, `replica-${id}.log`), 'a');
    const args = [...withHeapFloor(o.replicaNodeArgs), CLI, 'replica', '--dir', dir, '--id', String(id), ...(o.faults?.[id] ?? []).flatMap((k) => ['--fault', k])];
    const p = spawn(process.execPath, args, { stdio: ['ignore', out, out], env: { ...withHugePages(), FITBROKER_ALLOW_FAULTS: '1' } });
    procs[id] = p;
    if (!(o.faults?.[id] ?? []).some((k) => k.startsWith('crash'))) await waitListening(basePort + id, p);
  };
  try {
    await Promise.all(config.replicas.map((r) => start(r.id)));
  } catch (e) {
    // Kill what did start, or its handles keep the test process alive forever.
    for (const p of procs) p?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const cluster: TestCluster = {
    dir,
    config,
    procs,
    start,
    alive: (id) => procs[id] !== undefined && procs[id]!.exitCode === null && procs[id]!.signalCode === null,
    async kill(id, signal = 'SIGKILL') {
      const p = procs[id];
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill(signal);
      await exited;
    },
    publisher(client, po) {
      const p = new Publisher(config, client, loadPrivateKey(clientKeyPath(dir, client)), po).connect();
      clients.push(p);
      return p;
    },
    async linkedPublisher(client, po) {
      const p = cluster.publisher(client, po);
      const running = procs.filter((_, id) => cluster.alive(id)).length;
      for (const until = Date.now() + 15_000; p.readyReplicas < running; await sleep(20)) {
        if (Date.now() > until) throw new Error(`publisher ${client} reached ${p.readyReplicas} of the ${running} running replicas in 15 s`);
      }
      return p;
    },
    subscriber(client, so) {
      const s = new Subscriber(config, client, loadPrivateKey(clientKeyPath(dir, client)), so);
      clients.push(s);
      return s;
    },
    log: (id) => readFileSync(join(dir, `replica-${id}.log`), 'utf8'),
    async stop() {
      await Promise.all(clients.map((c) => Promise.resolve(c.close()).catch(() => undefined)));
      await Promise.all(procs.map((_, id) => cluster.kill(id, 'SIGKILL')));
      if (process.env.FIT_TEST_KEEP) process.stderr.write(`kept test cluster dir ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}

/** Runs the CLI to completion; returns exit code, stdout and stderr. */
export function runCli(args: string[], input?: string, env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI in the background; resolves with its result when it exits. */
export function runCliAsync(args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input ?? '');
  });
}

/**
 * Publishes one event every `everyMs` until stopped or until the publisher throws (a refusal
 * the replicas agreed on): a stream to change rights in the middle of.
 */
export function publishStream(pub: Publisher, channel: string, everyMs: number): { sent(): number; refused(): unknown; stop(): void } {
  let sent = 0;
  let refused: unknown;
  // publish() queues the event even when it returns false (the window is full): a producer
  // then waits for drained(), as a real one does. Counting only the true returns, as this did,
  // missed every event queued past a full window and sent them with repeated contents.
  let waiting = false;
  const timer = setInterval(() => {
    if (refused !== undefined || waiting) return;
    try {
      const room = pub.publish(channel, `${channel}-${sent}`);
      sent++;
      if (!room) {
        waiting = true;
        pub.drained().then(
          () => (waiting = false),
          (e: unknown) => (refused ??= e),
        );
      }
    } catch (e) {
      refused = e;
    }
  }, everyMs);
  return { sent: () => sent, refused: () => refused, stop: () => clearInterval(timer) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
