// A replica's hot path in one process, without sockets: PUBLISH frames from 2 publishers over
// 50 channels go through BrokerService into 2 subscribers' queues, which are drained into
// EVENTS frames and acknowledged, as the push streams do. End-to-end runs on this shared
// machine move by ±20 % between runs; this moves by a few percent, so it is what A/B
// comparisons of the replica's own code use (docs/performance.md).
//
//   node dist/bench/replica-path.js [--per-section N] [--rounds R] [--ack-lag E] [--cold-kb K]
//
// --per-section 12 is close to saturation (large sections); 1 is a paced load of ~30,000
// events/s, where per-section and per-frame costs are per-event costs. --ack-lag keeps E
// events of each stream sent and unacknowledged, as a subscriber with a window in flight
// does: queued entries then live long enough to be promoted to V8's old generation, as they
// are at saturation in a real run (0, the default: acknowledged at once). --cold-kb writes over
// K KiB between rounds, as the other processes on the cores do between a replica's wakeups
// (cold.ts), and reports the wall time of the path alone too.

import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { BrokerService } from '../src/broker/index.js';
import { DEFAULT_LIMITS, limitsWith, type ChannelClass, type ClientInfo, type ControlTable } from '../src/core/index.js';
import {
  decodeEvents,
  decodePublish,
  numberRecords,
  publishSectionHeaderBytes,
  PUBLISH_FIXED_BYTES,
  recordBytes,
  writePublishFrameHeader,
  writePublishSection,
  writeRecord,
} from '../src/codec/index.js';
import type { Connection } from '../src/net/index.js';
import { PushScheduler, PushStream, QueueSource } from '../src/replica/push.js';
import { evictor, PathClock } from './cold.js';

const { values } = parseArgs({ options: { 'per-section': { type: 'string', default: '12' }, rounds: { type: 'string', default: '2000' }, 'ack-lag': { type: 'string', default: '0' }, 'cold-kb': { type: 'string', default: '0' } } });
const PER_SECTION = Number(values['per-section']);
const ROUNDS = Number(values.rounds);
const ACK_LAG = Number(values['ack-lag']);
const COLD_KB = Number(values['cold-kb']);
const evict = evictor(COLD_KB);
/** Wall time of the path alone, without the eviction between rounds. */
let path = new PathClock();
const CHANNELS = 50;
const PAYLOAD_BYTES = 200;
/** Publish rounds between two drains: how far the queues run ahead of the push streams. */
const DRAIN_EVERY = PER_SECTION === 1 ? 1 : 8;

const cls: ChannelClass = { fault: 'bft', order: 'none', priority: 0, capacityEvents: 1_000_000, ttlMs: 600_000, overflow: 'drop-oldest', persist: 'memory', protection: 'si' };
const channels = Array.from({ length: CHANNELS }, (_, i) => `ch${i}`);
const client = (id: string, publish: string[], subscribe: string[]): ClientInfo => ({ id, publicKey: 'unused', publish, subscribe, admin: false });
const publishers = [client('pub0', ['*'], []), client('pub1', ['*'], [])];
const subscribers = [client('sub0', [], ['*']), client('sub1', [], ['*'])];
const table: ControlTable = { channels: new Map(channels.map((c) => [c, cls])), clients: new Map([...publishers, ...subscribers].map((c) => [c.id, c])) };
const svc = new BrokerService(table, limitsWith({ queuedBytesMax: 2 ** 31 }), () => Date.now());

/** One publisher's frame: a section per channel, PER_SECTION records each (seqs set per send). */
function frameOf(publisher: ClientInfo): Buffer {
  const id = Buffer.from(publisher.id);
  const epoch = randomBytes(8);
  const content = Buffer.alloc(PAYLOAD_BYTES, 0x41);
  const rec = recordBytes(id.length, PAYLOAD_BYTES);
  const chans = channels.map((c) => Buffer.from(c));
  const bytes = chans.reduce((n, c) => n + publishSectionHeaderBytes(c) + PER_SECTION * rec, PUBLISH_FIXED_BYTES);
  const frame = Buffer.alloc(bytes);
  let o = writePublishFrameHeader(frame, CHANNELS, bytes);
  for (const c of chans) {
    o = writePublishSection(frame, o, c, PER_SECTION, PER_SECTION * rec);
    for (let k = 0; k < PER_SECTION; k++) o = writeRecord(frame, o, { publisher: id, epoch, seq: 0, timestampMs: Date.now(), priority: 0, contentType: 0, content });
  }
  return frame;
}

const templates = publishers.map(frameOf);
const lastSeq = publishers.map(() => 0);
const streams = subscribers.flatMap((s) => channels.map((c) => ({ sub: s.id, id: channels.indexOf(c), queue: svc.queueFor(s, c) })));

// One body per publisher, renumbered each round: the service copies each section out of it
// (route), so nothing queued refers to it. A fresh copy per round measured its own page faults
// (47 % of the CPU profile), not the replica's code.
const bodies = templates.map((t) => Buffer.from(t.subarray(4)));

function publishRound(): void {
  publishers.forEach((p, i) => {
    const body = bodies[i]!;
    const { sections } = decodePublish(body);
    for (const s of sections) lastSeq[i] = numberRecords(body, s.recordsAt, lastSeq[i]!, s.recordsEnd);
    svc.publish(p, body, sections);
  });
}

let pushed = 0;
/** A socket that takes every frame at once: what is measured is the replica's code, not TCP. */
function instantConnection(): Connection {
  const conn = {
    writable: true,
    isClosed: false,
    send(frame: Buffer, written?: () => void): void {
      // Counts the events in the frame, as the subscriber would see them.
      for (const s of decodeEvents(frame.subarray(4))) pushed += s.count;
      written?.();
    },
    whenDrained(): void {},
  };
  return conn as unknown as Connection;
}
// The replica's own push path (src/replica/push.ts): a stream per (subscriber, channel) drains
// its queue into the pass's EVENTS frame for its connection, frames from the FramePool.
const scheduler = new PushScheduler([], 0);
const conns = new Map(subscribers.map((s) => [s.id, instantConnection()]));
const pushStreams = streams.map(
  (s) =>
    new PushStream(s.id, channels[s.id]!, s.sub, new QueueSource(s.queue), conns.get(s.sub)!, Number.MAX_SAFE_INTEGER, 0, {
      scheduler,
      pushBatchEventsMax: DEFAULT_LIMITS.pushBatchEventsMax,
      inflightEventsMax: Number.MAX_SAFE_INTEGER,
      nowMs: () => Date.now(),
      faults: [],
    }),
);

function drain(): void {
  for (const ps of pushStreams) ps.schedule();
  scheduler.flushNow();
  // Acknowledged as a subscriber's credits do, ACK_LAG events behind what it was sent.
  for (const ps of pushStreams) ps.grant(0, ps.source.nextPos - 1 - ACK_LAG);
}

function run(rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    path.time(() => {
      publishRound();
      if (i % DRAIN_EVERY === DRAIN_EVERY - 1) drain();
    });
    if (COLD_KB > 0) evict();
  }
  drain();
}

run(Math.ceil(ROUNDS / 10)); // warm-up: let V8 optimise before measuring
pushed = 0;
path = new PathClock();
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
run(ROUNDS);
const wallNs = Number(process.hrtime.bigint() - t0);
const cpu = process.cpuUsage(cpu0);
const events = ROUNDS * publishers.length * CHANNELS * PER_SECTION;
if (pushed !== 2 * events) throw new Error(`pushed ${pushed} copies of ${events} events, expected ${2 * events}`);
console.log(
  `replica path, ${PER_SECTION} event(s) per section${ACK_LAG > 0 ? `, ${ACK_LAG} unacknowledged per stream` : ''}: ${((cpu.user + cpu.system) * 1000 / events).toFixed(0)} ns CPU per event (${(wallNs / events).toFixed(0)} ns wall${COLD_KB > 0 ? `, ${(Number(path.ns) / events).toFixed(0)} ns wall in the path with ${COLD_KB} KiB written between rounds` : ''}), ${events} events, 2 subscribers`,
);
