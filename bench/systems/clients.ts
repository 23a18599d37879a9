// Worker-side registry: which client implementation drives which system.

import { fitbrokerClient } from './fitbroker.js';
import type { ClientFactory, SystemName } from './types.js';

const factories: Partial<Record<SystemName, ClientFactory>> = {
  fitbroker: fitbrokerClient,
};

export function clientFactory(system: SystemName): ClientFactory {
  const f = factories[system];
  if (!f) throw new Error(`no benchmark client for system "${system}"`);
  return f;
}
