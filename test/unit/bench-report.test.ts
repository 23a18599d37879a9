// The bench report (bench/report.ts): the issue requires every ratio ours / peer to be stated,
// the chart to be a valid self-contained SVG, and docs/performance.md to be updated only
// between its markers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  chartSvg,
  firstEventMarkdown,
  markdownTable,
  replaceFirstEvent,
  replaceUrgent,
  textTable,
  urgentMarkdown,
  writeFirstEventReport,
  writeReport,
  writeUrgentReport,
  FIRST_EVENT_START,
  FIRST_EVENT_END,
  TABLE_START,
  TABLE_END,
  URGENT_START,
  URGENT_END,
  type ReportDoc,
} from '../../bench/report.js';
import type { RunResult } from '../../bench/run.js';

const lat = (p50: number) => ({ p50, p99: p50 * 4, p999: p50 * 9, max: p50 * 20, count: 1000 });
const cpu = { cpuSec: { servers: [1, 1], publishers: [1, 1], subscribers: [1, 1] }, wallSec: 5 };

function run(system: string, mode: string, label: string, channels: number, publishRate: number, deliverRates: number[], fixed = true): RunResult {
  const published = 100_000;
  return {
    system,
    mode,
    label,
    channels,
    size: 200,
    publishers: 2,
    subscribers: deliverRates.length,
    published,
    publishRate,
    deliverRates,
    delivered: deliverRates.map(() => published),
    latencyMs: lat(2),
    ...cpu,
    ...(fixed
      ? { fixedLoad: { offeredRate: 30_000, published: 60_000, publishRate: 30_000, deliverRates: [30_000, 30_000], delivered: [60_000, 60_000], latencyMs: lat(0.5), ...cpu } }
      : {}),
    warmupEvents: 0,
    peakRssMb: 123.4,
    serverRssMb: [100, 123.4],
  };
}

const BFT = 'fitbroker bft (n=4, f=1)';
const CFT = 'fitbroker cft (n=2, f=1)';
const runs: RunResult[] = [
  run('fitbroker', 'bft', BFT, 5, 40_000, [20_000, 21_000]),
  run('fitbroker', 'cft', CFT, 5, 80_000, [50_000, 50_000]),
  run('nats', 'core', 'NATS core', 5, 400_000, [100_000, 200_000]),
  run('redis', 'pubsub', 'Redis & <pub/sub>', 5, 200_000, [0, 0], false),
  {
    ...run('fitbroker', 'bft', BFT, 50, 30_000, [15_000, 15_000]),
    warmupEvents: 100_000,
    warmup: { published: 100_000, publishRate: 20_000, deliverRates: [9_000, 12_000], delivered: [100_000, 100_000], latencyMs: lat(3), ...cpu },
  },
  run('fitbroker', 'cft', CFT, 50, 60_000, [40_000, 41_000]),
  run('nats', 'core', 'NATS core', 50, 300_000, [150_000, 150_000]),
  run('redis', 'pubsub', 'Redis & <pub/sub>', 50, 100_000, [75_000, 75_000], false),
  // A peer measured at one channel count only: a point, no line.
  run('mosquitto', 'qos0', 'Mosquitto', 50, 90_000, [45_000, 45_000]),
];

test('the text table states every ratio ours / peer at the same channel count', () => {
  const t = textTable(runs);
  for (const line of [
    'bft / NATS core @5ch: deliver 0.20x, publish 0.10x',
    'cft / NATS core @5ch: deliver 0.50x, publish 0.20x',
    'bft / Redis & <pub/sub> @5ch: deliver n/a (peer 0), publish 0.20x',
    'cft / Redis & <pub/sub> @5ch: deliver n/a (peer 0), publish 0.40x',
    'bft / NATS core @50ch: deliver 0.10x, publish 0.10x',
    'cft / NATS core @50ch: deliver 0.27x, publish 0.20x',
    'bft / Redis & <pub/sub> @50ch: deliver 0.20x, publish 0.30x',
    'cft / Redis & <pub/sub> @50ch: deliver 0.53x, publish 0.60x',
    'bft / Mosquitto @50ch: deliver 0.33x, publish 0.33x',
    'cft / Mosquitto @50ch: deliver 0.89x, publish 0.67x',
  ]) {
    assert.ok(t.includes(line), `missing "${line}" in\n${t}`);
  }
  assert.equal(t.match(/ @\d+ch: /g)?.length, 10, 'one ratio per pair, no pair across channel counts');
  assert.ok(/ratios ours \/ peer/.test(t));
});

test('the text table shows every subscriber when they differ by more than 5%, else the slowest', () => {
  const t = textTable(runs);
  const nats5 = t.split('\n').find((l) => l.startsWith('NATS core') && / 5 /.test(l))!;
  assert.ok(nats5.includes('100.0k (100.0k / 200.0k)'), nats5);
  const bft5 = t.split('\n').find((l) => l.startsWith(BFT) && / 5 /.test(l))!;
  assert.ok(bft5.includes(' 20.0k ') && !bft5.includes('21.0k'), bft5);
  assert.ok(bft5.includes('30.0k'), 'the fixed-load offered rate');
});

test('a fixed-load phase that delivered nothing shows as 0% delivered with "-" for its latency, not as 0 ms', () => {
  const base = run('mosquitto', 'qos1', 'Mosquitto QoS 1', 5, 12_000, [12_000, 12_000]);
  const lost: RunResult = { ...base, fixedLoad: { ...base.fixedLoad!, deliverRates: [0, 0], delivered: [0, 0], latencyMs: { p50: 0, p99: 0, p999: 0, max: 0, count: 0 } } };
  const row = cells(markdownTable([lost]).split('\n').find((l) => l.startsWith('| Mosquitto QoS 1 | 5 |'))!);
  assert.deepEqual(row.slice(8, 12), ['30.0k (delivered 0%)', '-', '-', '-']);
  const delivered = cells(markdownTable([base]).split('\n').find((l) => l.startsWith('| Mosquitto QoS 1 | 5 |'))!);
  assert.deepEqual(delivered.slice(8, 12), ['30.0k', '0.50', '2.00', '4.50']);
});

test('the tables show the warm-up as the cold-start figure beside the measured one, and "-" for a run without', () => {
  const t = textTable(runs);
  const bft50 = t.split('\n').find((l) => l.startsWith(BFT) && / 50 /.test(l))!;
  assert.ok(bft50.includes('9.0k (9.0k / 12.0k)'), bft50);
  const header = t.split('\n')[0]!;
  assert.ok(header.indexOf('cold start deliver/s') > header.indexOf('delivered'), header);
  const md = markdownTable(runs);
  assert.equal(cells(md.split('\n').find((l) => l.startsWith(`| ${BFT} | 5 |`))!)[5], '-');
  assert.equal(cells(md.split('\n').find((l) => l.startsWith(`| ${BFT} | 50 |`))!)[5], '9.0k (9.0k / 12.0k)');
  assert.match(md, /measured after a warm-up/);
});

test('without a warm-up in any run (--warmup 0), the tables have no cold-start column and say the runs were cold', () => {
  const cold = runs.map(({ warmup: _, ...r }) => ({ ...r, warmupEvents: 0 }));
  const t = textTable(cold);
  assert.ok(!t.includes('cold start'), t);
  const md = markdownTable(cold);
  assert.ok(!md.includes('cold start deliver/s'), md);
  assert.match(md, /from fresh processes \(no warm-up\)/);
  const header = md.split('\n')[0]!;
  assert.equal(cells(header).length, cells(markdownTable(runs).split('\n')[0]!).length - 1);
  // Every row as wide as the header.
  for (const l of md.split('\n').filter((x) => x.startsWith(`| ${BFT}`))) assert.equal(cells(l).length, cells(header).length, l);
});

function cells(line: string): string[] {
  return line.split(' | ');
}

test('the markdown table has a row per run and a ratio row per pair, with cells escaped', () => {
  const md = markdownTable(runs);
  const rows = md.split('\n').filter((l) => l.startsWith('| '));
  // Header + separator + 9 runs, then header + separator + 10 ratios.
  assert.equal(rows.length, 2 + runs.length + 2 + 10);
  assert.ok(md.includes('| 50 | fitbroker bft | Redis & &lt;pub/sub> | 0.20x | 0.30x |'), md);
  assert.ok(!md.includes('<pub/sub>'), 'raw HTML in a label must not reach the markdown');
});

test('a failed run is listed under the table, its first line only, escaped', () => {
  const md = markdownTable(runs, [{ label: 'fitbroker bft-ordered', channels: 50, error: 'FitError: 5 events <not> acknowledged\n    at Publisher.timeoutError' }]);
  assert.ok(md.includes('- fitbroker bft-ordered, 50 channels: FitError: 5 events &lt;not> acknowledged\n'), md);
  assert.ok(!md.includes('timeoutError'), 'the stack stays in the results file');
  assert.ok(!markdownTable(runs).includes('Failed'), 'nothing listed when nothing failed');
});

function checkBalanced(svg: string): void {
  const body = svg.replace(/^<\?xml[^>]*\?>\s*/, '');
  const stack: string[] = [];
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (self) continue;
    if (close) assert.equal(stack.pop(), name, `unbalanced </${name}>`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, [], 'every tag closed');
  // Anything that looks like a tag but did not match the well-formed pattern is broken markup.
  const tags = body.match(/<[^>]*>/g) ?? [];
  for (const t of tags) assert.match(t, /^<\/?[a-zA-Z][\w:-]*(\s+[\w:-]+="[^"<]*")*\s*\/?>$/, `malformed tag ${t}`);
  // Text between tags: no raw & except entities.
  for (const text of body.split(/<[^>]*>/)) assert.doesNotMatch(text, /&(?!(amp|lt|gt|quot|apos);)/, `unescaped & in "${text}"`);
}

test('the chart is balanced SVG with a line per multi-point series, a point for single ones, and the 60k line', () => {
  for (const metric of ['deliver', 'publish'] as const) {
    const svg = chartSvg(runs, metric);
    checkBalanced(svg);
    assert.ok(svg.startsWith('<?xml'));
    assert.equal(svg.match(/<polyline /g)?.length, 4, 'bft, cft, NATS, Redis have lines; Mosquitto has one point');
    assert.equal(svg.match(/<g class="series" /g)?.length, 5);
    assert.ok(svg.includes('data-label="Mosquitto"'));
    assert.ok(svg.includes('paper&apos;s 2-SIEM use case (60k/s)'));
    assert.match(svg, /<line class="reference" [^>]*stroke-dasharray/, 'dashed reference line');
    assert.ok(svg.includes('Redis &amp; &lt;pub/sub&gt;'), 'label escaped');
    assert.ok(!svg.includes('<pub/sub>'));
    for (const c of ['>5<', '>50<']) assert.ok(svg.includes(c), `x tick ${c}`);
  }
  const deliver = chartSvg(runs);
  assert.ok(deliver.includes('Delivered events/s per subscriber vs channels (same machine, same run)'));
  assert.match(deliver, />\d+k</, 'y ticks read as 100k');
});

test('when 60k is level with the legend, the reference line is labelled in the legend instead', () => {
  const low = [5, 50, 90].flatMap((c) =>
    ['a', 'b', 'c', 'd', 'e', 'f'].map((l, i) => run(i < 2 ? 'fitbroker' : 'peer', l, `system ${l}`, c, 70_000, [50_000 + 2000 * i])),
  );
  const svg = chartSvg(low);
  checkBalanced(svg);
  const legend = svg.slice(svg.indexOf('<g class="legend">'));
  assert.ok(legend.includes('paper&apos;s 2-SIEM use case (60k/s)'));
  assert.equal(svg.match(/2-SIEM use case/g)?.length, 1, 'labelled once');
  assert.equal(chartSvg(runs).slice(chartSvg(runs).indexOf('<g class="legend">')).includes('2-SIEM'), false, 'beside the line when there is room');
});

test('the chart of no runs is still valid SVG', () => {
  checkBalanced(chartSvg([]));
});

const doc: ReportDoc = {
  machine: { cpus: 2, cpuModel: 'Test CPU <fast>', memGiB: 8, kernel: '6.1.0', node: 'v20.0.0', commit: 'abc123' },
  date: '2025-01-02T03:04:05.678Z',
  args: ['--channels', '5,50'],
  runs,
};

test('writeReport writes both charts and replaces only what is between the markers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  try {
    const before = `# Performance\n\nIntro.\n\n${TABLE_START}\nold table\n${TABLE_END}\n\nAfter.\n`;
    writeFileSync(join(dir, 'performance.md'), before);
    const out = writeReport(doc, dir);
    assert.ok(out.includes(join(dir, 'performance-chart.svg')) && out.includes(join(dir, 'performance-publish-chart.svg')), out);
    checkBalanced(readFileSync(join(dir, 'performance-chart.svg'), 'utf8'));
    assert.ok(readFileSync(join(dir, 'performance-publish-chart.svg'), 'utf8').includes('Published events/s'));

    const md = readFileSync(join(dir, 'performance.md'), 'utf8');
    assert.ok(md.startsWith('# Performance\n\nIntro.\n\n'));
    assert.ok(md.endsWith(`${TABLE_END}\n\nAfter.\n`));
    assert.ok(!md.includes('old table'));
    assert.ok(md.includes('2025-01-02 03:04:05 UTC'));
    assert.ok(md.includes('2 × Test CPU &lt;fast>'), md);
    assert.ok(md.includes('`abc123`'));
    assert.ok(md.includes('`npm run bench -- --channels 5,50`'));
    assert.ok(md.includes(markdownTable(runs)));

    // Running again replaces the previous table rather than stacking a second one.
    writeReport(doc, dir);
    assert.equal(readFileSync(join(dir, 'performance.md'), 'utf8'), md);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the table says how the kernel's data access monitor ran, where the machine had one", () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  const tableOf = (machine: ReportDoc['machine']): string => {
    writeFileSync(join(dir, 'performance.md'), `${TABLE_START}\n${TABLE_END}\n`);
    writeReport({ ...doc, machine }, dir);
    return readFileSync(join(dir, 'performance.md'), 'utf8');
  };
  try {
    const kdamond = { index: 0, state: 'on', operations: 'paddr', sampleUs: 500000, action: 'pageout' };
    assert.match(tableOf({ ...doc.machine, damon: { kdamonds: [kdamond], pausedForRun: true } }), /\(kdamond\) was switched off for the run\./);
    assert.match(tableOf({ ...doc.machine, damon: { kdamonds: [kdamond], pausedForRun: false } }), /\(kdamond\) ran, sampling every 500 ms\./);
    assert.doesNotMatch(tableOf({ ...doc.machine, damon: { kdamonds: [{ ...kdamond, state: 'off' }], pausedForRun: false } }), /kdamond/);
    assert.doesNotMatch(tableOf(doc.machine), /kdamond/, 'files before session 31, and kernels without DAMON');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeReport leaves performance.md alone without both markers, and copes with its absence', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  try {
    writeReport(doc, dir);
    assert.equal(existsSync(join(dir, 'performance.md')), false);
    const text = `# Performance\n\n${TABLE_START}\nno end marker\n`;
    writeFileSync(join(dir, 'performance.md'), text);
    writeReport(doc, dir);
    assert.equal(readFileSync(join(dir, 'performance.md'), 'utf8'), text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the urgent table goes between its own markers only: the throughput table and the charts are left as they were', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  try {
    const u = {
      label: BFT,
      backlogEvents: 100_000,
      rounds: 5,
      urgentEvents: 20,
      creditsEvents: 8192,
      latencyMs: lat(200),
      deliveredBefore: { p50: 8193, max: 9000 },
      backlogLatencyMs: lat(1300),
      drainMs: [1200, 1100],
    };
    const before = `# Performance\n\n${TABLE_START}\nthroughput table\n${TABLE_END}\n\n${URGENT_START}\nold urgent\n${URGENT_END}\n\nAfter.\n`;
    writeFileSync(join(dir, 'performance.md'), before);
    assert.equal(writeUrgentReport({ ...doc, runs: [], urgent: [u] }, dir), true);
    const md = readFileSync(join(dir, 'performance.md'), 'utf8');
    assert.ok(md.includes(`${TABLE_START}\nthroughput table\n${TABLE_END}`), 'the throughput table is untouched');
    assert.ok(!md.includes('old urgent'));
    assert.ok(md.includes(urgentMarkdown([u])));
    assert.match(urgentMarkdown([u]), /\| fitbroker bft \(n=4, f=1\) \| 100000 \| 20 \(5 rounds\) \| 200 \| 800 \| 4000 \| 8193 \/ 9000 \| 8192 \| 1200 \/ 1100 \| 1300 \|/);
    assert.ok(md.endsWith(`${URGENT_END}\n\nAfter.\n`));
    assert.equal(existsSync(join(dir, 'performance-chart.svg')), false, 'no chart written');
    assert.equal(writeUrgentReport({ ...doc, runs: [] }, dir), false, 'a run without the urgent part writes nothing');
    assert.equal(replaceUrgent('no markers', { ...doc, urgent: [u] }), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the first-event table goes between its own markers only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  try {
    const f = { label: BFT, protection: 'pks' as const, backlogEvents: 50_000, rounds: 3, creditsEvents: 8192, firstEventMs: [12.5, 40, 20], firstEventP50Ms: 20, firstEventMaxMs: 40, drainMs: [3000, 3100, 2900] };
    const before = `# Performance\n\n${URGENT_START}\nurgent table\n${URGENT_END}\n\n${FIRST_EVENT_START}\nold first\n${FIRST_EVENT_END}\n\nAfter.\n`;
    writeFileSync(join(dir, 'performance.md'), before);
    assert.equal(writeFirstEventReport({ ...doc, runs: [], firstEvent: f }, dir), true);
    const md = readFileSync(join(dir, 'performance.md'), 'utf8');
    assert.ok(md.includes(`${URGENT_START}\nurgent table\n${URGENT_END}`), 'the urgent table is untouched');
    assert.ok(!md.includes('old first'));
    assert.match(firstEventMarkdown(f), /\| fitbroker bft \(n=4, f=1\) \| pks \| 50000 \| 3 \| 20 \| 40 \| 12\.5 \/ 40 \/ 20 \| 8192 \| 3000 \/ 3100 \/ 2900 \|/);
    assert.ok(md.includes(firstEventMarkdown(f)));
    assert.ok(md.endsWith(`${FIRST_EVENT_END}\n\nAfter.\n`));
    assert.equal(writeFirstEventReport({ ...doc, runs: [] }, dir), false, 'a run without the first-event part writes nothing');
    assert.equal(replaceFirstEvent('no markers', { ...doc, firstEvent: f }), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
