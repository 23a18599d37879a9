// Client <-> replica messages (src/codec/messages.ts). Each encoder writes a whole frame; each
// decoder takes the frame body as FrameDecoder returns it (type byte first). Tests go through
// FrameDecoder so the two halves are checked against each other, not against a copy of the
// layout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FitError } from '../../src/core/index.js';
import {
  FrameDecoder,
  MessageType,
  RecordCursor,
  decodeAck,
  decodeCredit,
  decodeEventsHeader,
  decodeJson,
  decodePublish,
  encodeAck,
  encodeCredit,
  encodeEvents,
  encodeJson,
} from '../../src/codec/index.js';
import { NAME_PATTERN } from '../../src/config/index.js';
import { assertProperty } from '../helpers/property.js';
import { makeRecord, publishFrame } from '../helpers/records.js';

/** The single frame body in `wire`, as a replica or client would receive it. */
function body(wire: Buffer): Buffer {
  const frames = new FrameDecoder(1 << 20).push(wire);
  assert.equal(frames.length, 1);
  return frames[0]!;
}

function malformed(fn: () => unknown, why: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_MALFORMED' && why.test(e.message));
}

const u32 = fc.nat({ max: 0xffff_ffff });

test('message types are distinct single bytes', () => {
  const values = Object.values(MessageType);
  assert.equal(new Set(values).size, values.length);
  for (const v of values) assert.ok(Number.isInteger(v) && v > 0 && v < 256);
});

test('a JSON control message round-trips and keeps its type byte', () => {
  const value = { seq: 3, method: 'subscribe', channel: 'alerts', nested: { a: [1, 'two', null] } };
  const b = body(encodeJson(MessageType.Request, value));
  assert.equal(b[0], MessageType.Request);
  assert.deepEqual(decodeJson(b), value);
});

test('decodeJson rejects invalid JSON and JSON that is not an object', () => {
  const raw = (text: string) => Buffer.concat([Buffer.from([MessageType.Reply]), Buffer.from(text)]);
  malformed(() => decodeJson(raw('{"seq":')), /not valid JSON/);
  for (const text of ['[1,2]', 'null', '42', '"text"', 'true']) malformed(() => decodeJson(raw(text)), /not a JSON object/);
});

test('PUBLISH header round-trips reqSeq, channel and count, and its records follow at recordsAt', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(u32, fc.stringMatching(NAME_PATTERN), fc.integer({ min: 1, max: 4 }), (reqSeq, channel, n) => {
      const recs = Array.from({ length: n }, (_, i) => makeRecord({ seq: i + 1, content: `event ${i}` }));
      const b = body(publishFrame(channel, recs, reqSeq));
      assert.equal(b[0], MessageType.Publish);
      const view = decodePublish(b);
      assert.deepEqual({ reqSeq: view.reqSeq, channel: view.channel, count: view.count }, { reqSeq, channel, count: n });
      const c = new RecordCursor(b, view.recordsAt, 1 << 20);
      const got: Buffer[] = [];
      while (c.next()) got.push(c.record());
      assert.deepEqual(got, recs);
    }),
  );
});

test('decodePublish rejects a body shorter than its header or a channel running past the frame', () => {
  malformed(() => decodePublish(Buffer.from([MessageType.Publish, 0, 0, 0, 1, 0, 0])), /shorter than its header/);
  const b = body(publishFrame('alerts', []));
  malformed(() => decodePublish(b.subarray(0, b.length - 1)), /channel runs past the frame/);
  const longer = Buffer.from(b);
  longer[5] = 200; // claims a 200-byte channel name
  malformed(() => decodePublish(longer), /channel runs past the frame/);
});

// ACK and CREDIT are three u32 fields after the type byte: one property covers both.
for (const [name, type, encode, decode, fields] of [
  ['ACK', MessageType.Ack, encodeAck, decodeAck, ['reqSeq', 'accepted', 'duplicates']],
  ['CREDIT', MessageType.Credit, encodeCredit, decodeCredit, ['streamId', 'credits', 'ackedBelow']],
] as const) {
  test(`${name} round-trips ${fields.join(', ')}`, (t) => {
    assertProperty(
      t,
      import.meta.url,
      fc.property(u32, u32, u32, (x, y, z) => {
        const b = body(encode(x, y, z));
        assert.equal(b[0], type);
        assert.deepEqual(decode(b), { [fields[0]]: x, [fields[1]]: y, [fields[2]]: z });
      }),
    );
  });
}

test('decodeAck and decodeCredit reject bodies of the wrong length', () => {
  const ack = body(encodeAck(1, 2, 3));
  malformed(() => decodeAck(ack.subarray(0, 12)), /ACK has the wrong length/);
  malformed(() => decodeAck(Buffer.concat([ack, Buffer.from([0])])), /ACK has the wrong length/);
  const credit = body(encodeCredit(1, 2, 3));
  malformed(() => decodeCredit(credit.subarray(0, 12)), /CREDIT has the wrong length/);
  malformed(() => decodeCredit(Buffer.concat([credit, Buffer.from([0])])), /CREDIT has the wrong length/);
});

test('EVENTS header round-trips and the records follow it unchanged', () => {
  const recs = [makeRecord({ seq: 1 }), makeRecord({ seq: 2, priority: 3, content: 'urgent' })];
  const b = body(encodeEvents(7, 1234, recs, recs.reduce((n, r) => n + r.length, 0)));
  assert.equal(b[0], MessageType.Events);
  const h = decodeEventsHeader(b);
  assert.deepEqual(h, { streamId: 7, firstPos: 1234, count: 2, recordsAt: 11 });
  assert.deepEqual(b.subarray(h.recordsAt), Buffer.concat(recs));
});

test('EVENTS with no records is a valid empty batch', () => {
  const h = decodeEventsHeader(body(encodeEvents(1, 0, [], 0)));
  assert.equal(h.count, 0);
});

test('decodeEventsHeader rejects a body shorter than its header', () => {
  malformed(() => decodeEventsHeader(Buffer.from([MessageType.Events, 0, 0, 0, 1, 0, 0, 0, 0, 0])), /EVENTS shorter than its header/);
});

