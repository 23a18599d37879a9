// Harness-side registry of the peer brokers.

import type { ServerSide } from './types.js';

export const PEER_NAMES: string[] = [];

export function peerServers(names: string[]): ServerSide[] {
  return names.map((n) => {
    throw new Error(`unknown peer ${n}`);
  });
}
