// The event record (src/codec/record.ts, DESIGN §2): what a publisher writes is what replicas
// forward and voters compare byte for byte, so it must round-trip exactly; and since replicas
// parse records from untrusted peers, RecordCursor must turn every malformed batch into a
// FitError without ever reading outside the buffer it was given.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ContentType, FitError, type Priority } from '../../src/core/index.js';
import { RecordCursor, RecordDecoder, decodeRecord, recordBytes, writeRecord, contentOffset, RECORD_VERSION } from '../../src/codec/index.js';
import { NAME_PATTERN } from '../../src/config/index.js';
import { assertProperty } from '../helpers/property.js';
import { EPOCH_B, T0_MS, makeRecord } from '../helpers/records.js';
import { fitErrorFrom } from '../helpers/errors.js';

const MAX = 1 << 20;
/** Byte offsets inside a record whose publisher is `p` bytes long. */
const at = (p: number) => ({ version: 4, priority: 5, contentType: 6, publisherBytes: 8, seqHigh: 9 + p + 8, contentBytes: 9 + p + 24 });

function records(buf: Buffer, eventBytesMax = MAX): Buffer[] {
  const c = new RecordCursor(buf, 0, eventBytesMax);
  const out: Buffer[] = [];
  while (c.next()) out.push(c.record());
  return out;
}

function rejection(buf: Buffer, eventBytesMax = MAX): FitError {
  return fitErrorFrom(() => records(buf, eventBytesMax), 'the cursor to reject the batch');
}

const recordInput = fc.record({
  publisher: fc.stringMatching(NAME_PATTERN),
  epoch: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((a) => Buffer.from(a)),
  seq: fc.maxSafeNat(),
  timestampMs: fc.oneof(fc.maxSafeNat(), fc.double({ noNaN: true })),
  priority: fc.integer({ min: 0, max: 3 }).map((p) => p as Priority),
  contentType: fc.constantFrom(ContentType.Text, ContentType.Json, ContentType.Binary),
  content: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
});

test('writeRecord -> RecordCursor -> decodeRecord round-trips every field (seq up to 2^53-1)', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.array(recordInput, { minLength: 1, maxLength: 5 }), (inputs) => {
      const sizes = inputs.map((r) => recordBytes(Buffer.byteLength(r.publisher), r.content.length));
      const buf = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
      let o = 0;
      inputs.forEach((r, i) => {
        const end = writeRecord(buf, o, { ...r, publisher: Buffer.from(r.publisher) });
        assert.equal(end - o, sizes[i], 'recordBytes predicts what writeRecord writes');
        o = end;
      });
      const c = new RecordCursor(buf, 0, MAX);
      for (const r of inputs) {
        assert.equal(c.next(), true);
        assert.equal(c.seq, r.seq);
        assert.equal(c.priority, r.priority);
        assert.equal(c.timestampMs, r.timestampMs);
        assert.equal(c.publisher(), r.publisher);
        const ev = decodeRecord(c.record(), 'alerts');
        assert.deepEqual(ev, {
          channel: 'alerts',
          publisher: r.publisher,
          id: `${r.epoch.toString('hex')}-${r.seq}`,
          timestampMs: r.timestampMs,
          priority: r.priority,
          contentType: r.contentType,
          content: r.content,
        });
      }
      assert.equal(c.next(), false);
    }),
  );
});

test('seq 2^53-1 survives the split into two u32 halves', () => {
  const c = new RecordCursor(makeRecord({ seq: Number.MAX_SAFE_INTEGER }), 0, MAX);
  assert.ok(c.next());
  assert.equal(c.seq, Number.MAX_SAFE_INTEGER);
});

test('contentOffset points at the content bytes', () => {
  const rec = makeRecord({ content: 'payload' });
  const { start, bytes } = contentOffset(rec);
  assert.equal(rec.toString('utf8', start, start + bytes), 'payload');
});

test('streamKey is equal exactly for the same publisher and epoch; eventKey also needs the same seq', () => {
  const key = (spec: Parameters<typeof makeRecord>[0]) => {
    const c = new RecordCursor(makeRecord(spec), 0, MAX);
    assert.ok(c.next());
    return { stream: c.streamKey(), event: c.eventKey() };
  };
  const base = key({ seq: 5 });
  assert.deepEqual(key({ seq: 5, content: 'other', timestampMs: T0_MS + 1, priority: 3 }), base, 'content, time and priority are not identity');
  const nextSeq = key({ seq: 6 });
  assert.equal(nextSeq.stream, base.stream);
  assert.notEqual(nextSeq.event, base.event);
  assert.notEqual(key({ seq: 5, epoch: EPOCH_B }).stream, base.stream);
  assert.notEqual(key({ seq: 5, publisher: 'probe2' }).stream, base.stream);
  assert.notEqual(key({ seq: 5 + 2 ** 32 }).event, base.event, 'the high half of seq is part of the key');
});

test('a RecordDecoder decodes every event as decodeRecord does, across processes that share 30 bits of epoch or a publisher', (t) => {
  // Epochs that differ only in bits the decoder's lookup ignores, or in the first byte, and
  // publishers that are prefixes of each other: the strings it reuses must be checked, not trusted.
  const epochs = ['a1a2a3a4a5a6a7a8', 'a1a2a3a4e5a6a7a8', '01a2a3a4a5a6a7a8', 'a1a2a3a4a5a6a7a8'.replace(/^../, 'ff')].map((h) => Buffer.from(h, 'hex'));
  const spec = fc.record({ publisher: fc.constantFrom('p', 'pp', 'probe', 'próbé'), epoch: fc.constantFrom(...epochs), seq: fc.maxSafeNat() });
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.array(spec, { minLength: 1, maxLength: 40 }), (specs) => {
      const decoder = new RecordDecoder();
      for (const s of specs) {
        const rec = makeRecord(s);
        assert.deepEqual(decoder.decode(rec, 'ch'), decodeRecord(rec, 'ch'));
      }
    }),
  );
});

test('publisherEquals matches the exact id bytes only', () => {
  const c = new RecordCursor(makeRecord({ publisher: 'probe' }), 0, MAX);
  assert.ok(c.next());
  assert.equal(c.publisherEquals(Buffer.from('probe')), true);
  assert.equal(c.publisherEquals(Buffer.from('prob')), false);
  assert.equal(c.publisherEquals(Buffer.from('probes')), false);
  assert.equal(c.publisherEquals(Buffer.from('proxe')), false);
});

test('accepts a non-empty trailer when the lengths add up (reserved for HA/PKS/PKE)', () => {
  const rec = makeRecord();
  const withTrailer = Buffer.concat([rec.subarray(0, rec.length - 2), Buffer.from([0, 3, 7, 7, 7])]);
  withTrailer.writeUInt32BE(withTrailer.length - 4, 0);
  assert.deepEqual(records(withTrailer), [withTrailer]);
});

test('rejects each malformed field with FIT_ERR_MALFORMED and the record offset', () => {
  const good = makeRecord({ publisher: 'probe' });
  const pos = at(5);
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['bad version', (b) => (b.writeUInt8(RECORD_VERSION + 1, pos.version), b), /unknown record version/],
    ['priority 4', (b) => (b.writeUInt8(4, pos.priority), b), /priority 4 is not 0\.\.3/],
    ['content type 3', (b) => (b.writeUInt8(3, pos.contentType), b), /content type 3 is unknown/],
    ['seq above 2^53', (b) => (b.writeUInt32BE(0x20_0000, pos.seqHigh), b), /beyond 2\^53/],
    ['record one byte longer than its fields', (b) => (b.writeUInt32BE(b.length - 3, 0), Buffer.concat([b, Buffer.from([0])])), /does not add up/],
    ['content longer than the record', (b) => (b.writeUInt32BE(1000, pos.contentBytes), b), /content runs past the record/],
    ['empty publisher', () => makeRecord({ publisher: Buffer.alloc(0) }), /empty publisher/],
    ['truncated header', (b) => b.subarray(0, 8), /truncated header/],
    ['truncated body', (b) => b.subarray(0, b.length - 1), /runs past the end/],
  ];
  for (const [name, mutate, why] of cases) {
    const bad = mutate(Buffer.from(good));
    const e = rejection(Buffer.concat([good, bad]));
    assert.equal(e.code, 'FIT_ERR_MALFORMED', name);
    assert.match(e.message, why, name);
    assert.equal(e.fields.offset, good.length, `${name}: offset names the second record`);
  }
});

test('rejects every truncation of a valid batch', () => {
  const batch = Buffer.concat([makeRecord({ seq: 1 }), makeRecord({ seq: 2, content: 'second' })]);
  const boundary = makeRecord({ seq: 1 }).length;
  for (let len = 1; len < batch.length; len++) {
    if (len === boundary) continue; // a whole first record is a valid batch
    assert.equal(rejection(batch.subarray(0, len)).code, 'FIT_ERR_MALFORMED', `truncated to ${len}`);
  }
});

test('an event over eventBytesMax throws FIT_ERR_EVENT_TOO_LARGE with both sizes; exactly the limit passes', () => {
  const rec = makeRecord({ content: 'x'.repeat(100) });
  assert.equal(records(rec, rec.length).length, 1);
  const e = rejection(rec, rec.length - 1);
  assert.equal(e.code, 'FIT_ERR_EVENT_TOO_LARGE');
  assert.deepEqual(e.fields, { eventBytes: rec.length, limitBytes: rec.length - 1 });
});

type Mutation = { kind: 'set'; at: number; value: number } | { kind: 'truncate'; at: number } | { kind: 'insert'; at: number; bytes: number[] } | { kind: 'delete'; at: number; n: number };

function mutate(buf: Buffer, m: Mutation): Buffer {
  const i = m.at % (buf.length + 1);
  switch (m.kind) {
    case 'set':
      if (i < buf.length) buf[i] = m.value;
      return buf;
    case 'truncate':
      return buf.subarray(0, i);
    case 'insert':
      return Buffer.concat([buf.subarray(0, i), Buffer.from(m.bytes), buf.subarray(i)]);
    case 'delete':
      return Buffer.concat([buf.subarray(0, i), buf.subarray(i + m.n)]);
  }
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  // Header bytes are few but decide everything: aim half the byte flips at the first 48.
  fc.record({ kind: fc.constant('set' as const), at: fc.oneof(fc.nat(47), fc.nat()), value: fc.oneof(fc.constantFrom(0, 1, 3, 4, 0xff), fc.nat(255)) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.nat(255), { minLength: 1, maxLength: 6 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 6 }) }),
);

test('mutated or truncated batches only ever throw FIT_ERR_MALFORMED or FIT_ERR_EVENT_TOO_LARGE, and never read outside the buffer', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.array(recordInput, { minLength: 1, maxLength: 4 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.constantFrom(MAX, 64, 120), (inputs, mutations, eventBytesMax) => {
      let batch: Buffer = Buffer.concat(inputs.map((r) => makeRecord({ ...r })));
      for (const m of mutations) batch = mutate(Buffer.from(batch), m);
      // Surround the batch with canary bytes: a cursor that strays outside its view would
      // either throw a RangeError (failing the property) or read a canary into a field.
      const backing = Buffer.concat([Buffer.alloc(16, 0xee), batch, Buffer.alloc(64, 0xee)]);
      const view = backing.subarray(16, 16 + batch.length);
      const c = new RecordCursor(view, 0, eventBytesMax);
      let prevEnd = 0;
      try {
        while (c.next()) {
          assert.equal(c.start, prevEnd, 'records are contiguous');
          assert.ok(c.end > c.start && c.end <= view.length, 'a record lies inside the buffer');
          assert.ok(c.end - c.start <= eventBytesMax);
          const rec = c.record();
          const ev = decodeRecord(rec, 'ch');
          const content = contentOffset(rec);
          assert.ok(content.start + content.bytes <= rec.length - 2, 'content ends before the trailer length');
          assert.equal(ev.content.length, content.bytes);
          assert.ok(ev.priority <= 3 && ev.contentType <= 2);
          c.streamKey();
          c.eventKey();
          prevEnd = c.end;
        }
        assert.equal(prevEnd, view.length, 'a clean end means every byte was consumed');
      } catch (e) {
        if (!(e instanceof FitError)) throw e;
        assert.ok(e.code === 'FIT_ERR_MALFORMED' || e.code === 'FIT_ERR_EVENT_TOO_LARGE', `unexpected code ${e.code}`);
      }
    }),
    { numRuns: 500 },
  );
});
