// Links from this replica to every other one, for the ordering protocol. Each replica sends
// on the connection it opened and receives on the ones the others opened to it (handled by
// the server like a client's, authenticated with the replica keys from cluster.yaml). A
// message for a replica that is not connected, or that does not keep up, is dropped and
// counted: the protocol resends what matters, and a stalled peer must not grow our memory.

import type { KeyObject } from 'node:crypto';
import type { ClusterConfig } from '../config/index.js';
import { encodeJson, MessageType } from '../codec/index.js';
import { ReplicaLink } from '../client/index.js';
import type { ConsensusMessage } from '../consensus/index.js';
import type { TlsIdentity } from '../protection/index.js';

export class PeerLinks {
  private readonly links = new Map<number, ReplicaLink>();
  /** Messages that could not leave: the peer was down or its socket full. */
  dropped = 0;

  constructor(
    private readonly config: ClusterConfig,
    private readonly id: number,
    privateKey: KeyObject,
    /** Test-only (fault slow-order:MS): every message leaves this much later. */
    private readonly delayMs = 0,
    tls?: TlsIdentity,
  ) {
    for (const r of config.replicas) {
      if (r.id === id) continue;
      this.links.set(
        r.id,
        new ReplicaLink(r, `replica-${id}`, privateKey, config.limits, { onReady: () => undefined, onFrame: () => undefined, onDown: () => undefined }, id, tls),
      );
    }
  }

  start(): void {
    for (const l of this.links.values()) l.start();
  }

  stop(): void {
    for (const l of this.links.values()) l.stop();
  }

  /** Replicas this one is connected to now. */
  get connected(): number[] {
    return [...this.links.values()].filter((l) => l.ready).map((l) => l.id);
  }

  send(to: number | 'all', msg: ConsensusMessage): void {
    if (this.delayMs > 0) {
      setTimeout(() => this.sendNow(to, msg), this.delayMs);
      return;
    }
    this.sendNow(to, msg);
  }

  private sendNow(to: number | 'all', msg: ConsensusMessage): void {
    const frame = encodeJson(MessageType.Consensus, msg);
    if (to === 'all') for (const l of this.links.values()) this.sendOn(l, frame);
    else {
      const l = this.links.get(to);
      if (l) this.sendOn(l, frame);
    }
  }

  private sendOn(l: ReplicaLink, frame: Buffer): void {
    if (l.writable) l.send(frame);
    else this.dropped++;
  }
}
