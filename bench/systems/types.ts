// The contract every system in the benchmark implements, ours and the peers alike, so that
// one harness drives them all the same way: the same payload, the same number of publisher
// and subscriber processes, the same pacing, the same latency clock.
//
// A system has two halves. The server half runs in the harness process: it starts the
// broker (our replicas, or nats-server / mosquitto / redis-server) and reports the pids whose
// memory we sample. The client half runs in each worker process (bench/worker.ts): it
// publishes or subscribes the way that system's users get their best throughput — publish
// without awaiting each message, let the client batch, and wait only on the client's own
// backpressure signal or on a window of outstanding acknowledgements.

export interface RunShape {
  /** Channel (subject, topic) names, e.g. bench.0 … bench.49. */
  channels: string[];
  /** Publisher processes and subscriber processes. */
  publishers: number;
  subscribers: number;
  /** Payload bytes per event. */
  size: number;
}

/** What the server half hands to every worker: enough to connect, as plain JSON. */
export interface Endpoint {
  system: SystemName;
  mode: string;
  /** System-specific connection details (ports, cluster directory, …). */
  params: Record<string, unknown>;
}

export interface ServerHandle {
  endpoint: Endpoint;
  /** Processes whose peak resident memory the run reports (replicas, or the one server). */
  pids(): number[];
  stop(): Promise<void>;
  /** Kills the current leader of the ordering protocol (SIGKILL); the systems that have one. */
  killLeader?(): Promise<number>;
  /**
   * Copies each server process has dropped so far by its own count, one per subscriber an
   * event was dropped for (null where it did not answer), for the systems that count them: a
   * shortfall in a phase is then a drop or not.
   */
  drops?(): Promise<(number | null)[]>;
}

export interface ServerSide {
  readonly system: SystemName;
  readonly mode: string;
  /** Human label for tables and charts, e.g. "fitbroker bft" or "NATS JetStream (file, acked)". */
  readonly label: string;
  /** fitbroker: the channels' quality of protection (si unless the bench is run with --protection). */
  readonly protection?: string;
  /** fitbroker: where the channels keep their events (memory unless the bench is run with --persist disk). */
  readonly persist?: string;
  /** Undefined when the system can run here; otherwise why not (printed, and the run skipped). */
  unavailable(): Promise<string | undefined>;
  start(shape: RunShape): Promise<ServerHandle>;
}

export interface ClientSide {
  connect(): Promise<void>;
  /** Subscribes to every channel; resolves once the subscriptions are in place. */
  subscribe(channels: string[], onMessage: (payload: Buffer) => void): Promise<void>;
  /**
   * Publishes one payload without waiting for it. Returns false when the client's own
   * backpressure says stop: the caller then awaits drained() before publishing more.
   */
  publish(channel: string, payload: Buffer): boolean;
  drained(): Promise<void>;
  /** Publishes one payload as an urgent event (priority 3); systems without priorities leave it out. */
  publishUrgent?(channel: string, payload: Buffer): boolean;
  /** Resolves once everything published so far was written (or acknowledged, where acked). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The name a worker goes by, and under which ours registers it as a client. */
export function workerName(kind: 'publisher' | 'subscriber', index: number): string {
  return `${kind === 'publisher' ? 'pub' : 'sub'}${index}`;
}

export type SystemName = 'fitbroker' | 'nats' | 'nats-jetstream' | 'mosquitto' | 'redis';

/** Worker-side factory: builds the client for an endpoint, in the role a worker plays. */
export type ClientFactory = (endpoint: Endpoint, role: { kind: 'publisher' | 'subscriber'; index: number; name: string }) => Promise<ClientSide>;
