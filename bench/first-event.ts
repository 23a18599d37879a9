// `npm run bench -- --first-event`: how long a console that was away waits for its first event
// when it connects to replicas holding a backlog for it. A bft cluster (n = 4, f = 1), one
// channel, a publisher worker, and per round a new subscriber worker process (a console
// starting): the publisher queues the backlog while no subscriber is connected, then the
// subscriber connects and subscribes; the time measured is from its subscribe() to its first
// delivered event, on the monotonic clock every process shares, and then to the backlog's last
// event. The subscriber is stopped once it has the whole backlog, so every round starts from
// empty queues.

import { Worker } from './workers.js';
import { backlogCluster } from './urgent.js';
import type { Protection } from '../src/core/index.js';

export interface FirstEventPlan {
  /** Events queued for the console before each round's subscriber connects. */
  backlog: number;
  rounds: number;
  size: number;
  protection: Protection;
  onPhase?(what: string): void;
}

/** The results file's `firstEvent` section (docs/performance.md, "First event after a console was away"). */
export interface FirstEventResult {
  label: string;
  protection: Protection;
  backlogEvents: number;
  rounds: number;
  /** limits.subscribeCreditsEvents of the run: what each replica may push to the new session at once. */
  creditsEvents: number;
  /** Per round, subscribe() to the first event delivered. */
  firstEventMs: number[];
  /** Of those, the median and the most. */
  firstEventP50Ms: number;
  firstEventMaxMs: number;
  /** Per round, subscribe() to the backlog's last event. */
  drainMs: number[];
}

const CHANNEL = 'bench.first';
const IDLE_MS = 10_000;

function ms(fromNs: bigint, toNs: bigint): number {
  return Math.round(Number(toNs - fromNs) / 1e4) / 100;
}

export async function runFirstEvent(plan: FirstEventPlan): Promise<FirstEventResult> {
  plan.onPhase?.('starting');
  const { cluster, endpoint } = await backlogCluster(CHANNEL, plan.backlog, plan.protection);
  const pub = new Worker('first-event publisher');
  const firstEventMs: number[] = [];
  const drainMs: number[] = [];
  try {
    await pub.ask({ type: 'init', endpoint, kind: 'publisher', index: 0, channels: [CHANNEL], size: plan.size }, 'ready', 60_000);
    for (let round = 0; round < plan.rounds; round++) {
      plan.onPhase?.(`round ${round + 1} of ${plan.rounds}: backlog`);
      await pub.ask({ type: 'publish', events: plan.backlog }, 'published', 10 * 60_000);
      plan.onPhase?.(`round ${round + 1} of ${plan.rounds}: console`);
      const sub = new Worker('first-event subscriber');
      try {
        await sub.ask({ type: 'init', endpoint, kind: 'subscriber', index: 0, channels: [CHANNEL], size: plan.size }, 'ready', 60_000);
        let last = -1;
        let lastChange = Date.now();
        for (;;) {
          const { received } = await sub.ask({ type: 'count' }, 'count', 60_000);
          if (received >= plan.backlog) break;
          if (received !== last) [last, lastChange] = [received, Date.now()];
          else if (Date.now() - lastChange > IDLE_MS) throw new Error(`round ${round + 1}: the console stopped at ${received} of ${plan.backlog} events`);
          await new Promise((r) => setTimeout(r, 50));
        }
        const report = await sub.ask({ type: 'report' }, 'report', 60_000);
        if (report.subscribeNs === undefined) throw new Error('the subscriber worker did not say when it subscribed');
        const subscribed = BigInt(report.subscribeNs);
        firstEventMs.push(ms(subscribed, BigInt(report.firstNs)));
        drainMs.push(Math.round(ms(subscribed, BigInt(report.lastNs))));
      } finally {
        // Its close() acknowledges what it delivered: the next round starts from empty queues.
        await sub.stop();
      }
    }
    const sorted = [...firstEventMs].sort((a, b) => a - b);
    return {
      label: 'fitbroker bft (n=4, f=1)',
      protection: plan.protection,
      backlogEvents: plan.backlog,
      rounds: plan.rounds,
      creditsEvents: cluster.config.limits.subscribeCreditsEvents,
      firstEventMs,
      firstEventP50Ms: sorted[Math.floor((sorted.length - 1) / 2)]!,
      firstEventMaxMs: sorted.at(-1)!,
      drainMs,
    };
  } finally {
    plan.onPhase?.('stopping');
    await pub.stop();
    await cluster.stop();
  }
}

export function firstEventSummary(r: FirstEventResult): string {
  return (
    `first event after ${r.backlogEvents} queued (${r.protection}): p50 ${r.firstEventP50Ms} ms, max ${r.firstEventMaxMs} ms over ${r.rounds} rounds ` +
    `(${r.firstEventMs.join(' / ')} ms); the backlog in ${r.drainMs.join(' / ')} ms`
  );
}
