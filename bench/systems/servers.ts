// Harness-side registry of the peer brokers.

import { mosquittoServer } from './mosquitto.js';
import { natsServer } from './nats.js';
import { redisServer } from './redis.js';
import type { ServerSide } from './types.js';

const peers: Record<string, () => ServerSide> = {
  nats: () => natsServer('core'),
  'nats-jetstream': () => natsServer('file-acked'),
  'mosquitto-qos0': () => mosquittoServer('qos0'),
  'mosquitto-qos1': () => mosquittoServer('qos1'),
  redis: () => redisServer(),
};

export const PEER_NAMES: string[] = Object.keys(peers);

export function peerServers(names: string[]): ServerSide[] {
  return names.map((n) => {
    const make = peers[n];
    if (!make) throw new Error(`unknown peer ${n}`);
    return make();
  });
}
