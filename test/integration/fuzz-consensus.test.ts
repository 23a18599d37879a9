// The consensus wire decoder under fuzzing on a live replica (docs/security.md "Hardening"):
// test/integration/fuzz.test.ts reaches every parser a client can, but CONSENSUS frames are
// read only from a replica that proved its key. Here a link authenticated with replica 3's key
// (replica 3 turned Byzantine: f = 1 allows it) sends replica 0 seeded mutated CONSENSUS
// frames — bytes and values, signed by replica 3 half the time — while a correct publisher
// and subscriber run an ordered channel. Replica 0 must stay up, count what did not parse,
// and the subscriber must get every event once, in order.
//
// FUZZ_SEED=<seed> replays the same frames; FUZZ_CASES raises their number.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { startCluster, sleep, type TestCluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/rawclient.js';
import { caseInput } from '../helpers/fuzz.js';
import { targetNamed } from '../fuzz/targets.js';
import { clientKeyPath, replicaKeyPath } from '../../src/config/index.js';
import { authTranscript, loadPrivateKey, newNonce, signBytes } from '../../src/protection/index.js';
import { queryStatus, type Subscriber } from '../../src/client/index.js';
import { MessageType, decodeJson, encodeJson, frame } from '../../src/codec/index.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : randomInt(0, 2 ** 32);
const CASES = Number(process.env.FUZZ_CASES ?? 1_500);
const REPLAY = `FUZZ_SEED=${SEED} node scripts/run-tests.mjs fuzz-consensus`;

/** Opens a link to replica `to` as replica `as`, with that replica's key. */
async function peerLink(c: TestCluster, to: number, as: number): Promise<RawClient> {
  const info = c.config.replicas[to]!;
  const raw = await RawClient.open(info);
  const challengeBody = await raw.next((b) => b[0] === MessageType.Challenge);
  assert.ok(challengeBody, 'no CHALLENGE');
  const challenge = Buffer.from(String(decodeJson(challengeBody).nonce), 'base64');
  const nonce = newNonce();
  const signature = signBytes(loadPrivateKey(replicaKeyPath(c.dir, as)), authTranscript('peer', to, `replica-${as}`, challenge, nonce));
  raw.sendJson({ peer: as, nonce: nonce.toString('base64'), signature: signature.toString('base64') }, MessageType.Hello);
  assert.ok(await raw.next((b) => b[0] === MessageType.Welcome), `replica ${to} did not welcome a link from replica ${as}`);
  return raw;
}

/**
 * The CONSENSUS frames of case i: the consensus fuzz target's conversation, one frame per
 * message; `junk` when its bytes are not JSON (sent as one frame the replica cannot read).
 */
function frames(i: number): { junk: boolean; frames: Buffer[] } {
  const t = targetNamed('consensus');
  const { c } = caseInput(t, SEED, i);
  let list: unknown;
  try {
    list = JSON.parse(c.input.toString('utf8'));
  } catch {
    return { junk: true, frames: [frame(Buffer.concat([Buffer.from([MessageType.Consensus]), c.input]))] };
  }
  return { junk: false, frames: (Array.isArray(list) ? list : [list]).map((m) => encodeJson(MessageType.Consensus, m)) };
}

describe(`fuzz: mutated CONSENSUS frames from a Byzantine replica at a live one (seed ${SEED}, ${CASES} cases; replay: ${REPLAY})`, { timeout: 180_000 }, () => {
  let c: TestCluster;
  let sub: Subscriber;
  const seqs: number[] = [];

  before(async () => {
    c = await startCluster({ channels: [], ordered: ['orders'] });
    sub = c.subscriber('console', { channel: 'orders', onEvent: (ev) => seqs.push(ev.seq!) });
    await sub.start();
  });
  after(async () => {
    await c?.stop();
  });

  it('neither crash replica 0 nor disturb ordering: every event delivered once, in order', async (t) => {
    t.diagnostic(`seed ${SEED}; replay: ${REPLAY}`);
    const pub = c.publisher('probe');
    let stop = false;
    let published = 0;
    // Ordered traffic for as long as the fuzzing lasts, at least 300 events.
    const traffic = (async () => {
      while (!stop || published < 300) {
        for (let k = 0; k < 10; k++) if (!pub.publish('orders', `event ${published++}`)) await pub.drained(30_000);
        await sleep(10);
      }
      await pub.flush(60_000);
    })();
    let link = await peerLink(c, 0, 3);
    let reopened = 0;
    try {
      for (let i = 0; i < CASES; i++) {
        const k = frames(i);
        for (const f of k.frames) link.write(f);
        if (k.junk) {
          // A frame that is not JSON closes the link, as it would a faulty replica's; it dials again.
          await Promise.race([link.closed, sleep(5_000)]);
          assert.ok(link.isClosed, `replica 0 kept a link open after a frame it cannot read (case ${i}; ${REPLAY})`);
          link = await peerLink(c, 0, 3);
          reopened++;
        }
        if (i % 50 === 49) await sleep(5);
      }
    } finally {
      stop = true;
      link.destroy();
    }
    await traffic;
    assert.ok(c.alive(0), `replica 0 died (${REPLAY}):\n${c.log(0).split('\n').slice(-10).join('\n')}`);
    const until = Date.now() + 30_000;
    while (seqs.length < published && Date.now() < until) await sleep(50);
    assert.equal(seqs.length, published, `the subscriber got ${seqs.length} of ${published} events (${REPLAY})`);
    assert.deepEqual(seqs, Array.from({ length: published }, (_, i) => i + 1), `not every seq once, in order (${REPLAY})`);
    const all = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 5_000);
    const zero = all[0]!;
    assert.ok(zero.reachable, `replica 0 does not answer status (${REPLAY})`);
    const malformed = (zero.status as { consensus: { malformed: number } }).consensus.malformed;
    t.diagnostic(`${published} ordered events; replica 0 counted ${malformed} malformed consensus messages; the link was reopened ${reopened} times`);
    assert.ok(malformed > CASES / 10, `only ${malformed} fuzzed messages were refused by the decoder: the cases did not reach it`);
    pub.close();
  });
});
