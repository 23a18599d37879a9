// The messages between clients and replicas. Event traffic (PUBLISH, ACK, EVENTS, CREDIT) is
// a fixed binary layout because it is the hot path; the rare control messages (handshake,
// subscribe, status, errors) are JSON, which keeps them readable in a packet capture and easy
// to extend. Each decoder checks every length against the frame before reading.

import { FitError, type ErrorFields } from '../core/index.js';
import { FRAME_HEADER_BYTES } from './frame.js';

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

// PUBLISH: u8 type | u32 reqSeq | u8 channelBytes | channel | u16 count | records
export const PUBLISH_SEQ_AT = FRAME_HEADER_BYTES + 1;

export function publishHeaderBytes(channel: Buffer): number {
  return FRAME_HEADER_BYTES + 1 + 4 + 1 + channel.length + 2;
}

/** Writes the PUBLISH header; the sequence number is patched in at send time. */
export function writePublishHeader(out: Buffer, channel: Buffer, count: number, frameBytes: number): number {
  let o = out.writeUInt32BE(frameBytes - FRAME_HEADER_BYTES, 0);
  o = out.writeUInt8(MessageType.Publish, o);
  o = out.writeUInt32BE(0, o);
  o = out.writeUInt8(channel.length, o);
  o += channel.copy(out, o);
  return out.writeUInt16BE(count, o);
}

export interface PublishView {
  reqSeq: number;
  channel: string;
  count: number;
  recordsAt: number;
}

export function decodePublish(body: Buffer): PublishView {
  if (body.length < 8) throw malformed('PUBLISH shorter than its header');
  const reqSeq = body.readUInt32BE(1);
  const channelBytes = body[5]!;
  if (body.length < 6 + channelBytes + 2) throw malformed('PUBLISH channel runs past the frame');
  const channel = body.toString('utf8', 6, 6 + channelBytes);
  const count = body.readUInt16BE(6 + channelBytes);
  return { reqSeq, channel, count, recordsAt: 8 + channelBytes };
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

// EVENTS: u8 type | u32 streamId | u32 firstPos | u16 count | records
export const EVENTS_HEADER_BYTES = FRAME_HEADER_BYTES + 1 + 4 + 4 + 2;

export function encodeEvents(streamId: number, firstPos: number, records: Buffer[], recordBytesTotal: number): Buffer {
  const out = Buffer.allocUnsafe(EVENTS_HEADER_BYTES + recordBytesTotal);
  out.writeUInt32BE(EVENTS_HEADER_BYTES - FRAME_HEADER_BYTES + recordBytesTotal, 0);
  out.writeUInt8(MessageType.Events, 4);
  out.writeUInt32BE(streamId, 5);
  out.writeUInt32BE(firstPos >>> 0, 9);
  out.writeUInt16BE(records.length, 13);
  let o = EVENTS_HEADER_BYTES;
  for (const r of records) o += r.copy(out, o);
  return out;
}

export function decodeEventsHeader(body: Buffer): { streamId: number; firstPos: number; count: number; recordsAt: number } {
  if (body.length < 11) throw malformed('EVENTS shorter than its header');
  return { streamId: body.readUInt32BE(1), firstPos: body.readUInt32BE(5), count: body.readUInt16BE(9), recordsAt: 11 };
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
