// The record of which requests each client had decided (src/consensus/state.ts): every correct
// replica must answer the same and encode the same bytes after the same decisions, so its
// rules (a gap given up once enough seqs wait above it, the oldest client forgotten past
// clientsMax) are checked against the plainest model of them, decision by decision.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ExecutedRequests } from '../../src/consensus/index.js';
import { assertProperty } from '../helpers/property.js';

/** The rule as first written: a set above the floor, and the lowest of it taken by a scan. */
class Model {
  readonly clients = new Map<string, { low: number; above: Set<number> }>();
  constructor(
    private readonly clientsMax: number,
    private readonly max: number,
  ) {}

  has(client: string, seq: number): boolean {
    const d = this.clients.get(client);
    return d !== undefined && (seq <= d.low || d.above.has(seq));
  }

  add(client: string, seq: number): void {
    const d = this.clients.get(client) ?? { low: 0, above: new Set<number>() };
    this.clients.delete(client);
    this.clients.set(client, d);
    if (this.clients.size > this.clientsMax) this.clients.delete(this.clients.keys().next().value!);
    if (seq <= d.low) return;
    d.above.add(seq);
    while (d.above.delete(d.low + 1)) d.low++;
    if (d.above.size > this.max) {
      d.low = Math.min(...d.above);
      d.above.delete(d.low);
      while (d.above.delete(d.low + 1)) d.low++;
    }
  }

  encode(app: string): string {
    const decided = [...this.clients].map(([c, d]) => [c, d.low, [...d.above].sort((a, b) => a - b)]);
    return JSON.stringify({ v: 1, decided, app });
  }
}

/** Decisions as a publisher on several channels makes them: mostly rising, with gaps and some out of order. */
const decisions = fc.array(
  fc.record({ client: fc.constantFrom('a', 'b', 'c'), step: fc.integer({ min: -6, max: 9 }) }),
  { maxLength: 400 },
);

test('the decided seqs answer and encode as the plain rule does, through gaps given up and clients forgotten', (t) => {
  assertProperty(
    t,
    import.meta.url,
    fc.property(decisions, fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 3 }), (steps, max, clientsMax) => {
      const real = new ExecutedRequests(clientsMax, max);
      const model = new Model(clientsMax, max);
      const top = new Map<string, number>();
      for (const { client, step } of steps) {
        const seq = Math.max(1, (top.get(client) ?? 0) + step);
        top.set(client, Math.max(seq, top.get(client) ?? 0));
        real.add(client, seq);
        model.add(client, seq);
        for (const c of ['a', 'b', 'c']) {
          for (let s = seq - 12; s <= seq + 2; s++) assert.equal(real.has(c, s), model.has(c, s), `has(${c}, ${s}) after add(${client}, ${seq})`);
        }
      }
      assert.equal(real.encode('x'), model.encode('x'));
      // A snapshot loaded elsewhere goes on exactly as the replica that made it.
      const loaded = new ExecutedRequests(clientsMax, max);
      loaded.decode(real.encode('x'))!.load();
      for (const [i, { client }] of steps.slice(0, 40).entries()) {
        const seq = (top.get(client) ?? 0) + 2 + i;
        loaded.add(client, seq);
        real.add(client, seq);
      }
      assert.equal(loaded.encode('y'), real.encode('y'));
    }),
  );
});

test('once a client keeps the most seqs above a gap, each decision gives up one gap, the lowest', () => {
  const r = new ExecutedRequests(Infinity, 3);
  for (const seq of [2, 4, 6]) r.add('p', seq);
  assert.equal(r.has('p', 1), false, 'three above the gap at 1: still waited for');
  r.add('p', 8);
  assert.equal(r.has('p', 1), true, 'the fourth gives up 1 (and 2 with it)');
  assert.equal(r.has('p', 3), false, 'the next gap is waited for');
  assert.equal(r.encode(''), JSON.stringify({ v: 1, decided: [['p', 2, [4, 6, 8]]], app: '' }));
  r.add('p', 3);
  assert.equal(r.encode(''), JSON.stringify({ v: 1, decided: [['p', 4, [6, 8]]], app: '' }), 'a late seq fills its gap');
});
