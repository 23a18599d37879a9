// A replica's Prometheus metrics (docs/operations.md, "Observability"): one prom-client
// Registry per replica, never the global one, so two replicas in one process (tests) never
// mix their series. Almost every metric is read at scrape time from counters the replica
// already keeps (the same ones `fitbroker status` shows): the hot path pays nothing for them.
// Only the latency histograms are observed as requests complete, once per frame, not per event.
// Never put a per-event label (publisher, event id) here: series must stay bounded by the
// config (channels x clients), not by traffic.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ChannelStats } from '../broker/index.js';
import type { ClientUsageCounters } from './quotas.js';
import type { Readiness } from './ops.js';

/** Series names start with this; prom-client's process_* and nodejs_* keep their standard names. */
export const METRIC_PREFIX = 'fitbroker_';

/** Seconds: from 100 µs (an unordered ack) to 10 s (an order stuck in a leader change). */
const LATENCY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the ordering protocol reports (Ordering.status() and the server's pauses); absent when n < 3f+1. */
export interface OrderingSnapshot {
  view: number;
  leader: number;
  changingView: boolean;
  recovering: boolean;
  lastDecided: number;
  stableCheckpoint: number;
  viewsEntered: number;
  pending: number;
  refused: number;
  expired: number;
  emptyBatches: number;
  secondBodies: number;
  eventsOrdered: number;
  requestsOrdered: number;
  eventsDecidedTwice: number;
  requestsAwaited: number;
  eventsDeferred: number;
  linkDrops: number;
  malformed: number;
  snapshotsInstalled: number;
  snapshotMismatches: number;
  controlApplied: number;
  controlRefused: number;
  pausedConnections: number;
  pausesForOrder: number;
  /** Per client: requests in its share of the order (orderClientRequestsMax), and waiting for it. */
  shares: Record<string, { requests: number; queued: number; queuedTotal: number }>;
  /** With a journal: entries read back at start, entries appended, flushes that wrote something. */
  journal?: { recoveredEntries: number; entriesAppended: number; flushes: number };
}

/** What the metrics read from the replica, at scrape time only. */
export interface MetricsSource {
  readonly replica: number;
  readonly n: number;
  readonly f: number;
  readonly tls: boolean;
  /** malloc's memory can come in transparent huge pages (core/huge-pages.ts). */
  readonly hugePages: boolean;
  readonly queuedBytesMax: number;
  channels(): ChannelStats[];
  queuedBytes(): number;
  clientConnections(): number;
  /** One entry per open connection another replica made to this one, by its id. */
  replicaLinksIn(): number[];
  /** Replicas this one's own links reach now (for the ordering protocol). */
  replicaLinksOut(): number[];
  evidence(): ReadonlyMap<number, number>;
  limits(): { totals: ClientUsageCounters; clients: Record<string, ClientUsageCounters> };
  ordering(): OrderingSnapshot | undefined;
  readiness(): Readiness;
}

interface Snapshot {
  channels: ChannelStats[];
  limits: ReturnType<MetricsSource['limits']>;
  ordering: OrderingSnapshot | undefined;
}

type Labels = Record<string, string | number>;
type Sample = [Labels, number];

export class ReplicaMetrics {
  readonly registry = new Registry();
  /** From reading a PUBLISH frame to writing its acknowledgement; ordered="true" when it waited for the order. */
  readonly publishAck: Histogram<'ordered'>;
  /** From submitting a frame's events of ordered channels to consensus to the last of them decided. */
  readonly orderBatch: Histogram;
  private snap: Snapshot | undefined;

  constructor(private readonly src: MetricsSource) {
    const r = this.registry;
    r.setDefaultLabels({ replica: String(src.replica) });
    collectDefaultMetrics({ register: r });
    this.publishAck = new Histogram({ name: `${METRIC_PREFIX}publish_ack_seconds`, help: "Time from reading a PUBLISH frame to writing its acknowledgement; ordered=\"true\" for frames holding events of ordered channels, acknowledged once they are decided", labelNames: ['ordered'], buckets: LATENCY_BUCKETS_S, registers: [r] });
    this.orderBatch = new Histogram({ name: `${METRIC_PREFIX}order_batch_seconds`, help: "Time from submitting one PUBLISH frame's events of ordered channels to consensus to the last of them being decided on this replica", buckets: LATENCY_BUCKETS_S, registers: [r] });
    this.defineReplica();
    this.defineEvents();
    this.defineConnections();
    // Without the ordering protocol (n < 3f+1) there is nothing to show, and a series at 0 would mislead.
    if (src.ordering() !== undefined) this.defineConsensus();
  }

  /** The text a scrape gets. */
  scrape(): Promise<string> {
    this.snap = undefined;
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The replica's counters, read once per scrape: the registry calls every collect() in one
   * turn of the event loop, and stats() walks every queue.
   */
  private state(): Snapshot {
    if (!this.snap) {
      this.snap = { channels: this.src.channels(), limits: this.src.limits(), ordering: this.src.ordering() };
      setImmediate(() => (this.snap = undefined));
    }
    return this.snap;
  }

  private gauge(name: string, help: string, labelNames: string[], read: () => Sample[] | number): void {
    new Gauge({ name: METRIC_PREFIX + name, help, labelNames, registers: [this.registry], collect: setFrom(read) });
  }

  private counter(name: string, help: string, labelNames: string[], read: () => Sample[] | number): void {
    // A counter whose total the replica already keeps: reset, then set to that total.
    new Counter({
      name: METRIC_PREFIX + name,
      help,
      labelNames,
      registers: [this.registry],
      collect(this: Counter) {
        const v = read();
        this.reset();
        if (typeof v === 'number') this.inc(v);
        else for (const [labels, n] of v) this.inc(labels, n);
      },
    });
  }

  private defineReplica(): void {
    const s = this.src;
    this.gauge('replica_info', 'Always 1; the labels say how the cluster is configured', ['n', 'f', 'tls'], () => [[{ n: s.n, f: s.f, tls: String(s.tls) }, 1]]);
    this.gauge('malloc_huge_pages', '1 when this process\'s malloc gets its memory in transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, glibc 2.35+, the kernel in madvise mode); see docs/operations.md, Memory and huge pages', [], () => (s.hugePages ? 1 : 0));
    this.gauge('ready', '1 while /readyz answers 200: listening for clients, not shutting down, and linked to enough other replicas to order', [], () => (s.readiness().ready ? 1 : 0));
  }

  private defineEvents(): void {
    const ch = (): ChannelStats[] => this.state().channels;
    this.counter('events_in_total', 'Events accepted on a channel (new, within their TTL); on an ordered channel, events ordered into its log', ['channel'], () => ch().map((c) => [{ channel: c.tag }, c.eventsIn]));
    this.counter('events_duplicate_total', 'Events received again (resent by a publisher, or already ordered) and dropped', ['channel'], () => ch().map((c) => [{ channel: c.tag }, c.duplicates]));
    this.counter('events_expired_on_arrival_total', 'Events already past their TTL when they arrived, never queued', ['channel'], () => ch().map((c) => [{ channel: c.tag }, c.droppedTtl]));
    this.counter('events_out_total', 'Events sent to the subscribe sessions of a client (sent again after a reconnect counts again)', ['channel', 'client'], () =>
      ch().flatMap((c) => perClient(c).map(([client, q]) => [{ channel: c.tag, client }, q.sent] as Sample)),
    );
    this.counter('events_dropped_total', "Queued copies dropped before a client's sessions were sent them (or, ordered channels, before it acknowledged them), by reason: capacity, bytes (queuedBytesMax), ttl, unsubscribed (no client label: the queue is gone), evicted (ordered log)", ['channel', 'client', 'reason'], () =>
      ch().flatMap((c) => dropped(c)),
    );
    this.gauge('queue_depth_events', "Events waiting for a client: in its output queue, or, ordered channels, held in the log past what it acknowledged", ['channel', 'client'], () =>
      ch().flatMap((c) => perClient(c).map(([client, q]) => [{ channel: c.tag, client }, q.depth] as Sample)),
    );
    this.gauge('queue_sessions', 'Subscribe sessions attached to a client queue (unordered channels)', ['channel', 'client'], () =>
      ch().flatMap((c) => Object.entries(c.queues).map(([client, q]) => [{ channel: c.tag, client }, q.sessions] as Sample)),
    );
    this.gauge('queued_bytes', 'Bytes counted against queuedBytesMax: every queued copy of every channel and client', [], () => this.src.queuedBytes());
    this.gauge('queued_bytes_max', 'The queuedBytesMax limit', [], () => this.src.queuedBytesMax);
    this.gauge('ordered_log_events', 'Events an ordered channel\'s log holds', ['channel'], () => ch().flatMap((c) => (c.log ? [[{ channel: c.tag }, c.log.depth] as Sample] : [])));
    this.gauge('ordered_log_high_seq', 'The last seq appended to an ordered channel\'s log', ['channel'], () => ch().flatMap((c) => (c.log ? [[{ channel: c.tag }, c.log.high] as Sample] : [])));
    this.gauge('store_sections', 'Sections of a persist: disk channel held in the replica\'s store', ['channel'], () => ch().flatMap((c) => (c.disk ? [[{ channel: c.tag }, c.disk.sections] as Sample] : [])));
    this.gauge('store_log_events', 'Events of an ordered persist: disk channel held in the replica\'s store', ['channel'], () => ch().flatMap((c) => (c.logDisk ? [[{ channel: c.tag }, c.logDisk.events] as Sample] : [])));
    this.gauge('store_restored_records', 'Records (events, for an ordered channel) of a persist: disk channel read back from the store when the replica started', ['channel'], () =>
      ch().flatMap((c) => (c.disk ? [[{ channel: c.tag }, c.disk.restored] as Sample] : c.logDisk ? [[{ channel: c.tag }, c.logDisk.restored] as Sample] : [])),
    );
  }

  private defineConnections(): void {
    const s = this.src;
    this.gauge('client_connections', 'Client connections open now (including ones still authenticating)', [], () => s.clientConnections());
    this.gauge('replica_links', 'Connections between this replica and another: direction="out" the one this replica opened (1 when up), "in" the ones the other opened', ['peer', 'direction'], () => {
      const out: Sample[] = [];
      const up = new Set(s.replicaLinksOut());
      const inbound = new Map<number, number>();
      for (const id of s.replicaLinksIn()) inbound.set(id, (inbound.get(id) ?? 0) + 1);
      // Only when the ordering protocol runs does a replica link to the others (n >= 3f+1).
      const linked = this.state().ordering !== undefined;
      for (let id = 0; id < s.n; id++) {
        if (id === s.replica) continue;
        if (linked) out.push([{ peer: id, direction: 'out' }, up.has(id) ? 1 : 0]);
        out.push([{ peer: id, direction: 'in' }, inbound.get(id) ?? 0]);
      }
      return out;
    });
    this.counter('refusals_total', 'Requests and connections this replica refused, by error code (docs/errors.md); frames over frameBytesMax included', ['code'], () => Object.entries(this.state().limits.totals.refused).map(([code, n]) => [{ code }, n]));
    this.counter('client_throttled_seconds_total', 'Time a client\'s connections were not read for going over clientEventsPerSecondMax', ['client'], () => Object.entries(this.state().limits.clients).map(([client, u]) => [{ client }, u.throttledMs / 1000]));
    this.counter('client_pending_pauses_total', 'Times a client\'s unanswered request frames went over clientRequestsPendingMax', ['client'], () => Object.entries(this.state().limits.clients).map(([client, u]) => [{ client }, u.pendingPauses]));
    this.counter('evidence_mismatches_total', "Copies subscribers reported as not matching the voted event, by the replica that sent them (evidence of a faulty replica)", ['suspect'], () => [...s.evidence()].map(([id, n]) => [{ suspect: id }, n]));
  }

  private defineConsensus(): void {
    const o = (read: (c: OrderingSnapshot) => number) => (): Sample[] => {
      const c = this.state().ordering;
      return c ? [[{}, read(c)]] : [];
    };
    const bool = (b: boolean): number => (b ? 1 : 0);
    this.gauge('consensus_view', 'The ordering protocol\'s current view', [], o((c) => c.view));
    this.gauge('consensus_leader', 'The id of the current view\'s leader', [], o((c) => c.leader));
    this.gauge('consensus_changing_view', '1 while a leader change is under way', [], o((c) => bool(c.changingView)));
    this.gauge('consensus_recovering', '1 while a replica restarted without its state stays passive', [], o((c) => bool(c.recovering)));
    this.gauge('consensus_last_executed_seq', 'The last consensus sequence number this replica decided and executed', [], o((c) => c.lastDecided));
    this.gauge('consensus_stable_checkpoint_seq', 'The last stable checkpoint', [], o((c) => c.stableCheckpoint));
    this.gauge('consensus_pending_requests', 'Requests waiting to be ordered (consensusPendingMax)', [], o((c) => c.pending));
    this.gauge('consensus_requests_awaited', 'Event requests that open publish frames wait for (those of closed connections no longer count)', [], o((c) => c.requestsAwaited));
    this.gauge('consensus_events_deferred', 'Events waiting in the replica for room under consensusPendingMax', [], o((c) => c.eventsDeferred));
    this.gauge('consensus_paused_connections', 'Publisher connections not read now because their events waiting for the order passed orderBacklogEventsMax', [], o((c) => c.pausedConnections));
    this.counter('consensus_leader_changes_total', 'Leader changes (views entered after view 0) this replica took part in', [], o((c) => c.viewsEntered));
    this.counter('consensus_events_ordered_total', 'Events of ordered channels decided and logged', [], o((c) => c.eventsOrdered));
    this.counter('consensus_event_requests_total', 'Consensus requests that carried ordered events (runs of a publish section): events ordered / requests is the events per request', [], o((c) => c.requestsOrdered));
    this.counter('consensus_events_decided_twice_total', 'Events of decided requests not placed again: a faulty publisher sent overlapping sections', [], o((c) => c.eventsDecidedTwice));
    this.counter('consensus_second_bodies_total', 'Bodies a client sent under a request this replica held another body of, not held: only a faulty client sends two', [], o((c) => c.secondBodies));
    this.counter('consensus_refused_total', 'Times a request found no room under consensusPendingMax', [], o((c) => c.refused));
    this.counter('consensus_expired_total', 'Requests this replica let go undecided: fewer than f+1 replicas attested them within consensusAttestationSeqs (their publishers are refused with FIT_ERR_ORDER_EXPIRED)', [], o((c) => c.expired));
    this.counter('consensus_empty_batches_total', 'Empty batches this replica proposed as the leader, so that seqs move on while requests that are not ready wait', [], o((c) => c.emptyBatches));
    this.counter('consensus_link_drops_total', 'Protocol messages to a replica that was down or not keeping up (the protocol resends)', [], o((c) => c.linkDrops));
    this.counter('consensus_malformed_total', 'Protocol messages from another replica that did not parse', [], o((c) => c.malformed));
    this.counter('consensus_snapshots_installed_total', 'Snapshots installed from the other replicas to catch up', [], o((c) => c.snapshotsInstalled));
    this.counter('consensus_snapshot_mismatches_total', 'Checkpoints where this replica\'s state differed from the one 2f+1 replicas signed', [], o((c) => c.snapshotMismatches));
    this.gauge('consensus_journal_recovered_entries', 'Entries of the consensus journal read back when the replica started (0: a first start, or no journal)', [], o((c) => c.journal?.recoveredEntries ?? 0));
    this.counter('consensus_journal_flushes_total', 'Flushes (fsync) of the consensus journal that wrote something', [], o((c) => c.journal?.flushes ?? 0));
    this.counter('consensus_journal_entries_total', 'Entries appended to the consensus journal', [], o((c) => c.journal?.entriesAppended ?? 0));
    const shares = (read: (s: OrderingSnapshot['shares'][string]) => number) => (): Sample[] =>
      Object.entries(this.state().ordering?.shares ?? {}).map(([client, s]) => [{ client }, read(s)]);
    this.gauge('consensus_client_requests', "A client's requests this replica took into the order, not yet decided or let go, all its connections together (orderClientRequestsMax)", ['client'], shares((s) => s.requests));
    this.gauge('consensus_client_requests_queued', "A client's requests waiting for room in its share of the order (orderClientRequestsMax), unacknowledged", ['client'], shares((s) => s.queued));
    this.counter('consensus_client_requests_queued_total', "A client's requests that waited for room in its share of the order", ['client'], shares((s) => s.queuedTotal));
    this.counter('consensus_pauses_total', 'Times a publisher connection was paused for orderBacklogEventsMax', [], o((c) => c.pausesForOrder));
    this.counter('control_changes_total', 'Control-table changes (fitbroker acl, keys rotate --client) decided, by outcome', ['outcome'], () => {
      const c = this.state().ordering;
      return c ? [[{ outcome: 'applied' }, c.controlApplied], [{ outcome: 'refused' }, c.controlRefused]] : [];
    });
  }
}

function setFrom(read: () => Sample[] | number) {
  return function (this: Gauge): void {
    const v = read();
    this.reset();
    if (typeof v === 'number') this.set(v);
    else for (const [labels, n] of v) this.set(labels, n);
  };
}

/** Per subscribing client: what it was sent and what waits for it, from its queue or its place in the log. */
function perClient(c: ChannelStats): [string, { sent: number; depth: number }][] {
  if (c.log) {
    const high = c.log.high;
    return Object.entries(c.log.positions).map(([client, p]) => [client, { sent: p.sent, depth: Math.max(0, high - p.next + 1) }]);
  }
  return Object.entries(c.queues).map(([client, q]) => [client, { sent: q.sent, depth: q.depth }]);
}

/** Drops by reason, each counted once: droppedBytes is the part of droppedCapacity due to queuedBytesMax. */
function dropped(c: ChannelStats): Sample[] {
  const out: Sample[] = [];
  if (c.log) {
    for (const [client, p] of Object.entries(c.log.positions)) out.push([{ channel: c.tag, client, reason: 'evicted' }, p.missed]);
    return out;
  }
  for (const [client, q] of Object.entries(c.queues)) {
    const l = { channel: c.tag, client };
    out.push([{ ...l, reason: 'capacity' }, q.droppedCapacity - q.droppedBytes], [{ ...l, reason: 'bytes' }, q.droppedBytes], [{ ...l, reason: 'ttl' }, q.droppedTtl]);
  }
  // Counted when an admin unsubscribed a client, together with its queue.
  out.push([{ channel: c.tag, reason: 'unsubscribed' }, c.droppedUnsubscribed]);
  return out;
}
