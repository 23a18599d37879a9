// Ordered `persist: disk` channels (src/broker/durable-log.ts, sequencer.ts) against a real LMDB
// store in a temp directory: a service made again over the same store holds the decided events
// at their seqs and each reader's position; replaying the journal's batches over it (restore to
// the journal's snapshot, then place again) changes nothing it held and appends the rest; an
// event the store holds differently from the replay is refused, not papered over.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FitError, limitsWith, type ChannelClass, type ClientInfo, type ControlTable } from '../../src/core/index.js';
import { BrokerService, DiskStore } from '../../src/broker/index.js';
import { makeRecord, T0_MS } from '../helpers/records.js';

const cls = (over: Partial<ChannelClass> = {}): ChannelClass => ({ fault: 'bft', order: 'channel', priority: 0, capacityEvents: 1000, ttlMs: 60_000, overflow: 'drop-oldest', persist: 'disk', protection: 'si', ...over });
const client = (id: string, publish: string[], subscribe: string[]): ClientInfo => ({ id, publicKey: 'unused-here', publish, subscribe, admin: false });

function table(trail: Partial<ChannelClass> = {}): ControlTable {
  return {
    channels: new Map([
      ['trail', cls(trail)],
      ['scratch', cls({ persist: 'memory' })],
    ]),
    clients: new Map([client('probe', ['*'], []), client('siem1', [], ['*']), client('siem2', [], ['*'])].map((c) => [c.id, c])),
  };
}

const rec = (n: number): Buffer => makeRecord({ seq: n, content: `event ${n}`, timestampMs: T0_MS });

function fixture(trail: Partial<ChannelClass> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-durable-log-'));
  const now = { ms: T0_MS };
  let store = new DiskStore(join(dir, 'store'));
  let svc = new BrokerService(table(trail), limitsWith({}), () => now.ms, store);
  return {
    get svc() {
      return svc;
    },
    now,
    /** Flushes, closes the store and opens a service on it again, as a restarted replica does before its journal replays. */
    async restart(): Promise<BrokerService> {
      svc.flushStore();
      await store.close();
      store = new DiskStore(join(dir, 'store'));
      svc = new BrokerService(table(trail), limitsWith({}), () => now.ms, store);
      return svc;
    },
    async done(): Promise<void> {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const held = (svc: BrokerService, from = 1): number[] => svc.sequencer.log('trail')!.read(from, 10_000).map((e) => e.seq);

test('a restarted service holds the decided events at their seqs and each reader where it acknowledged', async () => {
  const f = fixture();
  try {
    for (let n = 1; n <= 10; n++) f.svc.placeOrdered('trail', rec(n));
    f.svc.placeOrdered('scratch', rec(1));
    f.svc.sequencer.log('trail')!.ack('siem1', 7);
    await f.svc.durable();
    const svc = await f.restart();
    const log = svc.sequencer.log('trail')!;
    assert.deepEqual(held(svc), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual([log.position('siem1'), log.position('siem2')], [8, 1]);
    assert.equal(svc.sequencer.log('scratch')!.high, 0, 'a memory channel came back from disk');
    assert.equal(svc.stats().find((c) => c.tag === 'trail')!.logDisk!.restored, 10);
  } finally {
    await f.done();
  }
});

test('replaying the journal over the disk log: held seqs are left as they are, the rest is appended at the next seqs', async () => {
  const f = fixture();
  try {
    for (let n = 1; n <= 10; n++) f.svc.placeOrdered('trail', rec(n));
    // The journal's snapshot was taken after event 6 (global 6); its batches above hold 7..12.
    const snapshot = { global: 6, channels: [['scratch', 0], ['trail', 6]] as [string, number][] };
    assert.deepEqual(f.svc.sequencer.snapshot().channels, [['scratch', 0], ['trail', 10]]);
    await f.svc.durable();
    const svc = await f.restart();
    const before = svc.sequencer.log('trail')!.read(1, 100).map((e) => Buffer.from(e.buf));
    svc.sequencer.restore(snapshot, true);
    assert.deepEqual(svc.sequencer.snapshot(), snapshot, 'the order stands where the journal\'s snapshot says, not where the disk log ends');
    for (let n = 7; n <= 12; n++) svc.placeOrdered('trail', rec(n));
    assert.deepEqual(held(svc), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(svc.sequencer.log('trail')!.read(1, 10).map((e) => Buffer.from(e.buf)), before, 'a held envelope changed');
    assert.equal(svc.sequencer.lastGlobal, 12);
    const trail = svc.stats().find((c) => c.tag === 'trail')!;
    assert.equal(trail.log!.skipped, 0);
    // Seqs 11 and 12 were written too: they are there after another restart.
    await svc.durable();
    assert.deepEqual(held(await f.restart()), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  } finally {
    await f.done();
  }
});

test('a replay that decides a different event at a held seq is FIT_ERR_STORE: the store is not this journal\'s', async () => {
  const f = fixture();
  try {
    for (let n = 1; n <= 3; n++) f.svc.placeOrdered('trail', rec(n));
    await f.svc.durable();
    const svc = await f.restart();
    svc.sequencer.restore({ global: 1, channels: [['trail', 1]] }, true);
    assert.throws(
      () => svc.placeOrdered('trail', rec(99)),
      (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_STORE' && /different event at seq 2 of channel "trail"/.test(e.message),
    );
  } finally {
    await f.done();
  }
});

test('recovery skips what neither the disk nor the journal holds without counting it against readers; state transfer counts it', async () => {
  const f = fixture();
  try {
    for (let n = 1; n <= 3; n++) f.svc.placeOrdered('trail', rec(n));
    await f.svc.durable();
    const svc = await f.restart();
    svc.sequencer.restore({ global: 5, channels: [['trail', 5]] }, true);
    const log = svc.sequencer.log('trail')!;
    assert.deepEqual([log.high, log.counters.skipped, log.missedBy('siem1')], [5, 2, 0]);
    svc.sequencer.restore({ global: 8, channels: [['trail', 8]] });
    assert.deepEqual([log.high, log.counters.skipped, log.missedBy('siem1')], [8, 5, 3]);
  } finally {
    await f.done();
  }
});

test('events the log evicted are deleted from the store at the next flush; a reader taken away loses its position', async () => {
  const f = fixture({ capacityEvents: 4 });
  try {
    for (let n = 1; n <= 10; n++) f.svc.placeOrdered('trail', rec(n));
    f.svc.sequencer.log('trail')!.ack('siem1', 10);
    f.svc.flushStore();
    let disk = f.svc.stats().find((c) => c.tag === 'trail')!.logDisk!;
    assert.deepEqual([disk.events, disk.trimmed], [4, 6]);
    f.svc.closeQueue('trail', 'siem2');
    await f.svc.durable();
    const svc = await f.restart();
    assert.deepEqual(held(svc), [7, 8, 9, 10]);
    disk = svc.stats().find((c) => c.tag === 'trail')!.logDisk!;
    assert.deepEqual(disk.positions, { siem1: 10 });
  } finally {
    await f.done();
  }
});
