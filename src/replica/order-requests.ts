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
 * The protocol's client names for a publishing process's events on a channel:
 * evr/CHANNEL/PROCESS for a run of a section. Replicas before session 19 named runs
 * evs/CHANNEL/PROCESS, and before session 17 ordered one event per request as
 * ev/CHANNEL/PROCESS; both still execute from their journals, as they did then.
 *
 * A process numbers its events in one sequence across channels, so what was decided and what
 * was placed are remembered per process (recordOf, placedEventsKey): kept per channel, each
 * record holds the seqs the process used on other channels as gaps, 4,096 of them per process
 * and channel in every snapshot (docs/consensus.md, "One request per publish section"). The
 * older names keep their records per channel: a replica that restored an older snapshot and
 * executes the older requests above it must record them as the replicas that executed them
 * before did, or their records (and what they skip) would differ. The prefixes differ, so that
 * no request of one kind looks decided because of a request of another.
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

/** The process (publisher id and epoch) by a 128-bit digest: every reference in a view change carries it. */
export function eventClient(channel: string, process: string): string {
  return `${RUN_PREFIX}${channel}/${sha256(process).slice(0, 32)}`;
}

const prefixOf = (client: string): string | undefined =>
  client.startsWith(RUN_PREFIX) ? RUN_PREFIX : client.startsWith(SECTION_PREFIX) ? SECTION_PREFIX : client.startsWith(EVENT_PREFIX) ? EVENT_PREFIX : undefined;

/** The channel of an event request's client name (of any of the three kinds), or undefined for another kind of request. */
export function channelOfEventClient(client: string): string | undefined {
  const prefix = prefixOf(client);
  return prefix === undefined ? undefined : client.slice(prefix.length, client.lastIndexOf('/'));
}

/** ConsensusOptions.recordOf: a run's decided seqs are kept per process (evr/PROCESS); any other client's under its name. */
export function decidedRecordOf(client: string): string {
  return client.startsWith(RUN_PREFIX) ? RUN_PREFIX + client.slice(client.lastIndexOf('/') + 1) : client;
}

/**
 * Where the events an event request places are remembered (`key`), and the other record an
 * event it repeats may be in (`also`: skipped too). Around an upgrade both kinds of run can be
 * decided with the same events: a publisher resends what was not acknowledged as a new run,
 * while an older run attested before the stop may still be decided, in either order. The
 * per-process record is empty until the first new run is decided, the same point at every
 * replica, so consulting it changes nothing an older run did before the upgrade.
 */
export function placedEventsKeys(client: string): { key: string; also?: string } {
  const prefix = prefixOf(client);
  if (prefix === undefined) return { key: client };
  const rest = client.slice(prefix.length);
  const perProcess = PLACED_PREFIX + rest.slice(rest.lastIndexOf('/') + 1);
  const perChannel = EVENT_PREFIX + rest;
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
