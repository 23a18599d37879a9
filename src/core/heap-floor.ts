// The V8 flag fitbroker starts its processes with: no full garbage collection while the old
// generation holds less than 128 MiB (--initial-old-space-size; V8 skips full GCs below a
// size the embedder configured). A replica's live heap is ~20 MB once its queues are typed
// arrays (broker/entries.ts), and V8 sized its old-generation limit from that: at saturation it
// started a full marking several times a second, a fifth of the replica's CPU in the
// collector's threads. With the floor, replicas used about a quarter less CPU and the bench
// delivered 10-15 % more (docs/performance.md, "Session 24"); it costs up to 128 MiB of
// garbage before a collection (over 5 M paced events, two replicas peaked 90 MB above the
// other two, at 248 MB).
//
// V8 reads it when the process starts and Node refuses it in NODE_OPTIONS, so it goes on the
// command line of the processes we spawn (`fitbroker up`, the test cluster, the bench's
// processes, the peers' clients alike) and in the CLI's shebang; an operator starting
// `fitbroker replica` some other way adds it there (docs/operations.md).

export const HEAP_FLOOR_FLAG = '--initial-old-space-size=128';

/** Set to `0` to start processes without the flag (say, to measure what it buys). */
export const HEAP_FLOOR_OPT_OUT = 'FITBROKER_HEAP_FLOOR';

/** `nodeArgs` with the heap floor added, unless they set an initial old space size of their own or the environment opts out. */
export function withHeapFloor(nodeArgs: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): string[] {
  if (env[HEAP_FLOOR_OPT_OUT] === '0' || nodeArgs.some((a) => a.startsWith('--initial-old-space-size') || a.startsWith('--initial_old_space_size'))) return [...nodeArgs];
  return [HEAP_FLOOR_FLAG, ...nodeArgs];
}

/** True when this process was started with an initial old space size (the floor or the operator's own). */
export function hasHeapFloor(execArgv: readonly string[] = process.execArgv): boolean {
  return execArgv.some((a) => a.startsWith('--initial-old-space-size') || a.startsWith('--initial_old_space_size'));
}
