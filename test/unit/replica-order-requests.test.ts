// How a publish section of an ordered channel is cut into consensus requests
// (src/replica/order-requests.ts): by the section's records alone (a function of them and
// nothing else, which is what makes every correct replica cut the same section alike), with no
// event left out or repeated.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RecordCursor } from '../../src/codec/index.js';
import { channelOfEventClient, decidedRecordOf, eventClient, placedEventsKeys, REQUEST_BYTES_MAX, REQUEST_EVENTS_MAX, sectionRequests } from '../../src/replica/order-requests.js';
import { EPOCH_B, orderedEvent } from '../helpers/records.js';
import { assertProperty } from '../helpers/property.js';

const seqs = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The seqs of the records in a request's payload. */
function payloadSeqs(payload: string): number[] {
  const cursor = new RecordCursor(Buffer.from(payload, 'base64'), 0, Infinity);
  const out: number[] = [];
  while (cursor.next()) out.push(cursor.seq);
  return out;
}

test('a section of one process and one urgency is one request, named by its first event', () => {
  const events = seqs(7, 11).map((s) => orderedEvent(s));
  const reqs = sectionRequests('orders', events);
  assert.equal(reqs.length, 1);
  assert.equal(reqs[0]!.events, 5);
  assert.equal(reqs[0]!.req.seq, 7);
  assert.equal(reqs[0]!.req.client, eventClient('orders', events[0]!.process));
  assert.equal(reqs[0]!.req.urgent, undefined);
  assert.deepEqual(payloadSeqs(reqs[0]!.req.payload), seqs(7, 11));
});

test('a section is cut where the urgency or the process changes, and after REQUEST_EVENTS_MAX events', () => {
  const mixed = [orderedEvent(1), orderedEvent(2), orderedEvent(3, { priority: 3 }), orderedEvent(4), orderedEvent(5, { epoch: EPOCH_B })];
  const cut = sectionRequests('orders', mixed);
  assert.deepEqual(
    cut.map((r) => [r.req.seq, r.events, r.req.urgent === true]),
    [
      [1, 2, false],
      [3, 1, true],
      [4, 1, false],
      [5, 1, false],
    ],
  );
  assert.notEqual(cut[3]!.req.client, cut[2]!.req.client, 'another process is another client');

  const long = sectionRequests('orders', seqs(1, 2 * REQUEST_EVENTS_MAX + 22).map((s) => orderedEvent(s)));
  assert.deepEqual(
    long.map((r) => r.events),
    [REQUEST_EVENTS_MAX, REQUEST_EVENTS_MAX, 22],
  );
});

test('a request stays within REQUEST_BYTES_MAX of records, but for one larger record, which goes alone', () => {
  const big = (seq: number, bytes: number) => orderedEvent(seq, { content: Buffer.alloc(bytes, 1) });
  const fifth = Math.floor(REQUEST_BYTES_MAX / 5);
  const reqs = sectionRequests('orders', [...seqs(1, 6).map((s) => big(s, fifth)), big(7, REQUEST_BYTES_MAX + 1), big(8, 10)]);
  for (const r of reqs) if (r.events > 1) assert.ok(Buffer.from(r.req.payload, 'base64').length <= REQUEST_BYTES_MAX);
  assert.deepEqual(
    reqs.map((r) => payloadSeqs(r.req.payload)),
    [[1, 2, 3, 4], [5, 6], [7], [8]],
  );
});

test('property: the requests carry every event of the section once, in order, each of one process and urgency, within the bounds', (t) => {
  const spec = fc.array(fc.record({ size: fc.integer({ min: 0, max: 6000 }), urgent: fc.boolean(), otherProcess: fc.boolean() }), { minLength: 1, maxLength: 200 });
  assertProperty(
    t,
    import.meta.url,
    fc.property(spec, (specs) => {
      const events = specs.map((s, i) => orderedEvent(100 + i, { content: Buffer.alloc(s.size, 7), priority: s.urgent ? 3 : 0, ...(s.otherProcess ? { epoch: EPOCH_B } : {}) }));
      const reqs = sectionRequests('orders', events);
      assert.deepEqual(reqs.flatMap((r) => payloadSeqs(r.req.payload)), events.map((e) => e.seq));
      assert.equal(Buffer.concat(reqs.map((r) => Buffer.from(r.req.payload, 'base64'))).compare(Buffer.concat(events.map((e) => e.record))), 0);
      let at = 0;
      for (const r of reqs) {
        const mine = events.slice(at, at + r.events);
        at += r.events;
        assert.equal(r.req.seq, mine[0]!.seq);
        assert.ok(r.events <= REQUEST_EVENTS_MAX);
        assert.ok(mine.every((e) => e.process === mine[0]!.process && e.urgent === mine[0]!.urgent), 'one request mixes processes or urgencies');
        assert.ok(r.events === 1 || Buffer.from(r.req.payload, 'base64').length <= REQUEST_BYTES_MAX);
      }
    }),
    { numRuns: 200 },
  );
});

test('a run\'s records are its process\'s, whatever the channel; the older kinds keep theirs per channel, and a run also skips what their records placed', () => {
  const process = orderedEvent(1).process;
  const onA = eventClient('a', process);
  const onB = eventClient('b/c', process);
  assert.match(onA, /^evr\/a\//);
  assert.deepEqual([channelOfEventClient(onA), channelOfEventClient(onB)], ['a', 'b/c']);
  assert.equal(decidedRecordOf(onA), decidedRecordOf(onB), 'one decided record per process');
  assert.equal(placedEventsKeys(onA).key, placedEventsKeys(onB).key, 'one placed record per process');
  assert.notEqual(decidedRecordOf(onA), placedEventsKeys(onA).key);
  assert.notEqual(decidedRecordOf(eventClient('a', orderedEvent(1, { epoch: EPOCH_B }).process)), decidedRecordOf(onA), 'another process, another record');
  const hash = onA.slice(onA.lastIndexOf('/') + 1);
  // Runs before session 19 (evs/) and one-event requests before session 17 (ev/): records per channel, as when they executed.
  assert.equal(decidedRecordOf(`evs/a/${hash}`), `evs/a/${hash}`);
  assert.deepEqual(placedEventsKeys(`evs/a/${hash}`), { key: `ev/a/${hash}`, also: placedEventsKeys(onA).key }, 'and skips what a run placed');
  assert.deepEqual(placedEventsKeys(`ev/a/${hash}`), { key: `ev/a/${hash}`, also: placedEventsKeys(onA).key });
  assert.equal(channelOfEventClient(`evs/a/${hash}`), 'a');
  assert.equal(placedEventsKeys(onA).also, `ev/a/${hash}`, 'a run skips events the older kinds placed on its channel');
  assert.deepEqual(placedEventsKeys('admin/alice'), { key: 'admin/alice' });
  assert.equal(decidedRecordOf('admin/alice'), 'admin/alice', 'other clients are their own record');
});
