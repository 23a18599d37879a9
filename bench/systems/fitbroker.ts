// Ours: a real cluster of `fitbroker replica` processes (the same helper the integration
// tests use), and the project's own Publisher and Subscriber in the worker processes — the
// client library a probe or SIEM integration links, used the way its docs say to.

import { clientKeyPath, loadConfig } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { Publisher, Subscriber, queryStatus } from '../../src/client/index.js';
import { publishQuorum, type ChannelClass, type FaultModel, type Limits, type Persist, type Protection } from '../../src/core/index.js';
import { replicaTotals } from '../../src/cli/index.js';
import { startCluster } from '../../test/helpers/cluster.js';
import { workerName, type ClientFactory, type ClientSide, type RunShape, type ServerHandle, type ServerSide } from './types.js';

export type FitMode = 'cft' | 'bft' | 'bft-ordered';

const LABELS: Record<FitMode, string> = {
  cft: 'fitbroker cft (n=2, f=1)',
  bft: 'fitbroker bft (n=4, f=1)',
  'bft-ordered': 'fitbroker bft-ordered (n=4, f=1, order: channel)',
};

/** Settings of every channel of a run (--channel-setting), over what `init` writes. */
export type ChannelSettings = Partial<Pick<ChannelClass, 'capacityEvents' | 'ttlMs' | 'overflow'>>;

/** The channel class a mode runs: bft-ordered is bft with every channel ordered by consensus. */
const faultOf = (mode: string): FaultModel => (mode === 'cft' ? 'cft' : 'bft');

export function fitbrokerServer(
  mode: FitMode,
  faults: Record<number, string[]> = {},
  protection: Protection = 'si',
  tls = false,
  persist: Persist = 'memory',
  limits: Partial<Limits> = {},
  channelSettings: ChannelSettings = {},
): ServerSide {
  const faulty = Object.entries(faults).map(([id, kinds]) => `replica ${id} ${kinds.join('+')}`);
  // An ordered channel is always drop-oldest (config load refuses anything else).
  const { overflow: _ordered, ...unordered } = channelSettings;
  const settings: ChannelSettings = mode === 'bft-ordered' ? unordered : channelSettings;
  const tuned = [...Object.entries(limits), ...Object.entries(settings)].map(([k, v]) => `${k}=${v}`);
  return {
    system: 'fitbroker',
    mode,
    protection,
    persist,
    label: LABELS[mode] + (protection !== 'si' ? ` ${protection}` : '') + (persist === 'disk' ? ' on disk' : '') + (tls ? ' over TLS' : '') + (faulty.length ? ` with ${faulty.join(', ')}` : '') + (tuned.length ? ` (${tuned.join(', ')})` : ''),
    unavailable: async () => undefined,
    async start(shape: RunShape): Promise<ServerHandle> {
      const clients = [
        ...Array.from({ length: shape.publishers }, (_, i) => ({ name: workerName('publisher', i), role: 'pub' as const })),
        ...Array.from({ length: shape.subscribers }, (_, i) => ({ name: workerName('subscriber', i), role: 'sub' as const })),
        // Asks the replicas who leads (the leader-crash phase).
        { name: 'admin', role: 'admin' as const },
      ];
      const cluster = await startCluster({
        replicas: mode === 'cft' ? 2 : 4,
        f: 1,
        faultModel: faultOf(mode),
        channels: mode === 'bft-ordered' ? [] : shape.channels,
        ordered: mode === 'bft-ordered' ? shape.channels : [],
        clients,
        defaultClients: false,
        faults,
        protection,
        persist,
        // In cluster.yaml, so the workers' clients use them too (publishLingerMs, …).
        limits,
        channelSettings: Object.fromEntries(shape.channels.map((c) => [c, settings])),
        // The workers load the config from the cluster dir: with its tls: section they dial TLS.
        tls,
        // e.g. FIT_BENCH_REPLICA_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (docs/performance.md)
        replicaNodeArgs: (process.env.FIT_BENCH_REPLICA_NODE_ARGS ?? '').split(' ').filter(Boolean),
      });
      const adminKey = loadPrivateKey(clientKeyPath(cluster.dir, 'admin'));
      return {
        endpoint: { system: 'fitbroker', mode, params: { dir: cluster.dir } },
        pids: () => cluster.procs.map((p) => p?.pid).filter((p): p is number => p !== undefined),
        async drops() {
          const all = await queryStatus(cluster.config, 'admin', adminKey, 3_000);
          return all.map((r) => (r.reachable ? replicaTotals(r.status).dropped : null));
        },
        ...(mode === 'bft-ordered'
          ? {
              async killLeader() {
                const all = await queryStatus(cluster.config, 'admin', adminKey, 3_000);
                const votes = new Map<number, number>();
                for (const r of all) if (r.reachable) {
                  const l = (r.status as { consensus: { leader: number } }).consensus.leader;
                  votes.set(l, (votes.get(l) ?? 0) + 1);
                }
                const leader = [...votes].sort((a, b) => b[1] - a[1])[0]![0];
                await cluster.kill(leader);
                return leader;
              },
            }
          : {}),
        async stop() {
          // SIGTERM first: a replica run with --cpu-prof writes its profile only on a clean exit.
          await Promise.all(cluster.config.replicas.map((r) => cluster.kill(r.id, 'SIGTERM')));
          await cluster.stop();
        },
      };
    },
  };
}

export const fitbrokerClient: ClientFactory = async (endpoint, role) => {
  const dir = String(endpoint.params.dir);
  const config = loadConfig(dir);
  const key = loadPrivateKey(clientKeyPath(dir, role.name));
  let pub: Publisher | undefined;
  const subs: Subscriber[] = [];
  const side: ClientSide = {
    async connect() {
      if (role.kind !== 'publisher') return;
      pub = new Publisher(config, role.name, key).connect();
      const quorum = publishQuorum(faultOf(endpoint.mode), config.f);
      while (pub.readyReplicas < Math.min(quorum, config.replicas.length)) await new Promise((r) => setTimeout(r, 20));
    },
    async subscribe(channels, onMessage) {
      // One Subscriber for every channel: n connections, as a SIEM integration would use it.
      subs.push(new Subscriber(config, role.name, key, { channels, onEvent: (ev) => onMessage(ev.content) }));
      await Promise.all(subs.map((s) => s.start()));
    },
    publish: (channel, payload) => pub!.publish(channel, payload),
    publishUrgent: (channel, payload) => pub!.publish(channel, payload, { priority: 3 }),
    drained: () => pub!.drained(),
    flush: () => pub!.flush(120_000),
    async close() {
      pub?.close();
      await Promise.all(subs.map((s) => s.close(100)));
    },
  };
  return side;
};
