// Where a latency tail comes from, from the traces FIT_BENCH_LATENCY_TRACE=DIR leaves
// (latency-trace.ts): the late events of each trace, grouped by when they were sent. A tail of
// events late one by one (each held up alone: a slow frame, a retry) gives many small groups; a
// stall of the whole pipeline gives few groups of hundreds, each sent within a few ms, and
// their rhythm (every ~0.54 s here, the VM's kdamond: docs/performance.md, "Session 31") names
// the suspect to look for in a system-wide profile. Several traces of one phase (one per
// subscriber) also say which stalls every subscriber saw: those were upstream of them.
//
//   FIT_BENCH_LATENCY_TRACE=/tmp/lt npm run bench -- --quick --peers none --fixed-ms 5000
//   node dist/bench/stalls.js [--over MS] [--join MS] /tmp/lt/<pid>-4.bin /tmp/lt/<pid>-4.bin

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readLatencyTrace } from './latency-trace.js';

export interface Stall {
  /** First and last send time of its late events, µs. */
  sentFrom: number;
  sentTo: number;
  events: number;
  maxAgeUs: number;
}

/** Late events (age over overUs), grouped: one joins a group if sent within joinUs of its last. */
export function stallsOf(pairs: Float64Array, overUs: number, joinUs: number): Stall[] {
  const late: [sent: number, age: number][] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const age = pairs[i]! - pairs[i + 1]!;
    if (age > overUs) late.push([pairs[i + 1]!, age]);
  }
  late.sort((a, b) => a[0] - b[0]);
  const stalls: Stall[] = [];
  for (const [sent, age] of late) {
    const last = stalls.at(-1);
    if (last && sent - last.sentTo <= joinUs) {
      last.sentTo = sent;
      last.events++;
      last.maxAgeUs = Math.max(last.maxAgeUs, age);
    } else stalls.push({ sentFrom: sent, sentTo: sent, events: 1, maxAgeUs: age });
  }
  return stalls;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { over: { type: 'string', default: '15' }, join: { type: 'string', default: '10' }, big: { type: 'string', default: '20' } },
  });
  const overUs = Number(values.over) * 1000;
  const joinUs = Number(values.join) * 1000;
  const big = Number(values.big);
  if (positionals.length === 0 || !(overUs > 0) || !(joinUs > 0) || !(big >= 1)) {
    console.error('usage: node dist/bench/stalls.js [--over MS (15)] [--join MS (10)] [--big EVENTS (20)] TRACE.bin...   (traces from FIT_BENCH_LATENCY_TRACE=DIR)');
    process.exit(2);
  }
  const traces = positionals.map((file) => ({ file, pairs: readLatencyTrace(readFileSync(file)) }));
  const bigStalls = traces.map((t) => stallsOf(t.pairs, overUs, joinUs).filter((s) => s.events >= big));
  traces.forEach(({ file, pairs }, ti) => {
    const ages: number[] = [];
    for (let i = 0; i + 1 < pairs.length; i += 2) ages.push(pairs[i]! - pairs[i + 1]!);
    ages.sort((a, b) => a - b);
    const all = stallsOf(pairs, overUs, joinUs);
    const late = all.reduce((n, s) => n + s.events, 0);
    const stalls = bigStalls[ti]!;
    const inStalls = stalls.reduce((n, s) => n + s.events, 0);
    const t0 = pairs[1] ?? 0;
    const ms = (us: number): string => (us / 1000).toFixed(1);
    console.log(`${file}: ${ages.length} events, age p50 ${ms(quantile(ages, 0.5))} p99 ${ms(quantile(ages, 0.99))} max ${ms(ages.at(-1) ?? 0)} ms`);
    console.log(`  late (over ${values.over} ms): ${late} (${((100 * late) / Math.max(1, ages.length)).toFixed(2)} %), ${((100 * inStalls) / Math.max(1, late)).toFixed(0)} % of them in ${stalls.length} stalls of ${big} or more sent together`);
    const gaps = stalls.slice(1).map((s, i) => s.sentFrom - stalls[i]!.sentFrom).sort((a, b) => a - b);
    if (gaps.length > 0) console.log(`  one stall every ${ms(quantile(gaps, 0.5))} ms (median; quartiles ${ms(quantile(gaps, 0.25))}-${ms(quantile(gaps, 0.75))})`);
    for (const s of stalls.slice(0, 30)) {
      const seen = bigStalls.filter((other) => other.some((o) => o.sentFrom <= s.sentTo + joinUs && s.sentFrom <= o.sentTo + joinUs)).length;
      console.log(`  sent at +${ms(s.sentFrom - t0)} ms over ${ms(s.sentTo - s.sentFrom)} ms: ${s.events} late, up to ${ms(s.maxAgeUs)} ms${traces.length > 1 ? `; ${seen} of ${traces.length} traces` : ''}`);
    }
  });
}

if (import.meta.url === `file://${process.argv[1]}`) main();
