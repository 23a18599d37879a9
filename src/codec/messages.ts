// The messages between clients and replicas. Event traffic (PUBLISH, ACK, EVENTS, CREDIT) is
// a fixed binary layout because it is the hot path; the rare control messages (handshake,
// subscribe, status, errors) are JSON, which keeps them readable in a packet capture and easy
// to extend. Each decoder checks every length against the frame before reading.

import { FitError, type ErrorFields } from '../core/index.js';
import { FRAME_HEADER_BYTES } from './frame.js';
import type { FramePool } from './frame-pool.js';
import { u16, u32 } from './bytes.js';

export const MessageType = {
  Challenge: 1,
  Hello: 2,
  Welcome: 3,
  Request: 4,
  Reply: 5,
  Publish: 6,
  Ack: 7,
  Events: 8,
  Credit: 9,
  /** Replica to replica: one ordering-protocol message as JSON (src/consensus/wire.ts). */
  Consensus: 10,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export function malformed(why: string, fields: ErrorFields = {}): FitError {
  return new FitError('FIT_ERR_MALFORMED', `malformed frame: ${why}`, fields);
}

/** A JSON control message, framed: u32 length | u8 type | UTF-8 JSON. */
export function encodeJson(type: MessageType, value: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(value), 'utf8');
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + json.length);
  out.writeUInt32BE(1 + json.length, 0);
  out.writeUInt8(type, 4);
  json.copy(out, 5);
  return out;
}

export function decodeJson(body: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8', 1));
  } catch {
    throw malformed('control message is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('control message is not a JSON object');
  return value as Record<string, unknown>;
}

// PUBLISH: u8 type | u32 reqSeq | u16 sections | sections, each
//   u8 channelBytes | channel | u16 count | u32 recordsBytes | records
// One frame carries a publisher's events for many channels: at 30,000 events/s over fifty
// channels, a frame per channel held one or two events and replicas paid per-frame costs per
// event. A replica accepts or refuses a frame whole.
export const PUBLISH_SEQ_AT = FRAME_HEADER_BYTES + 1;
/** PUBLISH bytes before the first section. */
export const PUBLISH_FIXED_BYTES = FRAME_HEADER_BYTES + 1 + 4 + 2;

export function publishSectionHeaderBytes(channel: Buffer): number {
  return 1 + channel.length + 2 + 4;
}

/** Header bytes of a one-channel PUBLISH frame. */
export function publishHeaderBytes(channel: Buffer): number {
  return PUBLISH_FIXED_BYTES + publishSectionHeaderBytes(channel);
}

/** Writes the fixed PUBLISH header; the sequence number is patched in at send time. */
export function writePublishFrameHeader(out: Buffer, sections: number, frameBytes: number): number {
  let o = out.writeUInt32BE(frameBytes - FRAME_HEADER_BYTES, 0);
  o = out.writeUInt8(MessageType.Publish, o);
  o = out.writeUInt32BE(0, o);
  return out.writeUInt16BE(sections, o);
}

export function writePublishSection(out: Buffer, at: number, channel: Buffer, count: number, recordsBytes: number): number {
  let o = out.writeUInt8(channel.length, at);
  o += channel.copy(out, o);
  o = out.writeUInt16BE(count, o);
  return out.writeUInt32BE(recordsBytes, o);
}

/** Writes the header of a one-channel PUBLISH frame whose records fill the rest of it. */
export function writePublishHeader(out: Buffer, channel: Buffer, count: number, frameBytes: number): number {
  writePublishFrameHeader(out, 1, frameBytes);
  return writePublishSection(out, PUBLISH_FIXED_BYTES, channel, count, frameBytes - publishHeaderBytes(channel));
}

export interface PublishSection {
  channel: string;
  count: number;
  recordsAt: number;
  recordsEnd: number;
}

export interface PublishView {
  reqSeq: number;
  sections: PublishSection[];
}

export function decodePublish(body: Buffer): PublishView {
  if (body.length < 7) throw malformed('PUBLISH shorter than its header');
  const reqSeq = u32(body, 1);
  const n = u16(body, 5);
  if (n === 0) throw malformed('PUBLISH with no channel section');
  const sections: PublishSection[] = [];
  let o = 7;
  for (let i = 0; i < n; i++) {
    if (o + 1 > body.length) throw malformed(`PUBLISH section ${i} runs past the frame`);
    const channelBytes = body[o]!;
    const recordsAt = o + 1 + channelBytes + 6;
    if (recordsAt > body.length) throw malformed(`PUBLISH section ${i} runs past the frame`);
    const recordsEnd = recordsAt + u32(body, recordsAt - 4);
    if (recordsEnd > body.length) throw malformed(`PUBLISH section ${i} records run past the frame`);
    sections.push({ channel: body.toString('utf8', o + 1, o + 1 + channelBytes), count: u16(body, recordsAt - 6), recordsAt, recordsEnd });
    o = recordsEnd;
  }
  if (o !== body.length) throw malformed(`PUBLISH has ${body.length - o} bytes after its last section`);
  return { reqSeq, sections };
}

// ACK: u8 type | u32 reqSeq | u32 accepted | u32 duplicates
export function encodeAck(reqSeq: number, accepted: number, duplicates: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 13);
  out.writeUInt32BE(13, 0);
  out.writeUInt8(MessageType.Ack, 4);
  out.writeUInt32BE(reqSeq, 5);
  out.writeUInt32BE(accepted, 9);
  out.writeUInt32BE(duplicates, 13);
  return out;
}

export function decodeAck(body: Buffer): { reqSeq: number; accepted: number; duplicates: number } {
  if (body.length !== 13) throw malformed('ACK has the wrong length');
  return { reqSeq: body.readUInt32BE(1), accepted: body.readUInt32BE(5), duplicates: body.readUInt32BE(9) };
}

// EVENTS: u8 type | u16 sections | sections, each
//   u32 streamId | u32 firstPos | u16 count | u32 recordsBytes | records
// One frame carries what a replica pushes to one connection in one pass, for every stream
// (channel) of it: a subscriber of fifty channels then handles one frame per pass, not fifty.
const EVENTS_FIXED_BYTES = FRAME_HEADER_BYTES + 1 + 2;
export const EVENTS_SECTION_HEADER_BYTES = 4 + 4 + 2 + 4;

export interface EventsSection {
  streamId: number;
  firstPos: number;
  count: number;
  recordsAt: number;
  recordsEnd: number;
}

/** Where a record lies: bytes [at, at + len) of buf. Queues keep these instead of a Buffer view each. */
export interface RecordRef {
  readonly buf: Buffer;
  readonly at: number;
  readonly len: number;
}

/** A whole Buffer as a RecordRef. */
export function refOf(rec: Buffer): RecordRef {
  return { buf: rec, at: 0, len: rec.length };
}

/**
 * Gathers sections for one EVENTS frame and writes them in one allocation. Records are copied
 * once, here, from where the queues keep them; records that lie back to back in one buffer
 * (a replica copies a channel's sections into one slab, so most do) are copied together.
 */
export class EventsWriter {
  /** `pool`: where frames are built (FramePool); whoever sends a frame releases it there once written. */
  constructor(private readonly pool?: FramePool) {}

  private readonly heads: number[] = [];
  private readonly recs: (readonly RecordRef[])[] = [];
  private recordBytes = 0;

  get bytes(): number {
    return EVENTS_FIXED_BYTES + this.recs.length * EVENTS_SECTION_HEADER_BYTES + this.recordBytes;
  }

  get sections(): number {
    return this.recs.length;
  }

  /** Adds a section; `records` is read when the frame is taken, so it must not change before. */
  add(streamId: number, firstPos: number, records: readonly RecordRef[]): void {
    this.heads.push(streamId, firstPos >>> 0);
    this.recs.push(records);
    for (let i = 0; i < records.length; i++) this.recordBytes += records[i]!.len;
  }

  /** The frame, or undefined if no section was added; the writer is empty again afterwards. */
  take(): Buffer | undefined {
    if (this.recs.length === 0) return undefined;
    const out = this.pool ? this.pool.take(this.bytes) : Buffer.allocUnsafe(this.bytes);
    out.writeUInt32BE(out.length - FRAME_HEADER_BYTES, 0);
    out.writeUInt8(MessageType.Events, 4);
    let o = out.writeUInt16BE(this.recs.length, 5);
    for (let i = 0; i < this.recs.length; i++) {
      const recs = this.recs[i]!;
      const lenAt = o + 10;
      o = out.writeUInt32BE(this.heads[2 * i]!, o);
      o = out.writeUInt32BE(this.heads[2 * i + 1]!, o);
      o = out.writeUInt16BE(recs.length, o) + 4;
      const from = o;
      for (let k = 0; k < recs.length; ) {
        const first = recs[k]!;
        let end = first.at + first.len;
        for (k++; k < recs.length && recs[k]!.buf === first.buf && recs[k]!.at === end; k++) end += recs[k]!.len;
        o += first.buf.copy(out, o, first.at, end);
      }
      out.writeUInt32BE(o - from, lenAt);
    }
    this.heads.length = 0;
    this.recs.length = 0;
    this.recordBytes = 0;
    return out;
  }
}

/** A one-section EVENTS frame (the answer to a receive pull, and tests). */
export function encodeEvents(streamId: number, firstPos: number, records: Buffer[]): Buffer {
  const w = new EventsWriter();
  w.add(streamId, firstPos, records.map(refOf));
  return w.take()!;
}

export function decodeEvents(body: Buffer): EventsSection[] {
  if (body.length < 3) throw malformed('EVENTS shorter than its header');
  const n = u16(body, 1);
  const sections: EventsSection[] = [];
  let o = 3;
  for (let i = 0; i < n; i++) {
    const recordsAt = o + EVENTS_SECTION_HEADER_BYTES;
    if (recordsAt > body.length) throw malformed(`EVENTS section ${i} runs past the frame`);
    const recordsEnd = recordsAt + u32(body, o + 10);
    if (recordsEnd > body.length) throw malformed(`EVENTS section ${i} records run past the frame`);
    sections.push({ streamId: u32(body, o), firstPos: u32(body, o + 4), count: u16(body, o + 8), recordsAt, recordsEnd });
    o = recordsEnd;
  }
  if (o !== body.length) throw malformed(`EVENTS has ${body.length - o} bytes after its last section`);
  return sections;
}

// CREDIT: u8 type | u32 streamId | u32 credits added | u32 ackedBelow (positions below it are
// acknowledged; a count rather than a last position, so "nothing yet" is 0, not -1)
export function encodeCredit(streamId: number, credits: number, ackedBelow: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 13);
  out.writeUInt32BE(13, 0);
  out.writeUInt8(MessageType.Credit, 4);
  out.writeUInt32BE(streamId, 5);
  out.writeUInt32BE(credits, 9);
  out.writeUInt32BE(ackedBelow >>> 0, 13);
  return out;
}

export function decodeCredit(body: Buffer): { streamId: number; credits: number; ackedBelow: number } {
  if (body.length !== 13) throw malformed('CREDIT has the wrong length');
  return { streamId: body.readUInt32BE(1), credits: body.readUInt32BE(5), ackedBelow: body.readUInt32BE(9) };
}
