// What a process pays for memory the first time it touches it: the cost a fresh broker pays
// while it grows into its working set, and why `npm run bench` measures after a warm-up
// (bench/run.ts). Each round is two new processes, one after a pause (long enough for a
// hypervisor that takes freed memory back, as the VMs we measure on do, to have done so) and
// one right after the first exits (memory another process just freed); each touches N MiB of
// fresh memory, one byte per 4 KiB page, and reports its wall time, system time and page
// faults. The children inherit the environment: with GLIBC_TUNABLES=glibc.malloc.hugetlb=1
// (as fitbroker starts its processes) the memory comes in huge pages, and the output says so.
//
//   node dist/bench/first-touch.js [--mib 1024] [--rounds 3] [--pause-ms 8000]

import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const PAGE = 4096;

function touch(mib: number): void {
  const bytes = mib * 1024 * 1024;
  const wall0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const faults0 = process.resourceUsage().minorPageFault;
  // allocUnsafeSlow: its own allocation, not the pool, and no fill: the loop does the touching.
  const b = Buffer.allocUnsafeSlow(bytes);
  for (let i = 0; i < bytes; i += PAGE) b[i] = 1;
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6;
  const faults = process.resourceUsage().minorPageFault - faults0;
  process.stdout.write(JSON.stringify({ wallMs, userMs: cpu.user / 1000, sysMs: cpu.system / 1000, faults }));
}

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '3' },
    'pause-ms': { type: 'string', default: '8000' },
    child: { type: 'boolean', default: false },
  },
});
function whole(flag: string, min: number): number {
  const v = values[flag as keyof typeof values] as string;
  const n = Number(v);
  if (/^\d+$/.test(v) && n >= min) return n;
  console.error(`first-touch: --${flag} must be a whole number, at least ${min}, got "${v}"`);
  process.exit(2);
}

const mib = whole('mib', 1);
if (values.child) touch(mib);
else {
  const rounds = whole('rounds', 1);
  const pauseMs = whole('pause-ms', 0);
  const run = (): { wallMs: number; sysMs: number; faults: number } =>
    JSON.parse(execFileSync(process.execPath, [process.argv[1]!, '--child', '--mib', String(mib)], { encoding: 'utf8' }));
  const show = (what: string, r: { wallMs: number; sysMs: number; faults: number }): void =>
    console.log(
      `${what}: ${mib} MiB in ${r.wallMs.toFixed(0)} ms (system ${r.sysMs.toFixed(0)} ms, ${r.faults} faults, ${r.faults < (mib * 256) / 4 ? 'huge pages' : '4 KiB pages'}): ` +
        `${(r.sysMs / mib).toFixed(2)} ms of system time per MiB`,
    );
  for (let i = 0; i < rounds; i++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pauseMs);
    show(`after ${pauseMs} ms idle`, run());
    show('right after another process freed as much', run());
  }
}
