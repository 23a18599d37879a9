// A dialed Connection (src/net/connection.ts) reads into its own slabs rather than through data
// events; over a real socket it must still hand on every frame in order, honour pause(), close
// on the peer's end, and close (only itself) on a bad length prefix.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
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
  const conn = Connection.dial('127.0.0.1', port, LIMIT, LIMIT, { onFrame: (b) => frames.push(b), onClose: (e) => closedWith(e) });
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
  // The frames are views of the connection's read slabs, kept as they came: compared only
  // now, after every read, so that a read written over an earlier frame would show.
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

// Run in a child process: the test runner fails whichever test an uncaught exception meets.
const SURVIVOR = `
import { createServer } from 'node:net';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { Connection } from ${JSON.stringify(new URL('../../src/net/index.js', import.meta.url).href)};
import { frame } from ${JSON.stringify(new URL('../../src/codec/index.js', import.meta.url).href)};
const server = createServer();
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const accepted = once(server, 'connection');
const frames = [];
let closedWith;
const conn = Connection.dial('127.0.0.1', server.address().port, 1 << 20, 1 << 20, {
  onFrame: (b) => { frames.push(b.toString()); if (b.toString() === 'bug') throw new TypeError('a bug in the handler'); },
  onClose: (e) => (closedWith = e?.code),
});
const [peer] = await accepted;
const uncaught = once(process, 'uncaughtException');
peer.write(Buffer.concat([frame(Buffer.from('before')), frame(Buffer.from('bug'))]));
const [err] = await uncaught;
const closedAtError = conn.isClosed;
peer.write(frame(Buffer.from('after')));
await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify({ error: err.message, closedAtError, closedWith, frames }));
process.exit(0);
`;

test('a frame handler that throws a bug closes the dialed connection before the error goes on', () => {
  // A process that survives the exception (an uncaughtException handler) must not read on
  // into the buffer the failed read filled, over frames already handed on.
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', SURVIVOR], { encoding: 'utf8', timeout: 20_000 });
  assert.deepEqual(JSON.parse(out), { error: 'a bug in the handler', closedAtError: true, closedWith: 'FIT_ERR_INTERNAL', frames: ['before', 'bug'] });
});
