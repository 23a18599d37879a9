// The replicated state: which requests each client had decided (so none executes twice), and
// the application's state machine beside it. At every checkpoint a replica encodes both into a
// snapshot and signs its digest with the checkpoint, so a replica too far behind to catch up
// batch by batch installs a snapshot from any one replica, checked against 2f+1 signatures
// (docs/consensus.md, "Catching up").
//
// The encoding must be canonical: correct replicas that executed the same batches must produce
// the same bytes, whatever order their maps were filled in, or their checkpoints never match.

import { sha256 } from './messages.js';
import type { Req } from './messages.js';

export interface Decision {
  seq: number;
  view: number;
  /** The batch's requests, less any a client had decided already (a faulty leader may repeat one). */
  requests: Req[];
}

/**
 * What the protocol executes decisions on. It must be deterministic: the same decisions in the
 * same order give the same snapshot on every correct replica.
 */
export interface StateMachine {
  /** One decided batch, in seq order, exactly once (never for seqs a snapshot skipped). */
  execute(d: Decision): void;
  /** The state after everything executed so far, canonically encoded. */
  snapshot(): string;
  /** Replaces the state with `snapshot`, the state after seq `seq` at the replicas that signed it. */
  restore(seq: number, snapshot: string): void;
}

/** Seqs a client keeps decided above this many out of order: past it, the lowest gap is given up. */
export const CLIENT_OUT_OF_ORDER_MAX = 4096;

/**
 * The seqs of one client that were decided: all up to `low`, and some above it. A client may
 * have many requests in flight and a batch may decide a later one first; a gap that never
 * fills (a client that skipped a seq) is given up once CLIENT_OUT_OF_ORDER_MAX seqs wait above
 * it, so memory stays bounded.
 */
class DecidedSeqs {
  constructor(
    private low = 0,
    private readonly above = new Set<number>(),
  ) {}

  has(seq: number): boolean {
    return seq <= this.low || this.above.has(seq);
  }

  add(seq: number): void {
    if (seq <= this.low) return;
    this.above.add(seq);
    while (this.above.delete(this.low + 1)) this.low++;
    if (this.above.size > CLIENT_OUT_OF_ORDER_MAX) {
      this.low = Math.min(...this.above);
      this.above.delete(this.low);
      while (this.above.delete(this.low + 1)) this.low++;
    }
  }

  encode(): [number, number[]] {
    return [this.low, [...this.above].sort((a, b) => a - b)];
  }

  clone(): DecidedSeqs {
    return new DecidedSeqs(this.low, new Set(this.above));
  }
}

type Encoded = { v: 1; decided: [string, number, number[]][]; app: string };

/**
 * Per client, the seqs decided, for at most `clientsMax` clients: past it, the one whose last
 * request was decided longest ago is forgotten. Driven by decisions alone, so every correct
 * replica forgets the same ones at the same point; the recency order is part of the snapshot.
 */
export class ExecutedRequests {
  /** In order of each client's last decision, oldest first. */
  private readonly byClient = new Map<string, DecidedSeqs>();

  constructor(private readonly clientsMax = Infinity) {}

  has(client: string, seq: number): boolean {
    return this.byClient.get(client)?.has(seq) ?? false;
  }

  add(client: string, seq: number): void {
    let d = this.byClient.get(client);
    if (d) this.byClient.delete(client);
    else d = new DecidedSeqs();
    this.byClient.set(client, d);
    if (this.byClient.size > this.clientsMax) this.byClient.delete(this.byClient.keys().next().value!);
    d.add(seq);
  }

  /** Makes `into` hold this record's clients whose name starts with `prefix`, in the same order of recency (copies). */
  copyTo(into: ExecutedRequests, prefix: string): void {
    into.byClient.clear();
    for (const [client, d] of this.byClient) if (client.startsWith(prefix)) into.byClient.set(client, d.clone());
  }

  /** This state and the application's, as one canonical string. */
  encode(app: string): string {
    const decided = [...this.byClient].map(([client, d]): [string, number, number[]] => [client, ...d.encode()]);
    return JSON.stringify({ v: 1, decided, app } satisfies Encoded);
  }

  /**
   * Reads a snapshot without changing anything: the application's part, and `load` to make
   * this state the snapshot's. Undefined when it is not a snapshot (a bug: 2f+1 replicas
   * signed its digest).
   */
  decode(snapshot: string): { app: string; load(): void } | undefined {
    let e: Encoded;
    try {
      e = JSON.parse(snapshot) as Encoded;
    } catch {
      return undefined;
    }
    if (e?.v !== 1 || !Array.isArray(e.decided) || typeof e.app !== 'string') return undefined;
    return {
      app: e.app,
      load: () => {
        this.byClient.clear();
        for (const [client, low, above] of e.decided) this.byClient.set(client, new DecidedSeqs(low, new Set(above)));
      },
    };
  }
}

/** The digest a CHECKPOINT signs for a snapshot. */
export function snapshotDigest(snapshot: string): string {
  return sha256(`snapshot|${snapshot}`);
}
