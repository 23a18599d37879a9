// `npm run fuzz`: the long run of every parser's fuzz target (test/fuzz/targets.ts), 100,000
// cases each by default. Prints a line per parser (cases, cases/s, refusals by code, memory
// growth) and every failure with the command that replays it; exits 1 on any failure.
//
//   npm run fuzz -- [--cases N] [--seed S] [--parser NAME[,NAME]] [--case I]
//
// --case replays one case (as printed by a failure) and prints its input and outcome.

import { randomInt } from 'node:crypto';
import { TARGETS, targetNamed } from './targets.js';
import { caseInput, contractBreach, describeFailure, runFuzz, type FuzzResult } from '../helpers/fuzz.js';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function usage(why: string): never {
  process.stderr.write(`${why}\nusage: npm run fuzz -- [--cases N] [--seed S] [--parser ${TARGETS.map((t) => t.name).join('|')}] [--case I]\n`);
  process.exit(2);
}

const cases = Number(flag('cases') ?? 100_000);
const seed = flag('seed') !== undefined ? Number(flag('seed')) >>> 0 : randomInt(0, 2 ** 32);
const only = flag('parser');
const one = flag('case');
if (!Number.isInteger(cases) || cases < 1) usage('--cases needs a positive whole number');
const targets = only ? only.split(',').map((n) => (TARGETS.some((t) => t.name === n) ? targetNamed(n) : usage(`no parser "${n}"`))) : TARGETS;

if (one !== undefined) {
  const t = targets[0]!;
  const { rng, c } = caseInput(t, seed, Number(one));
  process.stdout.write(`${t.name} seed ${seed} case ${one} (${c.how}), ${c.input.length} bytes:\n${c.input.toString('hex')}\n`);
  try {
    t.run(c.input, rng);
    process.stdout.write('accepted\n');
  } catch (e) {
    const breach = contractBreach(t, e);
    process.stdout.write(breach ? `FAILED: ${breach}\n${(e as Error)?.stack ?? ''}\n` : `refused: ${(e as Error).message}\n`);
    process.exit(breach ? 1 : 0);
  }
  process.exit(0);
}

process.stdout.write(`fuzzing ${targets.length} parsers, ${cases} cases each, seed ${seed}\n`);
const results: FuzzResult[] = [];
for (const t of targets) {
  const r = runFuzz(t, seed, cases);
  results.push(r);
  const rate = Math.round(r.cases / (r.ms / 1000));
  const codes = Object.entries(r.byCode).map(([k, v]) => `${k.replace('FIT_ERR_', '')} ${v}`).join(', ');
  process.stdout.write(
    `${t.name.padEnd(10)} ${String(r.cases).padStart(8)} cases ${(r.ms / 1000).toFixed(1).padStart(6)} s ${String(rate).padStart(8)}/s  accepted ${r.accepted}, refused ${r.refused} (${codes || 'none'}), rss +${Math.round(r.rssGrowthBytes / 2 ** 20)} MiB, failures ${r.failures.length}\n`,
  );
  for (const f of r.failures) process.stdout.write(`${describeFailure(f)}\n`);
}
const failed = results.some((r) => r.failures.length > 0);
process.stdout.write(failed ? `FAILED (seed ${seed}); replay a case with the command printed above\n` : `all ${results.length} parsers held (seed ${seed})\n`);
process.exit(failed ? 1 : 0);
