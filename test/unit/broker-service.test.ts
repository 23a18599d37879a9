// The event broker service, L3 (src/broker/service.ts; paper §3.3, §4): who may publish and
// subscribe where, routing each accepted record to every subscriber's queue, and refusing a
// whole batch (queueing nothing, remembering nothing) when any record in it is bad, so the
// publisher can fix and resend it. The control table here is built by hand, not from YAML.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, FitError, limitsWith, type ChannelClass, type ClientInfo, type ControlTable } from '../../src/core/index.js';
import { BrokerService, type ClientQueue } from '../../src/broker/index.js';
import { makeRecord, multiPublishFrame, publishBody, EPOCH_B, T0_MS } from '../helpers/records.js';
import fc from 'fast-check';
import { assertProperty } from '../helpers/property.js';
import { decodePublish } from '../../src/codec/index.js';
import { fitErrorFrom } from '../helpers/errors.js';

const TTL_MS = 60_000;
const cls = (over: Partial<ChannelClass> = {}): ChannelClass => ({
  fault: 'bft',
  order: 'none',
  priority: 0,
  capacityEvents: 100,
  ttlMs: TTL_MS,
  overflow: 'drop-oldest',
  persist: 'memory',
  protection: 'si',
  ...over,
});
const client = (id: string, publish: string[], subscribe: string[]): ClientInfo => ({ id, publicKey: 'unused-here', publish, subscribe, admin: false });

const probe = client('probe', ['alerts'], []);
const siem1 = client('siem1', [], ['alerts']);
const siem2 = client('siem2', [], ['*']);
const metricsOnly = client('grafana', [], ['metrics']);
const outsider = client('outsider', [], []);
const both = client('both', ['alerts', 'metrics'], []);

function setup(nowMs = T0_MS): { svc: BrokerService; queued: string[] } {
  const table: ControlTable = {
    channels: new Map([
      ['alerts', cls()],
      ['metrics', cls({ fault: 'cft' })],
    ]),
    clients: new Map([probe, siem1, siem2, metricsOnly, outsider, both].map((c) => [c.id, c])),
  };
  const svc = new BrokerService(table, limitsWith({}), () => nowMs);
  const queued: string[] = [];
  svc.onQueued = (channel, id) => queued.push(`${channel}:${id}`);
  return { svc, queued };
}

function publish(svc: BrokerService, who: ClientInfo, channel: string, records: Buffer[], count = records.length) {
  const { body, sections } = publishBody(channel, records, count);
  return svc.publish(who, body, sections);
}

const depth = (svc: BrokerService, who: ClientInfo, channel = 'alerts'): number => svc.queueFor(who, channel).depth;
const takeAll = (q: ClientQueue): Buffer[] => q.take(q.attach(), 1000, T0_MS).map((e) => e.rec);

function refusal(fn: () => unknown): FitError {
  return fitErrorFrom(fn, 'a refusal');
}

test('every subscriber in the control table has a queue from the start, and only subscribers do', () => {
  const { svc } = setup();
  assert.deepEqual([...svc.channel('alerts').queues.keys()].sort(), ['siem1', 'siem2']);
  assert.deepEqual([...svc.channel('metrics').queues.keys()].sort(), ['grafana', 'siem2']);
});

test('publish routes each accepted record, byte for byte, to every subscriber queue of the channel', () => {
  const { svc, queued } = setup();
  const recs = [makeRecord({ seq: 1 }), makeRecord({ seq: 2, priority: 3, content: 'urgent' })];
  assert.deepEqual(publish(svc, probe, 'alerts', recs), { accepted: 2, duplicates: 0 });
  for (const who of [siem1, siem2]) {
    const got = takeAll(svc.queueFor(who, 'alerts'));
    assert.deepEqual(got, [recs[1], recs[0]], `${who.id}: urgent first, bytes untouched`);
  }
  assert.equal(depth(svc, metricsOnly, 'metrics'), 0, 'other channels get nothing');
  assert.deepEqual(queued.sort(), ['alerts:siem1', 'alerts:siem2']);
  assert.equal(svc.channel('alerts').counters.eventsIn, 2);
});

test('a frame with a section per channel routes each section to its channel\'s queues; a refused section queues nothing from any', () => {
  const { svc, queued } = setup();
  const a = [makeRecord({ publisher: 'both', seq: 1 }), makeRecord({ publisher: 'both', seq: 3 })];
  const m = [makeRecord({ publisher: 'both', seq: 2, content: 'metric' })];
  const multi = (sections: { channel: string; records: Buffer[] }[]) => {
    const body = multiPublishFrame(sections).subarray(4);
    return svc.publish(both, body, decodePublish(body).sections);
  };
  assert.deepEqual(multi([{ channel: 'alerts', records: a }, { channel: 'metrics', records: m }]), { accepted: 3, duplicates: 0 });
  assert.deepEqual(takeAll(svc.queueFor(siem1, 'alerts')), a);
  assert.deepEqual(takeAll(svc.queueFor(metricsOnly, 'metrics')), m);
  assert.deepEqual(queued.sort(), ['alerts:siem1', 'alerts:siem2', 'metrics:grafana', 'metrics:siem2']);

  const later = [makeRecord({ publisher: 'both', seq: 4 })];
  const e = refusal(() => multi([{ channel: 'alerts', records: later }, { channel: 'nope', records: later }]));
  assert.equal(e.code, 'FIT_ERR_UNKNOWN_CHANNEL');
  const bad = makeRecord({ publisher: 'probe', seq: 5 });
  assert.equal(refusal(() => multi([{ channel: 'alerts', records: later }, { channel: 'metrics', records: [bad] }])).code, 'FIT_ERR_NOT_AUTHORIZED');
  assert.equal(depth(svc, siem1), 0, 'the good section of a refused frame was not queued');
  assert.deepEqual(multi([{ channel: 'alerts', records: later }]), { accepted: 1, duplicates: 0 }, 'nor remembered by dedupe');
});

test('events published before a console first connects wait in its queue', () => {
  const { svc } = setup();
  publish(svc, probe, 'alerts', [makeRecord({ seq: 1 })]);
  assert.equal(takeAll(svc.queueFor(siem1, 'alerts')).length, 1);
});

test('a record naming another publisher is refused with FIT_ERR_NOT_AUTHORIZED and nothing is queued', () => {
  const { svc, queued } = setup();
  const e = refusal(() => publish(svc, probe, 'alerts', [makeRecord({ seq: 1 }), makeRecord({ seq: 2, publisher: 'siem1' })]));
  assert.equal(e.code, 'FIT_ERR_NOT_AUTHORIZED');
  assert.deepEqual(e.fields, { channel: 'alerts', client: 'probe' });
  assert.match(e.message, /names publisher "siem1" but the connection is authenticated as "probe"/);
  assert.equal(depth(svc, siem1), 0);
  assert.deepEqual(queued, []);
  assert.deepEqual(publish(svc, probe, 'alerts', [makeRecord({ seq: 1 })]), { accepted: 1, duplicates: 0 }, 'dedupe did not remember seq 1');
});

test('a batch with a malformed record queues nothing and does not advance dedupe', () => {
  const { svc } = setup();
  const bad = makeRecord({ seq: 3 });
  bad[5] = 9; // priority 9
  const good = [makeRecord({ seq: 1 }), makeRecord({ seq: 2 })];
  assert.equal(refusal(() => publish(svc, probe, 'alerts', [...good, bad])).code, 'FIT_ERR_MALFORMED');
  assert.equal(depth(svc, siem1), 0);
  assert.equal(svc.channel('alerts').counters.eventsIn, 0);
  assert.deepEqual(publish(svc, probe, 'alerts', good), { accepted: 2, duplicates: 0 }, 'resending the good records is accepted');
});

test('a batch whose count disagrees with its records is refused as FIT_ERR_MALFORMED naming the channel', () => {
  const { svc } = setup();
  const e = refusal(() => publish(svc, probe, 'alerts', [makeRecord({ seq: 1 })], 2));
  assert.equal(e.code, 'FIT_ERR_MALFORMED');
  assert.deepEqual(e.fields, { channel: 'alerts' });
  assert.equal(depth(svc, siem1), 0);
});

test('an oversize record refuses the whole batch with FIT_ERR_EVENT_TOO_LARGE', () => {
  const { svc } = setup();
  const big = makeRecord({ seq: 2, content: Buffer.alloc(DEFAULT_LIMITS.eventBytesMax) });
  assert.equal(refusal(() => publish(svc, probe, 'alerts', [makeRecord({ seq: 1 }), big])).code, 'FIT_ERR_EVENT_TOO_LARGE');
  assert.equal(depth(svc, siem1), 0);
});

test('duplicates are counted and not queued again; another epoch of the same publisher is not a duplicate', () => {
  const { svc, queued } = setup();
  publish(svc, probe, 'alerts', [makeRecord({ seq: 1 }), makeRecord({ seq: 2 })]);
  queued.length = 0;
  assert.deepEqual(publish(svc, probe, 'alerts', [makeRecord({ seq: 1 }), makeRecord({ seq: 2 })]), { accepted: 0, duplicates: 2 });
  assert.deepEqual(queued, [], 'no wake-up when nothing was queued');
  assert.deepEqual(publish(svc, probe, 'alerts', [makeRecord({ seq: 2 }), makeRecord({ seq: 3 })]), { accepted: 1, duplicates: 1 });
  assert.deepEqual(publish(svc, probe, 'alerts', [makeRecord({ seq: 1, epoch: EPOCH_B })]), { accepted: 1, duplicates: 0 });
  const ch = svc.channel('alerts');
  assert.equal(ch.counters.duplicates, 3);
  assert.equal(ch.counters.eventsIn, 4);
  assert.equal(depth(svc, siem1), 4);
});

test('a section holding two epochs of one publisher dedupes each epoch on its own, whichever comes first', () => {
  const { svc } = setup();
  const a = (seq: number): Buffer => makeRecord({ seq });
  const b = (seq: number): Buffer => makeRecord({ seq, epoch: EPOCH_B });
  assert.deepEqual(publish(svc, probe, 'alerts', [a(1), a(2), b(1), b(2), a(3)]), { accepted: 5, duplicates: 0 });
  // Epoch B's seqs are below epoch A's last: read as A's stream, they would be duplicates.
  assert.deepEqual(publish(svc, probe, 'alerts', [a(3), b(2), b(3), a(4), b(3)]), { accepted: 2, duplicates: 3 });
  assert.deepEqual(
    takeAll(svc.queueFor(siem1, 'alerts')),
    [a(1), a(2), b(1), b(2), a(3), b(3), a(4)],
    'each accepted record queued once, in the order it came',
  );
});

test('an event already past its TTL on arrival is dropped and counted, not queued', () => {
  const { svc } = setup(T0_MS + TTL_MS + 1);
  assert.deepEqual(publish(svc, probe, 'alerts', [makeRecord({ seq: 1, timestampMs: T0_MS })]), { accepted: 0, duplicates: 0 });
  assert.equal(svc.channel('alerts').counters.droppedTtl, 1);
  assert.equal(depth(svc, siem1), 0);
});

test('checkPublish refuses an unknown channel with FIT_ERR_UNKNOWN_CHANNEL and a non-publisher with FIT_ERR_NOT_AUTHORIZED', () => {
  const { svc } = setup();
  const unknown = refusal(() => svc.checkPublish(probe, 'nope'));
  assert.equal(unknown.code, 'FIT_ERR_UNKNOWN_CHANNEL');
  assert.deepEqual(unknown.fields, { channel: 'nope' });
  const denied = refusal(() => svc.checkPublish(probe, 'metrics'));
  assert.equal(denied.code, 'FIT_ERR_NOT_AUTHORIZED');
  assert.deepEqual(denied.fields, { channel: 'metrics', client: 'probe' });
  assert.match(denied.message, /clients\.probe\.publish/);
  assert.equal(svc.checkPublish(probe, 'alerts').tag, 'alerts');
});

test('queueFor refuses an unknown channel and a client that may not subscribe, naming channel and client', () => {
  const { svc } = setup();
  assert.equal(refusal(() => svc.queueFor(siem1, 'nope')).code, 'FIT_ERR_UNKNOWN_CHANNEL');
  for (const who of [outsider, probe]) {
    const e = refusal(() => svc.queueFor(who, 'alerts'));
    assert.equal(e.code, 'FIT_ERR_NOT_AUTHORIZED');
    assert.deepEqual(e.fields, { channel: 'alerts', client: who.id });
    assert.match(e.message, new RegExp(`clients\\.${who.id}\\.subscribe`));
  }
  assert.equal(svc.queueFor(siem2, 'metrics'), svc.queueFor(siem2, 'metrics'), 'one queue per client and channel');
});

test('client() looks clients up in the control table', () => {
  const { svc } = setup();
  assert.equal(svc.client('probe'), probe);
  assert.equal(svc.client('ghost'), undefined);
});

test('stats() reports counters and every queue with its depth and sessions', () => {
  const { svc } = setup();
  publish(svc, probe, 'alerts', [makeRecord({ seq: 1 })]);
  svc.queueFor(siem1, 'alerts').attach();
  const alerts = svc.stats().find((s) => s.tag === 'alerts')!;
  assert.equal(alerts.fault, 'bft');
  assert.equal(alerts.eventsIn, 1);
  assert.equal(alerts.queues.siem1!.depth, 1);
  assert.equal(alerts.queues.siem1!.sessions, 1);
  assert.equal(alerts.queues.siem2!.sessions, 0);
});

test('records read back byte for byte while slabs are freed and reused under random take, ack and detach schedules', (t) => {
  // Queued records lie in 16 KiB slabs that go back to a pool once no queue holds them and
  // are written over by later sections: a slab reused while an entry still named it would
  // hand a console another event's bytes. Records of up to 3 KiB roll slabs over every few
  // publishes.
  type Op =
    | { k: 'publish'; channel: 'alerts' | 'metrics'; sizes: number[] }
    | { k: 'attach'; who: number; channel: 'alerts' | 'metrics' }
    | { k: 'take'; i: number; max: number }
    | { k: 'ack'; i: number; keep: number }
    | { k: 'detach'; i: number };
  const channel = fc.constantFrom<'alerts' | 'metrics'>('alerts', 'metrics');
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ k: fc.constant('publish' as const), channel, sizes: fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 12 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('attach' as const), who: fc.nat(1), channel }) },
    { weight: 4, arbitrary: fc.record({ k: fc.constant('take' as const), i: fc.nat(), max: fc.integer({ min: 1, max: 40 }) }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('ack' as const), i: fc.nat(), keep: fc.nat(5) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('detach' as const), i: fc.nat() }) },
  );
  assertProperty(
    t,
    import.meta.url,
    fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
      const { svc } = setup();
      const publisher = client('probe', ['alerts', 'metrics'], []);
      const published = new Set<string>();
      const sessions: { q: ClientQueue; s: ReturnType<ClientQueue['attach']> }[] = [];
      let seq = 0;
      for (const o of ops) {
        const x = sessions.length > 0 ? sessions[('i' in o ? o.i : 0) % sessions.length] : undefined;
        if (o.k === 'publish') {
          const recs = o.sizes.map((n) => makeRecord({ seq: ++seq, content: `${seq}:`.padEnd(n, String.fromCharCode(97 + (seq % 26))) }));
          for (const r of recs) published.add(r.toString('latin1'));
          publish(svc, publisher, o.channel, recs);
        } else if (o.k === 'attach') {
          const q = svc.queueFor([siem1, siem2][o.who]!, o.who === 0 ? 'alerts' : o.channel);
          sessions.push({ q, s: q.attach() });
        } else if (o.k === 'take' && x) {
          // Read as the push stream does: at once, before anything else runs.
          for (const e of x.q.take(x.s, o.max, T0_MS)) {
            assert.ok(published.has(e.rec.toString('latin1')), `take returned bytes that were never published as one record (${e.len} bytes)`);
          }
        } else if (o.k === 'ack' && x) x.q.ack(x.s, x.s.nextPos - 1 - o.keep);
        else if (o.k === 'detach' && x) {
          x.q.detach(x.s);
          sessions.splice(sessions.indexOf(x), 1);
        }
      }
      // What is still queued reads back intact too, through a pull.
      for (const who of [siem1, siem2]) {
        for (const ch of who === siem1 ? ['alerts'] : ['alerts', 'metrics']) {
          for (const e of svc.queueFor(who, ch).pull(1_000_000, T0_MS)) assert.ok(published.has(e.rec.toString('latin1')), 'a queued record was overwritten');
        }
      }
    }),
    { numRuns: 300 },
  );
});
