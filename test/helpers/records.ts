// Builders for event records and PUBLISH frames, written with the real encoders so tests
// exercise the same bytes a publisher sends.

import { ContentType, type Priority } from '../../src/core/index.js';
import type { UnorderedEvent } from '../../src/broker/index.js';
import {
  decodePublish,
  publishHeaderBytes,
  publishSectionHeaderBytes,
  recordBytes,
  writePublishFrameHeader,
  writePublishHeader,
  writePublishSection,
  writeRecord,
  EPOCH_BYTES,
  PUBLISH_FIXED_BYTES,
  PUBLISH_SEQ_AT,
  RecordCursor,
  type PublishSection,
} from '../../src/codec/index.js';

export const EPOCH_A = Buffer.from('a1a2a3a4a5a6a7a8', 'hex');
export const EPOCH_B = Buffer.from('b1b2b3b4b5b6b7b8', 'hex');
export const T0_MS = 1_700_000_000_000;

export interface EventSpec {
  publisher?: string | Buffer;
  epoch?: Buffer;
  seq?: number;
  timestampMs?: number;
  priority?: Priority;
  contentType?: ContentType;
  content?: string | Buffer;
}

/** One complete record; defaults: publisher "probe", EPOCH_A, seq 1, T0_MS, priority 0, text "hello". */
export function makeRecord(spec: EventSpec = {}): Buffer {
  const publisher = Buffer.isBuffer(spec.publisher) ? spec.publisher : Buffer.from(spec.publisher ?? 'probe', 'utf8');
  const content = Buffer.isBuffer(spec.content) ? spec.content : Buffer.from(spec.content ?? 'hello', 'utf8');
  const epoch = spec.epoch ?? EPOCH_A;
  if (epoch.length !== EPOCH_BYTES) throw new Error(`test bug: epoch must be ${EPOCH_BYTES} bytes`);
  const out = Buffer.alloc(recordBytes(publisher.length, content.length));
  const end = writeRecord(out, 0, {
    publisher,
    epoch,
    seq: spec.seq ?? 1,
    timestampMs: spec.timestampMs ?? T0_MS,
    priority: spec.priority ?? 0,
    contentType: spec.contentType ?? ContentType.Text,
    content,
  });
  if (end !== out.length) throw new Error(`test bug: writeRecord wrote ${end} bytes, recordBytes said ${out.length}`);
  return out;
}

/** A whole one-channel PUBLISH frame (length prefix included), as a publisher sends it. */
export function publishFrame(channel: string, records: Buffer[], reqSeq = 1, count = records.length): Buffer {
  const ch = Buffer.from(channel, 'utf8');
  const header = publishHeaderBytes(ch);
  const frame = Buffer.alloc(header + records.reduce((n, r) => n + r.length, 0));
  let o = writePublishHeader(frame, ch, count, frame.length);
  frame.writeUInt32BE(reqSeq, PUBLISH_SEQ_AT);
  for (const r of records) o += r.copy(frame, o);
  return frame;
}

/** A PUBLISH frame with a section per entry, in order (a channel may appear twice). */
export function multiPublishFrame(sections: { channel: string; records: Buffer[] }[], reqSeq = 1): Buffer {
  const chans = sections.map((s) => Buffer.from(s.channel, 'utf8'));
  const bytes = sections.reduce((n, s, i) => n + publishSectionHeaderBytes(chans[i]!) + s.records.reduce((m, r) => m + r.length, 0), PUBLISH_FIXED_BYTES);
  const frame = Buffer.alloc(bytes);
  let o = writePublishFrameHeader(frame, sections.length, bytes);
  frame.writeUInt32BE(reqSeq, PUBLISH_SEQ_AT);
  sections.forEach((s, i) => {
    o = writePublishSection(frame, o, chans[i]!, s.records.length, s.records.reduce((m, r) => m + r.length, 0));
    for (const r of s.records) o += r.copy(frame, o);
  });
  return frame;
}

/** The frame body a replica hands to BrokerService.publish, with its one section. */
export function publishBody(channel: string, records: Buffer[], count = records.length): { body: Buffer; sections: PublishSection[] } {
  const body = publishFrame(channel, records, 1, count).subarray(4);
  return { body, sections: decodePublish(body).sections };
}

/** An event as BrokerService.toOrder hands it over: the record, its process in hex, its seq. */
export function orderedEvent(seq: number, o: { epoch?: Buffer; priority?: Priority; content?: string | Buffer } = {}): UnorderedEvent {
  const record = makeRecord({ publisher: 'pub1', epoch: o.epoch ?? EPOCH_A, seq, priority: o.priority ?? 0, content: o.content ?? `e${seq}` });
  const cursor = new RecordCursor(record, 0, Infinity);
  cursor.next();
  return { record, process: record.toString('hex', cursor.streamFrom, cursor.streamTo), seq, urgent: (o.priority ?? 0) === 3 };
}
