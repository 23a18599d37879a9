// DESIGN §3 / STYLE 5-7: one bad peer must never cost anyone else. Random and truncated frames
// (a few thousand, from one seed) thrown at replica 0 — raw bytes, junk before
// authentication, and every kind of malformed or out-of-place message from an authenticated
// client — neither crash it nor disturb a concurrent correct publisher and subscriber, and
// leave it with bounded memory, no leftover connections and no leftover sessions.
//
// Each case's bytes depend only on (seed, case number), so `FUZZ_SEED=<seed>` replays the
// same inputs; FUZZ_CASES raises the count for longer runs. The seed and the replay command
// are printed as a diagnostic and in every assertion message.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startCluster, sleep, type TestCluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/rawclient.js';
import { INTERESTING_U32, Rng } from '../helpers/fuzz.js';
import { clientKeyPath } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { queryStatus } from '../../src/client/index.js';
import type { BrokerEvent } from '../../src/core/index.js';
import {
  MessageType,
  encodeAck,
  encodeCredit,
  encodeEvents,
  encodeJson,
  frame,
  publishHeaderBytes,
  recordBytes,
  writePublishHeader,
  writeRecord,
  FRAME_HEADER_BYTES,
} from '../../src/codec/index.js';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : randomInt(0, 2 ** 32);
const CASES = Number(process.env.FUZZ_CASES ?? 3_000);
const EVENTS = 3_000;
const LANES = 4;
const REPLAY = `FUZZ_SEED=${SEED} node scripts/run-tests.mjs fuzz`;
const RSS_GROWTH_BYTES_MAX = 200 * 1024 * 1024;
/** Time a replica has to answer a ping after a case, or to close the connection. */
const PING_TIMEOUT_MS = 10_000;
/** Ping seqs live far from the small and "interesting" seqs the cases use. */
const PING_SEQ_BASE = 3_000_000_000;
const FUZZ_CLIENT = 'probe2';
const CHANNEL = 'alerts';
const SCRATCH = 'scratch';

// ---------------------------------------------------------------------------------------------
/** The case's own generator: depends only on the seed and the case number. */
function caseRng(seed: number, i: number): Rng {
  return new Rng((seed ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0);
}

const INTERESTING_NUMBERS = [...INTERESTING_U32, -1, -0x80000000, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 2 ** 53 + 2, 1.5, -0.5, 1e300, -1e300, Number.MAX_SAFE_INTEGER];

function randomString(rng: Rng): string {
  switch (rng.int(5)) {
    case 0:
      return '';
    case 1:
      return rng.pick([CHANNEL, SCRATCH, FUZZ_CLIENT, 'probe', 'console', 'admin', 'nope', '*', '__proto__', 'constructor']);
    case 2:
      return 'x'.repeat(rng.pick([1, 127, 128, 129, 255, 256, 4096]));
    case 3:
      return String.fromCodePoint(...Array.from({ length: rng.range(1, 12) }, () => rng.pick([0, 0x0a, 0x22, 0x5c, 0xe9, 0x2028, 0xfffd, 0x1f600, rng.range(0x20, 0x7e)])));
    default:
      return rng.bytes(rng.range(1, 24)).toString('latin1');
  }
}

function randomJson(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 4 : 6)) {
    case 0:
      return rng.pick(INTERESTING_NUMBERS);
    case 1:
      return randomString(rng);
    case 2:
      return rng.pick([true, false, null]);
    case 3:
      return rng.next() * 1e6 - 5e5;
    case 4:
      return Array.from({ length: rng.int(5) }, () => randomJson(rng, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: rng.int(5) }, () => [randomString(rng), randomJson(rng, depth + 1)]));
  }
}

// ---------------------------------------------------------------------------------------------
// The cases: bytes to send, and what to do after them.

interface FuzzCase {
  i: number;
  family: 'raw' | 'preauth' | 'authed';
  kind: string;
  frames: Buffer[];
  /** ping: ask for status and expect an answer or a close; close: end the connection. */
  then: 'ping' | 'close';
}

function describeCase(c: FuzzCase): string {
  const bytes = c.frames.reduce((n, f) => n + f.length, 0);
  const head = Buffer.concat(c.frames).subarray(0, 48).toString('hex');
  return `case #${c.i} ${c.family}/${c.kind} (${c.frames.length} writes, ${bytes} bytes, starts ${head})`;
}

function jsonFrame(type: number, value: unknown): Buffer {
  return encodeJson(type as MessageType, value);
}

/** A body with a correct length prefix. */
function withPrefix(body: Buffer): Buffer {
  return frame(body);
}

interface BuiltPublish {
  frame: Buffer;
  /** Offset of each record in the frame. */
  records: number[];
  countAt: number;
}

function validPublish(rng: Rng, publisher = FUZZ_CLIENT): BuiltPublish {
  const channel = Buffer.from(rng.chance(0.8) ? CHANNEL : SCRATCH, 'utf8');
  const epoch = rng.bytes(8);
  const n = rng.range(1, 12);
  const seq0 = rng.chance(0.5) ? rng.range(1, 100) : rng.int(2 ** 30);
  const recs = Array.from({ length: n }, (_, k) => ({
    publisher: Buffer.from(publisher, 'utf8'),
    epoch,
    seq: seq0 + k,
    timestampMs: Date.now(),
    priority: rng.int(4) as 0 | 1 | 2 | 3,
    contentType: rng.int(3) as 0 | 1 | 2,
    content: rng.bytes(rng.int(300)),
  }));
  const size = publishHeaderBytes(channel) + recs.reduce((s, r) => s + recordBytes(r.publisher.length, r.content.length), 0);
  const out = Buffer.alloc(size);
  let o = writePublishHeader(out, channel, n, size);
  out.writeUInt32BE(rng.u32(), FRAME_HEADER_BYTES + 1);
  const records: number[] = [];
  for (const r of recs) {
    records.push(o);
    o = writeRecord(out, o, r);
  }
  return { frame: out, records, countAt: publishHeaderBytes(channel) - 6 };
}

const PUBLISH_MUTATIONS = [
  'flip',
  'truncate',
  'count',
  'recordLength',
  'priority',
  'contentLength',
  'publisherLength',
  'version',
  'seqHigh',
  'channelLength',
  'tail',
  'timestamp',
  'forgedPublisher',
] as const;

/** A correct PUBLISH, then 1-3 mutations; the length prefix is made to match the result. */
function mutatedPublish(rng: Rng): { frame: Buffer; kind: string } {
  const p = rng.chance(0.1) ? validPublish(rng, rng.pick(['probe', 'console', 'p'])) : validPublish(rng);
  let f = p.frame;
  const applied: string[] = [];
  for (let m = rng.range(1, 3); m > 0; m--) {
    const kind = rng.pick(PUBLISH_MUTATIONS);
    applied.push(kind);
    const rec = p.records[rng.int(p.records.length)]!;
    const inFrame = (at: number): boolean => at >= FRAME_HEADER_BYTES && at < f.length;
    switch (kind) {
      case 'flip':
        for (let k = rng.range(1, 8); k > 0; k--) {
          const at = rng.range(FRAME_HEADER_BYTES + 1, f.length - 1);
          f[at] = f[at]! ^ rng.range(1, 255);
        }
        break;
      case 'truncate':
        f = f.subarray(0, rng.range(FRAME_HEADER_BYTES + 1, f.length - 1));
        break;
      case 'count':
        if (inFrame(p.countAt + 1)) f.writeUInt16BE(rng.pick([0, 1, 2, 0xffff, rng.int(0x10000)]), p.countAt);
        break;
      case 'recordLength':
        if (inFrame(rec + 3)) f.writeUInt32BE(rng.chance(0.5) ? rng.u32() : (f.readUInt32BE(rec) + rng.range(-8, 8)) >>> 0, rec);
        break;
      case 'priority':
        if (inFrame(rec + 5)) f[rec + 5] = rng.range(4, 255);
        break;
      case 'contentLength': {
        const at = rec + 9 + f[rec + 8]! + 16 + 8;
        if (inFrame(rec + 8) && inFrame(at + 3)) f.writeUInt32BE(rng.u32(), at);
        break;
      }
      case 'publisherLength':
        if (inFrame(rec + 8)) f[rec + 8] = rng.int(256);
        break;
      case 'version':
        if (inFrame(rec + 4)) f[rec + 4] = rng.pick([0, 2, 255, rng.int(256)]);
        break;
      case 'seqHigh': {
        const at = rec + 9 + f[rec + 8]! + 8;
        if (inFrame(rec + 8) && inFrame(at + 3)) f.writeUInt32BE(rng.range(0x20_0000, 0xffff_ffff), at);
        break;
      }
      case 'channelLength':
        f[FRAME_HEADER_BYTES + 5] = rng.int(256);
        break;
      case 'tail':
        f = Buffer.concat([f, rng.bytes(rng.range(1, 64))]);
        break;
      case 'timestamp': {
        const at = rec + 9 + f[rec + 8]! + 16;
        if (inFrame(rec + 8) && inFrame(at + 7)) f.writeDoubleBE(rng.pick([NaN, Infinity, -Infinity, 0, -1, 1e308, Date.now() + 1e12]), at);
        break;
      }
      case 'forgedPublisher': {
        // Same length, other bytes: the record parses but names someone else.
        const at = rec + 9;
        if (inFrame(rec + 8) && inFrame(at)) f[at] = f[at]! ^ 0x20;
        break;
      }
    }
  }
  const body = Buffer.from(f.subarray(FRAME_HEADER_BYTES));
  return { frame: withPrefix(body), kind: `publish[${applied.join(',')}]` };
}

function randomRequest(rng: Rng): Buffer {
  const r = rng.int(10);
  if (r === 0) return withPrefix(Buffer.concat([Buffer.from([MessageType.Request]), rng.bytes(rng.range(0, 64))]));
  if (r === 1) return jsonFrame(MessageType.Request, randomJson(rng));
  const req: Record<string, unknown> = {};
  const maybe = (key: string, value: () => unknown, p = 0.8): void => {
    if (rng.chance(p)) req[key] = value();
  };
  maybe('seq', () => (rng.chance(0.6) ? rng.range(1, 40) : rng.chance(0.7) ? rng.pick(INTERESTING_NUMBERS) : randomJson(rng)), 0.95);
  maybe('method', () => (rng.chance(0.85) ? rng.pick(['subscribe', 'unsubscribe', 'receive', 'status', 'report']) : randomString(rng)), 0.95);
  maybe('channel', () => (rng.chance(0.6) ? rng.pick([CHANNEL, SCRATCH]) : randomString(rng)));
  maybe('credits', () => (rng.chance(0.5) ? rng.range(0, 100) : rng.pick(INTERESTING_NUMBERS)));
  maybe('max', () => (rng.chance(0.5) ? rng.range(0, 100) : rng.pick(INTERESTING_NUMBERS)));
  maybe('stream', () => (rng.chance(0.6) ? rng.range(1, 40) : rng.pick(INTERESTING_NUMBERS)), 0.5);
  maybe('mismatches', () => randomJson(rng), 0.3);
  for (let k = rng.int(3); k > 0; k--) req[randomString(rng)] = randomJson(rng);
  return jsonFrame(MessageType.Request, req);
}

/** Any frame a client could send, well formed, for truncation and cutting. */
function anyValidFrame(rng: Rng): Buffer {
  switch (rng.int(4)) {
    case 0:
      return validPublish(rng).frame;
    case 1:
      return encodeCredit(rng.range(1, 40), rng.range(0, 100), rng.range(0, 100));
    case 2:
      return jsonFrame(MessageType.Request, { seq: rng.range(1, 40), method: 'status' });
    default:
      return jsonFrame(MessageType.Request, { seq: rng.range(1, 40), method: 'subscribe', channel: CHANNEL, credits: rng.range(0, 50) });
  }
}

function rawCase(i: number, rng: Rng): FuzzCase {
  let bytes = rng.bytes(rng.range(1, 2048));
  // Half the time, a plausible small length prefix, so the decoder waits for a body.
  if (rng.chance(0.5) && bytes.length >= 4) bytes.writeUInt32BE(rng.range(1, 4096), 0);
  if (rng.chance(0.2)) bytes = Buffer.concat([bytes, rng.bytes(rng.range(1, 64 * 1024))]);
  return { i, family: 'raw', kind: 'bytes', frames: [bytes], then: 'close' };
}

function preauthCase(i: number, rng: Rng): FuzzCase {
  const frames: Buffer[] = [];
  const kinds: string[] = [];
  for (let n = rng.range(1, 4); n > 0; n--) {
    const k = rng.int(5);
    if (k === 0) {
      kinds.push('randomBody');
      frames.push(withPrefix(rng.bytes(rng.range(1, 512))));
    } else if (k === 1) {
      kinds.push('typedBody');
      frames.push(withPrefix(Buffer.concat([Buffer.from([rng.int(12)]), rng.bytes(rng.range(0, 256))])));
    } else if (k === 2) {
      kinds.push('helloJson');
      frames.push(jsonFrame(MessageType.Hello, randomJson(rng)));
    } else if (k === 3) {
      // A HELLO for a real client with a signature that cannot be right.
      kinds.push('helloForged');
      frames.push(
        jsonFrame(MessageType.Hello, {
          client: rng.pick([FUZZ_CLIENT, 'probe', 'console', 'admin', randomString(rng)]),
          nonce: rng.bytes(rng.pick([0, 16, 32, 64])).toString('base64'),
          signature: rng.bytes(rng.pick([0, 64, 65])).toString(rng.chance(0.8) ? 'base64' : 'hex'),
        }),
      );
    } else {
      kinds.push('beforeHello');
      frames.push(anyValidFrame(rng));
    }
  }
  return { i, family: 'preauth', kind: kinds.join(','), frames, then: 'close' };
}

function authedCase(i: number, rng: Rng): FuzzCase {
  const r = rng.int(100);
  const c = (kind: string, frames: Buffer[], then: FuzzCase['then'] = 'ping'): FuzzCase => ({ i, family: 'authed', kind, frames, then });
  if (r < 35) {
    const m = mutatedPublish(rng);
    return c(m.kind, [m.frame]);
  }
  if (r < 45) {
    const f = anyValidFrame(rng);
    const body = f.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + rng.range(1, f.length - FRAME_HEADER_BYTES - 1));
    return c(`truncated[${MessageType.Publish === body[0] ? 'publish' : body[0] === MessageType.Credit ? 'credit' : 'request'}]`, [withPrefix(Buffer.from(body))]);
  }
  if (r < 55) {
    const k = rng.int(5);
    if (k === 0) {
      const p = validPublish(rng);
      const records = rng.chance(0.5) ? [p.frame.subarray(p.records[0]!)] : [];
      return c('events', [encodeEvents(rng.u32(), rng.u32(), records)]);
    }
    if (k === 1) return c('ack', [encodeAck(rng.u32(), rng.u32(), rng.u32())]);
    if (k === 2) return c('helloAgain', [jsonFrame(MessageType.Hello, { client: rng.pick(['console', 'admin', FUZZ_CLIENT]) })]);
    if (k === 3) return c('serverJson', [jsonFrame(rng.pick([MessageType.Challenge, MessageType.Welcome, MessageType.Reply]), randomJson(rng))]);
    return c('unknownType', [withPrefix(Buffer.concat([Buffer.from([rng.pick([0, 10, 11, 0x7f, 0x80, 0xff, rng.range(10, 255)])]), rng.bytes(rng.range(0, 128))]))]);
  }
  if (r < 62) return c('creditUnknownStream', [encodeCredit(rng.range(1000, 0xffff_fffe), rng.u32(), rng.u32())]);
  if (r < 72) {
    const stream = rng.range(1, 40);
    const frames = [
      jsonFrame(MessageType.Request, { seq: stream, method: 'subscribe', channel: rng.chance(0.8) ? CHANNEL : SCRATCH, credits: rng.range(0, 16) }),
      encodeCredit(stream, rng.pick([0xffff_ffff, 0x8000_0000, rng.u32()]), rng.pick([0, 1, 0xffff_ffff, rng.u32()])),
    ];
    if (rng.chance(0.5)) frames.push(encodeCredit(stream, 0xffff_ffff, rng.u32()));
    if (rng.chance(0.5)) frames.push(jsonFrame(MessageType.Request, { seq: stream + 1000, method: 'unsubscribe', stream }));
    return c('hugeCredit', frames);
  }
  if (r < 90) return c('request', [randomRequest(rng)]);
  // A frame cut mid-way (its length prefix promising more), then the connection closes.
  const f = rng.chance(0.7) ? anyValidFrame(rng) : mutatedPublish(rng).frame;
  const cut = f.subarray(0, rng.range(1, f.length - 1));
  return c('cutThenClose', rng.chance(0.3) ? [Buffer.from(cut), anyValidFrame(rng)] : [Buffer.from(cut)], 'close');
}

function makeCase(seed: number, i: number): FuzzCase {
  const rng = caseRng(seed, i);
  const r = rng.int(100);
  if (r < 15) return rawCase(i, rng);
  if (r < 30) return preauthCase(i, rng);
  return authedCase(i, rng);
}

// ---------------------------------------------------------------------------------------------
// Driving the cases at replica 0.

interface FuzzStats {
  cases: number;
  byFamily: Record<string, number>;
  /** Authenticated cases after which replica 0 closed the connection / kept it open / we closed it. */
  closedByReplica: number;
  keptOpen: number;
  closedByUs: number;
  connections: number;
}

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  assert.ok(line, `no VmRSS for pid ${pid}`);
  return Number(line.split(/\s+/)[1]) * 1024;
}

function logTail(c: TestCluster, id: number, lines = 15): string {
  return c.log(id).trimEnd().split('\n').slice(-lines).join('\n');
}

async function replicaStatus(c: TestCluster, id: number): Promise<Record<string, unknown>> {
  const all = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 5_000);
  const s = all[id]!;
  assert.ok(s.reachable && s.status, `replica ${id} did not answer status: ${s.error} [${REPLAY}]`);
  return s.status;
}

interface ChannelView {
  tag: string;
  eventsIn: number;
  queues: Record<string, { sessions: number; depth: number }>;
}

function channelView(status: Record<string, unknown>, tag: string): ChannelView {
  const ch = (status.channels as ChannelView[]).find((x) => x.tag === tag);
  assert.ok(ch, `no channel ${tag} in status`);
  return ch;
}

/** The cases most recently sent by any lane: a crash may surface on another lane's next case. */
const RECENT_CASES_MAX = 2 * LANES;

async function runLane(c: TestCluster, lane: number, progress: { done: number; stopped: boolean }, stats: FuzzStats, recent: FuzzCase[]): Promise<void> {
  const replica = c.config.replicas[0]!;
  const key = loadPrivateKey(clientKeyPath(c.dir, FUZZ_CLIENT));
  let authed: RawClient | undefined;
  let ping = PING_SEQ_BASE + lane * 100_000_000;
  const failWith = async (fc: FuzzCase, what: string): Promise<never> => {
    await sleep(200); // let a crashing replica exit and flush its log before we look
    assert.fail(
      `${what} after ${describeCase(fc)}; replica 0 alive: ${c.alive(0)} [seed ${SEED}; replay: ${REPLAY}]\n` +
        `cases sent last (any lane, oldest first):\n${recent.map((x) => `  ${describeCase(x)}`).join('\n')}\nreplica 0 log tail:\n${logTail(c, 0)}`,
    );
  };
  try {
    for (let i = lane; i < CASES && !progress.stopped; i += LANES) {
      const fc = makeCase(SEED, i);
      recent.push(fc);
      if (recent.length > RECENT_CASES_MAX) recent.shift();
      const kindKey = `${fc.family}/${fc.kind.split(/[[,]/)[0]}`;
      stats.byFamily[kindKey] = (stats.byFamily[kindKey] ?? 0) + 1;
      if (fc.family === 'authed') {
        if (!authed || authed.isClosed) {
          authed?.destroy();
          authed = await RawClient.open(replica).catch(() => failWith(fc, 'replica 0 refused a new connection'));
          stats.connections++;
          const r = await authed.authenticate(replica, FUZZ_CLIENT, key);
          if (!r?.welcome) await failWith(fc, `replica 0 did not authenticate ${FUZZ_CLIENT} (${JSON.stringify(r?.refusal)})`);
        }
        const conn = authed;
        for (const f of fc.frames) conn.write(f);
        if (fc.then === 'close') {
          await conn.end();
          stats.closedByUs++;
        } else {
          const seq = ping++;
          const reply = await conn.request(seq, 'status', {}, PING_TIMEOUT_MS);
          if (reply) {
            if (reply.ok !== true) await failWith(fc, `replica 0 refused a status request: ${JSON.stringify(reply)}`);
            stats.keptOpen++;
          } else if (conn.isClosed) {
            stats.closedByReplica++;
          } else {
            await failWith(fc, `replica 0 neither answered a status request within ${PING_TIMEOUT_MS} ms nor closed the connection`);
          }
        }
      } else {
        const conn = await RawClient.open(replica).catch(() => failWith(fc, 'replica 0 refused a new connection'));
        stats.connections++;
        for (const f of fc.frames) conn.write(f);
        // Let the replica react to the bytes before our end-of-stream reaches it, sometimes.
        if (i % 3 === 0) await sleep(1);
        await conn.end();
      }
      stats.cases++;
      progress.done++;
    }
  } finally {
    authed?.destroy();
  }
}

describe('fuzz: random and truncated frames at a replica (DESIGN §3, STYLE 5-7)', { timeout: 120_000 }, () => {
  it(`neither crash replica 0 nor disturb a concurrent publisher (${CASES} seeded cases, ${EVENTS} events)`, async (t) => {
    t.diagnostic(`seed ${SEED}; cases ${CASES}; replay: ${REPLAY}`);
    const c = await startCluster({ channels: [CHANNEL, SCRATCH], clients: [{ name: FUZZ_CLIENT, role: 'pubsub' }], protection: 'si' }); // hand-built records, unsealed
    try {
      const pid = c.procs[0]!.pid!;
      // The correct subscriber and publisher, as in production.
      const got = new Map<string, string>();
      const duplicates: string[] = [];
      const strangers: BrokerEvent[] = [];
      const sub = c.subscriber('console', {
        channel: CHANNEL,
        onEvent: (ev) => {
          if (ev.publisher !== 'probe') return void strangers.push(ev);
          if (got.has(ev.id)) duplicates.push(ev.id);
          got.set(ev.id, ev.content.toString('utf8'));
        },
      });
      await sub.start();
      const pub = await c.linkedPublisher('probe');
      await pub.flush(10_000);
      const baseline = await replicaStatus(c, 0);
      const rssBefore = rssBytes(pid);

      const expected = new Map<string, string>();
      const progress = { done: 0, stopped: false };
      let published = 0;
      // A steady publisher that keeps pace with the fuzzer, so the two overlap from start to end.
      const publishing = (async () => {
        while (published < EVENTS && !progress.stopped) {
          const target = Math.min(EVENTS, Math.max(published + 5, Math.ceil((EVENTS * (progress.done + LANES)) / CASES)));
          while (published < target) {
            const content = JSON.stringify({ i: published, seed: SEED, pad: 'p'.repeat(published % 97) });
            published++;
            expected.set(`${pub.epochHex}-${published}`, content);
            if (!pub.publish(CHANNEL, content)) await pub.drained();
          }
          await sleep(10);
        }
        await pub.flush(30_000);
      })();
      // Awaited below; if a lane fails first, this must not become an unhandled rejection.
      publishing.catch(() => undefined);

      const stats: FuzzStats = { cases: 0, byFamily: {}, closedByReplica: 0, keptOpen: 0, closedByUs: 0, connections: 0 };
      const startedMs = Date.now();
      const recent: FuzzCase[] = [];
      try {
        await Promise.all(Array.from({ length: LANES }, (_, lane) => runLane(c, lane, progress, stats, recent)));
      } finally {
        progress.stopped = stats.cases < CASES; // on failure, stop the other lanes and the publisher
      }
      const fuzzMs = Date.now() - startedMs;
      await publishing;
      t.diagnostic(`fuzzed ${stats.cases} cases in ${fuzzMs} ms over ${stats.connections} connections; authenticated cases: replica kept ${stats.keptOpen} open, closed ${stats.closedByReplica}, we cut ${stats.closedByUs}`);
      t.diagnostic(`cases by kind: ${JSON.stringify(stats.byFamily)}`);

      const context = `[seed ${SEED}; replay: ${REPLAY}]`;
      assert.ok(c.alive(0), `replica 0 died ${context}\n${logTail(c, 0)}`);
      assert.equal(stats.cases, CASES, `not every case ran ${context}`);

      // The correct subscriber delivers every event exactly once, with its content, and
      // nothing a single replica alone vouched for (the fuzzer only ever reached replica 0).
      const until = Date.now() + 30_000;
      while (got.size < EVENTS && Date.now() < until) await sleep(50);
      await sleep(200);
      const missing = [...expected.keys()].filter((id) => !got.has(id));
      assert.equal(missing.length, 0, `the subscriber is missing ${missing.length} of ${EVENTS} events, e.g. ${missing.slice(0, 3).join(', ')} ${context}`);
      assert.equal(got.size, EVENTS, `the subscriber delivered events nobody published ${context}`);
      for (const [id, content] of expected) assert.equal(got.get(id), content, `altered content for ${id} ${context}`);
      assert.deepEqual(duplicates.slice(0, 5), [], `${duplicates.length} events delivered twice ${context}`);
      assert.deepEqual(
        strangers.slice(0, 3).map((e) => `${e.publisher} ${e.id}`),
        [],
        `delivered ${strangers.length} events that only the fuzzed replica held ${context}`,
      );
      const summary = sub.summary();
      assert.deepEqual(summary.mismatches, { 0: 0, 1: 0, 2: 0, 3: 0 }, `a replica sent copies that did not match ${context}`);
      assert.equal(summary.malformedFrames[0], 0, `replica 0 sent the subscriber malformed frames ${context}`);

      // Replica 0 still answers, still holds every event of the correct publisher, and every
      // fuzz connection and the sessions opened on them are gone.
      let status = await replicaStatus(c, 0);
      const inAlerts = channelView(status, CHANNEL).eventsIn;
      assert.ok(inAlerts >= EVENTS, `replica 0 counted ${inAlerts} events in on ${CHANNEL}, fewer than the ${EVENTS} published ${context}`);
      // Connections not yet authenticated count as client connections, and at the baseline one
      // may have been a replica link or a readiness probe mid-handshake: what must hold is that
      // no fuzz connection is left and that the count did not grow.
      const fuzzConnections = (s: Record<string, unknown>): number =>
        (s.limits as { clients: Record<string, { connections: number }> }).clients[FUZZ_CLIENT]?.connections ?? 0;
      const connUntil = Date.now() + 10_000;
      while ((fuzzConnections(status) > 0 || (status.connections as number) > (baseline.connections as number)) && Date.now() < connUntil) {
        await sleep(200);
        status = await replicaStatus(c, 0);
      }
      assert.equal(fuzzConnections(status), 0, `replica 0 still holds ${fuzzConnections(status)} authenticated connections of ${FUZZ_CLIENT} ${context}`);
      assert.ok(
        (status.connections as number) <= (baseline.connections as number),
        `replica 0 holds ${status.connections} client connections, ${baseline.connections} before fuzzing ${context}`,
      );
      for (const tag of [CHANNEL, SCRATCH]) {
        const q = channelView(status, tag).queues[FUZZ_CLIENT];
        assert.equal(q?.sessions, 0, `replica 0 keeps ${q?.sessions} subscribe sessions of ${FUZZ_CLIENT} on ${tag} after all its connections closed ${context}`);
      }

      const rssAfter = rssBytes(pid);
      t.diagnostic(`replica 0 VmRSS ${(rssBefore / 2 ** 20).toFixed(1)} MiB before, ${(rssAfter / 2 ** 20).toFixed(1)} MiB after`);
      assert.ok(rssAfter - rssBefore < RSS_GROWTH_BYTES_MAX, `replica 0 grew by ${((rssAfter - rssBefore) / 2 ** 20).toFixed(1)} MiB ${context}`);
      await sub.close();
    } finally {
      await c.stop();
    }
  });
});
