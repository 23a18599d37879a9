// A faulty replica must never cost a client more than its own link (DESIGN §3): a frame the
// client cannot read closes that link, counted as the replica's fault, and the client goes on
// with the others. Found while hardening (docs/security.md): an ACK of the wrong length, or an
// EVENTS frame that does not parse sent to a Receiver, threw out of the socket's data handler
// and took the whole client process down. Here one in-process fake replica, which holds a real
// replica key and authenticates properly, sends such frames.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { createPrivateKey } from 'node:crypto';
import { limitsWith, type ClientInfo, type ChannelClass } from '../../src/core/index.js';
import { FrameDecoder, MessageType, decodeJson, encodeJson, frame } from '../../src/codec/index.js';
import { authTranscript, generateIdentity, newNonce, signBytes } from '../../src/protection/index.js';
import { Publisher, Receiver } from '../../src/client/index.js';
import type { ClusterConfig } from '../../src/config/index.js';

const REPLICA = generateIdentity();
const CLIENT = generateIdentity();

/** A replica that authenticates like a real one, then answers whatever the client sends with `bad`. */
async function fakeReplica(bad: Buffer): Promise<{ server: Server; port: number; closedLinks: () => number }> {
  let closed = 0;
  const key = createPrivateKey(REPLICA.privatePem);
  const server = createServer((socket) => {
    const challenge = newNonce();
    const decoder = new FrameDecoder(1 << 20);
    let authed = false;
    socket.on('error', () => undefined);
    socket.on('close', () => closed++);
    socket.write(encodeJson(MessageType.Challenge, { replica: 0, nonce: challenge.toString('base64'), version: 1 }));
    socket.on('data', (chunk: Buffer) => {
      for (const body of decoder.push(chunk)) {
        if (!authed && body[0] === MessageType.Hello) {
          const hello = decodeJson(body);
          const nonce = Buffer.from(String(hello.nonce), 'base64');
          const proof = signBytes(key, authTranscript('replica', 0, String(hello.client), challenge, nonce));
          socket.write(encodeJson(MessageType.Welcome, { replica: 0, signature: proof.toString('base64') }));
          authed = true;
        } else if (authed) socket.write(bad);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, port, closedLinks: () => closed };
}

function config(port: number): ClusterConfig {
  const channels = new Map<string, ChannelClass>([['alerts', { fault: 'cft', order: 'none', priority: 0, capacityEvents: 100, ttlMs: 60_000, overflow: 'drop-oldest', persist: 'memory', protection: 'si' }]]);
  const clients = new Map<string, ClientInfo>([['probe', { id: 'probe', publicKey: CLIENT.publicKey, publish: ['*'], subscribe: ['*'], admin: false }]]);
  return { dir: '/tmp', file: '/tmp/cluster.yaml', f: 0, replicas: [{ id: 0, host: '127.0.0.1', port, publicKey: REPLICA.publicKey }], table: { channels, clients }, limits: limitsWith({}) };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a publisher survives an ACK of the wrong length from a faulty replica: that link closes and redials', async () => {
  const shortAck = frame(Buffer.from([MessageType.Ack, 0, 0, 0, 1]));
  const fake = await fakeReplica(shortAck);
  const pub = new Publisher(config(fake.port), 'probe', createPrivateKey(CLIENT.privatePem)).connect();
  try {
    for (let i = 0; i < 5; i++) {
      pub.publish('alerts', `event ${i}`);
      await sleep(60);
    }
    assert.ok(fake.closedLinks() >= 1, 'the client kept a link to a replica that sent a frame it cannot read');
  } finally {
    pub.close();
    fake.server.close();
  }
});

test('a receiver survives an EVENTS frame that does not parse from a faulty replica', async () => {
  const badEvents = frame(Buffer.from([MessageType.Events, 0, 1, 0, 0]));
  const fake = await fakeReplica(badEvents);
  const rx = new Receiver(config(fake.port), 'probe', createPrivateKey(CLIENT.privatePem), 'alerts');
  try {
    await rx.receive(10, 500).catch(() => undefined);
    await sleep(200);
    assert.ok(fake.closedLinks() >= 1, 'the client kept a link to a replica that sent a frame it cannot read');
  } finally {
    rx.close();
    fake.server.close();
  }
});
