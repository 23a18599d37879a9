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
  decodeEvents,
  decodeJson,
  decodePublish,
  encodeAck,
  encodeCredit,
  encodeEvents,
  encodeJson,
  EventsWriter,
  refOf,
} from '../../src/codec/index.js';
import { NAME_PATTERN } from '../../src/config/index.js';
import { assertProperty } from '../helpers/property.js';
import { makeRecord, multiPublishFrame, publishFrame } from '../helpers/records.js';

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

const sectionsArb = fc.array(fc.record({ channel: fc.stringMatching(NAME_PATTERN), n: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 4 });

test('PUBLISH round-trips reqSeq and every section (channel, count, records), in order', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(u32, sectionsArb, (reqSeq, specs) => {
      let seq = 0;
      const sections = specs.map((s) => ({ channel: s.channel, records: Array.from({ length: s.n }, () => makeRecord({ seq: ++seq, content: `event ${seq}` })) }));
      const b = body(sections.length === 1 ? publishFrame(sections[0]!.channel, sections[0]!.records, reqSeq) : multiPublishFrame(sections, reqSeq));
      assert.equal(b[0], MessageType.Publish);
      const view = decodePublish(b);
      assert.equal(view.reqSeq, reqSeq);
      assert.deepEqual(
        view.sections.map((s) => ({ channel: s.channel, count: s.count })),
        sections.map((s) => ({ channel: s.channel, count: s.records.length })),
      );
      view.sections.forEach((s, i) => {
        const c = new RecordCursor(b, s.recordsAt, 1 << 20, s.recordsEnd);
        const got: Buffer[] = [];
        while (c.next()) got.push(c.record());
        assert.deepEqual(got, sections[i]!.records);
      });
    }),
  );
});

test('decodePublish rejects a short body, no section, a section or records running past the frame, and trailing bytes', () => {
  malformed(() => decodePublish(Buffer.from([MessageType.Publish, 0, 0, 0, 1, 0])), /shorter than its header/);
  malformed(() => decodePublish(Buffer.from([MessageType.Publish, 0, 0, 0, 1, 0, 0])), /no channel section/);
  const b = body(publishFrame('alerts', [makeRecord()]));
  malformed(() => decodePublish(b.subarray(0, b.length - 1)), /records run past the frame/);
  malformed(() => decodePublish(b.subarray(0, 10)), /section 0 runs past the frame/);
  const longer = Buffer.from(b);
  longer[7] = 250; // claims a 250-byte channel name
  malformed(() => decodePublish(longer), /section 0 runs past the frame/);
  const two = Buffer.from(b);
  two.writeUInt16BE(2, 5); // claims a second section that is not there
  malformed(() => decodePublish(two), /section 1 runs past the frame/);
  malformed(() => decodePublish(Buffer.concat([b, Buffer.from([0])])), /1 bytes after its last section/);
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

test('EVENTS round-trips every section (stream, first position, records), in order, wherever the records lie', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(
      fc.array(fc.record({ stream: u32, pos: u32, n: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 5 }),
      fc.array(fc.boolean(), { minLength: 15, maxLength: 15 }),
      (specs, ownBuffer) => {
        const w = new EventsWriter();
        let seq = 0;
        const recs = specs.map((s) => Array.from({ length: s.n }, () => makeRecord({ seq: ++seq, priority: (seq % 4) as 0 | 1 | 2 | 3 })));
        // Records back to back in one buffer (copied together) mixed with records on their own.
        const slab = Buffer.concat(recs.flat());
        let at = 0;
        let k = 0;
        const refs = recs.map((rs) =>
          rs.map((r) => {
            const ref = ownBuffer[k++] ? refOf(r) : { buf: slab, at, len: r.length };
            at += r.length;
            return ref;
          }),
        );
        specs.forEach((s, i) => w.add(s.stream, s.pos, refs[i]!));
        const b = body(w.take()!);
        assert.equal(b[0], MessageType.Events);
        const sections = decodeEvents(b);
        assert.deepEqual(
          sections.map((h) => ({ stream: h.streamId, pos: h.firstPos, n: h.count })),
          specs.map((s) => ({ ...s })),
        );
        sections.forEach((h, i) => assert.deepEqual(b.subarray(h.recordsAt, h.recordsEnd), Buffer.concat(recs[i]!)));
        assert.equal(w.take(), undefined, 'the writer is empty after take()');
      },
    ),
  );
});

test('EventsWriter fed record by record: a frame taken mid-section goes on in the next at the right position, and a begun section with no record leaves no trace', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(
      // A section per stream, records of 1-40 bytes, after which records a frame is taken, and
      // which records lie back to back in one slab (kept as one run) rather than on their own.
      fc.array(fc.record({ pos: u32, lens: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 12 }) }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.boolean(), { minLength: 72, maxLength: 72 }),
      fc.array(fc.boolean(), { minLength: 72, maxLength: 72 }),
      (specs, takeAfter, inSlab) => {
        const w = new EventsWriter();
        const frames: Buffer[] = [];
        // Every record's bytes, by (stream, position), and where the records of a slab lie.
        const want = new Map<string, Buffer>();
        const slab = Buffer.alloc(72 * 40);
        let slabAt = 0;
        let k = 0;
        for (const [stream, spec] of specs.entries()) {
          w.begin(stream, spec.pos);
          spec.lens.forEach((len, i) => {
            const pos = (spec.pos + i) >>> 0;
            const own = !inSlab[k];
            const buf = own ? Buffer.alloc(len) : slab;
            const at = own ? 0 : slabAt;
            if (!own) slabAt += len;
            buf.fill(k + 1, at, at + len);
            want.set(`${stream}:${pos}`, Buffer.from(buf.subarray(at, at + len)));
            w.record(buf, at, len);
            if (takeAfter[k++]) frames.push(w.take()!);
          });
          w.end();
        }
        const last = w.take();
        if (last) frames.push(last);
        const got = new Map<string, Buffer>();
        for (const f of frames) {
          const b = body(f);
          for (const h of decodeEvents(b)) {
            assert.ok(h.count > 0, 'no empty section');
            let at = h.recordsAt;
            for (let i = 0; i < h.count; i++) {
              const key = `${h.streamId}:${(h.firstPos + i) >>> 0}`;
              const len = want.get(key)?.length;
              assert.ok(len !== undefined, `a record at ${key} that was never added`);
              got.set(key, b.subarray(at, at + len));
              at += len;
            }
            assert.equal(at, h.recordsEnd, 'the section holds its records and nothing else');
          }
        }
        assert.deepEqual(got, want);
        assert.equal(w.take(), undefined, 'the writer is empty after take()');
      },
    ),
  );
});

test('EventsWriter goes on in a new section after 65,535 records (a section counts them in a u16), and refuses a record with no section open', () => {
  const w = new EventsWriter();
  const rec = Buffer.from([1, 2, 3, 4]);
  w.begin(9, 0xffff_fff0);
  for (let i = 0; i < 70_000; i++) w.record(rec, 0, 4);
  w.end();
  const sections = decodeEvents(body(w.take()!));
  assert.deepEqual(
    sections.map((h) => [h.streamId, h.firstPos, h.count]),
    [
      [9, 0xffff_fff0, 0xffff],
      [9, (0xffff_fff0 + 0xffff) >>> 0, 70_000 - 0xffff],
    ],
  );
  assert.throws(
    () => w.record(rec, 0, 4),
    (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_INTERNAL',
  );
});

test('EVENTS with no records is a valid empty batch', () => {
  const [h] = decodeEvents(body(encodeEvents(1, 0, [])));
  assert.equal(h!.count, 0);
  assert.equal(h!.recordsAt, h!.recordsEnd);
});

test('decodeEvents rejects a short body, sections or records running past the frame, and trailing bytes', () => {
  malformed(() => decodeEvents(Buffer.from([MessageType.Events, 0])), /EVENTS shorter than its header/);
  const b = body(encodeEvents(1, 0, [makeRecord()]));
  malformed(() => decodeEvents(b.subarray(0, 10)), /section 0 runs past the frame/);
  malformed(() => decodeEvents(b.subarray(0, b.length - 1)), /section 0 records run past the frame/);
  malformed(() => decodeEvents(Buffer.concat([b, Buffer.from([0])])), /1 bytes after its last section/);
});
