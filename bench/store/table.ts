// The store-choice results as markdown tables, from the results JSON only: what the terminal
// shows after a run and what docs/persistence.md carries are the same text, never retyped.

import type { AppendResult, ScanResult } from './workloads.js';
import type { SyncCheck } from './sync-check.js';
import { BATCHES, WRITERS, type KindResult, type StoreChoiceDoc } from './plan.js';
import { median } from '../../src/core/index.js';


function num(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  if (n >= 10) return String(Math.round(n));
  return n.toFixed(1);
}

/** The median, and the range when there was more than one run: "112k (98k–120k)". */
function spread(xs: number[], fmt: (n: number) => string = num): string {
  if (xs.length === 0) return '-';
  if (xs.length === 1) return fmt(xs[0]!);
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
}

const ms = (n: number): string => (!Number.isFinite(n) ? '-' : n < 10 ? n.toFixed(1) : String(Math.round(n)));
const percent = (share: number): string => (Number.isFinite(share) ? `${Math.round(100 * share)} %` : '-');
const count = (n: number): string => n.toLocaleString('en-US');

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function table(headers: string[], rows: string[][]): string {
  return [row(headers), row(headers.map(() => '---')), ...rows.map(row)].join('\n');
}

function label(k: KindResult): string {
  return k.durable ? `\`${k.name}\`` : `\`${k.name}\` (not durable)`;
}

function cell(k: KindResult, writers: number, batch: number): AppendResult[] {
  return k.appends.find((c) => c.writers === writers && c.batch === batch)?.runs ?? [];
}

function appendsTable(doc: StoreChoiceDoc): string {
  const shapes = WRITERS.flatMap((w) => BATCHES.map((b) => [w, b] as const));
  return table(
    ['store', 'passes', ...shapes.map(([w, b]) => `${w} × ${b}`)],
    doc.kinds.map((k) => [label(k), String(cell(k, 1, 32).length), ...shapes.map(([w, b]) => spread(cell(k, w, b).map((r) => r.recordsPerSec)))]),
  );
}

function detailTable(doc: StoreChoiceDoc): string {
  const at = (k: KindResult, w: number, b: number): AppendResult[] => cell(k, w, b);
  return table(
    [
      'store',
      'MB/s at 64 × 256',
      'batches/s at 1 × 32',
      "the disk's fdatasync/s just before",
      'ack p50 / p99 ms at 8 × 32',
      'ack p50 / p99 ms at 64 × 256',
      'JS thread busy at 8 × 32 / 64 × 256',
      'event-loop delay p99 ms at 8 × 32 / 64 × 256',
    ],
    doc.kinds.map((k) => [
      label(k),
      spread(at(k, 64, 256).map((r) => r.mbPerSec), (n) => n.toFixed(1)),
      spread(at(k, 1, 32).map((r) => r.batchesPerSec)),
      spread(k.fsyncPerSec),
      `${ms(median(at(k, 8, 32).map((r) => r.ackMs.p50)))} / ${ms(median(at(k, 8, 32).map((r) => r.ackMs.p99)))}`,
      `${ms(median(at(k, 64, 256).map((r) => r.ackMs.p50)))} / ${ms(median(at(k, 64, 256).map((r) => r.ackMs.p99)))}`,
      `${percent(median(at(k, 8, 32).map((r) => r.jsThreadBusy)))} / ${percent(median(at(k, 64, 256).map((r) => r.jsThreadBusy)))}`,
      `${ms(median(at(k, 8, 32).map((r) => r.eventLoopDelayMs.p99)))} / ${ms(median(at(k, 64, 256).map((r) => r.eventLoopDelayMs.p99)))}`,
    ]),
  );
}

function mixedTable(doc: StoreChoiceDoc): string {
  return table(
    ['store', 'appends/s alone', 'appends/s with positions', 'positions/s', 'appends/s with positions and trims', 'trimmed records/s'],
    doc.kinds.map((k) => [
      label(k),
      spread(k.mixed.plain.map((r) => r.recordsPerSec)),
      spread(k.mixed.positions.map((r) => r.recordsPerSec)),
      spread(k.mixed.positions.map((r) => r.positionsPerSec)),
      spread(k.mixed.positionsAndTrim.map((r) => r.recordsPerSec)),
      spread(k.mixed.positionsAndTrim.map((r) => r.trimmedPerSec)),
    ]),
  );
}

function scanCell(rs: ScanResult[]): string {
  return rs.length === 0 ? '-' : `${spread(rs.map((r) => r.recordsPerSec))}; open ${spread(rs.map((r) => r.openMs), ms)} ms`;
}

function syncCell(checks: KindResult['syncChecks']): string {
  const done = checks.filter((c): c is SyncCheck => !('skipped' in c));
  if (done.length === 0) return checks.map((c) => ('skipped' in c ? c.skipped : '')).join('; ') || '-';
  const acks = done.reduce((n, c) => n + c.acks, 0);
  const without = done.reduce((n, c) => n + c.acksWithoutSync, 0);
  return `${count(without)} of ${count(acks)}`;
}

function scanAndCrashTable(doc: StoreChoiceDoc): string {
  return table(
    ['store', `scan of ${num(doc.plan.scanRecords)} records/s`, `same after ${num(doc.plan.scanRecords / 2)} more appended and the first ${num(doc.plan.scanRecords / 2)} trimmed`, 'crash rounds passed', 'records acknowledged before the kills', 'acks with no sync since their append (strace)'],
    doc.kinds.map((k) => [
      label(k),
      scanCell(k.scan.fresh),
      scanCell(k.scan.afterTrim),
      `${k.crash.passed} / ${k.crash.rounds.length}`,
      num(k.crash.ackedRecords),
      syncCell(k.syncChecks),
    ]),
  );
}

/** Where the figures come from: one line per run merged. */
export function provenance(docs: StoreChoiceDoc[]): string {
  const lines = docs.map((doc) => {
    const m = doc.machine;
    const versions = [...new Map(doc.kinds.map((k) => [k.package, k.version])).entries()].map(([p, v]) => `${p} ${v}`).join(', ');
    const load = doc.loadAverage ? `; 1-minute load average ${doc.loadAverage.start[0]!.toFixed(1)} at the start, ${doc.loadAverage.end[0]!.toFixed(1)} at the end` : '';
    return (
      `- \`${doc.command}\`, ${doc.date.slice(0, 16).replace('T', ' ')} UTC, commit ${m.commit.slice(0, 12)}: ${m.cpuModel}, ${m.cpus} vCPUs, ` +
      `Linux ${m.kernel}, Node ${m.node}; ${versions}; stores under ${doc.tmpdir}; ` +
      `${doc.plan.repeat} pass${doc.plan.repeat > 1 ? 'es' : ''}${load}.`
    );
  });
  return `${lines.join('\n')}\n\nEach figure is the median over the passes of that store (the \`passes\` column), with the range in brackets.`;
}

/** Several runs as one: every pass, scan and crash round of each, side by side. */
export function merge(docs: StoreChoiceDoc[]): StoreChoiceDoc {
  const [first, ...rest] = docs;
  if (!first) throw new Error('no results to merge');
  const kinds: KindResult[] = structuredClone(first.kinds);
  for (const doc of rest) {
    for (const k of doc.kinds) {
      const into = kinds.find((x) => x.name === k.name);
      if (!into) {
        kinds.push(structuredClone(k));
        continue;
      }
      for (const c of k.appends) {
        const cellInto = into.appends.find((x) => x.writers === c.writers && x.batch === c.batch);
        if (cellInto) cellInto.runs.push(...c.runs);
        else into.appends.push(structuredClone(c));
      }
      into.mixed.plain.push(...k.mixed.plain);
      into.mixed.positions.push(...k.mixed.positions);
      into.mixed.positionsAndTrim.push(...k.mixed.positionsAndTrim);
      into.scan.fresh.push(...k.scan.fresh);
      into.scan.afterTrim.push(...k.scan.afterTrim);
      into.crash.rounds.push(...k.crash.rounds);
      into.crash.passed += k.crash.passed;
      into.crash.ackedRecords += k.crash.ackedRecords;
      into.errors.push(...k.errors);
      into.fsyncPerSec.push(...k.fsyncPerSec);
      into.syncChecks.push(...(k.syncChecks ?? []));
    }
  }
  return { ...first, kinds, plan: { ...first.plan, repeat: docs.reduce((n, d) => n + d.plan.repeat, 0) } };
}

export function markdownTables(doc: StoreChoiceDoc, seeds: number[] = [doc.plan.seed]): string {
  const m = doc.plan.mixed;
  return [
    `Durable appends, records/s (writers × records per batch; each writer awaits durability per batch; ${doc.plan.cellMs} ms per run):`,
    '',
    appendsTable(doc),
    '',
    detailTable(doc),
    '',
    `Mixed: ${m.writers} writers × ${m.batch}, each acknowledged batch followed by ${m.positionsPerBatch} lazy position updates; trims every ${m.trimEveryMs} ms keep the last ${num(m.retainRecords)} records of each channel:`,
    '',
    mixedTable(doc),
    '',
    `Restart (warm page cache; the open time of each restart after the rate) and crash safety (SIGKILL at a random moment; seed ${seeds.join(', ')}; the strace check is explained below the table):`,
    '',
    scanAndCrashTable(doc),
  ].join('\n');
}

export function failures(doc: StoreChoiceDoc): string[] {
  return doc.kinds.flatMap((k) => [
    ...k.errors.map((e) => `${k.name}: ${e}`),
    ...k.crash.rounds.filter((r) => !r.ok).map((r) => `${k.name}: crash round seed ${r.seed} (kill after ${r.killAfterMs} ms): ${r.problems.join('; ')}`),
  ]);
}
