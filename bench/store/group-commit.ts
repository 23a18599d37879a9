// Group commit done by the application, for stores whose API commits one batch per call
// (better-sqlite3, classic-level): the batches that callers submit while a commit is running
// (or within the same event-loop turn) are written together in the next commit, and every
// caller's promise resolves after that one commit (and its one fsync) returns. This is what
// lmdb-js does inside the package (writes of one event turn share one transaction).
//
// The next commit always starts from setImmediate, never straight from the previous commit's
// completion: the callers woken by a commit need a turn to submit their next batch, or each
// commit would carry one batch and the grouping would be lost.

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class GroupCommit<Op> {
  private ops: Op[] = [];
  private waiters: Waiter[] = [];
  /** Lazy writes by key (a subscriber's position): only the last one per key is written. */
  private lazy = new Map<string, Op>();
  private running = false;
  private scheduled = false;
  private failure: unknown;
  /** Commits done and batches carried: the mean batches per commit says how well grouping works. */
  commits = 0;
  batches = 0;

  constructor(private readonly commit: (ops: Op[]) => Promise<void> | void) {}

  /** Resolves once ops are committed (durable if commit() syncs). */
  submit(ops: Op[]): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      for (const op of ops) this.ops.push(op);
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /** Written with the next commit; nobody waits for it. */
  submitLazy(key: string, op: Op): void {
    this.lazy.set(key, op);
    this.schedule();
  }

  /** Resolves once nothing is queued or running. */
  async drain(): Promise<void> {
    while (this.running || this.scheduled || this.ops.length > 0 || this.lazy.size > 0) await new Promise((r) => setImmediate(r));
    if (this.failure !== undefined) throw this.failure;
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => void this.run());
  }

  private async run(): Promise<void> {
    this.scheduled = false;
    const ops = this.ops;
    const waiters = this.waiters;
    for (const op of this.lazy.values()) ops.push(op);
    this.ops = [];
    this.waiters = [];
    this.lazy = new Map();
    if (ops.length === 0) return;
    this.running = true;
    try {
      await this.commit(ops);
      this.commits++;
      this.batches += waiters.length;
      for (const w of waiters) w.resolve();
    } catch (e) {
      // A failed commit leaves the store in a state the caller must not build on.
      this.failure = e;
      for (const w of waiters) w.reject(e);
    } finally {
      this.running = false;
      if (this.ops.length > 0 || this.lazy.size > 0) this.schedule();
    }
  }
}
