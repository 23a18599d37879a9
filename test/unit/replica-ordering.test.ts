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
import { BrokerService, DiskStore, controlSnapshot } from '../../src/broker/index.js';
import { FitError } from '../../src/core/index.js';
import { ORDERED_HEADER_BYTES } from '../../src/codec/index.js';
import { ed25519Signer, ExecutedRequests, MemoryJournalStore, sha256, signable, snapshotDigest, type Checkpoint, type JournalEntry, type JournalStore } from '../../src/consensus/index.js';
import { Ordering } from '../../src/replica/ordering.js';
import { eventRequestBody, sectionRequests } from '../../src/replica/order-requests.js';
import { orderedEvent } from '../helpers/records.js';

/**
 * A cluster of 4 in a temp dir, replica 1's Ordering over a service, and the snapshot at seq 32
 * that replicas 0, 2, 3 signed: five events ordered (two of them a publish frame held here),
 * client siem gone. `before`: the snapshot as replicas made it before a section's run was one
 * request: the two events decided as one-event requests, and no record of the events placed.
 */
function lagging(journal?: JournalStore, persist: 'memory' | 'disk' = 'memory', before = false) {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-ordering-'));
  initCluster({ dir, replicas: 4, faults: 1, channels: [], basePort: 7100, host: '127.0.0.1', faultModel: 'bft', clients: [{ name: 'siem', role: 'sub' }], force: false, ordered: ['orders'], persist });
  const config = loadConfig(dir);
  const key = (id: number) => loadPrivateKey(replicaKeyPath(dir, id));
  const stores: DiskStore[] = [];
  const make = (j = journal) => {
    const store = persist === 'disk' ? new DiskStore(join(dir, 'store')) : undefined;
    if (store) stores.push(store);
    const service = new BrokerService(loadConfig(dir).table, config.limits, () => 0, store);
    const ordering = new Ordering({ config, id: 1, privateKey: key(1), restarted: false, slowOrderMs: 0, service, journal: j, logger: pino({ level: 'silent' }), reply: () => undefined, refuse: () => undefined });
    return { service, ordering };
  };
  const events = [1, 2].map((seq) => orderedEvent(seq));
  const oneEvent = `ev/orders/${sha256(events[0]!.process).slice(0, 32)}`;
  const executed = new ExecutedRequests();
  const placed = new ExecutedRequests();
  if (before) for (const e of events) executed.add(oneEvent, e.seq), placed.add(oneEvent, e.seq);
  else {
    // The others decided the frame's section as one request, and placed its two events.
    const [request] = sectionRequests('orders', events);
    executed.add(request!.req.client, request!.req.seq);
    for (const e of events) placed.add(eventRequestBody(request!.req)!.placed.key, e.seq);
  }
  const clients = controlSnapshot(config.table).filter(([id]) => id !== 'siem');
  const order = { global: 5, channels: [['orders', 5]] };
  const body = executed.encode(JSON.stringify(before ? { clients, order } : { clients, order, events: placed.encode('') }));
  const publicKeys = config.replicas.map((r) => r.publicKey);
  const proof = [0, 2, 3].map((from) => {
    const c: Checkpoint = { type: 'checkpoint', seq: 32, state: sha256('the chain up to 32'), snapshot: snapshotDigest(body), from, sig: '' };
    return { ...c, sig: ed25519Signer(key(from), publicKeys).sign(signable(c)) };
  });
  const stable = { seq: 32, state: proof[0]!.state, snapshot: proof[0]!.snapshot, proof };
  return {
    make,
    events,
    /** Replica 2 sends the signed snapshot (state transfer). */
    install: (ordering: Ordering) => ordering.receive(2, { type: 'batches', stable, batches: [], executed: 32, view: 0, top: 32, recovering: false, snapshot: { stable, body }, from: 2 }),
    done: async () => {
      for (const s of stores) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('a snapshot the others signed moves the control table and the order, and acknowledges the publishes it says were decided', async () => {
  const f = lagging();
  try {
    const { service, ordering } = f.make();
    let acknowledged = 0;
    ordering.order('probe', [{ channel: 'orders', events: f.events }], () => acknowledged++);
    assert.equal(acknowledged, 0);
    f.install(ordering);
    const status = ordering.status();
    assert.equal(status.snapshotsInstalled, 1, `not installed: ${JSON.stringify(status)}`);
    assert.equal(status.lastDecided, 32);
    assert.equal(acknowledged, 1, 'the publish whose events the snapshot decided is acknowledged');
    const log = service.stats().find((c) => c.tag === 'orders')!.log!;
    assert.deepEqual([log.high, log.skipped], [5, 5]);
    assert.equal(service.controlTable.clients.has('siem'), false, 'the client the snapshot does not have is gone');
  } finally {
    await f.done();
  }
});

/** A journal whose flushes complete only when the test says so. */
class GatedJournal implements JournalStore {
  readonly inner = new MemoryJournalStore();
  private gates: (() => void)[] = [];
  append(entries: readonly JournalEntry[]): void {
    this.inner.append(entries);
  }
  durable(): Promise<void> {
    return new Promise((resolve) => this.gates.push(() => void this.inner.durable().then(resolve)));
  }
  load() {
    return this.inner.load();
  }
  open(): void {
    for (const g of this.gates.splice(0)) g();
  }
}

const turn = () => new Promise((r) => setImmediate(r));

test('with a journal, the publish is acknowledged only once the installed snapshot is on disk; restarted, the replica recovers the table and the order from it', async () => {
  const journal = new GatedJournal();
  const f = lagging(journal);
  try {
    const { ordering } = f.make();
    ordering.recover();
    let acknowledged = 0;
    ordering.order('probe', [{ channel: 'orders', events: f.events }], () => acknowledged++);
    f.install(ordering);
    await turn();
    assert.equal(ordering.status().snapshotsInstalled, 1);
    assert.equal(acknowledged, 0, 'acknowledged before the journal flush that holds the snapshot');
    journal.open();
    await turn();
    assert.equal(acknowledged, 1);
    const closing = ordering.close();
    journal.open();
    await closing;

    // A new process over the same journal (its header and the snapshot on disk), with cluster.yaml's table.
    journal.inner.sync();
    const again = f.make(journal.inner);
    again.ordering.recover();
    const s = again.ordering.status();
    assert.ok(s.journal!.recoveredEntries > 0);
    assert.equal(s.lastDecided, 32);
    assert.equal(again.service.controlTable.clients.has('siem'), false, 'the table came from the journal, not cluster.yaml');
    const log = again.service.stats().find((c) => c.tag === 'orders')!.log!;
    assert.deepEqual([log.high, log.skipped, again.service.sequencer.lastGlobal], [5, 5, 5]);
    const missed = Object.values(log.positions).map((p) => p.missed);
    assert.ok(missed.length > 0 && missed.every((n) => n === 0), `a reader was told it missed what a restart did not keep: ${missed.join(', ')}`);
  } finally {
    await f.done();
  }
});

test('on a disk channel, a publish the installed snapshot decided is refused, not acknowledged: its events are not on this replica\'s disk', async () => {
  const f = lagging(undefined, 'disk');
  try {
    const { ordering } = f.make();
    const answers: (FitError | undefined)[] = [];
    ordering.order('probe', [{ channel: 'orders', events: f.events }], (err) => answers.push(err));
    f.install(ordering);
    assert.equal(answers.length, 1);
    assert.equal(answers[0]?.code, 'FIT_ERR_STORE');
    assert.match(answers[0]!.message, /decided while this replica was catching up .* not on this replica's disk; the other replicas acknowledge it/);
  } finally {
    await f.done();
  }
});

test('a snapshot from replicas before runs: what their one-event requests placed is not placed again, and a run starting at one of them is still ordered', async () => {
  const f = lagging(undefined, 'memory', true);
  try {
    const { service, ordering } = f.make();
    // The publisher resends its frame after the upgrade: seqs 1 and 2 were decided one by one
    // before it, 3 and 4 were not. Its run (1-4) is a request no one-event decision stands for.
    const resent = [1, 2, 3, 4].map((seq) => orderedEvent(seq));
    let acknowledged = 0;
    ordering.order('probe', [{ channel: 'orders', events: resent }], () => acknowledged++);
    f.install(ordering);
    assert.equal(ordering.status().snapshotsInstalled, 1);
    assert.equal(acknowledged, 0, 'acknowledged as decided, so 3 and 4 would never be ordered');
    // Decided now: only 3 and 4 are placed, after the snapshot's five.
    ordering.execute({ seq: 33, view: 0, requests: [sectionRequests('orders', resent)[0]!.req] });
    const log = service.sequencer.log('orders')!;
    assert.equal(log.high, 7);
    assert.deepEqual([6, 7].map((s) => log.envelopeAt(s)!.subarray(ORDERED_HEADER_BYTES).equals(resent[s - 4]!.record)), [true, true]);
    assert.equal(ordering.status().eventsDecidedTwice, 2);
  } finally {
    await f.done();
  }
});
