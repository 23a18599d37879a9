// The data units of the paper (§4): events, channels and their class, the control table.

/** Client ids and channel names: letters, digits, ".", "_", "-", starting with a letter or digit, at most 128 characters. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export type FaultModel = 'cft' | 'bft';
export type OrderMode = 'none' | 'channel' | 'global';
export type Protection = 'si' | 'ha' | 'pks' | 'pke';
export type Persist = 'memory' | 'disk';
/**
 * What a subscriber's full output queue does with one more event (docs/operations.md, "Queues
 * under pressure"): drop its oldest queued event (the paper's behaviour), refuse the newest,
 * or hold the channel's publishers until the queue has room again (backpressure into TCP).
 */
export const OVERFLOW_POLICIES = ['drop-oldest', 'drop-newest', 'block'] as const;
export type OverflowPolicy = (typeof OVERFLOW_POLICIES)[number];

/** Priority 3 is urgent: it overtakes queued events at every hop and never waits for a batch. */
export type Priority = 0 | 1 | 2 | 3;
export const PRIORITY_LEVELS = 4;
export const PRIORITY_URGENT: Priority = 3;

export interface ChannelClass {
  fault: FaultModel;
  order: OrderMode;
  priority: Priority;
  capacityEvents: number;
  ttlMs: number;
  /** What a full subscriber queue does (unordered channels; an ordered channel's log evicts its oldest). */
  overflow: OverflowPolicy;
  persist: Persist;
  protection: Protection;
}

export const ContentType = { Text: 0, Json: 1, Binary: 2 } as const;
export type ContentType = (typeof ContentType)[keyof typeof ContentType];

/** An event as the API sees it; on the wire it is an EventRecord (src/codec/event.ts). */
export interface BrokerEvent {
  channel: string;
  publisher: string;
  /** `<epoch hex>-<sequence>`: unique per publisher across restarts and concurrent processes. */
  id: string;
  timestampMs: number;
  priority: Priority;
  contentType: ContentType;
  /**
   * A view of the memory the event arrived in, shared with other events (over plain TCP a read
   * slab of 1 MiB, over TLS its frame): copy it (`Buffer.from(event.content)`) to keep it past
   * the handler, or all of that memory stays with it.
   */
  content: Buffer;
  /** Ordered channels: the event's position in its channel, the same at every correct subscriber. */
  seq?: number;
  /** `order: global` channels: its position among the events of every ordered channel. */
  global?: number;
}

export interface ReplicaInfo {
  id: number;
  host: string;
  port: number;
  publicKey: string;
  /** Where the replica serves /metrics, /healthz and /readyz over HTTP, on `host`; absent: not served. */
  metricsPort?: number;
}

export interface ClientInfo {
  id: string;
  publicKey: string;
  publish: string[];
  subscribe: string[];
  admin: boolean;
}

/** Who may do what: the state every correct replica must agree on. */
export interface ControlTable {
  channels: Map<string, ChannelClass>;
  clients: Map<string, ClientInfo>;
}

export function mayPublish(client: ClientInfo, channel: string): boolean {
  return client.publish.includes('*') || client.publish.includes(channel);
}

export function maySubscribe(client: ClientInfo, channel: string): boolean {
  return client.subscribe.includes('*') || client.subscribe.includes(channel);
}

/** Replies needed for a result to be trusted: f+1 for bft (one is correct), 1 for cft. */
export function voteQuorum(fault: FaultModel, f: number): number {
  return fault === 'bft' ? f + 1 : 1;
}

/**
 * Replicas that must hold a publish before it is acknowledged. bft: 2f+1, so that at least
 * f+1 correct replicas hold it and every voter can reach f+1 matching copies; f+1 would allow
 * a single correct holder. cft: one replica, the paper's "at least one forwarding".
 */
export function publishQuorum(fault: FaultModel, f: number): number {
  return fault === 'bft' ? 2 * f + 1 : 1;
}
