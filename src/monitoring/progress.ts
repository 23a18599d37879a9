// Splits a traced target's wall time into its own compute and the time it was stopped for
// monitoring, for back ends that cannot time each stop (ptrace). Two ways, best first:
//
// - By progress. While nothing is traced the target computes all the time it runs (the
//   estimator's CPU-bound assumption, docs/prediction.md), so its calls per ns of wall time
//   then are its calls per ns of compute: its rate. While traced, the calls it makes measure
//   the work it did: compute = calls / rate, stopped = the rest of the wall time. Nothing here
//   depends on what one stop costs, which varies with the workload (a read whose buffer strace
//   prints costs several times a dd's one-byte read), so stops × a calibrated cost would be off
//   by as much; and when stops dominate (a target stopped 90 % of the time), wall − stops ×
//   cost is hyperbolic in that cost, while calls / rate is not.
// - By cost, when no rate is known yet (tracing from the target's first instruction, or no
//   in-kernel counter): stopped = stops × the calibrated cost of one.
//
// The rate is that of the last untraced stretch of at least RATE_BASIS_MIN_NS (the previous
// one is kept until a new one is long enough). Where the target's calls per unit of work change
// while it is traced, the split by progress is off by that change; the docs say so.

/** An untraced stretch shorter than this gives no rate (too few calls to count on). */
export const RATE_BASIS_MIN_NS = 300e6;

export class ProgressSplit {
  private compute = 0;
  private stopped = 0;
  private last: { atNs: number; calls: number | null; traps: number } | undefined;
  private stretch = { wallNs: 0, calls: 0 };
  private rate: number | null = null;

  /**
   * @param perStopNs the calibrated cost of one stop, for the split by cost.
   * @param rate a rate measured before (calls per ns of compute), until an untraced stretch gives one.
   */
  constructor(
    private readonly perStopNs: number,
    rate: number | null = null,
  ) {
    this.rate = rate;
  }

  get computeNs(): number {
    return this.compute;
  }

  get stoppedNs(): number {
    return this.stopped;
  }

  /** Calls per ns of compute from the last untraced stretch; null while none was long enough. */
  get callsPerComputeNs(): number | null {
    return this.rate;
  }

  /**
   * Accounts the wall time since the previous sample, which the target spent traced or not.
   * `calls` is the in-kernel count of all its calls (null without a counter); `traps` the stops
   * the tracer saw. Both are cumulative.
   */
  sample(atNs: number, calls: number | null, traps: number, traced: boolean): void {
    const last = this.last;
    this.last = { atNs, calls, traps };
    if (last === undefined) return;
    const wall = Math.max(0, atNs - last.atNs);
    const dCalls = calls === null || last.calls === null ? null : Math.max(0, calls - last.calls);
    if (!traced) {
      this.compute += wall;
      if (dCalls !== null) {
        this.stretch.wallNs += wall;
        this.stretch.calls += dCalls;
        if (this.stretch.wallNs >= RATE_BASIS_MIN_NS) this.rate = this.stretch.calls / this.stretch.wallNs;
      }
      return;
    }
    // The next untraced stretch starts afresh; the last one's rate stands until then.
    this.stretch = { wallNs: 0, calls: 0 };
    const byProgress = this.rate !== null && this.rate > 0 && dCalls !== null ? dCalls / this.rate : null;
    const compute = Math.min(wall, Math.max(0, byProgress ?? wall - (traps - last.traps) * this.perStopNs));
    this.compute += compute;
    this.stopped += wall - compute;
  }
}
