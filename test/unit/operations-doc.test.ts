// docs/operations.md lists every metric a replica exports under fitbroker_, with its type and
// labels, and no other: an operator builds dashboards and alerts from that page.
// (Compiled to dist/test/unit/, so the repo root is three levels up.)

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ReplicaMetrics, METRIC_PREFIX, type OrderingSnapshot } from '../../src/replica/metrics.js';
import { readiness } from '../../src/replica/ops.js';

const ordering: OrderingSnapshot = { view: 0, leader: 0, changingView: false, recovering: false, lastDecided: 0, stableCheckpoint: 0, viewsEntered: 0, pending: 0, refused: 0, expired: 0, emptyBatches: 0, secondBodies: 0, eventsOrdered: 0, requestsOrdered: 0, eventsDecidedTwice: 0, requestsAwaited: 0, eventsDeferred: 0, linkDrops: 0, malformed: 0, snapshotsInstalled: 0, snapshotMismatches: 0, controlApplied: 0, controlRefused: 0, pausedConnections: 0, pausesForOrder: 0, shares: { probe: { requests: 0, queued: 0, queuedTotal: 0 } } };

it('documents every fitbroker_ metric in docs/operations.md with its type and labels, and only those', async () => {
  const doc = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| `(fitbroker_[a-z_]+)` \| (\w+) \|([^|]*)\|/gm)].map((m) => ({ name: m[1]!, type: m[2]!, labels: [...m[3]!.matchAll(/`(\w+)`/g)].map((l) => l[1]!).sort() }));
  const metrics = new ReplicaMetrics({
    replica: 0,
    n: 4,
    f: 1,
    tls: false,
    hugePages: true,
    queuedBytesMax: 1,
    channels: () => [],
    queuedBytes: () => 0,
    clientConnections: () => 0,
    replicaLinksIn: () => [],
    replicaLinksOut: () => [],
    evidence: () => new Map(),
    limits: () => ({ totals: { connectionsRefused: 0, throttles: 0, throttledMs: 0, pendingPauses: 0, refused: {} }, clients: {} }),
    ordering: () => ordering,
    readiness: () => readiness({ listening: true, draining: false, f: 1, peersConnected: [] }),
  });
  const code = (await metrics.registry.getMetricsAsJSON())
    .filter((m) => m.name.startsWith(METRIC_PREFIX))
    .map((m) => ({ name: m.name, type: String(m.type), labels: [...((metrics.registry.getSingleMetric(m.name) as unknown as { labelNames: string[] }).labelNames ?? [])].sort() }));
  assert.deepEqual(
    rows.map((r) => r.name).sort(),
    code.map((m) => m.name).sort(),
    'the metric tables in docs/operations.md and src/replica/metrics.ts name the same metrics',
  );
  for (const m of code) assert.deepEqual(rows.find((r) => r.name === m.name), m, `docs/operations.md: ${m.name}`);
});
