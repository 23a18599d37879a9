// Worker-side registry: which client implementation drives which system.

import { fitbrokerClient } from './fitbroker.js';
import { jetstreamClient } from './jetstream.js';
import { mosquittoClient } from './mosquitto.js';
import { natsClient } from './nats.js';
import { redisClient } from './redis.js';
import type { ClientFactory, SystemName } from './types.js';

const factories: Partial<Record<SystemName, ClientFactory>> = {
  fitbroker: fitbrokerClient,
  nats: natsClient,
  'nats-jetstream': jetstreamClient,
  mosquitto: mosquittoClient,
  redis: redisClient,
};

export function clientFactory(system: SystemName): ClientFactory {
  const f = factories[system];
  if (!f) throw new Error(`no benchmark client for system "${system}"`);
  return f;
}
