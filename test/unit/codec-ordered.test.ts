// The ordered-event envelope (src/codec/ordered.ts): what encodes reads back, and what a
// faulty replica can send instead is refused with FIT_ERR_MALFORMED, never anything worse.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeOrdered, readOrdered, recordBytes, writeRecord, ORDERED_HEADER_BYTES } from '../../src/codec/index.js';
import { FitError } from '../../src/core/index.js';

function record(content: string): Buffer {
  const c = Buffer.from(content);
  const out = Buffer.alloc(recordBytes(5, c.length));
  writeRecord(out, 0, { publisher: Buffer.from('probe'), epoch: Buffer.alloc(8, 7), seq: 3, timestampMs: 1000, priority: 0, contentType: 0, content: c });
  return out;
}

test('an envelope reads back its seq and the record inside it, byte for byte', () => {
  for (const seq of [1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
    const rec = record(`at ${seq}`);
    const env = encodeOrdered(seq, rec, seq + 7 > Number.MAX_SAFE_INTEGER ? seq : seq + 7);
    const v = readOrdered(env, 0);
    assert.equal(v.seq, seq);
    assert.equal(v.global, seq + 7 > Number.MAX_SAFE_INTEGER ? seq : seq + 7);
    assert.equal(v.end, env.length);
    assert.deepEqual(env.subarray(v.recordAt, v.end), rec);
  }
  const two = Buffer.concat([encodeOrdered(5, record('a')), encodeOrdered(6, record('bb'))]);
  const first = readOrdered(two, 0);
  assert.deepEqual([first.seq, readOrdered(two, first.end).seq], [5, 6]);
});

test('seq 0, a wrong kind, a short buffer, a length past the section and a record that does not fill the envelope are malformed', () => {
  const env = encodeOrdered(9, record('x'));
  const broken = (mutate: (b: Buffer) => Buffer): void => {
    assert.throws(() => readOrdered(mutate(Buffer.from(env)), 0), (e) => e instanceof FitError && e.code === 'FIT_ERR_MALFORMED');
  };
  broken((b) => (b.writeUInt32BE(0, 10), b));
  broken((b) => (b.writeUInt8(0x01, 4), b));
  broken((b) => b.subarray(0, ORDERED_HEADER_BYTES));
  broken((b) => (b.writeUInt32BE(b.length, 0), b));
  broken((b) => (b.writeUInt32BE(b.readUInt32BE(ORDERED_HEADER_BYTES) - 1, ORDERED_HEADER_BYTES), b));
  broken((b) => (b.writeUInt32BE(0x0020_0000, 6), b));
  broken((b) => (b.writeUInt32BE(0, 18), b));
  assert.throws(() => encodeOrdered(0, record('x')), /invariant broken/);
});

test('random and mutated bytes: readOrdered returns a sane view or throws FIT_ERR_MALFORMED, nothing else', () => {
  const valid = encodeOrdered(42, record('payload'));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }).map((edits) => {
      const b = Buffer.from(valid);
      for (const [i, v] of edits) b[i] = v;
      return new Uint8Array(b);
    })), (bytes) => {
      const buf = Buffer.from(bytes);
      try {
        const v = readOrdered(buf, 0);
        assert.ok(v.seq >= 1 && Number.isSafeInteger(v.seq) && v.end <= buf.length && v.recordAt < v.end);
      } catch (e) {
        assert.ok(e instanceof FitError && e.code === 'FIT_ERR_MALFORMED', String(e));
      }
    }),
    { numRuns: 3000 },
  );
});
