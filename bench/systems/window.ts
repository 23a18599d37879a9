// A window of outstanding acknowledgements, the way an acked client is driven for throughput:
// keep up to `limit` publishes in flight, stop when the window is full, and resume once it has
// half drained. Resuming at half rather than at the first free slot keeps a half window still
// in flight (the pipe never runs dry) while waking the publish loop once per batch of acks
// instead of once per ack.

export class AckWindow {
  private inFlight = 0;
  private failure: Error | undefined;
  private waiters: { below: number; resolve(): void; reject(e: Error): void }[] = [];

  constructor(
    readonly limit: number,
    private readonly resumeAt = Math.floor(limit / 2),
  ) {}

  /** Counts one more publish in flight; false when the window is now full. */
  open(): boolean {
    this.inFlight++;
    return this.inFlight < this.limit;
  }

  /** One publish was acknowledged (or failed: then every waiter fails, and so does the run). */
  close(err?: unknown): void {
    this.inFlight--;
    if (err !== undefined && err !== null) this.fail(err instanceof Error ? err : new Error(String(err)));
    this.wake();
  }

  /** Counts a promise-returning publish in flight until it settles. */
  track(p: Promise<unknown>): boolean {
    p.then(
      () => this.close(),
      (e: unknown) => this.close(e ?? new Error('publish failed')),
    );
    return this.open();
  }

  fail(e: Error): void {
    this.failure ??= e;
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.reject(e);
  }

  /** Resolves once the window has room again. */
  room(): Promise<void> {
    return this.until(this.resumeAt);
  }

  /** Resolves once everything published so far was acknowledged. */
  idle(): Promise<void> {
    return this.until(0);
  }

  get outstanding(): number {
    return this.inFlight;
  }

  private until(below: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.inFlight <= below) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ below, resolve, reject }));
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.inFlight <= w.below) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }
}
