// Builds the sealer (publisher) and checker (subscriber) of a channel from the cluster config
// and the channel's key ring beside it. Only the channel's level decides: a subscriber checks
// what the config says the channel is, whatever a record claims.

import type { KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import { FitError, type ChannelClass } from '../core/index.js';
import { loadConfig, type ClusterConfig } from '../config/index.js';
import { BatchSigner, ChannelKeyring, EventChecker, EventSealer, needsChannelKey } from '../protection/index.js';
import type { VoterOptions } from './voter.js';

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
 * How often a subscriber looks whether cluster.yaml changed (a publisher registered, or a
 * client's key rotated) when it checks a signature tree: a stat, not a parse, unless it did.
 */
const CONFIG_CHECK_MS = 1000;

/**
 * Public keys of publishers as a subscriber sees them: its config, re-read when the file
 * changed. A publisher it does not know is looked up in a changed file at once, so a client
 * registered after the subscriber started is never refused for being new.
 */
export class PublisherKeys {
  private checkedAt = performance.now();
  private mtimeMs: number;

  constructor(private config: ClusterConfig) {
    this.mtimeMs = statSync(config.file, { throwIfNoEntry: false })?.mtimeMs ?? -1;
  }

  readonly publicKeyOf = (client: string, fresh = false): string | undefined => {
    const known = this.config.table.clients.get(client)?.publicKey;
    if (fresh || known === undefined || performance.now() - this.checkedAt >= CONFIG_CHECK_MS) this.reloadIfChanged();
    return this.config.table.clients.get(client)?.publicKey;
  };

  private reloadIfChanged(): void {
    this.checkedAt = performance.now();
    const mtimeMs = statSync(this.config.file, { throwIfNoEntry: false })?.mtimeMs ?? -1;
    if (mtimeMs === this.mtimeMs) return;
    try {
      this.config = loadConfig(this.config.dir);
      this.mtimeMs = mtimeMs;
    } catch {
      // A config being edited: keep the one loaded, and look again next time.
    }
  }
}

/** Publisher clocks may run this far ahead of a subscriber's before a replay could pass as new (docs/security.md). */
export const CLOCK_SKEW_MS = 2000;

export function channelChecker(config: ClusterConfig, channel: string, cls: ChannelClass, keys: PublisherKeys): EventChecker | undefined {
  if (cls.protection === 'si') return undefined;
  const keyring = keyringOf(config, channel, cls);
  return new EventChecker({ channel, protection: cls.protection, publicKeyOf: keys.publicKeyOf, ...(keyring ? { keyring } : {}) });
}

/** The voter options of a protected channel (none for si). */
export function checkOptions(checker: EventChecker | undefined, config: ClusterConfig, cls: ChannelClass): Partial<VoterOptions> {
  if (!checker) return {};
  return {
    check: (buf, start, end) => checker.check(buf, start, end),
    checkReason: () => checker.reason,
    oneValidEnough: cls.protection === 'pks' || cls.protection === 'pke',
    blameQuorum: config.f + 1,
    horizonMs: Date.now() + CLOCK_SKEW_MS,
  };
}

/** Why a delivered copy was refused, as the subscriber reports it. */
export function protectionError(channel: string, publisher: string, reason: string, replicas: number[]): FitError {
  return new FitError('FIT_ERR_FORGED', `an event on channel "${channel}" claiming publisher "${publisher}" failed its protection check (${reason}); sent by replica(s) ${replicas.join(', ')}`, {
    channel,
    publisher,
    replicas: replicas.join(','),
  });
}
