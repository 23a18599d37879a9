// `fitbroker vm prepare`: builds the guest the vmi back end monitors, and its introspection
// profile, into a cache directory (src/monitoring/vmi/guest.ts says how). Idempotent: a second
// run finds everything in place and says so.

import { defaultVmCache, prepareGuest } from '../monitoring/vmi/index.js';

export interface VmPrepareOptions {
  cache?: string;
  kernel?: string;
  force?: boolean;
  json?: boolean;
}

export async function vmPrepare(o: VmPrepareOptions): Promise<void> {
  const cache = o.cache ?? defaultVmCache();
  const t0 = Date.now();
  const g = await prepareGuest({ cache, ...(o.kernel ? { kernelPackage: o.kernel } : {}), force: o.force ?? false, say: (line) => process.stderr.write(`vm prepare: ${line}\n`) });
  const summary = {
    dir: g.dir,
    kernel: g.kernelPackage,
    vmlinux: g.files.vmlinux,
    initrd: g.files.initrd,
    profile: g.profilePath,
    syscalls: Object.keys(g.profile.handlers).length,
    seconds: Math.round((Date.now() - t0) / 100) / 10,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(`guest: ${summary.kernel} in ${summary.dir} (${summary.syscalls} syscalls in its profile; ${summary.seconds} s)\n`);
}
