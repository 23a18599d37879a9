// `npm run bench:store`: which embedded store backs `persist: disk` channels, chosen by
// measurement (docs/persistence.md). Every candidate configuration (store/kinds.ts) gets the
// workload a replica will give it, each in a fresh temp directory: durable appends from 1, 8
// and 64 concurrent writers (how well commits are grouped), lazy position updates and low-end
// trims interleaved, the restart scan, and SIGKILL crash rounds. Prints markdown tables and
// writes the results JSON to bench/results/.
//
//   node dist/bench/store-choice.js [--quick] [--stores lmdb,sqlite] [--repeat N] [--seed N] [--no-save] [--out FILE]
//   node dist/bench/store-choice.js --report FILE.json [--report FILE2.json] [--doc docs/persistence.md]
//     (tables of saved runs, pooled; with --doc, written between the doc's table markers)
//
// The temp directory must be on the disk the replicas will use: TMPDIR=/path/on/that/disk.

import { parseArgs } from 'node:util';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine } from './machine.js';
import { kindNamed } from './store/kinds.js';
import { appendRun, fsyncRate, scanRuns, tempDir, type AppendResult } from './store/workloads.js';
import { crashChild, crashRounds } from './store/crash.js';
import { straceAvailable, syncCheck } from './store/sync-check.js';
import { BATCHES, WRITERS, planFor, type KindResult, type Plan, type StoreChoiceDoc } from './store/plan.js';
import { failures, markdownTables, merge, provenance } from './store/table.js';
import { packageVersion } from './store/version.js';
import { importOptional } from './store/optional.js';
import type { StoreKind } from './store/types.js';

const ENTRY = fileURLToPath(import.meta.url);
/**
 * The kinds a plain run measures. `level-group` (LevelDB with the application's group commit)
 * is left to `--stores level,level-group`, so that a full run stays under three minutes;
 * docs/persistence.md gives its figures from such a run.
 */
const DEFAULT_KINDS = ['lmdb', 'lmdb-sync', 'level', 'sqlite', 'sqlite-normal'];
const FSYNC_SAMPLE_MS = 300;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    stores: { type: 'string', default: DEFAULT_KINDS.join(',') },
    seed: { type: 'string', default: '1' },
    repeat: { type: 'string' },
    'no-save': { type: 'boolean', default: false },
    out: { type: 'string' },
    report: { type: 'string', multiple: true },
    doc: { type: 'string' },
    'crash-child': { type: 'string' },
    dir: { type: 'string' },
    'stop-after-ms': { type: 'string' },
  },
});

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function fmt(r: AppendResult): string {
  return `${Math.round(r.recordsPerSec)} rec/s, ${r.mbPerSec.toFixed(1)} MB/s, ack p50 ${r.ackMs.p50.toFixed(1)} p99 ${r.ackMs.p99.toFixed(1)} ms, loop p99 ${r.eventLoopDelayMs.p99.toFixed(1)} ms`;
}

function secondsSince(t: number): string {
  return `${((performance.now() - t) / 1000).toFixed(1)} s`;
}

function emptyResult(kind: StoreKind): KindResult {
  return {
    name: kind.name,
    settings: kind.settings,
    durable: kind.durable,
    package: kind.package,
    version: packageVersion(kind.package),
    appends: WRITERS.flatMap((writers) => BATCHES.map((batch) => ({ writers, batch, runs: [] }))),
    mixed: { plain: [], positions: [], positionsAndTrim: [] },
    scan: { fresh: [], afterTrim: [] },
    crash: { rounds: [], passed: 0, ackedRecords: 0 },
    syncChecks: [],
    fsyncPerSec: [],
    errors: [],
  };
}

/** One pass of the append matrix and the mixed runs for one kind. */
async function appendPass(kind: StoreKind, res: KindResult, plan: Plan): Promise<void> {
  for (const c of res.appends) {
    const r = await appendRun(kind, { writers: c.writers, batch: c.batch, durationMs: plan.cellMs, positionsPerBatch: 0, trimEveryMs: 0, retainRecords: 0 });
    c.runs.push(r);
    log(`  ${kind.name} ${c.writers} × ${c.batch}: ${fmt(r)}`);
  }
  const m = plan.mixed;
  const base = { writers: m.writers, batch: m.batch, durationMs: plan.cellMs };
  const plain = await appendRun(kind, { ...base, positionsPerBatch: 0, trimEveryMs: 0, retainRecords: 0 });
  const positions = await appendRun(kind, { ...base, positionsPerBatch: m.positionsPerBatch, trimEveryMs: 0, retainRecords: 0 });
  const both = await appendRun(kind, { ...base, positionsPerBatch: m.positionsPerBatch, trimEveryMs: m.trimEveryMs, retainRecords: m.retainRecords });
  res.mixed.plain.push(plain);
  res.mixed.positions.push(positions);
  res.mixed.positionsAndTrim.push(both);
  log(`  ${kind.name} mixed: alone ${fmt(plain)}; positions ${Math.round(positions.recordsPerSec)} rec/s + ${Math.round(positions.positionsPerSec)} pos/s; + trims ${Math.round(both.recordsPerSec)} rec/s, ${Math.round(both.trimmedPerSec)} trimmed/s`);
}

async function runSyncCheck(kind: StoreKind, plan: Plan): Promise<KindResult['syncChecks'][number]> {
  if (!straceAvailable()) return { skipped: 'strace is not installed (apt-get install strace)' };
  const dir = tempDir(`${kind.name}-strace`);
  try {
    const r = await syncCheck(ENTRY, kind, dir, plan.seed, plan.syncCheckMs);
    log(`  ${kind.name} sync check: ${r.acksWithoutSync} of ${r.acks} acknowledgements had no sync completed since their append; ${r.syncs} syncs`);
    return r;
  } catch (e) {
    return { skipped: `failed: ${e instanceof Error ? e.message : String(e)}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function run(): Promise<void> {
  const quick = values.quick;
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got "${values.seed}"`);
  const plan = planFor(quick, seed);
  if (values.repeat !== undefined) {
    plan.repeat = Number(values.repeat);
    if (!Number.isInteger(plan.repeat) || plan.repeat < 1) throw new Error(`--repeat must be a positive integer, got "${values.repeat}"`);
  }
  const kinds: StoreKind[] = [];
  for (const kind of values.stores.split(',').map((s) => kindNamed(s.trim()))) {
    try {
      // Installed now if missing (optional.ts), before the timed runs and the crash children.
      await importOptional(kind.package);
      kinds.push(kind);
    } catch (e) {
      log(`skipping ${kind.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (kinds.length === 0) throw new Error('no store to measure');
  const results = kinds.map(emptyResult);
  const t0 = performance.now();
  const loadStart = loadavg();
  // Passes interleave the kinds, so a noisy minute on this shared machine does not land on
  // one candidate's every figure.
  for (let pass = 0; pass < plan.repeat; pass++) {
    log(`pass ${pass + 1}/${plan.repeat}`);
    // Every other pass goes through the kinds backwards: a drift in the machine's load over
    // the run then does not always favour the kinds measured first.
    const order = pass % 2 ? [...kinds.keys()].reverse() : [...kinds.keys()];
    for (const i of order) {
      const kind = kinds[i]!;
      const tPass = performance.now();
      // The disk's own rate just before this kind's runs: it moves by several times within
      // minutes on this shared machine, so one figure for the whole run would compare nothing.
      const fsync = fsyncRate(FSYNC_SAMPLE_MS);
      results[i]!.fsyncPerSec.push(fsync);
      log(`  disk: ${Math.round(fsync)} fdatasync/s`);
      try {
        await appendPass(kind, results[i]!, plan);
        log(`  ${kind.name} pass ${pass + 1} (${secondsSince(tPass)})`);
      } catch (e) {
        results[i]!.errors.push(`appends: ${e instanceof Error ? e.message : String(e)}`);
        log(`  ${kind.name}: FAILED ${results[i]!.errors.at(-1)}`);
      }
    }
  }
  for (const [i, kind] of kinds.entries()) {
    const res = results[i]!;
    const tScan = performance.now();
    try {
      res.scan = await scanRuns(kind, plan.scanRecords, plan.scanRounds, plan.scanAfterTrim);
      log(`  ${kind.name} scan: ${res.scan.fresh.map((s) => Math.round(s.recordsPerSec)).join(' / ')} rec/s; after trim ${res.scan.afterTrim.map((s) => Math.round(s.recordsPerSec)).join(' / ')} rec/s (${secondsSince(tScan)})`);
    } catch (e) {
      res.errors.push(`scan: ${e instanceof Error ? e.message : String(e)}`);
    }
    const dir = tempDir(`${kind.name}-crash`);
    const tCrash = performance.now();
    try {
      res.crash = await crashRounds(ENTRY, kind, dir, plan.crashRounds, plan.seed);
      log(`  ${kind.name} crash: ${res.crash.passed}/${res.crash.rounds.length} rounds passed, ${res.crash.ackedRecords} records acknowledged (${secondsSince(tCrash)})`);
    } catch (e) {
      res.errors.push(`crash: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    res.syncChecks.push(await runSyncCheck(kind, plan));
  }
  log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

  const args = process.argv.slice(2);
  const doc: StoreChoiceDoc = {
    bench: 'store-choice',
    machine: machine(),
    date: new Date().toISOString(),
    args,
    command: ['node dist/bench/store-choice.js', ...args].join(' '),
    plan,
    tmpdir: tmpdir(),
    loadAverage: { start: loadStart, end: loadavg() },
    kinds: results,
  };
  process.stdout.write(`${provenance([doc])}\n\n${markdownTables(doc)}\n`);
  const failed = failures(doc);
  for (const f of failed) process.stdout.write(`FAILED ${f}\n`);
  if (failed.length) process.stdout.write(`replay the crash rounds: node dist/bench/store-choice.js --stores ${kinds.map((k) => k.name).join(',')} --seed ${seed} (the seed fixes batch sizes and kill delays, not the machine's timing)\n`);
  if (!values['no-save']) {
    const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${doc.date.slice(0, 19).replace(/[:T]/g, '-')}-store-choice${quick ? '-quick' : ''}.json`);
    writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
    process.stdout.write(`results: ${file}\n`);
  }
  if (values.out) writeFileSync(values.out, `${JSON.stringify(doc, null, 2)}\n`);
  if (failed.length) process.exitCode = 1;
}

const TABLES_START = '<!-- store-choice:tables:start -->';
const TABLES_END = '<!-- store-choice:tables:end -->';

/** The doc with the text between its table markers replaced, and the command that made it. */
function withTables(markdown: string, files: string[], text: string): string {
  const start = markdown.indexOf(TABLES_START);
  const end = markdown.indexOf(TABLES_END, start);
  if (start < 0 || end < 0) throw new Error(`--doc: the file has no ${TABLES_START} … ${TABLES_END} markers`);
  const command = ['node dist/bench/store-choice.js', ...files.map((f) => `--report ${f}`)].join(' ');
  return `${markdown.slice(0, start + TABLES_START.length)}\n<!-- written by: ${command} --doc FILE -->\n\n${text}\n${markdown.slice(end)}`;
}

async function main(): Promise<void> {
  if (values['crash-child'] !== undefined) {
    if (!values.dir) throw new Error('--crash-child needs --dir');
    const stop = values['stop-after-ms'];
    return crashChild(kindNamed(values['crash-child']), values.dir, Number(values.seed), stop === undefined ? undefined : Number(stop));
  }
  if (values.report !== undefined) {
    // Several files: their passes are pooled, so each figure is the median over all of them.
    const docs = values.report.map((f) => JSON.parse(readFileSync(f, 'utf8')) as StoreChoiceDoc);
    const text = `${provenance(docs)}\n\n${markdownTables(merge(docs), [...new Set(docs.map((d) => d.plan.seed))])}\n`;
    if (values.doc === undefined) process.stdout.write(text);
    else {
      writeFileSync(values.doc, withTables(readFileSync(values.doc, 'utf8'), values.report, text));
      process.stdout.write(`tables written into ${values.doc}\n`);
    }
    return;
  }
  return run();
}

main().catch((e: unknown) => {
  process.stderr.write(`store-choice: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
