// What this process's malloc gets: core/huge-pages.ts decides from the environment, the
// kernel's transparent huge page mode and glibc's version, which are read here (once: glibc
// took its tunables when the process started).

import { readFileSync } from 'node:fs';
import { hugePagesState, type HugePagesState } from '../core/index.js';

const THP_ENABLED = '/sys/kernel/mm/transparent_hugepage/enabled';

export function readHugePagesState(env: NodeJS.ProcessEnv = process.env): HugePagesState {
  let thp: string | undefined;
  try {
    thp = readFileSync(THP_ENABLED, 'utf8');
  } catch {
    // Not Linux, or a container that hides /sys: the mode is said as unknown.
  }
  // The report's header names the C library only when it is glibc.
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
  return hugePagesState(env, thp, header?.glibcVersionRuntime);
}
