// Each client's share of the order (limits.orderClientRequestsMax, docs/consensus.md "A share
// of the order per client"). consensusPendingMax bounds the requests one replica has waiting to
// be ordered, all clients together, and a request this replica holds stays there until it is
// decided or let go (consensusAttestationSeqs), whatever becomes of the connection that sent
// it. Without a share per client, one faulty publisher that sends each request to this replica
// alone, and reconnects whenever its connection is held, fills that room for everyone.
//
// So the requests of one client id that this replica took into the order (submitted, or waiting
// for room) are counted, across all its connections and past their end, and at most
// orderClientRequestsMax of them at once. Its further requests wait here, in its own queue, not
// taken into the order: their frames stay unacknowledged (the per-connection backlog then stops
// reading), and a request whose connection closes leaves the queue, so a client that reconnects
// over and over holds no more than before. Counted requests leave the share when decided, or
// when let go; queued ones are taken, oldest first, as they do.

import type { Req } from '../consensus/index.js';

/** One client's requests in the order and waiting for its share. */
interface Share {
  counted: number;
  /** Over the share, oldest first, by key (client#seq of the request). */
  readonly queue: Map<string, Req>;
  /** Requests that ever waited for the share. */
  queuedTotal: number;
}

export interface ShareStatus {
  /** Requests counted against the client's share: taken into the order, not decided or let go. */
  requests: number;
  /** Requests waiting for room in its share, not yet taken into the order. */
  queued: number;
  queuedTotal: number;
}

export class OrderShares {
  /** By client id; bounded by the control table (only authenticated clients publish). */
  private readonly shares = new Map<string, Share>();
  /** Every request counted or queued: its client, and whether it is counted. */
  private readonly owners = new Map<string, { client: string; counted: boolean }>();

  constructor(private readonly max: number) {}

  /** Where the request (client#seq) is already: a resend takes no more of the share. */
  state(key: string): 'counted' | 'queued' | undefined {
    const o = this.owners.get(key);
    return o === undefined ? undefined : o.counted ? 'counted' : 'queued';
  }

  /** Keys of the requests counted now, for a sweep after a snapshot was installed. */
  countedKeys(): string[] {
    return [...this.owners].filter(([, o]) => o.counted).map(([k]) => k);
  }

  /** A new request of `client`: true if it goes into the order now (counted), false if it waits in the client's queue. */
  take(client: string, key: string, req: Req): boolean {
    let s = this.shares.get(client);
    if (!s) this.shares.set(client, (s = { counted: 0, queue: new Map(), queuedTotal: 0 }));
    // Behind what already waits, so that a publisher's requests keep their order.
    if (s.counted < this.max && s.queue.size === 0) {
      s.counted++;
      this.owners.set(key, { client, counted: true });
      return true;
    }
    s.queue.set(key, req);
    s.queuedTotal++;
    this.owners.set(key, { client, counted: false });
    return false;
  }

  /**
   * The request is decided or let go (or was never taken by the protocol): it leaves its
   * client's share or queue. Returns the requests of that client that now go into the order.
   */
  release(key: string): Req[] {
    const o = this.owners.get(key);
    if (!o) return [];
    this.owners.delete(key);
    const s = this.shares.get(o.client)!;
    if (!o.counted) {
      s.queue.delete(key);
      return [];
    }
    s.counted--;
    const next: Req[] = [];
    for (const [k, req] of s.queue) {
      if (s.counted >= this.max) break;
      s.queue.delete(k);
      s.counted++;
      this.owners.set(k, { client: o.client, counted: true });
      next.push(req);
    }
    return next;
  }

  /** No one waits for the request any more (its connections closed): it leaves the queue; counted, it stays. */
  drop(key: string): void {
    if (this.owners.get(key)?.counted === false) this.release(key);
  }

  /** Requests waiting for a share, all clients together. */
  get queued(): number {
    let n = 0;
    for (const s of this.shares.values()) n += s.queue.size;
    return n;
  }

  queuedOf(client: string): number {
    return this.shares.get(client)?.queue.size ?? 0;
  }

  status(): Record<string, ShareStatus> {
    const out: Record<string, ShareStatus> = {};
    for (const [client, s] of this.shares) out[client] = { requests: s.counted, queued: s.queue.size, queuedTotal: s.queuedTotal };
    return out;
  }
}
