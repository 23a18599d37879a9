// The consensus driver with a journal (src/consensus/driver.ts): it writes ahead — nothing is
// sent and no decision reported before the entries that came with it are durable, in the
// order the core produced them — and a cluster of real drivers (Ed25519, the wire schema)
// killed whole and started again from its journals, in memory and in LMDB, comes back with
// everything it executed and decides on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { limitsWith } from '../../src/core/index.js';
import { ConsensusDriver, LmdbJournalStore, MemoryJournalStore, type ConsensusMessage, type Decision, type JournalEntry, type JournalStore, type Req, type StoredEntry } from '../../src/consensus/index.js';
import { SimMachine } from '../helpers/consensus-sim.js';

const N = 4;
const keys = Array.from({ length: N }, () => generateKeyPairSync('ed25519'));
const publicKeys = keys.map((k) => k.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'));
const limits = limitsWith({ consensusTickMs: 5, consensusTimeoutMs: 400, consensusResendMs: 50, consensusCheckpointInterval: 4, consensusLogWindow: 8, consensusBatchMax: 4, consensusRetainDecided: 4 });
const req = (client: string, seq: number): Req => ({ client, seq, payload: `${client}-${seq}` });

/** A store whose flushes the test lets through by hand. */
class GatedStore implements JournalStore {
  readonly inner = new MemoryJournalStore();
  private readonly gates: (() => void)[] = [];
  append(entries: readonly JournalEntry[]): void {
    this.inner.append(entries);
  }
  durable(): Promise<void> {
    return new Promise((resolve) => this.gates.push(resolve));
  }
  load(): StoredEntry[] {
    return this.inner.load();
  }
  /** Lets every flush asked for so far through. */
  open(): void {
    this.inner.sync();
    for (const g of this.gates.splice(0)) g();
  }
  get asked(): number {
    return this.gates.length;
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('with a journal, the driver sends nothing and reports no decision before the entries that came with it are durable, and keeps the order', async () => {
  const store = new GatedStore();
  const sent: string[] = [];
  const d = new ConsensusDriver({ id: 1, n: N, f: 1, limits, restarted: false, privateKey: keys[1]!.privateKey, publicKeys, send: (_to, m) => sent.push(m.type), machine: new SimMachine(), journal: store });
  d.submit(req('c', 1));
  d.receive(2, { type: 'fetch', after: 0, from: 2 });
  await turn();
  assert.deepEqual(sent, [], 'a HOLD (the body must be on disk) and a BATCHES reply behind it');
  assert.ok(store.asked > 0, 'a flush was asked for');
  assert.equal(d.status.journal?.outputsWaiting, 3, 'recovery (the header), the submit, the fetch');
  store.open();
  await turn();
  assert.deepEqual(sent, ['hold', 'batches'], 'released once durable, in order');
  d.receive(2, { type: 'fetch', after: 0, from: 2 });
  await turn();
  await turn();
  assert.deepEqual(sent, ['hold', 'batches'], 'a FETCH answered too soon is not answered (rate limit): nothing written, nothing waits');
  d.stop();
});

interface Node {
  driver: ConsensusDriver;
  machine: SimMachine;
  /** Requests whose decision was reported durable (acknowledged to the client). */
  acked: Set<string>;
}

/** Four drivers wired to each other through JSON, as on the wire; `kill()` drops everything in flight. */
function cluster(stores: JournalStore[]): { nodes: Node[]; kill(): void } {
  let alive = true;
  const nodes: Node[] = [];
  for (let id = 0; id < N; id++) {
    const machine = new SimMachine();
    const acked = new Set<string>();
    const driver = new ConsensusDriver({
      id,
      n: N,
      f: 1,
      limits,
      restarted: false,
      privateKey: keys[id]!.privateKey as KeyObject,
      publicKeys,
      machine,
      journal: stores[id]!,
      durable: ({ decided }: { decided: Decision[] }) => {
        for (const d of decided) for (const q of d.requests) acked.add(`${q.client}#${q.seq}`);
      },
      send: (to: number | 'all', msg: ConsensusMessage) => {
        const wire = JSON.stringify(msg);
        for (let t = 0; t < N; t++) {
          if (t === id || (to !== 'all' && to !== t)) continue;
          setImmediate(() => alive && nodes[t]!.driver.receive(id, JSON.parse(wire)));
        }
      },
    });
    nodes.push({ driver, machine, acked });
  }
  for (const n of nodes) n.driver.start();
  return {
    nodes,
    kill: () => {
      alive = false;
      for (const n of nodes) n.driver.stop();
    },
  };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function wholeClusterRestart(stores: () => JournalStore[], reopen: (s: JournalStore[]) => Promise<JournalStore[]>): Promise<void> {
  let s = stores();
  const first = cluster(s);
  const before = Array.from({ length: 40 }, (_, i) => req(`c${i % 3}`, 1 + Math.floor(i / 3)));
  for (const n of first.nodes) n.driver.submit(before);
  const keysBefore = before.map((q) => `${q.client}#${q.seq}`);
  await until('every request is acknowledged by every replica', () => first.nodes.every((n) => keysBefore.every((k) => n.acked.has(k))));
  const executed = first.nodes.map((n) => [...n.machine.executed]);
  assert.ok(first.nodes.every((n) => n.driver.status.stableCheckpoint > 0), 'checkpoints became stable (the journal was truncated)');
  first.kill();
  s = await reopen(s);
  const second = cluster(s);
  // Recovery runs at start: the machine is back before anything new arrives.
  second.nodes.forEach((n, i) => assert.deepEqual(n.machine.executed, executed[i], `replica ${i}'s machine after recovery`));
  assert.ok(second.nodes.every((n) => !n.driver.status.recovering && (n.driver.status.journal?.recoveredEntries ?? 0) > 0));
  const after = Array.from({ length: 12 }, (_, i) => req('c9', i + 1));
  for (const n of second.nodes) n.driver.submit(after);
  await until('the new requests are decided everywhere', () => second.nodes.every((n) => after.every((q) => n.acked.has(`${q.client}#${q.seq}`))));
  const orders = second.nodes.map((n) => n.machine.executed.join(' '));
  assert.ok(orders.every((o) => o === orders[0]), 'the same order everywhere');
  assert.equal(second.nodes[0]!.machine.executed.length, before.length + after.length, 'each request once');
  second.kill();
}

test('a cluster of drivers killed whole and started again from in-memory journals has everything it executed, and decides on', async () => {
  await wholeClusterRestart(
    () => Array.from({ length: N }, () => new MemoryJournalStore()),
    async (s) => {
      for (const m of s as MemoryJournalStore[]) m.crash();
      return s;
    },
  );
});

test('the same with the LMDB journal on disk, each store closed and opened again', async () => {
  const d = mkdtempSync(join(tmpdir(), 'fit-driver-journal-'));
  try {
    await wholeClusterRestart(
      () => Array.from({ length: N }, (_, i) => new LmdbJournalStore(join(d, `replica-${i}`, 'consensus'))),
      async (s) => {
        await Promise.all((s as LmdbJournalStore[]).map((x) => x.close()));
        return Array.from({ length: N }, (_, i) => new LmdbJournalStore(join(d, `replica-${i}`, 'consensus')));
      },
    );
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
