// The consensus journal's stores (src/consensus/journal.ts, journal-store.ts): the same
// entries give the same stored state in memory (the simulator's) and in LMDB (the replica's);
// what was durable comes back after the process is gone, truncation is a range deletion, and
// a damaged value is refused with where it is, never half-recovered.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { FitError } from '../../src/core/index.js';
import { LmdbJournalStore, MemoryJournalStore, refOf, type JournalEntry, type JournalStore, type Req, type StoredEntry } from '../../src/consensus/index.js';
import { rng } from '../helpers/consensus-sim.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'fit-journal-'));
const req = (seq: number, client = 'ev/ch/p'): Req => ({ client, seq, payload: `body ${seq}` });
const meta: JournalEntry = { type: 'meta', id: 1, n: 4, f: 1, passiveView: -1, passiveSeq: 0, startedOver: false };
const decided = (seq: number): JournalEntry => ({ type: 'decided', seq, view: 0, batch: [req(seq)] });
const pp = (seq: number, view: number): JournalEntry => ({ type: 'pre-prepare', pp: { type: 'pre-prepare', view, seq, digest: `d${seq}`, batch: [], from: view % 4, sig: 's' }, prepare: true });
const prepared = (seq: number, view: number): JournalEntry => ({ type: 'prepared', view, seq, prepares: [] });
const summary = (entries: StoredEntry[]): string[] =>
  entries.map((e) => {
    switch (e.type) {
      case 'decided':
        return `d${e.seq}`;
      case 'pre-prepare':
        return `p${e.pp.seq}/${e.pp.view}`;
      case 'prepared':
        return `c${e.seq}/${e.view}`;
      case 'hold':
        return `h${e.id}:${e.reqs.map((q) => q.seq).join(',')}`;
      case 'letgo':
        return `x${e.id}:${e.ref.seq}`;
      default:
        return e.type;
    }
  });

/** Random journal traffic: what a replica writes, deletes and truncates, in the order it would. */
function traffic(seed: number, count: number): JournalEntry[][] {
  const r = rng(seed);
  const out: JournalEntry[][] = [[meta]];
  for (let i = 1; i <= count; i++) {
    const view = Math.floor(i / 20);
    const batch: JournalEntry[] = [pp(i, view), prepared(i, view), decided(i), { type: 'hold', id: i + 1, reqs: [req(i + 1)] }, { type: 'unhold', id: i }];
    if (r() < 0.1) batch.push({ type: 'letgo', id: i + 1, ref: refOf(req(i + 1)) });
    if (r() < 0.1) batch.push({ type: 'drop', seq: i, view });
    if (r() < 0.1) batch.push({ type: 'view', view: view + 1, newView: null });
    if (r() < 0.1) batch.push({ type: 'leave', target: view + 2, viewChange: null });
    if (i % 8 === 0) batch.push({ type: 'stable', stable: { seq: i, state: 's', snapshot: 'x', proof: [] } }, { type: 'truncate', slotsThrough: i, decidedThrough: i - 10 });
    out.push(batch);
  }
  return out;
}

async function write(store: JournalStore, batches: JournalEntry[][]): Promise<void> {
  for (const b of batches) store.append(b);
  await store.durable();
}

test('the memory store and the LMDB store hold the same entries, in the same order, for the same appends (one key layout, journalOps)', async () => {
  const d = dir();
  try {
    for (const seed of [1, 2, 3]) {
      const batches = traffic(seed, 120);
      const mem = new MemoryJournalStore();
      await write(mem, batches);
      const disk = new LmdbJournalStore(join(d, `s${seed}`));
      await write(disk, batches);
      assert.deepEqual(summary(disk.load()), summary(mem.load()));
      assert.deepEqual(disk.load(), mem.load());
      await disk.close();
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('what was durable is read back after the store is closed and opened again', async () => {
  const d = dir();
  try {
    const a = new LmdbJournalStore(join(d, 'consensus'));
    a.append([meta, decided(1), { type: 'hold', id: 1, reqs: [req(2), req(3)] }]);
    a.append([decided(2), { type: 'snapshot', seq: 0, state: 'g', body: '{"v":1}' }]);
    await a.durable();
    await a.close();
    const b = new LmdbJournalStore(join(d, 'consensus'));
    assert.deepEqual(summary(b.load()), ['d1', 'd2', 'h1:2,3', 'meta', 'snapshot']);
    await b.close();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('truncation at a stable checkpoint deletes ranges: log slots up to it, batches up to the retained ones; a hold group goes when decided; entering a view ends a view change', async () => {
  const d = dir();
  try {
    const s = new LmdbJournalStore(join(d, 'consensus'));
    const entries: JournalEntry[] = [meta];
    for (let i = 1; i <= 12; i++) entries.push(pp(i, 0), prepared(i, 0), pp(i, 1), decided(i));
    entries.push({ type: 'hold', id: 1, reqs: [req(20)] }, { type: 'hold', id: 2, reqs: [{ ...req(20), payload: 'another body, same seq' }, req(21)] });
    entries.push({ type: 'leave', target: 3, viewChange: null });
    // Bodies let go: one of each group; a client's name longer than an LMDB key may be.
    entries.push({ type: 'letgo', id: 1, ref: refOf(req(20)) }, { type: 'letgo', id: 2, ref: refOf({ client: 'c'.repeat(1024), seq: 21, payload: 'p' }) });
    s.append(entries);
    s.append([
      { type: 'truncate', slotsThrough: 8, decidedThrough: 4 },
      { type: 'unhold', id: 1 },
      { type: 'drop', seq: 9, view: 0 },
      { type: 'view', view: 3, newView: null },
    ]);
    await s.durable();
    const kept = summary(s.load());
    assert.deepEqual(
      kept.filter((k) => k.startsWith('p') || k.startsWith('c')),
      ['c10/0', 'c11/0', 'c12/0', 'p9/1', 'p10/0', 'p10/1', 'p11/0', 'p11/1', 'p12/0', 'p12/1'],
    );
    assert.deepEqual(
      kept.filter((k) => k.startsWith('d')),
      ['d5', 'd6', 'd7', 'd8', 'd9', 'd10', 'd11', 'd12'],
    );
    assert.deepEqual(
      kept.filter((k) => k.startsWith('h') || k.startsWith('x')),
      ['h2:20,21', 'x2:21'],
      'what was let go of a group goes with it',
    );
    assert.ok(kept.includes('view') && !kept.includes('leave'), 'the view change ended when the view was entered');
    await s.close();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a damaged value (partial or altered) is refused with the key it is at, not half-recovered', async () => {
  const d = dir();
  try {
    const path = join(d, 'consensus');
    const s = new LmdbJournalStore(path);
    s.append([meta, decided(1), decided(2)]);
    await s.durable();
    await s.close();
    // Cut the stored value of the batch at seq 2 in half, as a torn sector would.
    const raw = open({ path, compression: false });
    const db = raw.openDB<Buffer, (string | number)[]>({ name: 'journal', encoding: 'binary' });
    const whole = Buffer.from(db.get(['d', 2])!);
    await db.put(['d', 2], whole.subarray(0, Math.floor(whole.length / 2)));
    await raw.close();
    const t = new LmdbJournalStore(path);
    assert.throws(
      () => t.load(),
      (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_JOURNAL' && e.fields.key === '["d",2]' && /checksum/.test(e.message),
    );
    await t.close();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a process killed (SIGKILL) while appending leaves every append it saw durable, and whole appends only: a torn last write is not seen', async () => {
  const d = dir();
  try {
    const path = join(d, 'consensus');
    const storeModule = new URL('../../src/consensus/journal-store.js', import.meta.url).href;
    // Each append k is a pair that must come back together: the batch at k and a body held under k.
    const child = `
      import { LmdbJournalStore } from ${JSON.stringify(storeModule)};
      const s = new LmdbJournalStore(${JSON.stringify(path)});
      const pad = 'x'.repeat(3000);
      for (let k = 1; ; k++) {
        s.append([{ type: 'decided', seq: k, view: 0, batch: [{ client: 'c', seq: k, payload: pad }] }, { type: 'hold', id: k, reqs: [{ client: 'c', seq: k, payload: pad + k }] }]);
        if (k % 7 === 0) { await s.durable(); process.stdout.write(k + '\\n'); }
      }`;
    const p = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'inherit'] });
    let durable = 0;
    let text = '';
    await new Promise<void>((resolve) => {
      p.stdout.on('data', (b: Buffer) => {
        text += b.toString();
        const lines = text.split('\n').filter((l) => l.length > 0);
        durable = Number(lines[lines.length - 1]);
        if (durable >= 300) p.kill('SIGKILL');
      });
      p.on('exit', () => resolve());
    });
    const s = new LmdbJournalStore(path);
    const entries = s.load();
    const batches = new Set(entries.filter((e) => e.type === 'decided').map((e) => (e.type === 'decided' ? e.seq : 0)));
    const holds = new Set(entries.filter((e) => e.type === 'hold').map((e) => (e.type === 'hold' ? e.id : 0)));
    const top = Math.max(...batches);
    assert.ok(top >= durable, `reported durable up to ${durable}, found up to ${top}`);
    for (let k = 1; k <= top; k++) {
      assert.ok(batches.has(k) && holds.has(k), `append ${k} came back ${batches.has(k) ? 'without its body' : holds.has(k) ? 'without its batch' : 'missing, below one that did'}`);
    }
    assert.equal(holds.size, batches.size, 'an append came back in part');
    await s.close();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
