// A long seeded campaign of the ordering protocol under the simulator: `npm run
// campaign:consensus -- --seeds 100000`. The unit suite runs a few thousand schedules; this
// runs as many as asked on every core, and prints each failing seed with the command that
// replays it alone. A share of the schedules (JOURNAL_SHARE) keep journals and restart
// replicas from them: one, several, or the whole cluster at once (`--no-journals` leaves
// them out: the schedules of the campaigns before journals). Exit status 1 when any seed fails.

import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Command, InvalidArgumentError } from 'commander';
import { JOURNAL_SHARE, scenario, simulate, undecided } from '../helpers/consensus-sim.js';

interface Slice {
  from: number;
  to: number;
  journals: boolean;
}

interface Failure {
  seed: number;
  error: string;
}

type Report = { done: number; journaled: number } | { failure: Failure };

function runSlice({ from, to, journals }: Slice): void {
  let journaled = 0;
  for (let seed = from; seed < to; seed++) {
    const o = scenario(seed, journals);
    if (o.journal) journaled++;
    try {
      const problems = undecided(simulate(o));
      if (problems.length > 0) throw new Error(`liveness: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ''}`);
    } catch (e) {
      parentPort!.postMessage({ failure: { seed, error: `${(e as Error).message}\n    schedule: ${JSON.stringify(o)}` } } satisfies Report);
    }
    if ((seed - from) % 100 === 99 || seed === to - 1) {
      parentPort!.postMessage({ done: ((seed - from) % 100) + 1, journaled } satisfies Report);
      journaled = 0;
    }
  }
}

const count = (v: string): number => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1) throw new InvalidArgumentError(`expected a positive whole number, got "${v}"`);
  return x;
};

async function main(): Promise<void> {
  const opts = new Command('campaign:consensus')
    .description('run seeded random schedules of the ordering protocol under the deterministic simulator')
    .option('--seeds <n>', 'how many schedules', count, 100_000)
    .option('--from <seed>', 'the first seed', count, 1)
    .option('--workers <n>', 'worker threads', count, availableParallelism())
    .option('--no-journals', `leave out journal restarts (otherwise ${Math.round(JOURNAL_SHARE * 100)}% of the schedules have them)`)
    .parse()
    .opts<{ seeds: number; from: number; workers: number; journals: boolean }>();
  const started = Date.now();
  const per = Math.ceil(opts.seeds / opts.workers);
  const failures: Failure[] = [];
  let done = 0;
  let journaled = 0;
  const end = opts.from + opts.seeds;
  await Promise.all(
    Array.from({ length: opts.workers }, (_, i) => {
      const slice: Slice = { from: opts.from + i * per, to: Math.min(end, opts.from + (i + 1) * per), journals: opts.journals };
      if (slice.from >= slice.to) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const w = new Worker(new URL(import.meta.url), { workerData: slice });
        w.on('message', (r: Report) => {
          if ('failure' in r) {
            failures.push(r.failure);
            process.stdout.write(`\nseed ${r.failure.seed} FAILED: ${r.failure.error}\n`);
          } else {
            done += r.done;
            journaled += r.journaled;
            process.stdout.write(`\r${done}/${opts.seeds} schedules (${journaled} with journal restarts), ${failures.length} failed, ${((Date.now() - started) / 1000).toFixed(0)} s`);
          }
        });
        w.on('error', reject);
        w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker for seeds ${slice.from}..${slice.to - 1} exited with ${code}`))));
      });
    }),
  );
  process.stdout.write(`\n${opts.seeds} schedules from seed ${opts.from} (${journaled} with journal restarts) in ${((Date.now() - started) / 1000).toFixed(0)} s: ${failures.length} failed\n`);
  const env = opts.journals ? 'CONSENSUS_JOURNALS=1 ' : '';
  for (const f of failures.sort((a, b) => a.seed - b.seed)) {
    process.stdout.write(`  replay seed ${f.seed}: npm run build && ${env}CONSENSUS_FIRST_SEED=${f.seed} CONSENSUS_SEEDS=1 node --test --test-name-pattern='a campaign of [0-9]+ seeded schedules:' dist/test/unit/consensus-sim.test.js\n`);
  }
  process.exitCode = failures.length > 0 ? 1 : 0;
}

if (isMainThread) await main();
else runSlice(workerData as Slice);
