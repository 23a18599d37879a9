// Tables and charts of a bench run: a text table for the terminal, the same as markdown for
// docs/performance.md, and SVG line charts of throughput against channels. The issue asks that
// every claim be a ratio ours / peer measured on the same machine in the same run, so each
// table ends with every such ratio rather than leaving the reader to divide.
//
// The SVG is written by hand, with no charting dependency: the chart is simple, a dependency
// would be one more thing to install for `npm run bench`, and the output must stay a plain,
// diffable, self-contained file that GitHub renders from docs/.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Machine } from './machine.js';
import type { RunResult } from './run.js';
import type { UrgentResult } from './urgent.js';
import type { FirstEventResult } from './first-event.js';

export interface ReportDoc {
  machine: Machine;
  date: string;
  args: string[];
  runs: RunResult[];
  /** The --urgent part, when it ran: one result per credit window. */
  urgent?: UrgentResult[];
  /** The --first-event part, when it ran. */
  firstEvent?: FirstEventResult;
  /** Runs that failed: in no table or chart, so listed under the table. */
  failures?: RunFailure[];
}

export interface RunFailure {
  label: string;
  channels: number;
  error: string;
}

export type ChartMetric = 'deliver' | 'publish';

export const TABLE_START = '<!-- bench:table:start -->';
export const TABLE_END = '<!-- bench:table:end -->';
export const URGENT_START = '<!-- bench:urgent:start -->';
export const URGENT_END = '<!-- bench:urgent:end -->';
export const FIRST_EVENT_START = '<!-- bench:first-event:start -->';
export const FIRST_EVENT_END = '<!-- bench:first-event:end -->';

/** The paper's use case: two SIEMs each receiving 60k events/s. */
const USE_CASE_RATE = 60_000;
const REFERENCE_LABEL = "paper's 2-SIEM use case (60k/s)";
/** Subscribers of one run whose rates differ by more than this are all shown, not just the slowest. */
const SPREAD = 0.05;

// ---------------------------------------------------------------------------------------------
// Numbers

function minOf(xs: number[]): number {
  return xs.length === 0 ? 0 : Math.min(...xs);
}

/** The slowest subscriber's rate: a broker is only as fast as the SIEM it leaves behind. */
function deliverRate(r: { deliverRates: number[] }): number {
  return minOf(r.deliverRates);
}

function rate(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (Math.abs(n) >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

function ms(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (n < 10) return n.toFixed(2);
  if (n < 100) return n.toFixed(1);
  return String(Math.round(n));
}

function deliverCell(rates: number[]): string {
  const lo = minOf(rates);
  const hi = rates.length === 0 ? 0 : Math.max(...rates);
  const spread = lo === 0 ? hi > 0 : (hi - lo) / lo > SPREAD;
  return spread ? `${rate(lo)} (${rates.map(rate).join(' / ')})` : rate(lo);
}

function percent(delivered: number, published: number): string {
  if (published <= 0) return '-';
  const p = (100 * delivered) / published;
  if (Number.isInteger(p)) return `${p}%`;
  // Rounded down below 100%: one lost event in a million must not print as 100%, losses
  // being the thing this column exists to show.
  if (p < 100) return p >= 99 ? `${(Math.floor(p * 100) / 100).toFixed(2)}%` : `${(Math.floor(p * 10) / 10).toFixed(1)}%`;
  return `${p.toFixed(1)}%`;
}

function deliveredCell(r: { delivered: number[]; published: number }): string {
  const all = r.delivered.map((d) => percent(d, r.published));
  const distinct = new Set(all);
  const lowest = percent(minOf(r.delivered), r.published);
  return distinct.size > 1 ? `${lowest} (${all.join(' / ')})` : lowest;
}

function fixedOffered(r: RunResult): string {
  const f = r.fixedLoad;
  if (!f) return '-';
  // Latency at a fixed load only means something if that load was actually sent and delivered.
  const notes: string[] = [];
  if (f.publishRate < f.offeredRate * (1 - SPREAD)) notes.push(`sent ${rate(f.publishRate)}`);
  if (minOf(f.delivered) < f.published) notes.push(`delivered ${percent(minOf(f.delivered), f.published)}`);
  return notes.length ? `${rate(f.offeredRate)} (${notes.join(', ')})` : rate(f.offeredRate);
}

function ratio(ours: number, peer: number): string {
  if (peer <= 0) return ours > 0 ? 'n/a (peer 0)' : 'n/a (both 0)';
  const x = ours / peer;
  return `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}x`;
}

// ---------------------------------------------------------------------------------------------
// Rows

const HEADERS = [
  'system',
  'ch',
  'publish/s',
  'deliver/s per sub',
  'delivered',
  'cold start deliver/s',
  'p50 ms',
  'p99 ms',
  'p99.9 ms',
  'fixed load/s',
  'fixed p50',
  'fixed p99',
  'fixed p99.9',
  'peak RSS MB',
];
const COLD_START = HEADERS.indexOf('cold start deliver/s');

/**
 * The columns of a table of these runs: the cold-start one only when some run had a warm-up
 * (`--warmup 0` measures a cold start, and its table reads as tables did before warm-ups).
 * Every column but the first is numeric, right-aligned.
 */
function columnsOf(runs: RunResult[]): { headers: string[]; numeric: boolean[]; keep: (cells: string[]) => string[] } {
  const warm = runs.some((r) => r.warmup);
  const keep = (cells: string[]): string[] => (warm ? cells : cells.filter((_, i) => i !== COLD_START));
  const headers = keep(HEADERS);
  return { headers, numeric: headers.map((_, i) => i >= 1), keep };
}

function byChannels(runs: RunResult[]): RunResult[] {
  // Stable: within one channel count the systems keep the order they ran in (ours first).
  return [...runs].sort((a, b) => a.channels - b.channels);
}

function row(r: RunResult): string[] {
  // A fixed-load phase that delivered nothing has no latency: 0.00 would read as a figure.
  const f = r.fixedLoad && r.fixedLoad.latencyMs.count > 0 ? r.fixedLoad : undefined;
  return [
    r.label,
    String(r.channels),
    rate(r.publishRate),
    deliverCell(r.deliverRates),
    deliveredCell(r),
    r.warmup ? deliverCell(r.warmup.deliverRates) : '-',
    ms(r.latencyMs.p50),
    ms(r.latencyMs.p99),
    ms(r.latencyMs.p999),
    fixedOffered(r),
    f ? ms(f.latencyMs.p50) : '-',
    f ? ms(f.latencyMs.p99) : '-',
    f ? ms(f.latencyMs.p999) : '-',
    String(Math.round(r.peakRssMb)),
  ];
}

interface RatioRow {
  channels: number;
  ours: string;
  peer: string;
  deliver: string;
  publish: string;
}

function isOurs(r: RunResult): boolean {
  return r.system === 'fitbroker';
}

/** Every pair (fitbroker run, peer run) at the same channel count, in table order. */
function ratios(runs: RunResult[]): RatioRow[] {
  const sorted = byChannels(runs);
  const out: RatioRow[] = [];
  for (const o of sorted.filter(isOurs)) {
    for (const p of sorted.filter((r) => !isOurs(r) && r.channels === o.channels)) {
      out.push({
        channels: o.channels,
        ours: o.mode,
        peer: p.label,
        deliver: ratio(deliverRate(o), deliverRate(p)),
        publish: ratio(o.publishRate, p.publishRate),
      });
    }
  }
  return out;
}

function noRatios(runs: RunResult[]): string {
  if (!runs.some(isOurs)) return 'no fitbroker run, so no ratios';
  if (!runs.some((r) => !isOurs(r))) return 'no peer run, so no ratios';
  return 'no fitbroker and peer runs at the same channel count, so no ratios';
}

// ---------------------------------------------------------------------------------------------
// Text and markdown

function pad(cell: string, width: number, right: boolean): string {
  return right ? cell.padStart(width) : cell.padEnd(width);
}

export function textTable(runs: RunResult[]): string {
  const { headers, numeric, keep } = columnsOf(runs);
  const rows = [headers, ...byChannels(runs).map((r) => keep(row(r)))];
  const widths = headers.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => pad(c, widths[i]!, numeric[i]!)).join('  ').trimEnd();
  const lines = [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  const warmNote = runs.some((r) => r.warmup) ? ', after the warm-up; cold start: the warm-up itself' : '';
  lines.push('', `latency: end to end, publisher to subscriber; deliver/s: the slowest subscriber, all shown when they differ by more than 5%${warmNote}`);
  lines.push('', 'ratios ours / peer (same machine, same run; deliver: slowest subscriber)');
  const rs = ratios(runs);
  if (rs.length === 0) lines.push(`  ${noRatios(runs)}`);
  for (const r of rs) lines.push(`  ${r.ours} / ${r.peer} @${r.channels}ch: deliver ${r.deliver}, publish ${r.publish}`);
  return `${lines.join('\n')}\n`;
}

export function printTable(runs: RunResult[]): void {
  process.stdout.write(`\n${textTable(runs)}`);
}

function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/</g, '&lt;');
}

function mdTable(headers: string[], rows: string[][], numeric: boolean[]): string {
  const sep = headers.map((_, i) => (numeric[i] ? '---:' : '---'));
  return [headers, sep, ...rows].map((cells, i) => `| ${(i === 1 ? cells : cells.map(mdCell)).join(' | ')} |`).join('\n');
}

/** Failed runs as a list under the table: a run that failed must not just be missing from it. */
function failureList(failures: readonly RunFailure[]): string {
  if (failures.length === 0) return '';
  const lines = failures.map((f) => `- ${mdCell(`${f.label}, ${f.channels} channels: ${f.error.split('\n')[0]}`)}`);
  return `\n\nFailed, and so in no table or chart (the error is in the results file under \`failures\`):\n\n${lines.join('\n')}`;
}

export function markdownTable(runs: RunResult[], failures: readonly RunFailure[] = []): string {
  const { headers, numeric, keep } = columnsOf(runs);
  const main = mdTable(headers, byChannels(runs).map((r) => keep(row(r))), numeric);
  const rs = ratios(runs);
  const ratioTable =
    rs.length === 0
      ? `_${noRatios(runs)}._`
      : mdTable(
          ['channels', 'ours', 'peer', 'deliver ours / peer', 'publish ours / peer'],
          rs.map((r) => [String(r.channels), `fitbroker ${r.ours}`, r.peer, r.deliver, r.publish]),
          [true, false, false, true, true],
        );
  const crashes = runs.filter((r) => r.leaderCrash);
  const crashTable =
    crashes.length === 0
      ? ''
      : `\n\nLeader killed (SIGKILL) a quarter into a paced phase, ordered channels: the longest pause between two deliveries at each subscriber is what the leader change cost it.\n\n${mdTable(
          ['system', 'channels', 'offered/s', 'killed replica', 'longest pause ms', 'delivered'],
          crashes.map((r) => {
            const c = r.leaderCrash!;
            return [r.label, String(r.channels), String(c.offeredRate), String(c.killedReplica), c.longestGapMs.join(' / '), c.delivered.map((d) => `${((100 * d) / c.published).toFixed(1)}%`).join(' / ')];
          }),
          [false, true, true, true, false, false],
        )}`;
  return [
    main + crashTable + failureList(failures),
    '',
    `Latency is end to end, publisher to subscriber, in ms; "deliver/s per sub" is the slowest subscriber (all shown when they differ by more than 5%)${
      runs.some((r) => r.warmup) ? ', measured after a warm-up in the same processes; "cold start deliver/s" is that warm-up\'s own figure, a fresh cluster\'s first events' : ', from fresh processes (no warm-up)'
    }; "fixed load" is the offered rate of the fixed-load phase.`,
    '',
    'Ratios ours / peer, same machine, same run (deliver: slowest subscriber):',
    '',
    ratioTable,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// SVG chart

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Okabe–Ito: distinguishable with the common colour-vision deficiencies. */
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#E69F00', '#CC79A7', '#56B4E9', '#000000', '#999933'];
/** A shape per series as well as a colour, so the chart survives greyscale printing. */
const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'down', 'cross'] as const;

function marker(shape: (typeof SHAPES)[number], x: number, y: number, colour: string, title: string): string {
  const r = 5;
  const p = (pts: [number, number][]): string => pts.map(([a, b]) => `${n(x + a)},${n(y + b)}`).join(' ');
  const style = `fill="${colour}" stroke="#ffffff" stroke-width="1.5"`;
  const t = `<title>${xml(title)}</title>`;
  switch (shape) {
    case 'circle':
      return `<circle cx="${n(x)}" cy="${n(y)}" r="${r}" ${style}>${t}</circle>`;
    case 'square':
      return `<rect x="${n(x - r)}" y="${n(y - r)}" width="${2 * r}" height="${2 * r}" ${style}>${t}</rect>`;
    case 'triangle':
      return `<polygon points="${p([[0, -r - 1], [r + 1, r], [-r - 1, r]])}" ${style}>${t}</polygon>`;
    case 'diamond':
      return `<polygon points="${p([[0, -r - 1], [r + 1, 0], [0, r + 1], [-r - 1, 0]])}" ${style}>${t}</polygon>`;
    case 'down':
      return `<polygon points="${p([[0, r + 1], [r + 1, -r], [-r - 1, -r]])}" ${style}>${t}</polygon>`;
    case 'cross':
      return `<polygon points="${p([[-2, -r], [2, -r], [2, -2], [r, -2], [r, 2], [2, 2], [2, r], [-2, r], [-2, 2], [-r, 2], [-r, -2], [-2, -2]])}" ${style}>${t}</polygon>`;
  }
}

function n(v: number): string {
  return String(Math.round(v * 10) / 10);
}

/** A tick step of 1, 2 or 5 times a power of ten giving about `count` ticks up to `max`. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
}

function tickLabel(v: number): string {
  if (v === 0) return '0';
  if (v >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(v);
}

interface Series {
  label: string;
  ours: boolean;
  points: { channels: number; value: number }[];
}

function seriesOf(runs: RunResult[], metric: ChartMetric): Series[] {
  const by = new Map<string, Series>();
  for (const r of runs) {
    let s = by.get(r.label);
    if (!s) by.set(r.label, (s = { label: r.label, ours: isOurs(r), points: [] }));
    const value = metric === 'deliver' ? deliverRate(r) : r.publishRate;
    // The harness runs each pair once; should a label repeat at a channel count, the later
    // run is the one the table ends with, so the chart shows that one too.
    const at = s.points.findIndex((p) => p.channels === r.channels);
    if (at >= 0) s.points[at] = { channels: r.channels, value };
    else s.points.push({ channels: r.channels, value });
  }
  for (const s of by.values()) s.points.sort((a, b) => a.channels - b.channels);
  // Ours first, so our lines take the first colours and head the legend.
  return [...by.values()].sort((a, b) => Number(b.ours) - Number(a.ours));
}

const FONT = 'font-family="Helvetica, Arial, sans-serif"';

export function chartSvg(runs: RunResult[], metric: ChartMetric = 'deliver'): string {
  const title =
    metric === 'deliver'
      ? 'Delivered events/s per subscriber vs channels (same machine, same run)'
      : 'Published events/s vs channels (same machine, same run)';
  const subtitle =
    metric === 'deliver'
      ? 'slowest subscriber of each run; higher is better'
      : 'all publishers together, acknowledged where the system acknowledges; higher is better';
  const yName = metric === 'deliver' ? 'delivered events/s per subscriber' : 'published events/s';
  const series = seriesOf(runs, metric);

  const longest = Math.max(0, ...series.map((s) => s.label.length));
  const left = 80;
  const top = 74;
  const plotW = 600;
  const plotH = 380;
  const legendX = left + plotW + 28;
  // Helvetica at 12px averages under 7px a character; the legend sizes itself to its labels,
  // the reference line's label among them (it sits in the legend's column either way).
  const legendW = Math.max(longest, REFERENCE_LABEL.length) * 7 + 44;
  const width = legendX + legendW + 16;
  const height = top + plotH + 64;
  const bottom = top + plotH;

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`);
  out.push(`<title>${xml(title)}</title>`);
  // Opaque background: GitHub's dark theme would otherwise put black text on near-black.
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="28" font-size="16" font-weight="bold" fill="#222222">${xml(title)}</text>`);
  out.push(`<text x="${left}" y="48" fill="#555555">${xml(subtitle)}</text>`);

  const points = series.flatMap((s) => s.points);
  if (points.length === 0) {
    out.push(`<text x="${left + plotW / 2}" y="${top + plotH / 2}" text-anchor="middle" fill="#555555">no runs</text>`);
    out.push('</svg>');
    return `${out.join('\n')}\n`;
  }

  const channelCounts = [...new Set(points.map((p) => p.channels))].sort((a, b) => a - b);
  // Linear in channels from zero, like the paper's figure: spacing shows how far apart the
  // measured counts are, which a categorical axis would hide.
  const lastCount = channelCounts[channelCounts.length - 1]!;
  // A single count (a --quick run) sits mid-axis rather than pinned to the right edge.
  const xMax = channelCounts.length === 1 ? lastCount * 2 : lastCount * 1.06;
  const x = (c: number): number => left + (c / xMax) * plotW;
  const yTop = Math.max(USE_CASE_RATE, ...points.map((p) => p.value)) * 1.08;
  const step = niceStep(yTop, 6);
  const yMax = Math.ceil(yTop / step) * step;
  const y = (v: number): number => bottom - (v / yMax) * plotH;

  // Grid and y ticks.
  out.push(`<g stroke="#e5e5e5" stroke-width="1">`);
  for (let v = step; v <= yMax + step / 2; v += step) out.push(`<line x1="${left}" y1="${n(y(v))}" x2="${left + plotW}" y2="${n(y(v))}"/>`);
  out.push(`</g>`);
  out.push(`<g fill="#333333" text-anchor="end">`);
  for (let v = 0; v <= yMax + step / 2; v += step) out.push(`<text x="${left - 8}" y="${n(y(v) + 4)}">${xml(tickLabel(v))}</text>`);
  out.push(`</g>`);

  // X ticks at the measured channel counts only; a label too close to the previous one is
  // dropped rather than drawn over it (the tick stays).
  out.push(`<g stroke="#333333" stroke-width="1">`);
  for (const c of channelCounts) out.push(`<line x1="${n(x(c))}" y1="${bottom}" x2="${n(x(c))}" y2="${bottom + 5}"/>`);
  out.push(`</g>`);
  out.push(`<g fill="#333333" text-anchor="middle">`);
  let lastLabelX = -Infinity;
  for (const c of channelCounts) {
    if (x(c) - lastLabelX < 18) continue;
    lastLabelX = x(c);
    out.push(`<text x="${n(x(c))}" y="${bottom + 19}">${c}</text>`);
  }
  out.push(`</g>`);

  // Axes.
  out.push(`<g stroke="#333333" stroke-width="1.2">`);
  out.push(`<line x1="${left}" y1="${bottom}" x2="${left + plotW}" y2="${bottom}"/>`);
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}"/>`);
  out.push(`</g>`);
  out.push(`<text x="${left + plotW / 2}" y="${bottom + 42}" text-anchor="middle" fill="#333333">channels</text>`);
  out.push(`<text transform="translate(20 ${top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#333333">${xml(yName)}</text>`);

  // The use-case reference line, under the data so it never hides a point.
  const refY = y(USE_CASE_RATE);
  out.push(`<line class="reference" x1="${left}" y1="${n(refY)}" x2="${left + plotW}" y2="${n(refY)}" stroke="#777777" stroke-width="1.5" stroke-dasharray="6 4"/>`);

  // Series.
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const shape = SHAPES[i % SHAPES.length]!;
    out.push(`<g class="series" data-label="${xml(s.label)}">`);
    if (s.points.length > 1) {
      const pts = s.points.map((p) => `${n(x(p.channels))},${n(y(p.value))}`).join(' ');
      out.push(`<polyline points="${pts}" fill="none" stroke="${colour}" stroke-width="${s.ours ? 3 : 2}" stroke-linejoin="round"/>`);
    }
    for (const p of s.points) out.push(marker(shape, x(p.channels), y(p.value), colour, `${s.label}, ${p.channels} channels: ${Math.round(p.value).toLocaleString('en-US')} events/s`));
    out.push(`</g>`);
  });

  // Legend, and in the same column below it the reference line's label, level with the line
  // and clear of the data. When the line is up level with the legend, the label becomes the
  // legend's last entry instead: inside the plot it would sit on lines near 60k, the very
  // ones a reader wants to compare with it.
  const rowH = 22;
  const refBeside = refY - 10 > top + series.length * rowH + 12 + 6;
  const entries = series.length + (refBeside ? 0 : 1);
  if (refBeside) out.push(`<text class="reference" x="${left + plotW + 8}" y="${n(refY + 4)}" fill="#444444">${xml(REFERENCE_LABEL)}</text>`);

  out.push(`<g class="legend">`);
  out.push(`<rect x="${legendX}" y="${top}" width="${legendW}" height="${entries * rowH + 12}" fill="#ffffff" stroke="#cccccc"/>`);
  const rowY = (i: number): number => top + 6 + rowH * i + rowH / 2;
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const cy = rowY(i);
    out.push(`<line x1="${legendX + 10}" y1="${cy}" x2="${legendX + 34}" y2="${cy}" stroke="${colour}" stroke-width="${s.ours ? 3 : 2}"/>`);
    out.push(marker(SHAPES[i % SHAPES.length]!, legendX + 22, cy, colour, s.label));
    out.push(`<text x="${legendX + 42}" y="${cy + 4}" fill="#222222">${xml(s.label)}</text>`);
  });
  if (!refBeside) {
    const cy = rowY(series.length);
    out.push(`<line x1="${legendX + 10}" y1="${cy}" x2="${legendX + 34}" y2="${cy}" stroke="#777777" stroke-width="1.5" stroke-dasharray="6 4"/>`);
    out.push(`<text class="reference" x="${legendX + 42}" y="${cy + 4}" fill="#222222">${xml(REFERENCE_LABEL)}</text>`);
  }
  out.push(`</g>`);

  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Files

function provenance(doc: ReportDoc): string {
  const m = doc.machine;
  const when = doc.date.replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/Z$/, ' UTC');
  const command = ['npm run bench', ...(doc.args.length ? ['--', ...doc.args] : [])].join(' ');
  return `Measured ${when} on ${m.cpus} × ${mdCell(m.cpuModel)} (${m.memGiB} GiB, kernel ${m.kernel}, Node ${m.node}), commit \`${m.commit}\`, with \`${command}\`.${damonNote(m)}`;
}

/** The kernel's data access monitor moves the paced tail on these VMs (performance.md, session 31): a table says how it ran. */
function damonNote(m: Machine): string {
  const running = m.damon?.kdamonds.filter((k) => k.state === 'on') ?? [];
  if (running.length === 0) return '';
  if (m.damon!.pausedForRun) return ' The kernel\'s data access monitor (kdamond) was switched off for the run.';
  const every = running[0]!.sampleUs ? `, sampling every ${running[0]!.sampleUs / 1000} ms` : '';
  return ` The kernel's data access monitor (kdamond) ran${every}.`;
}

/** Replaces what is between the table markers; undefined when the markers are missing or out of order. */
function replaceTable(markdown: string, doc: ReportDoc): string | undefined {
  const start = markdown.indexOf(TABLE_START);
  const end = markdown.indexOf(TABLE_END, start + TABLE_START.length);
  if (start < 0 || end < 0) return undefined;
  return `${markdown.slice(0, start + TABLE_START.length)}\n${provenance(doc)}\n\n${markdownTable(doc.runs, doc.failures)}${markdown.slice(end)}`;
}

/** The --urgent part as markdown: the table docs/performance.md shows between the urgent markers. */
export function urgentMarkdown(results: UrgentResult[]): string {
  const table = mdTable(
    ['system', 'backlog', 'urgent events', 'urgent p50 ms', 'urgent p99 ms', 'urgent max ms', 'delivered before it (median / most)', 'credits in flight per replica', 'backlog drained in ms', 'backlog p50 ms'],
    results.map((u) => [
        u.label,
        String(u.backlogEvents),
        `${u.urgentEvents} (${u.rounds} rounds)`,
        String(u.latencyMs.p50),
        String(u.latencyMs.p99),
        String(u.latencyMs.max),
        `${u.deliveredBefore.p50} / ${u.deliveredBefore.max}`,
        String(u.creditsEvents),
        u.drainMs.join(' / '),
        String(u.backlogLatencyMs.p50),
      ]),
    [false, true, false, true, true, true, false, true, false, true],
  );
  return `${table}
`;
}

/** `markdown` with `body` (after the run's provenance) between two markers; undefined when they are missing. */
function replaceSection(markdown: string, doc: ReportDoc, startMarker: string, endMarker: string, body: string): string | undefined {
  const start = markdown.indexOf(startMarker);
  const end = markdown.indexOf(endMarker, start + startMarker.length);
  if (start < 0 || end < 0) return undefined;
  return `${markdown.slice(0, start + startMarker.length)}
${provenance(doc)}

${body}${markdown.slice(end)}`;
}

/** Rewrites docs/performance.md with `replace`, touching nothing else; false when there was nothing to write. */
function writePerformanceSection(docsDir: string | URL, replace: (markdown: string) => string | undefined): boolean {
  const md = join(typeof docsDir === 'string' ? docsDir : fileURLToPath(docsDir), 'performance.md');
  if (!existsSync(md)) return false;
  const updated = replace(readFileSync(md, 'utf8'));
  if (updated === undefined) return false;
  writeFileSync(md, updated);
  return true;
}

/** Replaces what is between the urgent markers; undefined when they are missing or the run had no urgent part. */
export function replaceUrgent(markdown: string, doc: ReportDoc): string | undefined {
  return doc.urgent ? replaceSection(markdown, doc, URGENT_START, URGENT_END, urgentMarkdown(doc.urgent)) : undefined;
}

/** Writes the --urgent table into docs/performance.md, touching nothing else; false when there was nothing to write. */
export function writeUrgentReport(doc: ReportDoc, docsDir: string | URL = new URL('../../docs/', import.meta.url)): boolean {
  return writePerformanceSection(docsDir, (md) => replaceUrgent(md, doc));
}

/** The --first-event part as markdown: the table docs/performance.md shows between the first-event markers. */
export function firstEventMarkdown(r: FirstEventResult): string {
  const table = mdTable(
    ['system', 'protection', 'backlog', 'rounds', 'first event p50 ms', 'first event max ms', 'first event, each round (ms)', 'credits per replica', 'backlog delivered in ms'],
    [[r.label, r.protection, String(r.backlogEvents), String(r.rounds), String(r.firstEventP50Ms), String(r.firstEventMaxMs), r.firstEventMs.join(' / '), String(r.creditsEvents), r.drainMs.join(' / ')]],
    [false, false, true, true, true, true, false, true, false],
  );
  return `${table}
`;
}

/** Replaces what is between the first-event markers; undefined when they are missing or the run had no first-event part. */
export function replaceFirstEvent(markdown: string, doc: ReportDoc): string | undefined {
  return doc.firstEvent ? replaceSection(markdown, doc, FIRST_EVENT_START, FIRST_EVENT_END, firstEventMarkdown(doc.firstEvent)) : undefined;
}

/** Writes the --first-event table into docs/performance.md, touching nothing else; false when there was nothing to write. */
export function writeFirstEventReport(doc: ReportDoc, docsDir: string | URL = new URL('../../docs/', import.meta.url)): boolean {
  return writePerformanceSection(docsDir, (md) => replaceFirstEvent(md, doc));
}

/**
 * Writes the deliver and publish charts into docs/ and, when docs/performance.md has the table
 * markers, the tables between them. `docsDir` is for tests; the default is the repo's docs/
 * (this file runs as dist/bench/report.js). Returns the chart paths.
 */
export function writeReport(doc: ReportDoc, docsDir: string | URL = new URL('../../docs/', import.meta.url)): string {
  const dir = typeof docsDir === 'string' ? docsDir : fileURLToPath(docsDir);
  const path = (name: string): string => join(dir, name);
  const deliverChart = path('performance-chart.svg');
  const publishChart = path('performance-publish-chart.svg');
  writeFileSync(deliverChart, chartSvg(doc.runs, 'deliver'));
  writeFileSync(publishChart, chartSvg(doc.runs, 'publish'));
  const md = path('performance.md');
  if (existsSync(md)) {
    const updated = replaceTable(readFileSync(md, 'utf8'), doc);
    if (updated !== undefined) writeFileSync(md, updated);
  }
  return `${deliverChart}, ${publishChart}`;
}
