// overflow: block, the replica's half (docs/operations.md, "Queues under pressure"). While a
// subscriber queue of a block channel is full, every connection that publishes on that channel
// is held: the replica stops reading it, so the publisher's frames back up into TCP and its
// window fills, and nothing is dropped. A connection is held once one of its frames touched
// the full channel (that frame was queued: it had been read), and let go when no channel it
// is held for is full any more. It must never hold a connection that did not publish on a
// full channel: a probe of other channels, or a console's own, keeps going.

/** How often the queues that hold a channel drop what expired while it is blocked (TTL is the bound on a console that never reads). */
const EXPIRE_BLOCKED_EVERY_MS = 250;

export interface OverflowHoldsOptions<P> {
  hold(peer: P): void;
  release(peer: P): void;
  /** Drops expired events from the full queues (BrokerService.expireBlocked). */
  expire(): void;
}

export class OverflowHolds<P> {
  /** Held connections, by the blocked channel they published on. */
  private readonly byChannel = new Map<string, Set<P>>();
  /** The blocked channels each held connection waits for. */
  private readonly byPeer = new Map<P, Set<string>>();
  private readonly blocked = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: OverflowHoldsOptions<P>) {}

  /** `peer` published on `channels`, whose full queues hold their publishers. */
  hold(peer: P, channels: readonly string[]): void {
    let mine = this.byPeer.get(peer);
    for (const ch of channels) {
      // Its queue may have room already again (a push in the same turn): nothing to wait for.
      if (!this.blocked.has(ch)) continue;
      let set = this.byChannel.get(ch);
      if (!set) this.byChannel.set(ch, (set = new Set()));
      set.add(peer);
      if (!mine) this.byPeer.set(peer, (mine = new Set()));
      if (mine.size === 0) this.o.hold(peer);
      mine.add(ch);
    }
  }

  /** A channel's full queues started, or stopped, holding its publishers. */
  channelBlocked(channel: string, blocked: boolean): void {
    if (blocked) {
      this.blocked.add(channel);
      this.timer ??= setInterval(() => this.o.expire(), EXPIRE_BLOCKED_EVERY_MS).unref();
      return;
    }
    this.blocked.delete(channel);
    if (this.blocked.size === 0) this.stop();
    const set = this.byChannel.get(channel);
    if (!set) return;
    this.byChannel.delete(channel);
    for (const peer of set) {
      const mine = this.byPeer.get(peer)!;
      mine.delete(channel);
      if (mine.size > 0) continue;
      this.byPeer.delete(peer);
      this.o.release(peer);
    }
  }

  /** The connection closed: it is held for nothing any more. */
  forget(peer: P): void {
    const mine = this.byPeer.get(peer);
    if (!mine) return;
    this.byPeer.delete(peer);
    for (const ch of mine) this.byChannel.get(ch)?.delete(peer);
  }

  /** Connections held for `channel` now. */
  heldFor(channel: string): number {
    return this.byChannel.get(channel)?.size ?? 0;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
