// Every input parser, as a fuzz target (test/helpers/fuzz.ts holds the harness). Each one
// parses the way production code does, from the same entry point: the replica's and the
// client's frame decoders, each message decoder, the record cursor and decoder the broker and
// the voter use, the ordered envelope, a control change as a replica executes it, a consensus
// message as a replica receives one, and cluster.yaml. Samples are built with the real
// encoders, so a mutation starts from bytes a correct peer sends.

import { createPrivateKey } from 'node:crypto';
import { parse as parseYaml, stringify } from 'yaml';
import { ContentType, FitError, limitsWith, type ChannelClass, type ClientInfo, type ControlTable, type Priority } from '../../src/core/index.js';
import {
  FrameDecoder,
  RecordCursor,
  decodeAck,
  decodeCredit,
  decodeEvents,
  decodeJson,
  decodePublish,
  decodeRecord,
  encodeAck,
  encodeCredit,
  encodeEvents,
  encodeJson,
  encodeOrdered,
  frame,
  controlSignable,
  type ControlOp,
  readOrdered,
  MessageType,
  FRAME_HEADER_BYTES,
} from '../../src/codec/index.js';
import { BrokerService, executeControl } from '../../src/broker/index.js';
import { ConsensusReplica, batchDigest, parseConsensusMessage, refOf, signable, GENESIS, type ConsensusMessage, type Checkpoint, type PrePrepare, type Prepare, type Req, type ViewChange } from '../../src/consensus/index.js';
import { parseConfig } from '../../src/config/index.js';
import { generateIdentity, signBytes } from '../../src/protection/index.js';
import { simSigners } from '../helpers/consensus-sim.js';
import { OrderedVoter, Voter } from '../../src/client/index.js';
import { makeRecord, multiPublishFrame } from '../helpers/records.js';
import { Rng, jsonMutator, mutate, mutateValue, type FuzzTarget } from '../helpers/fuzz.js';
import { MONITOR_TARGETS } from './monitor-targets.js';
import { sealedTarget } from './sealed-target.js';

/** Small, so that mutated lengths cross them often. */
const FRAME_BYTES_MAX = 64 * 1024;
const EVENT_BYTES_MAX = 4 * 1024;

function randomRecord(rng: Rng, publisher = 'probe'): Buffer {
  return makeRecord({
    publisher: rng.chance(0.9) ? publisher : rng.pick(['p', 'x'.repeat(rng.range(1, 255)), 'é']),
    epoch: rng.bytes(8),
    seq: rng.chance(0.8) ? rng.range(1, 1000) : rng.pick([0, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]),
    timestampMs: rng.chance(0.9) ? 1_700_000_000_000 + rng.int(1e9) : rng.pick([0, -1, NaN, Infinity, 1e300]),
    priority: rng.int(4) as Priority,
    contentType: rng.int(3) as ContentType,
    content: rng.bytes(rng.chance(0.9) ? rng.int(200) : rng.range(200, 5000)),
  });
}

const records = (rng: Rng, publisher?: string): Buffer[] => Array.from({ length: rng.range(1, 6) }, () => randomRecord(rng, publisher));

/** Walks the records of [from, to) the way the broker and the voter do; checks what it reports. */
function walkRecords(buf: Buffer, from: number, to: number): number {
  const cur = new RecordCursor(buf, from, EVENT_BYTES_MAX, to);
  let n = 0;
  let last = from;
  while (cur.next()) {
    if (cur.start !== last || cur.end > to || cur.end <= cur.start) throw new Error(`cursor reported record [${cur.start}, ${cur.end}) outside [${last}, ${to})`);
    if (!Number.isSafeInteger(cur.seq) || cur.seq < 0) throw new Error(`cursor reported seq ${cur.seq}`);
    last = cur.end;
    cur.eventKey();
    cur.publisher();
    const ev = decodeRecord(cur.record(), 'alerts');
    if (ev.content.length > cur.end - cur.start) throw new Error('decoded content longer than its record');
    n++;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------

const frameTarget: FuzzTarget = {
  name: 'frame',
  what: 'FrameDecoder: length-prefixed frames fed in random chunks',
  allowed: ['FIT_ERR_FRAME_TOO_LARGE'],
  sample(rng) {
    return Buffer.concat(Array.from({ length: rng.range(1, 4) }, () => frame(rng.bytes(rng.range(1, 300)))));
  },
  run(input, rng) {
    const d = new FrameDecoder(FRAME_BYTES_MAX);
    let out = 0;
    for (let o = 0; o < input.length; ) {
      const chunk = input.subarray(o, o + rng.range(1, 64));
      o += chunk.length;
      for (const f of d.push(chunk)) {
        if (f.length === 0 || f.length > FRAME_BYTES_MAX) throw new Error(`decoder returned a frame of ${f.length} bytes`);
        out += FRAME_HEADER_BYTES + f.length;
      }
      // What it holds is at most one frame in progress: a bad length is refused, not believed.
      if (d.bufferedBytes > FRAME_HEADER_BYTES + FRAME_BYTES_MAX + chunk.length) throw new Error(`decoder buffers ${d.bufferedBytes} bytes`);
    }
    if (out + d.bufferedBytes !== input.length) throw new Error(`decoder lost bytes: ${out} out + ${d.bufferedBytes} held of ${input.length}`);
  },
};

function table(): ControlTable {
  const cls = (order: ChannelClass['order']): ChannelClass => ({ fault: 'bft', order, priority: 0, capacityEvents: 1000, ttlMs: 1e12, overflow: 'drop-oldest', persist: 'memory', protection: 'si' });
  const channels = new Map<string, ChannelClass>([
    ['alerts', cls('none')],
    ['ledger', cls('channel')],
  ]);
  const clients = new Map<string, ClientInfo>([
    ['probe', { id: 'probe', publicKey: ADMIN.publicKey, publish: ['*'], subscribe: ['*'], admin: false }],
    ['admin', { id: 'admin', publicKey: ADMIN.publicKey, publish: [], subscribe: [], admin: true }],
  ]);
  return { channels, clients };
}

const ADMIN_IDENTITY = generateIdentity();
const ADMIN = { publicKey: ADMIN_IDENTITY.publicKey, privateKey: createPrivateKey(ADMIN_IDENTITY.privatePem) };
const LIMITS = limitsWith({ eventBytesMax: EVENT_BYTES_MAX, frameBytesMax: FRAME_BYTES_MAX, queueCapacityEvents: 1000 });

const publishTarget: FuzzTarget = {
  name: 'publish',
  what: 'PUBLISH: decodePublish, then BrokerService.publish as a replica runs it',
  allowed: ['FIT_ERR_MALFORMED', 'FIT_ERR_EVENT_TOO_LARGE', 'FIT_ERR_NOT_AUTHORIZED', 'FIT_ERR_UNKNOWN_CHANNEL'],
  sample(rng) {
    const sections = Array.from({ length: rng.range(1, 3) }, () => ({ channel: rng.chance(0.8) ? 'alerts' : rng.pick(['ledger', 'nope']), records: records(rng) }));
    return multiPublishFrame(sections, rng.u32()).subarray(FRAME_HEADER_BYTES);
  },
  run(input) {
    const p = decodePublish(input);
    for (const s of p.sections) if (s.recordsAt > s.recordsEnd || s.recordsEnd > input.length) throw new Error(`section [${s.recordsAt}, ${s.recordsEnd}) outside the frame`);
    const svc = new BrokerService(table(), LIMITS, () => 1_700_000_000_000);
    svc.publish(svc.client('probe')!, input, p.sections);
  },
};

const ackTarget: FuzzTarget = {
  name: 'ack',
  what: 'ACK: decodeAck',
  allowed: ['FIT_ERR_MALFORMED'],
  sample: (rng) => encodeAck(rng.u32(), rng.u32(), rng.u32()).subarray(FRAME_HEADER_BYTES),
  run: (input) => void decodeAck(input),
};

const creditTarget: FuzzTarget = {
  name: 'credit',
  what: 'CREDIT: decodeCredit',
  allowed: ['FIT_ERR_MALFORMED'],
  sample: (rng) => encodeCredit(rng.u32(), rng.u32(), rng.u32()).subarray(FRAME_HEADER_BYTES),
  run: (input) => void decodeCredit(input),
};

const eventsTarget: FuzzTarget = {
  name: 'events',
  what: 'EVENTS: decodeEvents, then each section as records or ordered envelopes, as a subscriber reads them',
  allowed: ['FIT_ERR_MALFORMED', 'FIT_ERR_EVENT_TOO_LARGE'],
  sample(rng) {
    const ordered = rng.chance(0.4);
    const recs = records(rng).map((r, i) => (ordered ? encodeOrdered(i + 1, r, rng.range(i + 1, 1e6)) : r));
    return encodeEvents(rng.u32(), rng.u32(), recs).subarray(FRAME_HEADER_BYTES);
  },
  run(input) {
    for (const s of decodeEvents(input)) {
      if (s.recordsEnd > input.length) throw new Error('section past the frame');
      // A subscriber knows which kind its stream carries; the fuzzer tries the kind the bytes suggest.
      if (input[s.recordsAt + 4] === 0x4f) walkOrdered(input, s.recordsAt, s.recordsEnd);
      else walkRecords(input, s.recordsAt, s.recordsEnd);
    }
  },
};

function walkOrdered(buf: Buffer, from: number, to: number): void {
  for (let o = from; o < to; ) {
    const v = readOrdered(buf, o, to);
    if (v.end <= o || v.end > to || !Number.isSafeInteger(v.seq) || v.seq < 1) throw new Error(`readOrdered reported [${o}, ${v.end}) seq ${v.seq}`);
    walkRecords(buf, v.recordAt, v.end);
    o = v.end;
  }
}

const orderedTarget: FuzzTarget = {
  name: 'ordered',
  what: 'ordered envelopes: readOrdered and the record inside',
  allowed: ['FIT_ERR_MALFORMED', 'FIT_ERR_EVENT_TOO_LARGE'],
  sample: (rng) => Buffer.concat(records(rng).map((r, i) => encodeOrdered(rng.chance(0.9) ? i + 1 : 2 ** 53 - 1, r, rng.range(1, 2 ** 40)))),
  run: (input) => walkOrdered(input, 0, input.length),
};

const recordTarget: FuzzTarget = {
  name: 'record',
  what: 'event records: RecordCursor and decodeRecord',
  allowed: ['FIT_ERR_MALFORMED', 'FIT_ERR_EVENT_TOO_LARGE'],
  sample: (rng) => Buffer.concat(records(rng)),
  run: (input) => void walkRecords(input, 0, input.length),
};

const controlMessageTarget: FuzzTarget = {
  name: 'json',
  what: 'JSON control messages (HELLO, REQUEST, REPLY...): decodeJson',
  allowed: ['FIT_ERR_MALFORMED'],
  sample(rng) {
    const v = rng.pick([
      { client: 'probe', nonce: rng.bytes(32).toString('base64'), signature: rng.bytes(64).toString('base64') },
      { seq: rng.range(1, 100), method: 'subscribe', channel: 'alerts', credits: 8192 },
      { seq: rng.range(1, 100), ok: false, error: { code: 'FIT_ERR_REFUSED', message: 'no', fields: {} } },
    ]);
    return encodeJson(rng.pick([MessageType.Hello, MessageType.Request, MessageType.Reply]), v).subarray(FRAME_HEADER_BYTES);
  },
  run(input) {
    const v = decodeJson(input);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('decodeJson returned a non-object');
    FitError.fromJSON(v.error);
  },
};

// ---------------------------------------------------------------------------------------------
// JSON inputs: jsonMutator (test/helpers/fuzz.ts) mutates the bytes or the value.

function signedChange(rng: Rng): Buffer {
  const op = rng.pick<ControlOp>([
    { op: 'grant', client: 'probe', channel: 'alerts' },
    { op: 'revoke', client: 'probe', channel: rng.pick(['alerts', 'ledger', 'nope']) },
    { op: 'subscribe', client: rng.pick(['probe', 'ghost']), channel: 'alerts' },
    { op: 'unsubscribe', client: 'probe', channel: 'alerts' },
    { op: 'register', client: rng.pick(['newbie', 'probe']), publicKey: rng.chance(0.8) ? generateIdentity().publicKey : 'AAAA', publish: ['alerts'], subscribe: rng.chance(0.5) ? ['*'] : [] },
  ]);
  const seq = rng.range(1, 2 ** 40);
  const sig = signBytes(ADMIN.privateKey, controlSignable('admin', seq, op)).toString('base64');
  return Buffer.from(JSON.stringify({ admin: 'admin', seq, op, sig }), 'utf8');
}

/** Signing is most of a case's cost: samples come from a pool made once, from a fixed seed. */
function pool(make: (rng: Rng) => Buffer, size = 64): (rng: Rng) => Buffer {
  let made: Buffer[] | undefined;
  return (rng) => rng.pick((made ??= Array.from({ length: size }, (_, i) => make(new Rng(i + 1)))));
}

const controlTarget: FuzzTarget = {
  name: 'control',
  what: 'signed control changes: executeControl as a replica runs a decided one',
  // Refusals are outcomes (every replica must reach the same one), never throws: run() turns a
  // refusal into a throw so it is counted by code, and a real throw into a failure.
  allowed: ['FIT_ERR_MALFORMED', 'FIT_ERR_NOT_AUTHORIZED', 'FIT_ERR_CLIENT_EXISTS', 'FIT_ERR_KEY', 'FIT_ERR_UNKNOWN_CLIENT', 'FIT_ERR_UNKNOWN_CHANNEL'],
  sample: pool(signedChange),
  mutateInput: jsonMutator,
  run(input) {
    const svc = new BrokerService(table(), LIMITS, () => 0);
    let out: ReturnType<typeof executeControl>;
    try {
      out = executeControl(svc, input.toString('utf8'));
    } catch (e) {
      throw new Error(`executeControl threw ${String(e)}; a decided change must become an outcome on every replica`);
    }
    if (out.error !== undefined && !(out.error instanceof FitError)) throw new Error(`executeControl refused with a ${typeof out.error}`);
    if (out.error) throw out.error;
  },
};

// ---------------------------------------------------------------------------------------------

const N = 4;
const SIGNERS = simSigners(N, 11);
const CONSENSUS_OPTIONS = { id: 1, n: N, f: 1, checkpointInterval: 2, logWindow: 8, batchMax: 8, inflightMax: 4, viewChangeTimeoutTicks: 10, resendTicks: 1000, pendingMax: 100, retainDecided: 100 };
const signed = <T extends PrePrepare | Prepare | ViewChange | Checkpoint>(m: T): T => ({ ...m, sig: SIGNERS[m.from]!.sign(signable(m)) });

function consensusSample(rng: Rng): ConsensusMessage {
  const reqs: Req[] = Array.from({ length: rng.range(1, 3) }, (_, i) => ({ client: rng.pick(['c', 'probe/ab']), seq: i + 1, payload: rng.bytes(rng.int(20)).toString('base64') }));
  const refs = reqs.map(refOf);
  const view = rng.int(3);
  const seq = rng.range(1, 6);
  const from = rng.pick([0, 2, 3]);
  const pp = signed<PrePrepare>({ type: 'pre-prepare', view, seq, digest: batchDigest(refs), batch: refs, from: view % N === 1 ? 0 : view % N, sig: '' });
  const prep = signed<Prepare>({ type: 'prepare', view, seq, digest: pp.digest, from, sig: '' });
  const vc = signed<ViewChange>({ type: 'view-change', view: view + 1, stable: GENESIS, prepared: rng.chance(0.5) ? [{ prePrepare: pp, prepares: [prep] }] : [], from, sig: '' });
  return rng.pick<ConsensusMessage>([
    pp,
    prep,
    { type: 'commit', view, seq, digest: pp.digest, from },
    signed<Checkpoint>({ type: 'checkpoint', seq: 2, state: 'x', snapshot: 'y', from, sig: '' }),
    { type: 'stop', view: view + 1, from },
    vc,
    { type: 'new-view', view: view + 1, viewChanges: [vc], prePrepares: [pp], from: (view + 1) % N, sig: 'AAAA' },
    { type: 'fetch', after: rng.int(10), from },
    { type: 'batches', stable: GENESIS, batches: [{ seq: 1, batch: reqs }], executed: 1, view, top: 1, recovering: rng.chance(0.2), from },
    { type: 'hold', refs, from },
    { type: 'body-fetch', refs, from },
    { type: 'bodies', reqs, from },
  ]);
}

const consensusTarget: FuzzTarget = {
  name: 'consensus',
  what: 'CONSENSUS messages: decodeJson, parseConsensusMessage, then a ConsensusReplica receives each that parses',
  allowed: ['FIT_ERR_MALFORMED'],
  // A case is a short conversation (one JSON array, one frame per element), so that a mutated
  // message meets a replica some valid ones have already moved on.
  sample: (rng) => Buffer.from(JSON.stringify(Array.from({ length: rng.range(1, 4) }, () => consensusSample(rng))), 'utf8'),
  mutateInput: jsonMutator,
  run(input, rng) {
    const list = decodeJson(Buffer.concat([Buffer.from([MessageType.Consensus]), Buffer.from('{"m":'), input, Buffer.from('}')])).m;
    const r = new ConsensusReplica(CONSENSUS_OPTIONS, SIGNERS[1]!);
    // Half the time the sender signs what it sends, mutated or not: a faulty replica signs
    // whatever it likes with its own key, so signed nonsense must get as far as the protocol.
    const resign = rng.chance(0.5);
    for (const value of Array.isArray(list) ? list : [list]) {
      const msg = parseConsensusMessage(value);
      if (msg) {
        if (resign && 'sig' in msg && msg.from !== 1 && msg.from < N) msg.sig = SIGNERS[msg.from]!.sign(signable(msg));
        r.receive(msg.from, msg);
      }
      r.tick();
    }
  },
};

// ---------------------------------------------------------------------------------------------

const KEYS = Array.from({ length: 6 }, () => generateIdentity().publicKey);

function clusterDoc(rng: Rng): Record<string, unknown> {
  return {
    version: 1,
    f: 1,
    replicas: [0, 1, 2, 3].map((id) => ({ id, host: '127.0.0.1', port: 7000 + id, publicKey: KEYS[id] })),
    channels: { alerts: { fault: 'bft' }, ledger: { fault: 'bft', order: rng.pick(['channel', 'global']), capacityEvents: 5000 } },
    clients: {
      probe: { publicKey: KEYS[4], publish: ['alerts'] },
      siem: { publicKey: KEYS[5], subscribe: ['*'], admin: rng.chance(0.5) },
    },
    limits: rng.chance(0.5) ? { frameBytesMax: 1024 * 1024, publishLingerMs: 0 } : {},
  };
}

const YAML_SNIPPETS = ['&a [1, 2]', '*a', '!!binary aGVsbG8=', '!!js/function x', '[[[[[[[[[[]]]]]]]]]]', '{', '"\\u0000"', '---\n', '? complex\n: key', '<<: *a', '1e400', '0x10', '.inf', '~'];

function configMutator(rng: Rng, valid: Buffer, other: Buffer): { input: Buffer; applied: string[] } {
  const r = rng.int(3);
  if (r === 0) return mutate(rng, valid, other);
  if (r === 1) {
    const lines = valid.toString('utf8').split('\n');
    const i = rng.int(lines.length);
    lines.splice(i, rng.chance(0.5) ? 1 : 0, lines[i]!.replace(/(:\s*).*$/, `$1${rng.pick(YAML_SNIPPETS)}`));
    return { input: Buffer.from(lines.join('\n'), 'utf8'), applied: ['yaml-line'] };
  }
  return { input: Buffer.from(stringify(mutateValue(rng, parseYaml(valid.toString('utf8')))), 'utf8'), applied: ['value'] };
}

const configTarget: FuzzTarget = {
  name: 'config',
  what: 'cluster.yaml: parseConfig on mutated valid YAML',
  allowed: ['FIT_ERR_CONFIG', 'FIT_ERR_NOT_SUPPORTED'],
  sample: pool((rng) => Buffer.from(stringify(clusterDoc(rng)), 'utf8')),
  mutateInput: configMutator,
  run(input) {
    const c = parseConfig(input.toString('utf8'), '/etc/fitbroker/cluster.yaml', '/etc/fitbroker');
    for (const [k, v] of Object.entries(c.limits)) if (!Number.isSafeInteger(v) || v < 0) throw new Error(`limit ${k} loaded as ${v}`);
  },
};

// ---------------------------------------------------------------------------------------------
// The subscriber's voters read EVENTS sections from replicas that may be faulty: the parse
// and the vote together. Three correct replicas send the true section; replica 3 sends a
// mutated one (twice, around them). Each true event must be delivered exactly once, nothing
// else ever, and the faulty section may only be refused with an allowed code.

const TRUTH_RNG = new Rng(0x5eed);
const TRUTH: Buffer[] = Array.from({ length: 6 }, (_, i) => makeRecord({ publisher: 'probe', epoch: Buffer.from('0102030405060708', 'hex'), seq: i + 1, timestampMs: 1_700_000_000_000, content: TRUTH_RNG.bytes(20 + i * 7) }));
const TRUTH_SECTION = Buffer.concat(TRUTH);

function offerAll(offer: (replica: number, section: Buffer) => void, faulty: Buffer, truth: Buffer): FitError | undefined {
  let refusal: FitError | undefined;
  const fromFaulty = (): void => {
    try {
      offer(3, faulty);
    } catch (e) {
      if (!(e instanceof FitError)) throw e;
      refusal = e;
    }
  };
  fromFaulty();
  offer(0, truth);
  fromFaulty();
  offer(1, truth);
  offer(2, truth);
  return refusal;
}

const voterTarget: FuzzTarget = {
  name: 'voter',
  what: 'Voter.offerSection: a faulty replica\'s mutated EVENTS section voted beside three correct ones',
  allowed: ['FIT_ERR_MALFORMED', 'FIT_ERR_EVENT_TOO_LARGE'],
  sample: (rng) => (rng.chance(0.7) ? TRUTH_SECTION : Buffer.concat(TRUTH.slice(rng.int(3), 3 + rng.int(4)))),
  run(input) {
    const delivered: string[] = [];
    const v = new Voter({ replicas: 4, threshold: 2, ttlMs: 1e12, pendingMax: 1000, deliveredMax: 1000, pendingMs: 60_000 }, { deliver: (buf, a, b) => delivered.push(buf.toString('hex', a, b)), resolve: () => undefined });
    const pos = [0, 0, 0, 0];
    const refusal = offerAll(
      (r, section) => {
        const buf = Buffer.from(section); // each copy in its own frame buffer, as off the wire
        const before = pos[r]!;
        pos[r]! += 64;
        v.offerSection(r, buf, 0, buf.length, before, 1_700_000_000_000, EVENT_BYTES_MAX);
      },
      input,
      TRUTH_SECTION,
    );
    const want = TRUTH.map((t) => t.toString('hex')).sort();
    if (JSON.stringify([...delivered].sort()) !== JSON.stringify(want)) throw new Error(`delivered ${delivered.length} events, not the ${want.length} true ones once each`);
    if (refusal) throw refusal;
  },
};

const ORDERED_TRUTH = TRUTH.map((r, i) => encodeOrdered(i + 1, r));
const ORDERED_TRUTH_SECTION = Buffer.concat(ORDERED_TRUTH);

const orderedVoterTarget: FuzzTarget = {
  name: 'ordered-voter',
  what: 'OrderedVoter.offerSection: a faulty replica\'s mutated ordered section beside three correct ones',
  allowed: ['FIT_ERR_MALFORMED'],
  sample: (rng) => (rng.chance(0.7) ? ORDERED_TRUTH_SECTION : Buffer.concat(ORDERED_TRUTH.slice(rng.int(3), 3 + rng.int(4)))),
  run(input) {
    const delivered: string[] = [];
    const v = new OrderedVoter({ replicas: 4, threshold: 2, pendingMax: 64, gapWaitMs: 60_000, from: 1 }, { deliver: (seq, buf, a, b) => delivered.push(`${seq}:${buf.toString('hex', a, b)}`), resolve: () => undefined });
    const pos = [0, 0, 0, 0];
    // The ordered voter counts a malformed section against its replica instead of throwing.
    offerAll(
      (r, section) => {
        const buf = Buffer.from(section);
        const before = pos[r]!;
        pos[r]! += 64;
        v.offerSection(r, buf, 0, buf.length, before, 1_700_000_000_000);
      },
      input,
      ORDERED_TRUTH_SECTION,
    );
    const want = TRUTH.map((t, i) => `${i + 1}:${t.toString('hex')}`);
    if (JSON.stringify(delivered) !== JSON.stringify(want)) throw new Error(`delivered seqs ${delivered.map((d) => d.split(':')[0]).join(',')}, not 1..6 once each with the true records`);
  },
};

export const TARGETS: readonly FuzzTarget[] = [frameTarget, publishTarget, ackTarget, creditTarget, eventsTarget, orderedTarget, recordTarget, controlMessageTarget, controlTarget, consensusTarget, configTarget, voterTarget, orderedVoterTarget, sealedTarget, ...MONITOR_TARGETS];

export function targetNamed(name: string): FuzzTarget {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`no fuzz target "${name}"; the targets are ${TARGETS.map((x) => x.name).join(', ')}`);
  return t;
}
