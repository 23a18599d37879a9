// A subscribe session's push stream: drains the client's output queue to one connection as
// EVENTS frames, never more than the credits the subscriber granted, and pauses while the
// socket is backed up. That is the flow control that keeps a slow console from growing a
// replica's memory: what it cannot take stays in the bounded queue.

import type { ClientQueue, OrderedLog, QueueSession } from '../broker/index.js';
import { EventsWriter, FramePool, ORDERED_HEADER_BYTES, ORDERED_KIND, type RecordSink } from '../codec/index.js';
import type { Connection } from '../net/index.js';
import { tamperRecord, type Fault } from './faults.js';

/** An EVENTS frame is sent once it reaches this size, and never grows past it but for one record, so frames stay well under frameBytesMax. */
export const PUSH_FRAME_BYTES = 256 * 1024;

/**
 * Runs every push stream that has something to send in one pass of the event loop, and sends
 * what the streams of one connection produced in that pass as one EVENTS frame (a section per
 * stream): a subscriber of fifty channels gets one frame per pass instead of fifty, and at a
 * modest rate, where each stream has one or two events per pass, per-frame costs stop being
 * per-event costs on both sides.
 */
export class PushScheduler {
  /**
   * Streams to flush in the next pass; a stream is added once (its `scheduled` flag), so an
   * array does. Two arrays swapped per pass, not a Set: a cleared Set gives its table back and
   * grew it again for every pass's hundred streams (13 % of the replica path at a paced load).
   */
  private due: PushStream[] = [];
  private flushing: PushStream[] = [];
  /**
   * Each connection's frame builder, kept from pass to pass (a new one per pass grew its arrays
   * from empty every 2 ms), and those that have something in this pass.
   */
  private readonly builders = new WeakMap<Connection, ConnectionFrames>();
  private touched: ConnectionFrames[] = [];
  /** Where frames are built, and come back to once written (FramePool): a frame is at most PUSH_FRAME_BYTES and one record. */
  readonly pool = new FramePool(PUSH_FRAME_BYTES + 64 * 1024, 32);
  private armed = false;
  private lastRunMs = -Infinity;

  constructor(
    private readonly faults: readonly Fault[],
    /** limits.pushLingerMs: at a steady rate, every message costs both ends a wakeup (~45 µs of CPU each on our test machines), so fewer, larger frames. */
    private readonly lingerMs: number,
  ) {}

  add(s: PushStream): void {
    this.due.push(s);
    if (this.armed) return;
    this.armed = true;
    const wait = this.lastRunMs + this.lingerMs - performance.now();
    if (wait <= 0) setImmediate(this.run);
    else setTimeout(this.run, wait);
  }

  /** Runs the pass now if one is due, instead of after the linger (a replica shutting down). */
  flushNow(): void {
    if (this.armed) this.run();
  }

  /**
   * This pass's frame for `conn`, which streams add their sections to record by record. It is
   * sent once it is big enough, and at the end of the pass.
   */
  framesFor(conn: Connection): ConnectionFrames {
    let f = this.builders.get(conn);
    if (!f) this.builders.set(conn, (f = new ConnectionFrames(new EventsWriter(this.pool), (frame) => this.send(conn, frame))));
    if (!f.touched) {
      f.touched = true;
      this.touched.push(f);
    }
    return f;
  }

  private readonly run = (): void => {
    this.armed = false;
    this.lastRunMs = performance.now();
    // Streams flushed now may schedule themselves again (slow start): they go in the next pass.
    const streams = this.due;
    this.due = this.flushing;
    for (let i = 0; i < streams.length; i++) streams[i]!.flush();
    streams.length = 0;
    this.flushing = streams;
    const touched = this.touched;
    this.touched = [];
    for (const f of touched) {
      f.touched = false;
      const frame = f.w.take();
      if (frame) f.send(frame);
    }
  };

  send(conn: Connection, frame: Buffer): void {
    // A frame goes back to the pool once written, and only when it was sent once, at once
    // (connections here are net or TLS sockets: see Connection.send).
    if (this.faults.length === 0) return conn.send(frame, () => this.pool.release(frame));
    const delay = this.faults.find((f) => f.kind === 'delay');
    const copies = this.faults.some((f) => f.kind === 'duplicate') ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (delay && delay.kind === 'delay') setTimeout(() => conn.send(frame), delay.ms);
      else conn.send(frame);
    }
  }
}

/**
 * One pass's EVENTS frame for one connection, which a frame never grows past
 * PUSH_FRAME_BYTES but for one record (a record bigger than that goes in a frame of its own):
 * a section that would take it past goes on in the next frame. One section per take was once
 * one frame per take: 1,024 events of 16 KiB made a 16 MiB frame, which the subscriber
 * refuses as over frameBytesMax, reconnects, and is sent again, forever.
 */
export class ConnectionFrames implements RecordSink {
  /** In this pass's list of builders to send (PushScheduler). */
  touched = false;

  constructor(
    readonly w: EventsWriter,
    readonly send: (frame: Buffer) => void,
  ) {}

  begin(streamId: number, firstPos: number): void {
    this.w.begin(streamId, firstPos);
  }

  record(buf: Buffer, at: number, len: number): void {
    const w = this.w;
    // A frame counts its sections in a u16 too.
    if (w.records > 0 && (w.bytes + len > PUSH_FRAME_BYTES || w.sections === 0xffff)) this.send(w.take()!);
    w.record(buf, at, len);
  }

  /** Ends the section; a frame that reached PUSH_FRAME_BYTES leaves now. */
  end(): void {
    const w = this.w;
    w.end();
    if (w.bytes >= PUSH_FRAME_BYTES) this.send(w.take()!);
  }
}

export interface PushContext {
  scheduler: PushScheduler;
  pushBatchEventsMax: number;
  /** Unacknowledged events a session may hold before the oldest are forgotten (not re-queued). */
  inflightEventsMax: number;
  nowMs(): number;
  faults: readonly Fault[];
}

/**
 * What a push stream drains: a client's queue (unordered channels), or an ordered channel's
 * log from a position on. Positions count what this session was sent, from 0.
 */
export interface PushSource {
  /** The queue or log, by which the server finds the streams to wake when events arrive. */
  readonly key: object;
  /** The position the next entry taken will have. */
  readonly nextPos: number;
  /** Hands up to `max` entries to `sink`, the next at position nextPos; returns how many. */
  takeInto(max: number, nowMs: number, sink: RecordSink): number;
  /** Unacknowledged entries this session holds. */
  inflight(): number;
  /** Everything up to and including `pos` was acknowledged. */
  ack(pos: number): void;
  detach(): void;
}

export class QueueSource implements PushSource {
  private readonly qs: QueueSession;

  constructor(private readonly queue: ClientQueue) {
    this.qs = queue.attach();
  }

  get key(): object {
    return this.queue;
  }

  get nextPos(): number {
    return this.qs.nextPos;
  }

  takeInto(max: number, nowMs: number, sink: RecordSink): number {
    return this.queue.takeInto(this.qs, max, nowMs, sink);
  }

  inflight(): number {
    return this.queue.inflightOf(this.qs);
  }

  ack(pos: number): void {
    this.queue.ack(this.qs, pos);
  }

  detach(): void {
    this.queue.detach(this.qs);
  }
}

/**
 * A session reading an ordered channel's log from a seq on. Acknowledgements move the client's
 * position in the log, so its next session resumes after what this one had resolved; what was
 * sent and not acknowledged is simply read again (the log keeps it), not requeued.
 */
export class LogSource implements PushSource {
  nextPos = 0;
  private nextSeq: number;
  /** The seq sent at each unacknowledged position, from position ackedPos + 1. */
  private readonly sentSeqs: number[] = [];
  private ackedPos = -1;

  constructor(
    private readonly log: OrderedLog,
    private readonly client: string,
    fromSeq: number,
  ) {
    this.nextSeq = fromSeq;
  }

  get key(): object {
    return this.log;
  }

  takeInto(max: number, nowMs: number, sink: RecordSink): number {
    this.log.expire(nowMs);
    const out = this.log.read(this.nextSeq, max);
    for (const e of out) {
      sink.record(e.buf, e.at, e.len, 0, 0);
      this.sentSeqs.push(e.seq);
    }
    this.log.countSent(this.client, out.length);
    if (out.length > 0) this.nextSeq = out[out.length - 1]!.seq + 1;
    this.nextPos += out.length;
    return out.length;
  }

  inflight(): number {
    return this.sentSeqs.length;
  }

  ack(pos: number): void {
    const drop = Math.min(this.sentSeqs.length, pos - this.ackedPos);
    if (drop <= 0) return;
    const seq = this.sentSeqs[drop - 1]!;
    this.sentSeqs.splice(0, drop);
    this.ackedPos += drop;
    this.log.ack(this.client, seq);
  }

  detach(): void {}
}

/**
 * Events a new session is sent in its first push pass that sends any; each later one may send
 * four times as many as the one before, until its credits are the only bound (a slow start).
 * A console that connects to replicas holding a backlog for it then gets its first events as
 * soon as f+1 replicas have framed a few hundred, not once each has framed its whole credit
 * window (8,192 events: 18 to 60 ms per replica on a shared 2-core machine before the first
 * byte left, since a pass's frames leave together) and the subscriber has voted on each
 * replica's whole window before reading the next replica's first frame.
 */
export const SESSION_FIRST_PASS_EVENTS = 256;
const SESSION_PASS_GROWTH = 4;

export class PushStream {
  credits: number;
  /** Events this session may be sent in one pass while it ramps up (slow start); then Infinity. */
  private passEventsMax = SESSION_FIRST_PASS_EVENTS;
  private scheduled = false;
  private closed = false;
  /** Test-only faults, looked at once: flush() runs per stream per pass. */
  private readonly muted: boolean;
  private readonly alters: boolean;

  constructor(
    readonly id: number,
    readonly channel: string,
    readonly client: string,
    readonly source: PushSource,
    private readonly conn: Connection,
    credits: number,
    private readonly salt: number,
    private readonly ctx: PushContext,
  ) {
    this.credits = credits;
    this.muted = ctx.faults.some((f) => f.kind === 'mute');
    this.alters = ctx.faults.some((f) => f.kind === 'tamper' || f.kind === 'equivocate');
  }

  grant(credits: number, ackedPos: number): void {
    this.credits += credits;
    this.source.ack(ackedPos);
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
    this.source.detach();
  }

  /** Hands the scheduler what credits allow; called by the scheduler. */
  flush(): void {
    this.scheduled = false;
    if (this.closed || this.muted) return;
    const now = this.ctx.nowMs();
    let passLeft = this.passEventsMax;
    while (this.credits > 0 && this.conn.writable) {
      if (passLeft === 0) {
        // Ramping up: the rest goes in the next pass, after this one's frames left.
        this.schedule();
        break;
      }
      const max = Math.min(this.credits, this.ctx.pushBatchEventsMax, passLeft);
      const frames = this.ctx.scheduler.framesFor(this.conn);
      frames.begin(this.id, this.source.nextPos);
      const n = this.source.takeInto(max, now, this.alters ? this.altering(frames) : frames);
      frames.end();
      if (n === 0) break;
      passLeft -= n;
      this.credits -= n;
      const over = this.source.inflight() - this.ctx.inflightEventsMax;
      if (over > 0) this.source.ack(this.source.nextPos - this.ctx.inflightEventsMax - 1);
      // Fewer than asked for: the queue has nothing more for this session now.
      if (n < max) break;
    }
    if (passLeft < this.passEventsMax && this.passEventsMax !== Infinity) {
      this.passEventsMax *= SESSION_PASS_GROWTH;
      if (this.passEventsMax >= this.credits) this.passEventsMax = Infinity;
    }
    if (!this.conn.writable && !this.conn.isClosed) this.conn.whenDrained(() => this.schedule());
  }

  /** `frames` behind what a faulty replica does to each record (tests' faults only). */
  private altering(frames: ConnectionFrames): RecordSink {
    return {
      record: (buf, at, len) => {
        const rec = this.transform(buf.subarray(at, at + len));
        frames.record(rec, 0, rec.length);
      },
    };
  }

  private transform(rec: Buffer): Buffer {
    // An ordered event: alter the record inside the envelope, keep the envelope readable.
    if (rec[4] === ORDERED_KIND) return Buffer.concat([rec.subarray(0, ORDERED_HEADER_BYTES), this.transform(rec.subarray(ORDERED_HEADER_BYTES))]);
    for (const f of this.ctx.faults) {
      if (f.kind === 'tamper') return tamperRecord(rec, 0x5a);
      if (f.kind === 'equivocate') return tamperRecord(rec, this.salt);
    }
    return rec;
  }
}
