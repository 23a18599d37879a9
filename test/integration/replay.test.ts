// Replay (docs/security.md "Hardening"): an event or request replayed by a client is never
// delivered or executed twice. Over real sockets and processes:
//   (a) a client resends an old, acknowledged PUBLISH frame byte for byte on new connections:
//       every replica answers it as duplicates; and once the replicas' dedupe has forgotten
//       the publishing process (dedupeStreamsMax, here 4, newer processes on the channel) and
//       accepts it again, the subscriber's voter still delivers each event once;
//   (c) an admin's old signed control change replayed on a new connection is answered with
//       where it was decided, and not executed again: a later change stays in force.
// (b), a faulty replica re-pushing copies, is test/unit/replay.test.ts.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startCluster, sleep, type TestCluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/rawclient.js';
import { makeRecord, publishFrame } from '../helpers/records.js';
import { clientKeyPath } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { signControl, type Subscriber } from '../../src/client/index.js';
import { MessageType, decodeAck, decodeJson } from '../../src/codec/index.js';
import type { BrokerEvent } from '../../src/core/index.js';

const DEDUPE_STREAMS = 4;

async function connectAll(c: TestCluster, client: string): Promise<RawClient[]> {
  return Promise.all(
    c.config.replicas.map(async (r) => {
      const raw = await RawClient.open(r);
      const a = await raw.authenticate(r, client, loadPrivateKey(clientKeyPath(c.dir, client)));
      assert.ok(a?.welcome, `replica ${r.id} did not welcome ${client}: ${JSON.stringify(a?.refusal)}`);
      return raw;
    }),
  );
}

/** Sends `frame` to every replica on fresh connections; returns each replica's ACK (accepted, duplicates). */
async function sendEverywhere(c: TestCluster, client: string, frame: Buffer, reqSeq: number): Promise<{ accepted: number; duplicates: number }[]> {
  const raws = await connectAll(c, client);
  try {
    return await Promise.all(
      raws.map(async (raw, i) => {
        raw.write(frame);
        const body = await raw.next((b) => (b[0] === MessageType.Ack && decodeAck(b).reqSeq === reqSeq) || b[0] === MessageType.Reply, 5_000);
        assert.ok(body, `replica ${i} did not answer the PUBLISH`);
        assert.equal(body[0], MessageType.Ack, `replica ${i} refused: ${body.toString('utf8', 1)}`);
        return decodeAck(body);
      }),
    );
  } finally {
    for (const r of raws) r.destroy();
  }
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('replay: a client resending old frames or changes gets nothing delivered or executed twice', { timeout: 90_000 }, () => {
  let c: TestCluster;
  let sub: Subscriber;
  const got: BrokerEvent[] = [];

  before(async () => {
    c = await startCluster({ channels: ['alerts'], clients: [{ name: 'probe2', role: 'pubsub' }], limits: { dedupeStreamsMax: DEDUPE_STREAMS }, protection: 'si' }); // hand-built records, unsealed
    sub = c.subscriber('console', { channel: 'alerts', onEvent: (e) => got.push(e) });
    await sub.start();
  });
  after(async () => {
    await c?.stop();
  });

  it('(a) an acknowledged PUBLISH frame resent byte for byte on new connections is a duplicate at every replica, and delivered once', async () => {
    const epoch = randomBytes(8);
    const recs = [1, 2, 3].map((seq) => makeRecord({ publisher: 'probe2', epoch, seq, timestampMs: Date.now(), content: `original ${seq}` }));
    const frame = publishFrame('alerts', recs, 7);
    for (const a of await sendEverywhere(c, 'probe2', frame, 7)) assert.deepEqual(a, { reqSeq: 7, accepted: 3, duplicates: 0 });
    await until('the three events', () => got.length >= 3);

    for (const a of await sendEverywhere(c, 'probe2', frame, 7)) assert.deepEqual(a, { reqSeq: 7, accepted: 0, duplicates: 3 }, 'a replica accepted a replayed frame');

    // The replicas' window: dedupeStreamsMax newer publishing processes on the channel make
    // them forget this one, and the same frame is accepted again (docs/security.md).
    for (let k = 0; k < DEDUPE_STREAMS; k++) {
      const other = publishFrame('alerts', [makeRecord({ publisher: 'probe2', epoch: randomBytes(8), seq: 1, timestampMs: Date.now(), content: `other ${k}` })], 100 + k);
      await sendEverywhere(c, 'probe2', other, 100 + k);
    }
    await until('the other processes\' events', () => got.length >= 3 + DEDUPE_STREAMS);
    const turnedAway = (): number => sub.summaries()[0]!.stale + sub.summaries()[0]!.duplicateCopies;
    await sleep(300); // the other events' last copies
    const turnedAwayBefore = turnedAway();
    const again = await sendEverywhere(c, 'probe2', frame, 7);
    assert.ok(
      again.every((a) => a.accepted === 3),
      `expected the replicas to have forgotten the process and accept the frame again (the documented window); got ${JSON.stringify(again)}`,
    );
    // Every replica pushes the replayed copies again; the voter knows them as delivered.
    await until('the replayed copies to reach the voter and be turned away', () => turnedAway() >= turnedAwayBefore + 3 * 2);
    await sleep(300);
    const originals = got.filter((e) => String(e.content).startsWith('original'));
    assert.equal(originals.length, 3, `delivered ${originals.length} copies of 3 events: ${originals.map((e) => e.id).join(', ')}`);
    assert.equal(new Set(got.map((e) => `${e.publisher}/${e.id}`)).size, got.length, 'an event was delivered twice');
  });

  it('(c) an old signed control change replayed on a new connection is answered with its decision and not executed again', async () => {
    const admin = loadPrivateKey(clientKeyPath(c.dir, 'admin'));
    const grant = signControl('admin', admin, { op: 'grant', client: 'console', channel: 'alerts' });
    const revoke = signControl('admin', admin, { op: 'revoke', client: 'console', channel: 'alerts' }, grant.seq + 1);
    const ask = async (change: unknown, seq: number): Promise<Record<string, unknown>[]> => {
      const raws = await connectAll(c, 'admin');
      try {
        return await Promise.all(raws.map(async (raw) => (await raw.request(seq, 'control', { change }, 15_000)) ?? {}));
      } finally {
        for (const r of raws) r.destroy();
      }
    };
    const first = await ask(grant, 1);
    const decidedAt = first.find((r) => r.ok === true)?.decided;
    assert.ok(typeof decidedAt === 'number', `the grant was not decided: ${JSON.stringify(first)}`);
    const second = await ask(revoke, 2);
    assert.ok(second.filter((r) => r.ok === true).length >= 3, `the revoke was not decided: ${JSON.stringify(second)}`);

    const replayed = await ask(grant, 3);
    for (const r of replayed.filter((x) => x.ok === true)) assert.equal(r.decided, decidedAt, `a replica answered the replay as a new decision: ${JSON.stringify(r)}`);
    assert.ok(replayed.filter((r) => r.ok === true).length >= 3, `replicas did not answer the replay with the old decision: ${JSON.stringify(replayed)}`);

    // The revoke is still in force: console may not publish on alerts.
    const raws = await connectAll(c, 'console');
    try {
      const rec = makeRecord({ publisher: 'console', epoch: randomBytes(8), seq: 1, timestampMs: Date.now() });
      for (const raw of raws) raw.write(publishFrame('alerts', [rec], 9));
      const answers = await Promise.all(raws.map((raw) => raw.next((b) => b[0] === MessageType.Ack || b[0] === MessageType.Reply, 5_000)));
      answers.forEach((b, i) => {
        assert.ok(b && b[0] === MessageType.Reply, `replica ${i} accepted a publish the revoke forbids: the replayed grant was executed again`);
        assert.equal((decodeJson(b).error as { code: string }).code, 'FIT_ERR_NOT_AUTHORIZED');
      });
    } finally {
      for (const r of raws) r.destroy();
    }
  });
});
