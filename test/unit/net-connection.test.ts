// A dialed Connection (src/net/connection.ts) reads into its own slabs rather than through data
// events; over a real socket it must still hand on every frame in order, honour pause(), close
// on the peer's end, and close (only itself) on a bad length prefix.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '../../src/net/index.js';
import { frame } from '../../src/codec/index.js';
import type { FitError } from '../../src/core/index.js';

const LIMIT = 1024 * 1024;

interface Dialed {
  conn: Connection;
  peer: Socket;
  frames: Buffer[];
  closed: Promise<FitError | undefined>;
  server: Server;
}

async function dialed(): Promise<Dialed> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection');
  const frames: Buffer[] = [];
  let closedWith!: (e: FitError | undefined) => void;
  const closed = new Promise<FitError | undefined>((resolve) => (closedWith = resolve));
  const conn = Connection.dial('127.0.0.1', port, LIMIT, LIMIT, { onFrame: (b) => frames.push(Buffer.from(b)), onClose: (e) => closedWith(e) });
  const [peer] = (await accepted) as [Socket];
  return { conn, peer, frames, closed, server };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await sleep(10);
  assert.ok(cond(), 'timed out');
}

test('a dialed connection hands on every frame in order, cut however the peer writes them', async () => {
  const d = await dialed();
  const sent = Array.from({ length: 40 }, (_, i) => Buffer.alloc(1 + ((i * 37_501) % 300_000), i));
  const bytes = Buffer.concat(sent.map(frame));
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = [1, 3, 70_000, 9, 200_000, 4][i % 6]!;
    d.peer.write(bytes.subarray(at, at + n));
    at += n;
  }
  await until(() => d.frames.length === sent.length);
  assert.deepEqual(d.frames, sent);
  d.peer.end();
  assert.equal(await d.closed, undefined);
  assert.ok(d.conn.isClosed);
  d.server.close();
});

test('pause() stops frames until resume()', async () => {
  const d = await dialed();
  d.conn.pause();
  d.peer.write(frame(Buffer.from('held back')));
  await sleep(100);
  assert.equal(d.frames.length, 0);
  d.conn.resume();
  await until(() => d.frames.length === 1);
  assert.deepEqual(d.frames, [Buffer.from('held back')]);
  d.conn.close();
  d.server.close();
});

test('a bad length prefix closes the connection with FIT_ERR_FRAME_TOO_LARGE', async () => {
  const d = await dialed();
  const head = Buffer.alloc(4);
  head.writeUInt32BE(LIMIT + 1, 0);
  d.peer.write(frame(Buffer.from('fine')));
  await until(() => d.frames.length === 1);
  d.peer.write(head);
  const e = await d.closed;
  assert.equal(e?.code, 'FIT_ERR_FRAME_TOO_LARGE');
  assert.deepEqual(d.frames, [Buffer.from('fine')]);
  d.server.close();
});
