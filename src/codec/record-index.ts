// What a RecordCursor found in each record of a frame, kept in columns: a replica checks every
// record of a PUBLISH frame before it queues any (all or nothing), and then routes them. It
// parsed each record twice, once per pass (the cursor was 16 % of the replica path's
// profile); now the check writes down what the routing needs. Written by hand: a handful of
// typed arrays that grow, read by index on the hot path.

import { grown } from '../core/index.js';
import type { Priority } from '../core/index.js';
import type { RecordCursor } from './record.js';

const INITIAL_RECORDS = 1024;

export class RecordIndex {
  /** Records noted since the last clear(). */
  length = 0;
  /** Where each record lies, [start, end), in the buffer the cursor walked. */
  start = new Int32Array(INITIAL_RECORDS);
  end = new Int32Array(INITIAL_RECORDS);
  /** Where its publishing process's identity (publisher and epoch) ends; it starts at start + 8. */
  streamTo = new Int32Array(INITIAL_RECORDS);
  seq = new Float64Array(INITIAL_RECORDS);
  timestampMs = new Float64Array(INITIAL_RECORDS);
  priority = new Uint8Array(INITIAL_RECORDS);

  clear(): void {
    this.length = 0;
  }

  /** Notes the record `cursor` is at. */
  note(cursor: RecordCursor): void {
    const i = this.length++;
    if (i === this.start.length) this.grow(2 * i);
    this.start[i] = cursor.start;
    this.end[i] = cursor.end;
    this.streamTo[i] = cursor.streamTo;
    this.seq[i] = cursor.seq;
    this.timestampMs[i] = cursor.timestampMs;
    this.priority[i] = cursor.priority;
  }

  priorityAt(i: number): Priority {
    return this.priority[i]! as Priority;
  }

  private grow(capacity: number): void {
    this.start = grown(this.start, capacity);
    this.end = grown(this.end, capacity);
    this.streamTo = grown(this.streamTo, capacity);
    this.seq = grown(this.seq, capacity);
    this.timestampMs = grown(this.timestampMs, capacity);
    this.priority = grown(this.priority, capacity);
  }
}
