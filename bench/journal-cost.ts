// What the consensus journal costs on the ordered-channel path (docs/consensus.md, "Restart
// from the journal"): four real ConsensusDrivers in one process (Ed25519, the wire schema,
// default limits) wired by setImmediate, each with an LmdbJournalStore on this machine's disk,
// ordering events shaped as a replica submits them (client ev/CHANNEL/PROCESS, the record in
// base64). Publishers keep a window of events in flight and send more as 2f+1 replicas report
// them durable, as a publisher waits for 2f+1 acknowledgements. The same run without journals
// gives the ratio.
//
//   node dist/bench/journal-cost.js [--seconds 20] [--record-bytes 200] [--publishers 4] [--window 2048] [--dir /tmp/x]
//
// Prints flushes/s, bytes per instance and per event by entry kind, the journal's size at the
// end, and how long a replica takes to recover from it; writes bench/results/*-journal.json.

import { parseArgs } from 'node:util';
import { generateKeyPairSync, randomBytes, createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { limitsWith } from '../src/core/index.js';
import { ConsensusDriver, LmdbJournalStore, type ConsensusMessage, type Decision, type Req, type StateMachine } from '../src/consensus/index.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    'record-bytes': { type: 'string', default: '200' },
    publishers: { type: 'string', default: '4' },
    window: { type: 'string', default: '2048' },
    dir: { type: 'string' },
    'no-save': { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const RECORD_BYTES = Number(values['record-bytes']);
const PUBLISHERS = Number(values.publishers);
const WINDOW = Number(values.window);
const N = 4;
const limits = limitsWith({});
const keys = Array.from({ length: N }, () => generateKeyPairSync('ed25519'));
const publicKeys = keys.map((k) => k.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'));

/** The application: counts events, snapshot of the count (what a replica's is: numbering and the control table, small). */
class CountingMachine implements StateMachine {
  events = 0;
  execute(d: Decision): void {
    this.events += d.requests.length;
  }
  snapshot(): string {
    return JSON.stringify({ events: this.events });
  }
  restore(_seq: number, snapshot: string): void {
    this.events = (JSON.parse(snapshot) as { events: number }).events;
  }
}

interface RunResult {
  journal: boolean;
  seconds: number;
  events: number;
  eventsPerSecond: number;
  instances: number;
  perReplica?: { flushesPerSecond: number; entriesPerInstance: number; bytesPerInstance: number; bytesPerEvent: number; bytesByKind: Record<string, number>; keysAtEnd: number; diskBytesAtEnd: number }[];
  recovery?: { entries: number; ms: number };
}

function diskBytes(path: string): number {
  let total = 0;
  for (const f of readdirSync(path)) total += statSync(join(path, f)).size;
  return total;
}

async function run(journal: boolean, dir: string): Promise<RunResult> {
  const stores = journal ? Array.from({ length: N }, (_, i) => new LmdbJournalStore(join(dir, `replica-${i}`, 'consensus'))) : [];
  const machines = Array.from({ length: N }, () => new CountingMachine());
  const acks = new Map<string, number>();
  const inFlight = new Array<number>(PUBLISHERS).fill(0);
  const nextSeq = new Array<number>(PUBLISHERS).fill(1);
  const clients = Array.from({ length: PUBLISHERS }, (_, p) => `ev/ch${p % 8}/${createHash('sha256').update(`process ${p}`).digest('hex').slice(0, 32)}`);
  const record = randomBytes(RECORD_BYTES).toString('base64');
  let acknowledged = 0;
  let alive = true;
  const drivers: ConsensusDriver[] = [];
  const publish = (p: number): void => {
    const batch: Req[] = [];
    while (inFlight[p]! < WINDOW) {
      batch.push({ client: clients[p]!, seq: nextSeq[p]!++, payload: record });
      inFlight[p]!++;
    }
    if (batch.length > 0) for (const d of drivers) d.submit(batch);
  };
  for (let id = 0; id < N; id++) {
    drivers.push(
      new ConsensusDriver({
        id,
        n: N,
        f: 1,
        limits,
        restarted: false,
        privateKey: keys[id]!.privateKey,
        publicKeys,
        machine: machines[id]!,
        ...(journal ? { journal: stores[id]! } : {}),
        durable: ({ decided }) => {
          for (const d of decided) {
            for (const q of d.requests) {
              const k = `${q.client}#${q.seq}`;
              const c = (acks.get(k) ?? 0) + 1;
              if (c < 2 * 1 + 1) acks.set(k, c);
              else if (c === 3) {
                acks.delete(k);
                acknowledged++;
                const p = clients.indexOf(q.client);
                inFlight[p]!--;
              }
            }
          }
          if (alive) for (let p = 0; p < PUBLISHERS; p++) if (inFlight[p]! < WINDOW / 2) publish(p);
        },
        send: (to: number | 'all', msg: ConsensusMessage) => {
          const wire = JSON.stringify(msg);
          for (let t = 0; t < N; t++) {
            if (t === id || (to !== 'all' && to !== t)) continue;
            setImmediate(() => alive && drivers[t]!.receive(id, JSON.parse(wire)));
          }
        },
      }),
    );
  }
  for (const d of drivers) d.start();
  for (let p = 0; p < PUBLISHERS; p++) publish(p);
  // Warm-up, then the measured interval.
  await new Promise((r) => setTimeout(r, 2000));
  const start = { t: performance.now(), events: acknowledged, instances: drivers[0]!.status.lastDecided, flushes: drivers.map((d) => d.status.journal?.flushes ?? 0), entries: drivers.map((d) => d.status.journal?.entriesAppended ?? 0), stats: stores.map((s) => ({ ...s.stats, bytesByType: { ...s.stats.bytesByType } })) };
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const seconds = (performance.now() - start.t) / 1000;
  const events = acknowledged - start.events;
  const instances = drivers[0]!.status.lastDecided - start.instances;
  alive = false;
  for (const d of drivers) d.stop();
  const result: RunResult = { journal, seconds, events, eventsPerSecond: events / seconds, instances };
  if (journal) {
    await Promise.all(drivers.map((d) => d.settled()));
    result.perReplica = drivers.map((d, i) => {
      const s = stores[i]!.stats;
      const bytes = s.bytes - start.stats[i]!.bytes;
      const byKind: Record<string, number> = {};
      for (const [k, v] of Object.entries(s.bytesByType)) byKind[k] = Math.round((v - (start.stats[i]!.bytesByType[k] ?? 0)) / Math.max(1, instances));
      return {
        flushesPerSecond: ((d.status.journal?.flushes ?? 0) - start.flushes[i]!) / seconds,
        entriesPerInstance: ((d.status.journal?.entriesAppended ?? 0) - start.entries[i]!) / Math.max(1, instances),
        bytesPerInstance: bytes / Math.max(1, instances),
        bytesPerEvent: bytes / Math.max(1, events),
        bytesByKind: byKind,
        keysAtEnd: stores[i]!.size,
        diskBytesAtEnd: diskBytes(join(dir, `replica-${i}`, 'consensus')),
      };
    });
    await Promise.all(stores.map((s) => s.close()));
    // Recovery of one replica from its journal: load, restore, execute the batches above the snapshot.
    const t = performance.now();
    const store = new LmdbJournalStore(join(dir, 'replica-1', 'consensus'));
    const d = new ConsensusDriver({ id: 1, n: N, f: 1, limits, restarted: true, privateKey: keys[1]!.privateKey, publicKeys, machine: new CountingMachine(), journal: store, send: () => undefined });
    const entries = d.status.journal?.recoveredEntries ?? 0;
    result.recovery = { entries, ms: performance.now() - t };
    await store.close();
  }
  return result;
}

const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'fit-journal-bench-'));
mkdirSync(dir, { recursive: true });
try {
  const without = await run(false, join(dir, 'none'));
  const withJournal = await run(true, join(dir, 'journal'));
  const out = { bench: 'journal-cost', machine: machine(), dir, recordBytes: RECORD_BYTES, publishers: PUBLISHERS, window: WINDOW, limits: { batchMax: limits.consensusBatchMax, checkpointInterval: limits.consensusCheckpointInterval, logWindow: limits.consensusLogWindow, retainDecided: limits.consensusRetainDecided, tickMs: limits.consensusTickMs }, without, withJournal };
  const r = withJournal.perReplica!;
  const avg = (f: (x: (typeof r)[number]) => number): number => r.reduce((a, x) => a + f(x), 0) / r.length;
  process.stdout.write(
    [
      `events/s: ${without.eventsPerSecond.toFixed(0)} without journals, ${withJournal.eventsPerSecond.toFixed(0)} with (${((withJournal.eventsPerSecond / without.eventsPerSecond) * 100).toFixed(0)} %)`,
      `events per instance: ${(withJournal.events / Math.max(1, withJournal.instances)).toFixed(0)}`,
      `flushes/s per replica: ${avg((x) => x.flushesPerSecond).toFixed(0)}`,
      `journal entries per instance: ${avg((x) => x.entriesPerInstance).toFixed(1)}`,
      `bytes written per instance: ${avg((x) => x.bytesPerInstance).toFixed(0)} (${avg((x) => x.bytesPerEvent).toFixed(0)} per event; record ${RECORD_BYTES} bytes)`,
      `  by kind (replica 1): ${JSON.stringify(r[1]!.bytesByKind)}`,
      `journal at the end: ${avg((x) => x.keysAtEnd).toFixed(0)} keys, ${(avg((x) => x.diskBytesAtEnd) / 2 ** 20).toFixed(1)} MiB on disk per replica`,
      `recovery of one replica: ${withJournal.recovery!.entries} entries in ${withJournal.recovery!.ms.toFixed(0)} ms`,
    ].join('\n') + '\n',
  );
  if (!values['no-save']) {
    const results = new URL('../../bench/results/', import.meta.url).pathname;
    const file = join(results, `${new Date().toISOString().slice(0, 19).replace(/[T:]/g, '-')}-${out.machine.commit.slice(0, 8)}-journal.json`);
    writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    process.stdout.write(`wrote ${file}\n`);
  }
} finally {
  if (!values.dir) rmSync(dir, { recursive: true, force: true });
}
