// What recording one latency costs a subscriber of the bench, with each histogram
// hdr-histogram-js offers: every system's subscribers record one value per event, so this is
// harness cost inside every run (bench/stamp.ts says which one the workers use, and why).
//
//   node dist/bench/hdr-cost.js [--values N]

import { parseArgs } from 'node:util';
import type { Histogram } from './stamp.js';
import { newHistogram, newRecordingHistogram } from './stamp.js';

const { values } = parseArgs({ options: { values: { type: 'string', default: '2000000' } } });
const N = Number(values.values);
// Latencies a saturation run records: 1 ms to 2 s, in microseconds.
const samples = Float64Array.from({ length: N }, () => 1000 + Math.floor(Math.random() * 2_000_000));

function nsPerValue(h: Histogram): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) h.recordValue(samples[i]!);
  const ns = Number(process.hrtime.bigint() - start) / N;
  h.destroy();
  return ns;
}

for (const [name, make] of [
  ['JavaScript (newHistogram)', newHistogram],
  ['WebAssembly (newRecordingHistogram)', newRecordingHistogram],
] as const) {
  nsPerValue(make()); // warm-up: compile and grow the counts array
  const runs = [nsPerValue(make()), nsPerValue(make()), nsPerValue(make())].sort((a, b) => a - b);
  console.log(`${name}: ${runs[1]!.toFixed(1)} ns per recorded value (median of 3 × ${N})`);
}
