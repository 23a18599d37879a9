// L1 receive with a count: the paper's pull interface. Each call asks every replica for up to
// `max` events from the client's queue (the replica dequeues them) and votes over the copies;
// an event whose f+1 copies are split across calls completes on a later call, because the voter
// outlives the call. Pull and a push subscription of the same client on the same channel take
// from the same queue: use one or the other.

import type { KeyObject } from 'node:crypto';
import { FitError, maySubscribe, voteQuorum, type BrokerEvent } from '../core/index.js';
import { decodeEvents, decodeRecord, MessageType, RecordCursor } from '../codec/index.js';
import { tlsIdentityFor, type ClusterConfig } from '../config/index.js';
import { ReplicaLink, believedRefusal } from './link.js';
import { Voter } from './voter.js';
import { channelChecker, checkOptions, PublisherKeys } from './protection.js';

export class Receiver {
  private readonly links: ReplicaLink[];
  private readonly voter: Voter;
  private readonly threshold: number;
  private ready: Promise<void>;
  private out: BrokerEvent[] = [];
  /**
   * The EVENTS frame answering each receive request in flight, by `link:request seq`; a frame
   * no request waits for (a faulty replica's, or one whose request failed) is not kept: it is
   * a view of the link's read slab, and would keep the whole slab.
   */
  private readonly frames = new Map<string, Buffer | undefined>();
  private pos = 0;
  /** PKE events voted but not decryptable with this client's channel keys. */
  undecryptable = 0;

  constructor(
    private readonly config: ClusterConfig,
    private readonly clientId: string,
    privateKey: KeyObject,
    private readonly channel: string,
    options: { /** A replica is holding this client back for a per-client limit (nothing is lost). */ onNotice?(notice: FitError): void } = {},
  ) {
    const cls = config.table.channels.get(channel);
    const client = config.table.clients.get(clientId);
    if (!cls) throw new FitError('FIT_ERR_UNKNOWN_CHANNEL', `channel "${channel}" is not in ${config.file}; add it under channels:`, { channel });
    if (!client || !maySubscribe(client, channel)) {
      throw new FitError('FIT_ERR_NOT_AUTHORIZED', `client "${clientId}" may not receive from channel "${channel}"; add the channel to clients.${clientId}.subscribe in cluster.yaml`, {
        channel,
        client: clientId,
      });
    }
    this.threshold = voteQuorum(cls.fault, config.f);
    const l = config.limits;
    const checker = channelChecker(config, channel, cls, new PublisherKeys(config));
    this.voter = new Voter(
      {
        replicas: config.replicas.length,
        threshold: this.threshold,
        ttlMs: cls.ttlMs,
        pendingMax: l.voterPendingEventsMax,
        deliveredMax: l.voterDeliveredEventsMax,
        pendingMs: l.voterPendingMs,
        ...checkOptions(checker, config, cls),
      },
      {
        deliver: (buf, start, end) => {
          const event = decodeRecord(buf.subarray(start, end), channel);
          const plain = checker ? checker.open(buf, start) : event.content;
          // A PKE event this client cannot decrypt is counted as undecryptable, not handed over as ciphertext.
          if (plain === undefined) this.undecryptable++;
          else this.out.push({ ...event, content: plain });
        },
        resolve: () => undefined,
      },
    );
    let resolveReady: () => void = () => undefined;
    this.ready = new Promise((r) => (resolveReady = r));
    let up = 0;
    const tls = tlsIdentityFor(config, clientId);
    this.links = config.replicas.map(
      (r) =>
        new ReplicaLink(r, clientId, privateKey, l, {
          onReady: (link) => {
            this.voter.setLive(link.id, true);
            if (++up >= this.threshold) resolveReady();
          },
          onFrame: (link, body) => {
            if (body[0] !== MessageType.Events) return;
            const key = `${link.id}:${decodeEvents(body)[0]?.streamId}`;
            if (this.frames.has(key)) this.frames.set(key, body);
          },
          // Floors do not wait for a replica that cannot answer (voter.ts).
          onDown: (link) => this.voter.setLive(link.id, false),
          onNotice: (_link, notice) => options.onNotice?.(notice),
        }, undefined, tls),
    );
    for (const link of this.links) link.start();
  }

  /**
   * Pulls up to `max` events from every replica and returns those now voted (at most `max`
   * more may be held for the next call). Waits for enough replicas to connect, up to timeoutMs.
   */
  async receive(max: number, timeoutMs = 10_000): Promise<BrokerEvent[]> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.ready,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(this.notReady(timeoutMs)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    const now = Date.now();
    const replies = await Promise.allSettled(
      this.links.filter((l) => l.ready).map(async (link) => {
        const key = `${link.id}:${link.peekSeq()}`;
        this.frames.set(key, undefined);
        let body: Buffer | undefined;
        try {
          await link.request('receive', { channel: this.channel, max });
        } finally {
          body = this.frames.get(key);
          this.frames.delete(key);
        }
        if (!body) return;
        for (const h of decodeEvents(body)) {
          const cursor = new RecordCursor(body, h.recordsAt, this.config.limits.eventBytesMax, h.recordsEnd);
          while (cursor.next()) this.voter.offer(link.id, Buffer.from(cursor.record()), this.pos++, now);
        }
      }),
    );
    const refusal = believedRefusal(
      replies.map((r) => (r.status === 'rejected' ? (r.reason as FitError) : undefined)),
      this.threshold,
    );
    if (refusal) throw refusal;
    const out = this.out;
    this.out = [];
    return out;
  }

  close(): void {
    for (const l of this.links) l.stop();
  }

  private notReady(timeoutMs: number): FitError {
    return new FitError('FIT_ERR_QUORUM_TIMEOUT', `fewer than ${this.threshold} replicas accepted ${this.clientId}'s connection within ${timeoutMs} ms; check \`fitbroker status\``, {
      channel: this.channel,
    });
  }
}
