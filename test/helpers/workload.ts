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
  /**
   * After every event is delivered, wait (up to 10 s) until this holds of the subscribers'
   * summaries: with one valid signed copy enough, a faulty replica's copies may come after
   * delivery, and so may the evidence against it.
   */
  settled?(summaries: Record<string, SubscriberSummary[]>): boolean;
}

export interface WorkloadResult {
  summaries: Record<string, SubscriberSummary[]>;
  /** Sum over a SIEM's channels of the mismatching copies each replica sent. */
  mismatches: Record<string, number[]>;
}

export async function runWorkload(c: TestCluster, o: WorkloadOptions): Promise<WorkloadResult> {
  const n = c.config.replicas.length;
  // Contents are unique, so they identify events; ids are checked for uniqueness and for the
  // publisher's epoch (which publisher and process sent it).
  const expected = new Map<string, Map<string, string>>(o.channels.map((ch) => [ch, new Map()]));
  const got = new Map<string, Map<string, Map<string, string>>>();
  const duplicates: string[] = [];
  // The first SIEM reads every channel through one Subscriber (n connections in all), the
  // others through one Subscriber per channel: both shapes are checked under every fault.
  const bySiem = o.subscribers.map((siem, si) => {
    const perChannel = new Map<string, Map<string, string>>(o.channels.map((ch) => [ch, new Map()]));
    const ids = new Set<string>();
    got.set(siem, perChannel);
    const onEvent = (ev: BrokerEvent): void => {
      const m = perChannel.get(ev.channel)!;
      const content = ev.content.toString('utf8');
      if (m.has(content) || ids.has(ev.id)) duplicates.push(`${siem} ${ev.channel} ${ev.id}`);
      ids.add(ev.id);
      m.set(content, ev.id.slice(0, 16));
    };
    return si === 0 ? [c.subscriber(siem, { channels: o.channels, onEvent })] : o.channels.map((channel) => c.subscriber(siem, { channel, onEvent }));
  });
  const subs = bySiem.flat();
  await Promise.all(subs.map((s) => s.start()));
  const pubs = o.publishers.map((p) => c.publisher(p));
  for (let i = 0; i < o.events; i++) {
    const k = i % pubs.length;
    const channel = o.channels[Math.floor(i / pubs.length) % o.channels.length]!;
    const content = JSON.stringify({ p: o.publishers[k], i, pad: 'x'.repeat(120) });
    const pub = pubs[k]!;
    expected.get(channel)!.set(content, pub.epochHex);
    if (!pub.publish(channel, content)) await pub.drained();
    if (o.onProgress && (i + 1) % 1000 === 0) await o.onProgress(i + 1);
  }
  try {
    await Promise.all(pubs.map((p) => p.flush(30_000)));
  } catch (e) {
    // Say which replicas were alive and what they last logged, so a failure under load can be read.
    const state = c.config.replicas.map((r) => `replica ${r.id} ${c.alive(r.id) ? 'alive' : 'dead'}: ${c.log(r.id).trim().split('\n').slice(-2).join(' | ').slice(0, 400)}`);
    throw new Error(`${(e as Error).message}\n${state.join('\n')}`);
  }
  const complete = (): boolean => [...got.values()].every((perChannel) => o.channels.every((ch) => perChannel.get(ch)!.size >= expected.get(ch)!.size));
  const until = Date.now() + (o.deliverTimeoutMs ?? 30_000);
  while (!complete() && Date.now() < until) await sleep(50);
  await sleep(200);
  for (const [siem, perChannel] of got) {
    for (const ch of o.channels) {
      const want = expected.get(ch)!;
      const have = perChannel.get(ch)!;
      const missing = [...want.keys()].filter((content) => !have.has(content));
      assert.equal(missing.length, 0, `${siem} is missing ${missing.length} of ${want.size} events on ${ch}, e.g. ${missing.slice(0, 2).join(', ')}`);
      const unpublished = [...have.keys()].filter((content) => !want.has(content));
      assert.deepEqual(unpublished.slice(0, 3), [], `${siem} delivered ${unpublished.length} events on ${ch} that nobody published (altered content)`);
      for (const [content, epoch] of want) assert.equal(have.get(content), epoch, `${siem} delivered ${content} under another publisher process's id`);
    }
  }
  assert.deepEqual(duplicates.slice(0, 5), [], `events delivered twice: ${duplicates.length}`);
  const collect = (): WorkloadResult => {
    const summaries: Record<string, SubscriberSummary[]> = {};
    const mismatches: Record<string, number[]> = {};
    o.subscribers.forEach((siem, si) => {
      const mine = bySiem[si]!.flatMap((s) => s.summaries());
      summaries[siem] = mine;
      mismatches[siem] = Array.from({ length: n }, (_, r) => mine.reduce((sum, s) => sum + (s.mismatches[r] ?? 0), 0));
    });
    return { summaries, mismatches };
  };
  const settledBy = Date.now() + 10_000;
  while (o.settled && !o.settled(collect().summaries) && Date.now() < settledBy) await sleep(50);
  return collect();
}
