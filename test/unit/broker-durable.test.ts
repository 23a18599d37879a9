// persist: disk in the broker service (src/broker/durable.ts, store.ts) against a real LMDB
// store in a temp directory: a service that is closed and made again over the same store
// gives each client the records above its position, in order, and nothing it was done with.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FitError, limitsWith, type ChannelClass, type ClientInfo, type ControlTable } from '../../src/core/index.js';
import { BrokerService, DiskStore, type ClientQueue } from '../../src/broker/index.js';
import { RecordCursor } from '../../src/codec/index.js';
import { makeRecord, publishBody, EPOCH_B, T0_MS } from '../helpers/records.js';

const cls = (over: Partial<ChannelClass> = {}): ChannelClass => ({ fault: 'bft', order: 'none', priority: 0, capacityEvents: 1000, ttlMs: 60_000, overflow: 'drop-oldest', persist: 'disk', protection: 'si', ...over });
const client = (id: string, publish: string[], subscribe: string[]): ClientInfo => ({ id, publicKey: 'unused-here', publish, subscribe, admin: false });
const probe = client('probe', ['*'], []);
const siem1 = client('siem1', [], ['*']);
const siem2 = client('siem2', [], ['*']);

function table(clients = [probe, siem1, siem2]): ControlTable {
  return { channels: new Map([['alerts', cls()], ['scratch', cls({ persist: 'memory' })]]), clients: new Map(clients.map((c) => [c.id, c])) };
}

/** A store in a fresh directory, and a way to open a service on it again as a restarted replica would. */
function fixture(now = { ms: T0_MS }) {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-durable-'));
  let store = new DiskStore(join(dir, 'store'));
  let svc = new BrokerService(table(), limitsWith({}), () => now.ms, store);
  return {
    get svc() {
      return svc;
    },
    now,
    /** Flushes positions, closes the store, opens both again (a clean restart; SIGKILL is the integration test's). */
    async restart(t = table()): Promise<BrokerService> {
      svc.flushStore();
      await store.close();
      store = new DiskStore(join(dir, 'store'));
      svc = new BrokerService(t, limitsWith({}), () => now.ms, store);
      return svc;
    },
    async done(): Promise<void> {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function publish(svc: BrokerService, specs: Parameters<typeof makeRecord>[0][], channel = 'alerts') {
  const { body, sections } = publishBody(channel, specs.map((s) => makeRecord(s)));
  const r = svc.publish(probe, body, sections);
  await svc.durable();
  return r;
}

/** The seqs a fresh session of the queue is sent, in order. */
function seqsFor(q: ClientQueue, now = T0_MS): number[] {
  const cursor = new RecordCursor(Buffer.alloc(0), 0, 1 << 20);
  return q.take(q.attach(), 10_000, now).map((e) => {
    cursor.reset(e.buf, e.at, e.at + e.len);
    assert.ok(cursor.next(), 'a queued entry is one whole record');
    return cursor.seq;
  });
}

test('a restarted service gives each client what it had not acknowledged, in order, and forgets what every client was done with', async () => {
  const f = fixture();
  try {
    const r = await publish(f.svc, Array.from({ length: 10 }, (_, i) => ({ seq: i + 1, content: `e${i + 1}` })));
    assert.equal(r.stored, true, 'records of a disk channel are reported as stored, so the replica acknowledges after durable()');
    const q1 = f.svc.queueFor(siem1, 'alerts');
    const s1 = q1.attach();
    assert.equal(q1.take(s1, 6, T0_MS).length, 6);
    q1.ack(s1, 3); // siem1 acknowledged 4 of the 6 it was sent
    const svc = await f.restart();
    assert.deepEqual(seqsFor(svc.queueFor(siem1, 'alerts')), [5, 6, 7, 8, 9, 10], 'siem1 gets back what it was sent and did not acknowledge, and the rest');
    assert.deepEqual(seqsFor(svc.queueFor(siem2, 'alerts')), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'siem2 never read: it gets everything');
    // New records go on from the old numbering, and the dedupe of the publisher survived.
    const again = await publish(svc, [{ seq: 10 }, { seq: 11, content: 'e11' }]);
    assert.deepEqual({ accepted: again.accepted, duplicates: again.duplicates }, { accepted: 1, duplicates: 1 }, 'seq 10 was accepted before the restart');
    assert.equal(svc.stats().find((c) => c.tag === 'alerts')!.disk!.nextIdx, 11);
  } finally {
    await f.done();
  }
});

test('urgent events acknowledged ahead of older ones hold the position below the oldest not done; the voter drops the rest', async () => {
  const f = fixture();
  try {
    await publish(f.svc, [{ seq: 1 }, { seq: 2 }, { seq: 3, priority: 3 }]);
    const q = f.svc.queueFor(siem1, 'alerts');
    const s = q.attach();
    assert.deepEqual(q.take(s, 1, T0_MS).length, 1, 'the urgent one goes first');
    q.ack(s, 0);
    const svc = await f.restart();
    assert.deepEqual(seqsFor(svc.queueFor(siem1, 'alerts')), [3, 1, 2], 'the urgent one was done, but above the prefix: sent again (urgent first; its voter drops the copy) with the two still owed');
  } finally {
    await f.done();
  }
});

test('sections every client is done with are deleted; dropped and expired records count as done', async () => {
  const f = fixture();
  try {
    for (let b = 0; b < 5; b++) await publish(f.svc, Array.from({ length: 4 }, (_, i) => ({ seq: b * 4 + i + 1 })));
    for (const who of [siem1, siem2]) {
      const q = f.svc.queueFor(who, 'alerts');
      const s = q.attach();
      q.take(s, 12, T0_MS);
      q.ack(s, 11);
    }
    f.svc.flushStore();
    const disk = f.svc.stats().find((c) => c.tag === 'alerts')!.disk!;
    assert.deepEqual({ sections: disk.sections, trimmed: disk.trimmed, positions: disk.positions }, { sections: 2, trimmed: 3, positions: { siem1: 11, siem2: 11 } });
    // Everything left expires: the queues count it dropped, which is done too.
    f.now.ms = T0_MS + 120_000;
    for (const who of [siem1, siem2]) f.svc.queueFor(who, 'alerts').expire(f.now.ms);
    f.svc.flushStore();
    assert.equal(f.svc.stats().find((c) => c.tag === 'alerts')!.disk!.sections, 0);
    const svc = await f.restart();
    for (const who of [siem1, siem2]) assert.equal(svc.queueFor(who, 'alerts').depth, 0);
    assert.equal(svc.stats().find((c) => c.tag === 'alerts')!.disk!.nextIdx, 20, 'numbering goes on after the last index, though no section is left');
  } finally {
    await f.done();
  }
});

test('a record refused inside a section (a duplicate) is left out of what is stored, and the rest keeps its indexes', async () => {
  const f = fixture();
  try {
    await publish(f.svc, [{ seq: 2 }]);
    // seq 2 again in the middle: a gap in the accepted bytes, stored without it.
    const { body, sections } = publishBody('alerts', [makeRecord({ seq: 1 }), makeRecord({ seq: 3 }), makeRecord({ seq: 4, epoch: EPOCH_B })]);
    const r = f.svc.publish(probe, body, sections);
    await f.svc.durable();
    assert.deepEqual({ accepted: r.accepted, duplicates: r.duplicates }, { accepted: 2, duplicates: 1 });
    const svc = await f.restart();
    assert.deepEqual(seqsFor(svc.queueFor(siem1, 'alerts')), [2, 3, 4]);
  } finally {
    await f.done();
  }
});

test('a client allowed to subscribe later starts at the next record, across a restart too; memory channels store nothing', async () => {
  const f = fixture();
  try {
    const late = client('late', [], []);
    const t = table([probe, siem1, siem2, late]);
    let svc = await f.restart(t);
    await publish(svc, [{ seq: 1 }]);
    late.subscribe.push('alerts');
    svc.openQueue('alerts', 'late');
    await publish(svc, [{ seq: 2 }]);
    await publish(svc, [{ seq: 3 }], 'scratch');
    svc = await f.restart(t);
    assert.deepEqual(seqsFor(svc.queueFor(late, 'alerts')), [2]);
    assert.equal(svc.stats().find((c) => c.tag === 'scratch')!.disk, undefined);
    assert.equal(svc.queueFor(siem1, 'scratch').depth, 0, 'a memory channel comes back empty');
  } finally {
    await f.done();
  }
});

test('a store that cannot be opened is FIT_ERR_STORE naming its path and what to check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-durable-'));
  try {
    const path = join(dir, 'store');
    writeFileSync(path, 'not a store');
    assert.throws(
      () => new DiskStore(path),
      (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_STORE' && e.fields.path === path && /permissions and free space/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
