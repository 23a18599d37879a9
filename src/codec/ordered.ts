// An event of an ordered channel as replicas push it: the publisher's record, untouched,
// inside an envelope that carries its position in the order. Layout (big-endian):
//
//   u32 envelopeBytes (after this field) | u8 kind = 0x4f ("O") | u8 reserved = 0 |
//   u32 seqHigh | u32 seqLow | u32 globalHigh | u32 globalLow |
//   record (a whole event record, its own length prefix included)
//
// A subscriber votes on the whole envelope, so f+1 matching copies agree on the position as
// well as the content: a faulty replica can no more move an event than alter it. `seq` is the
// position in the channel, from 1, with no gap and no repeat among correct replicas; `global`
// is the position among the events of every ordered channel, in the one order consensus
// decided (what `order: global` channels are read in: merged by it, several channels read as
// one sequence).

import { FitError } from '../core/index.js';
import { u32 } from './bytes.js';

export const ORDERED_KIND = 0x4f;
/** Bytes before the record: length, kind, reserved, seq, global. */
export const ORDERED_HEADER_BYTES = 4 + 1 + 1 + 8 + 8;

/** The envelope for `record` (a whole event record) at `seq` in its channel and `global` in the whole order. */
export function encodeOrdered(seq: number, record: Buffer, global = seq): Buffer {
  for (const v of [seq, global]) {
    if (!Number.isSafeInteger(v) || v < 1) throw new FitError('FIT_ERR_INTERNAL', `invariant broken: ordered position ${v} is not a positive safe integer; this is a bug, please report it`);
  }
  const out = Buffer.allocUnsafe(ORDERED_HEADER_BYTES + record.length);
  out.writeUInt32BE(out.length - 4, 0);
  out.writeUInt8(ORDERED_KIND, 4);
  out.writeUInt8(0, 5);
  out.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 6);
  out.writeUInt32BE(seq >>> 0, 10);
  out.writeUInt32BE(Math.floor(global / 0x1_0000_0000), 14);
  out.writeUInt32BE(global >>> 0, 18);
  record.copy(out, ORDERED_HEADER_BYTES);
  return out;
}

/** One envelope read from a buffer: where it and its record lie, and its seq. */
export interface OrderedView {
  seq: number;
  global: number;
  /** The envelope: [start, end). */
  start: number;
  end: number;
  /** The record inside it: [recordAt, end). */
  recordAt: number;
}

/**
 * Reads the envelope at `offset` of buf, within `limit`; throws FIT_ERR_MALFORMED when it is
 * not one (a short or overlong length, another kind, a record whose own length disagrees, a
 * seq of 0 or past 2^53).
 */
export function readOrdered(buf: Buffer, offset: number, limit = buf.length): OrderedView {
  const bad = (why: string): FitError => new FitError('FIT_ERR_MALFORMED', `malformed ordered event at byte ${offset}: ${why}`);
  if (limit - offset < ORDERED_HEADER_BYTES + 4) throw bad('shorter than its header');
  const end = offset + 4 + u32(buf, offset);
  if (end > limit) throw bad('runs past the section');
  if (buf[offset + 4] !== ORDERED_KIND) throw bad(`kind ${buf[offset + 4]} is not an ordered event`);
  const seq = position(buf, offset + 6, 'seq', bad);
  const global = position(buf, offset + 14, 'global position', bad);
  const recordAt = offset + ORDERED_HEADER_BYTES;
  if (recordAt + 4 + u32(buf, recordAt) !== end) throw bad('its record\'s length does not fill it');
  return { seq, global, start: offset, end, recordAt };
}

function position(buf: Buffer, at: number, what: string, bad: (why: string) => FitError): number {
  const high = u32(buf, at);
  if (high >= 0x20_0000) throw bad(`${what} past 2^53`);
  const v = high * 0x1_0000_0000 + u32(buf, at + 4);
  if (v < 1) throw bad(`${what} 0`);
  return v;
}
