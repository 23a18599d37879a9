// Per-client limits a replica enforces (docs/limits.md, docs/security.md "Hardening"): how many
// connections one client id may hold, and how fast it may publish. Both are per client id, not
// per connection, so opening more connections buys a client nothing; and both cost only that
// client: a refused connection, or a connection the replica stops reading for a while.
//
// The rate limit throttles rather than refuses, as Kafka's quotas do: a client over its rate
// is not read from until its bucket is out of debt, so its writes wait in TCP and its publish
// window fills; nothing it sent is dropped and no error needs handling. A refusal would make
// every publisher grow a retry loop, and a burst slightly over the limit would lose events.
// A client that is merely slowed would not know why, so the replica also sends it a notice
// (FIT_ERR_RATE_LIMITED, FIT_ERR_TOO_MANY_PENDING: a REPLY with kind "notice" and no request)
// that its Publisher reports and `fitbroker publish` prints.
// Kept apart from the server so the arithmetic is testable without sockets or clocks.

import { FitError, type Limits } from '../core/index.js';

/** What a client is told when replica `replica` starts holding it back for its rate. */
export function rateNotice(replica: number, client: string, limits: Pick<Limits, 'clientEventsPerSecondMax' | 'clientEventsBurstMax'>, holdMs: number): FitError {
  const rate = limits.clientEventsPerSecondMax;
  return new FitError(
    'FIT_ERR_RATE_LIMITED',
    `replica ${replica} is not reading from client "${client}" for ${holdMs} ms: it published faster than limits.clientEventsPerSecondMax (${rate} events/s, bursts of ${limits.clientEventsBurstMax}). Nothing is dropped: its events wait in TCP and its publish window. Publish slower, or raise the limit in cluster.yaml`,
    { replica, client, limit: rate, holdMs },
  );
}

/** What a client is told when replica `replica` stops reading it for its pending requests. */
export function pendingNotice(replica: number, client: string, limits: Pick<Limits, 'clientRequestsPendingMax'>): FitError {
  const max = limits.clientRequestsPendingMax;
  return new FitError(
    'FIT_ERR_TOO_MANY_PENDING',
    `replica ${replica} stopped reading from client "${client}": it has more than limits.clientRequestsPendingMax (${max}) requests waiting for an answer there (publishes of ordered channels waiting to be ordered, control changes waiting for a decision). It reads again once ${Math.floor(max / 2)} or fewer are left; nothing is dropped. Send fewer, larger batches, or look at why that replica orders slowly (fitbroker status)`,
    { replica, client, limit: max },
  );
}

/** The client has more requests in this replica's order than orderClientRequestsMax: the rest wait (order-shares.ts). */
export function shareNotice(replica: number, client: string, queued: number, limits: Pick<Limits, 'orderClientRequestsMax'>): FitError {
  const max = limits.orderClientRequestsMax;
  return new FitError(
    'FIT_ERR_TOO_MANY_PENDING',
    `replica ${replica} has limits.orderClientRequestsMax (${max}) requests of client "${client}" waiting to be ordered, all its connections together; ${queued} more wait for them to be decided before they are ordered, unacknowledged, and nothing is dropped. A correct publisher meets this only if this replica holds requests the others never got (fitbroker status: consensus.shares), or if many processes publish as one client`,
    { replica, client, limit: max, queued },
  );
}

export interface ClientUsageCounters {
  /** Connections refused because the client already held connectionsPerClientMax. */
  connectionsRefused: number;
  /** Times the client went over its rate (its bucket went into debt): each begins a throttle. */
  throttles: number;
  /** Total time its connections were not read for its rate (the debts it repaid). */
  throttledMs: number;
  /** Times its pending request frames went over clientRequestsPendingMax. */
  pendingPauses: number;
  /** Requests and connections the replica refused, by error code (frames over frameBytesMax included). */
  refused: Record<string, number>;
}

interface ClientUsage extends ClientUsageCounters {
  connections: number;
  /** Request frames of this client waiting for an answer (ordered publishes, control changes). */
  pendingFrames: number;
  /** Token bucket for clientEventsPerSecondMax: may go negative (a debt to wait out). */
  tokens: number;
  refilledAtMs: number;
}

export class ClientQuotas {
  /** By client id; bounded by the control table (only authenticated clients get one). */
  private readonly usage = new Map<string, ClientUsage>();
  /** Refusals of connections that never authenticated: no client id can be trusted for them. */
  private readonly refusedUnauthenticated: Record<string, number> = {};
  /** Connections not authenticated yet, by source address; bounded by the open sockets. */
  private readonly handshaking = new Map<string, number>();

  constructor(
    private readonly limits: Pick<Limits, 'connectionsPerClientMax' | 'handshakesPerAddressMax' | 'clientEventsPerSecondMax' | 'clientEventsBurstMax' | 'clientRequestsPendingMax'>,
    private readonly nowMs: () => number,
  ) {}

  private of(client: string): ClientUsage {
    let u = this.usage.get(client);
    if (!u) {
      u = { connections: 0, pendingFrames: 0, tokens: this.limits.clientEventsBurstMax, refilledAtMs: this.nowMs(), connectionsRefused: 0, throttles: 0, throttledMs: 0, pendingPauses: 0, refused: {} };
      this.usage.set(client, u);
    }
    return u;
  }

  /**
   * A connection from `address` starts its handshake; false (and counted as refused) when the
   * address already has handshakesPerAddressMax connections that have not authenticated.
   */
  handshakeStarted(address: string): boolean {
    const open = this.handshaking.get(address) ?? 0;
    if (open >= this.limits.handshakesPerAddressMax) {
      this.refused(undefined, 'FIT_ERR_TOO_MANY_CONNECTIONS');
      return false;
    }
    this.handshaking.set(address, open + 1);
    return true;
  }

  /** A connection from `address` authenticated, or closed before it did. */
  handshakeEnded(address: string): void {
    const open = (this.handshaking.get(address) ?? 1) - 1;
    if (open > 0) this.handshaking.set(address, open);
    else this.handshaking.delete(address);
  }

  /** Counts a new connection of `client`; false (and counted) when it already holds the most it may. */
  admit(client: string): boolean {
    const u = this.of(client);
    if (u.connections >= this.limits.connectionsPerClientMax) {
      u.connectionsRefused++;
      return false;
    }
    u.connections++;
    return true;
  }

  connections(client: string): number {
    return this.usage.get(client)?.connections ?? 0;
  }

  /** A connection admit() counted has closed. */
  release(client: string): void {
    const u = this.usage.get(client);
    if (u && u.connections > 0) u.connections--;
  }

  /**
   * Takes `events` from the client's bucket; returns how long to stop reading from it (0: go
   * on). The events were already read, so the bucket may go into debt: the pause is the time
   * it takes to refill to zero, after which the client's average is the limit.
   */
  charge(client: string, events: number): number {
    const u = this.of(client);
    const rate = this.limits.clientEventsPerSecondMax;
    const now = this.nowMs();
    u.tokens = Math.min(this.limits.clientEventsBurstMax, u.tokens + ((now - u.refilledAtMs) * rate) / 1000);
    u.refilledAtMs = now;
    const debtMs = (tokens: number): number => (tokens < 0 ? (-tokens * 1000) / rate : 0);
    const before = debtMs(u.tokens);
    u.tokens -= events;
    const after = debtMs(u.tokens);
    if (after === 0) return 0;
    // One throttle per spell in debt; frames read while in debt lengthen it.
    if (before === 0) u.throttles++;
    u.throttledMs += after - before;
    return Math.ceil(after);
  }

  /** One more request frame of `client` waits for an answer; true when that puts it over its limit. */
  pendingAdded(client: string): boolean {
    const u = this.of(client);
    u.pendingFrames++;
    if (u.pendingFrames <= this.limits.clientRequestsPendingMax) return false;
    if (u.pendingFrames === this.limits.clientRequestsPendingMax + 1) u.pendingPauses++;
    return true;
  }

  /** A pending frame was answered; true when the client is back to half its limit (resume it). */
  pendingDone(client: string): boolean {
    const u = this.of(client);
    if (u.pendingFrames > 0) u.pendingFrames--;
    return u.pendingFrames <= this.limits.clientRequestsPendingMax / 2;
  }

  /**
   * Counts a refusal: against `client` if it authenticated (an unauthenticated peer may claim
   * any id, and counting by claimed ids would let it grow this map without bound).
   */
  refused(client: string | undefined, code: string): void {
    const to = client === undefined ? this.refusedUnauthenticated : this.of(client).refused;
    to[code] = (to[code] ?? 0) + 1;
  }

  /** For `fitbroker status`: per client, what it holds now and what its limits cost it. */
  status(): {
    totals: ClientUsageCounters;
    /** Refusals of connections that never authenticated, by code (in totals.refused too). */
    unauthenticated: Record<string, number>;
    clients: Record<string, ClientUsageCounters & { connections: number; pendingFrames: number }>;
  } {
    const totals: ClientUsageCounters = { connectionsRefused: 0, throttles: 0, throttledMs: 0, pendingPauses: 0, refused: { ...this.refusedUnauthenticated } };
    const clients: Record<string, ClientUsageCounters & { connections: number; pendingFrames: number }> = {};
    for (const [id, u] of this.usage) {
      const { connections, pendingFrames, connectionsRefused, throttles, pendingPauses } = u;
      const throttledMs = Math.round(u.throttledMs);
      clients[id] = { connections, pendingFrames, connectionsRefused, throttles, throttledMs, pendingPauses, refused: { ...u.refused } };
      for (const [code, n] of Object.entries(u.refused)) totals.refused[code] = (totals.refused[code] ?? 0) + n;
      totals.connectionsRefused += connectionsRefused;
      totals.throttles += throttles;
      totals.throttledMs += throttledMs;
      totals.pendingPauses += pendingPauses;
    }
    return { totals, unauthenticated: { ...this.refusedUnauthenticated }, clients };
  }
}
