// `npm run bench -- … --out FILE` is a contract: tools outside the project read FILE. This runs
// a tiny benchmark of our own system (peers are left to `npm run bench`: starting them here
// would make CI depend on their packages) and checks the shape of what it writes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BENCH = new URL('../../bench/main.js', import.meta.url).pathname;

/**
 * Runs the bench with `args` and `--no-save --out FILE` in a directory of its own, which it
 * removes; fails the test unless the bench exits 0. Its output, and FILE parsed.
 */
function runBench(args: string[], timeoutMs: number): { stdout: string; doc: unknown } {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-bench-'));
  try {
    const out = join(dir, 'results.json');
    const r = spawnSync(process.execPath, [BENCH, ...args, '--no-save', '--out', out], { encoding: 'utf8', timeout: timeoutMs });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    return { stdout: r.stdout, doc: JSON.parse(readFileSync(out, 'utf8')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('bench --out writes the runs in the documented shape', { timeout: 120_000 }, () => {
  const args = ['--quick', '--mode', 'bft', '--channels', '3', '--size', '200', '--events', '3000', '--warmup', '1000', '--rate', '2000', '--fixed-ms', '500', '--fixed-warmup-ms', '300', '--peers', 'none'];
  const r = runBench(args, 110_000);
  const doc = r.doc as { machine: { cpus: number; commit: string }; runs: Record<string, unknown>[] };
  assert.ok(doc.machine.cpus >= 1 && typeof doc.machine.commit === 'string');
  assert.equal(doc.runs.length, 1);
  const run = doc.runs[0] as {
    system: string;
    mode: string;
    channels: number;
    size: number;
    publishRate: number;
    deliverRates: number[];
    delivered: number[];
    latencyMs: { p50: number; p99: number; p999: number };
    peakRssMb: number;
    fixedLoad: { offeredRate: number; published: number; latencyMs: { p99: number }; warmupMs: number; warmup: { published: number; delivered: number[] }; kernelThreadsCpuSec: number };
    kernelThreadsCpuSec: number;
    warmupEvents: number;
    warmup: { published: number; delivered: number[]; deliverRates: number[] };
  };
  assert.equal(run.system, 'fitbroker');
  assert.equal(run.mode, 'bft');
  assert.equal(run.channels, 3);
  assert.equal(run.size, 200);
  assert.ok(run.publishRate > 0);
  assert.equal(run.deliverRates.length, 2, 'one rate per subscriber');
  assert.deepEqual(run.delivered, [3000, 3000], 'every event delivered to both subscribers');
  for (const k of ['p50', 'p99', 'p999'] as const) assert.ok(run.latencyMs[k] > 0, `latencyMs.${k}`);
  assert.ok(run.latencyMs.p50 <= run.latencyMs.p99 && run.latencyMs.p99 <= run.latencyMs.p999);
  assert.ok(run.peakRssMb > 10, 'peak RSS of the replicas, in MB');
  assert.equal(run.fixedLoad.offeredRate, 2000);
  // 2,000/s for 500 ms, after 300 ms of the same load kept apart from it.
  assert.equal(run.fixedLoad.published, 1000);
  assert.equal(run.fixedLoad.warmupMs, 300);
  assert.equal(run.fixedLoad.warmup.published, 600);
  assert.deepEqual(run.fixedLoad.warmup.delivered, [600, 600]);
  // What the kernel's own threads took of the shared cores, per phase: a tail can be told apart from ours.
  for (const p of [run, run.fixedLoad]) assert.ok(typeof p.kernelThreadsCpuSec === 'number' && p.kernelThreadsCpuSec >= 0, `kernelThreadsCpuSec ${p.kernelThreadsCpuSec}`);
  // The warm-up ran first, in the same processes, and is kept apart from the measured figures.
  assert.equal(run.warmupEvents, 1000);
  assert.equal(run.warmup.published, 1000);
  assert.deepEqual(run.warmup.delivered, [1000, 1000]);
  assert.equal(run.warmup.deliverRates.length, 2);
  assert.match(r.stdout, /cold start/);
  assert.match(r.stdout, /ratios ours \/ peer|no peer/i);
});

test('bench --urgent alone writes the urgent part in the documented shape, one result per credit window', { timeout: 180_000 }, () => {
  const args = ['--urgent', '--urgent-backlog', '3000', '--urgent-rounds', '1', '--urgent-credits', '512,256', '--mode', 'none', '--peers', 'none'];
  const r = runBench(args, 170_000);
  const doc = r.doc as {
    runs: unknown[];
    urgent: { backlogEvents: number; urgentEvents: number; creditsEvents: number; latencyMs: { p50: number; p99: number; count: number }; deliveredBefore: { p50: number; max: number }; backlogLatencyMs: { p50: number }; drainMs: number[] }[];
  };
  assert.deepEqual(doc.runs, []);
  assert.deepEqual(
    doc.urgent.map((u) => u.creditsEvents),
    [512, 256],
  );
  for (const u of doc.urgent) {
    assert.equal(u.backlogEvents, 3000);
    assert.equal(u.urgentEvents, 4);
    assert.equal(u.latencyMs.count, 4);
    assert.ok(u.latencyMs.p50 > 0 && u.latencyMs.p50 <= u.latencyMs.p99);
    // Where the urgent events landed is a measurement, not the shape: with a 3,000-event
    // backlog a loaded machine may drain it before they arrive. That urgent events overtake a
    // backlog is asserted on 100,000 events in overflow.test.ts.
    assert.ok(u.deliveredBefore.max <= 3000 + u.urgentEvents && u.deliveredBefore.p50 <= u.deliveredBefore.max, JSON.stringify(u.deliveredBefore));
    assert.equal(u.drainMs.length, 1);
  }
  assert.match(r.stdout, /urgent behind 3000 events: 4 urgent events over 1 rounds, p50 [\d.]+ ms/);
});

test('bench --first-event alone writes the first-event part in the documented shape', { timeout: 180_000 }, () => {
  const args = ['--first-event', '--first-event-backlog', '2000', '--first-event-rounds', '2', '--mode', 'none', '--peers', 'none'];
  const r = runBench(args, 170_000);
  const doc = r.doc as {
    runs: unknown[];
    firstEvent: { protection: string; backlogEvents: number; rounds: number; creditsEvents: number; firstEventMs: number[]; firstEventP50Ms: number; firstEventMaxMs: number; drainMs: number[] };
  };
  assert.deepEqual(doc.runs, []);
  const f = doc.firstEvent;
  assert.equal(f.protection, 'pks');
  assert.equal(f.backlogEvents, 2000);
  assert.equal(f.rounds, 2);
  assert.equal(f.creditsEvents, 8192);
  assert.equal(f.firstEventMs.length, 2);
  assert.equal(f.drainMs.length, 2);
  for (let i = 0; i < 2; i++) assert.ok(f.firstEventMs[i]! > 0 && f.firstEventMs[i]! <= f.drainMs[i]!, `round ${i}: first event ${f.firstEventMs[i]} ms, backlog ${f.drainMs[i]} ms`);
  assert.ok(f.firstEventP50Ms <= f.firstEventMaxMs && f.firstEventMaxMs === Math.max(...f.firstEventMs));
  assert.match(r.stdout, /first event after 2000 queued \(pks\): p50 [\d.]+ ms, max [\d.]+ ms over 2 rounds/);
});

test('bench --channel-setting runs every channel with it, says so in the label, and still delivers everything (overflow: block)', { timeout: 120_000 }, () => {
  const settings = ['--channel-setting', 'overflow=block', '--channel-setting', 'capacityEvents=16'];
  // --warmup 0 as well: a cold start, as runs before warm-ups measured.
  const args = ['--quick', '--mode', 'bft', '--channels', '3', '--events', '3000', '--warmup', '0', '--rate', '0', '--peers', 'none', ...settings];
  const r = runBench(args, 110_000);
  const [run] = (r.doc as { runs: { label: string; delivered: number[]; warmupEvents: number; warmup?: unknown; replicaDrops: number[] }[] }).runs;
  assert.equal(run!.label, 'fitbroker bft (n=4, f=1) (overflow=block, capacityEvents=16)');
  assert.deepEqual(run!.delivered, [3000, 3000], 'a full queue holds the publishers; it drops nothing');
  assert.equal(run!.warmupEvents, 0);
  assert.equal(run!.warmup, undefined);
  assert.ok(!r.stdout.includes('cold start'), r.stdout);
  assert.deepEqual(run!.replicaDrops, [0, 0, 0, 0], 'every replica answered, and dropped nothing');
});

test('bench records what each replica dropped in a phase, and says so when a run loses events', { timeout: 120_000 }, () => {
  // Queues of 16 events on drop-oldest channels, and publishers that send 1,000 at a time: most are dropped.
  const args = ['--quick', '--mode', 'bft', '--channels', '3', '--events', '3000', '--warmup', '0', '--rate', '0', '--peers', 'none', '--channel-setting', 'capacityEvents=16'];
  const r = runBench(args, 110_000);
  const [run] = (r.doc as { runs: { published: number; delivered: number[]; replicaDrops: number[] }[] }).runs;
  assert.equal(run!.published, 3000);
  assert.equal(run!.replicaDrops.length, 4);
  assert.ok(run!.replicaDrops.every((d) => typeof d === 'number'), `every replica answered: ${run!.replicaDrops}`);
  // Every replica holds a queue per subscriber and channel, and an event a subscriber missed
  // reached it from one replica at most (two matching copies deliver it): at least three
  // dropped it from that queue. (What else could keep a copy from it — a replica the
  // publishers left behind, the voter evicting a lone copy — needs far more than 3,000 small
  // events; a failure here means a loss no replica counted.)
  const missed = 2 * run!.published - run!.delivered[0]! - run!.delivered[1]!;
  const dropped = run!.replicaDrops.reduce((a, b) => a + b, 0);
  assert.ok(dropped >= 3 * missed, `replicas dropped ${run!.replicaDrops}, subscribers missed ${missed}`);
  assert.ok(run!.delivered.every((d) => d < run!.published), `delivered ${run!.delivered}`);
  assert.match(r.stdout, /replicas dropped \d+\/\d+\/\d+\/\d+ copies/);
});

test('bench refuses an unknown mode or peer with a clear error', () => {
  for (const [flag, value, want] of [
    ['--mode', 'fast', /--mode: "fast" is not a fitbroker mode; use cft, bft or bft-ordered/],
    ['--peers', 'kafka', /--peers: "kafka" is not one of nats, nats-jetstream/],
    ['--channel-setting', 'overflow=blok', /--channel-setting: "overflow=blok": overflow is one of drop-oldest, drop-newest, block/],
    ['--channel-setting', 'capacity=3', /--channel-setting: "capacity=3" is not KEY=VALUE with KEY one of capacityEvents, ttlMs, overflow/],
    ['--channel-setting', 'capacityEvents=0', /--channel-setting: "capacityEvents=0": capacityEvents is a positive whole number/],
  ] as const) {
    const r = spawnSync(process.execPath, [BENCH, flag, value, '--no-save'], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, want);
  }
});

test('bench/alloc.js names the functions a script allocates in, and says how to call it', { timeout: 60_000 }, () => {
  const alloc = new URL('../../bench/alloc.js', import.meta.url).pathname;
  const replicaPath = new URL('../../bench/replica-path.js', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [alloc, replicaPath, '--per-section', '4', '--rounds', '200', '--ack-lag', '100'], { encoding: 'utf8', timeout: 50_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /replica path, 4 event\(s\) per section, 100 unacknowledged per stream: \d+ ns CPU per event/);
  assert.match(r.stdout, /allocated \(sampled\): \d+ MB/);
  // The queue entries, made where the replica routes a section into its subscribers' queues.
  assert.match(r.stdout, / MB {2}route broker\/service\.js:\d+/);
  const usage = spawnSync(process.execPath, [alloc], { encoding: 'utf8' });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /usage: node dist\/bench\/alloc\.js SCRIPT/);
});

test('bench refuses a --warmup that is not a whole number of events, saying what it wants', () => {
  for (const bad of ['-1', '1.5', 'lots']) {
    const r = spawnSync(process.execPath, [BENCH, '--warmup', bad, '--mode', 'none', '--peers', 'none', '--no-save'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, `--warmup ${bad}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`--warmup must be a whole number of events \\(0 or more\\), got "${bad.replace('.', '\\.')}"`));
  }
});
