// How long the JS thread is kept from its event loop while a store works: a replica's sockets,
// timers and consensus share that thread, so a store that commits on it (better-sqlite3) or
// makes it do much per write delays everything else. Measured as the lateness of a 1 ms timer
// chain (perf_hooks.monitorEventLoopDelay recorded no samples at all in some runs here, so
// the bench keeps its own, simpler sampler).

export class StallSampler {
  private readonly lateMs: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private due = 0;

  start(): void {
    const tick = (): void => {
      const now = performance.now();
      this.lateMs.push(Math.max(0, now - this.due));
      this.due = now + 1;
      this.timer = setTimeout(tick, 1);
    };
    this.due = performance.now() + 1;
    this.timer = setTimeout(tick, 1);
  }

  /** Stops sampling; the 99th percentile and the largest lateness, in ms. */
  stop(): { p99: number; max: number } {
    clearTimeout(this.timer);
    const s = this.lateMs.sort((a, b) => a - b);
    if (s.length === 0) return { p99: NaN, max: NaN };
    return { p99: s[Math.min(s.length - 1, Math.floor(0.99 * s.length))]!, max: s[s.length - 1]! };
  }
}
