// Instructions per event of a replica's or a subscriber's own code, counted by callgrind:
// the same count run after run on the same code (V8 single-threaded and predictable), where
// timings on our shared 2-core machines move by ±20 %. Runs replica-path.js or
// subscriber-path.js under valgrind at two lengths and divides the difference by the events
// between them, so start-up, warm-up and (for the subscriber) building the frames cancel out.
//
//   node dist/bench/instructions.js [--path replica|subscriber] [--per-section N] [--ack-lag E]
//
// valgrind comes from Debian's packages (apt-get install valgrind); a run takes a minute or two.

import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({ options: { path: { type: 'string', default: 'replica' }, 'per-section': { type: 'string', default: '1' }, 'ack-lag': { type: 'string', default: '0' } } });
if (values.path !== 'replica' && values.path !== 'subscriber') {
  console.error(`--path must be replica or subscriber, got "${values.path}"`);
  process.exit(2);
}
const perSection = Number(values['per-section']);
if (!Number.isInteger(perSection) || perSection < 1) {
  console.error(`--per-section must be a positive integer, got "${values['per-section']}"`);
  process.exit(2);
}
const ackLag = Number(values['ack-lag']);
if (!Number.isInteger(ackLag) || ackLag < 0 || (ackLag > 0 && values.path !== 'replica')) {
  console.error(`--ack-lag must be a whole number of events, and only with --path replica; got "${values['ack-lag']}"`);
  process.exit(2);
}
if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('valgrind is not installed: apt-get install valgrind (Debian), then run this again');
  process.exit(2);
}

const script = fileURLToPath(new URL(`./${values.path}-path.js`, import.meta.url));
/** Events per round in both path scripts: 2 publishers x 50 channels x per-section, plus a tenth more to warm up. */
const EVENTS_PER_ROUND = 2 * 50 * perSection * 1.1;
const [SHORT, LONG] = values.path === 'replica' ? [500, 2000] : [200, 800];

function instructions(rounds: number, extra: string[] = []): number {
  const r = spawnSync(
    'valgrind',
    ['--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath, '--single-threaded', '--predictable', script, '--per-section', String(perSection), '--rounds', String(rounds), ...(ackLag > 0 ? ['--ack-lag', String(ackLag)] : []), ...extra],
    { encoding: 'utf8' },
  );
  const m = /Collected : ([\d,]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`callgrind run failed (exit ${r.status}):\n${r.stderr.slice(-2000)}`);
  return Number(m[1]!.replace(/,/g, ''));
}

let diff = instructions(LONG) - instructions(SHORT);
if (values.path === 'subscriber') diff -= instructions(LONG, ['--build-only']) - instructions(SHORT, ['--build-only']);
console.log(`${values.path} path, ${perSection} event(s) per section${ackLag > 0 ? `, ${ackLag} unacknowledged per stream` : ''}: ${Math.round(diff / ((LONG - SHORT) * EVENTS_PER_ROUND))} instructions per event (callgrind)`);
