// `npm run bench -- --urgent`: urgent latency behind a 100,000-event backlog (paper §3.3:
// urgent events "require immediate effect"; DESIGN §3: they overtake queued ones at every
// hop). A bft cluster (n = 4, f = 1), one channel, one publisher and one subscriber process
// (the harness's workers). Each round freezes the subscriber with SIGSTOP, publishes the
// backlog (acknowledged: queued at the replicas), lets the subscriber go, and publishes a few
// urgent events right away while it works through the backlog; each urgent event's latency is
// publish to delivery, on the monotonic clock every process shares (bench/stamp.ts).
//
// What the subscriber was pushed before it froze (subscribeCreditsEvents per replica) is in
// its sockets ahead of anything: an urgent event overtakes what is still queued at the
// replicas, not that. The result says how many events came before each urgent one.

import { latencyMs, mergeHistograms, type LatencyMs } from './stamp.js';
import { Worker } from './workers.js';
import { startCluster } from '../test/helpers/cluster.js';
import { workerName } from './systems/types.js';
import type { Limits, Protection } from '../src/core/index.js';

export interface UrgentPlan {
  /** Normal events queued for the subscriber before each round's urgent ones. */
  backlog: number;
  rounds: number;
  /** Urgent events per round, published `everyMs` apart from when the subscriber resumes. */
  perRound: number;
  everyMs: number;
  size: number;
  /** limits.subscribeCreditsEvents of the run: what a replica may push ahead of an urgent event. */
  creditsEvents: number;
  onPhase?(what: string): void;
}

/** The results file's `urgent` section (docs/performance.md, "The results file"). */
export interface UrgentResult {
  label: string;
  backlogEvents: number;
  rounds: number;
  urgentEvents: number;
  /** Events a replica may push to a subscriber before it grants more: what is in flight ahead of an urgent event. */
  creditsEvents: number;
  /** Each urgent event, publish to delivery. */
  latencyMs: LatencyMs;
  /** Events the subscriber delivered after resuming and before each urgent one: the median and the most. */
  deliveredBefore: { p50: number; max: number };
  /** The backlog's own events, publish to delivery (they waited while the subscriber was frozen). */
  backlogLatencyMs: LatencyMs;
  /** Per round, from resuming the subscriber to its last backlog event. */
  drainMs: number[];
}

const CHANNEL = 'bench.urgent';
const IDLE_MS = 10_000;

/** Four replicas, one publisher and one subscriber process on `channel`, with room for a backlog of `backlog` events and nothing dropped (shared with first-event.ts). */
export async function backlogCluster(channel: string, backlog: number, protection: Protection, limits: Partial<Limits> = {}) {
  const cluster = await startCluster({
    replicas: 4,
    f: 1,
    channels: [channel],
    clients: [
      { name: workerName('publisher', 0), role: 'pub' },
      { name: workerName('subscriber', 0), role: 'sub' },
    ],
    defaultClients: false,
    protection,
    capacityEvents: 2 * backlog,
    limits,
  });
  return { cluster, endpoint: { system: 'fitbroker' as const, mode: 'bft', params: { dir: cluster.dir } } };
}

export async function runUrgent(plan: UrgentPlan): Promise<UrgentResult> {
  plan.onPhase?.('starting');
  const { cluster, endpoint } = await backlogCluster(CHANNEL, plan.backlog, 'si', { subscribeCreditsEvents: plan.creditsEvents });
  const pub = new Worker('urgent publisher');
  const sub = new Worker('urgent subscriber');
  try {
    await sub.ask({ type: 'init', endpoint, kind: 'subscriber', index: 0, channels: [CHANNEL], size: plan.size }, 'ready', 60_000);
    await pub.ask({ type: 'init', endpoint, kind: 'publisher', index: 0, channels: [CHANNEL], size: plan.size }, 'ready', 60_000);
    const urgentHistograms: string[] = [];
    const backlogHistograms: string[] = [];
    const positions: number[] = [];
    const drainMs: number[] = [];
    for (let round = 0; round < plan.rounds; round++) {
      plan.onPhase?.(`round ${round + 1} of ${plan.rounds}: backlog`);
      sub.send({ type: 'reset' });
      await sub.ask({ type: 'count' }, 'count', 10_000);
      process.kill(sub.pid, 'SIGSTOP');
      try {
        await pub.ask({ type: 'publish', events: plan.backlog }, 'published', 10 * 60_000);
      } finally {
        process.kill(sub.pid, 'SIGCONT');
      }
      const resumedNs = process.hrtime.bigint();
      plan.onPhase?.(`round ${round + 1} of ${plan.rounds}: urgent`);
      await pub.ask({ type: 'urgent', count: plan.perRound, everyMs: plan.everyMs }, 'published', 60_000);
      const expected = plan.backlog + plan.perRound;
      let last = -1;
      let lastChange = Date.now();
      for (;;) {
        const { received } = await sub.ask({ type: 'count' }, 'count', 60_000);
        if (received >= expected) break;
        if (received !== last) [last, lastChange] = [received, Date.now()];
        else if (Date.now() - lastChange > IDLE_MS) throw new Error(`the subscriber stopped at ${received} of ${expected} events`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const report = await sub.ask({ type: 'report' }, 'report', 60_000);
      if (!report.urgent || report.urgent.positions.length !== plan.perRound) throw new Error(`round ${round + 1}: ${report.urgent?.positions.length ?? 0} of ${plan.perRound} urgent events arrived`);
      urgentHistograms.push(report.urgent.histogram);
      backlogHistograms.push(report.histogram);
      positions.push(...report.urgent.positions);
      drainMs.push(Math.round(Number(BigInt(report.lastNs) - resumedNs) / 1e6));
    }
    const sorted = [...positions].sort((a, b) => a - b);
    return {
      label: 'fitbroker bft (n=4, f=1)',
      backlogEvents: plan.backlog,
      rounds: plan.rounds,
      urgentEvents: positions.length,
      creditsEvents: cluster.config.limits.subscribeCreditsEvents,
      latencyMs: latencyMs(mergeHistograms(urgentHistograms)),
      deliveredBefore: { p50: sorted[Math.floor((sorted.length - 1) / 2)]!, max: sorted.at(-1)! },
      backlogLatencyMs: latencyMs(mergeHistograms(backlogHistograms)),
      drainMs,
    };
  } finally {
    plan.onPhase?.('stopping');
    await Promise.all([pub.stop(), sub.stop()]);
    await cluster.stop();
  }
}

export function urgentSummary(u: UrgentResult): string {
  return (
    `urgent behind ${u.backlogEvents} events: ${u.urgentEvents} urgent events over ${u.rounds} rounds, p50 ${u.latencyMs.p50} ms, p99 ${u.latencyMs.p99} ms, max ${u.latencyMs.max} ms; ` +
    `delivered after ${u.deliveredBefore.p50} (median) to ${u.deliveredBefore.max} events of the backlog (${u.creditsEvents} credits in flight per replica); ` +
    `the backlog drained in ${u.drainMs.join(' / ')} ms, its events' p50 ${u.backlogLatencyMs.p50} ms`
  );
}
