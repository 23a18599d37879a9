// Length-prefixed framing (src/codec/frame.ts): a TCP stream cuts frames anywhere, so the
// decoder must give back exactly the frames that were sent whatever the chunking, and must
// refuse a bad length prefix as soon as the four header bytes are in, before buffering a body.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FitError } from '../../src/core/index.js';
import { FrameDecoder, frame, FRAME_HEADER_BYTES } from '../../src/codec/index.js';
import { assertProperty } from '../helpers/property.js';
import { fitErrorFrom } from '../helpers/errors.js';

const LIMIT = 1024;

/** Splits `bytes` at the given cut points (any order, duplicates allowed). */
function chunk(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(from, p)); // may be empty: a zero-byte read must be harmless too
    from = p;
  }
  return out;
}

function prefix(bodyBytes: number): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_BYTES);
  b.writeUInt32BE(bodyBytes, 0);
  return b;
}

function thrownBy(fn: () => unknown): FitError {
  return fitErrorFrom(fn);
}

test('frame() writes a big-endian u32 body length then the body', () => {
  const body = Buffer.from([9, 8, 7]);
  assert.deepEqual(frame(body), Buffer.from([0, 0, 0, 3, 9, 8, 7]));
});

test('returns the same frames in order whatever the chunk boundaries', (t) => {
  const bodies = fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a)), { maxLength: 12 });
  const cuts = fc.array(fc.nat(), { maxLength: 40 });
  assertProperty(
    t,
    import.meta.url,
    fc.property(bodies, cuts, (sent, cutPoints) => {
      const stream = Buffer.concat(sent.map(frame));
      const d = new FrameDecoder(LIMIT);
      const got = chunk(stream, cutPoints).flatMap((c) => d.push(c));
      assert.deepEqual(got, sent);
      assert.equal(d.bufferedBytes, 0);
    }),
  );
});

test('holds a partial frame until the rest arrives and counts it in bufferedBytes', () => {
  const d = new FrameDecoder(LIMIT);
  const f = frame(Buffer.from('abcdef'));
  assert.deepEqual(d.push(f.subarray(0, 2)), []);
  assert.deepEqual(d.push(f.subarray(2, 7)), []);
  assert.equal(d.bufferedBytes, 7);
  assert.deepEqual(d.push(f.subarray(7)), [Buffer.from('abcdef')]);
  assert.equal(d.bufferedBytes, 0);
});

test('accepts a frame of exactly frameBytesMax', () => {
  const body = Buffer.alloc(LIMIT, 1);
  assert.deepEqual(new FrameDecoder(LIMIT).push(frame(body)), [body]);
});

test('a zero-length prefix throws FIT_ERR_FRAME_TOO_LARGE', () => {
  const e = thrownBy(() => new FrameDecoder(LIMIT).push(prefix(0)));
  assert.equal(e.code, 'FIT_ERR_FRAME_TOO_LARGE');
  assert.equal(e.fields.frameBytes, 0);
  assert.match(e.message, /empty frame/);
});

test('an oversize prefix throws FIT_ERR_FRAME_TOO_LARGE naming the size and the limit', () => {
  const e = thrownBy(() => new FrameDecoder(LIMIT).push(prefix(LIMIT + 1)));
  assert.equal(e.code, 'FIT_ERR_FRAME_TOO_LARGE');
  assert.deepEqual(e.fields, { frameBytes: LIMIT + 1, limitBytes: LIMIT });
  assert.match(e.message, /frameBytesMax/);
});

test('refuses an oversize prefix split across chunks before any body bytes arrive', () => {
  const d = new FrameDecoder(LIMIT);
  const head = prefix(0xffff_ffff);
  assert.deepEqual(d.push(head.subarray(0, 3)), []);
  assert.equal(thrownBy(() => d.push(head.subarray(3))).code, 'FIT_ERR_FRAME_TOO_LARGE');
});

test('refuses a bad prefix that follows good frames in the same chunk', () => {
  const d = new FrameDecoder(LIMIT);
  const chunkBytes = Buffer.concat([frame(Buffer.from('ok')), prefix(LIMIT + 1)]);
  assert.equal(thrownBy(() => d.push(chunkBytes)).code, 'FIT_ERR_FRAME_TOO_LARGE');
});
