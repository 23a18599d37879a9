// The client side of DESIGN §3: a faulty replica may send a client anything, and the client
// must deliver what the correct replicas agree on, no more, no less, and stay up. Replica 3's
// connections go through a proxy that, after the handshake, damages what the replica sends the
// clients: it mutates frames (the fuzz mutators: flips, length edits, truncations, splices),
// replays older ones and drops some. Real replicas behind it, a real Publisher and Subscriber
// (an unordered and an ordered bft channel) and status queries in front of it.
//
// Every frame's fate depends only on (seed, connection number, frame number), so
// `FUZZ_SEED=<seed>` replays the same damage (the timing of a live cluster still differs).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { sleep, startCluster, type TestCluster } from '../helpers/cluster.js';
import { Rng, mutate } from '../helpers/fuzz.js';
import { clientKeyPath, type ClusterConfig } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { Publisher, Subscriber, queryStatus } from '../../src/client/index.js';
import { FrameDecoder, frame } from '../../src/codec/index.js';
import type { BrokerEvent } from '../../src/core/index.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : randomInt(0, 2 ** 32);
const REPLAY = `FUZZ_SEED=${SEED} node scripts/run-tests.mjs fuzz-client`;
/** FUZZ_ROUNDS raises it for a longer run. */
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 60);
const PER_ROUND = 50;
const ROUND_GAP_MS = 100;
const EVENTS = ROUNDS * PER_ROUND;
const FAULTY = 3;
/** Share of the replica's frames after the handshake that the proxy does not pass on as they are. */
const DAMAGE = 0.3;

interface ProxyCounters {
  connections: number;
  passed: number;
  mutated: number;
  replayed: number;
  dropped: number;
}

/**
 * Listens for clients, dials `upstream` for each, passes the client's bytes on as they are and
 * damages the replica's frames after the first two (CHALLENGE, WELCOME: a link that cannot
 * authenticate is only a replica that is down).
 */
async function damagingProxy(upstream: { host: string; port: number }): Promise<{ server: Server; port: number; counters: ProxyCounters; close(): void }> {
  const counters: ProxyCounters = { connections: 0, passed: 0, mutated: 0, replayed: 0, dropped: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const rng = new Rng((SEED ^ Math.imul(++counters.connections, 0x9e3779b9)) >>> 0);
    const replica = connect(upstream.port, upstream.host);
    for (const s of [client, replica]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        replica.destroy();
      });
    }
    client.pipe(replica);
    const decoder = new FrameDecoder(64 * 1024 * 1024);
    const seen: Buffer[] = [];
    let frames = 0;
    replica.on('data', (chunk: Buffer) => {
      for (const body of decoder.push(chunk)) {
        const copy = Buffer.from(body);
        const n = frames++;
        if (n < 2 || !rng.chance(DAMAGE)) {
          counters.passed++;
          client.write(frame(copy));
        } else {
          const what = rng.int(10);
          if (what < 6) {
            counters.mutated++;
            const damaged = mutate(rng, copy, seen.length ? rng.pick(seen) : copy).input;
            // Now and then the length prefix lies too: past the frame limit, or short of the body.
            client.write(rng.chance(0.9) ? frame(damaged) : Buffer.concat([Buffer.from([0, rng.int(256), rng.int(256), rng.int(256)]), damaged]));
          } else if (what < 8 && seen.length > 0) {
            counters.replayed++;
            client.write(frame(rng.pick(seen)));
            client.write(frame(copy));
          } else counters.dropped++;
        }
        if (seen.length < 64) seen.push(copy);
        else seen[rng.int(64)] = copy;
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server,
    port: (server.address() as { port: number }).port,
    counters,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('a faulty replica damaging what it sends: real clients deliver what the correct replicas agree on, and stay up', { timeout: 120_000 }, () => {
  let c: TestCluster;
  let proxy: Awaited<ReturnType<typeof damagingProxy>>;
  let config: ClusterConfig;

  before(async () => {
    c = await startCluster({ channels: ['alerts'], ordered: ['ledger'] });
    const faulty = c.config.replicas[FAULTY]!;
    proxy = await damagingProxy(faulty);
    config = { ...c.config, replicas: c.config.replicas.map((r) => (r.id === FAULTY ? { ...r, port: proxy.port } : r)) };
  });
  after(async () => {
    proxy?.close();
    await c?.stop();
  });

  it(`delivers every event once, unaltered, in order on the ordered channel (seed ${SEED})`, async (t) => {
    t.diagnostic(`seed ${SEED}; replay: ${REPLAY}`);
    const key = (client: string) => loadPrivateKey(clientKeyPath(c.dir, client));
    const delivered: BrokerEvent[] = [];
    const errors: string[] = [];
    let all: () => void = () => undefined;
    const allDelivered = new Promise<void>((r) => (all = r));
    const sub = new Subscriber(config, 'console', key('console'), {
      channels: ['alerts', 'ledger'],
      onEvent: (ev) => {
        delivered.push(ev);
        if (delivered.length >= 2 * EVENTS) all();
      },
      // A forged copy is the faulty replica's doing and is reported, never delivered.
      onError: (e) => void errors.push(`${e.code}: ${e.message}`),
    });
    await sub.start();
    const pub = new Publisher(config, 'probe', key('probe')).connect();
    // Status queries parse the replicas' replies too: the faulty one's may be anything.
    const statusRounds: number[] = [];
    try {
      // In rounds, so that the faulty replica's links, closed by the clients at each frame they
      // cannot read, are dialled again (50 ms later: the handshake passes) and damaged again.
      for (let round = 0; round < ROUNDS; round++) {
        for (let i = round * PER_ROUND; i < (round + 1) * PER_ROUND; i++) {
          for (const ch of ['alerts', 'ledger']) if (!pub.publish(ch, `${ch} ${i}`)) await pub.drained(30_000);
        }
        if (round % 8 === 0) {
          const r = await queryStatus(config, 'admin', key('admin'), 3_000);
          statusRounds.push(r.filter((s) => s.reachable && s.replica !== FAULTY).length);
        } else await sleep(ROUND_GAP_MS);
      }
      await pub.flush(60_000);
      const timer = setTimeout(all, 60_000);
      await allDelivered;
      clearTimeout(timer);
    } finally {
      pub.close();
      await sub.close();
    }
    const damage = proxy.counters;
    t.diagnostic(`proxy: ${JSON.stringify(damage)}; subscriber errors: ${errors.length}`);
    assert.ok(damage.mutated + damage.replayed + damage.dropped >= 20, `the proxy damaged only ${JSON.stringify(damage)}: the test proves nothing (${REPLAY})`);

    const byChannel = (ch: string) => delivered.filter((e) => e.channel === ch);
    for (const ch of ['alerts', 'ledger']) {
      const got = byChannel(ch).map((e) => Buffer.from(e.content).toString('utf8'));
      const want = Array.from({ length: EVENTS }, (_, i) => `${ch} ${i}`);
      assert.equal(got.length, EVENTS, `${ch}: delivered ${got.length} of ${EVENTS} (${REPLAY})`);
      assert.deepEqual([...got].sort(), [...want].sort(), `${ch}: delivered events differ from the published ones (${REPLAY})`);
    }
    assert.equal(delivered.length, 2 * EVENTS, `extra deliveries (${REPLAY})`);
    const seqs = byChannel('ledger').map((e) => e.seq);
    assert.deepEqual(seqs, Array.from({ length: EVENTS }, (_, i) => i + 1), `ledger: seqs not 1..${EVENTS} in order (${REPLAY})`);
    assert.deepEqual(
      errors.filter((e) => !e.startsWith('FIT_ERR_FORGED')),
      [],
      `the subscriber reported errors other than forged copies (${REPLAY})`,
    );
    assert.ok(statusRounds.every((n) => n === 3), `status did not reach the three correct replicas every time: ${statusRounds.join(',')} (${REPLAY})`);
  });
});
