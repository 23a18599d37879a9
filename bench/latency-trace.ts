// Every event's arrival and send time, for finding where a latency tail comes from: with
// FIT_BENCH_LATENCY_TRACE=DIR in the bench's environment, each subscriber keeps the pair (in
// µs of the monotonic clock every process shares) for each event of a phase and writes them to
// DIR/<pid>-<phase>.bin when the phase reports, phases numbered from 1 in the order they ran
// (the fixed-load phase is the last). `node dist/bench/stalls.js DIR/*.bin` groups the late
// events by when they were sent: late events that were sent together were held up together,
// by something every process shared (docs/performance.md, "Session 31").

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** 4 million events a phase (64 MiB): more are counted, not kept. */
const EVENTS_MAX = 4_000_000;

export class LatencyTrace {
  private pairs = new Float64Array(1 << 20);
  private n = 0;
  private phase = 0;
  /** Events past EVENTS_MAX in this phase. */
  missed = 0;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  record(arrivalNs: bigint, sentNs: bigint): void {
    if (this.n === this.pairs.length) {
      if (this.n >= 2 * EVENTS_MAX) {
        this.missed++;
        return;
      }
      const grown = new Float64Array(this.pairs.length * 2);
      grown.set(this.pairs);
      this.pairs = grown;
    }
    this.pairs[this.n++] = Number(arrivalNs / 1000n);
    this.pairs[this.n++] = Number(sentNs / 1000n);
  }

  /** A phase starts: what arrived since the last one reported is not part of it. */
  reset(): void {
    this.n = 0;
    this.missed = 0;
  }

  /** Writes this phase's pairs (the phase reports); returns the file. */
  flush(): string {
    const file = join(this.dir, `${process.pid}-${++this.phase}.bin`);
    writeFileSync(file, new Uint8Array(this.pairs.buffer, 0, this.n * 8));
    if (this.missed > 0) process.stderr.write(`latency trace: ${this.missed} events of phase ${this.phase} not kept (more than ${EVENTS_MAX})\n`);
    return file;
  }
}

/** The pairs of a file flush() wrote: arrival and sent µs, interleaved. */
export function readLatencyTrace(bytes: Buffer): Float64Array {
  return new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length - (bytes.length % 16)));
}
