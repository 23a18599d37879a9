// The frames a replica pushes (src/replica/push.ts):
//
// - however large the events a stream takes at once, no EVENTS frame passes PUSH_FRAME_BYTES
//   but for a single record bigger than that, and the sections still number every record of
//   the stream, in order, from where it started (a take of 1,024 events of 16 KiB made one
//   16 MiB frame, over frameBytesMax: the subscriber refused it, reconnected, and was sent it
//   again, forever);
// - a new session is sent SESSION_FIRST_PASS_EVENTS in its first pass, four times as many in
//   each next one, then what its credits allow: a console that connects to a backlog gets
//   its first events without every replica framing its whole credit window first (counted
//   here per pass; what it does to latency is measured, not asserted: docs/performance.md).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeEvents, type RecordSink } from '../../src/codec/index.js';
import type { Connection } from '../../src/net/index.js';
import { PUSH_FRAME_BYTES, PushScheduler, PushStream, SESSION_FIRST_PASS_EVENTS, type PushSource } from '../../src/replica/push.js';
import { assertProperty } from '../helpers/property.js';

/** What PushScheduler and PushStream use of a Connection: a socket that always takes more. */
function fakeConnection(): { conn: Connection; frames: Buffer[] } {
  const frames: Buffer[] = [];
  const conn = { send: (b: Buffer) => frames.push(b), writable: true, isClosed: false, whenDrained: () => undefined };
  return { conn: conn as unknown as Connection, frames };
}

/**
 * A socket that writes frames when told: `write(k)` copies the oldest k frames out, as the
 * kernel taking them, and runs their `written`. A frame built in memory the pool handed out
 * again before its write would be copied out changed.
 */
function writingConnection(): { conn: Connection; frames: Buffer[]; write(k: number): void } {
  const frames: Buffer[] = [];
  const queued: { b: Buffer; written?: () => void }[] = [];
  const send = (b: Buffer, written?: () => void): void => void queued.push({ b, written });
  const write = (k: number): void => {
    for (const { b, written } of queued.splice(0, k)) {
      frames.push(Buffer.from(b));
      written?.();
    }
  };
  return { conn: { send, writable: true, isClosed: false, whenDrained: () => undefined } as unknown as Connection, frames, write };
}

/** A client queue holding `count` small events, as QueueSource drains one. */
class BacklogSource implements PushSource {
  readonly key = {};
  nextPos = 0;
  private acked = -1;

  /** Events queued in all, taken or not: a test may add more. */
  constructor(public count: number) {}

  takeInto(max: number, _nowMs: number, sink: RecordSink): number {
    const n = Math.min(max, this.count - this.nextPos);
    for (let i = 0; i < n; i++) sink.record(record(this.nextPos + i, 64), 0, 64, 0, 0);
    this.nextPos += n;
    return n;
  }

  inflight(): number {
    return this.nextPos - this.acked - 1;
  }

  ack(pos: number): void {
    this.acked = Math.max(this.acked, pos);
  }

  detach(): void {}
}

/** What a PushStream does with one take: a section of `records` in this pass's frame for `conn`. */
function pushTake(s: PushScheduler, conn: Connection, streamId: number, firstPos: number, records: readonly Buffer[]): void {
  const frames = s.framesFor(conn);
  frames.begin(streamId, firstPos);
  for (const r of records) frames.record(r, 0, r.length);
  frames.end();
}

function eventsIn(frames: readonly Buffer[]): number {
  let n = 0;
  for (const f of frames) for (const sec of decodeEvents(f.subarray(4))) n += sec.count;
  return n;
}

/** Runs the scheduler's passes until none is due; returns the events each pass sent. */
async function passes(frames: Buffer[]): Promise<number[]> {
  const sent: number[] = [];
  for (let i = 0; i < 50; i++) {
    const before = frames.length;
    await new Promise((r) => setImmediate(r));
    if (frames.length === before) break;
    sent.push(eventsIn(frames.slice(before)));
  }
  return sent;
}

/** A record of `len` bytes whose first four hold its stream position, to check the numbering. */
function record(pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  if (len >= 4) b.writeUInt32BE(pos, 0);
  return b;
}

test('no pushed frame passes PUSH_FRAME_BYTES but for one record, and every record arrives once, in order, at its position, its frame\'s memory used again only once written', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(
      // Several takes of one stream, as a pass with credits makes them, each of records of mixed sizes.
      fc.array(fc.array(fc.integer({ min: 4, max: 300 * 1024 }), { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 0, max: 1000 }),
      // After each take, how many of the frames sent so far the socket writes (their buffers go back to the pool).
      fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 6, maxLength: 6 }),
      (takes, startPos, writes) => {
        const { conn, frames, write } = writingConnection();
        const s = new PushScheduler([], 0);
        let pos = startPos;
        const lens: number[] = [];
        takes.forEach((take, t) => {
          pushTake(s, conn, 7, pos, take.map((len, i) => record(pos + i, len)));
          pos += take.length;
          lens.push(...take);
          write(writes[t]!);
        });
        // The pass's end sends what is left (run() is the scheduler's private end of pass).
        (s as unknown as { run(): void }).run();
        write(Infinity);
        let next = startPos;
        for (const frame of frames) {
          const sections = decodeEvents(frame.subarray(4));
          const single = sections.length === 1 && sections[0]!.count === 1;
          assert.ok(frame.length <= PUSH_FRAME_BYTES || single, `a frame of ${frame.length} bytes with ${sections.length} sections`);
          for (const sec of sections) {
            assert.equal(sec.streamId, 7);
            assert.equal(sec.firstPos, next, 'sections continue where the last one ended');
            let at = sec.recordsAt;
            for (let k = 0; k < sec.count; k++) {
              const len = lens[next - startPos]!;
              assert.equal(frame.readUInt32BE(4 + at), next, `the record at position ${next}`);
              at += len;
              next++;
            }
          }
        }
        assert.equal(next, pos, 'every record was sent');
      },
    ),
    { numRuns: 200 },
  );
});

test('frames written as they go out are built in the same memory again: two buffers for a whole take', () => {
  const { conn, frames, write } = writingConnection();
  const s = new PushScheduler([], 0);
  for (let i = 0; i < 64; i++) {
    pushTake(s, conn, 1, 16 * i, Array.from({ length: 16 }, (_, k) => record(16 * i + k, 16 * 1024)));
    write(Infinity);
  }
  (s as unknown as { run(): void }).run();
  write(Infinity);
  assert.ok(frames.length >= 60, `${frames.length} frames`);
  // A write of 256 KiB may send one frame and build the next before the socket writes: two buffers at most.
  assert.ok(s.pool.allocated <= 2, `${s.pool.allocated} buffers for ${frames.length} frames`);
  assert.equal(eventsIn(frames), 1024);
});

test('a take of 1,024 events of 16 KiB goes out in frames of at most PUSH_FRAME_BYTES', () => {
  const { conn, frames } = fakeConnection();
  const s = new PushScheduler([], 0);
  pushTake(s, conn, 1, 0, Array.from({ length: 1024 }, (_, i) => record(i, 16 * 1024)));
  (s as unknown as { run(): void }).run();
  assert.ok(frames.length >= 64);
  for (const f of frames) assert.ok(f.length <= PUSH_FRAME_BYTES, `a frame of ${f.length} bytes`);
});

test('a new session with a backlog is sent a few events first, then four times as many each pass, then what its credits allow', async () => {
  const credits = 8192;
  const { conn, frames } = fakeConnection();
  const scheduler = new PushScheduler([], 0);
  const stream = new PushStream(1, 'alerts', 'console', new BacklogSource(100_000), conn, credits, 0, {
    scheduler,
    pushBatchEventsMax: 1024,
    inflightEventsMax: 4 * credits,
    nowMs: () => 0,
    faults: [],
  });
  stream.schedule();
  const sent = await passes(frames);
  assert.equal(sent[0], SESSION_FIRST_PASS_EVENTS, 'the first pass');
  assert.deepEqual(sent.slice(1, 3), [4 * SESSION_FIRST_PASS_EVENTS, 16 * SESSION_FIRST_PASS_EVENTS]);
  assert.equal(sent.reduce((a, b) => a + b, 0), credits, 'every credit used, none more');
  assert.ok(sent.length <= 5, `ramped up in ${sent.length} passes`);
  // Ramped up: a grant is answered in one pass, whatever its size.
  stream.grant(credits, credits - 1);
  const after = await passes(frames);
  assert.deepEqual(after, [credits]);
});

test('a session whose queue is empty at first ramps up from its first events', async () => {
  const { conn, frames } = fakeConnection();
  const scheduler = new PushScheduler([], 0);
  const source = new BacklogSource(0);
  const stream = new PushStream(1, 'alerts', 'console', source, conn, 8192, 0, { scheduler, pushBatchEventsMax: 1024, inflightEventsMax: 4 * 8192, nowMs: () => 0, faults: [] });
  stream.schedule();
  assert.deepEqual(await passes(frames), []);
  source.count = 5000;
  stream.schedule();
  const sent = await passes(frames);
  assert.equal(sent[0], SESSION_FIRST_PASS_EVENTS);
  assert.equal(sent.reduce((a, b) => a + b, 0), 5000);
});
