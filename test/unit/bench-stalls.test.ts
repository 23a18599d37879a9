// bench/stalls.ts: late events sent close together are one stall; late events alone are not
// made into one; the latency trace's file format reads back what was recorded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stallsOf } from '../../bench/stalls.js';
import { LatencyTrace, readLatencyTrace } from '../../bench/latency-trace.js';

/** One event a ms for a second, 2 ms late, but those sent in [500, 520) ms are 30 ms late, and one alone at 800 ms. */
function pairs(): Float64Array {
  const out: number[] = [];
  for (let ms = 0; ms < 1000; ms++) {
    const sentUs = 1e9 + ms * 1000;
    const ageUs = ms >= 500 && ms < 520 ? 30_000 : ms === 800 ? 40_000 : 2000;
    out.push(sentUs + ageUs, sentUs);
  }
  return Float64Array.from(out);
}

test('stallsOf groups late events by when they were sent', () => {
  const stalls = stallsOf(pairs(), 15_000, 10_000);
  assert.deepEqual(stalls, [
    { sentFrom: 1e9 + 500_000, sentTo: 1e9 + 519_000, events: 20, maxAgeUs: 30_000 },
    { sentFrom: 1e9 + 800_000, sentTo: 1e9 + 800_000, events: 1, maxAgeUs: 40_000 },
  ]);
  assert.deepEqual(stallsOf(pairs(), 50_000, 10_000), [], 'nothing over 50 ms');
  assert.equal(stallsOf(pairs(), 15_000, 100).length, 21, 'sent 1 ms apart, joined only within 0.1 ms: each its own');
});

test('a latency trace file reads back as (arrival, sent) µs pairs, one phase a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fit-trace-'));
  try {
    const t = new LatencyTrace(dir);
    t.record(5_000_000n, 1_000_000n);
    t.flush();
    t.reset();
    t.record(9_000_000n, 8_000_000n);
    t.record(9_500_000n, 8_500_000n);
    const second = t.flush();
    assert.deepEqual([...readLatencyTrace(readFileSync(join(dir, `${process.pid}-1.bin`)))], [5000, 1000]);
    assert.deepEqual([...readLatencyTrace(readFileSync(second))], [9000, 8000, 9500, 8500]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
