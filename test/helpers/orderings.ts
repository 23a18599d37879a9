// Four replicas' Orderings (src/replica/ordering.ts), each over its own BrokerService, running
// the real protocol over an in-memory network: for the tests of what the replica's state
// machine makes of publish frames, without sockets.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { initCluster, loadConfig, replicaKeyPath } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { BrokerService, type UnorderedEvent } from '../../src/broker/index.js';
import { ORDERED_HEADER_BYTES, RecordCursor } from '../../src/codec/index.js';
import { Ordering, type OrderingLinks } from '../../src/replica/ordering.js';
import type { Limits } from '../../src/core/index.js';
import { orderedEvent, T0_MS } from './records.js';

export const N = 4;
export const silent = pino({ level: 'silent' });
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Replica {
  service: BrokerService;
  ordering: Ordering;
  acks: number;
}

/**
 * Four replicas in a temp dir, their protocol messages carried as JSON through setImmediate.
 * `checkpointEvery` 2 makes the replicas compare their snapshots (the events placed in them)
 * after every other decision; a replica far behind may then install one instead of replaying,
 * and hold fewer events, so only tests where every replica holds every body use it.
 */
export function cluster(checkpointEvery?: number, ordered = ['orders'], limits: Partial<Limits> = {}): { replicas: Replica[]; stop(): void; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-sections-'));
  initCluster({ dir, replicas: N, faults: 1, channels: [], basePort: 7100, host: '127.0.0.1', faultModel: 'bft', clients: [{ name: 'siem', role: 'sub' }], force: false, ordered, persist: 'memory' });
  const loaded = loadConfig(dir);
  const config = { ...loaded, limits: { ...loaded.limits, ...(checkpointEvery === undefined ? {} : { consensusCheckpointInterval: checkpointEvery }), ...limits } };
  let stopped = false;
  const replicas: Replica[] = [];
  const links = (id: number): OrderingLinks => ({
    start: () => undefined,
    stop: () => undefined,
    connected: [...Array(N).keys()].filter((r) => r !== id),
    dropped: 0,
    send(to, msg) {
      const wire = JSON.stringify(msg);
      for (const r of to === 'all' ? [...Array(N).keys()].filter((x) => x !== id) : [to]) {
        setImmediate(() => {
          if (!stopped) replicas[r]!.ordering.receive(id, JSON.parse(wire));
        });
      }
    },
  });
  for (let id = 0; id < N; id++) {
    // The log's clock at the records' time, so nothing expires while the test runs.
    const service = new BrokerService(config.table, config.limits, () => T0_MS);
    const ordering = new Ordering({ config, id, privateKey: loadPrivateKey(replicaKeyPath(dir, id)), restarted: false, slowOrderMs: 0, service, logger: silent, reply: () => undefined, refuse: () => undefined, links: links(id) });
    replicas.push({ service, ordering, acks: 0 });
  }
  for (const r of replicas) r.ordering.start();
  return {
    replicas,
    dir,
    stop() {
      stopped = true;
      for (const r of replicas) r.ordering.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type Cluster = ReturnType<typeof cluster>;

/** Runs `body` over a fresh cluster (cluster()'s arguments by name), and stops it however body ends. */
export async function withCluster<T>(o: { checkpointEvery?: number; ordered?: string[]; limits?: Partial<Limits> }, body: (c: Cluster) => Promise<T>): Promise<T> {
  const c = cluster(o.checkpointEvery, o.ordered, o.limits);
  try {
    return await body(c);
  } finally {
    c.stop();
  }
}

/** Hands a publish frame's section to replica `r`, as its server does, counting acknowledgements. */
export function publishTo(r: Replica, events: UnorderedEvent[], channel = 'orders', client = 'probe'): void {
  r.ordering.order(client, [{ channel, events }], (err) => {
    assert.equal(err, undefined);
    r.acks++;
  });
}

/** Each replica's log of 'orders': the envelopes by position (seq, content, global position). */
export function logOf(r: Replica): Buffer[] {
  const log = r.service.sequencer.log('orders')!;
  const out: Buffer[] = [];
  for (let s = 1; s <= log.high; s++) out.push(log.envelopeAt(s)!);
  return out;
}

/** The publisher's seq of each event in a log. */
export function publisherSeqs(log: Buffer[]): number[] {
  return log.map((env) => {
    const c = new RecordCursor(env, ORDERED_HEADER_BYTES, Infinity);
    c.next();
    return c.seq;
  });
}

/**
 * Waits until every replica decided as far as the others and its log stopped growing: a
 * replica that missed a body may be a decision behind for a resend period, then catch up.
 */
export async function settled(replicas: Replica[], timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  let stable = 0;
  while (Date.now() < until) {
    const decided = replicas.map((r) => r.ordering.status().lastDecided);
    const now = JSON.stringify(replicas.map((r, i) => [r.service.sequencer.log('orders')!.high, r.acks, decided[i]]));
    stable = now === last && decided.every((d) => d === decided[0]) ? stable + 1 : 0;
    last = now;
    if (stable >= 8) return;
    await sleep(25);
  }
  throw new Error(`the replicas did not settle in ${timeoutMs} ms: ${last}`);
}

/** The log every replica holds, after checking that they all hold the same one. */
export function agreedLog(replicas: Replica[], context = ''): Buffer[] {
  const logs = replicas.map(logOf);
  for (const log of logs) assert.deepEqual(log, logs[0], `the replicas placed the events differently${context}`);
  return logs[0]!;
}

export const range = (from: number, to: number): UnorderedEvent[] => Array.from({ length: to - from + 1 }, (_, i) => orderedEvent(from + i));
