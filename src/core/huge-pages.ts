// The environment fitbroker starts its processes in: glibc's malloc asking the kernel for
// transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1). A replica or subscriber at
// saturation grows into a few hundred MiB of record buffers, and each 4 KiB page it touches
// first is a page fault; on the paravirtualized VMs we measure on, faults were a fifth of all
// CPU, and with malloc's memory in 2 MiB pages the bench delivers more at saturation
// (docs/performance.md, "Session 22: huge pages for malloc"). glibc reads the variable when a
// process starts, so it goes into the environment of the processes we spawn (`fitbroker up`,
// the test cluster, the bench, for our processes and the peers' alike); an operator starting
// `fitbroker replica` some other way sets it there (docs/operations.md).
//
// Never changes process.env (callers pass the result to spawn), and never overrides a
// glibc.malloc.hugetlb value the operator chose. Pure: the kernel's mode and glibc's version
// come in as arguments (the replica reads them).

export const HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb=1';

/** Set to `0` to start processes without the tunable (say, to measure what it buys). */
export const HUGE_PAGES_OPT_OUT = 'FITBROKER_HUGE_PAGES';

const HUGETLB_ENTRY = /^glibc\.malloc\.hugetlb=/;

/**
 * `env` with malloc's huge-page tunable added to GLIBC_TUNABLES (a colon-separated list),
 * keeping every other tunable; unchanged when the operator set glibc.malloc.hugetlb
 * themselves. With FITBROKER_HUGE_PAGES=0, any hugetlb entry is taken out instead, so that an
 * opted-out child does not inherit one from this process's environment.
 */
export function withHugePages(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const entries = (env.GLIBC_TUNABLES ?? '').split(':').filter((t) => t !== '');
  if (env[HUGE_PAGES_OPT_OUT] === '0') {
    const kept = entries.filter((t) => !HUGETLB_ENTRY.test(t));
    if (kept.length === entries.length) return env;
    const out = { ...env };
    if (kept.length === 0) delete out.GLIBC_TUNABLES;
    else out.GLIBC_TUNABLES = kept.join(':');
    return out;
  }
  if (entries.some((t) => HUGETLB_ENTRY.test(t))) return env;
  return { ...env, GLIBC_TUNABLES: [...entries, HUGE_PAGES_TUNABLE].join(':') };
}

export interface HugePagesState {
  /** glibc.malloc.hugetlb as this process was started with it, or 'unset'. */
  malloc: string;
  /** The kernel's transparent huge page mode ('always', 'madvise', 'never'), or 'unknown'. */
  kernel: string;
  /** The C library's version ('2.36'), or 'unknown' (not glibc: musl, or not Linux). */
  glibc: string;
  /** True when malloc's memory comes in huge pages. */
  effective: boolean;
}

/** glibc's first release with glibc.malloc.hugetlb. */
const GLIBC_HUGETLB_SINCE = [2, 35];

/**
 * Whether malloc gets huge pages. `thpEnabled`: the text of
 * /sys/kernel/mm/transparent_hugepage/enabled (undefined when unreadable); `glibc`: glibc's
 * version at run time (process.report's glibcVersionRuntime; undefined when not glibc).
 */
export function hugePagesState(env: NodeJS.ProcessEnv, thpEnabled: string | undefined, glibc: string | undefined): HugePagesState {
  // glibc applies the last of repeated entries.
  const values = [...(env.GLIBC_TUNABLES ?? '').matchAll(/(?:^|:)glibc\.malloc\.hugetlb=([^:]*)/g)];
  const malloc = values.at(-1)?.[1] ?? 'unset';
  const kernel = (thpEnabled && /\[(\w+)\]/.exec(thpEnabled)?.[1]) || 'unknown';
  const [major = 0, minor = 0] = (glibc ?? '').split('.').map(Number);
  const recentGlibc = major > GLIBC_HUGETLB_SINCE[0]! || (major === GLIBC_HUGETLB_SINCE[0]! && minor >= GLIBC_HUGETLB_SINCE[1]!);
  // hugetlb=1 asks by madvise, which glibc (2.35 to 2.40 at least) does only in the kernel's
  // `madvise` mode; in `always` mode it does nothing more, and we measured no fewer faults
  // there (malloc's heap grows a little at a time, and the kernel does not back such growth
  // with huge pages at fault time).
  const effective = recentGlibc && malloc === '1' && kernel === 'madvise';
  return { malloc, kernel, glibc: glibc ?? 'unknown', effective };
}
