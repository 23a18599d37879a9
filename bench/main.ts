// `npm run bench`: the throughput-against-channels figure (paper figure 3) for our modes,
// with peer brokers run on the same machine in the same run, so every claim is a ratio.
// See docs/performance.md for what each figure means and the results so far.

import { Command, Option } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Progress } from './progress.js';
import { runOnce, type RunResult } from './run.js';
import { machine } from './machine.js';
import { damonInfo, pauseDamon } from './kernel.js';
import { peerServers, PEER_NAMES } from './systems/servers.js';
import { fitbrokerServer, type ChannelSettings, type FitMode } from './systems/fitbroker.js';
import { printTable, writeFirstEventReport, writeReport, writeUrgentReport, type RunFailure } from './report.js';
import { runUrgent, urgentSummary, type UrgentResult } from './urgent.js';
import { firstEventSummary, runFirstEvent, type FirstEventResult } from './first-event.js';
import type { ServerSide } from './systems/types.js';
import { FAULT_KINDS, parseFault } from '../src/replica/index.js';
import { DEFAULT_LIMITS, OVERFLOW_POLICIES, type OverflowPolicy, type Persist, type Protection } from '../src/core/index.js';

const FULL_CHANNELS = [5, 10, 25, 50, 70, 90];

interface Flags {
  quick: boolean;
  mode?: string;
  channels?: string;
  events?: number;
  warmup?: number;
  size: number;
  publishers: number;
  subscribers: number;
  rate: number;
  orderedRate: number;
  fixedMs?: number;
  fixedWarmupMs?: number;
  peers: string;
  out?: string;
  save: boolean;
  chart: boolean;
  fault: string[];
  limit: string[];
  channelSetting: string[];
  crashRate: number;
  protection: string;
  persist: string;
  tls: boolean;
  urgent: boolean;
  urgentBacklog: number;
  urgentRounds: number;
  urgentCredits: string;
  firstEvent: boolean;
  firstEventBacklog: number;
  firstEventRounds: number;
  firstEventProtection: string;
  pauseDamon: boolean;
}

/** --channel-setting KEY=VALUE, checked: a typo must not measure the defaults under another name. */
function parseChannelSettings(specs: string[], fail: (message: string) => never): ChannelSettings {
  const out: ChannelSettings = {};
  for (const spec of specs) {
    const [key = '', value = ''] = spec.split('=');
    if (key === 'overflow') {
      if (!(OVERFLOW_POLICIES as readonly string[]).includes(value)) fail(`"${spec}": overflow is one of ${OVERFLOW_POLICIES.join(', ')}`);
      out.overflow = value as OverflowPolicy;
    } else if (key === 'capacityEvents' || key === 'ttlMs') {
      if (!/^[1-9]\d*$/.test(value)) fail(`"${spec}": ${key} is a positive whole number`);
      out[key] = Number(value);
    } else fail(`"${spec}" is not KEY=VALUE with KEY one of capacityEvents, ttlMs, overflow`);
  }
  return out;
}

function list(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

function wholeNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new Error(`${name} must be a whole number of events (0 or more), got "${v}"`);
    return n;
  };
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

async function main(): Promise<void> {
  const program = new Command('bench')
    .description('fitbroker throughput and latency against channels, beside NATS, NATS JetStream, Mosquitto and Redis on the same machine')
    .option('--quick', 'one channel count (50), bft, fewer events (and as many of warm-up): under two minutes', false)
    .option('--mode <modes>', 'fitbroker modes, comma-separated: cft, bft, bft-ordered, or "none" for peers only (default cft,bft,bft-ordered; with --quick, bft)')
    .option('--channels <counts>', `channel counts, comma-separated (default ${FULL_CHANNELS.join(',')}; with --quick, 50)`)
    .option('--events <n>', 'events per saturation run, all publishers together (default 500000; with --quick, 200000)', positiveInt('--events'))
    .option('--warmup <events>', 'events of an unmeasured saturation phase before each run\'s saturation phase, in the same processes, every system alike (default: as many as --events; 0 measures a cold start)', wholeNumber('--warmup'))
    .option('--size <bytes>', 'payload bytes per event', positiveInt('--size'), 200)
    .option('--publishers <n>', 'publisher processes', positiveInt('--publishers'), 2)
    .option('--subscribers <n>', 'subscriber processes (SIEMs), each subscribed to every channel', positiveInt('--subscribers'), 2)
    .option('--rate <events/s>', 'offered load of the fixed-load phase, all publishers together (0 skips it)', (v) => Number(v), 30_000)
    .option(
      '--ordered-rate <events/s>',
      'offered load of the fixed-load phase of bft-ordered (0 skips it): below what the order sustains, or the latency measured is the queue ahead of the order',
      (v) => Number(v),
      2_000,
    )
    .option('--fixed-ms <ms>', 'duration of the fixed-load phase (default 5000; with --quick, 2000)', positiveInt('--fixed-ms'))
    .option('--fixed-warmup-ms <ms>', 'unmeasured fixed load run just before the fixed-load phase, in the same processes, every system alike (default 5000; with --quick, 1000; 0: none)', wholeNumber('--fixed-warmup-ms'))
    .addOption(new Option('--peers <names>', `peer systems, comma-separated, or "none" (${PEER_NAMES.join(', ')})`).default('all'))
    .option('--out <file>', 'also write the results JSON to this file')
    .option('--no-save', 'do not write bench/results/ and docs/performance-chart.svg')
    .option('--no-chart', 'do not write the chart')
    .option('--crash-rate <events/s>', 'offered load of the leader-crash phase of bft-ordered (the leader is killed a quarter in; 0 skips it)', (v) => Number(v), 1000)
    .option('--protection <levels>', 'quality of protection of the fitbroker channels, comma-separated (a run per level): si, ha, pks, pke', 'si')
    .option('--persist <where>', 'where the fitbroker channels keep their events, comma-separated (a run per value): memory, disk (acknowledged once on disk: group commit)', 'memory')
    .option('--tls', 'fitbroker runs with TLS on every client and replica connection (init --tls): what TLS costs, beside a run without', false)
    .option('--urgent', 'also measure urgent latency behind a backlog: a subscriber frozen while --urgent-backlog events queue up, then urgent events published as it resumes (alone: --urgent --mode none --peers none)', false)
    .option('--urgent-backlog <n>', 'events queued ahead of the urgent ones', positiveInt('--urgent-backlog'), 100_000)
    .option('--urgent-rounds <n>', 'rounds of the urgent part, 4 urgent events each', positiveInt('--urgent-rounds'), 5)
    .option('--urgent-credits <list>', 'the urgent part once per subscriber credit window (limits.subscribeCreditsEvents), comma-separated', `${DEFAULT_LIMITS.subscribeCreditsEvents},1024`)
    .option('--first-event', 'also measure how long a console that was away waits for its first event: --first-event-backlog events queued, then a new subscriber process connects (alone: --first-event --mode none --peers none)', false)
    .option('--first-event-backlog <n>', 'events queued before the console connects', positiveInt('--first-event-backlog'), 50_000)
    .option('--first-event-rounds <n>', 'rounds of the first-event part, a new console each', positiveInt('--first-event-rounds'), 10)
    .option('--first-event-protection <level>', 'quality of protection of the first-event channel: si, ha, pks (what init makes by default), pke', 'pks')
    .option('--limit <KEY=VALUE>', 'a limit of the fitbroker clusters (repeatable; docs/limits.md), e.g. --limit pushLingerMs=5: what a setting costs or buys, beside a run without', (v: string, prev: string[]) => [...prev, v], [])
    .option(
      '--channel-setting <KEY=VALUE>',
      'a setting of every fitbroker channel (repeatable): capacityEvents=N, ttlMs=N, overflow=drop-oldest|drop-newest|block (cft and bft runs; ordered channels are always drop-oldest), e.g. --channel-setting overflow=block --channel-setting capacityEvents=256: publishers held by full queues, beside a run without',
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .option(
      '--pause-damon',
      "switch the kernel's data access monitor (kdamond) off for the run and on again after it (root): on our VMs it takes a vCPU for 15-30 ms every ~0.5 s, the paced p99's stalls (docs/performance.md); results say it was off",
      false,
    )
    .option('--fault <ID:KIND>', `fitbroker runs with replica ID faulty (repeatable; ${FAULT_KINDS.join(', ')}): throughput with a faulty replica, not only safety`, (v: string, prev: string[]) => [...prev, v], [])
    .parse();
  const o = program.opts<Flags>();
  const modes = o.mode === 'none' ? [] : list(o.mode ?? (o.quick ? 'bft' : 'cft,bft,bft-ordered'));
  for (const m of modes) if (m !== 'cft' && m !== 'bft' && m !== 'bft-ordered') program.error(`--mode: "${m}" is not a fitbroker mode; use cft, bft or bft-ordered`);
  const channelCounts = list(o.channels ?? (o.quick ? '50' : FULL_CHANNELS.join(','))).map(positiveInt('--channels'));
  const peerNames = o.peers === 'none' ? [] : o.peers === 'all' ? PEER_NAMES : list(o.peers);
  for (const p of peerNames) if (!PEER_NAMES.includes(p)) program.error(`--peers: "${p}" is not one of ${PEER_NAMES.join(', ')}, all, none`);
  const events = o.events ?? (o.quick ? 200_000 : 500_000);
  const warmupEvents = o.warmup ?? events;
  const fixedMs = o.fixedMs ?? (o.quick ? 2000 : 5000);
  const fixedWarmupMs = o.fixedWarmupMs ?? (o.quick ? 1000 : 5000);

  const faults: Record<number, string[]> = {};
  for (const spec of o.fault) {
    const at = spec.indexOf(':');
    const id = Number(spec.slice(0, at));
    if (at < 0 || !Number.isInteger(id) || id < 0 || id > 3) program.error(`--fault: "${spec}" is not ID:KIND with ID a replica 0-3`);
    try {
      parseFault(spec.slice(at + 1));
    } catch (e) {
      program.error(`--fault: ${(e as Error).message}`);
    }
    (faults[id] ??= []).push(spec.slice(at + 1));
  }
  const limits: Record<string, number> = {};
  for (const spec of o.limit) {
    const [key = '', value = ''] = spec.split('=');
    if (!(key in DEFAULT_LIMITS) || !/^\d+$/.test(value)) {
      program.error(`--limit: "${spec}" is not KEY=VALUE with KEY one of ${Object.keys(DEFAULT_LIMITS).join(', ')} and VALUE a whole number`);
    }
    limits[key] = Number(value);
  }
  const channelSettings = parseChannelSettings(o.channelSetting, (m) => program.error(`--channel-setting: ${m}`));
  const levels = list(o.protection);
  for (const l of levels) if (!['si', 'ha', 'pks', 'pke'].includes(l)) program.error(`--protection: "${l}" is not one of si, ha, pks, pke`);
  if (!['si', 'ha', 'pks', 'pke'].includes(o.firstEventProtection)) program.error(`--first-event-protection: "${o.firstEventProtection}" is not one of si, ha, pks, pke`);
  const stores = list(o.persist);
  for (const p of stores) if (p !== 'memory' && p !== 'disk') program.error(`--persist: "${p}" is not one of memory, disk`);
  const systems: ServerSide[] = [];
  for (const server of modes.flatMap((m) => levels.flatMap((l) => stores.map((p) => fitbrokerServer(m as FitMode, faults, l as Protection, o.tls, p as Persist, limits, channelSettings))))) {
    const why = await server.unavailable();
    if (why) process.stderr.write(`skipping ${server.label}: ${why}\n`);
    else systems.push(server);
  }
  for (const peer of peerServers(peerNames)) {
    const why = await peer.unavailable();
    if (why) process.stderr.write(`skipping ${peer.label}: ${why}\n`);
    else systems.push(peer);
  }
  const damonAsFound = damonInfo();
  let damonPaused = false;
  if (o.pauseDamon) {
    const paused = pauseDamon();
    if (typeof paused === 'string') process.stderr.write(`--pause-damon: not paused: ${paused}\n`);
    else damonPaused = true;
  }
  const plan = channelCounts.flatMap((c) => systems.map((server) => ({ server, channels: c })));
  const urgentCredits = o.urgent ? list(o.urgentCredits).map(positiveInt('--urgent-credits')) : [];
  const urgentSteps = urgentCredits.length * (2 * o.urgentRounds + 2);
  const fixedRate = (server: ServerSide): number => (server.mode === 'bft-ordered' ? o.orderedRate : o.rate);
  const steps = (p: (typeof plan)[number]): number => 3 + (warmupEvents > 0 ? 1 : 0) + (fixedRate(p.server) > 0 ? (fixedWarmupMs > 0 ? 2 : 1) : 0) + (p.server.mode === 'bft-ordered' && o.crashRate > 0 ? 1 : 0);
  const firstEventSteps = o.firstEvent ? 2 * o.firstEventRounds + 2 : 0;
  const progress = new Progress(plan.reduce((n, p) => n + steps(p), 0) + urgentSteps + firstEventSteps);
  const runs: RunResult[] = [];
  const failures: RunFailure[] = [];
  for (const p of plan) {
    const channels = Array.from({ length: p.channels }, (_, i) => `bench.${i}`);
    try {
      const r = await runOnce({
        server: p.server,
        shape: { channels, publishers: o.publishers, subscribers: o.subscribers, size: o.size },
        events,
        warmupEvents,
        fixedRate: fixedRate(p.server),
        fixedMs,
        fixedWarmupMs,
        crashRate: o.crashRate,
        onPhase: (what) => progress.step(`${p.server.label}, ${p.channels} channels: ${what}`),
      });
      runs.push(r);
      progress.log(summaryLine(r));
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      failures.push({ label: p.server.label, channels: p.channels, error });
      progress.log(`FAILED ${p.server.label}, ${p.channels} channels: ${error}`);
    }
  }
  const urgentResults: UrgentResult[] = [];
  for (const creditsEvents of urgentCredits) {
    try {
      const u = await runUrgent({ backlog: o.urgentBacklog, rounds: o.urgentRounds, perRound: 4, everyMs: 25, size: o.size, creditsEvents, onPhase: (what) => progress.step(`urgent behind ${o.urgentBacklog}, ${creditsEvents} credits: ${what}`) });
      urgentResults.push(u);
      progress.log(urgentSummary(u));
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      failures.push({ label: `urgent, ${creditsEvents} credits`, channels: 1, error });
      progress.log(`FAILED urgent, ${creditsEvents} credits: ${error}`);
    }
  }
  const urgent = urgentResults.length > 0 ? urgentResults : undefined;
  let firstEvent: FirstEventResult | undefined;
  if (o.firstEvent) {
    try {
      firstEvent = await runFirstEvent({
        backlog: o.firstEventBacklog,
        rounds: o.firstEventRounds,
        size: o.size,
        protection: o.firstEventProtection as Protection,
        onPhase: (what) => progress.step(`first event after ${o.firstEventBacklog} queued: ${what}`),
      });
      progress.log(firstEventSummary(firstEvent));
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      failures.push({ label: 'first event', channels: 1, error });
      progress.log(`FAILED first event: ${error}`);
    }
  }
  progress.stop();
  const damon = damonAsFound ? { ...damonAsFound, pausedForRun: damonPaused } : undefined;
  const doc = { machine: { ...machine(), ...(damon ? { damon } : {}) }, date: new Date().toISOString(), args: process.argv.slice(2), runs, ...(urgent ? { urgent } : {}), ...(firstEvent ? { firstEvent } : {}), ...(failures.length ? { failures } : {}) };
  if (runs.length > 0 || plan.length > 0) printTable(runs);
  for (const u of urgentResults) process.stdout.write(`\n${urgentSummary(u)}\n`);
  if (firstEvent) process.stdout.write(`\n${firstEventSummary(firstEvent)}\n`);
  if (o.save) {
    const dir = new URL('../../bench/results/', import.meta.url).pathname;
    mkdirSync(dir, { recursive: true });
    const suffix = `${o.quick ? '-quick' : ''}${plan.length === 0 && urgent ? '-urgent' : ''}${plan.length === 0 && firstEvent ? '-first-event' : ''}`;
    const file = join(dir, `${doc.date.slice(0, 19).replace(/[:T]/g, '-')}-${doc.machine.commit.slice(0, 8)}${suffix}.json`);
    writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
    process.stdout.write(`results: ${file}\n`);
    // A run of the urgent part alone leaves the throughput table and charts as they were.
    if (o.chart && runs.length > 0) process.stdout.write(`chart: ${writeReport(doc)}\n`);
    if (urgent && writeUrgentReport(doc)) process.stdout.write('urgent table: docs/performance.md\n');
    if (firstEvent && writeFirstEventReport(doc)) process.stdout.write('first-event table: docs/performance.md\n');
  }
  if (o.out) writeFileSync(o.out, `${JSON.stringify(doc, null, 2)}\n`);
  if (runs.length < plan.length || urgentResults.length < urgentCredits.length || (o.firstEvent && !firstEvent)) process.exitCode = 1;
}

function summaryLine(r: RunResult): string {
  const k = (n: number): string => `${(n / 1000).toFixed(1)}k`;
  return (
    `${r.label}, ${r.channels} ch: publish ${k(r.publishRate)}/s, deliver ${r.deliverRates.map(k).join(' / ')}/s ` +
    `(${r.delivered.map((d) => `${((100 * d) / r.published).toFixed(1)}%`).join(' / ')}), p99 ${r.latencyMs.p99} ms` +
    (r.fixedLoad ? `; at ${k(r.fixedLoad.offeredRate)}/s p50 ${r.fixedLoad.latencyMs.p50} p99 ${r.fixedLoad.latencyMs.p99} p99.9 ${r.fixedLoad.latencyMs.p999} ms${kernelNote(r.fixedLoad, ', kernel threads cpu s ')}` : '') +
    (r.leaderCrash
      ? `; leader ${r.leaderCrash.killedReplica} killed at ${k(r.leaderCrash.offeredRate)}/s: longest pause ${r.leaderCrash.longestGapMs.join(' / ')} ms, delivered ${r.leaderCrash.delivered.map((d) => `${((100 * d) / r.leaderCrash!.published).toFixed(1)}%`).join(' / ')}`
      : '') +
    `; peak RSS ${r.peakRssMb} MB; cpu s servers ${r.cpuSec.servers.join('/')} pubs ${r.cpuSec.publishers.join('/')} subs ${r.cpuSec.subscribers.join('/')}${kernelNote(r, ', kernel threads ')} in ${r.wallSec} s` +
    (r.minorFaults ? `; page faults servers ${r.minorFaults.servers.map(k).join('/')} subs ${r.minorFaults.subscribers.map(k).join('/')}` : '') +
    dropsNote('', r) +
    (r.fixedLoad ? dropsNote(' at the fixed load', r.fixedLoad) : '') +
    (r.leaderCrash ? dropsNote(' with the leader killed', r.leaderCrash) : '') +
    (r.warmup ? `; cold start (the warm-up, ${k(r.warmup.published)} events): deliver ${r.warmup.deliverRates.map(k).join(' / ')}/s, cpu s servers ${r.warmup.cpuSec.servers.join('/')} subs ${r.warmup.cpuSec.subscribers.join('/')}` : '')
  );
}

/** The kernel's own threads' CPU, where it was read. */
function kernelNote(p: { kernelThreadsCpuSec?: number }, label: string): string {
  return p.kernelThreadsCpuSec === undefined ? '' : `${label}${p.kernelThreadsCpuSec}`;
}

/**
 * What the replicas dropped in a phase by their own count, when they dropped anything or one
 * did not answer ("?"): a shortfall is then a drop, or not. Copies: one per subscriber.
 */
function dropsNote(when: string, p: { replicaDrops?: (number | null)[] }): string {
  if (!p.replicaDrops?.some((d) => d !== 0)) return '';
  return `; replicas dropped ${p.replicaDrops.map((d) => (d === null ? '?' : String(d))).join('/')} copies${when}`;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
