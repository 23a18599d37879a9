// Builds the sealer (publisher) and checker (subscriber) of a channel from the cluster config
// and the channel's key ring beside it. Only the channel's level decides: a subscriber checks
// what the config says the channel is, whatever a record claims.

import type { KeyObject } from 'node:crypto';
import { FitError, type ChannelClass } from '../core/index.js';
import { loadConfig, type ClusterConfig } from '../config/index.js';
import { BatchSigner, ChannelKeyring, EventChecker, EventSealer, needsChannelKey } from '../protection/index.js';

/** A subscriber meeting a publisher its config does not know re-reads cluster.yaml at most this often. */
const CONFIG_RELOAD_MS = 1000;

function keyringOf(config: ClusterConfig, channel: string, cls: ChannelClass): ChannelKeyring | undefined {
  return needsChannelKey(cls.protection) ? new ChannelKeyring(config.dir, channel, cls.protection) : undefined;
}

export function treeDepth(config: ClusterConfig): number {
  return Math.log2(config.limits.signatureBatchEventsMax);
}

export function channelSealer(config: ClusterConfig, channel: string, cls: ChannelClass): EventSealer | undefined {
  if (cls.protection === 'si') return undefined;
  const keyring = keyringOf(config, channel, cls);
  return new EventSealer({ channel, protection: cls.protection, ...(keyring ? { keyring } : {}) });
}

export function batchSigner(config: ClusterConfig, signingKey: KeyObject): BatchSigner {
  return new BatchSigner(signingKey, treeDepth(config));
}

/**
 * Public keys of publishers as a subscriber sees them: its config, re-read when a publisher is
 * missing from it (one registered with `fitbroker acl register` after the subscriber started).
 */
export class PublisherKeys {
  private loadedAt = performance.now();

  constructor(private config: ClusterConfig) {}

  readonly publicKeyOf = (client: string): string | undefined => {
    const known = this.config.table.clients.get(client)?.publicKey;
    if (known !== undefined || performance.now() - this.loadedAt < CONFIG_RELOAD_MS) return known;
    this.loadedAt = performance.now();
    try {
      this.config = loadConfig(this.config.dir);
    } catch {
      // A config being edited: keep the one loaded.
    }
    return this.config.table.clients.get(client)?.publicKey;
  };
}

export function channelChecker(config: ClusterConfig, channel: string, cls: ChannelClass, keys: PublisherKeys): EventChecker | undefined {
  if (cls.protection === 'si') return undefined;
  const keyring = keyringOf(config, channel, cls);
  return new EventChecker({ channel, protection: cls.protection, publicKeyOf: keys.publicKeyOf, ...(keyring ? { keyring } : {}) });
}

/** Why a delivered copy was refused, as the subscriber reports it. */
export function protectionError(channel: string, publisher: string, reason: string, replicas: number[]): FitError {
  return new FitError('FIT_ERR_FORGED', `an event on channel "${channel}" claiming publisher "${publisher}" failed its protection check (${reason}); sent by replica(s) ${replicas.join(', ')}`, {
    channel,
    publisher,
    replicas: replicas.join(','),
  });
}
