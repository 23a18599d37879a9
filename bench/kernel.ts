// What the machine's own kernel does on the two cores every process of a run shares, and the
// one piece of it a run may switch off: DAMON, the kernel's data access monitor.
//
// Why: on the VMs we measure on, the platform runs a kdamond (physical-address monitoring
// with a pageout scheme, a sample every 500 ms) that takes one of the two vCPUs for 15-30 ms
// every ~0.54 s, clearing the accessed bits of sampled pages (ptep_test_and_clear_young). A
// bft cluster at 30,000 events/s needs ~1.4 cores: left one for that long, every replica and
// client falls behind at once, and the events published then wait 15-40 ms. Those stalls were
// the whole of the paced p99 past 20 ms (docs/performance.md, "Session 31"). A run records
// DAMON's state and what the kernel's threads used in each phase, so that a tail can be told
// apart from the broker's own; `--pause-damon` measures without it, and says so in the results.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpuSecondsOf, statFields } from './rss.js';

/** Where the kernel lists its kdamonds; a parameter of each function so that tests can use a tree of their own. */
export const DAMON_ADMIN = '/sys/kernel/mm/damon/admin/kdamonds';

export interface Kdamond {
  /** Its directory under /sys/kernel/mm/damon/admin/kdamonds. */
  index: number;
  state: string;
  /** What it monitors (paddr: all of physical memory; vaddr: some processes). */
  operations?: string;
  sampleUs?: number;
  /** The first scheme's action (pageout, lru_prio, ...), if any. */
  action?: string;
}

export interface DamonInfo {
  kdamonds: Kdamond[];
  /** Switched off for this run by --pause-damon (and on again after it). */
  pausedForRun: boolean;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The kdamonds the sysfs interface lists; undefined on a kernel without DAMON. */
export function damonInfo(pausedForRun = false, admin = DAMON_ADMIN): DamonInfo | undefined {
  let names: string[];
  try {
    names = readdirSync(admin).filter((n) => /^\d+$/.test(n));
  } catch {
    return undefined;
  }
  const kdamonds = names.map((n): Kdamond => {
    const dir = `${admin}/${n}`;
    const ctx = `${dir}/contexts/0`;
    const sampleUs = Number(read(`${ctx}/monitoring_attrs/intervals/sample_us`));
    const operations = read(`${ctx}/operations`);
    const action = read(`${ctx}/schemes/0/action`);
    return {
      index: Number(n),
      state: read(`${dir}/state`) ?? 'unknown',
      ...(operations ? { operations } : {}),
      ...(Number.isFinite(sampleUs) && sampleUs > 0 ? { sampleUs } : {}),
      ...(action ? { action } : {}),
    };
  });
  return { kdamonds, pausedForRun };
}

/**
 * Switches off every running kdamond until the returned restore() (also called when the
 * process exits or is interrupted). A string says why nothing was paused: not root, no DAMON.
 * Switching one on again starts it afresh, with its parameters as they were.
 */
export function pauseDamon(admin = DAMON_ADMIN): { paused: number[]; restore(): void } | string {
  const info = damonInfo(false, admin);
  if (!info) return 'this kernel has no DAMON sysfs interface (/sys/kernel/mm/damon/admin)';
  const running = info.kdamonds.filter((k) => k.state === 'on');
  if (running.length === 0) return 'no kdamond is running';
  const paused: number[] = [];
  try {
    for (const k of running) {
      writeFileSync(`${admin}/${k.index}/state`, 'off');
      paused.push(k.index);
    }
  } catch (e) {
    restoreAll(admin, paused);
    return `cannot switch DAMON off (${(e as Error).message}); it needs root`;
  }
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    process.off('exit', restore);
    for (const [signal, handler] of onSignal) process.off(signal, handler);
    restoreAll(admin, paused);
  };
  const onSignal = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = (): void => {
      restore();
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    };
    process.once(signal, handler);
    return [signal, handler] as const;
  });
  process.on('exit', restore);
  return { paused, restore };
}

function restoreAll(admin: string, indexes: number[]): void {
  for (const i of indexes) {
    try {
      writeFileSync(`${admin}/${i}/state`, 'on');
    } catch (e) {
      process.stderr.write(`bench: could not switch kdamond ${i} on again (${(e as Error).message}): echo on > ${admin}/${i}/state\n`);
    }
  }
}

/**
 * CPU seconds used so far by the kernel's own threads (children of kthreadd: kdamond, kswapd,
 * kworkers, ...), all together: on two shared cores, what they take the processes of a run lose.
 */
export function kernelThreadsCpuSec(): number {
  let sec = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const fields = statFields(pid);
    // fields[1] is the parent: kthreadd (pid 2) is every kernel thread's.
    if (fields && (pid === 2 || fields[1] === '2')) sec += cpuSecondsOf(fields);
  }
  return Math.round(sec * 100) / 100;
}
