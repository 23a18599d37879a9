// `fitbroker vm prepare`: builds the guest the vmi back end monitors and its introspection
// profile, from Debian's packages only and without installing a kernel on the host:
//   1. qemu-system-x86, cpio, bpftool and xz-utils are installed when missing (ensureDebianPackage);
//      the kernel and busybox-static are only downloaded (apt-get download) and unpacked with
//      dpkg-deb -x into the cache, so the host's /boot and packages stay as they were;
//   2. the uncompressed vmlinux is cut out of vmlinuz (its XZ payload), so QEMU boots it
//      directly through its PVH entry and the guest spends no time decompressing itself;
//   3. the initramfs is busybox plus our /init (guest-init.ts), packed with cpio;
//   4. struct offsets come from the kernel's BTF (bpftool), symbol addresses from one boot of
//      the guest in profile mode (its /proc/kallsyms under nokaslr), and the syscall table from
//      guest memory read through the gdbstub in that same boot.
// Each step is skipped when its output is already in the cache, so a second run is instant.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { FitError, ensureDebianPackage } from '../../core/index.js';
import { GdbClient } from './gdb-client.js';
import { parseMemory, readMemory } from './gdb-rsp.js';
import { initScript } from './guest-init.js';
import { offsets, parseBtfStructs, parseKallsyms, profileSchema, syscallTable, type Profile } from './profile.js';
import { Guest, QEMU_BINARY, type GuestFiles } from './qemu.js';

export const VM_TOOLS = [QEMU_BINARY, { pkg: 'cpio', path: '/usr/bin/cpio' }, { pkg: 'bpftool', path: '/usr/sbin/bpftool' }, { pkg: 'xz-utils', path: '/usr/bin/xz' }] as const;

/** Where prepared guests live unless --cache or FITBROKER_VM_CACHE says otherwise. */
export function defaultVmCache(): string {
  return process.env.FITBROKER_VM_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'fitbroker', 'vm');
}

export interface PreparedGuest {
  readonly dir: string;
  readonly kernelPackage: string;
  readonly files: GuestFiles;
  readonly profilePath: string;
  readonly profile: Profile;
}

export interface PrepareOptions {
  readonly cache: string;
  /** A linux-image-*-amd64 package; default: the one linux-image-amd64 depends on. */
  readonly kernelPackage?: string;
  /** Rebuild everything. */
  readonly force?: boolean;
  readonly say: (line: string) => void;
}

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
    p.once('error', (e) => reject(new FitError('FIT_ERR_VMI', `cannot run ${cmd}: ${e.message}`)));
    p.once('exit', (code) => (code === 0 ? resolve(Buffer.concat(out).toString()) : reject(new FitError('FIT_ERR_VMI', `${cmd} ${args.join(' ')} failed (exit ${code}): ${err.trim().split('\n').pop() ?? ''}`))));
  });
}

async function kernelPackageName(explicit: string | undefined): Promise<string> {
  if (explicit) return explicit;
  const deps = await run('apt-cache', ['depends', 'linux-image-amd64']).catch(() => '');
  const m = /Depends: (linux-image-[0-9][^\s]*-amd64)\b/.exec(deps);
  if (!m) throw new FitError('FIT_ERR_VMI', 'apt-cache does not know linux-image-amd64 (no package lists?); run `apt-get update`, or name a kernel with --kernel linux-image-6.1.0-NN-amd64');
  return m[1]!;
}

/** Downloads a package's .deb into `dir` (no install), updating the lists once if needed. */
async function download(pkg: string, dir: string, say: (l: string) => void): Promise<string> {
  const have = readdirSync(dir).find((f) => f.startsWith(`${pkg.replace(/:.*/, '')}_`) && f.endsWith('.deb'));
  if (have) return join(dir, have);
  say(`downloading ${pkg} (apt-get download; nothing is installed)`);
  await run('apt-get', ['download', '-q', pkg], { cwd: dir }).catch(async () => {
    await run('apt-get', ['update', '-q']);
    await run('apt-get', ['download', '-q', pkg], { cwd: dir });
  });
  const got = readdirSync(dir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!got) throw new FitError('FIT_ERR_VMI', `apt-get download ${pkg} left no .deb in ${dir}`);
  return join(dir, got);
}

/** The vmlinux ELF inside a bzImage: its payload is an XZ stream (Debian's kernels). */
async function extractVmlinux(vmlinuz: string, out: string): Promise<void> {
  const image = readFileSync(vmlinuz);
  const at = image.indexOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]));
  if (at < 0) throw new FitError('FIT_ERR_VMI', `${vmlinuz} has no XZ payload: only XZ-compressed kernels (Debian's) are supported`);
  const tmp = `${out}.part`;
  await new Promise<void>((resolve, reject) => {
    const xz = spawn('xz', ['-dc', '--single-stream'], { stdio: ['pipe', 'pipe', 'ignore'] });
    const sink = createWriteStream(tmp);
    xz.stdout.pipe(sink);
    xz.once('error', reject);
    sink.once('finish', resolve);
    xz.stdin.on('error', () => undefined);
    xz.stdin.end(image.subarray(at));
  });
  if (readFileSync(tmp).subarray(0, 4).toString('latin1') !== '\x7fELF') throw new FitError('FIT_ERR_VMI', `the payload of ${vmlinuz} is not an ELF kernel`);
  renameSync(tmp, out);
}

const sha = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex').slice(0, 16);

async function buildInitrd(busybox: string, out: string, say: (l: string) => void): Promise<void> {
  const script = initScript();
  const stamp = `${out}.sha`;
  const want = sha(script + sha(readFileSync(busybox)));
  if (existsSync(out) && existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  say('building the initramfs (busybox and the workloads, cpio newc)');
  const root = `${out}.root`;
  rmSync(root, { recursive: true, force: true });
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(busybox, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  writeFileSync(join(root, 'init'), script, { mode: 0o755 });
  writeFileSync(join(root, 'etc', 'hostname'), 'fitbroker-guest\n');
  writeFileSync(join(root, 'etc', 'motd'), 'monitored from outside by fitbroker\n');
  const list = await run('find', ['.'], { cwd: root });
  const cpio = `${out}.cpio`;
  writeFileSync(cpio, Buffer.from(await runBinary('cpio', ['-o', '-H', 'newc', '--quiet'], root, list)));
  await pipeline(createReadStream(cpio), createGzip({ level: 6 }), createWriteStream(out));
  rmSync(cpio);
  rmSync(root, { recursive: true, force: true });
  writeFileSync(stamp, want);
}

function runBinary(cmd: string, args: string[], cwd: string, input: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new FitError('FIT_ERR_VMI', `${cmd} failed (exit ${code})`))));
    // A child that exits early closes its stdin; the error that follows is the exit's to report.
    p.stdin.on('error', () => undefined);
    p.stdin.end(input);
  });
}

/** Boots the guest in profile mode: symbols from its console, the syscall table from its memory. */
async function profileBoot(files: GuestFiles, kernel: string, vmlinux: string, say: (l: string) => void): Promise<Profile> {
  say('reading struct offsets from the kernel\'s BTF (bpftool)');
  const btf = parseBtfStructs(await run('bpftool', ['btf', 'dump', 'file', vmlinux]), ['task_struct', 'pt_regs', 'pcpu_hot']);
  const task = offsets(btf, 'task_struct', ['tasks', 'pid', 'tgid', 'comm', 'real_parent', 'mm'] as const);
  const ptRegs = offsets(btf, 'pt_regs', ['di', 'si', 'dx', 'r10', 'r8', 'r9', 'orig_ax'] as const);
  say('booting the guest once to read its kernel symbols and syscall table (a few seconds under emulation)');
  const guest = await Guest.start({ files, mode: 'profile' });
  try {
    await guest.waitFor('its kernel symbols', () => guest.symbolsComplete);
    const symbols = parseKallsyms(guest.symbolLines.join('\n'));
    const need = (name: string): bigint => {
      const a = symbols.get(name);
      if (a === undefined) throw new FitError('FIT_ERR_VMI', `the guest kernel has no symbol ${name} in /proc/kallsyms`);
      return a;
    };
    // 6.2+ keeps the current task in struct pcpu_hot; 6.1 in its own per-CPU variable.
    const hot = symbols.get('pcpu_hot');
    const currentTask = hot !== undefined ? hot + BigInt(offsets(btf, 'pcpu_hot', ['current_task'] as const).current_task) : need('current_task');
    const gdb = await GdbClient.connect('127.0.0.1', guest.gdbPort);
    const table: bigint[] = [];
    try {
      const base = need('sys_call_table');
      const handlers = new Set([...symbols].filter(([n]) => n.startsWith('__x64_sys_')).map(([, a]) => a));
      for (let nr = 0; nr < 1024; nr += 128) {
        const chunk = parseMemory(await gdb.request(readMemory(base + BigInt(nr * 8), 1024)), 1024);
        const entries = Array.from({ length: 128 }, (_, i) => chunk.readBigUInt64LE(i * 8));
        const end = entries.findIndex((a) => !handlers.has(a));
        table.push(...(end < 0 ? entries : entries.slice(0, end)));
        if (end >= 0) break;
      }
    } finally {
      gdb.close();
    }
    const { handlers, numbers } = syscallTable(table, symbols);
    say(`profile: ${Object.keys(handlers).length} syscalls in a table of ${table.length}, task_struct.comm at ${task.comm}`);
    return profileSchema.parse({ version: 1, kernel, symbols: { init_task: need('init_task').toString(16), current_task: currentTask.toString(16) }, task, ptRegs, handlers, numbers });
  } finally {
    guest.kill();
    await guest.exited;
  }
}

export async function prepareGuest(o: PrepareOptions): Promise<PreparedGuest> {
  for (const tool of VM_TOOLS) {
    const missing = await ensureDebianPackage(tool);
    if (missing !== undefined) throw new FitError('FIT_ERR_VMI', `the vmi back end needs ${tool.pkg}: ${missing}`);
  }
  const kernelPackage = await kernelPackageName(o.kernelPackage);
  const dir = join(o.cache, kernelPackage);
  if (o.force) rmSync(dir, { recursive: true, force: true });
  const debs = join(o.cache, 'debs');
  mkdirSync(debs, { recursive: true });
  mkdirSync(dir, { recursive: true });
  const vmlinux = join(dir, 'vmlinux');
  if (!existsSync(vmlinux)) {
    const deb = await download(kernelPackage, debs, o.say);
    o.say(`unpacking ${kernelPackage} into ${dir} (dpkg-deb -x; not installed)`);
    const unpacked = join(dir, 'pkg');
    await run('dpkg-deb', ['-x', deb, unpacked]);
    const vmlinuz = readdirSync(join(unpacked, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new FitError('FIT_ERR_VMI', `${kernelPackage} has no /boot/vmlinuz-*`);
    o.say('extracting the uncompressed vmlinux from vmlinuz');
    await extractVmlinux(join(unpacked, 'boot', vmlinuz), vmlinux);
    rmSync(unpacked, { recursive: true, force: true });
  }
  const busybox = join(o.cache, 'busybox');
  if (!existsSync(busybox)) {
    const deb = await download('busybox-static', debs, o.say);
    const unpacked = join(o.cache, 'busybox-pkg');
    await run('dpkg-deb', ['-x', deb, unpacked]);
    copyFileSync(join(unpacked, 'bin', 'busybox'), busybox);
    rmSync(unpacked, { recursive: true, force: true });
  }
  const initrd = join(dir, 'initrd.gz');
  await buildInitrd(busybox, initrd, o.say);
  const files = { vmlinux, initrd };
  const profilePath = join(dir, 'profile.json');
  let profile: Profile;
  const existing = existsSync(profilePath) ? profileSchema.safeParse(JSON.parse(readFileSync(profilePath, 'utf8'))) : undefined;
  if (existing?.success) profile = existing.data;
  else {
    profile = await profileBoot(files, kernelPackage, vmlinux, o.say);
    writeFileSync(profilePath, `${JSON.stringify(profile, null, 2)}\n`);
  }
  o.say(`guest ready in ${dir}`);
  return { dir, kernelPackage, files, profilePath, profile };
}
