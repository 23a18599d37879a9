// persist: disk (docs/persistence.md): replicas killed with SIGKILL, one at a time and then all
// at once, while a publisher's events are acknowledged; every acknowledged event reaches every
// subscriber exactly once — one subscriber connected throughout, one that connects only after
// the last restart and is served from the replicas' disks — and, on the ordered channel, in
// order: seqs 1, 2, 3... with no gap and no repeat, though every replica restarted from its
// consensus journal and its store.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { clientKeyPath, replicaDataDir } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { queryStatus } from '../../src/client/index.js';
import type { BrokerEvent } from '../../src/core/index.js';
import { sleep, startCluster, type TestCluster } from '../helpers/cluster.js';

const UNORDERED = ['alerts', 'audit'];
/** order: channel, persist: disk: its log and the consensus state come back from disk. */
const ORDERED = 'trail';
const CHANNELS = [...UNORDERED, ORDERED];
const EVENTS = Number(process.env.FIT_PERSIST_EVENTS ?? 50_000);
const ROUND = 2_500;

/** Delivered events per subscriber (by channel and the number the test gave each), with how often each came, and the ordered channel's seqs as delivered. */
function tally(): { seen: Map<string, number>; seqs: number[]; onEvent(ev: BrokerEvent): void } {
  const seen = new Map<string, number>();
  const seqs: number[] = [];
  return {
    seen,
    seqs,
    onEvent: (ev) => {
      const key = `${ev.channel}/${(JSON.parse(ev.content.toString()) as { n: number }).n}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (ev.channel === ORDERED) seqs.push(ev.seq!);
    },
  };
}

interface DiskStat {
  /** Unordered channels: the next index and the sections held; ordered: the events held. */
  nextIdx?: number;
  sections?: number;
  events?: number;
  restored: number;
}

async function diskStats(c: TestCluster, id: number): Promise<Record<string, DiskStat>> {
  const all = await queryStatus(c.config, 'admin', loadPrivateKey(clientKeyPath(c.dir, 'admin')), 5_000);
  const s = all[id]!;
  assert.ok(s.reachable && s.status, `replica ${id} did not answer status: ${s.error}`);
  const channels = s.status.channels as { tag: string; disk?: DiskStat; logDisk?: DiskStat }[];
  return Object.fromEntries(channels.map((ch) => [ch.tag, (ch.disk ?? ch.logDisk)!]));
}

describe('persist: disk, replicas killed and restarted', { timeout: 600_000 }, () => {
  it(`delivers every acknowledged event exactly once after SIGKILLs one at a time and all at once (${EVENTS} events)`, async (t) => {
    const c = await startCluster({ channels: CHANNELS, ordered: [ORDERED], persist: 'disk', protection: 'si', clients: [{ name: 'late', role: 'sub' }] });
    try {
      const live = tally();
      const sub = c.subscriber('console', { channels: CHANNELS, onEvent: live.onEvent });
      await sub.start();
      const pub = c.publisher('probe');
      const acked: string[] = [];
      let published = 0;
      /** Publishes one round and waits until its events are acknowledged (2f+1 replicas wrote them). */
      const round = async (): Promise<void> => {
        const ids: string[] = [];
        for (let i = 0; i < ROUND && published < EVENTS; i++) {
          const channel = CHANNELS[published % CHANNELS.length]!;
          published++;
          ids.push(`${channel}/${published}`);
          if (!pub.publish(channel, JSON.stringify({ n: published, pad: 'x'.repeat(150) }))) await pub.drained(60_000);
        }
        await pub.flush(60_000);
        acked.push(...ids);
      };
      const rounds = Math.ceil(EVENTS / ROUND);
      // One replica at a time: killed in the middle of a round, restarted before the next.
      for (let r = 0; r < Math.max(1, rounds - 2); r++) {
        const victim = r % 4;
        const publishing = round();
        if (r < 8) {
          await sleep(50 + ((r * 37) % 150));
          await c.kill(victim);
          await sleep(200);
          await c.start(victim);
        }
        await publishing;
      }
      // The whole cluster at once, with events queued for the late subscriber on every disk.
      const before = await diskStats(c, 0);
      await Promise.all([0, 1, 2, 3].map((id) => c.kill(id)));
      await Promise.all([0, 1, 2, 3].map((id) => c.start(id)));
      const after = await diskStats(c, 0);
      // Recovery is logged before a replica listens, which may be after start() returned.
      for (let i = 0; i < 200 && [0, 1, 2, 3].some((id) => !/recovered the consensus state from the journal/.test(c.log(id))); i++) await sleep(100);
      for (const id of [0, 1, 2, 3]) assert.match(c.log(id), /recovered the consensus state from the journal/, `replica ${id} did not recover from its consensus journal`);
      for (const ch of CHANNELS) assert.ok(after[ch]!.restored > 0, `replica 0 read nothing of ${ch} back from disk (it held ${JSON.stringify(before[ch])})`);
      for (const ch of UNORDERED) assert.ok(after[ch]!.nextIdx! >= before[ch]!.nextIdx!, `replica 0 numbers ${ch} from ${after[ch]!.nextIdx} after the restart, ${before[ch]!.nextIdx} before`);
      while (published < EVENTS) await round();
      t.diagnostic(`published and acknowledged ${acked.length} events over ${rounds} rounds`);

      const late = tally();
      const lateSub = c.subscriber('late', { channels: CHANNELS, onEvent: late.onEvent });
      await lateSub.start();
      const until = Date.now() + 120_000;
      while ((live.seen.size < acked.length || late.seen.size < acked.length) && Date.now() < until) await sleep(100);
      await sleep(500);
      const perChannel = (got: Map<string, number>): string => CHANNELS.map((ch) => `${ch} ${[...got.keys()].filter((k) => k.startsWith(`${ch}/`)).length}`).join(', ');
      t.diagnostic(`delivered: console ${perChannel(live.seen)}; late ${perChannel(late.seen)}; summary ${JSON.stringify(sub.summary())}`);
      for (const [name, got] of [['console (connected throughout)', live.seen], ['late (connected after the restarts)', late.seen]] as const) {
        const missing = acked.filter((id) => !got.has(id));
        assert.equal(missing.length, 0, `${name} is missing ${missing.length} acknowledged events, e.g. ${missing.slice(0, 3).join(', ')}`);
        const twice = [...got].filter(([, n]) => n > 1);
        assert.equal(twice.length, 0, `${name} delivered ${twice.length} events more than once, e.g. ${twice.slice(0, 3).map(([id, n]) => `${id} x${n}`).join(', ')}`);
      }
      for (const [name, seqs] of [['console', live.seqs], ['late', late.seqs]] as const) {
        const wrong = seqs.findIndex((s, i) => s !== i + 1);
        assert.equal(wrong, -1, `${name} delivered ${ORDERED} out of order: seq ${seqs[wrong]} at position ${wrong + 1} (around it: ${seqs.slice(Math.max(0, wrong - 3), wrong + 3).join(', ')})`);
      }
      // Every subscriber was served, so the replicas keep almost nothing on disk.
      await sleep(1_000);
      const end = await diskStats(c, 0);
      for (const ch of UNORDERED) assert.ok(end[ch]!.sections! <= 2, `replica 0 still holds ${end[ch]!.sections} sections of ${ch} that every subscriber was done with`);
    } finally {
      await c.stop();
    }
  });

  it('keeps the store and the consensus journal in the replica data directory', async () => {
    const c = await startCluster({ channels: ['alerts', 'audit'], ordered: ['audit'], persist: 'disk', protection: 'si' });
    try {
      const pub = c.publisher('probe');
      pub.publish('alerts', 'kept');
      pub.publish('audit', 'ordered and kept');
      await pub.flush();
      for (const dir of ['store', 'consensus']) assert.ok(existsSync(join(replicaDataDir(c.dir, 0), dir)), `no ${dir} in the replica data directory`);
    } finally {
      await c.stop();
    }
  });
});
