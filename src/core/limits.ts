// Every limit in one place, with its unit in its name. docs/limits.md explains each; the
// config's `limits:` section may override the ones marked there as configurable.

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
   * A client sends a batch at most this often (urgent events and full batches go at once): at
   * a steady rate, fewer and larger frames; an event after a quiet spell leaves at once.
   */
  publishLingerMs: 2,
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
  /** Bytes queued on a socket before a replica stops pushing to it until it drains. */
  socketWriteBufferBytesMax: 4 * 1024 * 1024,
  /** Client identifiers and channel names. */
  nameBytesMax: 128,
} as const;

export type Limits = { -readonly [K in keyof typeof DEFAULT_LIMITS]: number };

export function limitsWith(overrides: Partial<Limits> | undefined): Limits {
  return { ...DEFAULT_LIMITS, ...(overrides ?? {}) };
}
