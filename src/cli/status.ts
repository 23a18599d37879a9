// `fitbroker status`: one line per replica (or JSON), and with --wait, a readiness probe that
// exits 0 once a quorum (n - f) answers.

import { FitError } from '../core/index.js';
import { clientKeyPath, loadConfig, withTlsFiles } from '../config/index.js';
import { loadPrivateKey } from '../protection/index.js';
import { queryStatus, type ReplicaStatus } from '../client/index.js';
import { defaultClient } from './common.js';

export interface StatusOptions {
  dir: string;
  as?: string;
  json?: boolean;
  wait?: number;
  /** --tls-cert, --tls-key: this node's certificate and key, when not where cluster.yaml's tls: says. */
  tlsCert?: string;
  tlsKey?: string;
}

interface DropCounts {
  capacity: number;
  bytes: number;
  ttl: number;
  unsubscribed: number;
}

interface QueueStat {
  depth: number;
  sent: number;
  droppedCapacity: number;
  droppedTtl: number;
  sessions: number;
  /** Absent from replicas older than overflow policies. */
  dropped?: DropCounts;
  blocking?: boolean;
}

interface ChannelStat {
  tag: string;
  eventsIn: number;
  duplicates: number;
  droppedTtl: number;
  droppedUnsubscribed?: number;
  order?: string;
  overflow?: string;
  blocked?: boolean;
  blockedBy?: string[];
  blocks?: number;
  blockedMs?: number;
  heldConnections?: number;
  log?: { low: number; high: number; depth: number; evictedCapacity: number; evictedTtl: number; skipped: number; positions: Record<string, { next: number; missed: number; sent: number }> };
  queues: Record<string, QueueStat>;
  /** persist: disk channels (src/broker/durable.ts DiskStats). */
  disk?: { nextIdx: number; sections: number; restored: number };
  /** persist: disk ordered channels (src/broker/durable-log.ts LogDiskStats). */
  logDisk?: { events: number; restored: number };
}

export async function status(o: StatusOptions): Promise<void> {
  const config = withTlsFiles(loadConfig(o.dir), o);
  const as = defaultClient(config, o.as);
  const key = loadPrivateKey(clientKeyPath(o.dir, as));
  const quorum = config.replicas.length - config.f;
  const deadline = Date.now() + (o.wait ?? 0) * 1000;
  let result: ReplicaStatus[];
  for (;;) {
    result = await queryStatus(config, as, key, 2000);
    const up = result.filter((r) => r.reachable).length;
    if (up >= quorum || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const up = result.filter((r) => r.reachable).length;
  if (o.json) process.stdout.write(`${JSON.stringify({ n: config.replicas.length, f: config.f, quorum, reachable: up, replicas: result }, null, 2)}\n`);
  else process.stdout.write(render(result, config.replicas.length, config.f, quorum));
  if (o.wait !== undefined && up < quorum) {
    throw new FitError('FIT_ERR_QUORUM_TIMEOUT', `only ${up} of ${config.replicas.length} replicas answered within ${o.wait} s, a quorum needs ${quorum}; start them with \`fitbroker up --dir ${o.dir}\``, {
      reachable: up,
      needed: quorum,
    });
  }
}

interface ConsensusStat {
  view: number;
  leader: number;
  changingView: boolean;
  recovering: boolean;
  lastDecided: number;
  stableCheckpoint: number;
  viewsEntered: number;
  peersConnected: number[];
  controlApplied: number;
  controlRefused: number;
  snapshotsInstalled: number;
  snapshotInstalledAt: number;
  snapshotMismatches: number;
  snapshotBytes: number;
  journal?: { recoveredEntries: number; flushes: number };
}

export interface ReplicaTotals {
  eventsIn: number;
  /** Copies sent to clients, from queues and ordered logs. */
  sent: number;
  /** Every drop the replica counted: expired on arrival, unsubscribed, queue drops, and ordered-log events a client missed. */
  dropped: number;
  queued: number;
}

/** One replica's `status` reply summed over its channels: what `fitbroker status` prints per replica, and what the bench records per phase. */
export function replicaTotals(status: unknown): ReplicaTotals {
  const t: ReplicaTotals = { eventsIn: 0, sent: 0, dropped: 0, queued: 0 };
  for (const ch of (status as { channels: ChannelStat[] }).channels) {
    t.eventsIn += ch.eventsIn;
    t.dropped += ch.droppedTtl + (ch.droppedUnsubscribed ?? 0);
    for (const p of Object.values(ch.log?.positions ?? {})) {
      t.sent += p.sent;
      t.dropped += p.missed;
    }
    for (const q of Object.values(ch.queues)) {
      t.sent += q.sent;
      t.queued += q.depth;
      t.dropped += q.droppedCapacity + q.droppedTtl;
    }
  }
  return t;
}

function render(rs: ReplicaStatus[], n: number, f: number, quorum: number): string {
  const lines = [`cluster: n=${n} f=${f}; ${rs.filter((r) => r.reachable).length} of ${n} replicas reachable (quorum ${quorum})`];
  const suspects = new Map<number, number>();
  for (const r of rs) {
    if (!r.reachable || !r.status) {
      lines.push(`replica ${r.replica} ${r.endpoint}  UNREACHABLE  ${r.error ?? ''}`);
      continue;
    }
    const s = r.status as { uptimeMs: number; connections: number; channels: ChannelStat[]; evidence: Record<string, number>; faults: string[] };
    const { eventsIn: inn, sent: out, dropped, queued: depth } = replicaTotals(s);
    for (const [id, c] of Object.entries(s.evidence)) suspects.set(Number(id), Math.max(suspects.get(Number(id)) ?? 0, c));
    const faults = s.faults.length ? `  INJECTED FAULTS: ${s.faults.join(',')}` : '';
    lines.push(`replica ${r.replica} ${r.endpoint}  up ${(s.uptimeMs / 1000).toFixed(0)}s  conns ${s.connections}  channels ${s.channels.length}  in ${inn}  out ${out}  queued ${depth}  dropped ${dropped}${faults}`);
    const c = (r.status as { consensus?: ConsensusStat | null }).consensus;
    if (c) {
      const state = c.changingView ? '  CHANGING VIEW' : c.recovering ? '  RECOVERING (passive after a restart)' : '';
      const snapshots = `  state ${(c.snapshotBytes / 1024).toFixed(0)} KiB${c.snapshotsInstalled > 0 ? `, snapshots installed ${c.snapshotsInstalled} (last at ${c.snapshotInstalledAt})` : ''}`;
      // Its state after a checkpoint was not the one 2f+1 replicas signed: it diverged.
      const diverged = c.snapshotMismatches > 0 ? `  STATE DIVERGED at ${c.snapshotMismatches} checkpoints (check that every replica runs the same cluster.yaml and version)` : '';
      const journal = c.journal ? `  journal: ${c.journal.recoveredEntries > 0 ? `recovered ${c.journal.recoveredEntries} entries at start, ` : ''}${c.journal.flushes} flushes` : '  journal: none (a restart is amnesia)';
      lines.push(
        `    ordering: view ${c.view} (leader ${c.leader})  decided ${c.lastDecided}  stable checkpoint ${c.stableCheckpoint}  leader changes ${c.viewsEntered}  peers ${c.peersConnected.length}/${n - 1}  acl applied ${c.controlApplied} refused ${c.controlRefused}${snapshots}${journal}${state}${diverged}`,
      );
    }
    const held = limitsLine((r.status as { limits?: LimitsStat }).limits);
    if (held) lines.push(held);
    for (const ch of s.channels) {
      if (ch.log) {
        const pos = Object.entries(ch.log.positions)
          .map(([c, p]) => `${c}@${p.next}${p.missed ? ` (missed ${p.missed})` : ''}`)
          .join(' ');
        const skipped = ch.log.skipped ? `  skipped ${ch.log.skipped} (snapshot)` : '';
        const disk = ch.logDisk ? `  disk: ${ch.logDisk.events} events, ${ch.logDisk.restored} read back at start` : '';
        lines.push(`    ${ch.tag} (order: ${ch.order}): ordered ${ch.eventsIn}  seqs ${ch.log.low}..${ch.log.high} held ${ch.log.depth}${skipped}  readers ${pos || '-'}${disk}`);
        continue;
      }
      const qs = Object.entries(ch.queues)
        .map(([c, q]) => `${c}=${q.depth}${q.blocking ? ' FULL' : ''}${dropsOf(q)}`)
        .join(' ');
      const policy = ch.overflow && ch.overflow !== 'drop-oldest' ? ` (overflow: ${ch.overflow})` : '';
      const disk = ch.disk ? `  disk: ${ch.disk.sections} sections to index ${ch.disk.nextIdx - 1}, ${ch.disk.restored} read back at start` : '';
      lines.push(`    ${ch.tag}${policy}: in ${ch.eventsIn}  dup ${ch.duplicates}  expired ${ch.droppedTtl}  queues ${qs || '-'}${blockedOf(ch)}${disk}`);
    }
  }
  for (const [id, c] of suspects) if (c > 0) lines.push(`evidence: subscribers reported ${c} mismatching copies from replica ${id}`);
  return `${lines.join('\n')}\n`;
}

/** A queue's drops, by reason: ` (dropped 250: capacity 240, ttl 10)`, or nothing. */
function dropsOf(q: QueueStat): string {
  const total = q.droppedCapacity + q.droppedTtl;
  if (total === 0) return '';
  if (!q.dropped) return ` (dropped ${total})`;
  const reasons = (['capacity', 'bytes', 'ttl'] as const).filter((k) => q.dropped![k] > 0).map((k) => `${k} ${q.dropped![k]}`);
  return ` (dropped ${total}: ${reasons.join(', ')})`;
}

/**
 * overflow: block: who holds the channel's publishers, said plainly, and what blocking cost so
 * far; nothing for a channel that never blocked.
 */
function blockedOf(ch: ChannelStat): string {
  if (!ch.blocks) return '';
  const spells = `held ${ch.blocks}x, ${((ch.blockedMs ?? 0) / 1000).toFixed(1)} s in all`;
  if (!ch.blocked) return `  (publishers ${spells})`;
  const by = ch.blockedBy ?? [];
  const who = by.map((id) => `${id}${ch.queues[id]?.sessions === 0 ? ' (not connected)' : ''}`).join(', ');
  const queues = by.length === 1 ? `queue of ${who}` : `queues of ${who}`;
  return `  BLOCKED by the full ${queues}: ${ch.heldConnections ?? 0} publisher connection(s) held until ${by.length === 1 ? 'it is' : 'they are'} read or ${by.length === 1 ? 'its' : 'their'} events expire; ${spells}`;
}

interface LimitsStat {
  clients: Record<string, { connectionsRefused: number; throttles: number; throttledMs: number; pendingPauses: number }>;
  unauthenticated?: Record<string, number>;
}

/** The clients the per-client limits held back on this replica, if any (docs/limits.md). */
function limitsLine(l: LimitsStat | undefined): string | undefined {
  if (!l) return undefined;
  const parts = Object.entries(l.clients)
    .filter(([, u]) => u.connectionsRefused + u.throttles + u.pendingPauses > 0)
    .map(([id, u]) => `${id} (connections refused ${u.connectionsRefused}, throttled ${u.throttles}x for ${u.throttledMs} ms, paused for pending ${u.pendingPauses}x)`);
  // Connections refused before they proved who they are: scanners, floods, a wrong cluster.
  const unauth = Object.entries(l.unauthenticated ?? {}).map(([code, n]) => `${code} ${n}`);
  if (unauth.length) parts.push(`refused before authentication (${unauth.join(', ')})`);
  return parts.length ? `    limits: ${parts.join('  ')}` : undefined;
}
