// Buffers for outgoing frames, used again once written (src/codec/frame-pool.ts): a frame
// released comes back as the memory of the next one, once only however often it is released;
// a buffer the pool did not give is never taken in, nor one too large.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramePool } from '../../src/codec/index.js';

test('a released frame is the memory of the next one; released twice it is still handed out once', () => {
  const pool = new FramePool(1024, 4);
  const a = pool.take(100);
  assert.equal(a.length, 100);
  pool.release(a);
  pool.release(a);
  assert.equal(pool.freeCount, 1, 'a second release is ignored');
  const b = pool.take(600);
  assert.equal(b.length, 600);
  assert.equal(b.buffer, a.buffer, 'the same memory again');
  const c = pool.take(10);
  assert.notEqual(c.buffer, b.buffer, 'while b is out, nobody else gets its memory');
  assert.equal(pool.allocated, 2);
});

test('frames larger than the capacity, and buffers the pool did not give, are never taken in; at most keepMax wait', () => {
  const pool = new FramePool(1024, 2);
  const big = pool.take(4096);
  assert.equal(big.length, 4096);
  pool.release(big);
  pool.release(Buffer.allocUnsafeSlow(1024));
  assert.equal(pool.freeCount, 0);
  const frames = [pool.take(1), pool.take(1), pool.take(1)];
  for (const f of frames) pool.release(f);
  assert.equal(pool.freeCount, 2);
});
