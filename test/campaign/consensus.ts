// A long seeded campaign of the ordering protocol under the simulator: `npm run
// campaign:consensus -- --seeds 100000`. The unit suite runs a few thousand schedules; this
// runs as many as asked on every core, and prints each failing seed with the command that
// replays it alone. Exit status 1 when any seed fails.

import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Command, InvalidArgumentError } from 'commander';
import { scenario, simulate, undecided } from '../helpers/consensus-sim.js';

interface Slice {
  from: number;
  to: number;
}

interface Failure {
  seed: number;
  error: string;
}

type Report = { done: number } | { failure: Failure };

function runSlice({ from, to }: Slice): void {
  for (let seed = from; seed < to; seed++) {
    const o = scenario(seed);
    try {
      const problems = undecided(simulate(o));
      if (problems.length > 0) throw new Error(`liveness: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ''}`);
    } catch (e) {
      parentPort!.postMessage({ failure: { seed, error: `${(e as Error).message}\n    schedule: ${JSON.stringify(o)}` } } satisfies Report);
    }
    if ((seed - from) % 100 === 99 || seed === to - 1) parentPort!.postMessage({ done: ((seed - from) % 100) + 1 } satisfies Report);
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
    .parse()
    .opts<{ seeds: number; from: number; workers: number }>();
  const started = Date.now();
  const per = Math.ceil(opts.seeds / opts.workers);
  const failures: Failure[] = [];
  let done = 0;
  const end = opts.from + opts.seeds;
  await Promise.all(
    Array.from({ length: opts.workers }, (_, i) => {
      const slice: Slice = { from: opts.from + i * per, to: Math.min(end, opts.from + (i + 1) * per) };
      if (slice.from >= slice.to) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const w = new Worker(new URL(import.meta.url), { workerData: slice });
        w.on('message', (r: Report) => {
          if ('failure' in r) {
            failures.push(r.failure);
            process.stdout.write(`\nseed ${r.failure.seed} FAILED: ${r.failure.error}\n`);
          } else {
            done += r.done;
            process.stdout.write(`\r${done}/${opts.seeds} schedules, ${failures.length} failed, ${((Date.now() - started) / 1000).toFixed(0)} s`);
          }
        });
        w.on('error', reject);
        w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker for seeds ${slice.from}..${slice.to - 1} exited with ${code}`))));
      });
    }),
  );
  process.stdout.write(`\n${opts.seeds} schedules from seed ${opts.from} in ${((Date.now() - started) / 1000).toFixed(0)} s: ${failures.length} failed\n`);
  for (const f of failures.sort((a, b) => a.seed - b.seed)) {
    process.stdout.write(`  replay seed ${f.seed}: npm run build && CONSENSUS_FIRST_SEED=${f.seed} CONSENSUS_SEEDS=1 node --test --test-name-pattern=campaign dist/test/unit/consensus-sim.test.js\n`);
  }
  process.exitCode = failures.length > 0 ? 1 : 0;
}

if (isMainThread) await main();
else runSlice(workerData as Slice);
