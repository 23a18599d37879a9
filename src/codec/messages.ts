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

/** Where records go one by one: a frame being built (EventsWriter), or a list (tests, pull). */
export interface RecordSink {
  record(buf: Buffer, at: number, len: number, priority: number, expiresAtMs: number): void;
}

/**
 * Gathers sections for one EVENTS frame and writes them in one allocation. Records are copied
 * once, at take(), from where the queues keep them; records handed in back to back in one
 * buffer (a replica copies a channel's sections into one slab, so most are) are kept as one
 * run and copied together. A queue hands its records in one at a time (record()), so no
 * object is made per record on the way.
 */
export class EventsWriter implements RecordSink {
  /** `pool`: where frames are built (FramePool); whoever sends a frame releases it there once written. */
  constructor(private readonly pool?: FramePool) {}

  /** Per section: stream id, first position, record count, index of its first run. */
  private readonly heads: number[] = [];
  /** Runs of records lying back to back: runBufs[i] bytes [runAt[i], runEnd[i]). */
  private readonly runBufs: Buffer[] = [];
  private readonly runAt: number[] = [];
  private readonly runEnd: number[] = [];
  private recordBytes = 0;
  private recordCount = 0;
  /** A section is open: record() adds to it. */
  private open = false;
  /** The open section has its head in `heads`; until its first record it is only named here. */
  private headed = false;
  private openStream = 0;
  private openPos = 0;

  /** The frame's size so far, counting the header of an open section that has no record yet. */
  get bytes(): number {
    return this.frameBytes + (this.open && !this.headed ? EVENTS_SECTION_HEADER_BYTES : 0);
  }

  get sections(): number {
    return this.heads.length / 4;
  }

  /** Records in the frame so far. */
  get records(): number {
    return this.recordCount;
  }

  /**
   * Adds a section of `records` (copied at take(), so they must not change before), even an
   * empty one: the answer to a receive pull that found nothing is a frame too.
   */
  add(streamId: number, firstPos: number, records: readonly RecordRef[]): void {
    this.begin(streamId, firstPos);
    if (records.length === 0) this.head(firstPos);
    for (let i = 0; i < records.length; i++) this.record(records[i]!.buf, records[i]!.at, records[i]!.len);
    this.end();
  }

  /** Opens a section of `streamId` whose first record is at position `firstPos`; record() fills it. */
  begin(streamId: number, firstPos: number): void {
    this.open = true;
    this.headed = false;
    this.openStream = streamId;
    this.openPos = firstPos;
  }

  /** Closes the open section (one with no record leaves no trace). */
  end(): void {
    this.open = false;
    this.headed = false;
  }

  /** The next record of the open section (its bytes are read at take()). */
  record(buf: Buffer, at: number, len: number): void {
    const heads = this.heads;
    let h = heads.length - 4;
    // A section's count is a u16: a longer one goes on in a section of its own.
    if (!this.headed || heads[h + 2] === 0xffff) {
      if (!this.open) throw new FitError('FIT_ERR_INTERNAL', 'invariant broken: EventsWriter.record() with no section open');
      this.head(this.headed ? heads[h + 1]! + 0xffff : this.openPos);
      h += 4;
    }
    heads[h + 2]!++;
    this.recordCount++;
    this.recordBytes += len;
    const r = this.runBufs.length - 1;
    // A run never spans two sections: each section's records follow its own header.
    if (r >= heads[h + 3]! && this.runBufs[r] === buf && this.runEnd[r] === at) this.runEnd[r] = at + len;
    else {
      this.runBufs.push(buf);
      this.runAt.push(at);
      this.runEnd.push(at + len);
    }
  }

  /**
   * The frame, or undefined if no record was added; the writer is empty again afterwards. An
   * open section stays open: what record() adds next goes in the next frame, at the position
   * after the last one taken.
   */
  take(): Buffer | undefined {
    const heads = this.heads;
    if (heads.length === 0) return undefined;
    const out = this.pool ? this.pool.take(this.frameBytes) : Buffer.allocUnsafe(this.frameBytes);
    out.writeUInt32BE(out.length - FRAME_HEADER_BYTES, 0);
    out.writeUInt8(MessageType.Events, 4);
    let o = out.writeUInt16BE(heads.length / 4, 5);
    for (let h = 0; h < heads.length; h += 4) {
      const lenAt = o + 10;
      o = out.writeUInt32BE(heads[h]!, o);
      o = out.writeUInt32BE(heads[h + 1]!, o);
      o = out.writeUInt16BE(heads[h + 2]!, o) + 4;
      const from = o;
      const runTo = h + 4 < heads.length ? heads[h + 7]! : this.runBufs.length;
      for (let r = heads[h + 3]!; r < runTo; r++) o += this.runBufs[r]!.copy(out, o, this.runAt[r], this.runEnd[r]);
      out.writeUInt32BE(o - from, lenAt);
    }
    if (this.open && this.headed) {
      const last = heads.length - 4;
      this.openPos = heads[last + 1]! + heads[last + 2]!;
      this.headed = false;
    }
    heads.length = 0;
    this.runBufs.length = 0;
    this.runAt.length = 0;
    this.runEnd.length = 0;
    this.recordBytes = 0;
    this.recordCount = 0;
    return out;
  }

  /** Writes the open section's head, its first record at `firstPos`. */
  private head(firstPos: number): void {
    this.heads.push(this.openStream, firstPos >>> 0, 0, this.runBufs.length);
    this.headed = true;
  }

  private get frameBytes(): number {
    return EVENTS_FIXED_BYTES + this.sections * EVENTS_SECTION_HEADER_BYTES + this.recordBytes;
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
