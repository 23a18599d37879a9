// Each client's share of the order (src/replica/order-shares.ts, limits.orderClientRequestsMax):
// the bookkeeping alone, then four replicas' Orderings over an in-memory network. A correct
// publisher over its share has its further requests wait, unsubmitted, and all of them ordered
// in the end; a faulty one that sends requests to one replica alone holds no more of that
// replica's order than its share, however often it reconnects and resends, and what it holds
// there is let go as its requests expire.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OrderShares } from '../../src/replica/order-shares.js';
import type { Req } from '../../src/consensus/index.js';
import { isFitError, type FitError } from '../../src/core/index.js';
import { EPOCH_B, orderedEvent } from '../helpers/records.js';
import { agreedLog, withCluster, publishTo, publisherSeqs, range, settled, sleep } from '../helpers/orderings.js';

const req = (seq: number): Req => ({ client: 'ev/x', seq, payload: String(seq) });

test('a share counts a client\'s requests up to its max, queues the rest in order, and moves them in as counted ones leave', () => {
  const s = new OrderShares(2);
  assert.deepEqual([1, 2, 3, 4].map((k) => s.take('a', `k${k}`, req(k))), [true, true, false, false]);
  // Another client's share is its own.
  assert.equal(s.take('b', 'k5', req(5)), true);
  assert.deepEqual([s.state('k1'), s.state('k3'), s.state('k9')], ['counted', 'queued', undefined]);
  assert.deepEqual(s.status(), { a: { requests: 2, queued: 2, queuedTotal: 2 }, b: { requests: 1, queued: 0, queuedTotal: 0 } });
  assert.equal(s.queued, 2);

  // Its connection closed: a counted request stays counted (the protocol still holds it).
  s.drop('k1');
  assert.equal(s.state('k1'), 'counted');
  // Decided: the oldest queued one goes in.
  assert.deepEqual(s.release('k1'), [req(3)]);
  assert.deepEqual([s.state('k1'), s.state('k3')], [undefined, 'counted']);
  // A queued one whose connection closed leaves the queue, and moves nothing.
  s.drop('k4');
  assert.deepEqual([s.state('k4'), s.queuedOf('a')], [undefined, 0]);
  assert.deepEqual(s.release('k2'), []);
  assert.deepEqual(s.status().a, { requests: 1, queued: 0, queuedTotal: 2 });
  // Room again: a new request is counted at once; a released key twice is nothing.
  assert.equal(s.take('a', 'k6', req(6)), true);
  assert.deepEqual(s.release('k2'), []);
  assert.deepEqual(s.countedKeys().sort(), ['k3', 'k5', 'k6']);
});

test('a queue keeps its order: what waits goes in oldest first, never past what waited before it', () => {
  const s = new OrderShares(1);
  s.take('a', 'k1', req(1));
  for (const k of [2, 3, 4]) assert.equal(s.take('a', `k${k}`, req(k)), false);
  assert.deepEqual(s.release('k1'), [req(2)]);
  assert.deepEqual(s.release('k2'), [req(3)]);
  assert.deepEqual(s.release('k3'), [req(4)]);
  assert.deepEqual(s.release('k4'), []);
  assert.deepEqual(s.status().a, { requests: 0, queued: 0, queuedTotal: 3 });
});

test('a correct publisher over its share: its further requests wait unsubmitted, and every one is ordered as the first are decided', async () => {
  await withCluster({ limits: { orderClientRequestsMax: 2 } }, async (c) => {
    const frames = [0, 1, 2, 3, 4, 5].map((i) => range(5 * i + 1, 5 * i + 5));
    for (const events of frames) for (const r of c.replicas) publishTo(r, events, 'orders', 'pub');
    for (const r of c.replicas) {
      const s = r.ordering.status();
      assert.deepEqual(s.shares.pub, { requests: 2, queued: 4, queuedTotal: 4 });
      assert.ok(s.pending <= 2, `replica holds ${s.pending} of the publisher's requests, over its share of 2`);
    }
    await settled(c.replicas);
    assert.deepEqual([...publisherSeqs(agreedLog(c.replicas))].sort((x, y) => x - y), range(1, 30).map((e) => e.seq));
    for (const r of c.replicas) {
      assert.equal(r.acks, 6);
      assert.deepEqual(r.ordering.status().shares.pub, { requests: 0, queued: 0, queuedTotal: 4 });
    }
  });
});

test('a faulty publisher sending to one replica alone holds no more than its share there, across reconnects, and lets it go as its requests expire', async () => {
  await withCluster({ limits: { orderClientRequestsMax: 2, consensusAttestationSeqs: 24 } }, async (c) => {
    const r1 = c.replicas[1]!;
    const frames = [0, 1, 2, 3].map((i) => range(5 * i + 1, 5 * i + 5));
    const send = () => frames.map((events) => r1.ordering.order('mallory', [{ channel: 'orders', events }], () => assert.fail('answered on a closed connection')));
    // Its connection closes: the queued requests leave; the counted ones stay with the protocol.
    const first = send();
    assert.deepEqual(r1.ordering.status().shares.mallory, { requests: 2, queued: 2, queuedTotal: 2 });
    for (const cancel of first) cancel();
    assert.deepEqual(r1.ordering.status().shares.mallory, { requests: 2, queued: 0, queuedTotal: 2 });
    // It reconnects and sends them all again: no more of the order than before.
    const answers: (FitError | undefined)[] = [];
    for (const events of frames) r1.ordering.order('mallory', [{ channel: 'orders', events }], (err) => answers.push(err));
    const s = r1.ordering.status();
    assert.deepEqual(s.shares.mallory, { requests: 2, queued: 2, queuedTotal: 4 });
    assert.equal(s.pending, 2);

    // A correct publisher beside it is ordered at every replica.
    const honest = [1, 2, 3].map((seq) => orderedEvent(seq, { epoch: EPOCH_B }));
    for (const r of c.replicas) publishTo(r, honest, 'orders', 'pub');
    await settled(c.replicas);
    assert.deepEqual(publisherSeqs(agreedLog(c.replicas)), [1, 2, 3]);

    // Each of its requests reaches no other replica: let go, two at a time, each refused.
    const until = Date.now() + 30_000;
    while (answers.length < frames.length && Date.now() < until) await sleep(25);
    assert.equal(answers.length, frames.length, `${answers.length} of ${frames.length} frames answered`);
    for (const err of answers) assert.ok(err && isFitError(err) && err.code === 'FIT_ERR_ORDER_EXPIRED', `answered ${err?.code}`);
    const end = r1.ordering.status();
    assert.deepEqual(end.shares.mallory, { requests: 0, queued: 0, queuedTotal: 4 });
    assert.deepEqual([end.expired, end.pending, end.requestsAwaited], [4, 0, 0]);
    assert.ok(c.replicas.every((r) => r.acks === 1));
  });
});

test('a request waiting for room is resent over and over (reconnects): it waits once, and what is let go is never taken again', async () => {
  // pendingMax 1: the first lonely request fills replica 1's pending, the next two wait for room.
  await withCluster({ limits: { orderClientRequestsMax: 4, consensusPendingMax: 1, consensusAttestationSeqs: 24 } }, async (c) => {
    const r1 = c.replicas[1]!;
    const frames = [0, 1, 2].map((i) => range(5 * i + 1, 5 * i + 5));
    const answers: (FitError | undefined)[] = [];
    for (const events of frames) r1.ordering.order('mallory', [{ channel: 'orders', events }], (err) => answers.push(err));
    await sleep(50);
    const before = r1.ordering.status();
    assert.deepEqual([before.pending, before.eventsDeferred, before.shares.mallory?.requests], [1, 10, 3]);
    for (let i = 0; i < 5; i++) {
      const cancels = frames.map((events) => r1.ordering.order('mallory', [{ channel: 'orders', events }], () => undefined));
      for (const cancel of cancels) cancel();
    }
    await sleep(50);
    const after = r1.ordering.status();
    assert.deepEqual([after.pending, after.eventsDeferred, after.shares.mallory?.requests], [1, 10, 3], 'resends waited again beside the first');
    // Each is let go in turn, once: none is held again after its publisher was told.
    const until = Date.now() + 30_000;
    while (answers.length < frames.length && Date.now() < until) await sleep(25);
    await sleep(500);
    const end = r1.ordering.status();
    assert.deepEqual(answers.map((e) => e?.code), frames.map(() => 'FIT_ERR_ORDER_EXPIRED'));
    assert.deepEqual([end.expired, end.pending, end.eventsDeferred, end.shares.mallory?.requests], [3, 0, 0, 0]);
  });
});
