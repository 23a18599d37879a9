// Mosquitto at QoS 0 and QoS 1: one mosquitto per run, driven by mqtt.js (MQTT 3.1.1), one
// connection per worker.

import { connectAsync, type MqttClient } from 'mqtt';
import { ensureDebianPackage } from '../../src/core/index.js';
import { startDaemon, MOSQUITTO } from './install.js';
import { AckWindow } from './window.js';
import type { ClientFactory, ClientSide, RunShape, ServerHandle, ServerSide } from './types.js';

export type MosquittoMode = 'qos0' | 'qos1';

// Outstanding PUBACKs per QoS 1 publisher. mqtt.js has no inflight limit of its own (it
// writes every PUBLISH at once and keeps it until acked), so this window is what pipelines
// the acks and bounds them.
const QOS1_WINDOW = 1024;
// At QoS 0 mqtt.js calls back at once while the socket takes the write and on 'drain' once
// it is full: callbacks outstanding mean the socket pushes back. A few let the loop notice
// without piling up 'drain' listeners (each waiting callback is one).
const QOS0_WINDOW = 8;

// mosquitto's defaults are for small devices: at most 20 unacknowledged QoS 1 messages to a
// subscriber (the broker→subscriber ack window), and past 1000 more queued per client it drops
// — QoS 0 ones too, counted as packets not yet written to the socket. A subscriber momentarily
// behind would lose events to those limits rather than to anything the broker cannot do.
// So: a broker→subscriber window as wide as our publishers' (1024), and no queue limit
// (max_queued_messages 0), which a run bounds anyway. And TCP_NODELAY, which nats-server and
// redis-server set on every connection by default and mosquitto only when told.
function mosquittoConfig(port: number): string {
  return [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    `max_inflight_messages ${QOS1_WINDOW}`,
    'max_queued_messages 0',
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    '',
  ].join('\n');
}

export function mosquittoServer(mode: MosquittoMode): ServerSide {
  return {
    system: 'mosquitto',
    mode,
    label: mode === 'qos1' ? 'Mosquitto QoS 1' : 'Mosquitto QoS 0',
    unavailable: () => ensureDebianPackage(MOSQUITTO),
    async start(_shape: RunShape): Promise<ServerHandle> {
      const d = await startDaemon({
        name: `mosquitto-${mode}`,
        binary: MOSQUITTO,
        files: (port) => ({ 'mosquitto.conf': mosquittoConfig(port) }),
        args: (_port, dir) => ['-c', `${dir}/mosquitto.conf`],
      });
      return {
        endpoint: { system: 'mosquitto', mode, params: { port: d.port } },
        pids: () => (d.proc.pid === undefined ? [] : [d.proc.pid]),
        stop: () => d.stop(),
      };
    },
  };
}

export const mosquittoClient: ClientFactory = async (endpoint, role) => {
  const qos = endpoint.mode === 'qos1' ? 1 : 0;
  const window = new AckWindow(qos === 1 ? QOS1_WINDOW : QOS0_WINDOW);
  let client: MqttClient | undefined;
  let closing = false;
  const side: ClientSide = {
    async connect() {
      client = await connectAsync(`mqtt://127.0.0.1:${Number(endpoint.params.port)}`, {
        clientId: `${role.name}-${process.pid}`,
        clean: true,
        protocolVersion: 4,
        // A dropped connection must show as lost events (and fail the acks), not be hidden
        // by a reconnect.
        reconnectPeriod: 0,
        // No keepalive: a subscriber that mosquitto holds a backlog for gets its PINGRESP
        // behind that backlog, and mqtt.js closed such connections with "Keepalive timeout"
        // while events arrived all along (every QoS 1 fixed-load phase after a long overload,
        // session 30). On one machine there is no dead peer for a keepalive to find.
        keepalive: 0,
      });
      let why = '';
      client.on('error', (e) => (why = `: ${e.message}`));
      client.on('close', () => {
        if (closing) return;
        process.stderr.write(`${role.name}: MQTT connection closed${why}\n`);
        window.fail(new Error('MQTT connection closed'));
      });
    },
    async subscribe(channels, onMessage) {
      client!.on('message', (_topic, payload) => onMessage(payload));
      await client!.subscribeAsync(channels, { qos });
    },
    publish(channel, payload) {
      window.open();
      client!.publish(channel, payload, { qos }, (err) => window.close(err));
      // Asked after the call: a QoS 0 write the socket took was already called back.
      return window.outstanding < window.limit;
    },
    drained: () => window.room(),
    flush: () => window.idle(),
    async close() {
      closing = true;
      await client?.endAsync();
    },
  };
  return side;
};
