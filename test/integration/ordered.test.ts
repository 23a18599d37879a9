// Ordered channels (issue 5): 4 replica processes order events through consensus; every
// correct subscriber delivers the same events in the same order, each with its seq, no gap and
// no duplicate — while the leader is killed with SIGKILL, restarted (it catches up and serves
// again), and the next leader is killed too.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FitError, PUBLISH_WINDOW_ORDERED_EVENTS_MAX, type BrokerEvent } from '../../src/core/index.js';
import { RawClient, publishFrame } from '../helpers/rawclient.js';
import { clientKeyPath, type ClientRole } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { queryStatus, type Subscriber } from '../../src/client/index.js';
import { publishStream, runCli, sleep, startCluster, type TestCluster } from '../helpers/cluster.js';

const clients: { name: string; role: ClientRole }[] = [
  ...['pub1', 'pub2', 'pub3'].map((name) => ({ name, role: 'pub' as const })),
  ...['siem1', 'siem2'].map((name) => ({ name, role: 'sub' as const })),
];

async function leaderOf(c: TestCluster): Promise<number> {
  const all = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 3_000);
  // The leader most replicas follow: a replica that just restarted may not know the view yet.
  const votes = new Map<number, number>();
  for (const r of all) if (r.reachable) {
    const v = (r.status as { consensus: { leader: number } }).consensus;
    votes.set(v.leader, (votes.get(v.leader) ?? 0) + 1);
  }
  return [...votes].sort((a, b) => b[1] - a[1])[0]![0];
}

interface Delivery {
  seqs: number[];
  contents: string[];
  lastAt?: number;
  /** The longest time between two deliveries: what the leader changes cost this console. */
  longestPauseMs: number;
}

function collect(c: TestCluster, siem: string, channel: string, into: Delivery): Subscriber {
  return c.subscriber(siem, {
    channel,
    onEvent: (ev: BrokerEvent) => {
      const now = Date.now();
      if (into.lastAt !== undefined) into.longestPauseMs = Math.max(into.longestPauseMs, now - into.lastAt);
      into.lastAt = now;
      into.seqs.push(ev.seq!);
      into.contents.push(ev.content.toString('utf8'));
    },
  });
}

describe('ordered channel: 4 replicas, 3 publishers, 2 subscribers, the leader killed twice', { timeout: 300_000 }, () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster({ channels: [], clients, ordered: ['orders'] });
  });
  after(() => c.stop());

  it('both subscribers deliver the same 20,000 events in the same order, each acknowledged event once, while leaders die', async () => {
    const EVENTS = 20_000;
    const got: Record<string, Delivery> = { siem1: { seqs: [], contents: [], longestPauseMs: 0 }, siem2: { seqs: [], contents: [], longestPauseMs: 0 } };
    const subs = [collect(c, 'siem1', 'orders', got.siem1!), collect(c, 'siem2', 'orders', got.siem2!)];
    await Promise.all(subs.map((s) => s.start()));
    const pubs = ['pub1', 'pub2', 'pub3'].map((p) => c.publisher(p));
    const killed: number[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const pub = pubs[i % 3]!;
      if (!pub.publish('orders', `e${i}`)) await pub.drained();
      if (i === 6_000 || i === 14_000) {
        const leader = await leaderOf(c);
        const t0 = Date.now();
        await c.kill(leader);
        killed.push(leader);
        // Wait for the leader change itself, or the next kill would find the old view still
        // reported.
        while ((await leaderOf(c)) === leader && Date.now() - t0 < 30_000) await sleep(50);
        process.stderr.write(`    killed leader ${leader} at event ${i}; the others followed a new leader ${Date.now() - t0} ms later\n`);
      }
      if (i === 10_000) await c.start(killed[0]!);
    }
    await Promise.all(pubs.map((p) => p.flush(60_000)));
    const until = Date.now() + 60_000;
    while ((got.siem1!.seqs.length < EVENTS || got.siem2!.seqs.length < EVENTS) && Date.now() < until) await sleep(100);
    process.stderr.write(`    longest pause between two deliveries: ${got.siem1!.longestPauseMs} ms (siem1), ${got.siem2!.longestPauseMs} ms (siem2)\n`);
    for (const [siem, d] of Object.entries(got)) {
      assert.equal(d.seqs.length, EVENTS, `${siem} delivered ${d.seqs.length} of ${EVENTS}`);
      assert.deepEqual(d.seqs.slice(0, 3), [1, 2, 3], `${siem} starts at seq 1`);
      assert.ok(d.seqs.every((s, i) => s === i + 1), `${siem}: a gap or a repeat in the seqs`);
      assert.equal(new Set(d.contents).size, EVENTS, `${siem} delivered an event twice`);
    }
    assert.deepEqual(got.siem1!.contents, got.siem2!.contents, 'the two subscribers saw different orders');
    assert.deepEqual([...got.siem1!.contents].sort(), Array.from({ length: EVENTS }, (_, i) => `e${i}`).sort(), 'exactly the published events');
    // The restarted replica caught up and its copies agree: no replica is blamed.
    for (const s of subs) for (const sum of s.summaries()) assert.deepEqual(Object.values(sum.mismatches), [0, 0, 0, 0]);
    const status = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 3_000);
    const back = status[killed[0]!]!;
    assert.ok(back.reachable, `the restarted replica ${killed[0]} answers (killed: ${killed.join(',')}): ${back.error}`);
    const log = (back.status as { channels: { tag: string; log: { high: number } }[] }).channels.find((ch) => ch.tag === 'orders')!.log;
    assert.equal(log.high, EVENTS, 'the restarted replica holds every event, numbered as the others did');
    const views = status.filter((r) => r.reachable).map((r) => (r.status as { consensus: { view: number } }).consensus.view);
    assert.ok(views.every((v) => v === views[0] && v >= 2), `views ${views.join('/')}: two leader changes, and the restarted replica in the same view`);
    // Each leader change is in the log of a replica that lived through it, with the new leader.
    const survivor = [0, 1, 2, 3].find((id) => !killed.includes(id))!;
    const changes = c.log(survivor).split('\n').filter((l) => l.includes('leader changed: replica'));
    assert.ok(changes.length >= 2, `replica ${survivor} logged ${changes.length} leader changes, not 2:\n${changes.join('\n')}`);
  });

  it('a revoke during a publish stream: the replicas refuse the publisher from then on, and every replica orders the same events', async () => {
    // Needs every replica: restart the one the first test left dead.
    for (let id = 0; id < 4; id++) if (!c.alive(id)) await c.start(id);
    const stream = publishStream(c.publisher('pub3'), 'orders', 1);
    // Until a hundred went out, however loaded the machine (a fixed wait flaked under load).
    for (const until = Date.now() + 20_000; stream.sent() <= 100 && Date.now() < until; ) await sleep(50);
    const r = runCli(['acl', 'revoke', 'pub3', 'orders', '--dir', c.dir, '--timeout', '30']);
    assert.equal(r.code, 0, r.stderr);
    // The refusal comes for the first batch ordered after the revoke: behind the events the
    // stream had queued, however long the order takes on a loaded machine.
    for (const until = Date.now() + 30_000; stream.refused() === undefined && Date.now() < until; ) await sleep(100);
    stream.stop();
    assert.match(String((stream.refused() as Error | undefined)?.message), /may not publish on channel "orders"/);
    let logs: { high: number }[] = [];
    for (let i = 0; i < 100; i++) {
      const all = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 3_000);
      logs = all.map((x) => {
        const ch = (x.status as { channels: { tag: string; log: { high: number } }[] } | undefined)?.channels.find((y) => y.tag === 'orders');
        return { high: ch?.log.high ?? -1 };
      });
      if (logs.every((l) => l.high === logs[0]!.high)) break;
      await sleep(200);
    }
    assert.ok(stream.sent() > 100, `only ${stream.sent()} events went out before the revoke`);
    assert.ok(logs.every((l) => l.high === logs[0]!.high && l.high > 20_000), `replicas disagree: ${JSON.stringify(logs)}`);
  });

  it('subscribe --from resumes at a retained seq, and prints each event with its seq', () => {
    const r = runCli(['subscribe', '--dir', c.dir, '--as', 'siem1', '--channel', 'orders', '--from', '19998', '--count', '3', '--timeout', '20']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number });
    assert.deepEqual(
      lines.map((l) => l.seq),
      [19998, 19999, 20000],
    );
  });
});

describe('ordered channel: subscribe --from older than the replicas still hold', { timeout: 120_000 }, () => {
  it('starts at the oldest held at once, and says how many seqs it skipped', async () => {
    const c = await startCluster({ channels: [], clients, ordered: ['orders'], capacityEvents: 100 });
    try {
      const pub = c.publisher('pub1');
      for (let i = 0; i < 300; i++) pub.publish('orders', `o${i}`);
      await pub.flush(30_000);
      // Wait until every replica ordered all 300 (and so dropped the oldest 200).
      for (let i = 0; i < 100; i++) {
        const all = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 3_000);
        const highs = all.map((x) => (x.status as { channels: { log: { high: number } }[] } | undefined)?.channels[0]?.log.high ?? 0);
        if (highs.every((h) => h === 300)) break;
        await sleep(100);
      }
      // --timeout 30 is below voterPendingMs (60 s): waiting for the hole instead would fail it.
      const r = runCli(['subscribe', '--dir', c.dir, '--as', 'siem1', '--channel', 'orders', '--from', '1', '--count', '100', '--timeout', '30']);
      assert.equal(r.code, 0, r.stderr);
      const seqs = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
      assert.deepEqual([seqs[0], seqs.at(-1), seqs.length], [201, 300, 100]);
      assert.match(r.stderr, /200 seqs skipped \(the replicas no longer held them/);
    } finally {
      await c.stop();
    }
  });
});

describe('ordered channel: a publisher waiting on the order', { timeout: 60_000 }, () => {
  it('a wait for room that times out says the order may be why', async () => {
    // A window of one batch: full from the first frame until the order acknowledges it.
    const c = await startCluster({ channels: [], clients, ordered: ['orders'], limits: { publishWindowBatches: 1 } });
    try {
      const pub = c.publisher('pub1');
      for (const until = Date.now() + 10_000; pub.readyReplicas < 4 && Date.now() < until; ) await sleep(20);
      let shortWait: unknown;
      for (let i = 0; i < 200 && shortWait === undefined; i++) {
        if (pub.publish('orders', `e${i}`)) await new Promise((r) => setImmediate(r));
        if (!pub.publish('orders', `f${i}`)) shortWait = await pub.drained(1).then(() => undefined, (e: unknown) => e);
      }
      assert.ok(shortWait instanceof Error, 'no wait for room took more than 1 ms in 200 tries');
      assert.match(shortWait.message, /not acknowledged by 3 replicas within 1 ms; .*connected but not reading: on an ordered channel the events ahead of these in the order may take longer than that/);
      await pub.flush(30_000);
    } finally {
      await c.stop();
    }
  });

  it('publish() says wait once publishWindowOrderedEvents events of ordered channels are unacknowledged, and unordered events do not count', async () => {
    const WINDOW = 100;
    const c = await startCluster({ channels: ['alerts'], clients, ordered: ['orders'], limits: { publishWindowOrderedEvents: WINDOW } });
    try {
      const pub = c.publisher('pub1');
      for (const until = Date.now() + 10_000; pub.readyReplicas < 4 && Date.now() < until; ) await sleep(20);
      // One synchronous turn: nothing can be acknowledged meanwhile.
      const unordered = Array.from({ length: 3 * WINDOW }, (_, i) => pub.publish('alerts', `a${i}`));
      assert.ok(unordered.every(Boolean), 'an unordered event counted against the ordered window');
      const ordered = Array.from({ length: WINDOW }, (_, i) => pub.publish('orders', `o${i}`));
      assert.equal(ordered.indexOf(false), WINDOW - 1, `room until the ${WINDOW}th ordered event: ${ordered.indexOf(false)}`);
      await pub.drained(30_000);
      assert.ok(pub.publish('alerts', 'after'), 'no room once the order acknowledged them');
      await pub.flush(30_000);
      assert.equal(pub.counters.acknowledged, 4 * WINDOW + 1);
    } finally {
      await c.stop();
    }
  });

  it('a caller that ignores publish() saying wait still has at most publishWindowOrderedEvents ordered events in flight, and every event is delivered', async () => {
    const WINDOW = 100;
    const c = await startCluster({ channels: [], clients, ordered: ['orders'], limits: { publishWindowOrderedEvents: WINDOW, batchEventsMax: 40 } });
    try {
      const got: Delivery = { seqs: [], contents: [], longestPauseMs: 0 };
      const sub = collect(c, 'siem1', 'orders', got);
      await sub.start();
      const pub = c.publisher('pub1');
      for (const until = Date.now() + 10_000; pub.readyReplicas < 4 && Date.now() < until; ) await sleep(20);
      let most = 0;
      const sample = setInterval(() => (most = Math.max(most, pub.orderedInFlight)), 1);
      const EVENTS = 1_000;
      for (let i = 0; i < EVENTS; i++) pub.publish('orders', `o${i}`);
      most = Math.max(most, pub.orderedInFlight);
      await pub.flush(60_000);
      clearInterval(sample);
      assert.ok(most > 0 && most <= WINDOW, `ordered events in flight peaked at ${most}, window ${WINDOW}`);
      for (const until = Date.now() + 30_000; got.seqs.length < EVENTS && Date.now() < until; ) await sleep(50);
      assert.equal(got.seqs.length, EVENTS);
      await sub.close();
    } finally {
      await c.stop();
    }
  });

  it('a publisher that closes while its events cannot be ordered (two replicas down) leaves nothing waiting for them at the others', async () => {
    const c = await startCluster({ channels: [], clients, ordered: ['orders'] });
    try {
      const pub = c.publisher('pub1');
      for (const until = Date.now() + 10_000; pub.readyReplicas < 4 && Date.now() < until; ) await sleep(20);
      // f+1 down: the two left hold the events but cannot order them (2f+1 must vote).
      await c.kill(2);
      await c.kill(3);
      for (let i = 0; i < 5; i++) pub.publish('orders', `stuck${i}`);
      const awaited = async (): Promise<number[]> => {
        const all = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 3_000);
        return all.filter((r) => r.reachable).map((r) => (r.status as { consensus: { requestsAwaited: number } }).consensus.requestsAwaited);
      };
      let waiting: number[] = [];
      for (const until = Date.now() + 10_000; Date.now() < until; await sleep(100)) if ((waiting = await awaited()).length === 2 && waiting.every((n) => n > 0)) break;
      assert.ok(waiting.length === 2 && waiting.every((n) => n > 0), `the two replicas left are not waiting for the events: ${JSON.stringify(waiting)}`);
      pub.close();
      for (const until = Date.now() + 10_000; Date.now() < until; await sleep(100)) if ((waiting = await awaited()).every((n) => n === 0)) break;
      assert.deepEqual(waiting, [0, 0], "a closed connection's frames still wait for the order");
    } finally {
      await c.stop();
    }
  });
});

describe('ordered channel: a frame that reached too few replicas', { timeout: 120_000 }, () => {
  it('is refused with FIT_ERR_ORDER_EXPIRED once consensusAttestationSeqs decisions passed (empty batches while nothing else is ordered), and the publishers that reach every replica are ordered as before', async () => {
    // Records built by hand (si: unsealed); W as low as the config allows for this pendingMax.
    const c = await startCluster({ channels: [], clients, ordered: ['orders'], protection: 'si', limits: { consensusPendingMax: 1024, consensusAttestationSeqs: 140 } });
    try {
      const status = async (): Promise<{ expired: number; emptyBatches: number; requestsAwaited: number; eventsOrdered: number }[]> =>
        (await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 3_000)).map((r) => (r.status as { consensus: { expired: number; emptyBatches: number; requestsAwaited: number; eventsOrdered: number } }).consensus);
      // A faulty publisher: its frame to replica 1 alone (no other replica will ever attest it).
      const info = c.config.replicas[1]!;
      const raw = await RawClient.open(info);
      try {
        assert.ok((await raw.authenticate(info, 'pub1', loadPrivateKey(clientKeyPath(c.dir, 'pub1'))))?.welcome);
        raw.write(publishFrame('orders', ['pub1', 'pub1'], 7));
        const reply = await raw.reply(7, 60_000);
        assert.ok(reply, 'the frame was never answered');
        assert.equal(reply.ok, false);
        const err = FitError.fromJSON(reply.error);
        assert.equal(err.code, 'FIT_ERR_ORDER_EXPIRED', err.message);
        assert.match(err.message, /publish it again/);
      } finally {
        raw.destroy();
      }
      const after = await status();
      assert.deepEqual(after.map((s) => [s.expired, s.requestsAwaited, s.eventsOrdered]), [[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]]);
      assert.ok(after[0]!.emptyBatches >= 140 / 4, `the leader proposed ${after[0]!.emptyBatches} empty batches`);
      // A correct publisher is ordered as before, and nothing else expires.
      const pub = c.publisher('pub2');
      for (let i = 0; i < 200; i++) pub.publish('orders', `correct ${i}`);
      await pub.flush(30_000);
      pub.close();
      for (const until = Date.now() + 10_000; Date.now() < until; await sleep(100)) if ((await status()).every((s) => s.eventsOrdered === 200)) break;
      assert.deepEqual((await status()).map((s) => [s.expired, s.eventsOrdered]), [[0, 200], [1, 200], [0, 200], [0, 200]]);
    } finally {
      await c.stop();
    }
  });
});

describe('ordered channel: publishers faster than the order', { timeout: 120_000 }, () => {
  it('past consensusPendingMax and orderBacklogEventsMax, holds the publishers back (waiting for room, then by TCP), and fails none of them', async () => {
    // The publishers' own window of ordered events is as large as it goes (each sends 2,000, so
    // it never binds): what is tested is the replicas' bound on a publisher that does not keep one.
    const c = await startCluster({ channels: [], clients, ordered: ['orders'], limits: { consensusPendingMax: 4, orderBacklogEventsMax: 500, publishWindowOrderedEvents: PUBLISH_WINDOW_ORDERED_EVENTS_MAX } });
    try {
      const got: Delivery = { seqs: [], contents: [], longestPauseMs: 0 };
      const sub = collect(c, 'siem1', 'orders', got);
      await sub.start();
      const EVENTS = 6_000;
      const pubs = ['pub1', 'pub2', 'pub3'].map((p) => c.publisher(p));
      for (let i = 0; i < EVENTS; i++) {
        const pub = pubs[i % 3]!;
        if (!pub.publish('orders', `e${i}`)) await pub.drained();
      }
      await Promise.all(pubs.map((p) => p.flush(60_000)));
      const until = Date.now() + 30_000;
      while (got.seqs.length < EVENTS && Date.now() < until) await sleep(100);
      assert.equal(got.seqs.length, EVENTS, `siem1 delivered ${got.seqs.length} of ${EVENTS}`);
      assert.ok(got.seqs.every((s, i) => s === i + 1), 'a gap or a repeat in the seqs');
      assert.equal(new Set(got.contents).size, EVENTS, 'an event delivered twice');
      // A replica behind the others may still be executing what the subscriber already has.
      type Held = { eventsDeferredTotal: number; eventsDeferred: number; pausesForOrder: number; pausedConnections: number };
      let deferred: Held[] = [];
      for (let i = 0; i < 100; i++) {
        const status = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 3_000);
        deferred = status.map((r) => (r.status as { consensus: Held }).consensus);
        if (deferred.every((d) => d.eventsDeferred === 0 && d.pausedConnections === 0)) break;
        await sleep(200);
      }
      assert.ok(deferred.some((d) => d.eventsDeferredTotal > 0), `no replica ever had to defer an event: the test did not fill consensusPendingMax (${JSON.stringify(deferred)})`);
      assert.ok(deferred.every((d) => d.eventsDeferred === 0), 'events still waiting for room at the end');
      assert.ok(deferred.some((d) => d.pausesForOrder > 0), `no replica ever stopped reading a publisher: the test did not reach orderBacklogEventsMax (${JSON.stringify(deferred)})`);
      assert.ok(deferred.every((d) => d.pausedConnections === 0), 'a connection still not read from at the end');
    } finally {
      await c.stop();
    }
  });
});
