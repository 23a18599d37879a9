// A deterministic simulator for the ordering protocol (src/consensus): n replicas of the real
// ConsensusReplica, a network that loses, duplicates, delays, reorders and partitions messages
// from a seeded generator, replicas that crash, and up to f Byzantine ones that equivocate,
// forge, replay old messages or stay silent. With `journal`, every replica keeps a journal it
// writes ahead of what it sends, flushed at random moments, and replicas crash and restart
// from it — one, several or all n at once (`outages`). After every step it checks that no two
// correct replicas decided different batches at one seq, that no seq is ever decided
// differently from the first time (restarts included), and that no correct replica votes in a
// view below one it had sent a VIEW-CHANGE for (restarts from its journal included); at the end, that every client
// request was decided once the network had healed. One seed replays one schedule exactly.

import { createHash } from 'node:crypto';
import {
  batchDigest,
  ConsensusReplica,
  refOf,
  signable,
  type ConsensusMessage,
  type ConsensusOptions,
  type Decision,
  type Output,
  type PrePrepare,
  type Prepare,
  type Ref,
  type Req,
  type Signer,
  type StateMachine,
  type ViewChange,
  GENESIS,
  MemoryJournalStore,
} from '../../src/consensus/index.js';
import { mulberry32 } from '../../src/core/index.js';

/** The seeded generator the simulation draws from (mulberry32, shared with src/core/prng.ts). */
export const rng: (seed: number) => () => number = mulberry32;

/** Signatures nobody can forge for another replica: a hash under each replica's secret. */
/**
 * What the unit tests of one ConsensusReplica drive it with: 4 replicas, f = 1, a short window,
 * and a request and a signed PRE-PREPARE built the way a leader would (view v's leader is v % 4).
 */
export const CORE_N = 4;
export const CORE_OPTIONS: ConsensusOptions = {
  id: 1,
  n: CORE_N,
  f: 1,
  checkpointInterval: 2,
  logWindow: 8,
  batchMax: 8,
  inflightMax: 4,
  viewChangeTimeoutTicks: 10,
  resendTicks: 1000,
  pendingMax: 100,
  retainDecided: 100,
};

export function coreFixture(seed: number): {
  signers: Signer[];
  sign<T extends { from: number; sig: string }>(m: T): T;
  req(seq: number): Req;
  prePrepare(view: number, seq: number, batch: Req[]): PrePrepare;
} {
  const signers = simSigners(CORE_N, seed);
  const sign = <T extends { from: number; sig: string }>(m: T): T => ({ ...m, sig: signers[m.from]!.sign(signable(m as unknown as Parameters<typeof signable>[0])) });
  return {
    signers,
    sign,
    req: (seq) => ({ client: 'c', seq, payload: `p${seq}` }),
    prePrepare: (view, seq, batch) => {
      const refs = batch.map(refOf);
      return sign<PrePrepare>({ type: 'pre-prepare', view, seq, digest: batchDigest(refs), batch: refs, from: view % CORE_N, sig: '' });
    },
  };
}

export function simSigners(n: number, seed: number): Signer[] {
  const secret = (i: number): string => `secret-${seed}-${i}`;
  const mac = (i: number, bytes: string): string => createHash('sha256').update(secret(i)).update(bytes).digest('base64');
  return Array.from({ length: n }, (_, i) => ({ sign: (bytes: string) => mac(i, bytes), verify: (r: number, bytes: string, sig: string) => r >= 0 && r < n && mac(r, bytes) === sig }));
}

/**
 * The application each simulated replica runs: the requests it executed, in order. Its
 * snapshot is that whole list, so a replica that installs one from another replica (state
 * transfer) still accounts for every request, and the lists of two replicas must agree on
 * their common prefix whatever each of them installed.
 */
export class SimMachine implements StateMachine {
  executed: string[] = [];
  /** Seqs of the snapshots this replica installed. */
  readonly installs: number[] = [];

  execute(d: Decision): void {
    for (const q of d.requests) this.executed.push(`${q.client}#${q.seq}#${q.payload}`);
  }

  snapshot(): string {
    return JSON.stringify(this.executed);
  }

  restore(seq: number, snapshot: string): void {
    this.executed = JSON.parse(snapshot) as string[];
    this.installs.push(seq);
  }
}

/**
 * silent: sends nothing; equivocate: different batches or digests to different replicas;
 * forge: messages under other names and bad signatures; replay: old messages again; flood:
 * FETCHes in a loop and lonely view changes; slow: its messages later and later (SLOW_TICKS),
 * a leader that stays under the adaptive timeout by slowing down by degrees.
 */
export type Byzantine = 'silent' | 'equivocate' | 'forge' | 'replay' | 'flood' | 'slow';

/**
 * How late a slow replica's messages get: from its `slowFrom` on, one tick later every
 * SLOW_RAMP ticks, up to SLOW_TICKS. Slowing down by degrees is how a leader stays under a
 * timeout that adapts to how long decisions take.
 */
export const SLOW_TICKS = 100;
const SLOW_RAMP = 5;

export interface SimOptions {
  seed: number;
  n?: number;
  f?: number;
  /** Replicas that behave as given (at most f of them together with `crash`). */
  byzantine?: Record<number, Byzantine>;
  /** A 'slow' replica starts slowing down at this tick (0: from the start), as one an intruder took over mid-run. */
  slowFrom?: number;
  /** Replicas that stop at a tick. */
  crash?: Record<number, number>;
  /** Crashed replicas that come back at a tick, without any of their consensus state. */
  restart?: Record<number, number>;
  /**
   * The share of requests a faulty client sends to a random subset of replicas only. Those sent
   * to f+1 replicas that are correct and never crash must be decided; the others may or may not
   * be, but at most once, and never block the rest.
   */
  sparse?: number;
  /**
   * The share of requests a faulty client sends as two bodies under one seq: one to the
   * replicas in `twoFacedTo` (default: each replica by a coin), the other to the rest. Either
   * body may be decided, the request at most once; it must be when f+1 dependable replicas hold
   * one body; and it must not set off a leader change.
   */
  twoFaced?: number;
  twoFacedTo?: number[];
  /** Every replica starts as a process does: not knowing whether it ran before (`restarted`). */
  coldStart?: boolean;
  /**
   * Every replica keeps a journal (MemoryJournalStore) and writes ahead: an output's messages
   * and decisions wait until the journal is flushed, which happens at the end of a tick with
   * probability FLUSH_CHANCE (a disk that is sometimes slower than a tick). A replica that
   * crashes loses what was not flushed, but for a random prefix of it (commits the flush had
   * not confirmed yet). Clients resend their requests until 2f+1 replicas
   * executed them (a publisher waits for that many acknowledgements). `restart` then means a
   * replica back with an empty journal (a replaced disk): amnesiac, as without a journal.
   */
  journal?: boolean;
  /**
   * With `journal`: replicas down from tick `from` to `to` (excluded), then back from their
   * journals. Not a fault: a correct replica that crashed and restarted. Overlapping outages
   * may take every replica down at once (a whole-cluster restart).
   */
  outages?: Outage[];
  /**
   * With `journal`, or attestations that end (consensus.attestationSeqs): clients resend what
   * 2f+1 replicas have not executed (default); false: each request is sent once, as by a
   * client that died. (A replica that lets a body go tells its client, which sends it again.)
   */
  clientResend?: boolean;
  /**
   * A faulty client's requests that never become ready: `requests` of them at tick `at`, each
   * to one replica alone (round robin). They may never be decided; they must not keep the
   * correct clients' requests out, however small pendingMax.
   */
  lonely?: { requests: number; at: number };
  clients?: number;
  requestsPerClient?: number;
  /** Ticks over which clients issue their requests. */
  issueTicks?: number;
  loss?: number;
  duplicate?: number;
  /** Delivery delay in ticks: 1..maxDelay. */
  maxDelay?: number;
  /** Network faults stop here: no loss, no partition from this tick on. */
  healAt?: number;
  /** Replicas cut off from the rest until healAt, from tick `partitionFrom`. */
  partition?: number[];
  partitionFrom?: number;
  /**
   * The partitioned replicas are cut off from clients too (their whole network is down): the
   * requests issued meanwhile never reach them, so they have nothing waiting that would make
   * them ask the others what was decided.
   */
  partitionClients?: boolean;
  ticks?: number;
  consensus?: Partial<ConsensusOptions>;
}

export interface Outage {
  replicas: number[];
  from: number;
  to: number;
}

/** With `journal`: the chance that a replica's journal is flushed at the end of a tick that left something unflushed. */
export const FLUSH_CHANCE = 0.6;
/** With `journal`: ticks between a client's resends of a request fewer than 2f+1 replicas executed. */
export const CLIENT_RESEND_TICKS = 40;

export interface SimResult {
  decided: Map<number, Decision>[];
  replicas: ConsensusReplica[];
  machines: SimMachine[];
  correct: number[];
  /** Replicas whose decisions are checked: the correct ones and the restarted ones. */
  checked: number[];
  /** Replicas expected to have decided every request at the end: the checked ones still up. */
  live: number[];
  /** Requests that must be decided (`client#seq`); the others may be decided once, or not at all. */
  must: Set<string>;
  requests: Req[];
  messages: number;
  /** Ticks at which some replica decided, in order (for throughput and progress checks). */
  decisionTicks: number[];
  /** Requests (`client#seq`) 2f+1 replicas executed: acknowledged to their client, so they must never be lost. */
  acknowledged: Set<string>;
  /** Every seq any checked replica ever decided (and acted on), with the batch, across restarts. */
  ever: Map<number, string>;
  /** With `journal`: the journals, and the journal restarts (outages ended) that happened. */
  journals: MemoryJournalStore[];
  recoveries: number;
  /**
   * With `journal`: each replica killed, when, and where it stood (to tell a crash in the middle
   * of a view change); `viewChangeSent`: its VIEW-CHANGE for the view change under way had gone
   * out, so it had promised to prepare nothing more in `view`.
   */
  kills: { tick: number; replica: number; view: number; changingView: boolean; viewChangeSent: boolean; lastDecided: number; unflushed: number; decidedBefore: Map<number, string> }[];
  /** With `journal`: each replica back from its journal, when, and whether it came back passive (recovering). */
  recovered: { tick: number; replica: number; recovering: boolean }[];
}

interface InFlight {
  at: number;
  order: number;
  from: number;
  to: number;
  msg: ConsensusMessage;
}

export class SafetyViolation extends Error {}

const IN_FLIGHT_MAX = 100_000;

const clone = <T>(m: T): T => structuredClone(m);

export function simulate(so: SimOptions): SimResult {
  const n = so.n ?? 4;
  const f = so.f ?? 1;
  const random = rng(so.seed);
  const byz = so.byzantine ?? {};
  const crash = so.crash ?? {};
  const faulty = new Set([...Object.keys(byz), ...Object.keys(crash)].map(Number));
  if (faulty.size > f) throw new Error(`simulation bug: ${faulty.size} faulty replicas for f=${f}`);
  const correct = Array.from({ length: n }, (_, i) => i).filter((i) => !faulty.has(i));
  const restart = so.restart ?? {};
  for (const i of Object.keys(restart).map(Number)) if (crash[i] === undefined || restart[i]! <= crash[i]!) throw new Error(`simulation bug: replica ${i} restarts without crashing first`);
  const checked = Array.from({ length: n }, (_, i) => i).filter((i) => !faulty.has(i) || restart[i] !== undefined);
  const signers = simSigners(n, so.seed);
  const options: ConsensusOptions = {
    id: 0,
    n,
    f,
    checkpointInterval: 8,
    logWindow: 32,
    batchMax: 8,
    inflightMax: 4,
    viewChangeTimeoutTicks: 30,
    resendTicks: 10,
    pendingMax: 10_000,
    retainDecided: 1_000,
    ...so.consensus,
  };
  const journaling = so.journal === true;
  if (!journaling && (so.outages?.length ?? 0) > 0) throw new Error('simulation bug: outages need journal: true');
  const outages = so.outages ?? [];
  for (const o of outages) for (const i of o.replicas) if (crash[i] !== undefined && (restart[i] === undefined || o.from <= restart[i]!)) throw new Error(`simulation bug: replica ${i} has an outage while crashed`);
  const machines = Array.from({ length: n }, () => new SimMachine());
  const journals = Array.from({ length: n }, () => new MemoryJournalStore());
  /** Outputs waiting for their replica's journal to be flushed, in order. */
  const held: Output[][] = Array.from({ length: n }, () => []);
  const replicas = Array.from({ length: n }, (_, i) => new ConsensusReplica({ ...options, id: i, restarted: so.coldStart === true, journaling }, signers[i]!, machines[i]));
  const decided = Array.from({ length: n }, () => new Map<number, Decision>());
  const decisionTicks: number[] = [];
  const ever = new Map<number, string>();
  /** Per request (`client#seq`), the replicas that executed it; 2f+1 acknowledge it to its client. */
  const acks = new Map<string, Set<number>>();
  const acknowledged = new Set<string>();
  let recoveries = 0;
  const kills: SimResult['kills'] = [];
  const recovered: SimResult['recovered'] = [];
  const maxDelay = so.maxDelay ?? 3;
  const healAt = so.healAt ?? 0;
  const ticks = so.ticks ?? 600;
  const queue: InFlight[] = [];
  let order = 0;
  let messages = 0;
  let now = 0;
  /** Every message a replica sent, for replaying replicas. */
  const seen: ConsensusMessage[] = [];
  /**
   * A VIEW-CHANGE(t) promises that its sender votes (PRE-PREPARE, PREPARE, COMMIT) in no view
   * below t ever again (PBFT's VIEW-CHANGE carries every certificate it will ever have there),
   * restarts from its journal included: that is what the journal's 'leave' entry is for. Per
   * replica, its latest VIEW-CHANGE made and sent (to tell a kill in the middle of a view
   * change), and the highest view it sent a VIEW-CHANGE for (-1: none; a replica back without
   * its journal starts again at -1, and is counted among the f until it is past its old votes).
   */
  const viewChange = Array.from({ length: n }, (): { made?: ConsensusMessage; sent?: ConsensusMessage } => ({}));
  const promised = new Array<number>(n).fill(-1);

  const cut = (a: number, b: number): boolean => {
    if (!so.partition || now >= healAt || now < (so.partitionFrom ?? 0)) return false;
    return so.partition.includes(a) !== so.partition.includes(b);
  };
  const offline = (i: number): boolean => so.partitionClients === true && so.partition !== undefined && so.partition.includes(i) && now < healAt && now >= (so.partitionFrom ?? 0);

  const post = (from: number, to: number, msg: ConsensusMessage): void => {
    if (to === from) return;
    messages++;
    if (now < healAt && random() < (so.loss ?? 0)) return;
    const copies = now < healAt && random() < (so.duplicate ?? 0) ? 2 : 1;
    const late = byz[from] === 'slow' ? Math.max(0, Math.min(SLOW_TICKS, Math.floor((now - (so.slowFrom ?? 0)) / SLOW_RAMP))) : 0;
    for (let c = 0; c < copies; c++) queue.push({ at: now + 1 + late + Math.floor(random() * maxDelay), order: order++, from, to, msg: clone(msg) });
    // Correct replicas send a bounded number of messages per tick; a flood this big means one
    // faulty replica found a way to make the others amplify it.
    if (queue.length > IN_FLIGHT_MAX) throw new Error(`message explosion: ${queue.length} messages in flight at tick ${now}`);
  };

  const emit = (from: number, out: Output): void => {
    for (const d of out.decided) {
      if (!checked.includes(from)) continue;
      decided[from]!.set(d.seq, d);
      decisionTicks.push(now);
      // Decided is for good: whatever restarts came between, a seq never decides another batch.
      const text = decisionText(d);
      const before = ever.get(d.seq);
      if (before !== undefined && before !== text) throw new SafetyViolation(`replica ${from} decided seq ${d.seq} as ${text} at tick ${now}, but it was decided as ${before} before`);
      ever.set(d.seq, text);
      for (const q of d.requests) {
        const k = `${q.client}#${q.seq}`;
        const by = acks.get(k) ?? acks.set(k, new Set()).get(k)!;
        by.add(from);
        if (by.size >= 2 * f + 1) acknowledged.add(k);
      }
    }
    const kind = byz[from];
    if (kind === 'silent' || !alive(from)) return;
    for (const { to, msg } of out.messages) {
      if (msg.type === 'view-change') {
        viewChange[from]!.sent = msg;
        if (checked.includes(from)) promised[from] = Math.max(promised[from]!, msg.view);
      }
      if ((msg.type === 'pre-prepare' || msg.type === 'prepare' || msg.type === 'commit') && msg.view < promised[from]!) {
        throw new SafetyViolation(`replica ${from} sent a ${msg.type.toUpperCase()} in view ${msg.view} at tick ${now}, after it had sent a VIEW-CHANGE for view ${promised[from]}${kills.some((k) => k.replica === from) ? ' (killed and restarted from its journal since)' : ''}`);
      }
      if (kind === 'replay') seen.push(msg);
      const targets = to === 'all' ? Array.from({ length: n }, (_, i) => i) : [to];
      for (const t of targets) post(from, t, byzantineTwist(kind, from, t, msg));
    }
    if (kind === 'forge' || kind === 'flood') for (const t of Array.from({ length: n }, (_, i) => i)) for (const m of lies(kind, from, t)) post(from, t, m);
    if (kind === 'replay' && seen.length > 0) for (let k = 0; k < 3; k++) post(from, Math.floor(random() * n), seen[Math.floor(random() * seen.length)]!);
  };

  /** An equivocating replica sends half the replicas a different batch, or a different digest. */
  const byzantineTwist = (kind: Byzantine | undefined, from: number, to: number, msg: ConsensusMessage): ConsensusMessage => {
    if (kind !== 'equivocate' || to % 2 === 0) return msg;
    if (msg.type === 'pre-prepare') {
      const batch: Ref[] = [refOf({ client: 'evil', seq: msg.seq, payload: `forged at ${msg.seq}` }), ...msg.batch.slice(1)];
      const m: PrePrepare = { ...msg, batch, digest: batchDigest(batch), sig: '' };
      m.sig = signers[from]!.sign(signable(m));
      return m;
    }
    if (msg.type === 'prepare' || msg.type === 'commit') {
      const m = { ...msg, digest: createHash('sha256').update(`lie ${msg.seq}`).digest('hex') } as Prepare;
      if (msg.type === 'prepare') m.sig = signers[from]!.sign(signable(m));
      return m;
    }
    return msg;
  };

  /** Forged messages (other senders' names, bad signatures) and a faulty replica's lonely view changes. */
  const lies = (kind: Byzantine, from: number, to: number): ConsensusMessage[] => {
    const other = (from + 1 + Math.floor(random() * (n - 1))) % n;
    const seq = 1 + Math.floor(random() * 20);
    if (kind === 'forge') {
      return [
        { type: 'commit', view: Math.floor(random() * 3), seq, digest: 'x'.repeat(64), from: other },
        { type: 'prepare', view: 0, seq, digest: 'y'.repeat(64), from: other, sig: 'forged' },
        { type: 'pre-prepare', view: 0, seq, digest: batchDigest([]), batch: [], from: 0, sig: 'forged' },
        { type: 'checkpoint', seq: 8, state: 'z'.repeat(64), snapshot: 'z'.repeat(64), from: other, sig: 'forged' },
      ];
    }
    // flood: FETCHes in a loop (each answered with up to a window of batches, so answering
    // every one would be an amplifier), and now and then votes and a valid view change for
    // some high view, alone: others must not follow one replica.
    const fetch: ConsensusMessage = { type: 'fetch', after: 0, from };
    if (random() >= 0.05) return [fetch];
    const view = 5 + Math.floor(random() * 50);
    const vc: ViewChange = { type: 'view-change', view, stable: GENESIS, prepared: [], from, sig: '' };
    vc.sig = signers[from]!.sign(signable(vc));
    void to;
    return [fetch, { type: 'stop', view, from }, vc];
  };

  const requests: Req[] = [];
  const clients = so.clients ?? 3;
  const perClient = so.requestsPerClient ?? 10;
  const issueTicks = so.issueTicks ?? 200;
  const schedule = new Map<number, { req: Req; to: number[] }[]>();
  const must = new Set<string>();
  const everyone = Array.from({ length: n }, (_, i) => i);
  const dependable = everyone.filter((i) => !faulty.has(i));
  for (let c = 0; c < clients; c++) {
    for (let s = 1; s <= perClient; s++) {
      const at = Math.floor((s / (perClient + 1)) * issueTicks + random() * 5);
      const req: Req = { client: `c${c}`, seq: s, payload: `c${c}-${s}`, urgent: random() < 0.1 };
      const to = random() < (so.sparse ?? 0) ? everyone.filter(() => random() < 0.5) : everyone;
      requests.push(req);
      const sends = [{ req, to }];
      // Drawn only when asked for, so that every other schedule stays as it was.
      if (so.twoFaced !== undefined && random() < so.twoFaced) {
        const other = so.twoFacedTo ?? to.filter(() => random() < 0.5);
        sends[0]!.to = to.filter((i) => !other.includes(i));
        sends.push({ req: { ...req, payload: `${req.payload}'` }, to: to.filter((i) => other.includes(i)) });
      }
      if (sends.some((x) => x.to.filter((i) => dependable.includes(i)).length >= f + 1)) must.add(`${req.client}#${req.seq}`);
      for (const x of sends) (schedule.get(at) ?? schedule.set(at, []).get(at)!).push(x);
    }
  }
  for (let s = 1; s <= (so.lonely?.requests ?? 0); s++) {
    const req: Req = { client: 'lonely', seq: s, payload: `lonely-${s}` };
    requests.push(req);
    const at = so.lonely!.at;
    (schedule.get(at) ?? schedule.set(at, []).get(at)!).push({ req, to: [s % n] });
  }
  /** Replicas let attestations end, and clients that learn of it send again. */
  const expiring = so.consensus?.attestationSeqs !== undefined && so.consensus.attestationSeqs !== Infinity;
  const resending = (journaling || expiring) && so.clientResend !== false;

  const wanted = must;
  const down = (i: number): boolean => outages.some((o) => o.replicas.includes(i) && now >= o.from && now < o.to);
  const alive = (i: number): boolean => (crash[i] === undefined || now < crash[i]! || (restart[i] !== undefined && now >= restart[i]!)) && !down(i);
  const lastOutage = Math.max(0, ...outages.map((o) => o.to));

  /** With a journal, an output waits for the flush if it has entries, or if earlier ones wait (order). */
  const deliver = (i: number, out: Output): void => {
    for (const { msg } of out.messages) if (msg.type === 'view-change' && msg.from === i) viewChange[i]!.made = msg;
    if (!journaling) return emit(i, out);
    if (out.journal.length > 0) journals[i]!.append(out.journal);
    if (held[i]!.length > 0 || journals[i]!.pending > 0) held[i]!.push(out);
    else emit(i, out);
  };
  const flushJournals = (): void => {
    for (let i = 0; i < n; i++) {
      if (!alive(i) || (held[i]!.length === 0 && journals[i]!.pending === 0) || random() >= FLUSH_CHANCE) continue;
      journals[i]!.sync();
      const outs = held[i]!;
      held[i] = [];
      for (const o of outs) emit(i, o);
    }
  };
  const start = (i: number, restarted: boolean): void => {
    machines[i] = new SimMachine();
    replicas[i] = new ConsensusReplica({ ...options, id: i, restarted, journaling }, signers[i]!, machines[i]);
    decided[i] = new Map();
    if (journaling) deliver(i, replicas[i]!.recover(journals[i]!.load()));
  };
  /** Client resends (journal only): every request fewer than 2f+1 replicas executed, to those that did not. */
  const issued: { req: Req; to: number[]; at: number }[] = [];

  const wasDown = new Array<boolean>(n).fill(false);
  if (journaling) for (let i = 0; i < n; i++) deliver(i, replicas[i]!.recover([]));
  for (now = 0; now < ticks; now++) {
    for (let i = 0; i < n; i++) {
      if (restart[i] === now) {
        // Back without its state: with a journal, a replaced disk (an empty journal). Amnesiac,
        // it is counted among the f faulty until it is past every vote it may have given.
        journals[i] = new MemoryJournalStore();
        held[i] = [];
        viewChange[i] = {};
        promised[i] = -1;
        start(i, true);
      }
      const isDown = down(i);
      if (isDown && !wasDown[i]) {
        // Killed: what its journal had not flushed is lost, and so is every output waiting for it.
        const st = replicas[i]!.status;
        const decidedBefore = kills.at(-1)?.tick === now ? kills.at(-1)!.decidedBefore : new Map(ever);
        // The VIEW-CHANGE of the view change under way went out (one made later may not have,
        // and an older one may be for a view left long ago): it left st.view for good.
        const vc = viewChange[i]!;
        const viewChangeSent = st.changingView && vc.sent !== undefined && vc.sent === vc.made && vc.sent.type === 'view-change' && vc.sent.view > st.view;
        kills.push({ tick: now, replica: i, view: st.view, changingView: st.changingView, viewChangeSent, lastDecided: st.lastDecided, unflushed: journals[i]!.pending, decidedBefore });
        // Some of the appends not flushed may have been committed: a prefix of them survives.
        journals[i]!.crash(Math.floor(random() * (journals[i]!.pending + 1)));
        held[i] = [];
      } else if (!isDown && wasDown[i]) {
        recoveries++;
        start(i, false);
        recovered.push({ tick: now, replica: i, recovering: replicas[i]!.status.recovering });
      }
      wasDown[i] = isDown;
    }
    for (const { req, to } of schedule.get(now) ?? []) {
      for (const i of to) if (alive(i) && !offline(i)) deliver(i, replicas[i]!.submit(req));
      // The faulty client sends once.
      if (resending && req.client !== 'lonely') issued.push({ req, to, at: now });
    }
    if (resending && now % CLIENT_RESEND_TICKS === 0) {
      for (const q of issued) {
        const k = `${q.req.client}#${q.req.seq}`;
        if (acknowledged.has(k) || now - q.at < CLIENT_RESEND_TICKS) continue;
        // A client that keeps resending to too few replicas refills pending as fast as its
        // requests are let go (attestations that end are no bound per client): with them,
        // only the requests sent to enough replicas are resent.
        if (expiring && !must.has(k)) continue;
        for (const i of q.to) if (alive(i) && !offline(i) && !acks.get(k)?.has(i)) deliver(i, replicas[i]!.submit(q.req));
      }
    }
    const due = queue.filter((m) => m.at <= now);
    if (due.length > 0) {
      const rest = queue.filter((m) => m.at > now);
      queue.length = 0;
      for (const m of rest) queue.push(m);
      // Seeded reordering among what arrives in the same tick.
      due.sort((a, b) => a.order - b.order);
      for (let i = due.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [due[i], due[j]] = [due[j]!, due[i]!];
      }
      for (const m of due) {
        if (!alive(m.to) || cut(m.from, m.to)) continue;
        deliver(m.to, replicas[m.to]!.receive(m.from, m.msg));
      }
    }
    for (let i = 0; i < n; i++) if (alive(i)) deliver(i, replicas[i]!.tick());
    if (journaling) flushJournals();
    checkSafety(decided, checked, machines);
    // Done early once the network healed, every request was issued, every replica is back and every live checked replica decided them all.
    if (now > Math.max(healAt, issueTicks + 5, lastOutage) && now % 25 === 0 && checked.every((r) => !alive(r) || (executedCount(machines[r]!, wanted) === requests.length && executedAll(machines[r]!, acknowledged)))) break;
  }
  const live = checked.filter(alive);
  return { decided, replicas, machines, correct, checked, live, must, requests, messages, decisionTicks, acknowledged, ever, journals, recoveries, kills, recovered };
}

const reqOf = (entry: string): string => entry.slice(0, entry.lastIndexOf('#'));

/** How many of the clients' requests a replica executed (a faulty leader's made-up ones aside). */
const executedCount = (m: SimMachine, wanted: Set<string>): number => m.executed.filter((e) => wanted.has(reqOf(e))).length;

/** Whether a replica executed every one of these requests. */
const executedAll = (m: SimMachine, reqs: Set<string>): boolean => {
  if (reqs.size === 0) return true;
  const done = new Set(m.executed.map(reqOf));
  for (const k of reqs) if (!done.has(k)) return false;
  return true;
};

const decisionText = (d: Decision): string => JSON.stringify(d.requests.map((r) => [r.client, r.seq, r.payload]));

/**
 * No two correct replicas decided different batches at one seq; each decided log has no gap
 * above the last snapshot its replica installed (a snapshot stands for every seq below it).
 */
export function checkSafety(decided: Map<number, Decision>[], correct: number[], machines: SimMachine[]): void {
  const bySeq = new Map<number, { text: string; replica: number }>();
  for (const r of correct) {
    const log = decided[r]!;
    for (const [seq, d] of log) {
      const text = decisionText(d);
      const other = bySeq.get(seq);
      if (other && other.text !== text) throw new SafetyViolation(`replicas ${other.replica} and ${r} decided different batches at seq ${seq}: ${other.text} vs ${text}`);
      if (!other) bySeq.set(seq, { text, replica: r });
    }
    let top = 0;
    for (const seq of log.keys()) top = Math.max(top, seq);
    const from = Math.max(0, ...machines[r]!.installs);
    for (let seq = from + 1; seq <= top; seq++) if (!log.has(seq)) throw new SafetyViolation(`replica ${r} decided up to seq ${top} but not ${seq}, above its last snapshot at ${from}: a gap`);
  }
}

/**
 * Every request executed exactly once at every live checked replica, and no request twice, in
 * the same order everywhere (snapshots included).
 */
export function undecided(res: SimResult): string[] {
  const problems: string[] = [];
  const longest = res.live.map((r) => res.machines[r]!.executed).reduce<string[]>((a, b) => (b.length > a.length ? b : a), []);
  for (const r of res.live) {
    const mine = res.machines[r]!.executed;
    const at = mine.findIndex((e, i) => e !== longest[i]);
    if (at >= 0) problems.push(`replica ${r} executed ${mine[at]} at position ${at}, another replica ${longest[at]}`);
    const got = new Map<string, number>();
    for (const e of mine) got.set(reqOf(e), (got.get(reqOf(e)) ?? 0) + 1);
    for (const q of res.requests) {
      const k = `${q.client}#${q.seq}`;
      const c = got.get(k) ?? 0;
      if (res.must.has(k) ? c !== 1 : c > 1) problems.push(`replica ${r}: ${k} decided ${c} times`);
      got.delete(k);
    }
    // A faulty leader's made-up requests (no client sent them) must never be decided.
    for (const k of got.keys()) problems.push(`replica ${r}: ${k} decided, but no client sent it`);
    // Acknowledged to its client (2f+1 replicas executed it): never lost, whatever restarted.
    const executed = new Set(mine.map(reqOf));
    for (const k of res.acknowledged) if (!executed.has(k)) problems.push(`replica ${r}: ${k} was acknowledged to its client, but is not executed here`);
  }
  return problems;
}

const KINDS: Byzantine[] = ['silent', 'equivocate', 'forge', 'replay', 'flood'];

/**
 * The schedule a seed stands for: faults, network and load all drawn from it. With
 * `journals`, a share of the seeds (JOURNAL_SHARE) also keep journals and restart from them
 * (withJournalRestarts); the others, and every seed without it, are the schedules they always were.
 */
export function scenario(seed: number, journals = false): SimOptions {
  const r = rng(seed ^ 0x9e3779b9);
  const n = 4;
  const o: SimOptions = { seed, n, f: 1, loss: r() < 0.5 ? r() * 0.2 : 0, duplicate: r() < 0.3 ? r() * 0.2 : 0, maxDelay: 1 + Math.floor(r() * 5), healAt: 150 + Math.floor(r() * 150), ticks: 900 };
  const fault = r();
  const who = Math.floor(r() * n);
  if (fault < 0.45) o.byzantine = { [who]: KINDS[Math.floor(r() * KINDS.length)]! };
  else if (fault < 0.65) {
    o.crash = { [who]: Math.floor(r() * 200) };
    if (r() < 0.5) o.restart = { [who]: o.crash[who]! + 30 + Math.floor(r() * 220) };
  }
  if (r() < 0.3) {
    const cutOff = Array.from({ length: n }, (_, i) => i).filter(() => r() < 0.5);
    if (cutOff.length > 0 && cutOff.length < n) {
      o.partition = cutOff;
      o.partitionFrom = Math.floor(r() * 100);
    }
  }
  // Every replica starting as if it may have run before is a fault of its own when one comes
  // late (it stays passive a while): only with no other fault, or it would be more than f.
  o.coldStart = r() < 0.3 && !o.byzantine && !o.crash;
  o.sparse = r() < 0.3 ? r() * 0.3 : 0;
  o.clients = 1 + Math.floor(r() * 4);
  o.requestsPerClient = 5 + Math.floor(r() * 20);
  // A short retained history: a replica that fell behind (restarted, cut off) installs a snapshot.
  if (r() < 0.35) o.consensus = { retainDecided: 8 };
  // Drawn last, so the seeds above keep their schedules: a slow replica, often the leader.
  const slow = r() < 0.5 ? 0 : Math.floor(r() * n);
  if (!o.byzantine && !o.crash && !o.coldStart && r() < 0.15) o.byzantine = { [slow]: 'slow' };
  // Drawn after everything else, so the schedules of seeds that draw no journal stay as they were.
  if (r() < JOURNAL_SHARE && journals) withJournalRestarts(o, r);
  // Last again: a faulty client's two bodies under one seq.
  if (r() < 0.2) o.twoFaced = r() * 0.3;
  // Last again: attestations that end, often with a faulty client filling a small pendingMax
  // with requests that never become ready (clients then resend what was let go).
  if (r() < ATTESTATIONS_END_SHARE) {
    o.consensus = { ...o.consensus, attestationSeqs: 16 + Math.floor(r() * 48) };
    if (r() < 0.5) {
      o.lonely = { requests: 8 + Math.floor(r() * 24), at: Math.floor(r() * 150) };
      o.consensus.pendingMax = 4 + Math.floor(r() * 12);
      // Room comes only as the lonely requests go: the correct clients wait for it, resending.
      o.ticks = (o.ticks ?? 600) + 900;
    }
  }
  return o;
}

/** The share of the campaign's schedules in which attestations end (consensus.attestationSeqs). */
export const ATTESTATIONS_END_SHARE = 0.3;

/** The share of the campaign's schedules in which replicas keep journals and restart from them. */
export const JOURNAL_SHARE = 0.35;

/**
 * Turns a schedule into one where every replica keeps a journal, and correct replicas crash
 * and restart from it at random moments: one replica (once or twice), several at overlapping
 * times, or the whole cluster at once (once or twice) — whatever else the schedule does
 * (Byzantine replicas, loss, partitions, a view change under way).
 */
export function withJournalRestarts(o: SimOptions, r: () => number): SimOptions {
  const n = o.n ?? 4;
  const up = Array.from({ length: n }, (_, i) => i).filter((i) => o.crash?.[i] === undefined);
  const window = (): { from: number; to: number } => {
    const from = 10 + Math.floor(r() * ((o.healAt ?? 200) + 150));
    return { from, to: from + 1 + Math.floor(r() * 120) };
  };
  const kind = r();
  const outages: Outage[] = [];
  if (kind < 0.35) {
    const who = up[Math.floor(r() * up.length)]!;
    for (let k = 1 + Math.floor(r() * 2); k > 0; k--) outages.push({ replicas: [who], ...window() });
  } else if (kind < 0.6) {
    for (const i of up) if (r() < 0.6) outages.push({ replicas: [i], ...window() });
  } else {
    for (let k = 1 + Math.floor(r() * 2); k > 0; k--) outages.push({ replicas: up, ...window() });
  }
  o.journal = true;
  o.outages = outages;
  o.ticks = (o.ticks ?? 600) + Math.max(0, ...outages.map((x) => x.to));
  return o;
}
