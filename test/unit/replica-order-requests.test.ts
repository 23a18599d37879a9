// How a publish section of an ordered channel is cut into consensus requests
// (src/replica/order-requests.ts): by the section's records alone (a function of them and
// nothing else, which is what makes every correct replica cut the same section alike), with no
// event left out or repeated.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RecordCursor } from '../../src/codec/index.js';
import { eventRequestBody, isEventRequest, REQUEST_BYTES_MAX, REQUEST_EVENTS_MAX, runClient, sectionRequests } from '../../src/replica/order-requests.js';
import type { Req } from '../../src/consensus/index.js';
import { EPOCH_B, orderedEvent } from '../helpers/records.js';
import { assertProperty } from '../helpers/property.js';

const seqs = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The seqs of the records in a run's payload (`CHANNEL/` then the records). */
function payloadSeqs(payload: string): number[] {
  const cursor = new RecordCursor(Buffer.from(payload.slice(payload.indexOf('/') + 1), 'base64'), 0, Infinity);
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
  assert.equal(reqs[0]!.req.client, runClient(events[0]!.process));
  assert.ok(reqs[0]!.req.payload.startsWith('orders/'), 'the payload names the channel');
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
      const records = (r: Req): Buffer => Buffer.from(eventRequestBody(r)!.records, 'base64');
      assert.equal(Buffer.concat(reqs.map((r) => records(r.req))).compare(Buffer.concat(events.map((e) => e.record))), 0);
      let at = 0;
      for (const r of reqs) {
        const mine = events.slice(at, at + r.events);
        at += r.events;
        assert.equal(r.req.seq, mine[0]!.seq);
        assert.ok(r.events <= REQUEST_EVENTS_MAX);
        assert.ok(mine.every((e) => e.process === mine[0]!.process && e.urgent === mine[0]!.urgent), 'one request mixes processes or urgencies');
        assert.ok(r.events === 1 || records(r.req).length <= REQUEST_BYTES_MAX);
      }
    }),
    { numRuns: 200 },
  );
});

test('a run is named by its process whatever the channel, its channel in its payload; the older kinds keep the channel in the name, and each kind skips what the other placed', () => {
  const events = [orderedEvent(1)];
  const [onA] = sectionRequests('a', events);
  const [onB] = sectionRequests('b.c', events);
  assert.match(onA!.req.client, /^evr\/[0-9a-f]{32}$/);
  assert.equal(onA!.req.client, onB!.req.client, 'one client, so (client, seq) is one request whatever the channel');
  assert.notEqual(onA!.req.payload, onB!.req.payload, 'two channels, two bodies');
  const a = eventRequestBody(onA!.req)!;
  const b = eventRequestBody(onB!.req)!;
  assert.deepEqual([a.channel, b.channel], ['a', 'b.c']);
  assert.deepEqual(payloadSeqs(onA!.req.payload), [1]);
  assert.equal(a.placed.key, b.placed.key, 'one record of events placed per process');
  assert.notEqual(eventRequestBody(sectionRequests('a', [orderedEvent(1, { epoch: EPOCH_B })])[0]!.req)!.placed.key, a.placed.key, 'another process, another record');
  const hash = onA!.req.client.slice('evr/'.length);
  assert.equal(a.placed.also, `ev/a/${hash}`, 'a run skips events the older kinds placed on its channel');
  // Runs before session 19 (evs/) and one-event requests before session 17 (ev/): the channel in the name, records per channel, as when they executed.
  const records = Buffer.from(a.records, 'base64').toString('base64');
  for (const client of [`evs/a/${hash}`, `ev/a/${hash}`]) {
    const older: Req = { client, seq: 1, payload: records };
    assert.deepEqual(eventRequestBody(older), { channel: 'a', records, placed: { key: `ev/a/${hash}`, also: a.placed.key } }, `${client}: and skips what a run placed`);
    assert.ok(isEventRequest(client));
  }
  assert.equal(eventRequestBody({ client: 'control/alice', seq: 1, payload: '{}' }), undefined);
  assert.equal(isEventRequest('control/alice'), false);
  assert.equal(eventRequestBody({ client: onA!.req.client, seq: 1, payload: 'no channel' }), undefined, 'a run whose payload names no channel is not an event request');
});
