// A subscribe session's push stream: drains the client's output queue to one connection as
// EVENTS frames, never more than the credits the subscriber granted, and pauses while the
// socket is backed up. That is the flow control that keeps a slow console from growing a
// replica's memory: what it cannot take stays in the bounded queue.

import type { ClientQueue, QueueSession } from '../broker/index.js';
import { encodeEvents } from '../codec/index.js';
import type { Connection } from '../net/index.js';
import { tamperRecord, type Fault } from './faults.js';

/**
 * Runs every push stream that has something to send in one pass of the event loop, so the
 * frames of fifty channels leave in one write per connection (Connection corks until the
 * pass ends) instead of one setImmediate and one syscall per stream.
 */
export class PushScheduler {
  private readonly due = new Set<PushStream>();
  private armed = false;

  add(s: PushStream): void {
    this.due.add(s);
    if (this.armed) return;
    this.armed = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.armed = false;
    const streams = [...this.due];
    this.due.clear();
    for (const s of streams) s.flush();
  };
}

export interface PushContext {
  scheduler: PushScheduler;
  pushBatchEventsMax: number;
  /** Unacknowledged events a session may hold before the oldest are forgotten (not re-queued). */
  inflightEventsMax: number;
  nowMs(): number;
  faults: readonly Fault[];
}

export class PushStream {
  credits: number;
  private scheduled = false;
  private closed = false;

  constructor(
    readonly id: number,
    readonly channel: string,
    readonly client: string,
    private readonly queue: ClientQueue,
    private readonly qs: QueueSession,
    private readonly conn: Connection,
    credits: number,
    private readonly salt: number,
    private readonly ctx: PushContext,
  ) {
    this.credits = credits;
  }

  grant(credits: number, ackedPos: number): void {
    this.credits += credits;
    this.queue.ack(this.qs, ackedPos);
    this.schedule();
  }

  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    this.ctx.scheduler.add(this);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.detach(this.qs);
  }

  /** Sends what credits allow; called by the scheduler. */
  flush(): void {
    this.scheduled = false;
    if (this.closed || this.ctx.faults.some((f) => f.kind === 'mute')) return;
    const now = this.ctx.nowMs();
    while (this.credits > 0 && this.conn.writable) {
      const entries = this.queue.take(this.qs, Math.min(this.credits, this.ctx.pushBatchEventsMax), now);
      if (entries.length === 0) break;
      this.credits -= entries.length;
      const firstPos = this.qs.nextPos - entries.length;
      let bytes = 0;
      const recs = entries.map((e) => {
        const rec = this.transform(e.rec);
        bytes += rec.length;
        return rec;
      });
      this.send(encodeEvents(this.id, firstPos, recs, bytes));
      const over = this.queue.inflightOf(this.qs) - this.ctx.inflightEventsMax;
      if (over > 0) this.queue.ack(this.qs, this.qs.nextPos - this.ctx.inflightEventsMax - 1);
    }
    if (!this.conn.writable && !this.conn.isClosed) this.conn.whenDrained(() => this.schedule());
  }

  private transform(rec: Buffer): Buffer {
    for (const f of this.ctx.faults) {
      if (f.kind === 'tamper') return tamperRecord(rec, 0x5a);
      if (f.kind === 'equivocate') return tamperRecord(rec, this.salt);
    }
    return rec;
  }

  private send(frame: Buffer): void {
    const delay = this.ctx.faults.find((f) => f.kind === 'delay');
    const copies = this.ctx.faults.some((f) => f.kind === 'duplicate') ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (delay && delay.kind === 'delay') setTimeout(() => this.conn.send(frame), delay.ms);
      else this.conn.send(frame);
    }
  }
}
