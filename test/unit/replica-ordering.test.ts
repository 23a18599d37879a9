// The replica's state machine for the ordering protocol (src/replica/ordering.ts), driven by
// hand with real replica keys and no sockets: a snapshot the other replicas signed moves the
// control table and the order, and answers the publish frames this replica was holding for
// events the snapshot says were decided.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { initCluster, loadConfig, replicaKeyPath } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { BrokerService, controlSnapshot } from '../../src/broker/index.js';
import { ed25519Signer, ExecutedRequests, sha256, signable, snapshotDigest, type Checkpoint } from '../../src/consensus/index.js';
import { Ordering } from '../../src/replica/ordering.js';

test('a snapshot the others signed moves the control table and the order, and acknowledges the publishes it says were decided', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-ordering-'));
  try {
    initCluster({ dir, replicas: 4, faults: 1, channels: [], basePort: 7100, host: '127.0.0.1', faultModel: 'bft', clients: [{ name: 'siem', role: 'sub' }], force: false, ordered: ['orders'] });
    const config = loadConfig(dir);
    const service = new BrokerService(config.table, config.limits, () => 0);
    const key = (id: number) => loadPrivateKey(replicaKeyPath(dir, id));
    const ordering = new Ordering({ config, id: 1, privateKey: key(1), restarted: false, slowOrderMs: 0, service, logger: pino({ level: 'silent' }), reply: () => undefined, refuse: () => undefined });

    // A publish frame of two events waits for them to be ordered.
    let acknowledged = 0;
    const process = 'ab'.repeat(16);
    const events = [1, 2].map((seq) => ({ record: Buffer.from(`event ${seq}`), process, seq, urgent: false }));
    ordering.order([{ channel: 'orders', events }], () => acknowledged++);
    assert.equal(acknowledged, 0);

    // The others ordered them, and five events in all, while this replica lagged.
    const executed = new ExecutedRequests();
    for (const e of events) executed.add(`ev/orders/${sha256(process).slice(0, 32)}`, e.seq);
    const clients = controlSnapshot(config.table).filter(([id]) => id !== 'siem');
    const body = executed.encode(JSON.stringify({ clients, order: { global: 5, channels: [['orders', 5]] } }));
    const publicKeys = config.replicas.map((r) => r.publicKey);
    const proof = [0, 2, 3].map((from) => {
      const c: Checkpoint = { type: 'checkpoint', seq: 32, state: sha256('the chain up to 32'), snapshot: snapshotDigest(body), from, sig: '' };
      return { ...c, sig: ed25519Signer(key(from), publicKeys).sign(signable(c)) };
    });
    const stable = { seq: 32, state: proof[0]!.state, snapshot: proof[0]!.snapshot, proof };
    ordering.receive(2, { type: 'batches', stable, batches: [], executed: 32, view: 0, top: 32, recovering: false, snapshot: { stable, body }, from: 2 });

    const status = ordering.status();
    assert.equal(status.snapshotsInstalled, 1, `not installed: ${JSON.stringify(status)}`);
    assert.equal(status.lastDecided, 32);
    assert.equal(acknowledged, 1, 'the publish whose events the snapshot decided is acknowledged');
    const log = service.stats().find((c) => c.tag === 'orders')!.log!;
    assert.deepEqual([log.high, log.skipped], [5, 5]);
    assert.equal(config.table.clients.has('siem'), false, 'the client the snapshot does not have is gone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
