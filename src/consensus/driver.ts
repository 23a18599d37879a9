// Runs the ordering protocol's pure core (replica.ts) in a replica process: a clock that
// ticks, Ed25519 signatures with the replica keys from cluster.yaml, and a transport to the
// other replicas that the replica server provides. Messages from the wire are checked
// against the schema first (wire.ts); what fails is counted, never acted on.

import type { KeyObject } from 'node:crypto';
import type { Limits } from '../core/index.js';
import { signBytes, verifyBytes } from '../protection/index.js';
import { ConsensusReplica, type ConsensusOptions, type ConsensusStatus, type Output } from './replica.js';
import type { StateMachine } from './state.js';
import type { ConsensusMessage, Req, Signer } from './messages.js';
import { parseConsensusMessage } from './wire.js';

export interface DriverOptions {
  id: number;
  n: number;
  f: number;
  limits: Limits;
  /** This replica ran before and kept none of its consensus state (see ConsensusOptions.restarted). */
  restarted: boolean;
  privateKey: KeyObject;
  /** Every replica's public key (base64 SPKI), by id. */
  publicKeys: readonly string[];
  /** Sends to one replica, or to every other one; a message that cannot leave is dropped (the protocol resends). */
  send(to: number | 'all', msg: ConsensusMessage): void;
  /** What decisions execute on, and what a snapshot holds (see StateMachine). */
  machine: StateMachine;
}

export interface DriverStatus extends ConsensusStatus {
  /** Messages from other replicas that were not protocol messages (each a sign of a faulty sender). */
  malformed: number;
}

/** The protocol's options from the replica limits: times in ticks of consensusTickMs. */
export function consensusOptions(id: number, n: number, f: number, l: Limits, restarted: boolean): ConsensusOptions {
  const ticks = (ms: number): number => Math.max(1, Math.round(ms / l.consensusTickMs));
  return {
    id,
    n,
    f,
    checkpointInterval: l.consensusCheckpointInterval,
    logWindow: l.consensusLogWindow,
    batchMax: l.consensusBatchMax,
    inflightMax: l.consensusInflightMax,
    viewChangeTimeoutTicks: ticks(l.consensusTimeoutMs),
    resendTicks: ticks(l.consensusResendMs),
    retainDecided: l.consensusRetainDecided,
    pendingMax: l.consensusPendingMax,
    // JSON of base64 bodies is ~1.4x their size: a quarter of the frame leaves room.
    replyBytesMax: Math.floor(l.peerFrameBytesMax / 4),
    clientsMax: l.dedupeStreamsMax,
    restarted,
  };
}

export function ed25519Signer(privateKey: KeyObject, publicKeys: readonly string[]): Signer {
  return {
    sign: (bytes) => signBytes(privateKey, Buffer.from(bytes, 'utf8')).toString('base64'),
    verify: (replica, bytes, sig) => {
      const key = publicKeys[replica];
      return key !== undefined && verifyBytes(key, Buffer.from(bytes, 'utf8'), Buffer.from(sig, 'base64'));
    },
  };
}

export class ConsensusDriver {
  private readonly core: ConsensusReplica;
  private timer: NodeJS.Timeout | undefined;
  private malformed = 0;

  constructor(private readonly o: DriverOptions) {
    this.core = new ConsensusReplica(consensusOptions(o.id, o.n, o.f, o.limits, o.restarted), ed25519Signer(o.privateKey, o.publicKeys), o.machine);
  }

  get status(): DriverStatus {
    return { ...this.core.status, malformed: this.malformed };
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.handle(this.core.tick()), this.o.limits.consensusTickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  isDecided(client: string, seq: number): boolean {
    return this.core.isDecided(client, seq);
  }

  /** Submits requests to be ordered; returns the ones refused for want of room (see room). */
  submit(req: Req | readonly Req[]): Req[] {
    const out = this.core.submit(req);
    this.handle(out);
    return out.refused ?? [];
  }

  /** Requests that can be submitted before consensusPendingMax is reached. */
  get room(): number {
    return this.core.room;
  }

  /** A message from replica `from` (the link authenticated it), as parsed JSON. */
  receive(from: number, value: unknown): void {
    const msg = parseConsensusMessage(value);
    if (!msg) {
      this.malformed++;
      return;
    }
    this.handle(this.core.receive(from, msg));
  }

  private handle(out: Output): void {
    for (const m of out.messages) this.o.send(m.to, m.msg);
  }
}
