// The replicated state: which requests each client had decided (so none executes twice), and
// the application's state machine beside it. At every checkpoint a replica encodes both into a
// snapshot and signs its digest with the checkpoint, so a replica too far behind to catch up
// batch by batch installs a snapshot from any one replica, checked against 2f+1 signatures
// (docs/consensus.md, "Catching up").
//
// The encoding must be canonical: correct replicas that executed the same batches must produce
// the same bytes, whatever order their maps were filled in, or their checkpoints never match.

import { createHash } from 'node:crypto';
import { PUBLISH_WINDOW_ORDERED_EVENTS_MAX } from '../core/index.js';
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

/**
 * Seqs a client keeps decided above this many out of order: past it, the lowest gap is given
 * up. A publisher's window of ordered events is bounded by it (the config refuses more).
 */
export const CLIENT_OUT_OF_ORDER_MAX = PUBLISH_WINDOW_ORDERED_EVENTS_MAX;

/**
 * The seqs of one client that were decided: all up to `low`, and some above it. A client may
 * have many requests in flight and a batch may decide a later one first; a gap that never
 * fills (a client that skipped a seq) is given up once `max` seqs wait above it, so memory
 * stays bounded. Gaps are the rule, not the exception, for an ordered channel's publisher (its
 * seqs on the other channels are gaps on this one): once full, every decision gives one up.
 */
class DecidedSeqs {
  /**
   * `above` again, as a binary min-heap, so that giving up the lowest gap costs log(max), not a
   * scan of `max` seqs (80 µs at 4,096, per decision). Written here: the few lines a heap of
   * numbers takes are less than a dependency's API, and keeping it equal to `above` is ours anyway.
   */
  private readonly heap: number[];

  constructor(
    private readonly max: number,
    private low = 0,
    private readonly above = new Set<number>(),
  ) {
    this.heap = [...above].sort((a, b) => a - b);
  }

  has(seq: number): boolean {
    return seq <= this.low || this.above.has(seq);
  }

  add(seq: number): void {
    if (seq <= this.low || this.above.has(seq)) return;
    if (seq === this.low + 1 && this.above.size === 0) {
      this.low = seq;
      return;
    }
    this.above.add(seq);
    heapPush(this.heap, seq);
    this.raiseLow();
    if (this.above.size > this.max) {
      this.low = this.heap[0]!;
      this.above.delete(this.low);
      this.raiseLow();
    }
  }

  /** Moves `low` up over the seqs decided right above it; the heap drops what `low` now covers. */
  private raiseLow(): void {
    while (this.above.delete(this.low + 1)) this.low++;
    while (this.heap.length > 0 && this.heap[0]! <= this.low) heapPop(this.heap);
  }

  encode(): [number, number[]] {
    return [this.low, [...this.above].sort((a, b) => a - b)];
  }

  clone(): DecidedSeqs {
    return new DecidedSeqs(this.max, this.low, new Set(this.above));
  }
}

function heapPush(h: number[], x: number): void {
  let i = h.push(x) - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent]! <= x) break;
    h[i] = h[parent]!;
    i = parent;
  }
  h[i] = x;
}

function heapPop(h: number[]): void {
  const last = h.pop()!;
  if (h.length === 0) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    const c = l + 1 < h.length && h[l + 1]! < h[l]! ? l + 1 : l;
    if (h[c]! >= last) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = last;
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

  constructor(
    private readonly clientsMax = Infinity,
    /** Seqs kept above a client's lowest gap (CLIENT_OUT_OF_ORDER_MAX; smaller in tests). */
    private readonly outOfOrderMax = CLIENT_OUT_OF_ORDER_MAX,
  ) {}

  has(client: string, seq: number): boolean {
    return this.byClient.get(client)?.has(seq) ?? false;
  }

  add(client: string, seq: number): void {
    let d = this.byClient.get(client);
    if (d) this.byClient.delete(client);
    else d = new DecidedSeqs(this.outOfOrderMax);
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
        for (const [client, low, above] of e.decided) this.byClient.set(client, new DecidedSeqs(this.outOfOrderMax, low, new Set(above)));
      },
    };
  }
}

/** The digest a CHECKPOINT signs for a snapshot. */
export function snapshotDigest(snapshot: string): string {
  // sha256('snapshot|' + snapshot), without building that string: the concatenation copies a
  // snapshot of megabytes before hashing it (4.2 MB: 16-50 ms, against 3 ms for the hash alone).
  return createHash('sha256').update('snapshot|').update(snapshot).digest('hex');
}
