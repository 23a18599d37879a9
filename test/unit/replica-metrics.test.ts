// A replica's metrics and operations endpoint without a cluster (docs/operations.md): what
// ReplicaMetrics reads from a replica's counters, how readiness is decided, what the HTTP
// routes answer, and the strict exposition parser the integration tests rely on.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { ChannelStats } from '../../src/broker/index.js';
import { ReplicaMetrics, type MetricsSource, type OrderingSnapshot } from '../../src/replica/metrics.js';
import { OpsServer, readiness } from '../../src/replica/ops.js';
import { parseExposition, Scrape } from '../helpers/prometheus.js';

const queue = (o: Partial<ChannelStats['queues'][string]> = {}): ChannelStats['queues'][string] => ({
  enqueued: 0,
  sent: 0,
  droppedCapacity: 0,
  droppedBytes: 0,
  droppedNewest: 0,
  droppedTtl: 0,
  droppedUnsubscribed: 0,
  blocks: 0,
  blockedMs: 0,
  depth: 0,
  sessions: 0,
  dropped: { capacity: 0, bytes: 0, ttl: 0, unsubscribed: 0 },
  blocking: false,
  ...o,
});

function channels(): ChannelStats[] {
  return [
    { tag: 'alerts', fault: 'bft', order: 'none', protection: 'si', persist: 'memory', overflow: 'drop-oldest', dropped: { capacity: 0, bytes: 0, ttl: 0, unsubscribed: 0 }, blocked: false, blockedBy: [], blocks: 0, blockedMs: 0, eventsIn: 10, duplicates: 2, droppedTtl: 1, droppedUnsubscribed: 4, queues: { console: queue({ sent: 7, depth: 3, sessions: 1, droppedCapacity: 5, droppedBytes: 2, droppedTtl: 1 }), siem: queue({ sent: 10 }) } },
    {
      tag: 'orders',
      fault: 'bft',
      order: 'channel',
      protection: 'si',
      persist: 'memory',
      overflow: 'drop-oldest',
      dropped: { capacity: 0, bytes: 0, ttl: 0, unsubscribed: 0 },
      blocked: false,
      blockedBy: [],
      blocks: 0,
      blockedMs: 0,
      eventsIn: 6,
      duplicates: 0,
      droppedTtl: 0,
      droppedUnsubscribed: 0,
      log: { low: 1, high: 6, depth: 6, evictedCapacity: 0, evictedTtl: 0, skipped: 0, positions: { console: { next: 5, missed: 1, sent: 4 } } },
      queues: {},
    },
  ];
}

const ordering: OrderingSnapshot = { view: 5, leader: 1, changingView: false, recovering: false, lastDecided: 42, stableCheckpoint: 32, viewsEntered: 2, pending: 3, refused: 0, expired: 3, emptyBatches: 9, secondBodies: 5, eventsOrdered: 6, requestsOrdered: 2, eventsDecidedTwice: 1, requestsAwaited: 4, eventsDeferred: 0, linkDrops: 7, malformed: 0, snapshotsInstalled: 1, snapshotMismatches: 0, controlApplied: 2, controlRefused: 1, pausedConnections: 0, pausesForOrder: 0, shares: { probe: { requests: 2, queued: 0, queuedTotal: 0 }, mallory: { requests: 8192, queued: 40, queuedTotal: 900 } } };

function source(over: Partial<MetricsSource> = {}): MetricsSource {
  return {
    replica: 1,
    n: 4,
    f: 1,
    tls: false,
    hugePages: false,
    queuedBytesMax: 1000,
    channels,
    queuedBytes: () => 640,
    clientConnections: () => 2,
    replicaLinksIn: () => [0, 2, 2],
    replicaLinksOut: () => [0, 3],
    evidence: () => new Map([[2, 9]]),
    limits: () => ({ totals: { connectionsRefused: 0, throttles: 0, throttledMs: 0, pendingPauses: 0, refused: { FIT_ERR_NOT_AUTHORIZED: 3 } }, clients: { probe: { connectionsRefused: 0, throttles: 1, throttledMs: 1500, pendingPauses: 2, refused: {} } } }),
    ordering: () => ordering,
    readiness: () => readiness({ listening: true, draining: false, f: 1, peersConnected: [0, 3] }),
    ...over,
  };
}

describe('ReplicaMetrics: read from the replica counters at scrape time', () => {
  it('names every family fitbroker_*, or the standard process_* and nodejs_*, and labels every series with the replica', async () => {
    const s = new Scrape(await new ReplicaMetrics(source()).scrape());
    for (const f of s.families.values()) {
      assert.match(f.name, /^(fitbroker_|process_|nodejs_)/, f.name);
      assert.ok(f.help, `${f.name} has a HELP line`);
      for (const x of f.samples) assert.equal(x.labels.replica, '1', `${x.name} carries replica="1"`);
    }
    assert.ok(s.families.has('process_cpu_user_seconds_total'), 'default process metrics are there');
    assert.ok(s.families.has('nodejs_eventloop_lag_seconds'), 'default event-loop metrics are there');
  });

  it('shows events in, out and dropped by channel, client and reason, each drop counted once', async () => {
    const s = new Scrape(await new ReplicaMetrics(source()).scrape());
    assert.equal(s.value('fitbroker_events_in_total', { channel: 'alerts' }), 10);
    assert.equal(s.value('fitbroker_events_in_total', { channel: 'orders' }), 6);
    assert.equal(s.value('fitbroker_events_duplicate_total', { channel: 'alerts' }), 2);
    assert.equal(s.value('fitbroker_events_expired_on_arrival_total', { channel: 'alerts' }), 1);
    assert.equal(s.value('fitbroker_events_out_total', { channel: 'alerts', client: 'console' }), 7);
    assert.equal(s.value('fitbroker_events_out_total', { channel: 'orders', client: 'console' }), 4);
    // droppedBytes is the part of droppedCapacity due to queuedBytesMax: 5 = 3 capacity + 2 bytes.
    assert.equal(s.value('fitbroker_events_dropped_total', { channel: 'alerts', client: 'console', reason: 'capacity' }), 3);
    assert.equal(s.value('fitbroker_events_dropped_total', { channel: 'alerts', client: 'console', reason: 'bytes' }), 2);
    assert.equal(s.value('fitbroker_events_dropped_total', { channel: 'alerts', client: 'console', reason: 'ttl' }), 1);
    const unsub = s.samples('fitbroker_events_dropped_total', { channel: 'alerts', reason: 'unsubscribed' });
    assert.equal(unsub.length, 1);
    assert.equal(unsub[0]!.value, 4);
    assert.equal(unsub[0]!.labels.client, undefined, 'the queue of an unsubscribed client is gone: no client label');
    assert.equal(s.value('fitbroker_events_dropped_total', { channel: 'orders', client: 'console', reason: 'evicted' }), 1);
    assert.equal(s.sum('fitbroker_events_dropped_total', { channel: 'alerts' }), 10);
    assert.equal(s.value('fitbroker_queue_depth_events', { channel: 'alerts', client: 'console' }), 3);
    assert.equal(s.value('fitbroker_queue_depth_events', { channel: 'orders', client: 'console' }), 2, 'seqs 5 and 6 wait for it');
    assert.equal(s.value('fitbroker_queue_sessions', { channel: 'alerts', client: 'console' }), 1);
    assert.equal(s.value('fitbroker_queued_bytes'), 640);
    assert.equal(s.value('fitbroker_queued_bytes_max'), 1000);
    assert.equal(s.value('fitbroker_ordered_log_high_seq', { channel: 'orders' }), 6);
  });

  it('shows connections, links, refusals, limits, evidence and the ordering protocol', async () => {
    const s = new Scrape(await new ReplicaMetrics(source()).scrape());
    assert.equal(s.value('fitbroker_client_connections'), 2);
    assert.deepEqual(
      s.samples('fitbroker_replica_links').map((x) => `${x.labels.peer}${x.labels.direction}=${x.value}`).sort(),
      ['0in=1', '0out=1', '2in=2', '2out=0', '3in=0', '3out=1'],
    );
    assert.equal(s.value('fitbroker_refusals_total', { code: 'FIT_ERR_NOT_AUTHORIZED' }), 3);
    assert.equal(s.value('fitbroker_client_throttled_seconds_total', { client: 'probe' }), 1.5);
    assert.equal(s.value('fitbroker_client_pending_pauses_total', { client: 'probe' }), 2);
    assert.equal(s.value('fitbroker_evidence_mismatches_total', { suspect: '2' }), 9);
    assert.equal(s.value('fitbroker_consensus_view'), 5);
    assert.equal(s.value('fitbroker_consensus_leader'), 1);
    assert.equal(s.value('fitbroker_consensus_last_executed_seq'), 42);
    assert.equal(s.value('fitbroker_consensus_leader_changes_total'), 2);
    assert.equal(s.value('fitbroker_consensus_link_drops_total'), 7);
    assert.equal(s.value('fitbroker_consensus_event_requests_total'), 2);
    assert.equal(s.value('fitbroker_consensus_requests_awaited'), 4);
    assert.equal(s.value('fitbroker_consensus_second_bodies_total'), 5);
    assert.equal(s.value('fitbroker_consensus_expired_total'), 3);
    assert.equal(s.value('fitbroker_consensus_client_requests', { client: 'probe' }), 2);
    assert.equal(s.value('fitbroker_consensus_client_requests', { client: 'mallory' }), 8192);
    assert.equal(s.value('fitbroker_consensus_client_requests_queued', { client: 'mallory' }), 40);
    assert.equal(s.value('fitbroker_consensus_client_requests_queued_total', { client: 'mallory' }), 900);
    assert.equal(s.value('fitbroker_consensus_empty_batches_total'), 9);
    assert.equal(s.value('fitbroker_consensus_events_decided_twice_total'), 1);
    assert.equal(s.value('fitbroker_control_changes_total', { outcome: 'refused' }), 1);
    assert.equal(s.value('fitbroker_ready'), 1);
    assert.equal(s.value('fitbroker_replica_info', { n: '4', f: '1', tls: 'false' }), 1);
    assert.equal(s.value('fitbroker_malloc_huge_pages'), 0);
  });

  it('reads the counters again at every scrape: series follow them up, and go away with what they count', async () => {
    let eventsIn = 1;
    let subscribed = true;
    const m = new ReplicaMetrics(
      source({
        channels: (): ChannelStats[] => [{ ...channels()[0]!, eventsIn, queues: subscribed ? { console: queue() } : ({} as ChannelStats['queues']) }],
        ordering: () => undefined,
        replicaLinksOut: () => [],
      }),
    );
    assert.equal(new Scrape(await m.scrape()).value('fitbroker_events_in_total', { channel: 'alerts' }), 1);
    eventsIn = 5;
    subscribed = false;
    const s = new Scrape(await m.scrape());
    assert.equal(s.value('fitbroker_events_in_total', { channel: 'alerts' }), 5);
    assert.equal(s.samples('fitbroker_queue_depth_events').length, 0);
    assert.equal(s.samples('fitbroker_consensus_view').length, 0, 'no ordering protocol: no consensus series');
    assert.equal(s.samples('fitbroker_replica_links', { direction: 'out' }).length, 0, 'no ordering protocol: no links of its own');
  });

  it('times publish acknowledgements and ordered batches in histograms', async () => {
    const m = new ReplicaMetrics(source());
    m.publishAck.observe({ ordered: 'false' }, 0.0003);
    m.publishAck.observe({ ordered: 'true' }, 0.04);
    m.orderBatch.observe(0.035);
    const s = new Scrape(await m.scrape());
    assert.equal(s.value('fitbroker_publish_ack_seconds_count', { ordered: 'false' }), 1);
    assert.equal(s.value('fitbroker_publish_ack_seconds_bucket', { ordered: 'false', le: '0.0005' }), 1);
    assert.equal(s.value('fitbroker_publish_ack_seconds_bucket', { ordered: 'false', le: '0.00025' }), 0);
    assert.equal(s.value('fitbroker_order_batch_seconds_count'), 1);
  });
});

describe('readiness: what /readyz answers', () => {
  it('is ready when listening, not draining, and linked to 2f other replicas', () => {
    assert.deepEqual(readiness({ listening: true, draining: false, f: 1, peersConnected: [0, 2] }), { ready: true, missing: [], listening: true, draining: false, peers: { connected: [0, 2], needed: 2 } });
  });

  it('says what is missing otherwise', () => {
    const r = readiness({ listening: false, draining: false, f: 2, peersConnected: [1, 2, 3] });
    assert.equal(r.ready, false);
    assert.equal(r.missing.length, 2);
    assert.match(r.missing[0]!, /not listening/);
    assert.match(r.missing[1]!, /linked to 3 other replica\(s\) \[1,2,3\], needs 4 \(2f\)/);
    const closing = readiness({ listening: false, draining: true, f: 1, peersConnected: [0, 1] });
    assert.deepEqual(closing.missing.length, 1, 'a replica shutting down closed its port: one reason');
    assert.match(closing.missing[0]!, /shutting down/);
  });

  it('needs no links without the ordering protocol (n < 3f+1)', () => {
    assert.equal(readiness({ listening: true, draining: false, f: 1, peersConnected: undefined }).ready, true);
  });
});

describe('OpsServer: the HTTP routes', () => {
  it('serves /metrics, /healthz and /readyz, 404 elsewhere and 405 for anything but GET', async () => {
    let ready = true;
    const ops = new OpsServer({
      metrics: async () => '# TYPE x counter\nx 1\n',
      metricsContentType: 'text/plain; version=0.0.4; charset=utf-8',
      health: () => ({ replica: 3 }),
      readiness: () => readiness({ listening: true, draining: !ready, f: 1, peersConnected: undefined }),
    });
    const port = await ops.listen(0, '127.0.0.1');
    try {
      const url = (p: string): string => `http://127.0.0.1:${port}${p}`;
      const m = await fetch(url('/metrics'));
      assert.equal(m.status, 200);
      assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      assert.equal(parseExposition(await m.text()).get('x')?.samples[0]?.value, 1);
      const h = await fetch(url('/healthz'));
      assert.equal(h.status, 200);
      assert.deepEqual(await h.json(), { status: 'ok', replica: 3 });
      assert.equal((await fetch(url('/readyz'))).status, 200);
      ready = false;
      const r = await fetch(url('/readyz?verbose'));
      assert.equal(r.status, 503);
      const body = (await r.json()) as { status: string; missing: string[] };
      assert.equal(body.status, 'not ready');
      assert.match(body.missing[0]!, /shutting down/);
      assert.equal((await fetch(url('/nope'))).status, 404);
      const post = await fetch(url('/metrics'), { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
    } finally {
      await ops.close();
    }
  });

  it('fails to listen on a port that is in use, with the error the replica turns into FIT_ERR_CONFIG', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const ops = new OpsServer({ metrics: async () => '', metricsContentType: 'text/plain', health: () => ({}), readiness: () => readiness({ listening: true, draining: false, f: 0, peersConnected: undefined }) });
      await assert.rejects(ops.listen(port, '127.0.0.1'), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
      await ops.close();
    } finally {
      blocker.close();
    }
  });
});

describe('the strict exposition parser used by the tests', () => {
  it('reads labels with escapes, special values and histograms', () => {
    const text = [
      '# HELP a_total A counter with a \\\\ and a \\n in its help',
      '# TYPE a_total counter',
      'a_total{x="q\\"uote",y="back\\\\slash\\nline"} 3',
      '# TYPE g gauge',
      'g -1.5e3',
      'g{k="v",} +Inf',
      '# TYPE h histogram',
      'h_bucket{le="0.1"} 1',
      'h_bucket{le="+Inf"} 2',
      'h_sum 0.3',
      'h_count 2',
      '',
    ].join('\n');
    const s = new Scrape(text);
    assert.equal(s.families.get('a_total')!.help, 'A counter with a \\ and a \n in its help');
    assert.deepEqual(s.samples('a_total')[0]!.labels, { x: 'q"uote', y: 'back\\slash\nline' });
    assert.deepEqual(s.samples('g').map((x) => x.value), [-1500, Infinity]);
    assert.equal(s.value('g', { k: 'v' }), Infinity);
    assert.equal(s.value('h_count'), 2);
  });

  for (const [what, text] of [
    ['a sample without TYPE', 'x 1\n'],
    ['a family in two groups', '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{k="v"} 2\n'],
    ['a duplicate series', '# TYPE a gauge\na{k="v"} 1\na{k="v"} 2\n'],
    ['a bad value', '# TYPE a gauge\na one\n'],
    ['an unquoted label value', '# TYPE a gauge\na{k=v} 1\n'],
    ['an invalid escape', '# TYPE a gauge\na{k="\\t"} 1\n'],
    ['a negative counter', '# TYPE a counter\na -1\n'],
    ['buckets that are not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ['a +Inf bucket that is not the count', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'],
    ['a TYPE after samples', '# TYPE a gauge\na 1\n# TYPE a counter\n'],
    ['no final line feed', '# TYPE a gauge\na 1'],
  ] as const) {
    it(`refuses ${what}`, () => assert.throws(() => parseExposition(text)));
  }
});
