// Frames read in place (src/codec/frame-slab.ts, Connection.dial): whatever sizes the reads
// come in, the frames handed out are the ones sent, and none is overwritten by a later read
// while it is held; a bad prefix is refused at its four bytes; over a real socket, pause()
// still holds the peer back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { FrameSlab, frame, FRAME_HEADER_BYTES } from '../../src/codec/index.js';
import { Connection } from '../../src/net/index.js';
import type { FitError } from '../../src/core/index.js';
import { assertProperty } from '../helpers/property.js';
import { fitErrorFrom } from '../helpers/errors.js';

/** Reads `stream` into the slab as a socket would: each read at most its size and the room given. */
function readAll(slab: FrameSlab, stream: Buffer, readSizes: number[]): Buffer[] {
  const frames: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < stream.length; i++) {
    const room = slab.space();
    const n = stream.copy(room, 0, at, Math.min(stream.length, at + Math.max(1, readSizes[i % readSizes.length]!)));
    at += n;
    frames.push(...slab.filled(n));
  }
  return frames;
}

test('hands out the frames sent, whatever the reads, and none is overwritten while held', (t) => {
  const bodies = fc.array(fc.integer({ min: 1, max: 40_000 }).map((n) => randomBytes(n)), { minLength: 1, maxLength: 14 });
  const reads = fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 8 });
  assertProperty(
    t,
    import.meta.url,
    fc.property(bodies, reads, fc.boolean(), (sent, readSizes, smallSlab) => {
      const slab = new FrameSlab(64 * 1024, smallSlab ? 0 : 1 << 20);
      const copies = sent.map((b) => Buffer.from(b));
      const got = readAll(slab, Buffer.concat(sent.map(frame)), readSizes);
      // Compared only now: every frame was held while all the reads after it happened.
      assert.deepEqual(got, copies);
      assert.equal(slab.bufferedBytes, 0);
    }),
    { numRuns: 200 },
  );
});

test('a frame larger than a slab arrives whole, in a slab of its size', () => {
  const slab = new FrameSlab(8 << 20);
  const big = randomBytes(3 << 20);
  const got = readAll(slab, Buffer.concat([frame(Buffer.from('a')), frame(big), frame(Buffer.from('b'))]), [65_536]);
  assert.deepEqual(got, [Buffer.from('a'), big, Buffer.from('b')]);
  assert.ok(slab.slabs >= 2 && slab.slabs <= 3, `${slab.slabs} slabs for one 3 MB frame`);
});

test('refuses a bad prefix at its four bytes, before buffering the body; a raised limit admits it', () => {
  const slab = new FrameSlab(1024);
  const prefix = Buffer.alloc(FRAME_HEADER_BYTES);
  prefix.writeUInt32BE(5000, 0);
  prefix.copy(slab.space());
  const e = fitErrorFrom(() => slab.filled(FRAME_HEADER_BYTES));
  assert.equal(e.code, 'FIT_ERR_FRAME_TOO_LARGE');
  assert.deepEqual(e.fields, { frameBytes: 5000, limitBytes: 1024 });
  const zero = new FrameSlab(1024);
  zero.space().fill(0, 0, 4);
  assert.match(fitErrorFrom(() => zero.filled(4)).message, /empty frame/);
  const raised = new FrameSlab(1024);
  raised.raiseLimit(8192);
  assert.deepEqual(readAll(raised, frame(Buffer.alloc(5000, 7)), [4096]), [Buffer.alloc(5000, 7)]);
});

/** A server that runs `serve` on its one connection; resolves with its port. */
async function serverOnce(serve: (s: Socket) => void): Promise<{ port: number; close(): void }> {
  const server = createServer(serve);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

test('over a socket: 256 KB frames and small ones, written in odd pieces, arrive whole and in order; pause() holds the sender back', async () => {
  const sent = Array.from({ length: 80 }, (_, i) => randomBytes(i % 3 === 0 ? 17 : 256 * 1024));
  const stream = Buffer.concat(sent.map(frame));
  const server = await serverOnce((s) => {
    for (let at = 0; at < stream.length; ) {
      const n = 1 + Math.floor(Math.random() * 200_000);
      s.write(stream.subarray(at, at + n));
      at += n;
    }
  });
  try {
    const got: Buffer[] = [];
    let paused = false;
    let closed: FitError | undefined | 'open' = 'open';
    const conn = Connection.dial('127.0.0.1', server.port, 1 << 20, 1 << 20, {
      onFrame: (f) => {
        assert.ok(!paused, 'a frame arrived while the connection was paused');
        got.push(f);
        if (got.length === 10) {
          conn.pause();
          paused = true;
          setTimeout(() => {
            paused = false;
            conn.resume();
          }, 200);
        }
      },
      onClose: (reason) => (closed = reason),
    });
    for (const until = Date.now() + 20_000; got.length < sent.length && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    assert.equal(got.length, sent.length);
    assert.ok(got.every((f, i) => f.equals(sent[i]!)), 'a frame arrived changed');
    assert.equal(closed, 'open');
    conn.close();
  } finally {
    server.close();
  }
});

test('over a socket: a bad prefix closes that connection with FIT_ERR_FRAME_TOO_LARGE', async () => {
  const server = await serverOnce((s) => s.write(Buffer.concat([frame(Buffer.from('fine')), Buffer.from([0, 0x10, 0, 0])])));
  try {
    const got: Buffer[] = [];
    const closed = new Promise<FitError | undefined>((resolve) => Connection.dial('127.0.0.1', server.port, 1024, 1 << 20, { onFrame: (f) => got.push(f), onClose: resolve }));
    const reason = await closed;
    assert.equal(reason?.code, 'FIT_ERR_FRAME_TOO_LARGE');
    // The frames read with it may go too: the peer was not speaking the protocol.
    assert.ok(got.every((f) => f.equals(Buffer.from('fine'))));
  } finally {
    server.close();
  }
});
