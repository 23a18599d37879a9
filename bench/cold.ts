// Caches as a process finds them when it wakes on a shared machine: between two wakeups of a
// replica or subscriber at a paced load, eight other processes ran on the same two cores. The
// path benches' --cold-kb writes over that much memory between rounds (or frames) and times
// the path alone, so that a change in how many cache lines the path touches per event shows
// up on one process (docs/performance.md, session 29).

/** A function that writes over `kb` KiB (one byte per cache line), or nothing for 0. */
export function evictor(kb: number): () => void {
  const buf = Buffer.alloc(kb * 1024);
  return () => {
    for (let o = 0; o < buf.length; o += 64) buf[o]!++;
  };
}

/** Sums the wall time of the calls it times, in ns. */
export class PathClock {
  ns = 0n;

  time(f: () => void): void {
    const t = process.hrtime.bigint();
    f();
    this.ns += process.hrtime.bigint() - t;
  }
}
