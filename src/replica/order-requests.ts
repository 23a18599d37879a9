// What an ordered channel's events are ordered as (docs/consensus.md, "One request per publish
// section"): one consensus request per run of a publish section, not one per event. Most of
// what ordering costs is per request (a reference, its digest, its attestation, its place in a
// PRE-PREPARE, its waiter), so a run of nine events costs about what one event did.
//
// Attestation needs f+1 replicas holding the same (client, seq, digest), so every correct
// replica must cut the same section into the same requests: the cut depends on the section's
// records alone (their process, urgency, count and sizes), never on what this replica holds or
// decided. A correct publisher resends a batch as the same bytes, so its sections, and the
// requests made of them, are the same at every replica. A faulty one can send overlapping
// sections to different replicas: both may be decided, so execution skips events decided
// before, by (process, seq) (Ordering.execute).

import type { UnorderedEvent } from '../broker/index.js';
import { sha256, type Req } from '../consensus/index.js';

/**
 * The protocol's client names for a publishing process's events on a channel: evs/CHANNEL/PROCESS
 * for a run of a section, ev/CHANNEL/PROCESS for the one-event requests of replicas before
 * runs (still executed from their journals). Apart, so that a one-event request decided before
 * an upgrade never makes a run with the same first seq look decided; and the events placed are
 * remembered under the ev/ name, whichever request placed them.
 */
export const EVENT_PREFIX = 'ev/';
export const SECTION_PREFIX = 'evs/';

/**
 * A request ends after this many events, or before a record that would take its records past
 * REQUEST_BYTES_MAX (a larger record is a request of its own): a request's body is fetched and
 * journaled whole, so it stays about the size one event's could be.
 */
export const REQUEST_EVENTS_MAX = 64;
export const REQUEST_BYTES_MAX = 16 * 1024;

export interface EventRequest {
  req: Req;
  /** Events in it. */
  events: number;
}

/** The process (publisher id and epoch) by a 128-bit digest: every reference in a view change carries it. */
export function eventClient(channel: string, process: string): string {
  return `${SECTION_PREFIX}${channel}/${sha256(process).slice(0, 32)}`;
}

/** The channel of an event request's client name (a run's or a one-event request's), or undefined for another kind of request. */
export function channelOfEventClient(client: string): string | undefined {
  const prefix = client.startsWith(SECTION_PREFIX) ? SECTION_PREFIX : client.startsWith(EVENT_PREFIX) ? EVENT_PREFIX : undefined;
  return prefix === undefined ? undefined : client.slice(prefix.length, client.lastIndexOf('/'));
}

/** The name the events an event request placed are remembered under: its process's, ev/CHANNEL/PROCESS. */
export function placedEventsKey(client: string): string {
  return client.startsWith(SECTION_PREFIX) ? EVENT_PREFIX + client.slice(SECTION_PREFIX.length) : client;
}

/**
 * One section's events as requests, in order: a request is a run of one process's events of
 * one urgency (the reference's `urgent` flag is per request), named by its first event's seq,
 * its payload the records back to back.
 */
export function sectionRequests(channel: string, events: readonly UnorderedEvent[]): EventRequest[] {
  const out: EventRequest[] = [];
  let process: string | undefined;
  let client = '';
  for (let i = 0; i < events.length; ) {
    const first = events[i]!;
    // A section's events are nearly always one process's: its name is hashed once, not per event.
    if (first.process !== process) {
      process = first.process;
      client = eventClient(channel, process);
    }
    let bytes = first.record.length;
    let j = i + 1;
    for (; j < events.length && j - i < REQUEST_EVENTS_MAX; j++) {
      const e = events[j]!;
      if (e.process !== process || e.urgent !== first.urgent || bytes + e.record.length > REQUEST_BYTES_MAX) break;
      bytes += e.record.length;
    }
    const records = j - i === 1 ? first.record : Buffer.concat(events.slice(i, j).map((e) => e.record), bytes);
    out.push({ req: { client, seq: first.seq, payload: records.toString('base64'), ...(first.urgent ? { urgent: true } : {}) }, events: j - i });
    i = j;
  }
  return out;
}
