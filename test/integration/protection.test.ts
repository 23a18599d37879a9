// Quality of protection end to end (issue 6, DESIGN §3), over real replica processes: at each
// level a replica that tampers with content or equivocates cannot make a subscriber deliver
// anything its publisher did not publish, and only that replica is blamed; a forging publisher
// (a MAC under the wrong channel key, a signature under the wrong key, or a record sealed below
// the channel's level) gets nothing delivered and is reported by name. PKE content never
// appears in a replica's memory (heap snapshot and a scan of the whole process), logs or data
// directory, while a pks marker published beside it does (so the search can find what is there).

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientKeyPath, loadConfig } from '../../src/config/index.js';
import type { FitError, BrokerEvent, Protection } from '../../src/core/index.js';
import { numberRecords, publishHeaderBytes, recordBytes, writePublishHeader, writeRecord, PUBLISH_SEQ_AT } from '../../src/codec/index.js';
import { BatchSigner, ChannelKeyring, EventSealer, PROTECTION_CODE, createChannelKeys, generateIdentity, loadPrivateKey, readChannelKeyring, retireChannelKey, rotateChannelKey, trailerBytes } from '../../src/protection/index.js';
import { startCluster, sleep, type TestCluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/rawclient.js';
import { runWorkload } from '../helpers/workload.js';
import { queryStatus, Subscriber } from '../../src/client/index.js';
import { findInProcessMemory } from '../helpers/memscan.js';

const LEVELS: Protection[] = ['si', 'ha', 'pks', 'pke'];
const clients = [
  { name: 'pub1', role: 'pub' as const },
  { name: 'pub2', role: 'pub' as const },
  { name: 'siem1', role: 'sub' as const },
  { name: 'siem2', role: 'sub' as const },
  { name: 'forger', role: 'pub' as const },
];
const scratch = mkdtempSync(join(tmpdir(), 'fitbroker-forge-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Waits until every replica has taken in `events` events (a publisher's flush waits for 2f+1 of them only). */
async function heldByAll(c: TestCluster, events: number): Promise<void> {
  const key = loadPrivateKey(clientKeyPath(c.dir, 'admin'));
  const end = Date.now() + 10_000;
  for (;;) {
    const all = await queryStatus(c.config, 'admin', key, 5_000);
    const counts = all.map((r) => ((r.status?.channels as { eventsIn: number }[] | undefined) ?? []).reduce((n, ch) => n + ch.eventsIn, 0));
    if (counts.every((n) => n >= events)) return;
    if (Date.now() > end) throw new Error(`replicas took in ${counts.join(', ')} events, not ${events} each`);
    await sleep(50);
  }
}

/** Publishes `${marker} 0..199` on `channel` as pub1 and waits until every replica holds all 200. */
async function publishToAll(c: TestCluster, channel: string, marker: string): Promise<void> {
  const pub = c.publisher('pub1');
  // Every replica connected first: batches a quorum acknowledged are not resent to a late one.
  await until(() => pub.readyReplicas === c.procs.length, 10_000, 'the publisher to reach every replica');
  for (let i = 0; i < 200; i++) pub.publish(channel, `${marker} ${i}`);
  await pub.flush();
  await heldByAll(c, 200);
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

describe('a tampering or equivocating replica, at every protection level', { timeout: 300_000 }, () => {
  for (const level of LEVELS) {
    for (const kind of ['tamper', 'equivocate']) {
      it(`${level}: replica 2 does ${kind}; every event is delivered once, unchanged, and only replica 2 is blamed`, async () => {
        const c = await startCluster({ channels: ['a', 'b', 'c'], clients, protection: level, faults: { 2: [kind] } });
        try {
          const r = await runWorkload(c, {
            publishers: ['pub1', 'pub2'],
            subscribers: ['siem1', 'siem2'],
            channels: ['a', 'b', 'c'],
            events: 1500,
            settled: (all) => Object.values(all).every((sums) => sums.some((s) => (s.mismatches[2] ?? 0) > 0)),
          });
          for (const [siem, m] of Object.entries(r.mismatches)) {
            assert.ok(m[2]! > 0, `${siem} recorded no evidence against the ${kind} replica`);
            assert.deepEqual([m[0], m[1], m[3]], [0, 0, 0], `${siem} blamed a correct replica`);
          }
          for (const [siem, sums] of Object.entries(r.summaries)) for (const s of sums) assert.equal(s.rejected, 0, `${siem} rejected an event of a correct publisher on ${s.channel}`);
        } finally {
          await c.stop();
        }
      });
    }
  }
});

/** A PUBLISH frame of `contents` as `client`, sealed for `channel` at `level` with the given keys. */
function forgedFrame(channel: string, level: Protection, client: string, contents: string[], seal: { signingKey: ReturnType<typeof createPrivateKey>; keyring?: ChannelKeyring; sealAs?: Protection }): Buffer {
  const channelBytes = Buffer.from(channel);
  const publisher = Buffer.from(client);
  const sealAs = seal.sealAs ?? level;
  const trailer = trailerBytes(sealAs, 2);
  const size = publishHeaderBytes(channelBytes) + contents.reduce((n, x) => n + recordBytes(publisher.length, Buffer.byteLength(x), trailer), 0);
  const out = Buffer.alloc(size);
  const recordsAt = writePublishHeader(out, channelBytes, contents.length, size);
  let o = recordsAt;
  const epoch = randomBytes(8);
  for (const x of contents) o = writeRecord(out, o, { publisher, epoch, seq: 0, timestampMs: Date.now(), priority: 0, contentType: 0, content: Buffer.from(x), protection: PROTECTION_CODE[sealAs], trailerBytes: trailer });
  numberRecords(out, recordsAt, 0);
  const signer = new BatchSigner(seal.signingKey, 2);
  new EventSealer({ channel, protection: sealAs, ...(seal.keyring ? { keyring: seal.keyring } : {}) }).seal(out, recordsAt, size, signer);
  signer.finish();
  out.writeUInt32BE(1, PUBLISH_SEQ_AT);
  return out;
}

/** Sends `frame` to every replica as `client`, authenticated with its real key, and waits for the acks. */
async function sendToAll(c: TestCluster, client: string, frame: Buffer): Promise<void> {
  const key = loadPrivateKey(clientKeyPath(c.dir, client));
  await Promise.all(
    c.config.replicas.map(async (info) => {
      const raw = await RawClient.open(info);
      try {
        const auth = await raw.authenticate(info, client, key);
        assert.ok(auth?.welcome, `replica ${info.id} did not accept ${client}: ${JSON.stringify(auth)}`);
        raw.write(frame);
        assert.ok(await raw.next((b) => b.length > 0, 5_000), `replica ${info.id} did not answer the publish`);
      } finally {
        raw.destroy();
      }
    }),
  );
}

describe('a forging publisher', { timeout: 120_000 }, () => {
  const forgeries: { level: Protection; how: string; seal: (c: TestCluster) => Parameters<typeof forgedFrame>[4] }[] = [
    { level: 'ha', how: 'a MAC under a channel key of its own', seal: () => ({ signingKey: createPrivateKey(generateIdentity().privatePem), keyring: ownRing('ha') }) },
    { level: 'pks', how: 'a signature under a key that is not its own', seal: () => ({ signingKey: createPrivateKey(generateIdentity().privatePem) }) },
    { level: 'pke', how: 'a signature under a key that is not its own', seal: (c) => ({ signingKey: createPrivateKey(generateIdentity().privatePem), keyring: new ChannelKeyring(c.dir, 'alerts', 'pke') }) },
  ];
  for (const f of forgeries) {
    it(`${f.level}: ${f.how} — nothing of it is delivered, the honest events all are, and the forger is reported`, async () => {
      const c = await startCluster({ channels: ['alerts'], clients, protection: f.level });
      try {
        const got: BrokerEvent[] = [];
        const errors: FitError[] = [];
        const sub = c.subscriber('siem1', { channel: 'alerts', onEvent: (e) => got.push(e), onError: (e) => errors.push(e) });
        await sub.start();
        await sendToAll(c, 'forger', forgedFrame('alerts', f.level, 'forger', ['forged-0', 'forged-1', 'forged-2'], f.seal(c)));
        const pub = c.publisher('pub1');
        for (let i = 0; i < 50; i++) pub.publish('alerts', `honest-${i}`);
        await pub.flush();
        await until(() => got.length >= 50 && sub.summary().rejected >= 3, 10_000, `50 honest events and 3 rejected forgeries (got ${got.length}, ${JSON.stringify(sub.summary())})`);
        await sleep(200);
        assert.deepEqual(
          got.map((e) => e.content.toString()),
          Array.from({ length: 50 }, (_, i) => `honest-${i}`),
        );
        const s = sub.summary();
        assert.equal(s.rejected, 3);
        assert.deepEqual(Object.values(s.mismatches), [0, 0, 0, 0], 'no replica is blamed for what the publisher sealed');
        const report = errors.find((e) => e.code === 'FIT_ERR_FORGED');
        assert.ok(report, `no FIT_ERR_FORGED reported: ${errors.map((e) => e.message).join('; ')}`);
        assert.equal(report.fields.publisher, 'forger');
        assert.equal(report.fields.channel, 'alerts');
      } finally {
        await c.stop();
      }
    });
  }
});

describe('rotating a channel key while events flow', { timeout: 60_000 }, () => {
  for (const level of ['ha', 'pke'] as const) {
    it(`${level}: every event published before, during and after the rotation is delivered, under both keys`, async () => {
      const c = await startCluster({ channels: ['alerts'], clients, protection: level });
      try {
        const got = new Set<string>();
        const sub = c.subscriber('siem1', { channel: 'alerts', onEvent: (e) => got.add(e.content.toString()) });
        await sub.start();
        const pub = c.publisher('pub1');
        const before = readChannelKeyring(c.dir, 'alerts').current;
        const total = 3000;
        for (let i = 0; i < total; i++) {
          if (!pub.publish('alerts', `event-${i}`)) await pub.drained();
          if (i === 1000) rotateChannelKey(c.dir, 'alerts');
          // Spread over ~3 s, so the publisher picks up the new key (it looks once a second) mid-stream.
          if (i % 100 === 0) await sleep(100);
        }
        await pub.flush();
        await until(() => got.size === total, 15_000, `all ${total} events (got ${got.size})`);
        const s = sub.summary();
        assert.equal(s.rejected + s.undecryptable + s.undecided, 0, JSON.stringify(s));
        const ring = readChannelKeyring(c.dir, 'alerts');
        assert.notEqual(ring.current, before);
        assert.equal(ring.keys.length, 2);
        // Both keys were used: a subscriber whose ring lost the old key reads some events, not all.
        const dir2 = mkdtempSync(join(scratch, 'retired-'));
        cpSync(join(c.dir, 'cluster.yaml'), join(dir2, 'cluster.yaml'));
        cpSync(join(c.dir, 'keys'), join(dir2, 'keys'), { recursive: true });
        retireChannelKey(dir2, 'alerts', before);
        let newKeyOnly = 0;
        const sub2 = new Subscriber(loadConfig(dir2), 'siem2', loadPrivateKey(clientKeyPath(dir2, 'siem2')), { channel: 'alerts', onEvent: () => newKeyOnly++ });
        try {
          await sub2.start();
          const refused = (): number => sub2.summary().rejected + sub2.summary().undecryptable;
          await until(() => newKeyOnly + refused() === total, 15_000, `siem2 to deliver or refuse all ${total} (${newKeyOnly} + ${refused()})`);
          assert.ok(newKeyOnly > 0 && newKeyOnly < total, `events under the new key: ${newKeyOnly} of ${total}`);
        } finally {
          await sub2.close();
        }
      } finally {
        await c.stop();
      }
    });
  }
});

describe('a publisher sealing below the channel level', { timeout: 60_000 }, () => {
  it('is refused by the replicas with FIT_ERR_MALFORMED naming the channel and both levels', async () => {
    const c = await startCluster({ channels: ['alerts'], clients, protection: 'ha' });
    try {
      const info = c.config.replicas[0]!;
      const raw = await RawClient.open(info);
      try {
        assert.ok((await raw.authenticate(info, 'forger', loadPrivateKey(clientKeyPath(c.dir, 'forger'))))?.welcome);
        raw.write(forgedFrame('alerts', 'ha', 'forger', ['downgraded'], { signingKey: createPrivateKey(generateIdentity().privatePem), sealAs: 'si' }));
        const answer = await raw.next((b) => b.length > 0, 5_000);
        assert.ok(answer, 'no answer to the publish');
        const text = answer.toString('utf8');
        assert.match(text, /FIT_ERR_MALFORMED/);
        assert.match(text, /sealed as si but the channel's protection is ha/);
      } finally {
        raw.destroy();
      }
    } finally {
      await c.stop();
    }
  });
});

function ownRing(level: 'ha' | 'pke'): ChannelKeyring {
  const dir = mkdtempSync(join(scratch, 'ring-'));
  createChannelKeys(dir, 'alerts', level);
  return new ChannelKeyring(dir, 'alerts', level);
}

/** Every file under dir, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('pke keeps content from the replicas', { timeout: 120_000 }, () => {
  it("a marker published on a pke channel is in no replica's memory, heap snapshot, log or data directory; one on a pks channel is", async () => {
    const snapshots = mkdtempSync(join(scratch, 'heap-'));
    const c = await startCluster({ channels: ['secret'], clients, protection: 'pke', replicaNodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshots}`] });
    try {
      // The next test runs the same search on a pks channel and must find its marker: the search can fail.
      const secret = `PKE-MARKER-${randomBytes(6).toString('hex')}`;
      // No subscriber is connected: the events stay queued in every replica for siem1 and siem2.
      await publishToAll(c, 'secret', secret);
      const needle = Buffer.from(secret);
      for (let id = 0; id < c.procs.length; id++) {
        const pid = c.procs[id]!.pid!;
        assert.deepEqual(findInProcessMemory(pid, needle), [], `replica ${id}'s memory holds the plaintext`);
        c.procs[id]!.kill('SIGUSR2');
      }
      await until(() => readdirSync(snapshots).filter((f) => f.endsWith('.heapsnapshot')).length === c.procs.length, 60_000, 'a heap snapshot of every replica');
      await until(() => readdirSync(snapshots).every((f) => statSync(join(snapshots, f)).size > 0), 60_000, 'heap snapshots written');
      await sleep(1000);
      for (const f of readdirSync(snapshots)) assert.equal(readFileSync(join(snapshots, f)).includes(needle), false, `heap snapshot ${f} holds the plaintext`);
      for (let id = 0; id < c.procs.length; id++) assert.equal(c.log(id).includes(secret), false, `replica ${id}'s log holds the plaintext`);
      for (const f of filesUnder(join(c.dir, 'data'))) assert.equal(readFileSync(f).includes(needle), false, `${f} holds the plaintext`);
      // The subscriber, which holds the channel key, reads it.
      const got: string[] = [];
      const sub = c.subscriber('siem1', { channel: 'secret', onEvent: (e) => got.push(e.content.toString()) });
      await sub.start();
      await until(() => got.length === 200, 10_000, 'the subscriber to decrypt all 200 events');
      assert.equal(got[0], `${secret} 0`);
    } finally {
      await c.stop();
      rmSync(snapshots, { recursive: true, force: true });
    }
  });

  // On disk: channels that persist their events (persist: disk) and an ordered channel, whose
  // decided requests also go to the consensus journal. The same search over a pks cluster must
  // find its marker on disk, or this proves nothing.
  for (const level of ['pke', 'pks'] as const) {
    it(`${level}: a marker on a disk channel and on an ordered disk channel is ${level === 'pke' ? 'nowhere' : 'found'} in the replicas' data directories`, async () => {
      const c = await startCluster({ channels: ['secret', 'orders'], ordered: ['orders'], persist: 'disk', clients, protection: level });
      try {
        const marker = `${level.toUpperCase()}-DISK-${randomBytes(6).toString('hex')}`;
        const pub = c.publisher('pub1');
        await until(() => pub.readyReplicas === c.procs.length, 10_000, 'the publisher to reach every replica');
        for (let i = 0; i < 200; i++) pub.publish('secret', `${marker} unordered ${i}`);
        for (let i = 0; i < 200; i++) pub.publish('orders', `${marker} ordered ${i}`);
        await pub.flush();
        // Read back through a subscriber: every event decided, persisted and readable.
        const got: string[] = [];
        const sub = c.subscriber('siem1', { channels: ['secret', 'orders'], onEvent: (e) => got.push(e.content.toString()) });
        await sub.start();
        await until(() => got.length === 400, 20_000, 'the subscriber to read all 400 events');
        await sleep(500);
        const files = filesUnder(join(c.dir, 'data'));
        const written = files.reduce((n, f) => n + statSync(f).size, 0);
        assert.ok(written > 100 * 1024, `the replicas wrote their channels to disk (${files.length} files, ${written} bytes)`);
        const holding = files.filter((f) => readFileSync(f).includes(Buffer.from(marker)));
        if (level === 'pke') assert.deepEqual(holding, [], 'no data file holds the plaintext');
        else assert.ok(holding.length >= c.procs.length, `the search finds a pks marker on disk (${holding.length} files)`);
      } finally {
        await c.stop();
      }
    });
  }

  it('the same search finds a marker a pks channel leaves in replica memory (the search can see what is there)', async () => {
    const c = await startCluster({ channels: ['open'], clients, protection: 'pks' });
    try {
      const marker = `PKS-MARKER-${randomBytes(6).toString('hex')}`;
      await publishToAll(c, 'open', marker);
      for (let id = 0; id < c.procs.length; id++) assert.notDeepEqual(findInProcessMemory(c.procs[id]!.pid!, Buffer.from(marker)), [], `replica ${id}: the search did not find a marker it holds`);
    } finally {
      await c.stop();
    }
  });
});
