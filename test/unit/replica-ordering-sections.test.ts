// Ordered events as one consensus request per run of a publish section (src/replica/
// ordering.ts, order-requests.ts): four replicas' Orderings, each over its own BrokerService,
// run the real protocol over an in-memory network. A correct publisher's sections become one
// request each and the same log at every replica; a faulty publisher that cuts its events into
// different, overlapping sections for different replicas gets each event placed once, in the
// same place everywhere; and what was placed travels in the snapshot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { initCluster, loadConfig, replicaKeyPath } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { BrokerService } from '../../src/broker/index.js';
import { Ordering, type OrderingLinks } from '../../src/replica/ordering.js';
import { sectionRequests } from '../../src/replica/order-requests.js';
import type { Req } from '../../src/consensus/index.js';
import { isFitError, type FitError } from '../../src/core/index.js';
import { EPOCH_B, orderedEvent, T0_MS } from '../helpers/records.js';
import { assertAsyncProperty } from '../helpers/property.js';
import { N, agreedLog, withCluster, logOf, publishTo, publisherSeqs, range, settled, silent, sleep, type Replica } from '../helpers/orderings.js';

/** Each replica's [event requests executed, events placed, events decided twice, publishes acknowledged]. */
function assertCounts(replicas: Replica[], expected: [number, number, number, number]): void {
  for (const r of replicas) {
    const s = r.ordering.status();
    assert.deepEqual([s.requestsOrdered, s.eventsOrdered, s.eventsDecidedTwice, r.acks], expected);
    assert.equal(s.snapshotMismatches, 0, 'a replica\'s snapshot differed from the one the others signed');
  }
}

/** Each group of seqs (one request's events) is placed whole: at consecutive positions of the log, in its order. */
function assertPlacedWhole(seqs: number[], groups: number[][]): void {
  for (const g of groups) {
    const at = seqs.indexOf(g[0]!);
    assert.deepEqual(seqs.slice(at, at + g.length), g, `request ${g.join(',')} not placed whole in ${seqs.join(',')}`);
  }
}


test('a correct publisher: one request per section, and the same log and snapshots at every replica', async () => {
  await withCluster({ checkpointEvery: 2 }, async (c) => {
    const frames = [range(1, 10), range(11, 20), range(21, 30)];
    for (const events of frames) for (const r of c.replicas) publishTo(r, events);
    await settled(c.replicas);
    // Each section is one request, placed whole and in order; the sections in any order.
    const placed = publisherSeqs(agreedLog(c.replicas));
    assert.deepEqual([...placed].sort((x, y) => x - y), [...Array(30).keys()].map((i) => i + 1));
    assertPlacedWhole(placed, frames.map((f) => f.map((e) => e.seq)));
    assertCounts(c.replicas, [3, 30, 0, 3]);
    assert.ok(c.replicas.every((r) => r.ordering.status().stableCheckpoint > 0), 'no checkpoint was reached: the snapshots were never compared');
    // Resent (a reconnect) after it was decided: acknowledged at once, nothing ordered again.
    const r0 = c.replicas[0]!;
    publishTo(r0, frames[1]!);
    assert.equal(r0.acks, 4);
    await sleep(100);
    assert.equal(r0.ordering.status().requestsOrdered, 3);
  });
});

test('a frame whose request is never decided (only this replica got it) stops being waited for when its connection closes', async () => {
  await withCluster({}, async (c) => {
    const r0 = c.replicas[0]!;
    let answers = 0;
    const cancel = r0.ordering.order('probe', [{ channel: 'orders', events: range(1, 5) }], () => answers++);
    const again = r0.ordering.order('probe', [{ channel: 'orders', events: range(1, 5) }], () => answers++);
    await sleep(100);
    assert.equal(r0.ordering.status().requestsAwaited, 1, 'two frames wait for the one request');
    cancel();
    assert.equal(r0.ordering.status().requestsAwaited, 1, 'the other frame still waits');
    again();
    assert.equal(r0.ordering.status().requestsAwaited, 0);
    assert.equal(answers, 0);
  });
});

test('a frame only this replica got is refused with FIT_ERR_ORDER_EXPIRED once W decisions passed its attestation, and its room is free again', async () => {
  // pendingMax 1: the lonely request alone fills this replica's; W = 24 decisions, empty ones.
  await withCluster({ limits: { consensusAttestationSeqs: 24, consensusPendingMax: 1 } }, async (c) => {
    const r0 = c.replicas[0]!;
    let refusal: FitError | undefined;
    r0.ordering.order('probe', [{ channel: 'orders', events: range(1, 5) }], (err) => (refusal = err));
    const until = Date.now() + 20_000;
    while (refusal === undefined && Date.now() < until) await sleep(25);
    assert.ok(refusal && isFitError(refusal), 'the frame was never answered');
    assert.equal(refusal.code, 'FIT_ERR_ORDER_EXPIRED');
    assert.match(refusal.message, /publish it again/);
    const s = r0.ordering.status();
    assert.deepEqual([s.expired, s.pending, s.requestsAwaited, s.eventsOrdered], [1, 0, 0, 0]);
    assert.ok(s.emptyBatches >= 6 && s.lastDecided >= 24, `the leader proposed ${s.emptyBatches} empty batches to decide ${s.lastDecided} seqs`);
    // Room again: a correct publisher's frame, sent to every replica, is taken and ordered.
    for (const r of c.replicas) publishTo(r, range(6, 8));
    await settled(c.replicas);
    assert.deepEqual(publisherSeqs(agreedLog(c.replicas)), [6, 7, 8]);
  });
});

test('a faulty publisher cutting overlapping sections for different replicas: every event placed once, the same everywhere', async () => {
  await withCluster({}, async (c) => {
    const [a, b, d, e] = c.replicas as [Replica, Replica, Replica, Replica];
    for (const r of [a, b]) publishTo(r, range(1, 12));
    for (const r of [d, e]) publishTo(r, range(5, 16));
    // A correct publisher beside it, its section with an urgent event in the middle: three requests.
    const honest = [1, 2, 3, 4, 5].map((s) => orderedEvent(s, { epoch: EPOCH_B, priority: s === 3 ? 3 : 0 }));
    for (const r of c.replicas) publishTo(r, honest);
    await settled(c.replicas);
    const log = agreedLog(c.replicas);
    const faulty = log.filter((env) => !env.includes(EPOCH_B));
    const correct = log.filter((env) => env.includes(EPOCH_B));
    assert.deepEqual([...publisherSeqs(faulty)].sort((x, y) => x - y), [...Array(16).keys()].map((i) => i + 1));
    // The urgent event is a request of its own (proposed first); the other two keep their order.
    const correctSeqs = publisherSeqs(correct);
    assert.deepEqual([...correctSeqs].sort((x, y) => x - y), [1, 2, 3, 4, 5]);
    assertPlacedWhole(correctSeqs, [[1, 2], [4, 5]]);
    assertCounts(c.replicas, [5, 21, 8, 2]);
  });
});

test('the events placed travel in the snapshot: a replica that installed it skips them when a later request repeats them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-sections-'));
  try {
    initCluster({ dir, replicas: N, faults: 1, channels: [], basePort: 7100, host: '127.0.0.1', faultModel: 'bft', clients: [{ name: 'siem', role: 'sub' }], force: false, ordered: ['orders'], persist: 'memory' });
    const config = loadConfig(dir);
    const none: OrderingLinks = { start: () => undefined, stop: () => undefined, send: () => undefined, connected: [], dropped: 0 };
    const make = () => {
      const service = new BrokerService(config.table, config.limits, () => T0_MS);
      const ordering = new Ordering({ config, id: 0, privateKey: loadPrivateKey(replicaKeyPath(dir, 0)), restarted: false, slowOrderMs: 0, service, logger: silent, reply: () => undefined, refuse: () => undefined, links: none });
      return { service, ordering };
    };
    const [first] = sectionRequests('orders', range(1, 12));
    const [overlap] = sectionRequests('orders', range(5, 16));
    const one = make();
    one.ordering.execute({ seq: 1, view: 0, requests: [first!.req] });
    const snapshot = one.ordering.snapshot();

    const other = make();
    other.ordering.restore(1, snapshot);
    other.ordering.execute({ seq: 2, view: 0, requests: [overlap!.req] });
    const log = other.service.sequencer.log('orders')!;
    assert.equal(log.high, 16);
    assert.deepEqual(publisherSeqs([13, 14, 15, 16].map((s) => log.envelopeAt(s)!)), [13, 14, 15, 16]);
    assert.equal(other.ordering.status().eventsDecidedTwice, 8);

    // A snapshot from before requests carried runs (no executed events in it) still installs.
    const old = JSON.parse(snapshot) as Record<string, unknown>;
    delete old.events;
    const older = make();
    older.ordering.restore(1, JSON.stringify(old));
    assert.equal(older.service.sequencer.log('orders')!.high, 12);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a publisher over several ordered channels leaves one record per process: what it placed is a floor with nothing above, and what older replicas placed per channel is skipped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-sections-'));
  try {
    const channels = ['a', 'b', 'c'];
    initCluster({ dir, replicas: N, faults: 1, channels: [], basePort: 7100, host: '127.0.0.1', faultModel: 'bft', clients: [{ name: 'siem', role: 'sub' }], force: false, ordered: channels, persist: 'memory' });
    const config = loadConfig(dir);
    const none: OrderingLinks = { start: () => undefined, stop: () => undefined, send: () => undefined, connected: [], dropped: 0 };
    const service = new BrokerService(config.table, config.limits, () => T0_MS);
    const ordering = new Ordering({ config, id: 0, privateKey: loadPrivateKey(replicaKeyPath(dir, 0)), restarted: false, slowOrderMs: 0, service, logger: silent, reply: () => undefined, refuse: () => undefined, links: none });
    const records = (): [string, number, number[]][] => (JSON.parse(JSON.parse(ordering.snapshot()).events as string) as { decided: [string, number, number[]][] }).decided;
    // Before the upgrade: a run of the older kind (evs/) placed seqs 1-3 on a.
    // A run as replicas before session 19 formed it: evs/CHANNEL/PROCESS, the records alone.
    const olderKind = (r: Req): Req => ({ ...r, client: r.client.replace(/^evr\//, 'evs/a/'), payload: r.payload.slice(r.payload.indexOf('/') + 1) });
    ordering.execute({ seq: 1, view: 0, requests: [olderKind(sectionRequests('a', range(1, 3))[0]!.req)] });
    // After it: the publisher resends 1-3 (not acknowledged before the stop) and goes on, three events a channel in turn.
    let seq = 2;
    ordering.execute({ seq: seq++, view: 0, requests: sectionRequests('a', range(1, 3)).map((r) => r.req) });
    for (let first = 4; first <= 60; first += 3) ordering.execute({ seq: seq++, view: 0, requests: sectionRequests(channels[((first - 1) / 3) % 3]!, range(first, first + 2)).map((r) => r.req) });
    assert.equal(ordering.status().eventsDecidedTwice, 3, 'the resent 1-3 were placed before the upgrade');
    const placed = records().filter(([key]) => key.startsWith('evp/'));
    assert.deepEqual(placed.map(([, low, above]) => [low, above]), [[60, []]], 'one record for the process over three channels, all below its floor');
    assert.deepEqual(records().filter(([key]) => key.startsWith('ev/')).map(([, low, above]) => [low, above]), [[3, []]], 'the older record, as it was');
    // An older run attested before the stop, decided only now, repeats 10-12, which a run placed since.
    ordering.execute({ seq: seq++, view: 0, requests: [olderKind(sectionRequests('a', range(10, 12))[0]!.req)] });
    const s = ordering.status();
    assert.equal(s.eventsDecidedTwice, 6, 'the older run skips what the run placed');
    assert.equal(s.eventsOrdered, 60);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a faulty publisher that sends the same seqs on two channels sends two bodies of one request: one is decided, the other is not held or not placed', async () => {
  await withCluster({ ordered: ['orders', 'audit'] }, async (c) => {
    // Replica 0 gets seqs 1-3 on audit first; every replica gets them on orders.
    publishTo(c.replicas[0]!, range(1, 3), 'audit');
    for (const r of c.replicas) publishTo(r, range(1, 3));
    await settled(c.replicas);
    assert.deepEqual(publisherSeqs(agreedLog(c.replicas)), [1, 2, 3]);
    for (const r of c.replicas) {
      const s = r.ordering.status();
      assert.equal(r.service.sequencer.log('audit')!.high, 0, 'the other body was not placed');
      assert.equal(s.pending, 0, 'nothing of it waits');
      assert.equal(s.secondBodies, r === c.replicas[0] ? 1 : 0, 'one body per request held');
    }
  });
});

/** A cut of seqs 1..events into sections (the cut points), with the sections not sent (by index). */
const cutArb = (events: number) =>
  fc.record({
    cuts: fc.uniqueArray(fc.integer({ min: 2, max: events }), { maxLength: 8 }),
    dropped: fc.array(fc.integer({ min: 0, max: 4 }).map((x) => x === 0), { minLength: 9, maxLength: 9 }),
  });

/**
 * A faulty publisher's sections per replica: two cuts it shares out (so that both, overlapping,
 * can reach f+1 replicas), or a cut of a replica's own; each replica may miss some sections.
 */
const faultyArb = (events: number) =>
  fc.record({ shared: fc.tuple(cutArb(events), cutArb(events)), own: fc.array(cutArb(events), { minLength: N, maxLength: N }), assign: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: N, maxLength: N }) }).map((x) => x.assign.map((a, id) => (a === 2 ? x.own[id]! : { cuts: x.shared[a]!.cuts, dropped: x.own[id]!.dropped })));

test('property: however a faulty publisher cuts and withholds sections per replica, the logs agree and no event is placed twice', async (t) => {
  const events = 24;
  const byReplica = faultyArb(events);
  await assertAsyncProperty(
    t,
    import.meta.url,
    fc.asyncProperty(byReplica, async (perReplica) => {
      // Requests fewer than f+1 replicas got are let go after 64 decisions, and refused.
      await withCluster({ limits: { consensusAttestationSeqs: 64 } }, async (c) => {
        const all = range(1, events);
        const held = new Map<string, { body: string; replicas: Set<number>; seqs: number[] }[]>();
        const refused = new Map<string, string[]>();
        perReplica.forEach((p, id) => {
          const bounds = [1, ...[...p.cuts].sort((x, y) => x - y), events + 1];
          for (let i = 0; i + 1 < bounds.length; i++) {
            if (p.dropped[i]) continue;
            const section = all.slice(bounds[i]! - 1, bounds[i + 1]! - 1);
            const reqs = sectionRequests('orders', section);
            assert.equal(reqs.length, 1, 'test bug: a section this small is one request');
            const key = `${reqs[0]!.req.client}#${reqs[0]!.req.seq}`;
            const r = c.replicas[id]!;
            r.ordering.order('probe', [{ channel: 'orders', events: section }], (err) => {
              if (err) refused.set(key, [...(refused.get(key) ?? []), err.code]);
              r.acks++;
            });
            const versions = held.get(key) ?? [];
            let v = versions.find((x) => x.body === reqs[0]!.req.payload);
            if (!v) versions.push((v = { body: reqs[0]!.req.payload, replicas: new Set(), seqs: section.map((e) => e.seq) }));
            v.replicas.add(id);
            held.set(key, versions);
          }
        });
        // Settled, once nothing waits any more: requests that never become ready go only after
        // a resend period of nothing to propose, then 64 decisions.
        const until = Date.now() + 20_000;
        while (c.replicas.some((r) => r.ordering.status().requestsAwaited > 0) && Date.now() < until) await sleep(25);
        await settled(c.replicas);
        const placed = publisherSeqs(agreedLog(c.replicas, `: ${JSON.stringify(c.replicas.map((r) => publisherSeqs(logOf(r))))} ${JSON.stringify(perReplica)}`));
        assert.equal(new Set(placed).size, placed.length, `an event placed twice: ${placed.join(',')}`);
        // Liveness: a request f+1 replicas hold, with no other body under its (client, seq), is
        // decided; the others are decided or refused, never left waiting.
        for (const [key, versions] of held) {
          for (const code of refused.get(key) ?? []) assert.equal(code, 'FIT_ERR_ORDER_EXPIRED');
          if (versions.length !== 1 || versions[0]!.replicas.size < 2) continue;
          assert.equal(refused.get(key), undefined, `request ${key}, held by f+1 replicas, was refused`);
          for (const s of versions[0]!.seqs) assert.ok(placed.includes(s), `event ${s}, held by replicas ${[...versions[0]!.replicas].join(',')}, was not placed`);
        }
        for (const r of c.replicas) assert.equal(r.ordering.status().requestsAwaited, 0, 'a frame still waits for a request that will never be decided');
      });
    }),
    // A case runs four replicas for a second or so: shrinking one costs minutes, so the first failing case is reported as found.
    { numRuns: 12, endOnFailure: true },
  );
});
