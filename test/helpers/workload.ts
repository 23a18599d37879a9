// The reference workload: P publishers spread E events over C channels, S subscribers
// (SIEMs) subscribe to every channel; then check each subscriber delivered every event exactly
// once with unchanged content.

import assert from 'node:assert/strict';
import type { BrokerEvent } from '../../src/core/index.js';
import type { SubscriberSummary } from '../../src/client/index.js';
import { sleep, type TestCluster } from './cluster.js';

export interface WorkloadOptions {
  publishers: string[];
  subscribers: string[];
  channels: string[];
  events: number;
  /** Called after each 1,000 events are queued, e.g. to kill a replica mid-run. */
  onProgress?(published: number): Promise<void> | void;
  deliverTimeoutMs?: number;
}

export interface WorkloadResult {
  summaries: Record<string, SubscriberSummary[]>;
  /** Sum over a SIEM's channels of the mismatching copies each replica sent. */
  mismatches: Record<string, number[]>;
}

export async function runWorkload(c: TestCluster, o: WorkloadOptions): Promise<WorkloadResult> {
  const n = c.config.replicas.length;
  const expected = new Map<string, Map<string, string>>(o.channels.map((ch) => [ch, new Map()]));
  const got = new Map<string, Map<string, Map<string, string>>>();
  const duplicates: string[] = [];
  const subs = o.subscribers.flatMap((siem) => {
    const perChannel = new Map<string, Map<string, string>>(o.channels.map((ch) => [ch, new Map()]));
    got.set(siem, perChannel);
    return o.channels.map((channel) =>
      c.subscriber(siem, {
        channel,
        onEvent: (ev: BrokerEvent) => {
          const m = perChannel.get(ev.channel)!;
          if (m.has(ev.id)) duplicates.push(`${siem} ${ev.channel} ${ev.id}`);
          m.set(ev.id, ev.content.toString('utf8'));
        },
      }),
    );
  });
  await Promise.all(subs.map((s) => s.start()));
  const pubs = o.publishers.map((p) => c.publisher(p));
  const seqs = pubs.map(() => 0);
  for (let i = 0; i < o.events; i++) {
    const k = i % pubs.length;
    const channel = o.channels[Math.floor(i / pubs.length) % o.channels.length]!;
    const content = JSON.stringify({ p: o.publishers[k], i, pad: 'x'.repeat(120) });
    const pub = pubs[k]!;
    seqs[k]!++;
    expected.get(channel)!.set(`${pub.epochHex}-${seqs[k]}`, content);
    if (!pub.publish(channel, content)) await pub.drained();
    if (o.onProgress && (i + 1) % 1000 === 0) await o.onProgress(i + 1);
  }
  await Promise.all(pubs.map((p) => p.flush(30_000)));
  const complete = (): boolean => [...got.values()].every((perChannel) => o.channels.every((ch) => perChannel.get(ch)!.size >= expected.get(ch)!.size));
  const until = Date.now() + (o.deliverTimeoutMs ?? 30_000);
  while (!complete() && Date.now() < until) await sleep(50);
  await sleep(200);
  for (const [siem, perChannel] of got) {
    for (const ch of o.channels) {
      const want = expected.get(ch)!;
      const have = perChannel.get(ch)!;
      const missing = [...want.keys()].filter((id) => !have.has(id));
      assert.equal(missing.length, 0, `${siem} is missing ${missing.length} of ${want.size} events on ${ch}, e.g. ${missing.slice(0, 3).join(', ')}`);
      assert.equal(have.size, want.size, `${siem} delivered ${have.size - want.size} events on ${ch} that nobody published`);
      for (const [id, content] of want) assert.equal(have.get(id), content, `${siem} delivered altered content for ${ch} ${id}`);
    }
  }
  assert.deepEqual(duplicates.slice(0, 5), [], `events delivered twice: ${duplicates.length}`);
  const summaries: Record<string, SubscriberSummary[]> = {};
  const mismatches: Record<string, number[]> = {};
  o.subscribers.forEach((siem, si) => {
    const mine = subs.slice(si * o.channels.length, (si + 1) * o.channels.length).map((s) => s.summary());
    summaries[siem] = mine;
    mismatches[siem] = Array.from({ length: n }, (_, r) => mine.reduce((sum, s) => sum + (s.mismatches[r] ?? 0), 0));
  });
  return { summaries, mismatches };
}
