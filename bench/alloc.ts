// Where a script allocates, by function: V8's sampling heap profiler with the objects that
// scavenges and mark-compacts collected kept in the samples (node --heap-prof reports only
// what is still alive at exit, which for a hot path is nearly nothing). Bytes by allocating
// function, largest first.
//
//   node dist/bench/alloc.js dist/bench/replica-path.js --per-section 12 --rounds 1000

import { Session } from 'node:inspector/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const [script, ...args] = process.argv.slice(2);
if (!script) {
  console.error('usage: node dist/bench/alloc.js SCRIPT [ARGS...], e.g. dist/bench/replica-path.js --per-section 12');
  process.exit(2);
}

const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
// Every ~1 KiB allocated is a sample: fine enough for per-event objects of ~100 bytes.
await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
// The script reads its own arguments from process.argv, as if it had been started alone.
process.argv = [process.argv[0]!, resolve(script), ...args];
await import(pathToFileURL(resolve(script)).href);
const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: ProfileNode } };

const bytes = new Map<string, number>();
let total = 0;
const walk = (n: ProfileNode): void => {
  const f = n.callFrame;
  const where = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
  if (n.selfSize > 0) {
    bytes.set(where, (bytes.get(where) ?? 0) + n.selfSize);
    total += n.selfSize;
  }
  for (const c of n.children) walk(c);
};
walk(profile.head);
console.log(`allocated (sampled): ${(total / 1e6).toFixed(0)} MB`);
for (const [where, b] of [...bytes].sort((x, y) => y[1] - x[1]).slice(0, 20)) {
  console.log(`${((100 * b) / total).toFixed(1).padStart(5)} %  ${(b / 1e6).toFixed(0).padStart(6)} MB  ${where}`);
}
