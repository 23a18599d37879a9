// One benchmark client process: a publisher or a subscriber of one system. The harness forks
// N publishers and M subscribers per run, the same for every system, so no client shares an
// event loop with another and every system pays the same process boundaries.

import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';
import { ageMicros, encodeHistogram, newRecordingHistogram, payloadTemplate, stamped, STAMP_BYTES, URGENT_MARK } from './stamp.js';
import { clientFactory } from './systems/clients.js';
import { LatencyTrace } from './latency-trace.js';
import type { ClientSide } from './systems/types.js';

/** Events a publisher sends between two looks at its event loop, when nothing pushes back. */
const YIELD_EVERY = 2000;
const PACE_TICK_MS = 2;

function send(m: FromWorker): void {
  process.send!(m);
}

let client: ClientSide | undefined;
let init: WorkerInit | undefined;
let histogram = newRecordingHistogram();
let received = 0;
let firstNs = 0n;
let lastNs = 0n;
let longestGapNs = 0n;
/** When this subscriber called subscribe() (the --first-event part times its first event from there). */
let subscribeNs: bigint | undefined;
/** Urgent events (the --urgent part), timed apart from the rest; undefined until one arrives. */
let urgent: { histogram: ReturnType<typeof newRecordingHistogram>; positions: number[] } | undefined;
/** FIT_BENCH_LATENCY_TRACE=DIR: every event's arrival and send time, per phase (latency-trace.ts). */
const trace = process.env.FIT_BENCH_LATENCY_TRACE ? new LatencyTrace(process.env.FIT_BENCH_LATENCY_TRACE) : undefined;

function onMessage(payload: Buffer): void {
  const now = process.hrtime.bigint();
  if (received === 0) firstNs = now;
  else if (now - lastNs > longestGapNs) longestGapNs = now - lastNs;
  lastNs = now;
  trace?.record(now, payload.readBigUInt64LE(0));
  if (payload[STAMP_BYTES] === URGENT_MARK) {
    urgent ??= { histogram: newRecordingHistogram(), positions: [] };
    urgent.histogram.recordValue(Math.max(1, ageMicros(payload, now)));
    urgent.positions.push(received);
  } else histogram.recordValue(Math.max(1, ageMicros(payload, now)));
  received++;
}

/** `count` urgent events on the first channel, `everyMs` apart, each stamped when it is published. */
async function publishUrgent(c: ClientSide, count: number, everyMs: number, channel: string, payload: Buffer): Promise<void> {
  if (!c.publishUrgent) throw new Error('this system has no urgent events');
  const marked = Buffer.from(payload);
  marked[STAMP_BYTES] = URGENT_MARK;
  for (let i = 0; i < count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, everyMs));
    if (!c.publishUrgent(channel, stamped(marked))) await c.drained();
  }
}

async function publishSaturated(c: ClientSide, events: number, channels: string[], payload: Buffer): Promise<void> {
  let ch = 0;
  for (let i = 0; i < events; i++) {
    const ok = c.publish(channels[ch]!, stamped(payload));
    if (++ch === channels.length) ch = 0;
    if (!ok) await c.drained();
    else if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldToIo();
  }
}

async function publishPaced(c: ClientSide, rate: number, durationMs: number, channels: string[], payload: Buffer): Promise<number> {
  const start = performance.now();
  let sent = 0;
  let ch = 0;
  const total = Math.round((rate * durationMs) / 1000);
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
    let blocked = false;
    while (sent < due) {
      const ok = c.publish(channels[ch]!, stamped(payload));
      if (++ch === channels.length) ch = 0;
      sent++;
      if (!ok) {
        blocked = true;
        break;
      }
    }
    if (blocked) await c.drained();
    else await new Promise((r) => setTimeout(r, PACE_TICK_MS));
  }
  return sent;
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.type) {
    case 'init': {
      init = m;
      const name = `${m.kind === 'publisher' ? 'pub' : 'sub'}${m.index}`;
      client = await clientFactory(m.endpoint.system)(m.endpoint, { kind: m.kind, index: m.index, name });
      await client.connect();
      if (m.kind === 'subscriber') {
        subscribeNs = process.hrtime.bigint();
        await client.subscribe(m.channels, onMessage);
      }
      return send({ type: 'ready' });
    }
    case 'publish': {
      const c = client!;
      const payload = payloadTemplate(init!.size);
      const start = process.hrtime.bigint();
      let events = m.events ?? 0;
      if (m.rate !== undefined) events = await publishPaced(c, m.rate, m.durationMs ?? 1000, init!.channels, payload);
      else await publishSaturated(c, events, init!.channels, payload);
      await c.flush();
      return send({ type: 'published', events, startNs: String(start), endNs: String(process.hrtime.bigint()) });
    }
    case 'urgent': {
      const start = process.hrtime.bigint();
      await publishUrgent(client!, m.count, m.everyMs, init!.channels[0]!, payloadTemplate(init!.size));
      await client!.flush();
      return send({ type: 'published', events: m.count, startNs: String(start), endNs: String(process.hrtime.bigint()) });
    }
    case 'reset':
      histogram.destroy();
      urgent?.histogram.destroy();
      histogram = newRecordingHistogram();
      urgent = undefined;
      received = 0;
      firstNs = lastNs = longestGapNs = 0n;
      trace?.reset();
      return;
    case 'count':
      return send({ type: 'count', received });
    case 'report':
      trace?.flush();
      return send({
        type: 'report',
        received,
        firstNs: String(firstNs),
        lastNs: String(lastNs),
        histogram: encodeHistogram(histogram),
        longestGapMs: Number(longestGapNs / 1_000_000n),
        ...(subscribeNs !== undefined ? { subscribeNs: String(subscribeNs) } : {}),
        ...(urgent ? { urgent: { histogram: encodeHistogram(urgent.histogram), positions: urgent.positions } } : {}),
      });
    case 'exit':
      await client?.close().catch(() => undefined);
      process.exit(0);
  }
}

process.on('message', (m: ToWorker) => {
  handle(m).catch((e: unknown) => {
    send({ type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  });
});
process.on('disconnect', () => process.exit(0));
