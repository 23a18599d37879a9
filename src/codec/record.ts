// The event record: the unit a publisher creates, replicas forward untouched, and voters
// compare byte for byte. Layout (big-endian):
//
//   u32 recordBytes (after this field) | u8 version | u8 priority | u8 contentType |
//   u8 protection | u8 publisherBytes | publisher | 8-byte epoch | u32 seqHigh | u32 seqLow |
//   f64 timestampMs | u32 contentBytes | content | u16 trailerBytes | trailer
//
// (publisher, epoch, seq) is the event's identity: the epoch is random per publishing process,
// so restarts and concurrent processes of one client never collide, and seq rises within it.
// `protection` is the channel's quality of protection (0 si, 1 ha, 2 pks, 3 pke) and the
// trailer holds its MAC or signature (src/protection/seal.ts); SI leaves it empty.
// Replicas read only the fixed header fields (priority, timestamp, identity), never content
// or trailer; subscribers check the trailer against the channel's level, not the byte's claim.

import { FitError, type BrokerEvent, type ContentType, type Priority } from '../core/index.js';
import { f64be, u16, u32 } from './bytes.js';

export const RECORD_VERSION = 1;
const FIXED_BEFORE_PUBLISHER = 4 + 5;
const ID_BYTES_AFTER_PUBLISHER = 8 + 8;
const FIXED_AFTER_ID = 8 + 4;
const TRAILER_LEN_BYTES = 2;
export const EPOCH_BYTES = 8;

export interface RecordInput {
  publisher: Buffer;
  epoch: Buffer;
  seq: number;
  timestampMs: number;
  priority: Priority;
  contentType: ContentType;
  content: Buffer;
  /** 0 si, 1 ha, 2 pks, 3 pke (default 0). */
  protection?: number;
  /** Zeroed bytes reserved for the trailer, filled when the record is sealed (default 0). */
  trailerBytes?: number;
}

/** Highest value of the protection byte (pke). */
export const PROTECTION_MAX = 3;

export function recordBytes(publisherBytes: number, contentBytes: number, trailerBytes = 0): number {
  return FIXED_BEFORE_PUBLISHER + publisherBytes + ID_BYTES_AFTER_PUBLISHER + FIXED_AFTER_ID + contentBytes + TRAILER_LEN_BYTES + trailerBytes;
}

/** Writes one record at `offset`; returns the offset after it. */
export function writeRecord(out: Buffer, offset: number, r: RecordInput): number {
  const trailerBytes = r.trailerBytes ?? 0;
  const total = recordBytes(r.publisher.length, r.content.length, trailerBytes);
  let o = offset;
  o = out.writeUInt32BE(total - 4, o);
  o = out.writeUInt8(RECORD_VERSION, o);
  o = out.writeUInt8(r.priority, o);
  o = out.writeUInt8(r.contentType, o);
  o = out.writeUInt8(r.protection ?? 0, o);
  o = out.writeUInt8(r.publisher.length, o);
  o += r.publisher.copy(out, o);
  o += r.epoch.copy(out, o, 0, EPOCH_BYTES);
  o = out.writeUInt32BE(Math.floor(r.seq / 0x1_0000_0000), o);
  o = out.writeUInt32BE(r.seq >>> 0, o);
  o = out.writeDoubleBE(r.timestampMs, o);
  o = out.writeUInt32BE(r.content.length, o);
  o += r.content.copy(out, o);
  o = out.writeUInt16BE(trailerBytes, o);
  out.fill(0, o, o + trailerBytes);
  return o + trailerBytes;
}

/**
 * Writes rising sequence numbers (after `lastSeq`) into the records of a batch the caller built
 * and trusts; returns the last one written. Used when a batch is sent, so that the order of
 * sequence numbers on the wire is the order batches leave the client.
 */
export function numberRecords(buf: Buffer, offset: number, lastSeq: number, end = buf.length): number {
  let seq = lastSeq;
  for (let o = offset; o < end; o += 4 + u32(buf, o)) {
    const at = o + FIXED_BEFORE_PUBLISHER + buf[o + 8]! + EPOCH_BYTES;
    seq++;
    buf.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), at);
    buf.writeUInt32BE(seq >>> 0, at + 4);
  }
  return seq;
}

/**
 * a[aFrom, aFrom+n) === b[bFrom, bFrom+n), for identity fields of ~10-20 bytes: a JS loop is
 * several times cheaper there than Buffer.compare, which validates its arguments and calls
 * into C++. From the end, because identities end with the random epoch and differ there first.
 */
export function sameBytesAt(a: Uint8Array, aFrom: number, b: Uint8Array, bFrom: number, n: number): boolean {
  for (let i = n - 1; i >= 0; i--) if (a[aFrom + i] !== b[bFrom + i]) return false;
  return true;
}

function malformed(why: string, offset: number): FitError {
  return new FitError('FIT_ERR_MALFORMED', `malformed event record at byte ${offset}: ${why}`, { offset });
}

/**
 * Walks the records of a batch in place without copying or decoding content. The fields
 * describe the current record after each successful next(); one cursor is reused per batch
 * so the hot path allocates only the identity key.
 */
export class RecordCursor {
  start = 0;
  end = 0;
  priority: Priority = 0;
  /** The protection byte: 0 si, 1 ha, 2 pks, 3 pke. */
  protection = 0;
  timestampMs = 0;
  seq = 0;
  private publisherEnd = 0;

  /** Walks [offset, limit): one section of a frame, or the rest of the buffer. */
  constructor(
    private buf: Buffer,
    private offset: number,
    private readonly eventBytesMax: number,
    private limit = buf.length,
  ) {}

  /** Moves to `offset`, a record boundary the caller found without this cursor; next() reads from there. */
  seek(offset: number): void {
    this.offset = offset;
  }

  /** Walks [offset, limit) of another buffer: one cursor for many sections, none allocated per section. */
  reset(buf: Buffer, offset: number, limit = buf.length): this {
    this.buf = buf;
    this.offset = offset;
    this.limit = limit;
    return this;
  }

  /** Advances to the next record; throws FIT_ERR_MALFORMED / FIT_ERR_EVENT_TOO_LARGE. */
  next(): boolean {
    const buf = this.buf;
    const s = this.offset;
    const limit = this.limit;
    if (s >= limit) return false;
    if (s + FIXED_BEFORE_PUBLISHER > limit) throw malformed('truncated header', s);
    const bodyBytes = u32(buf, s);
    const end = s + 4 + bodyBytes;
    if (bodyBytes + 4 > this.eventBytesMax) {
      throw new FitError(
        'FIT_ERR_EVENT_TOO_LARGE',
        `an event of ${bodyBytes + 4} bytes is over the limit of ${this.eventBytesMax}; split the content or raise limits.eventBytesMax`,
        { eventBytes: bodyBytes + 4, limitBytes: this.eventBytesMax },
      );
    }
    if (end > limit) throw malformed('record runs past the end of its section', s);
    if (buf[s + 4] !== RECORD_VERSION) throw malformed(`unknown record version ${buf[s + 4]}`, s);
    const priority = buf[s + 5]!;
    if (priority > 3) throw malformed(`priority ${priority} is not 0..3`, s);
    if (buf[s + 6]! > 2) throw malformed(`content type ${buf[s + 6]} is unknown`, s);
    if (buf[s + 7]! > PROTECTION_MAX) throw malformed(`protection ${buf[s + 7]} is not 0..${PROTECTION_MAX}`, s);
    const publisherBytes = buf[s + 8]!;
    if (publisherBytes === 0) throw malformed('empty publisher id', s);
    const publisherEnd = s + FIXED_BEFORE_PUBLISHER + publisherBytes;
    const contentLenAt = publisherEnd + ID_BYTES_AFTER_PUBLISHER + 8;
    if (contentLenAt + 4 > end) throw malformed('truncated identity', s);
    const contentBytes = u32(buf, contentLenAt);
    const trailerLenAt = contentLenAt + 4 + contentBytes;
    if (trailerLenAt + TRAILER_LEN_BYTES > end) throw malformed('content runs past the record', s);
    if (trailerLenAt + TRAILER_LEN_BYTES + u16(buf, trailerLenAt) !== end) throw malformed('record length does not add up', s);
    const seqHigh = u32(buf, publisherEnd + EPOCH_BYTES);
    if (seqHigh > 0x1f_ffff) throw malformed('sequence number beyond 2^53', s);
    this.start = s;
    this.end = end;
    this.priority = priority as Priority;
    this.protection = buf[s + 7]!;
    this.publisherEnd = publisherEnd;
    this.seq = seqHigh * 0x1_0000_0000 + u32(buf, publisherEnd + EPOCH_BYTES + 4);
    this.timestampMs = f64be(buf, publisherEnd + ID_BYTES_AFTER_PUBLISHER);
    this.offset = end;
    return true;
  }

  /** True if the current record comes from the same publishing process as bytes [from, to). */
  sameStreamAs(from: number, to: number): boolean {
    const start = this.start + 8;
    const end = this.publisherEnd + EPOCH_BYTES;
    return end - start === to - from && sameBytesAt(this.buf, from, this.buf, start, to - from);
  }

  get streamFrom(): number {
    return this.start + 8;
  }

  get streamTo(): number {
    return this.publisherEnd + EPOCH_BYTES;
  }

  /** Identity of the publishing process (publisher + epoch) as a map key. */
  streamKey(): string {
    return this.buf.toString('latin1', this.start + 8, this.publisherEnd + EPOCH_BYTES);
  }

  /** Identity of the event (publisher + epoch + seq) as a map key. */
  eventKey(): string {
    return this.buf.toString('latin1', this.start + 8, this.publisherEnd + ID_BYTES_AFTER_PUBLISHER);
  }

  /** Compares the publisher field with an id's bytes without building a string. */
  publisherEquals(id: Buffer): boolean {
    const from = this.start + FIXED_BEFORE_PUBLISHER;
    return this.publisherEnd - from === id.length && sameBytesAt(id, 0, this.buf, from, id.length);
  }

  publisher(): string {
    return this.buf.toString('utf8', this.start + FIXED_BEFORE_PUBLISHER, this.publisherEnd);
  }

  record(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }
}

/** Decodes one whole, already validated record into the API's event shape. */
export function decodeRecord(rec: Buffer, channel: string): BrokerEvent {
  return new RecordDecoder().decode(rec, channel);
}

/** The strings of one publishing process, decoded once. */
interface Identity {
  bytes: Uint8Array;
  publisher: string;
  epochHex: string;
}

/** Publishing processes a decoder remembers; a fresh epoch after this many starts over. */
const DECODER_IDENTITIES_MAX = 256;

/**
 * decodeRecord for a stream of events: the publisher and epoch strings of a process are
 * decoded once and reused (a utf8 and a hex decode per event showed in subscriber profiles),
 * found by 30 bits of the epoch and checked byte for byte.
 */
export class RecordDecoder {
  private readonly identities = new Map<number, Identity>();

  decode(rec: Buffer, channel: string): BrokerEvent {
    return this.decodeAt(rec, 0, channel);
  }

  /** decode() of the record that starts at `at` in buf, read in place. */
  decodeAt(buf: Buffer, at: number, channel: string): BrokerEvent {
    const publisherEnd = at + FIXED_BEFORE_PUBLISHER + buf[at + 8]!;
    const idEnd = publisherEnd + EPOCH_BYTES;
    const idBytes = idEnd - (at + 8);
    const tag = u32(buf, idEnd - 4) & 0x3fff_ffff;
    let who = this.identities.get(tag);
    if (!who || who.bytes.length !== idBytes || !sameBytesAt(who.bytes, 0, buf, at + 8, idBytes)) {
      if (this.identities.size >= DECODER_IDENTITIES_MAX) this.identities.clear();
      who = {
        bytes: new Uint8Array(buf.subarray(at + 8, idEnd)),
        publisher: buf.toString('utf8', at + FIXED_BEFORE_PUBLISHER, publisherEnd),
        epochHex: buf.toString('hex', publisherEnd, idEnd),
      };
      this.identities.set(tag, who);
    }
    const seq = u32(buf, idEnd) * 0x1_0000_0000 + u32(buf, idEnd + 4);
    const contentLenAt = publisherEnd + ID_BYTES_AFTER_PUBLISHER + 8;
    const contentBytes = u32(buf, contentLenAt);
    return {
      channel,
      publisher: who.publisher,
      id: `${who.epochHex}-${seq}`,
      timestampMs: f64be(buf, publisherEnd + ID_BYTES_AFTER_PUBLISHER),
      priority: buf[at + 5] as Priority,
      contentType: buf[at + 6] as ContentType,
      content: buf.subarray(contentLenAt + 4, contentLenAt + 4 + contentBytes),
    };
  }
}

/** Byte offset of the first content byte, for fault injection that must keep a record valid. */
export function contentOffset(rec: Buffer): { start: number; bytes: number } {
  const contentLenAt = FIXED_BEFORE_PUBLISHER + rec[8]! + ID_BYTES_AFTER_PUBLISHER + 8;
  return { start: contentLenAt + 4, bytes: rec.readUInt32BE(contentLenAt) };
}

/** Where the parts of a record that RecordCursor validated sit in buf, for sealing and checking. */
export interface RecordLayout {
  /** Start of the identity: publisherBytes, publisher, epoch, seq. */
  idAt: number;
  /** Start of the 8-byte seq. */
  seqAt: number;
  contentAt: number;
  contentBytes: number;
  /** Start of the u16 trailer length; the trailer follows it and ends the record. */
  trailerLenAt: number;
  trailerAt: number;
  end: number;
}

export function recordLayout(buf: Buffer, start: number, out: RecordLayout): RecordLayout {
  const publisherEnd = start + FIXED_BEFORE_PUBLISHER + buf[start + 8]!;
  const contentLenAt = publisherEnd + ID_BYTES_AFTER_PUBLISHER + 8;
  out.idAt = start + 8;
  out.seqAt = publisherEnd + EPOCH_BYTES;
  out.contentBytes = u32(buf, contentLenAt);
  out.contentAt = contentLenAt + 4;
  out.trailerLenAt = out.contentAt + out.contentBytes;
  out.trailerAt = out.trailerLenAt + TRAILER_LEN_BYTES;
  out.end = start + 4 + u32(buf, start);
  return out;
}

export function newRecordLayout(): RecordLayout {
  return { idAt: 0, seqAt: 0, contentAt: 0, contentBytes: 0, trailerLenAt: 0, trailerAt: 0, end: 0 };
}
