// NATS, core and JetStream: one nats-server per run, driven by the official `nats` client.
// This file has the server half of both modes (with the JetStream stream) and the core
// client; jetstream.ts has the JetStream client.

import { connect, RetentionPolicy, StorageType, type NatsConnection } from 'nats';
import { ensureDebianPackage } from '../../src/core/index.js';
import { startDaemon, NATS_SERVER } from './install.js';
import { AckWindow } from './window.js';
import type { ClientFactory, ClientSide, Endpoint, RunShape, ServerHandle, ServerSide } from './types.js';

export type NatsMode = 'core' | 'file-acked';

// The server's defaults cut a subscriber off as a slow consumer once 64 MB wait for it or a
// write to it stalls for 10 s. Two subscribers sharing two cores with the publishers and the
// server do fall behind for moments at saturation; a generous limit lets the run measure how
// fast they catch up instead of how fast they get disconnected.
function natsConfig(port: number, dir: string, jetstream: boolean): string {
  return [
    `listen: "127.0.0.1:${port}"`,
    `max_pending: ${1024 * 1024 * 1024}`,
    'write_deadline: "60s"',
    // Left at the server's defaults otherwise, file storage included (its own fsync policy).
    ...(jetstream ? [`jetstream {`, `  store_dir: "${dir}/jetstream"`, `}`] : []),
    '',
  ].join('\n');
}

export const BENCH_STREAM = 'BENCH';

// One stream holding exactly the run's channels, on disk in the server's temp store_dir, so a
// consumer of the whole stream is a subscriber to every channel. Created here, before any
// worker connects, and new with every server: it starts empty.
async function createBenchStream(port: number, channels: string[]): Promise<void> {
  const nc = await connect({ servers: `127.0.0.1:${port}`, name: 'bench-harness' });
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: BENCH_STREAM, subjects: channels, storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: 1 });
  } finally {
    await nc.close();
  }
}

export function natsServer(mode: NatsMode): ServerSide {
  const jetstream = mode === 'file-acked';
  return {
    system: jetstream ? 'nats-jetstream' : 'nats',
    mode,
    label: jetstream ? 'NATS JetStream (file, acked)' : 'NATS core',
    unavailable: () => ensureDebianPackage(NATS_SERVER),
    async start(shape: RunShape): Promise<ServerHandle> {
      const d = await startDaemon({
        name: jetstream ? 'nats-jetstream' : 'nats',
        binary: NATS_SERVER,
        files: (port, dir) => ({ 'nats.conf': natsConfig(port, dir, jetstream) }),
        args: (_port, dir) => ['-c', `${dir}/nats.conf`],
      });
      try {
        if (jetstream) await createBenchStream(d.port, shape.channels);
      } catch (e) {
        await d.stop();
        throw e;
      }
      return {
        endpoint: { system: jetstream ? 'nats-jetstream' : 'nats', mode, params: { port: d.port, stream: BENCH_STREAM } },
        pids: () => (d.proc.pid === undefined ? [] : [d.proc.pid]),
        stop: () => d.stop(),
      };
    },
  };
}

export async function natsConnect(endpoint: Endpoint, name: string): Promise<NatsConnection> {
  const nc = await connect({
    servers: `127.0.0.1:${Number(endpoint.params.port)}`,
    name,
    // A connection the server drops (a slow consumer) must show as lost events, not be
    // papered over by a silent reconnect.
    reconnect: false,
    // By default every request (each js.publish) captures a stack trace for its possible
    // error, about 40% of an acked publish's client CPU here; nats.js offers this switch
    // for throughput.
    noAsyncTraces: true,
  });
  nc.closed().then((err) => {
    if (err) process.stderr.write(`${name}: NATS connection closed: ${err.message}\n`);
  });
  return nc;
}

/** A Buffer over the client's bytes, without copying them. */
export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

// Core publish is fire-and-forget: nc.publish() appends to the client's outbound buffer,
// which it writes at 32 KB or at the end of the tick, and it never pushes back (the socket
// queues without bound). The one backpressure core NATS offers is a flush: a PING the server answers once it
// has processed everything before it. We send one every FLUSH_EVERY messages without waiting
// and stop publishing only while MAX_FLUSHES of them are unanswered, so at most about
// FLUSH_EVERY × MAX_FLUSHES messages are ahead of the server.
const FLUSH_EVERY = 4096;
const MAX_FLUSHES = 4;

export const natsClient: ClientFactory = async (endpoint, role) => {
  let nc: NatsConnection | undefined;
  const flushes = new AckWindow(MAX_FLUSHES);
  let sent = 0;
  const side: ClientSide = {
    async connect() {
      nc = await natsConnect(endpoint, role.name);
    },
    async subscribe(channels, onMessage) {
      // Callback subscriptions: no async iterator in between, and no client-side pending
      // limit to drop at (nats.js has none for callbacks).
      for (const ch of channels) nc!.subscribe(ch, { callback: (err, m) => err === null && onMessage(asBuffer(m.data)) });
      await nc!.flush();
    },
    publish(channel, payload) {
      nc!.publish(channel, payload);
      if (++sent % FLUSH_EVERY !== 0) return true;
      return flushes.track(nc!.flush());
    },
    drained: () => flushes.room(),
    async flush() {
      await flushes.idle();
      await nc!.flush();
    },
    async close() {
      await nc?.close();
    },
  };
  return side;
};
