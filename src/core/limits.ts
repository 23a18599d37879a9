// Every limit in one place, with its unit in its name. docs/limits.md explains each; the
// config's `limits:` section may override the ones marked there as configurable.

/**
 * The most a publisher's window of ordered events may be (publishWindowOrderedEvents): the
 * replicas remember what each process had decided and placed with this many seqs out of order
 * (CLIENT_OUT_OF_ORDER_MAX in src/consensus/state.ts), and a request decided behind more of its
 * process's requests than that would be taken for decided, and never placed.
 */
export const PUBLISH_WINDOW_ORDERED_EVENTS_MAX = 4096;

export const DEFAULT_LIMITS = {
  /** Largest frame a replica or client accepts; a bigger length prefix closes the connection. */
  frameBytesMax: 4 * 1024 * 1024,
  /** Largest single event record (header, content, trailer). */
  eventBytesMax: 256 * 1024,
  /** Events a client puts in one publish batch before sending it. */
  batchEventsMax: 512,
  /** Bytes a client puts in one publish batch before sending it. */
  batchBytesMax: 256 * 1024,
  /** Publish batches a client keeps in flight before publish() waits (backpressure). */
  publishWindowBatches: 64,
  /**
   * Events of ordered channels a client keeps unacknowledged before publish() waits: an
   * ordered event is acknowledged once decided, and the order takes far fewer events a second
   * than the window's batches hold, so without this bound a saturating publisher's queue in
   * front of the order (and each event's wait in it) grows to the whole window.
   */
  publishWindowOrderedEvents: 2_048,
  /**
   * A client sends a batch at most this often (urgent events and full batches go at once): at
   * a steady rate, fewer and larger frames; an event after a quiet spell leaves at once.
   */
  publishLingerMs: 2,
  /**
   * Bytes of batches the quorum acknowledged that one replica has not (its lag), before the
   * publisher stops sending it anything while the others make the quorum: what the publisher
   * holds for that replica alone.
   */
  publishLagBytesMax: 16 * 1024 * 1024,
  /** Events a replica may push to one subscribe session before the client grants more. */
  subscribeCreditsEvents: 8192,
  /** Events a replica puts in one pushed frame. */
  pushBatchEventsMax: 1024,
  /** A replica pushes to its subscribers at most this often; the same trade as publishLingerMs. */
  pushLingerMs: 2,
  /** Output queue capacity when a channel does not set one. */
  queueCapacityEvents: 100_000,
  /** Bytes of queued events one replica holds, all channels and subscribers together. */
  queuedBytesMax: 256 * 1024 * 1024,
  /** Event time to live when a channel does not set one. */
  ttlMs: 10 * 60 * 1000,
  /**
   * How often a replica writes its subscribers' positions on disk channels and deletes what
   * every subscriber is done with. Records are on disk before their publisher is acknowledged
   * whatever this is; after a crash, up to this much of what subscribers acknowledged is sent
   * to them again (their voters drop it).
   */
  storeFlushMs: 100,
  /** Distinct publisher streams (client id + process epoch) a replica remembers for dedupe. */
  dedupeStreamsMax: 100_000,
  /** Events a voter holds waiting for f+1 matching copies. */
  voterPendingEventsMax: 200_000,
  /** Delivered event keys a voter remembers to recognise late copies. */
  voterDeliveredEventsMax: 100_000,
  /** How long an undecided event may wait in the voter before it is dropped and counted. */
  voterPendingMs: 60_000,
  /** Time to complete the authentication handshake. */
  handshakeTimeoutMs: 5_000,
  /**
   * With TLS on, how long a replica waits for a new connection's first byte (a TLS client
   * speaks first, a plain fitbroker client waits for the challenge) before it tells a plain
   * client that this replica needs TLS.
   */
  tlsFirstByteMs: 1_000,
  /** Bytes queued on a socket before a replica stops pushing to it until it drains. */
  socketWriteBufferBytesMax: 4 * 1024 * 1024,
  /** Client identifiers and channel names. */
  nameBytesMax: 128,
  /**
   * Largest frame one replica accepts from another (after it proved it is one): a view change
   * carries the certificates of every instance above the stable checkpoint, and catch-up
   * carries decided batches with their events.
   */
  peerFrameBytesMax: 64 * 1024 * 1024,
  /** The ordering protocol's clock: timeouts and resends are counted in these ticks. */
  consensusTickMs: 10,
  /**
   * The least a request waits to be ordered before its replica votes to replace the leader;
   * it grows to 4x the time decisions take and doubles per failed leader change.
   */
  consensusTimeoutMs: 1_000,
  /** How often a replica resends what it last said to replicas that may have missed it. */
  consensusResendMs: 200,
  /** Requests ordered in one consensus instance. */
  consensusBatchMax: 256,
  /** Consensus instances the leader runs at once. */
  consensusInflightMax: 4,
  /** Instances between checkpoints (the log is truncated at each stable one). */
  consensusCheckpointInterval: 32,
  /** Instances accepted above the stable checkpoint: a multiple of the interval, at least twice it. */
  consensusLogWindow: 128,
  /**
   * Decided batches kept below the stable checkpoint to bring a lagging replica up to date
   * batch by batch; one further behind installs a snapshot instead.
   */
  consensusRetainDecided: 256,
  /** Requests waiting to be ordered on one replica; more wait in the replica for room. */
  consensusPendingMax: 100_000,
  /**
   * Seqs an attestation (a replica's word that it holds a request's body) counts for past the
   * seq its replica had executed: a request that fewer than f+1 replicas attested within them
   * is let go, and its publisher told (FIT_ERR_ORDER_EXPIRED). At least
   * n × consensusPendingMax / ((f+1) × consensusBatchMax) + consensusInflightMax +
   * consensusLogWindow, so that a request waiting behind a full pending is never let go. The
   * same on every replica.
   */
  consensusAttestationSeqs: 1_024,
  /**
   * Events of ordered channels one connection may have waiting to be decided; past it, the
   * replica stops reading from that connection until the order catches up (TCP backpressure).
   */
  orderBacklogEventsMax: 10_000,
  /**
   * Requests of one client id this replica takes into the order at once, all its connections
   * together and past their end: submitted, not yet decided or let go. Its further requests wait
   * for them, unacknowledged. Bounds what one publisher takes of consensusPendingMax.
   */
  orderClientRequestsMax: 8_192,
  /**
   * Events one publisher signature covers (pks, pke): a power of two, at most 65,536. Each
   * doubling saves subscribers half their signature checks and adds 32 bytes to every event
   * (one more hash of its Merkle path).
   */
  signatureBatchEventsMax: 32,
  /** Connections one client id may hold to one replica; one more is refused (FIT_ERR_TOO_MANY_CONNECTIONS). */
  connectionsPerClientMax: 64,
  /**
   * Connections from one source address that have not authenticated yet, at once; one more is
   * closed at once (FIT_ERR_TOO_MANY_CONNECTIONS). Bounds what a flood of handshakes that never
   * finish costs a replica, whoever sends it.
   */
  handshakesPerAddressMax: 256,
  /**
   * Events per second one client id may publish to one replica, on average; past it the replica
   * stops reading that client's connection until it is back under (throttling, as Kafka's quotas).
   */
  clientEventsPerSecondMax: 200_000,
  /** Events a client may publish at once above that rate (the token bucket's size). */
  clientEventsBurstMax: 400_000,
  /**
   * Request frames of one client id waiting for an answer on one replica (ordered publishes
   * waiting for the order, control changes waiting for a decision); past it the replica stops
   * reading the connection that sent more, until half are answered.
   */
  clientRequestsPendingMax: 1_024,
  /**
   * On SIGTERM, how long a replica waits for requests it has not answered yet (publishes
   * waiting for the order, control changes) before it closes its connections anyway.
   */
  shutdownDrainMs: 2_000,
  /** On SIGTERM, the longest a replica takes to stop: past it the process exits with code 1. */
  shutdownTimeoutMs: 5_000,
} as const;

export type Limits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number };

export function limitsWith(overrides: Partial<Limits> | undefined): Limits {
  return { ...DEFAULT_LIMITS, ...(overrides ?? {}) };
}
