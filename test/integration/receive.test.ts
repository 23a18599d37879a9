// The paper's pull interface (§4: "receive … will get the requested events from the
// corresponding output queue"), voted like the push stream, and a stalled console that costs
// a replica only its bounded queue.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientKeyPath } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { Receiver, queryStatus } from '../../src/client/index.js';
import { sleep, startCluster, CLI } from '../helpers/cluster.js';
import { spawn } from 'node:child_process';

describe('receive (pull with a count)', { timeout: 60_000 }, () => {
  it('returns each event once, voted over the replicas, in calls of at most the count asked', async () => {
    const c = await startCluster({ faults: { 3: ['tamper'] } });
    try {
      const pub = c.publisher('probe');
      for (let i = 0; i < 50; i++) pub.publish('alerts', `e${i}`);
      await pub.flush();
      const r = new Receiver(c.config, 'console', loadPrivateKey(clientKeyPath(c.dir, 'console')), 'alerts');
      const got: string[] = [];
      for (let call = 0; call < 20 && got.length < 50; call++) {
        const batch = await r.receive(20);
        assert.ok(batch.length <= 40, `one call returned ${batch.length} events`);
        got.push(...batch.map((e) => e.content.toString()));
      }
      r.close();
      assert.deepEqual(got.sort(), Array.from({ length: 50 }, (_, i) => `e${i}`).sort());
    } finally {
      await c.stop();
    }
  });
});

describe('receive of large events', { timeout: 60_000 }, () => {
  it('answers a pull with what fits one frame, so 16 KiB events still arrive (1,000 of them would be a 16 MiB frame, over frameBytesMax)', async () => {
    const c = await startCluster({ protection: 'si' });
    try {
      const pub = c.publisher('probe');
      const big = 'z'.repeat(16 * 1024);
      for (let i = 0; i < 400; i++) if (!pub.publish('alerts', `${i} ${big}`)) await pub.drained();
      await pub.flush(30_000);
      const r = new Receiver(c.config, 'console', loadPrivateKey(clientKeyPath(c.dir, 'console')), 'alerts');
      const got = new Set<string>();
      for (let call = 0; call < 100 && got.size < 400; call++) for (const e of await r.receive(1_000)) got.add(e.content.toString().split(' ')[0]!);
      r.close();
      assert.equal(got.size, 400, `received ${got.size} of 400 large events`);
    } finally {
      await c.stop();
    }
  });
});

describe('a stalled console', { timeout: 90_000 }, () => {
  it('holds no one else back, and costs a replica only its bounded queue, with every drop counted', async () => {
    const capacity = 5_000;
    const total = 30_000;
    const c = await startCluster({ channels: ['alerts'], capacityEvents: capacity, clients: [{ name: 'siem1', role: 'sub' }, { name: 'siem2', role: 'sub' }] });
    // A real subscribe process, frozen with SIGSTOP: it neither reads nor grants credits.
    const stalled = spawn(process.execPath, [CLI, 'subscribe', '--dir', c.dir, '--as', 'siem1', '--channel', 'alerts'], { stdio: 'ignore' });
    try {
      // Frozen only once every replica holds its session: a process slow to start on a loaded
      // machine would otherwise be frozen before it subscribed anywhere.
      const sessions = async (): Promise<number[]> =>
        (await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 3000)).map((r) => (r.status?.channels as { queues: Record<string, { sessions: number }> }[] | undefined)?.[0]?.queues.siem1?.sessions ?? 0);
      for (let i = 0; i < 200 && (await sessions()).some((n) => n < 1); i++) await sleep(100);
      stalled.kill('SIGSTOP');
      let healthy = 0;
      const sub = c.subscriber('siem2', { channel: 'alerts', onEvent: () => healthy++ });
      await sub.start();
      const pub = c.publisher('probe');
      const payload = 'y'.repeat(200);
      for (let i = 0; i < total; i++) {
        if (!pub.publish('alerts', payload)) await pub.drained();
        // Pace the publisher to the healthy console, as a real pipeline is: the point is that
        // the stalled one does not slow it down.
        while (i - healthy > capacity / 2) await sleep(5);
      }
      await pub.flush(60_000);
      const until = Date.now() + 30_000;
      while (healthy < total && Date.now() < until) await sleep(20);
      assert.equal(healthy, total, 'the healthy console was held back by the stalled one');
      const status = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 3000);
      for (const r of status) {
        const q = (r.status!.channels as { queues: Record<string, { depth: number; droppedCapacity: number; sessions: number }> }[])[0]!.queues.siem1!;
        assert.equal(q.sessions, 1, `replica ${r.replica} lost the stalled session`);
        assert.ok(q.depth <= capacity, `replica ${r.replica} queue for the stalled console grew to ${q.depth}`);
        // All it could take before freezing is one credit window; everything else is queued or counted.
        assert.ok(q.depth + q.droppedCapacity >= total - 8192, `replica ${r.replica}: ${q.depth} queued + ${q.droppedCapacity} dropped of ${total}`);
      }
    } finally {
      // Also when an assertion failed: a stopped child left behind keeps the test process alive.
      stalled.kill('SIGKILL');
      await c.stop();
    }
  });
});
