// The replica's half of the per-client limits that hold rather than refuse (docs/limits.md,
// docs/security.md "Per-client limits"): a client over clientEventsPerSecondMax, or with more
// than clientRequestsPendingMax requests waiting for an answer, is not read from until it is
// back under, and is told why (a notice). ClientQuotas does the arithmetic; this applies it to
// connections. Several reasons may hold one connection at once; it is read again once none is
// left.

import type { Logger } from 'pino';
import type { ClientInfo, FitError, Limits } from '../core/index.js';
import { encodeJson, MessageType } from '../codec/index.js';
import type { Connection } from '../net/index.js';
import { pendingNotice, rateNotice, type ClientQuotas } from './quotas.js';

/** Why the replica stopped reading a connection ('shutdown' never ends). */
export type HoldReason = 'order' | 'rate' | 'pending' | 'overflow' | 'shutdown';

/** What a connection is told about: a hold, or its client's requests waiting for their share of the order. */
export type NoticeReason = HoldReason | 'share';

/** The least time between two notices of one reason on one connection. */
export const NOTICE_INTERVAL_MS = 5_000;

/** What holding needs of a connection (the server's Peer). */
export interface HeldPeer {
  conn: Pick<Connection, 'pause' | 'resume' | 'send'>;
  client: ClientInfo | undefined;
  remote: string;
  /** Why reading is stopped, if it is. */
  holds: Set<HoldReason>;
  /** Ends a rate-limit hold. */
  throttleTimer?: NodeJS.Timeout;
  /** When this connection was last told it is held, by reason. */
  noticedAtMs: Partial<Record<NoticeReason, number>>;
  /** Its request frames counted as pending, each with what ends that (run on close too). */
  unanswered: Set<() => void>;
}

export function hold(peer: HeldPeer, why: HoldReason): void {
  if (peer.holds.size === 0) peer.conn.pause();
  peer.holds.add(why);
}

export function release(peer: HeldPeer, why: HoldReason): void {
  if (peer.holds.delete(why) && peer.holds.size === 0) peer.conn.resume();
}

export interface ClientHoldsOptions {
  replica: number;
  limits: Pick<Limits, 'clientEventsPerSecondMax' | 'clientEventsBurstMax' | 'clientRequestsPendingMax'>;
  quotas: ClientQuotas;
  logger: Logger;
  nowMs(): number;
}

export class ClientHolds<P extends HeldPeer> {
  /** Connections held for clientRequestsPendingMax, by client id. */
  private readonly heldForPending = new Map<string, Set<P>>();

  constructor(private readonly o: ClientHoldsOptions) {}

  /** Charges events to the peer's client; over its rate, stops reading until it is back under. */
  throttle(peer: P, events: number): void {
    if (events <= 0 || !peer.client) return;
    const ms = this.o.quotas.charge(peer.client.id, events);
    if (ms === 0) return;
    // Frames already read in this turn add to the debt: the hold ends when all of it is repaid.
    clearTimeout(peer.throttleTimer);
    peer.throttleTimer = setTimeout(() => release(peer, 'rate'), ms);
    hold(peer, 'rate');
    this.notice(peer, 'rate', rateNotice(this.o.replica, peer.client.id, this.o.limits, ms));
  }

  /**
   * Counts a request frame of the peer's client as waiting for an answer, holding the
   * connection while its client has more than clientRequestsPendingMax; returns what to call
   * once it is answered.
   */
  pending(peer: P): () => void {
    const id = peer.client!.id;
    if (this.o.quotas.pendingAdded(id)) {
      let set = this.heldForPending.get(id);
      if (!set) this.heldForPending.set(id, (set = new Set()));
      set.add(peer);
      hold(peer, 'pending');
      this.notice(peer, 'pending', pendingNotice(this.o.replica, id, this.o.limits));
    }
    const done = (): void => {
      if (!peer.unanswered.delete(done)) return;
      if (!this.o.quotas.pendingDone(id)) return;
      const set = this.heldForPending.get(id);
      if (!set || set.size === 0) return;
      for (const held of set) release(held, 'pending');
      set.clear();
    };
    peer.unanswered.add(done);
    return done;
  }

  /** The connection closed: what it was waiting for will be answered to no one. */
  forget(peer: P): void {
    clearTimeout(peer.throttleTimer);
    if (peer.client) this.heldForPending.get(peer.client.id)?.delete(peer);
    for (const done of [...peer.unanswered]) done();
  }

  /**
   * Tells a client why its connection is held, and logs it: being slowed down is otherwise
   * invisible to it. At most once per NOTICE_INTERVAL_MS per connection and reason, so a
   * client held over and over for its rate gets a line every few seconds, not one per frame.
   */
  notice(peer: P, why: NoticeReason, err: FitError): void {
    const now = this.o.nowMs();
    if (now - (peer.noticedAtMs[why] ?? -Infinity) < NOTICE_INTERVAL_MS) return;
    peer.noticedAtMs[why] = now;
    peer.conn.send(encodeJson(MessageType.Reply, { seq: 0, kind: 'notice', ok: false, error: err.toJSON() }));
    this.o.logger.warn({ remote: peer.remote, code: err.code, ...err.fields }, err.message);
  }
}
