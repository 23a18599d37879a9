// A publisher's memory for a replica that stops reading (docs/operations.md, "A replica that
// is not reading"; limits.publishLagBytesMax), on real replica processes, one of them
// frozen with SIGSTOP:
//
// - while 2f+1 others acknowledge, what waits in the publisher for the frozen one stays under
//   the limit plus the publish window, however much is published, and what it skipped is
//   counted;
// - resumed, it is fed again: with another replica frozen the quorum needs it, and publishes
//   are still acknowledged;
// - a console then gets every event exactly once, including those the first replica missed.
//
// Bounds are asserted on the publisher's own per-replica counter, never on timings.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PublisherStatus } from '../../src/client/index.js';
import { sleep, startCluster } from '../helpers/cluster.js';

async function until(what: string | (() => string), cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(20);
  }
}

describe('a publisher and a replica that stops reading', { timeout: 180_000 }, () => {
  it('holds at most publishLagBytesMax and the window for it while the others make the quorum, feeds it again once it reads, and no event is lost', async () => {
    const limitBytes = 1024 * 1024;
    // A small window, so that the bound (the limit, plus what was in flight when the replica
    // was left behind) is a small part of what is published while it is frozen.
    const windowBatches = 16;
    // 16 KiB events: 32 MiB while the replica is frozen is many times the limit (and what the
    // kernel's socket buffers take), in few enough events for a console to vote on them quickly.
    const content = (i: number): string => `${String(i).padStart(8, '0')}${'z'.repeat(16 * 1024 - 8)}`;
    const frozenPhase = 2_000;
    const neededPhase = 200;
    const c = await startCluster({ channels: ['alerts'], protection: 'si', limits: { publishLagBytesMax: limitBytes, publishWindowBatches: windowBatches } });
    const statuses: PublisherStatus[] = [];
    try {
      const pub = c.publisher('probe', { onStatus: (s) => statuses.push(s) });
      await until('the publisher to connect to all 4 replicas', () => pub.readyReplicas === 4);
      const bound = limitBytes + (windowBatches + 1) * c.config.limits.batchBytesMax;
      let published = 0;
      let backlogMax = 0;
      let lagMax = 0;
      const publish = async (count: number): Promise<void> => {
        for (let i = 0; i < count; i++) {
          if (!pub.publish('alerts', content(published++))) await pub.drained(60_000);
          const r3 = pub.replicaStats()[3]!;
          backlogMax = Math.max(backlogMax, r3.backlogBytes);
          lagMax = Math.max(lagMax, r3.lagBytes);
        }
        await pub.flush(60_000);
      };

      c.procs[3]!.kill('SIGSTOP');
      await publish(frozenPhase);
      const frozen = pub.replicaStats()[3]!;
      assert.ok(published * 16 * 1024 > 5 * bound, 'published over five times the bound while the replica was frozen');
      assert.ok(backlogMax <= bound, `${backlogMax} bytes waited in the publisher for the frozen replica, over the limit ${limitBytes} plus the window`);
      assert.ok(lagMax <= bound, `the frozen replica lagged ${lagMax} bytes, over the limit ${limitBytes} plus the window`);
      assert.equal(frozen.behind, true, 'the frozen replica is left behind');
      assert.equal(frozen.behindSpells, 1);
      assert.ok(frozen.missedEvents > frozenPhase / 2, `it missed ${frozen.missedEvents} of ${frozenPhase} events: most of what was published while frozen`);
      assert.deepEqual(statuses.filter((s) => s.type === 'replicaBehind').map((s) => s.replica), [3]);
      for (const r of pub.replicaStats().slice(0, 3)) assert.equal(r.behind, false, `replica ${r.replica} reads and is not behind`);

      c.procs[3]!.kill('SIGCONT');
      await until('the resumed replica to drain and be caught up', () => !pub.replicaStats()[3]!.behind);
      const caughtUp = statuses.find((s) => s.type === 'replicaCaughtUp');
      assert.ok(caughtUp && caughtUp.type === 'replicaCaughtUp' && caughtUp.replica === 3);
      assert.equal(caughtUp.missedEvents, frozen.missedEvents);

      // Replica 0 frozen: 2f+1 = 3 of the 4 now means replica 3, which must be fed again.
      c.procs[0]!.kill('SIGSTOP');
      await publish(neededPhase);
      assert.equal(pub.replicaStats()[3]!.missedEvents, frozen.missedEvents, 'replica 3 missed nothing once it read again');

      // Every event reaches a console exactly once: those replica 3 missed from 1 and 2 (f+1).
      const got = new Map<string, number>();
      const sub = c.subscriber('console', {
        channel: 'alerts',
        onEvent: (e) => {
          const key = e.content.toString('latin1', 0, 8);
          got.set(key, (got.get(key) ?? 0) + 1);
        },
      });
      await sub.start();
      await until(() => `all ${published} events at the console (${got.size} so far)`, () => got.size >= published, 60_000);
      await sleep(200);
      assert.equal(got.size, published);
      assert.ok([...got.values()].every((n) => n === 1), 'an event delivered twice');
      assert.deepEqual(sub.summary().mismatches, { 0: 0, 1: 0, 2: 0, 3: 0 });
    } finally {
      for (const p of c.procs) p?.kill('SIGCONT');
      await c.stop();
    }
  });
});
