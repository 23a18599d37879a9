// One benchmark run: start a system, fork its workers, drive an unmeasured warm-up, a
// saturation phase and a fixed-load phase, and collect what the contract in
// docs/performance.md promises.
//
// The warm-up is a saturation phase of its own in the same processes, kept in the results as
// `warmup` but not as the run's figures. A fresh process pays once for compiling its hot code
// and for every page of memory it grows into; on the VMs we measure on a fresh page costs
// ~3.5 ms of system time per MiB (the hypervisor takes freed memory back, so the next touch
// faults in it too: docs/performance.md, "Session 23"), and a fresh bft cluster spent a quarter
// more CPU per event, or up to twice as much, on its first 400,000-500,000 events as on the
// next as many. The steady state of a broker that runs for months is what the figures
// are about, and every system gets the same warm-up, as broker benchmarks do (the OpenMessaging
// Benchmark's warm-up period).
//
// The fixed-load phase has a warm-up of its own, of the same offered load: saturation runs
// few, large frames, and code that runs once per frame (socket writes, ACKs, timers) reaches
// the optimizing compiler only after seconds of a paced load, when it does a thousand times a
// second. Without it the measured phase ran partly interpreted and shared the two cores with
// TurboFan compiling it (docs/performance.md, "Session 30").

import { latencyMs, mergeHistograms, type LatencyMs } from './stamp.js';
import { cpuSeconds, minorFaults, peakRssMb } from './rss.js';
import { kernelThreadsCpuSec } from './kernel.js';
import { Worker } from './workers.js';
import type { RunShape, ServerHandle, ServerSide } from './systems/types.js';

export interface PhaseResult {
  /** Events the publishers sent (and, for acknowledged systems, had acknowledged). */
  published: number;
  /** Events/s from the first publish to the last flush, all publishers together. */
  publishRate: number;
  /** Events/s each subscriber delivered, from the first publish to its last delivery. */
  deliverRates: number[];
  delivered: number[];
  latencyMs: LatencyMs;
  /** CPU seconds each process used during the phase: which one saturates. */
  cpuSec: { servers: number[]; publishers: number[]; subscribers: number[] };
  /**
   * CPU seconds the kernel's own threads (kdamond, kswapd, kworkers) used during the phase, on
   * the same cores (threads that exited during it are not counted); absent before session 31.
   */
  kernelThreadsCpuSec?: number;
  /** Minor page faults each process took during the phase: memory it grew into (absent in results before session 22). */
  minorFaults?: { servers: number[]; publishers: number[]; subscribers: number[] };
  /**
   * Copies each replica dropped during the phase by its own count (an event dropped for two
   * subscribers is two), null for one that did not answer; fitbroker only, from session 23 on.
   */
  replicaDrops?: (number | null)[];
  wallSec: number;
}

export interface RunResult extends PhaseResult {
  system: string;
  mode: string;
  /** fitbroker: the channels' quality of protection and where they keep their events. */
  protection?: string;
  persist?: string;
  label: string;
  channels: number;
  size: number;
  publishers: number;
  subscribers: number;
  /** Events of the warm-up run before the saturation phase in the same processes; 0: none, a cold start. */
  warmupEvents: number;
  /** The unmeasured warm-up before the saturation phase: the same figures, for a cold start. */
  warmup?: PhaseResult;
  /**
   * Fixed offered load (events/s, all publishers together), measured separately; `warmupMs` of
   * the same load ran unmeasured before it (`warmup`), absent in results before session 30.
   */
  fixedLoad?: PhaseResult & { offeredRate: number; warmupMs?: number; warmup?: PhaseResult };
  /** Systems with a leader: a paced phase during which the leader is killed (SIGKILL). */
  leaderCrash?: { offeredRate: number; killedReplica: number; killedAfterMs: number; longestGapMs: number[]; delivered: number[]; published: number; replicaDrops?: (number | null)[] };
  /** The largest peak RSS among the system's server processes (each replica, or the server). */
  peakRssMb: number;
  serverRssMb: number[];
}

export interface RunPlan {
  server: ServerSide;
  shape: RunShape;
  /** Events for the saturation phase (all publishers together). */
  events: number;
  /** Events of the warm-up before it (all publishers together); 0 measures a cold start. */
  warmupEvents: number;
  /** Offered load for the fixed-load phase; 0 skips it. */
  fixedRate: number;
  fixedMs: number;
  /** Milliseconds of the fixed load run unmeasured before the measured ones (see the top); 0: none. */
  fixedWarmupMs: number;
  /** Offered load of the leader-crash phase (systems that have a leader); 0 skips it. */
  crashRate?: number;
  onPhase?(what: string): void;
}

/** How long subscribers may make no progress before what they got is taken as final. */
const IDLE_MS = 3000;
const POLL_MS = 100;

export async function runOnce(plan: RunPlan): Promise<RunResult> {
  const { server, shape } = plan;
  plan.onPhase?.('starting');
  const handle = await server.start(shape);
  const workers: Worker[] = [];
  try {
    const init = (kind: 'publisher' | 'subscriber', index: number): Promise<unknown> => {
      const w = new Worker(`${server.label} ${kind} ${index}`);
      workers.push(w);
      (kind === 'publisher' ? pubs : subs).push(w);
      return w.ask({ type: 'init', endpoint: handle.endpoint, kind, index, channels: shape.channels, size: shape.size }, 'ready', 60_000);
    };
    const pubs: Worker[] = [];
    const subs: Worker[] = [];
    await Promise.all(Array.from({ length: shape.subscribers }, (_, i) => init('subscriber', i)));
    await Promise.all(Array.from({ length: shape.publishers }, (_, i) => init('publisher', i)));

    const pids = { servers: handle.pids(), publishers: pubs.map((w) => w.pid), subscribers: subs.map((w) => w.pid) };
    let warmup: PhaseResult | undefined;
    if (plan.warmupEvents > 0) {
      plan.onPhase?.('warm-up');
      warmup = await phase(handle, pubs, subs, pids, { events: Math.ceil(plan.warmupEvents / shape.publishers) });
    }
    plan.onPhase?.('saturation');
    const saturated = await phase(handle, pubs, subs, pids, { events: Math.ceil(plan.events / shape.publishers) });
    let fixedLoad: RunResult['fixedLoad'];
    if (plan.fixedRate > 0) {
      const rate = plan.fixedRate / shape.publishers;
      let fixedWarmup: PhaseResult | undefined;
      if (plan.fixedWarmupMs > 0) {
        plan.onPhase?.('fixed-load warm-up');
        fixedWarmup = await phase(handle, pubs, subs, pids, { rate, durationMs: plan.fixedWarmupMs });
      }
      plan.onPhase?.('fixed load');
      const r = await phase(handle, pubs, subs, pids, { rate, durationMs: plan.fixedMs });
      fixedLoad = { offeredRate: plan.fixedRate, ...r, ...(fixedWarmup ? { warmupMs: plan.fixedWarmupMs, warmup: fixedWarmup } : {}) };
    }
    let leaderCrash: RunResult['leaderCrash'];
    if (handle.killLeader && (plan.crashRate ?? 0) > 0) {
      plan.onPhase?.('leader crash');
      // The leader is killed a quarter into a paced phase: the longest pause between two
      // deliveries at each subscriber is what the leader change cost it.
      const durationMs = Math.max(8000, plan.fixedMs);
      const killedAfterMs = Math.round(durationMs / 4);
      let killedReplica = -1;
      let kill: NodeJS.Timeout | undefined;
      // Armed when the publishers start, not before the phase's handshakes (which take from a
      // few ms to the 3 s a replica that does not answer its status query costs).
      const armKill = (): void => void (kill = setTimeout(() => void handle.killLeader!().then((id) => (killedReplica = id)), killedAfterMs));
      const r = await phase(handle, pubs, subs, pids, { rate: plan.crashRate! / shape.publishers, durationMs }, handle.pids, armKill);
      clearTimeout(kill);
      leaderCrash = {
        offeredRate: plan.crashRate!,
        killedReplica,
        killedAfterMs,
        longestGapMs: r.longestGapMs,
        delivered: r.delivered,
        published: r.published,
        ...(r.replicaDrops ? { replicaDrops: r.replicaDrops } : {}),
      };
    }
    const serverRssMb = handle.pids().map((p) => peakRssMb(p) ?? 0);
    return {
      system: server.system,
      mode: server.mode,
      ...(server.protection ? { protection: server.protection } : {}),
      ...(server.persist ? { persist: server.persist } : {}),
      label: server.label,
      channels: shape.channels.length,
      size: shape.size,
      publishers: shape.publishers,
      subscribers: shape.subscribers,
      ...saturated,
      warmupEvents: warmup?.published ?? 0,
      ...(warmup ? { warmup } : {}),
      ...(fixedLoad ? { fixedLoad } : {}),
      ...(leaderCrash ? { leaderCrash } : {}),
      peakRssMb: Math.max(0, ...serverRssMb),
      serverRssMb,
    };
  } finally {
    plan.onPhase?.('stopping');
    await Promise.all(workers.map((w) => w.stop()));
    await handle.stop();
  }
}

type Pids = PhaseResult['cpuSec'];

function costOf(pids: Pids, read: (pid: number) => number | undefined): Pids {
  const of = (list: number[]): number[] => list.map((p) => read(p) ?? 0);
  return { servers: of(pids.servers), publishers: of(pids.publishers), subscribers: of(pids.subscribers) };
}

async function phase(
  handle: ServerHandle,
  pubs: Worker[],
  subs: Worker[],
  pids: Pids,
  cmd: { events?: number; rate?: number; durationMs?: number },
  serverPids?: () => number[],
  /** Called as the publishers are told to start. */
  onStart?: () => void,
): Promise<PhaseResult & { longestGapMs: number[] }> {
  // A phase that kills a server measures the live ones: a dead process has no CPU to read.
  if (serverPids) pids = { ...pids, servers: serverPids() };
  for (const s of subs) s.send({ type: 'reset' });
  // The reset must be done before anything is published: a subscriber busy when it arrives
  // (a collection after the phase before, say) could otherwise read the new phase's first
  // events from its sockets, count them, and then zero the count: a 2 % shortfall in one cft
  // run was that, not a loss. IPC is in order, so the answer to `count` says it is done.
  await Promise.all(subs.map((s) => s.ask({ type: 'count' }, 'count', 60_000)));
  const dropsBefore = await handle.drops?.();
  const cpuBefore = costOf(pids, cpuSeconds);
  const faultsBefore = costOf(pids, minorFaults);
  const kernelBefore = kernelThreadsCpuSec();
  const wallBefore = performance.now();
  onStart?.();
  const done = await Promise.all(pubs.map((p) => p.ask({ type: 'publish', ...cmd }, 'published', 30 * 60_000)));
  const published = done.reduce((n, d) => n + d.events, 0);
  const startNs = done.reduce((m, d) => (BigInt(d.startNs) < m ? BigInt(d.startNs) : m), BigInt(done[0]!.startNs));
  const endNs = done.reduce((m, d) => (BigInt(d.endNs) > m ? BigInt(d.endNs) : m), 0n);
  const reports = await waitForSubscribers(subs, published);
  const cpuAfter = costOf(pids, cpuSeconds);
  const faultsAfter = costOf(pids, minorFaults);
  const kernelAfter = kernelThreadsCpuSec();
  // Before the status queries below: a replica that does not answer costs them 3 s.
  const wallSec = Math.round(performance.now() - wallBefore) / 1000;
  const dropsAfter = await handle.drops?.();
  const delta = (k: keyof Pids): number[] => cpuAfter[k].map((c, i) => Math.max(0, Math.round((c - cpuBefore[k][i]!) * 100) / 100));
  const faults = (k: keyof Pids): number[] => faultsAfter[k].map((c, i) => Math.max(0, c - faultsBefore[k][i]!));
  const seconds = (ns: bigint): number => Number(ns) / 1e9;
  return {
    published,
    publishRate: Math.round(published / seconds(endNs - startNs)),
    deliverRates: reports.map((r) => (r.received === 0 ? 0 : Math.round(r.received / seconds(BigInt(r.lastNs) - startNs)))),
    delivered: reports.map((r) => r.received),
    latencyMs: latencyMs(mergeHistograms(reports.map((r) => r.histogram))),
    cpuSec: { servers: delta('servers'), publishers: delta('publishers'), subscribers: delta('subscribers') },
    kernelThreadsCpuSec: Math.max(0, Math.round((kernelAfter - kernelBefore) * 100) / 100),
    minorFaults: { servers: faults('servers'), publishers: faults('publishers'), subscribers: faults('subscribers') },
    ...(dropsBefore && dropsAfter ? { replicaDrops: dropsAfter.map((d, i) => (d === null || dropsBefore[i] == null ? null : d - dropsBefore[i]!)) } : {}),
    wallSec,
    longestGapMs: reports.map((r) => r.longestGapMs),
  };
}

async function waitForSubscribers(subs: Worker[], expected: number) {
  let last = -1;
  let lastChange = Date.now();
  const reports = () => Promise.all(subs.map((s) => s.ask({ type: 'report' }, 'report', 60_000)));
  for (;;) {
    const counts = await Promise.all(subs.map((s) => s.ask({ type: 'count' }, 'count', 60_000)));
    const total = counts.reduce((n, r) => n + r.received, 0);
    if (counts.every((r) => r.received >= expected)) return reports();
    if (total !== last) {
      last = total;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > IDLE_MS) return reports();
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
