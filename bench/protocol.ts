// Messages between the harness and its worker processes (Node IPC over fork()).

import type { Endpoint } from './systems/types.js';

export interface WorkerInit {
  type: 'init';
  endpoint: Endpoint;
  kind: 'publisher' | 'subscriber';
  index: number;
  channels: string[];
  size: number;
}

/** Publish `events` as fast as the client allows, or at `rate` events/s for `durationMs`. */
export interface PublishCommand {
  type: 'publish';
  events?: number;
  rate?: number;
  durationMs?: number;
}

/** Publish `count` urgent (priority 3) events, one every `everyMs`, each marked with URGENT_MARK (fitbroker only). */
export interface UrgentCommand {
  type: 'urgent';
  count: number;
  everyMs: number;
}

export type ToWorker = WorkerInit | PublishCommand | UrgentCommand | { type: 'reset' } | { type: 'count' } | { type: 'report' } | { type: 'exit' };

export interface PublishDone {
  type: 'published';
  events: number;
  /** process.hrtime ns, as decimal strings (IPC is JSON). */
  startNs: string;
  /** After flush(): everything written, or acknowledged where the system acknowledges. */
  endNs: string;
}

export interface SubscriberReport {
  type: 'report';
  received: number;
  firstNs: string;
  lastNs: string;
  histogram: string;
  /** The longest time between two deliveries in the phase (a stall: a leader change, say). */
  longestGapMs: number;
  /** A subscriber: when it called subscribe(), as process.hrtime ns. */
  subscribeNs?: string;
  /** Urgent events (URGENT_MARK) apart, when the phase had any: their latency, and how many events came before each. */
  urgent?: { histogram: string; positions: number[] };
}

export type FromWorker = { type: 'ready' } | { type: 'count'; received: number } | PublishDone | SubscriberReport | { type: 'error'; message: string };
