// End-to-end latency clock shared by every system: the publisher writes the monotonic clock
// (process.hrtime, CLOCK_MONOTONIC on Linux, the same in every process on one machine) into
// the first 8 bytes of the payload, and the subscriber subtracts it on arrival. Histograms are
// HDR (hdr-histogram-js) in microseconds, sent to the harness compressed and merged there.
// A subscriber records one value per event, so recording must cost next to nothing: the
// library's JavaScript histogram spends ~175 ns a value (Math.pow and Math.log2 per call, 1–2 %
// of the whole machine in a bft run, in the subscribers every system's run waits on), its
// WebAssembly one ~25 ns (`node dist/bench/hdr-cost.js`). Every system's subscribers use the
// same one, so the harness costs them all the same, and less.

import * as hdr from 'hdr-histogram-js';

export const STAMP_BYTES = 8;
/** The byte after the stamp of an urgent event's payload (the --urgent part): the subscriber times those apart. */
export const URGENT_MARK = 0x55;

export function payloadTemplate(size: number): Buffer {
  return Buffer.alloc(Math.max(size, STAMP_BYTES), 0x61);
}

/**
 * A new payload stamped with the send time. New for every event, for every system: some
 * clients keep a reference to the bytes until they flush, and a reused buffer would be
 * restamped under them and make their latency look better than it is.
 */
export function stamped(template: Buffer): Buffer {
  const b = Buffer.allocUnsafe(template.length);
  template.copy(b, STAMP_BYTES, STAMP_BYTES);
  b.writeBigUInt64LE(process.hrtime.bigint(), 0);
  return b;
}

export function ageMicros(payload: Buffer, nowNs: bigint): number {
  return Number((nowNs - payload.readBigUInt64LE(0)) / 1000n);
}

export type Histogram = hdr.Histogram;

// One hour in microseconds is far beyond any run; three significant digits.
const HISTOGRAM = { lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 } as const;

/** A histogram for merging and reading (the harness). */
export function newHistogram(): Histogram {
  return hdr.build(HISTOGRAM);
}

let wasmReady = false;

/** A histogram to record into, one value per event (a subscriber); destroy() it when replaced. */
export function newRecordingHistogram(): Histogram {
  if (!wasmReady) {
    hdr.initWebAssemblySync();
    wasmReady = true;
  }
  return hdr.build({ ...HISTOGRAM, useWebAssembly: true });
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

export function mergeHistograms(encoded: string[]): Histogram {
  const total = newHistogram();
  for (const e of encoded) total.add(hdr.decodeFromCompressedBase64(e));
  return total;
}

export interface LatencyMs {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  count: number;
}

export function latencyMs(h: Histogram): LatencyMs {
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    count: h.totalCount,
  };
}
