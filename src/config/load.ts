// Reads and checks cluster.yaml. Every error names the file, the key and what is expected,
// because the reader is an operator with the file open in an editor.

import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { FitError, limitsWith, PUBLISH_WINDOW_ORDERED_EVENTS_MAX, type ChannelClass, type ClientInfo, type ControlTable, type Limits, type Priority, type ReplicaInfo } from '../core/index.js';
import { isValidPublicKey, loadTlsIdentity, type TlsFiles, type TlsIdentity } from '../protection/index.js';
import { clusterSchema, type ClusterFile } from './schema.js';

export const CONFIG_FILE = 'cluster.yaml';

export interface ClusterConfig {
  dir: string;
  file: string;
  f: number;
  replicas: ReplicaInfo[];
  table: ControlTable;
  limits: Limits;
  /** Absent: plain TCP. Present: TLS on every connection, with these files (absolute paths). */
  tls?: TlsFiles;
}

export function configPath(dir: string): string {
  return join(dir, CONFIG_FILE);
}

function configError(file: string, key: string, expected: string): FitError {
  return new FitError('FIT_ERR_CONFIG', `${file}: ${key || '(top level)'}: ${expected}`, { file, key });
}

export function loadConfig(dir: string): ClusterConfig {
  const file = configPath(dir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new FitError('FIT_ERR_CONFIG', `no cluster config at ${file}; create one with \`fitbroker init --dir ${dir}\``, { file });
  }
  return parseConfig(text, file, dir);
}

export function parseConfig(text: string, file: string, dir: string): ClusterConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw configError(file, '', `is not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  const parsed = clusterSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw configError(file, issue.path.join('.'), `expected ${describeIssue(issue)}`);
  }
  return checkSemantics(parsed.data, file, dir);
}

function describeIssue(issue: { code: string; message: string; keys?: string[] }): string {
  if (issue.code === 'unrecognized_keys') return `no unknown keys, found ${issue.keys?.join(', ')} (check the spelling)`;
  // zod's messages already say "expected ..." after a prefix; configError adds its own "expected".
  const text = issue.message.replace(/^(Invalid input|Invalid option|Too big|Too small): /, '').replace(/^expected /, '');
  // zod says "received undefined" for a key that is not there; the operator needs "missing".
  return text.replace(/, received undefined$/, ', but the key is missing (add it)');
}

function checkSemantics(c: ClusterFile, file: string, dir: string): ClusterConfig {
  const n = c.replicas.length;
  c.replicas.forEach((r, i) => {
    if (r.id !== i) throw configError(file, `replicas.${i}.id`, `id ${i} (replicas are listed in id order from 0), found ${r.id}`);
    if (!isValidPublicKey(r.publicKey)) throw configError(file, `replicas.${i}.publicKey`, 'a base64 Ed25519 public key as written by `fitbroker init`');
  });
  const endpoints = new Set<string>();
  for (const r of c.replicas) {
    const ep = `${r.host}:${r.port}`;
    if (endpoints.has(ep)) throw configError(file, `replicas.${r.id}.port`, `a host:port no other replica uses, ${ep} is taken twice`);
    endpoints.add(ep);
  }
  // Metrics ports after every replica port, so the message names the metrics port at fault.
  for (const r of c.replicas) {
    if (r.metricsPort === undefined) continue;
    const ep = `${r.host}:${r.metricsPort}`;
    if (endpoints.has(ep)) throw configError(file, `replicas.${r.id}.metricsPort`, `a host:port no replica listens on and no other metricsPort uses, ${ep} is taken twice`);
    endpoints.add(ep);
  }
  const channels = new Map<string, ChannelClass>();
  for (const [tag, ch] of Object.entries(c.channels)) {
    const needed = ch.fault === 'bft' ? 3 * c.f + 1 : c.f + 1;
    if (n < needed) {
      throw configError(file, `channels.${tag}.fault`, `${ch.fault} with f=${c.f} needs at least ${needed} replicas (${ch.fault === 'bft' ? '3f+1' : 'f+1'}), the config lists ${n}`);
    }
    if (ch.order !== 'none' && (ch.fault !== 'bft' || n < 3 * c.f + 1)) {
      throw configError(file, `channels.${tag}.order`, `order: none for a ${ch.fault} channel with ${n} replicas: order: ${ch.order} is decided by consensus, which needs fault: bft and at least 3f+1 = ${3 * c.f + 1} replicas`);
    }
    if (ch.order !== 'none' && ch.overflow !== 'drop-oldest') {
      // The subscribers of an ordered channel read one log that all replicas number alike: a
      // replica cannot refuse or hold back one event of it for one console.
      throw configError(file, `channels.${tag}.overflow`, `drop-oldest for an ordered channel (order: ${ch.order}): its subscribers read one shared log, which evicts its oldest events at capacityEvents (counted as missed); overflow: ${ch.overflow} applies to unordered channels only`);
    }
    // Ordered channels need the consensus state on disk as well (docs/persistence.md).
    channels.set(tag, { ...ch, priority: ch.priority as Priority });
  }
  const clients = new Map<string, ClientInfo>();
  for (const [id, cl] of Object.entries(c.clients)) {
    if (!isValidPublicKey(cl.publicKey)) throw configError(file, `clients.${id}.publicKey`, 'a base64 Ed25519 public key as written by `fitbroker init`');
    for (const list of ['publish', 'subscribe'] as const) {
      cl[list].forEach((ch, i) => {
        if (ch !== '*' && !channels.has(ch)) throw configError(file, `clients.${id}.${list}.${i}`, `a channel listed under channels: (or "*"), found "${ch}"`);
      });
    }
    clients.set(id, { id, ...cl });
  }
  const tls = c.tls ? { ca: inDir(dir, c.tls.ca), cert: inDir(dir, c.tls.cert), key: inDir(dir, c.tls.key) } : undefined;
  const limits = limitsWith(c.limits as Partial<Limits>);
  const tree = limits.signatureBatchEventsMax;
  if ((tree & (tree - 1)) !== 0 || tree > 65_536) throw configError(file, 'limits.signatureBatchEventsMax', `a power of two up to 65536 (1, 2, 4, ... 16, ...), found ${tree}`);
  if (limits.batchEventsMax > PUBLISH_WINDOW_ORDERED_EVENTS_MAX) {
    // A publisher sends one batch past its window of ordered events when nothing else is in flight.
    throw configError(file, 'limits.batchEventsMax', `at most ${PUBLISH_WINDOW_ORDERED_EVENTS_MAX}, found ${limits.batchEventsMax}: a publisher may send one batch past its window of ordered events, and the replicas remember a publisher's ordered events with ${PUBLISH_WINDOW_ORDERED_EVENTS_MAX} out of order`);
  }
  if (limits.publishWindowOrderedEvents > PUBLISH_WINDOW_ORDERED_EVENTS_MAX) {
    throw configError(
      file,
      'limits.publishWindowOrderedEvents',
      `at most ${PUBLISH_WINDOW_ORDERED_EVENTS_MAX}, found ${limits.publishWindowOrderedEvents}: the replicas remember a publisher's ordered events with that many out of order, and a larger window could have an event taken for decided and never placed`,
    );
  }
  // A ready request waits behind at most what pending holds: pendingMax of this replica's own,
  // and the ready ones others attested (f+1 each, at most pendingMax per replica).
  const waits = Math.ceil((n * limits.consensusPendingMax) / ((c.f + 1) * limits.consensusBatchMax)) + limits.consensusInflightMax + limits.consensusLogWindow;
  if (limits.consensusAttestationSeqs < waits) {
    throw configError(
      file,
      'limits.consensusAttestationSeqs',
      `at least ${waits} (replicas × consensusPendingMax / ((f+1) × consensusBatchMax) + consensusInflightMax + consensusLogWindow), found ${limits.consensusAttestationSeqs}: a request that waits behind a full pending for that many seqs would be let go although its publisher did nothing wrong`,
    );
  }
  if (limits.orderClientRequestsMax < limits.publishWindowOrderedEvents) {
    throw configError(
      file,
      'limits.orderClientRequestsMax',
      `at least publishWindowOrderedEvents (${limits.publishWindowOrderedEvents}), found ${limits.orderClientRequestsMax}: a correct publisher's window of ordered events, one request each at most, must fit in its client's share of the order`,
    );
  }
  // In the protocol's ticks, as it counts them (consensusOptions).
  const ticks = (ms: number): number => Math.max(1, Math.round(ms / limits.consensusTickMs));
  if (ticks(limits.consensusTimeoutMs) < 3 * ticks(limits.consensusResendMs)) {
    // A request another replica alone holds reaches the leader in a HOLD (resent each period if
    // lost), and the leader moves the seqs on a period later: a backup that waited for that
    // longer than its timeout would vote to replace a correct leader.
    throw configError(
      file,
      'limits.consensusTimeoutMs',
      `at least 3 × consensusResendMs (${3 * ticks(limits.consensusResendMs)} ticks of consensusTickMs ${limits.consensusTickMs} ms), found ${ticks(limits.consensusTimeoutMs)} ticks (${limits.consensusTimeoutMs} ms)`,
    );
  }
  return { dir, file, f: c.f, replicas: c.replicas, table: { channels, clients }, limits, ...(tls ? { tls } : {}) };
}

/** A path from cluster.yaml: relative ones are relative to the file's directory, not the cwd. */
function inDir(dir: string, path: string): string {
  return isAbsolute(path) ? path : join(dir, path);
}

/** The node's checked TLS material when the cluster runs TLS; undefined for plain TCP. */
export function tlsIdentityFor(config: ClusterConfig, name: string): TlsIdentity | undefined {
  return config.tls ? loadTlsIdentity(config.tls, name) : undefined;
}

/**
 * The config with one node's certificate and key taken from other files (the --tls-cert and
 * --tls-key flags): a host whose files are not where cluster.yaml's template says.
 */
export function withTlsFiles(config: ClusterConfig, o: { tlsCert?: string; tlsKey?: string }): ClusterConfig {
  if (o.tlsCert === undefined && o.tlsKey === undefined) return config;
  if (!config.tls) {
    throw new FitError('FIT_ERR_USAGE', `--tls-cert and --tls-key need TLS on: ${config.file} has no tls: section (add one, or run \`fitbroker init --tls\`)`, { file: config.file });
  }
  return { ...config, tls: { ...config.tls, ...(o.tlsCert !== undefined ? { cert: o.tlsCert } : {}), ...(o.tlsKey !== undefined ? { key: o.tlsKey } : {}) } };
}

/** Replica n's private key file, relative to the cluster dir. */
export function replicaKeyPath(dir: string, id: number): string {
  return join(dir, 'keys', `replica-${id}.pem`);
}

export function clientKeyPath(dir: string, client: string): string {
  return join(dir, 'keys', `${client}.pem`);
}

/** Replica n's own data directory: what it keeps across restarts. */
export function replicaDataDir(dir: string, id: number): string {
  return join(dir, 'data', `replica-${id}`);
}
