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
 * The protocol's client names for a publishing process's events: evr/PROCESS for a run of a
 * section, its payload `CHANNEL/` then the records in base64 (a channel name has no `/`).
 * Replicas before session 19 named runs evs/CHANNEL/PROCESS, and before session 17 ordered
 * one event per request as ev/CHANNEL/PROCESS, their payload the records alone; both still
 * execute from their journals, as they did then.
 *
 * A process numbers its events in one sequence across channels, so a run is named by its
 * process alone: then (client, seq) is one request whatever the channel (a faulty publisher
 * that reuses a seq on two channels sends two bodies of one request, which the protocol
 * handles), and the protocol's record of what was decided, like the record of events placed
 * (placedEventsKeys), is one per process. Kept per channel, each record held the seqs the
 * process used on the other channels as gaps, 4,096 of them per process and channel in every
 * snapshot (docs/consensus.md, "One request per publish section"). The older kinds keep their
 * records per channel: a replica that restored an older snapshot and executes the older
 * requests above it must record them as the replicas that executed them before did, or their
 * records (and what they skip) would differ. The prefixes differ, so that no request of one
 * kind looks decided because of a request of another.
 */
export const EVENT_PREFIX = 'ev/';
export const SECTION_PREFIX = 'evs/';
export const RUN_PREFIX = 'evr/';
/** Where the events a run placed are remembered: evp/PROCESS. */
const PLACED_PREFIX = 'evp/';

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

/** A run's client name: its process (publisher id and epoch) by a 128-bit digest, which every reference in a view change carries. */
export function runClient(process: string): string {
  return `${RUN_PREFIX}${sha256(process).slice(0, 32)}`;
}

/** Whether a request is an ordered channel's events (of any of the three kinds). */
export function isEventRequest(client: string): boolean {
  return client.startsWith(RUN_PREFIX) || client.startsWith(SECTION_PREFIX) || client.startsWith(EVENT_PREFIX);
}

export interface EventRequestBody {
  channel: string;
  /** The records back to back, in base64. */
  records: string;
  /** Where what it places is remembered, and the other record an event it repeats may be in (placedEventsKeys). */
  placed: { key: string; also: string };
}

/** An event request's channel, records and records of events placed; undefined for another kind of request, or a run whose payload names no channel. */
export function eventRequestBody(req: Req): EventRequestBody | undefined {
  if (req.client.startsWith(RUN_PREFIX)) {
    const cut = req.payload.indexOf('/');
    if (cut <= 0) return undefined;
    const channel = req.payload.slice(0, cut);
    return { channel, records: req.payload.slice(cut + 1), placed: placedEventsKeys(channel, req.client.slice(RUN_PREFIX.length), RUN_PREFIX) };
  }
  const prefix = req.client.startsWith(SECTION_PREFIX) ? SECTION_PREFIX : req.client.startsWith(EVENT_PREFIX) ? EVENT_PREFIX : undefined;
  if (prefix === undefined) return undefined;
  const at = req.client.lastIndexOf('/');
  const channel = req.client.slice(prefix.length, at);
  return { channel, records: req.payload, placed: placedEventsKeys(channel, req.client.slice(at + 1), prefix) };
}

/**
 * Where the events an event request places are remembered (`key`), and the other record an
 * event it repeats may be in (`also`: skipped too, and added to `key`). Around an upgrade both
 * kinds of run can be decided with the same events, in either order: a publisher resends what
 * was not acknowledged as a new run, while an older run attested before the stop may still be
 * decided. The per-process record is empty until the first new run is decided, the same point
 * at every replica, so consulting it changes nothing an older run did before the upgrade.
 */
function placedEventsKeys(channel: string, process: string, prefix: string): { key: string; also: string } {
  const perProcess = PLACED_PREFIX + process;
  const perChannel = `${EVENT_PREFIX}${channel}/${process}`;
  return prefix === RUN_PREFIX ? { key: perProcess, also: perChannel } : { key: perChannel, also: perProcess };
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
      client = runClient(process);
    }
    let bytes = first.record.length;
    let j = i + 1;
    for (; j < events.length && j - i < REQUEST_EVENTS_MAX; j++) {
      const e = events[j]!;
      if (e.process !== process || e.urgent !== first.urgent || bytes + e.record.length > REQUEST_BYTES_MAX) break;
      bytes += e.record.length;
    }
    const records = j - i === 1 ? first.record : Buffer.concat(events.slice(i, j).map((e) => e.record), bytes);
    out.push({ req: { client, seq: first.seq, payload: `${channel}/${records.toString('base64')}`, ...(first.urgent ? { urgent: true } : {}) }, events: j - i });
    i = j;
  }
  return out;
}
