// State transfer (issue 5, docs/consensus.md "Catching up"): a replica that was down while the
// others decided more batches than they keep installs a snapshot that 2f+1 replicas signed,
// with the control table as it stands, and then takes part again — here it must, because
// another replica is killed after it and the order needs 2f+1.
//
// Its cluster.yaml is the one from before an `acl register` made while it was down, as on a host
// that `acl` never wrote to: the client it does not know of comes from the snapshot alone.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientKeyPath, type ClientRole } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { queryStatus, type ReplicaStatus } from '../../src/client/index.js';
import { runCli, sleep, startCluster, type TestCluster } from '../helpers/cluster.js';

const clients: { name: string; role: ClientRole }[] = [
  { name: 'pub1', role: 'pub' },
  { name: 'siem1', role: 'sub' },
];

interface Consensus {
  leader: number;
  lastDecided: number;
  stableCheckpoint: number;
  snapshotsInstalled: number;
  snapshotInstalledAt: number;
  snapshotMismatches: number;
}
interface OrdersLog {
  high: number;
  skipped: number;
  positions: Record<string, unknown>;
}

const statusOf = (c: TestCluster): Promise<ReplicaStatus[]> => queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 3_000);
const consensus = (r: ReplicaStatus): Consensus => (r.status as { consensus: Consensus }).consensus;
const ordersLog = (r: ReplicaStatus): OrdersLog => (r.status as { channels: { tag: string; log: OrdersLog }[] }).channels.find((ch) => ch.tag === 'orders')!.log;

async function publish(c: TestCluster, from: number, count: number): Promise<void> {
  const pub = c.publisher('pub1');
  for (let i = from; i < from + count; i++) if (!pub.publish('orders', `e${i}`)) await pub.drained();
  await pub.flush(60_000);
}

describe('state transfer: a replica further behind than the others keep', { timeout: 240_000 }, () => {
  it('installs a snapshot 2f+1 signed, knows the clients registered while it was down, and orders again when it is needed', async () => {
    // Small batches, a checkpoint every 4 and two decided batches kept: a few thousand events
    // put a replica that was down out of reach of batches.
    const c = await startCluster({
      channels: [],
      clients,
      ordered: ['orders'],
      limits: { consensusRetainDecided: 2, consensusCheckpointInterval: 4, consensusLogWindow: 16, consensusBatchMax: 16, consensusAttestationSeqs: 16384 },
    });
    try {
      const delivered: number[] = [];
      const sub = c.subscriber('siem1', { channel: 'orders', onEvent: (ev) => void delivered.push(ev.seq!) });
      await sub.start();
      const leader = consensus((await statusOf(c))[0]!).leader;
      const down = leader === 3 ? 2 : 3;
      await c.kill(down);
      await publish(c, 0, 3_000);

      const yaml = join(c.dir, 'cluster.yaml');
      const before = readFileSync(yaml, 'utf8');
      const r = runCli(['acl', 'register', 'late', '--dir', c.dir, '--subscribe', 'orders', '--timeout', '30']);
      assert.equal(r.code, 0, r.stderr);
      writeFileSync(yaml, before);

      await c.start(down);
      let back: ReplicaStatus | undefined;
      let others: Consensus[] = [];
      const until = Date.now() + 30_000;
      while (Date.now() < until) {
        const all = await statusOf(c);
        back = all[down];
        others = all.filter((x, i) => i !== down && x.reachable).map(consensus);
        if (back?.reachable && consensus(back).snapshotsInstalled > 0 && consensus(back).lastDecided >= Math.min(...others.map((o) => o.lastDecided))) break;
        await sleep(200);
      }
      assert.ok(back?.reachable, `replica ${down} does not answer after its restart`);
      const cs = consensus(back!);
      assert.ok(cs.snapshotsInstalled >= 1, `replica ${down} installed no snapshot: ${JSON.stringify(cs)}\n${c.log(down).slice(-2000)}`);
      assert.ok(cs.snapshotInstalledAt > 2, `the snapshot is at seq ${cs.snapshotInstalledAt}, within the 2 batches the others keep`);
      assert.ok('late' in ordersLog(back!).positions, `replica ${down} does not know the client registered while it was down: ${JSON.stringify(ordersLog(back!).positions)}`);
      assert.ok(ordersLog(back!).skipped > 0, 'its log says nothing of the events it never held');

      // Without another replica, the order needs the one that came back.
      const second = (down + 1) % 4 === leader ? (down + 2) % 4 : (down + 1) % 4;
      await c.kill(second);
      await publish(c, 3_000, 1_000);
      const deadline = Date.now() + 60_000;
      while (delivered.length < 4_000 && Date.now() < deadline) await sleep(100);
      assert.equal(delivered.length, 4_000, `siem1 delivered ${delivered.length} of 4,000`);
      assert.ok(
        delivered.every((s, i) => s === i + 1),
        'a gap or a repeat in the seqs',
      );

      const all = await statusOf(c);
      const live = all.filter((x) => x.reachable);
      assert.equal(live.length, 3);
      for (const x of live) assert.equal(consensus(x).snapshotMismatches, 0, `replica ${x.replica}'s state after a checkpoint differed from the one 2f+1 signed`);
      assert.ok(
        live.every((x) => ordersLog(x).high === 4_000),
        `logs end at ${live.map((x) => ordersLog(x).high).join('/')}`,
      );
      const text = runCli(['status', '--dir', c.dir]).stdout;
      assert.match(text, new RegExp(`replica ${down} [^\\n]*\\n    ordering: [^\\n]*state \\d+ KiB, snapshots installed \\d+ \\(last at \\d+\\)`));
    } finally {
      await c.stop();
    }
  });
});
