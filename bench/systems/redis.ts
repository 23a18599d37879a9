// Redis pub/sub: one redis-server per run, driven by ioredis: PUBLISH from the publishers,
// SUBSCRIBE to every channel from each subscriber's own connection.

import { Redis } from 'ioredis';
import { ensureDebianPackage } from '../../src/core/index.js';
import { startDaemon, REDIS_SERVER } from './install.js';
import { AckWindow } from './window.js';
import type { ClientFactory, ClientSide, RunShape, ServerHandle, ServerSide } from './types.js';

// Outstanding PUBLISH replies per publisher. ioredis writes each command without waiting for
// the previous reply; the window bounds how far ahead of the server a publisher runs.
const WINDOW = 1000;

export function redisServer(): ServerSide {
  return {
    system: 'redis',
    mode: 'pubsub',
    label: 'Redis pub/sub',
    unavailable: () => ensureDebianPackage(REDIS_SERVER),
    async start(_shape: RunShape): Promise<ServerHandle> {
      const d = await startDaemon({
        name: 'redis',
        binary: REDIS_SERVER,
        // No config file: Debian's /etc/redis/redis.conf is the system instance's. Pub/sub
        // keeps nothing, so no RDB or AOF. Redis disconnects a subscriber whose output buffer
        // passes 32 MB (or 8 MB for a minute) by default; "pubsub 0 0 0" lifts that, so a
        // subscriber behind for a moment catches up instead of being cut off.
        args: (port, dir) => [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--protected-mode', 'no',
          '--save', '',
          '--appendonly', 'no',
          '--client-output-buffer-limit', 'pubsub 0 0 0',
          '--dir', dir,
          '--daemonize', 'no',
        ],
      });
      return {
        endpoint: { system: 'redis', mode: 'pubsub', params: { port: d.port } },
        pids: () => (d.proc.pid === undefined ? [] : [d.proc.pid]),
        stop: () => d.stop(),
      };
    },
  };
}

export const redisClient: ClientFactory = async (endpoint, role) => {
  const window = new AckWindow(WINDOW);
  let closing = false;
  const redis = new Redis({
    host: '127.0.0.1',
    port: Number(endpoint.params.port),
    connectionName: role.name,
    lazyConnect: true,
    // Commands issued in the same tick go out in one write, as one pipeline.
    enableAutoPipelining: true,
    // A dropped connection must show as lost events (and fail the replies), not be hidden
    // by a reconnect.
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  redis.on('error', (e: Error) => process.stderr.write(`${role.name}: redis: ${e.message}\n`));
  redis.on('end', () => {
    if (closing) return;
    process.stderr.write(`${role.name}: redis connection closed\n`);
    window.fail(new Error('redis connection closed'));
  });
  const side: ClientSide = {
    async connect() {
      await redis.connect();
    },
    async subscribe(channels, onMessage) {
      // messageBuffer hands over the payload as the parser's Buffer; no 'message' listener,
      // so ioredis skips decoding it to a string.
      redis.on('messageBuffer', (_channel: Buffer, message: Buffer) => onMessage(message));
      await redis.subscribe(...channels);
    },
    publish(channel, payload) {
      return window.track(redis.publish(channel, payload));
    },
    drained: () => window.room(),
    flush: () => window.idle(),
    async close() {
      closing = true;
      redis.disconnect();
    },
  };
  return side;
};
