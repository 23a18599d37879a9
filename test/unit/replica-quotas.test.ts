// Per-client limits (src/replica/quotas.ts, docs/limits.md): the arithmetic without sockets or
// clocks. Each limit belongs to one client id and costs no other client anything.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientQuotas } from '../../src/replica/quotas.js';

const LIMITS = { connectionsPerClientMax: 2, handshakesPerAddressMax: 2, clientEventsPerSecondMax: 1_000, clientEventsBurstMax: 500, clientRequestsPendingMax: 4 };

function quotas(): { q: ClientQuotas; clock: { ms: number } } {
  const clock = { ms: 1_000_000 };
  return { q: new ClientQuotas(LIMITS, () => clock.ms), clock };
}

test('admits connectionsPerClientMax connections per client id, refuses one more and counts it, and admits again after a close', () => {
  const { q } = quotas();
  assert.ok(q.admit('a') && q.admit('a'));
  assert.equal(q.admit('a'), false);
  assert.ok(q.admit('b'), 'another client is not affected');
  q.release('a');
  assert.ok(q.admit('a'));
  assert.equal(q.status().clients.a!.connectionsRefused, 1);
  assert.equal(q.status().clients.a!.connections, 2);
  assert.equal(q.status().clients.b!.connectionsRefused, 0);
});

test('holds handshakesPerAddressMax unauthenticated connections per address, refuses one more (counted, no client id), and frees a place when one ends', () => {
  const { q } = quotas();
  assert.ok(q.handshakeStarted('10.0.0.1') && q.handshakeStarted('10.0.0.1'));
  assert.equal(q.handshakeStarted('10.0.0.1'), false);
  assert.ok(q.handshakeStarted('10.0.0.2'), 'another address is not affected');
  q.handshakeEnded('10.0.0.1');
  assert.ok(q.handshakeStarted('10.0.0.1'));
  assert.equal(q.status().totals.refused.FIT_ERR_TOO_MANY_CONNECTIONS, 1);
  assert.deepEqual(Object.keys(q.status().clients), [], 'no client id is trusted before authentication');
  // Ending more than started (a close after an authentication already ended it) never goes negative.
  for (let i = 0; i < 4; i++) q.handshakeEnded('10.0.0.2');
  assert.ok(q.handshakeStarted('10.0.0.2') && q.handshakeStarted('10.0.0.2'));
  assert.equal(q.handshakeStarted('10.0.0.2'), false);
});

test('a burst up to clientEventsBurstMax goes unthrottled; past it the pause is the time to repay the debt at the rate', () => {
  const { q, clock } = quotas();
  assert.equal(q.charge('a', 500), 0);
  assert.equal(q.charge('a', 100), 100, '100 events of debt at 1,000/s is 100 ms');
  assert.equal(q.charge('b', 500), 0, 'another client has its own bucket');
  clock.ms += 100;
  assert.equal(q.charge('a', 0 + 1), 1, 'the debt was repaid; one more event is 1 ms');
  clock.ms += 10_000;
  assert.equal(q.charge('a', 500), 0, 'refilled to the burst, not beyond');
  assert.ok(q.charge('a', 1) > 0);
  const s = q.status();
  assert.equal(s.clients.a!.throttles, 3, 'three spells in debt');
  assert.equal(s.clients.a!.throttledMs, 102);
  assert.equal(s.clients.b!.throttles, 0);
  assert.equal(s.totals.throttles, 3);
});

test('over a long run a client at twice its rate gets the rate: the pauses add up to half the time', () => {
  const { q, clock } = quotas();
  let pausedMs = 0;
  for (let i = 0; i < 1000; i++) {
    const ms = q.charge('a', 20); // 20 events every 10 ms: 2,000/s offered
    pausedMs += ms;
    clock.ms += 10 + ms;
  }
  const elapsedS = (clock.ms - 1_000_000) / 1000;
  const rate = 20_000 / elapsedS;
  assert.ok(rate > 950 && rate < 1_100, `got ${rate.toFixed(0)} events/s for a limit of 1,000/s`);
  assert.ok(pausedMs > 0);
  const u = q.status().clients.a!;
  assert.ok(Math.abs(u.throttledMs - pausedMs) <= 1000, `throttledMs ${u.throttledMs} should be the time held, ${pausedMs}`);
});

test('frames read while already in debt lengthen the throttle rather than count new ones', () => {
  const { q } = quotas();
  assert.equal(q.charge('a', 600), 100);
  assert.equal(q.charge('a', 100), 200);
  assert.equal(q.status().clients.a!.throttles, 1);
  assert.equal(q.status().clients.a!.throttledMs, 200);
});

test('pending request frames: over clientRequestsPendingMax asks for a hold, and half answered lets it go', () => {
  const { q } = quotas();
  for (let i = 0; i < 4; i++) assert.equal(q.pendingAdded('a'), false);
  assert.equal(q.pendingAdded('a'), true, 'the fifth is one too many');
  assert.equal(q.pendingAdded('a'), true, 'and the sixth, in the same spell');
  assert.equal(q.pendingAdded('b'), false, 'another client is not affected');
  assert.equal(q.pendingDone('a'), false, '5 left, over half of 4');
  assert.equal(q.pendingDone('a'), false);
  assert.equal(q.pendingDone('a'), false);
  assert.equal(q.pendingDone('a'), true, '2 left: back to half');
  assert.equal(q.status().clients.a!.pendingPauses, 1);
});

test('refusals are counted by code against an authenticated client, and in the totals only for a peer that never authenticated', () => {
  const { q } = quotas();
  q.admit('a');
  q.refused('a', 'FIT_ERR_NOT_AUTHORIZED');
  q.refused('a', 'FIT_ERR_NOT_AUTHORIZED');
  for (let i = 0; i < 100; i++) q.refused(undefined, 'FIT_ERR_UNKNOWN_CLIENT');
  const s = q.status();
  assert.deepEqual(s.clients.a!.refused, { FIT_ERR_NOT_AUTHORIZED: 2 });
  assert.deepEqual(Object.keys(s.clients), ['a'], 'an unauthenticated peer added no client entry');
  assert.deepEqual(s.totals.refused, { FIT_ERR_UNKNOWN_CLIENT: 100, FIT_ERR_NOT_AUTHORIZED: 2 });
});
