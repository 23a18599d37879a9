// Framing into read slabs (src/codec/frame-slab.ts): the socket reads wherever readBuffer()
// says, any number of bytes up to its length. Whatever the read sizes, the frames handed on
// must be exactly those sent, and must stay so: a frame is a view into a slab, so a later
// read written over it would corrupt an event the voter still holds, long after the check.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FitError } from '../../src/core/index.js';
import { SlabFrameReader, frame } from '../../src/codec/index.js';
import { assertProperty } from '../helpers/property.js';
import { fitErrorFrom } from '../helpers/errors.js';

const LIMIT = 1024;

/** Feeds `stream` to the reader as a socket would, each read as long as `reads` says (cycled, capped by the buffer). */
function readAll(r: SlabFrameReader, stream: Buffer, reads: number[]): Buffer[] {
  const frames: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < stream.length; i++) {
    const buf = r.readBuffer();
    assert.ok(buf.length > 0, 'the reader always offers room for a read');
    const n = Math.min(buf.length, stream.length - at, Math.max(1, reads[i % reads.length] ?? buf.length));
    stream.copy(buf, 0, at, at + n);
    at += n;
    frames.push(...r.filled(n));
  }
  return frames;
}

test('hands on the frames sent, intact to the end, whatever the read sizes and slab size', (t) => {
  const bodies = fc.array(fc.uint8Array({ minLength: 1, maxLength: LIMIT }).map((a) => Buffer.from(a)), { maxLength: 20 });
  const reads = fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 30 });
  const slab = fc.integer({ min: 1, max: 4096 });
  const readMin = fc.integer({ min: 1, max: 512 });
  assertProperty(
    t,
    import.meta.url,
    fc.property(bodies, reads, slab, readMin, (sent, readSizes, slabBytes, readBytesMin) => {
      const r = new SlabFrameReader(LIMIT, slabBytes, readBytesMin);
      const got = readAll(r, Buffer.concat(sent.map(frame)), readSizes);
      // Compared after the last read: an earlier frame overwritten by a later read fails here.
      assert.deepEqual(got, sent);
      assert.equal(r.bufferedBytes, 0);
    }),
  );
});

test('frames that fit in one slab are views into it, not copies', () => {
  const r = new SlabFrameReader(LIMIT, 64 * 1024, 1024);
  const sent = [Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(1000, 3)];
  const got = readAll(r, Buffer.concat(sent.map(frame)), [700]);
  assert.deepEqual(got, sent);
  assert.ok(got.every((f) => f.buffer === got[0]!.buffer), 'all three frames sit in the same slab');
});

test('a frame longer than a slab arrives whole in a slab sized for it', () => {
  const limit = 8 * 1024 * 1024;
  const body = Buffer.alloc(3 * 1024 * 1024 + 5);
  for (let i = 0; i < body.length; i++) body[i] = i % 251;
  const r = new SlabFrameReader(limit);
  const got = readAll(r, Buffer.concat([frame(Buffer.from('small')), frame(body), frame(Buffer.from('after'))]), [65536]);
  assert.deepEqual(got, [Buffer.from('small'), body, Buffer.from('after')]);
});

test('holds a partial frame until the rest arrives and counts it in bufferedBytes', () => {
  const r = new SlabFrameReader(LIMIT);
  const f = frame(Buffer.from('abcdef'));
  r.readBuffer().set(f.subarray(0, 2));
  assert.deepEqual(r.filled(2), []);
  r.readBuffer().set(f.subarray(2, 7));
  assert.deepEqual(r.filled(5), []);
  assert.equal(r.bufferedBytes, 7);
  r.readBuffer().set(f.subarray(7));
  assert.deepEqual(r.filled(3), [Buffer.from('abcdef')]);
  assert.equal(r.bufferedBytes, 0);
});

function fed(r: SlabFrameReader, bytes: Buffer): FitError {
  return fitErrorFrom(() => {
    r.readBuffer().set(bytes);
    return r.filled(bytes.length);
  });
}

test('an oversize prefix throws FIT_ERR_FRAME_TOO_LARGE as soon as its four bytes are in', () => {
  const r = new SlabFrameReader(LIMIT);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(0xffff_ffff, 0);
  r.readBuffer().set(head.subarray(0, 3));
  assert.deepEqual(r.filled(3), []);
  const e = fed(r, head.subarray(3));
  assert.equal(e.code, 'FIT_ERR_FRAME_TOO_LARGE');
  assert.deepEqual(e.fields, { frameBytes: 0xffff_ffff, limitBytes: LIMIT });
  // The socket asks for its next buffer even after the read that failed: that must not throw
  // (out of a socket callback it would kill the process), nor size a slab by the bad prefix.
  assert.ok(r.readBuffer().length <= 1024 * 1024 + LIMIT);
});

test('a zero-length prefix after a good frame throws FIT_ERR_FRAME_TOO_LARGE', () => {
  const e = fed(new SlabFrameReader(LIMIT), Buffer.concat([frame(Buffer.from('ok')), Buffer.alloc(4)]));
  assert.equal(e.code, 'FIT_ERR_FRAME_TOO_LARGE');
  assert.match(e.message, /empty frame/);
});

test('raiseLimit() lets a bigger frame through', () => {
  const r = new SlabFrameReader(LIMIT);
  r.raiseLimit(4 * LIMIT);
  const body = Buffer.alloc(2 * LIMIT, 9);
  assert.deepEqual(readAll(r, frame(body), [100]), [body]);
});
