// The frames a replica pushes (src/replica/push.ts): however large the events a stream takes
// at once, no EVENTS frame passes PUSH_FRAME_BYTES but for a single record bigger than that, and
// the sections still number every record of the stream, in order, from where it started. (A
// take of 1,024 events of 16 KiB made one 16 MiB frame, over frameBytesMax: the subscriber
// refused it, reconnected, and was sent it again, forever.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeEvents, refOf } from '../../src/codec/index.js';
import type { Connection } from '../../src/net/index.js';
import { PUSH_FRAME_BYTES, PushScheduler } from '../../src/replica/push.js';
import { assertProperty } from '../helpers/property.js';

/** What PushScheduler uses of a Connection: send(). */
function fakeConnection(): { conn: Connection; frames: Buffer[] } {
  const frames: Buffer[] = [];
  return { conn: { send: (b: Buffer) => frames.push(b) } as unknown as Connection, frames };
}

/** A record of `len` bytes whose first four hold its stream position, to check the numbering. */
function record(pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  if (len >= 4) b.writeUInt32BE(pos, 0);
  return b;
}

test('no pushed frame passes PUSH_FRAME_BYTES but for one record, and every record arrives once, in order, at its position', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(
      // Several takes of one stream, as a pass with credits makes them, each of records of mixed sizes.
      fc.array(fc.array(fc.integer({ min: 4, max: 300 * 1024 }), { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 0, max: 1000 }),
      (takes, startPos) => {
        const { conn, frames } = fakeConnection();
        const s = new PushScheduler([], 0);
        let pos = startPos;
        const lens: number[] = [];
        for (const take of takes) {
          s.write(conn, 7, pos, take.map((len, i) => refOf(record(pos + i, len))));
          pos += take.length;
          lens.push(...take);
        }
        // The pass's end sends what is left (run() is the scheduler's private end of pass).
        (s as unknown as { run(): void }).run();
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

test('a take of 1,024 events of 16 KiB goes out in frames of at most PUSH_FRAME_BYTES', () => {
  const { conn, frames } = fakeConnection();
  const s = new PushScheduler([], 0);
  s.write(conn, 1, 0, Array.from({ length: 1024 }, (_, i) => refOf(record(i, 16 * 1024))));
  (s as unknown as { run(): void }).run();
  assert.ok(frames.length >= 64);
  for (const f of frames) assert.ok(f.length <= PUSH_FRAME_BYTES, `a frame of ${f.length} bytes`);
});
