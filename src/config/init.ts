// `fitbroker init`: writes cluster.yaml, one Ed25519 key pair per replica and client, and a key
// ring per channel whose protection needs one (ha, pke).

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { FitError, DEFAULT_LIMITS, type FaultModel, type OverflowPolicy, type Persist, type Protection } from '../core/index.js';
import { createChannelKeys, generateIdentity, writePrivateKey, needsChannelKey, replicaTlsName, writeClusterTls, NODE_NAME_TOKEN } from '../protection/index.js';
import { NAME_PATTERN } from './schema.js';
import { clientKeyPath, configPath, parseConfig, replicaKeyPath, type ClusterConfig } from './load.js';

export type ClientRole = 'pub' | 'sub' | 'pubsub' | 'admin';

export interface InitOptions {
  dir: string;
  replicas: number;
  faults: number;
  channels: string[];
  basePort: number;
  host: string;
  faultModel: FaultModel;
  clients: { name: string; role: ClientRole }[];
  force: boolean;
  /** Adds probe, console and admin unless `clients` names them (default true). */
  defaultClients?: boolean;
  /** Channels with order: channel, and with order: global (added to `channels` when missing). */
  ordered?: string[];
  orderedGlobal?: string[];
  /** Quality of protection of every channel it creates (default pks). */
  protection?: Protection;
  /** Where every channel it creates keeps its events (default memory). */
  persist?: Persist;
  /**
   * What a full subscriber queue does on every unordered channel it creates (default
   * drop-oldest); ordered channels keep drop-oldest, the only policy their shared log has.
   */
  overflow?: OverflowPolicy;
  /** Writes a tls: section (TLS on every connection); then makeClusterTls() makes the files. */
  tls?: boolean;
  /**
   * Replica i serves /metrics, /healthz and /readyz on metricsBasePort + i (default basePort +
   * METRICS_PORT_OFFSET); 0 writes no metricsPort (not served).
   */
  metricsBasePort?: number;
  /**
   * Adds the monitoring agent's channels and its two clients (MONITORING_CHANNELS,
   * MONITORING_CLIENTS; docs/monitoring.md). Default false here; `fitbroker init` passes true
   * unless --no-monitoring.
   */
  monitoring?: boolean;
}

/** Replica i's metrics port is its client port plus this, unless init --metrics-base-port says otherwise. */
export const METRICS_PORT_OFFSET = 1000;

/** The metrics ports init writes for `n` replicas: none for 0; refused when out of range or on a replica port. */
export function metricsBasePortFor(o: Pick<InitOptions, 'basePort' | 'replicas' | 'metricsBasePort'>): number {
  const base = o.metricsBasePort ?? o.basePort + METRICS_PORT_OFFSET;
  if (base === 0) return 0;
  const last = base + o.replicas - 1;
  const flag = o.metricsBasePort === undefined ? `the default --metrics-base-port (--base-port + ${METRICS_PORT_OFFSET} = ${base})` : `--metrics-base-port ${base}`;
  if (base < 1 || last > 65535) {
    throw new FitError('FIT_ERR_USAGE', `${flag}: the metrics ports ${base}-${last} are not all within 1-65535; pass a lower --metrics-base-port, or 0 to serve no metrics`, { port: base });
  }
  if (base <= o.basePort + o.replicas - 1 && o.basePort <= last) {
    throw new FitError('FIT_ERR_USAGE', `${flag}: the metrics ports ${base}-${last} overlap the replica ports ${o.basePort}-${o.basePort + o.replicas - 1}; pass another --metrics-base-port, or 0 to serve no metrics`, { port: base });
  }
  return base;
}

/** Where `init --tls` puts the CA and each node's certificate and key, relative to the dir. */
export const DEFAULT_TLS = { ca: 'keys/tls/ca.crt', cert: `keys/tls/${NODE_NAME_TOKEN}.crt`, key: `keys/tls/${NODE_NAME_TOKEN}.key` } as const;

export const DEFAULT_CLIENTS: { name: string; role: ClientRole }[] = [
  { name: 'probe', role: 'pub' },
  { name: 'console', role: 'sub' },
  { name: 'admin', role: 'admin' },
];

/**
 * The monitoring agent's channels (a contract: docs/monitoring.md). Commands are ordered
 * (every agent and every reader sees them in one order) when the cluster can order.
 */
export const MONITORING_CONTROL_CHANNEL = 'monitor.control';
export const MONITORING_DATA_CHANNELS = ['monitor.status', 'monitor.syscalls', 'monitor.proclist', 'monitor.files', 'monitor.perf'] as const;
export const MONITORING_CHANNELS = [MONITORING_CONTROL_CHANNEL, ...MONITORING_DATA_CHANNELS] as const;

/**
 * `agent` publishes what it collects and reads commands; `analyst` issues commands and reads
 * everything. Nobody else may publish on a monitor.* channel: a probe that could would forge
 * monitoring data or commands, so init grants pub-role clients the other channels by name
 * instead of '*' when it adds these.
 */
export const MONITORING_CLIENTS = [
  { name: 'agent', publish: [...MONITORING_DATA_CHANNELS], subscribe: [MONITORING_CONTROL_CHANNEL] },
  { name: 'analyst', publish: [MONITORING_CONTROL_CHANNEL], subscribe: ['*'] },
] as const;

export function parseClientsFlag(value: string): { name: string; role: ClientRole }[] {
  return value
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((item) => {
      const [name, role] = item.trim().split(':');
      if (!name || !NAME_PATTERN.test(name) || !role || !['pub', 'sub', 'pubsub'].includes(role)) {
        throw new FitError('FIT_ERR_USAGE', `--clients: "${item}" is not NAME:ROLE with ROLE pub, sub or pubsub (e.g. siem1:sub,siem2:sub)`, { value: item });
      }
      return { name, role: role as ClientRole };
    });
}

export function initCluster(o: InitOptions): ClusterConfig {
  const file = configPath(o.dir);
  if (existsSync(file) && !o.force) {
    throw new FitError('FIT_ERR_USAGE', `${file} already exists; pass --force to overwrite it and its keys, or choose another --dir`, { file });
  }
  const orderOf = new Map<string, 'channel' | 'global'>();
  for (const ch of o.ordered ?? []) orderOf.set(ch, 'channel');
  for (const ch of o.orderedGlobal ?? []) {
    if (orderOf.has(ch)) throw new FitError('FIT_ERR_USAGE', `channel "${ch}" is in both --ordered and --ordered-global; choose one order for it`, { channel: ch });
    orderOf.set(ch, 'global');
  }
  const canOrder = o.faultModel === 'bft' && o.replicas >= 3 * o.faults + 1;
  if (o.monitoring) {
    for (const ch of MONITORING_CHANNELS) if (o.channels.includes(ch) || orderOf.has(ch)) throw new FitError('FIT_ERR_USAGE', `channel "${ch}" is one init adds for the monitoring agent; leave it out of --channels and --ordered, or pass --no-monitoring`, { channel: ch });
    if (canOrder) orderOf.set(MONITORING_CONTROL_CHANNEL, 'channel');
  }
  const userChannels = [...new Set([...o.channels, ...orderOf.keys()])].filter((ch) => !(MONITORING_CHANNELS as readonly string[]).includes(ch));
  const channelNames = [...userChannels, ...(o.monitoring ? MONITORING_CHANNELS : [])];
  if (userChannels.length === 0) throw new FitError('FIT_ERR_USAGE', '--channels needs at least one channel name, e.g. --channels alerts,metrics');
  if ([...orderOf.keys()].some((ch) => ch !== MONITORING_CONTROL_CHANNEL || !o.monitoring) && !canOrder) {
    throw new FitError('FIT_ERR_USAGE', `--ordered channels are ordered by consensus, which needs --fault-model bft and --replicas at least 3f+1 = ${3 * o.faults + 1}`);
  }
  for (const ch of channelNames) {
    if (!NAME_PATTERN.test(ch)) throw new FitError('FIT_ERR_USAGE', `--channels: "${ch}" is not a valid channel name (letters, digits, ".", "_", "-")`, { channel: ch });
  }
  const metricsBase = metricsBasePortFor(o);
  mkdirSync(`${o.dir}/keys`, { recursive: true, mode: 0o700 });
  // New keys make a new cluster: what replicas of the old one kept must not make the new ones
  // believe they ran before.
  rmSync(join(o.dir, 'data'), { recursive: true, force: true });
  const replicas = Array.from({ length: o.replicas }, (_, id) => {
    const k = generateIdentity();
    writePrivateKey(replicaKeyPath(o.dir, id), k.privatePem);
    return { id, host: o.host, port: o.basePort + id, ...(metricsBase > 0 ? { metricsPort: metricsBase + id } : {}), publicKey: k.publicKey };
  });
  const clients: Record<string, unknown> = {};
  const defaults = o.defaultClients === false ? [] : DEFAULT_CLIENTS;
  const all = [...defaults.filter((d) => !o.clients.some((c) => c.name === d.name)), ...o.clients];
  const monitoringClients = o.monitoring ? MONITORING_CLIENTS.filter((m) => !all.some((c) => c.name === m.name)) : [];
  const publishAll = o.monitoring ? userChannels : ['*'];
  for (const c of all) {
    const k = generateIdentity();
    writePrivateKey(clientKeyPath(o.dir, c.name), k.privatePem);
    clients[c.name] = {
      publicKey: k.publicKey,
      publish: c.role === 'pub' || c.role === 'pubsub' ? publishAll : [],
      subscribe: c.role === 'sub' || c.role === 'pubsub' ? ['*'] : [],
      ...(c.role === 'admin' ? { admin: true } : {}),
    };
  }
  for (const m of monitoringClients) {
    const k = generateIdentity();
    writePrivateKey(clientKeyPath(o.dir, m.name), k.privatePem);
    clients[m.name] = { publicKey: k.publicKey, publish: [...m.publish], subscribe: [...m.subscribe] };
  }
  const protection = o.protection ?? 'pks';
  const persist = o.persist ?? 'memory';
  // The monitoring channels keep drop-oldest too: an analyst that subscribes to everything and
  // reads only some of it must not hold up the agent (whose tracer cannot wait).
  const overflow = (ch: string): OverflowPolicy => (orderOf.has(ch) || !userChannels.includes(ch) ? 'drop-oldest' : (o.overflow ?? 'drop-oldest'));
  const channels = Object.fromEntries(
    channelNames.map((ch) => [
      ch,
      { fault: o.faultModel, order: orderOf.get(ch) ?? 'none', priority: 0, capacityEvents: DEFAULT_LIMITS.queueCapacityEvents, ttlMs: DEFAULT_LIMITS.ttlMs, overflow: overflow(ch), persist, protection },
    ]),
  );
  if (needsChannelKey(protection)) for (const ch of channelNames) createChannelKeys(o.dir, ch, protection, true);
  const doc = { version: 1, f: o.faults, replicas, channels, clients, limits: {}, ...(o.tls ? { tls: DEFAULT_TLS } : {}) };
  const text = `# fitbroker cluster config, written by \`fitbroker init\`. Edit by hand; it is checked on load.\n# Private keys are in keys/ beside this file: give each host only its own, and each channel's\n# key ring (keys/channels/) to that channel's publishers and subscribers only, never to replicas.\n${stringify(doc, { lineWidth: 0 })}`;
  const config = parseConfig(text, file, o.dir);
  writeFileSync(file, text);
  return config;
}

/**
 * Makes a new cluster CA and a certificate and key for every replica and client of the config
 * (`init --tls`); the CA's own key stays beside its certificate, to issue more later.
 */
export async function makeClusterTls(config: ClusterConfig): Promise<void> {
  if (!config.tls) throw new FitError('FIT_ERR_USAGE', `${config.file} has no tls: section to make certificates for; run fitbroker init --tls`, { file: config.file });
  await writeClusterTls(config.tls, [...config.replicas.map((r) => replicaTlsName(r.id)), ...config.table.clients.keys()]);
}
