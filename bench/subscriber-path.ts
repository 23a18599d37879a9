// A subscriber's hot path in one process, without sockets: the EVENTS frames 4 replicas push
// for 2 publishers over 50 channels go through the per-channel voters as Subscriber.onFrame
// feeds them (decodeEvents, Voter.offerSection, StreamAcks), and every delivered event is
// decoded. Replicas interleave the two publishers' sections in different orders, as they do
// when frames arrive at them in different orders. Like replica-path.ts, this is for A/B
// comparisons of the subscriber's own code on a machine too noisy for end-to-end runs.
//
//   node dist/bench/subscriber-path.js [--per-section N] [--rounds R] [--protection si|pks] [--delivered-max N] [--cold-kb K] [--build-only]
//
// --protection pks seals each round's records as a publisher does (one signer per publisher
// and round, trees across channels) and votes with the checker a pks subscriber uses.
//
// --delivered-max is each channel's voterDeliveredEventsMax share (2,000: the default limit of
// 100,000 over 50 channels); what it costs is how much of the voter's tables stays in cache.
//
// --cold-kb writes over K KiB between frames, as the other processes on the cores do between
// a subscriber's wakeups (cold.ts), and reports the wall time of the path alone too.
//
// --build-only builds the same frames and stops: under callgrind, the difference of the two
// is the subscriber's own instructions (docs/performance.md shows the command).

import { parseArgs } from 'node:util';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { decodeEvents, EventsWriter, numberRecords, recordBytes, RecordDecoder, writeRecord, type RecordRef } from '../src/codec/index.js';
import { StreamAcks, Voter } from '../src/client/index.js';
import { BatchSigner, EventChecker, EventSealer, generateIdentity, trailerBytes, PROTECTION_CODE } from '../src/protection/index.js';
import { evictor, PathClock } from './cold.js';

const { values } = parseArgs({
  options: { 'per-section': { type: 'string', default: '12' }, rounds: { type: 'string', default: '400' }, 'delivered-max': { type: 'string', default: '2000' }, protection: { type: 'string', default: 'si' }, 'build-only': { type: 'boolean', default: false }, 'cold-kb': { type: 'string', default: '0' } },
});
const SIGNED = values.protection === 'pks';
if (!SIGNED && values.protection !== 'si') throw new Error('--protection: si or pks');
const identity = generateIdentity();
const signingKey = createPrivateKey(identity.privatePem);
const TRAILER = SIGNED ? trailerBytes('pks', 5) : 0;
const PER_SECTION = Number(values['per-section']);
const ROUNDS = Number(values.rounds);
const CHANNELS = 50;
const REPLICAS = 4;
const PAYLOAD_BYTES = 200;
const EVENT_BYTES_MAX = 256 * 1024;

const publishers = ['pub0', 'pub1'].map((p) => ({ id: Buffer.from(p), epoch: randomBytes(8), seq: 0 }));
const content = Buffer.alloc(PAYLOAD_BYTES, 0x41);

/** One round: per channel, PER_SECTION records of each publisher; per replica, one EVENTS frame body. */
function buildRound(): Buffer[] {
  const byChannel = Array.from({ length: CHANNELS }, () =>
    publishers.map((p) =>
      Array.from({ length: PER_SECTION }, (): RecordRef => {
        const buf = Buffer.allocUnsafe(recordBytes(p.id.length, PAYLOAD_BYTES, TRAILER));
        writeRecord(buf, 0, { publisher: p.id, epoch: p.epoch, seq: ++p.seq, timestampMs: Date.now(), priority: 0, contentType: 0, content, ...(SIGNED ? { protection: PROTECTION_CODE.pks, trailerBytes: TRAILER } : {}) });
        return { buf, at: 0, len: buf.length };
      }),
    ),
  );
  if (SIGNED) seal(byChannel);
  return Array.from({ length: REPLICAS }, (_, r) => {
    const w = new EventsWriter();
    byChannel.forEach((runs, ch) => w.add(ch, 0, r % 2 === 0 ? [...runs[0]!, ...runs[1]!] : [...runs[1]!, ...runs[0]!]));
    return w.take()!.subarray(4);
  });
}

/** Seals each publisher's records of the round as one frame: trees of 32 across channels. */
function seal(byChannel: RecordRef[][][]): void {
  publishers.forEach((_, pi) => {
    const recs = byChannel.map((runs) => runs[pi]!).flat();
    const frame = Buffer.concat(recs.map((r) => r.buf));
    const signer = new BatchSigner(signingKey, 5);
    let at = 0;
    byChannel.forEach((runs, ch) => {
      const bytes = runs[pi]!.reduce((n, r) => n + r.len, 0);
      new EventSealer({ channel: `ch${ch}`, protection: 'pks' }).seal(frame, at, at + bytes, signer);
      at += bytes;
    });
    signer.finish();
    at = 0;
    for (const r of recs) {
      frame.copy(r.buf, 0, at, at + r.len);
      at += r.len;
    }
  });
}

let delivered = 0;
let contentBytes = 0;
const decoder = new RecordDecoder();
const acks = Array.from({ length: CHANNELS }, () => Array.from({ length: REPLICAS }, () => new StreamAcks()));
const pos = Array.from({ length: CHANNELS }, () => new Array<number>(REPLICAS).fill(0));
const voters = Array.from(
  { length: CHANNELS },
  (_, ch) =>
    new Voter(
      {
        replicas: REPLICAS,
        threshold: 2,
        ttlMs: 600_000,
        pendingMax: 4_000,
        deliveredMax: Number(values['delivered-max']),
        pendingMs: 60_000,
        ...(SIGNED ? signedVoting(ch) : {}),
      },
      {
        deliver: (buf, start) => {
          delivered++;
          contentBytes += decoder.decodeAt(buf, start, 'ch').content.length;
        },
        resolve: (replica, p) => acks[ch]![replica]!.resolve(p),
      },
    ),
);

function signedVoting(ch: number): Partial<ConstructorParameters<typeof Voter>[0]> {
  const checker = new EventChecker({ channel: `ch${ch}`, protection: 'pks', publicKeyOf: () => identity.publicKey });
  return { check: (b, s, e) => checker.check(b, s, e), checkReason: () => checker.reason, oneValidEnough: true, blameQuorum: 2, horizonMs: -Infinity };
}

function feed(body: Buffer, replica: number, nowMs: number): void {
  for (const h of decodeEvents(body)) {
    const p = pos[h.streamId]!;
    voters[h.streamId]!.offerSection(replica, body, h.recordsAt, h.recordsEnd, p[replica]!, nowMs, EVENT_BYTES_MAX);
    p[replica]! += h.count;
  }
}

const warmup = Array.from({ length: Math.ceil(ROUNDS / 10) }, buildRound);
const rounds = Array.from({ length: ROUNDS }, buildRound);
if (values['build-only']) process.exit(0);
for (const frames of warmup) frames.forEach((f, r) => feed(f, r, Date.now()));
delivered = 0;
const COLD_KB = Number(values['cold-kb']);
const evict = evictor(COLD_KB);
const path = new PathClock();
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (const frames of rounds) {
  const now = Date.now();
  if (COLD_KB === 0) frames.forEach((f, r) => feed(f, r, now));
  else {
    for (let r = 0; r < frames.length; r++) {
      path.time(() => feed(frames[r]!, r, now));
      evict();
    }
  }
}
const wallNs = Number(process.hrtime.bigint() - t0);
const cpu = process.cpuUsage(cpu0);
const events = ROUNDS * CHANNELS * publishers.length * PER_SECTION;
if (delivered !== events || contentBytes !== (events + warmup.length * CHANNELS * publishers.length * PER_SECTION) * PAYLOAD_BYTES) {
  throw new Error(`delivered ${delivered} of ${events} events`);
}
console.log(
  `subscriber path, ${values.protection}, ${PER_SECTION} event(s) per section from each publisher, ${REPLICAS} replicas: ${(((cpu.user + cpu.system) * 1000) / events).toFixed(0)} ns CPU per event (${(wallNs / events).toFixed(0)} ns wall${COLD_KB > 0 ? `, ${(Number(path.ns) / events).toFixed(0)} ns wall in the path with ${COLD_KB} KiB written between frames` : ''}), ${events} events`,
);
