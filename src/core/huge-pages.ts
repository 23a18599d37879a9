// The environment fitbroker starts its processes in: glibc's malloc asking the kernel for
// transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1). A replica or subscriber at
// saturation grows into a few hundred MiB of record buffers, and each 4 KiB page it touches
// first is a page fault; on the paravirtualized VMs we measure on, faults were ~20 % of all
// CPU, and with malloc's memory in 2 MiB pages they halve and every process gets 20–25 %
// more done (docs/performance.md, "Session 22: huge pages for malloc"). glibc reads the
// variable when a process starts, so it goes into the environment of the processes we spawn
// (`fitbroker up`, the test cluster, the bench, for our processes and the peers' alike);
// an operator starting `fitbroker replica` some other way sets it there
// (docs/operations.md). Without transparent huge pages in `madvise` or `always` mode it
// changes nothing.

import { readFileSync } from 'node:fs';

export const HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb=1';

/** Set to `0` to start processes without the tunable (say, to measure what it buys). */
export const HUGE_PAGES_OPT_OUT = 'FITBROKER_HUGE_PAGES';

/**
 * `env` with malloc's huge-page tunable added to GLIBC_TUNABLES, keeping every tunable already
 * there; unchanged when the operator set glibc.malloc.hugetlb themselves or opted out.
 */
export function withHugePages(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env[HUGE_PAGES_OPT_OUT] === '0') return env;
  const tunables = env.GLIBC_TUNABLES ?? '';
  if (tunables.includes('glibc.malloc.hugetlb=')) return env;
  return { ...env, GLIBC_TUNABLES: tunables === '' ? HUGE_PAGES_TUNABLE : `${tunables}:${HUGE_PAGES_TUNABLE}` };
}

export interface HugePagesState {
  /** What this process's malloc was started with: glibc.malloc.hugetlb's value, or 'unset'. */
  malloc: string;
  /** The kernel's transparent huge page mode ('always', 'madvise', 'never'), or 'unknown' (not Linux, or not readable). */
  kernel: string;
  /** True when malloc's memory can come in huge pages. */
  effective: boolean;
}

/** Whether this process's malloc uses transparent huge pages, for the startup log and status. */
export function hugePagesState(env: NodeJS.ProcessEnv = process.env, thpFile = '/sys/kernel/mm/transparent_hugepage/enabled'): HugePagesState {
  const malloc = /glibc\.malloc\.hugetlb=(\d+)/.exec(env.GLIBC_TUNABLES ?? '')?.[1] ?? 'unset';
  let kernel = 'unknown';
  try {
    kernel = /\[(\w+)\]/.exec(readFileSync(thpFile, 'utf8'))?.[1] ?? 'unknown';
  } catch {
    // Not Linux, or a container that hides /sys: said as unknown.
  }
  // hugetlb=1 asks by madvise, which both modes honour. 'always' alone, without the
  // tunable, measured no fewer faults here: malloc's heap grows a little at a time, and
  // the kernel does not back such growth with huge pages at fault time.
  const effective = malloc === '1' && (kernel === 'madvise' || kernel === 'always');
  return { malloc, kernel, effective };
}
