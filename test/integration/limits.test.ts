// Per-client limits over real sockets (docs/limits.md, docs/security.md "Hardening"): one
// client over its limit gets a clear refusal or is slowed down, the replica stays up, and
// another client publishing at the same time is not affected. Every refusal and throttle is
// counted in `fitbroker status --json` under limits.clients.<id>.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { runCli, startCluster, sleep, type TestCluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/rawclient.js';
import { makeRecord, publishFrame } from '../helpers/records.js';
import { clientKeyPath } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { queryStatus, publisherStatusLine, type PublisherStatus } from '../../src/client/index.js';
import { MessageType, decodeAck, decodeJson } from '../../src/codec/index.js';

interface ClientLimits {
  connections: number;
  pendingFrames: number;
  connectionsRefused: number;
  throttles: number;
  throttledMs: number;
  pendingPauses: number;
  refused: Record<string, number>;
}

const LIMITS = { connectionsPerClientMax: 3, handshakesPerAddressMax: 8, clientEventsPerSecondMax: 2_000, clientEventsBurstMax: 500, clientRequestsPendingMax: 4 };

async function usage(c: TestCluster, replica: number, client: string): Promise<ClientLimits | undefined> {
  const all = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 5_000);
  const r = all[replica]!;
  assert.ok(r.reachable, `replica ${replica} did not answer status: ${r.error}`);
  return (r.status as { limits: { clients: Record<string, ClientLimits> } }).limits.clients[client];
}

async function open(c: TestCluster, replica: number, client: string): Promise<{ raw: RawClient; welcome?: Record<string, unknown>; refusal?: Record<string, unknown> }> {
  const info = c.config.replicas[replica]!;
  const raw = await RawClient.open(info);
  const r = await raw.authenticate(info, client, loadPrivateKey(clientKeyPath(c.dir, client)));
  return { raw, ...r };
}

/** Publishes `count` events as `client` on `channel` and resolves with the ms it took until all were acknowledged. */
async function publishTimed(c: TestCluster, client: string, channel: string, count: number, statuses: PublisherStatus[] = []): Promise<number> {
  const pub = c.publisher(client, { onStatus: (s) => statuses.push(s) });
  const t0 = Date.now();
  for (let i = 0; i < count; i++) if (!pub.publish(channel, `event ${i}`)) await pub.drained(30_000);
  await pub.flush(30_000);
  assert.equal(pub.counters.acknowledged, count);
  return Date.now() - t0;
}

describe('per-client limits: one client over its limit, another unaffected (docs/limits.md)', { timeout: 90_000 }, () => {
  let c: TestCluster;

  before(async () => {
    c = await startCluster({ channels: ['alerts'], ordered: ['ledger'], clients: [{ name: 'probe2', role: 'pubsub' }], limits: LIMITS, protection: 'si' }); // hand-built records, unsealed
  });
  after(async () => {
    await c?.stop();
  });

  it('refuses a connection past connectionsPerClientMax with FIT_ERR_TOO_MANY_CONNECTIONS naming the client, admits another client, and admits again after a close', async () => {
    const held = [];
    for (let i = 0; i < LIMITS.connectionsPerClientMax; i++) {
      const o = await open(c, 0, 'probe2');
      assert.ok(o.welcome, `connection ${i + 1} of ${LIMITS.connectionsPerClientMax} was refused: ${JSON.stringify(o.refusal)}`);
      held.push(o.raw);
    }
    const over = await open(c, 0, 'probe2');
    const err = over.refusal?.error as { code: string; message: string; fields: Record<string, unknown> } | undefined;
    assert.equal(err?.code, 'FIT_ERR_TOO_MANY_CONNECTIONS', `expected a refusal, got ${JSON.stringify(over)}`);
    assert.match(err.message, /"probe2"/);
    assert.match(err.message, /connectionsPerClientMax/);
    await over.raw.closed;

    const other = await open(c, 0, 'probe');
    assert.ok(other.welcome, 'another client was refused while probe2 was at its limit');
    other.raw.destroy();
    // probe2's open connections still work: a status request is answered.
    assert.equal((await held[0]!.request(1, 'status'))?.ok, true);

    held.pop()!.destroy();
    let again: Awaited<ReturnType<typeof open>> | undefined;
    for (let i = 0; i < 50 && !again?.welcome; i++) {
      again?.raw.destroy();
      await sleep(20);
      again = await open(c, 0, 'probe2');
    }
    assert.ok(again?.welcome, 'a connection freed by a close was not given back');
    const u = await usage(c, 0, 'probe2');
    assert.equal(u?.connectionsRefused, 1);
    assert.equal(u?.refused.FIT_ERR_TOO_MANY_CONNECTIONS, 1);
    assert.equal(u?.connections, LIMITS.connectionsPerClientMax);
    for (const r of [...held, again.raw]) r.destroy();
    assert.ok(c.alive(0));
  });

  it('closes a connection past handshakesPerAddressMax unauthenticated ones from its address, at once and counted; authenticating frees a place; other replicas are unaffected', async () => {
    const info = c.config.replicas[0]!;
    const pending: RawClient[] = [];
    try {
      for (let i = 0; i < LIMITS.handshakesPerAddressMax; i++) {
        const raw = await RawClient.open(info);
        pending.push(raw);
        // The first keeps its challenge to authenticate with below; the replica accepts in order.
        if (i > 0) assert.ok(await raw.next((b) => b[0] === MessageType.Challenge), `connection ${i + 1} got no challenge`);
      }
      const over = await RawClient.open(info);
      const refusal = await over.next((b) => b[0] === MessageType.Reply);
      const err = refusal && (decodeJson(refusal).error as { code: string; message: string; fields: Record<string, unknown> });
      assert.equal(err?.code, 'FIT_ERR_TOO_MANY_CONNECTIONS', `expected a refusal, got ${refusal?.toString('utf8', 1)}`);
      assert.equal(err.fields.address, '127.0.0.1');
      assert.match(err.message, /127\.0\.0\.1 already has 8 connections to replica 0 that have not authenticated, the most limits\.handshakesPerAddressMax allows/);
      await over.closed;

      const elsewhere = await open(c, 1, 'probe');
      assert.ok(elsewhere.welcome, 'replica 1 refused a client while replica 0 was flooded');
      elsewhere.raw.destroy();

      // One of the eight authenticates: it no longer counts, and a newcomer gets in.
      assert.ok((await pending[0]!.authenticate(info, 'probe', loadPrivateKey(clientKeyPath(c.dir, 'probe'))))?.welcome);
      const after = await open(c, 0, 'probe');
      assert.ok(after.welcome, `a connection was refused after a place was freed: ${JSON.stringify(after.refusal)}`);
      after.raw.destroy();

      const all = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 5_000);
      const limits = (all[0]!.status as { limits: { totals: { refused: Record<string, number> }; unauthenticated: Record<string, number> } }).limits;
      assert.ok((limits.totals.refused.FIT_ERR_TOO_MANY_CONNECTIONS ?? 0) >= 1, `refusal not counted: ${JSON.stringify(limits.totals)}`);
      assert.ok((limits.unauthenticated.FIT_ERR_TOO_MANY_CONNECTIONS ?? 0) >= 1, `refusal not counted as unauthenticated: ${JSON.stringify(limits.unauthenticated)}`);
      const human = runCli(['status', '--dir', c.dir]);
      assert.match(human.stdout, /refused before authentication \(FIT_ERR_TOO_MANY_CONNECTIONS \d+/, human.stdout);
    } finally {
      for (const raw of pending) raw.destroy();
    }
    assert.ok(c.alive(0));
  });

  it('throttles a client over clientEventsPerSecondMax (slower, nothing dropped, told why) while another client publishing at once is not slowed', async () => {
    const flood = 6_000;
    const floodStatuses: PublisherStatus[] = [];
    const quietStatuses: PublisherStatus[] = [];
    const flooding = publishTimed(c, 'probe2', 'alerts', flood, floodStatuses);
    await sleep(300);
    // 200 events: under the other client's own burst, so any delay would be the flood's doing.
    const quietMs = await publishTimed(c, 'probe', 'alerts', 200, quietStatuses);
    const floodMs = await flooding;
    // Each replica tells the flooding publisher why it is slowed, a few times at most (one per 5 s per connection).
    const notices = floodStatuses.flatMap((s) => (s.type === 'replicaNotice' ? [s] : []));
    const from = new Set(notices.map((s) => s.replica));
    assert.ok(from.size >= 3, `expected FIT_ERR_RATE_LIMITED notices from most replicas, got ${floodStatuses.map(publisherStatusLine).join(' | ') || 'none'}`);
    for (const s of notices) {
      assert.equal(s.notice.code, 'FIT_ERR_RATE_LIMITED');
      assert.equal(s.notice.fields.limit, LIMITS.clientEventsPerSecondMax);
      assert.match(publisherStatusLine(s), /FIT_ERR_RATE_LIMITED: replica \d is not reading from client "probe2" for \d+ ms: .*clientEventsPerSecondMax \(2000 events\/s.*Nothing is dropped/);
    }
    assert.ok(notices.length <= 4 * Math.ceil(floodMs / 5_000 + 1), `${notices.length} notices in ${floodMs} ms: not held to one per 5 s per connection`);
    assert.deepEqual(quietStatuses, [], 'the other client was told it was held back');
    // (6,000 - 500 burst) / 2,000 per second: at least 2.75 s; without the limit it takes well under one.
    assert.ok(floodMs >= 2_000, `the flood of ${flood} events took ${floodMs} ms; the limit of ${LIMITS.clientEventsPerSecondMax}/s did not hold it back`);
    assert.ok(quietMs < 2_500, `the other client took ${quietMs} ms for 200 events while probe2 was throttled`);
    const u = await usage(c, 0, 'probe2');
    assert.ok((u?.throttles ?? 0) > 0 && (u?.throttledMs ?? 0) > 0, `throttles not counted: ${JSON.stringify(u)}`);
    assert.equal((await usage(c, 0, 'probe'))?.throttles ?? 0, 0, 'the other client was throttled');
    assert.ok(c.alive(0));
  });

  it('stops reading a client past clientRequestsPendingMax ordered frames waiting, then acknowledges every one, while another client is ordered as usual', async () => {
    const frames = 40;
    const epoch = randomBytes(8);
    const raws = await Promise.all(c.config.replicas.map(async (r) => (await open(c, r.id, 'probe2')).raw));
    try {
      // One event per frame, all in one write: 40 frames pending at once, ten times the limit.
      const burst = Buffer.concat(Array.from({ length: frames }, (_, i) => publishFrame('ledger', [makeRecord({ publisher: 'probe2', epoch, seq: i + 1, timestampMs: Date.now() })], i + 1)));
      for (const raw of raws) raw.write(burst);
      const quietMs = await publishTimed(c, 'probe', 'ledger', 20);
      assert.ok(quietMs < 5_000, `the other client took ${quietMs} ms to have 20 events ordered`);
      const acked = new Set<number>();
      const notices: Record<string, unknown>[] = [];
      const until = Date.now() + 20_000;
      while (acked.size < frames && Date.now() < until) {
        const body = await raws[0]!.next((b) => b[0] === MessageType.Ack || b[0] === MessageType.Reply, 2_000);
        if (body?.[0] === MessageType.Ack) acked.add(decodeAck(body).reqSeq);
        else if (body && decodeJson(body).kind === 'notice') notices.push(decodeJson(body));
        else if (body) assert.fail(`replica 0 refused a frame: ${body.toString('utf8', 1)}`);
      }
      assert.equal(acked.size, frames, `replica 0 acknowledged ${acked.size} of ${frames} frames`);
      // Told once (one per 5 s per connection), with the limit, and no request it answers. Its
      // bucket may still be in debt from the flood above: rate notices may come too.
      const pendingNotices = notices.filter((n) => (n.error as { code: string }).code !== 'FIT_ERR_RATE_LIMITED');
      assert.equal(pendingNotices.length, 1, `expected one FIT_ERR_TOO_MANY_PENDING notice, got ${JSON.stringify(notices)}`);
      const notice = pendingNotices[0] as { seq: number; ok: boolean; error: { code: string; message: string; fields: Record<string, unknown> } };
      assert.equal(notice.seq, 0);
      assert.equal(notice.error.code, 'FIT_ERR_TOO_MANY_PENDING');
      assert.equal(notice.error.fields.limit, LIMITS.clientRequestsPendingMax);
      assert.match(notice.error.message, /clientRequestsPendingMax \(4\).*nothing is dropped/);
      const u = await usage(c, 0, 'probe2');
      assert.ok((u?.pendingPauses ?? 0) > 0, `no pause counted: ${JSON.stringify(u)}`);
      assert.equal(u?.pendingFrames, 0, 'frames still counted as pending after their acknowledgements');
      assert.equal((await usage(c, 0, 'probe'))?.pendingPauses ?? 0, 0);
    } finally {
      for (const r of raws) r.destroy();
    }
    assert.ok(c.alive(0));
  });
});

describe('per-client share of the order: a publisher that sends to one replica alone (docs/consensus.md)', { timeout: 90_000 }, () => {
  const SHARE = { orderClientRequestsMax: 8, publishWindowOrderedEvents: 8 };
  let c: TestCluster;

  before(async () => {
    c = await startCluster({ channels: [], ordered: ['ledger'], clients: [{ name: 'probe2', role: 'pubsub' }], limits: SHARE, protection: 'si' }); // hand-built records, unsealed
  });
  after(async () => {
    await c?.stop();
  });

  const shareOf = async (replica: number, client: string): Promise<{ requests: number; queued: number; queuedTotal: number } | undefined> => {
    const all = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 5_000);
    return (all[replica]!.status as { consensus: { shares: Record<string, { requests: number; queued: number; queuedTotal: number }> } }).consensus.shares[client];
  };

  it('holds no more than orderClientRequestsMax of its requests in that replica\'s order, across reconnects, tells it why, and orders another client as usual', async () => {
    // Thirty one-event frames, each a request no other replica will attest.
    const epoch = randomBytes(8);
    const burst = Buffer.concat(Array.from({ length: 30 }, (_, i) => publishFrame('ledger', [makeRecord({ publisher: 'probe2', epoch, seq: i + 1, timestampMs: Date.now() })], i + 1)));
    const first = (await open(c, 1, 'probe2')).raw;
    let notice: { error: { code: string; message: string; fields: Record<string, unknown> } } | undefined;
    try {
      first.write(burst);
      const body = await first.next((b) => b[0] === MessageType.Reply && decodeJson(b).kind === 'notice', 10_000);
      assert.ok(body, 'no notice that its requests wait for their share');
      notice = decodeJson(body) as typeof notice;
      assert.deepEqual(await shareOf(1, 'probe2'), { requests: 8, queued: 22, queuedTotal: 22 });
    } finally {
      first.destroy();
    }
    assert.equal(notice!.error.code, 'FIT_ERR_TOO_MANY_PENDING');
    assert.equal(notice!.error.fields.limit, SHARE.orderClientRequestsMax);
    assert.match(notice!.error.message, /orderClientRequestsMax \(8\).*nothing is dropped/);

    // Closed: what waited for the share is gone; what the protocol holds stays counted.
    for (const until = Date.now() + 5_000; Date.now() < until; await sleep(50)) if ((await shareOf(1, 'probe2'))?.queued === 0) break;
    assert.deepEqual(await shareOf(1, 'probe2'), { requests: 8, queued: 0, queuedTotal: 22 });
    // Reconnected, the same thirty again: no more of the order than before.
    const again = (await open(c, 1, 'probe2')).raw;
    try {
      again.write(burst);
      for (const until = Date.now() + 5_000; Date.now() < until; await sleep(50)) if ((await shareOf(1, 'probe2'))?.queued === 22) break;
      assert.deepEqual(await shareOf(1, 'probe2'), { requests: 8, queued: 22, queuedTotal: 44 });
      // Another client, through every replica, is ordered meanwhile.
      const pub = c.publisher('probe');
      for (let i = 0; i < 200; i++) if (!pub.publish('ledger', `correct ${i}`)) await pub.drained(30_000);
      await pub.flush(30_000);
      pub.close();
      assert.equal(pub.counters.acknowledged, 200);
      assert.equal((await shareOf(1, 'probe'))?.queued ?? 0, 0);
    } finally {
      again.destroy();
    }
    assert.ok(c.alive(1));
  });
});
