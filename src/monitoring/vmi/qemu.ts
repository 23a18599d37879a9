// Starting the prepared guest under QEMU, with its gdbstub on a local TCP port and its serial
// console on QEMU's stdout, and reading the console's marker lines (guest-init.ts): readiness,
// the workload's progress, the guest's own process lists. KVM when the host has hardware
// virtualization it can use, QEMU's emulator (TCG) otherwise; the guest and the back end are
// the same either way (docs/vmi.md).

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { FitError } from '../../core/index.js';
import type { ProcessInfo } from '../backend.js';

export const QEMU_BINARY = { pkg: 'qemu-system-x86', path: '/usr/bin/qemu-system-x86_64' } as const;
/** Guest memory: the kernel and a busybox initramfs need little. */
export const GUEST_MEMORY_MB = 256;
/** TCG boots Debian's kernel to /init in 3–8 s here; a loaded CI machine may take several times that. */
export const GUEST_READY_TIMEOUT_MS = 120_000;

export type Accel = 'kvm' | 'tcg';

/**
 * KVM only with real VT-x/AMD-V: this project's machines expose a /dev/kvm (kvm_pvm) that runs
 * a stock kernel through KVM's instruction emulator, slower than TCG, and that fails to boot it
 * (shared/notes/vmi-on-these-machines.md).
 */
export function detectAccel(): { accel: Accel; why: string } {
  const flags = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  })();
  const hw = /^flags\s*:.*\b(vmx|svm)\b/m.test(flags);
  if (hw && existsSync('/dev/kvm')) return { accel: 'kvm', why: 'the CPU has hardware virtualization and /dev/kvm exists' };
  return { accel: 'tcg', why: hw ? 'the CPU has hardware virtualization but there is no /dev/kvm' : 'the CPU has no hardware virtualization (no vmx or svm flag): QEMU emulates the guest (TCG), every cost here is that of an emulated CPU' };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface GuestFiles {
  readonly vmlinux: string;
  readonly initrd: string;
}

export interface GuestOptions {
  readonly files: GuestFiles;
  readonly mode: 'profile' | 'run';
  readonly workload?: string;
  readonly accel?: Accel;
  /** Where the whole serial console is copied, for the operator. */
  readonly consolePath?: string;
  /** Called for each console line that is not a marker the back end consumes. */
  readonly onLine?: (line: string) => void;
}

/** A guest process list the guest printed itself. */
export interface GuestPs {
  readonly n: number;
  /** Host clock (ns, process.hrtime) when its last line arrived. */
  readonly atNs: number;
  readonly processes: readonly ProcessInfo[];
}

const hrNs = (): number => Number(process.hrtime.bigint());

export class Guest {
  /** Rounds the workload has completed, as the console says. */
  rounds = 0;
  /** The guest's own process lists, latest last (a few kept). */
  readonly ps: GuestPs[] = [];
  readonly symbolLines: string[] = [];
  /** The profile boot printed all its symbols. */
  symbolsComplete = false;
  private readonly waiters: { test: () => boolean; resolve: () => void }[] = [];
  private partial = '';
  private psOpen: ProcessInfo[] | undefined;
  private symbolsOpen = false;
  private console: WriteStream | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly gdbPort: number,
    readonly accel: Accel,
    private readonly options: GuestOptions,
  ) {
    if (options.consolePath) this.console = createWriteStream(options.consolePath, { flags: 'a' });
    child.stdout!.on('data', (chunk: Buffer) => this.feed(chunk.toString('latin1')));
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        if (stderr.trim()) options.onLine?.(`qemu: ${stderr.trim()}`);
        this.console?.end();
        this.wakeAll();
        resolve({ code, signal });
      });
      child.once('error', () => undefined);
    });
  }

  static async start(options: GuestOptions): Promise<Guest> {
    const accel = options.accel ?? detectAccel().accel;
    const port = await freePort();
    const append = ['console=ttyS0', 'nokaslr', 'quiet', 'panic=-1', `fitbroker.mode=${options.mode}`, ...(options.workload ? [`fitbroker.workload=${options.workload}`] : [])].join(' ');
    const args = [
      ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg']),
      ...['-m', String(GUEST_MEMORY_MB), '-smp', '1', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-nic', 'none', '-no-reboot'],
      ...['-kernel', options.files.vmlinux, '-initrd', options.files.initrd, '-append', append, '-gdb', `tcp:127.0.0.1:${port}`],
    ];
    const child = spawn(QEMU_BINARY.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // A guest must not outlive the agent that started it, however the agent ends (short of
    // SIGKILL): an orphaned TCG guest keeps a CPU busy until someone notices.
    const reap = (): void => void child.kill('SIGKILL');
    process.once('exit', reap);
    child.once('exit', () => process.removeListener('exit', reap));
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => reject(new FitError('FIT_ERR_VMI', `cannot start ${QEMU_BINARY.path}: ${e.message}; run \`fitbroker vm prepare\`, which installs ${QEMU_BINARY.pkg}`)));
    });
    return new Guest(child, port, accel, options);
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** Resolves when `test` holds (checked on every console line); rejects if the guest exits or time runs out. */
  waitFor(what: string, test: () => boolean, timeoutMs = GUEST_READY_TIMEOUT_MS): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new FitError('FIT_ERR_VMI', `the guest did not reach "${what}" within ${Math.round(timeoutMs / 1000)} s (console: ${this.options.consolePath ?? 'not kept'})`)), timeoutMs);
      const entry = {
        test: () => test() || this.exitInfo !== undefined,
        resolve: () => done(this.exitInfo !== undefined && !test() ? new FitError('FIT_ERR_VMI', `the guest stopped before "${what}" (QEMU exit ${this.exitInfo.code ?? this.exitInfo.signal})`) : undefined),
      };
      const done = (err?: FitError): void => {
        clearTimeout(timer);
        const i = this.waiters.indexOf(entry);
        if (i >= 0) this.waiters.splice(i, 1);
        if (err) reject(err);
        else resolve();
      };
      this.waiters.push(entry);
    });
  }

  ready = false;
  workloadError: string | undefined;

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }

  private lastDataNs = 0;

  /**
   * Resolves once the console has been quiet for quietMs (at most maxMs): with the guest
   * paused, every line it wrote before the pause has then been read, so `rounds` is exact.
   */
  async settle(quietMs = 15, maxMs = 200): Promise<void> {
    const until = hrNs() + maxMs * 1e6;
    while (hrNs() < until && hrNs() - this.lastDataNs < quietMs * 1e6) await new Promise((r) => setTimeout(r, quietMs / 3));
  }

  private feed(text: string): void {
    this.lastDataNs = hrNs();
    this.console?.write(text);
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop()!;
    for (const raw of lines) this.line(raw.replace(/\r$/, ''));
    this.wakeAll();
  }

  private line(line: string): void {
    if (this.symbolsOpen) {
      if (line.startsWith('FITBROKER-SYMS-END')) {
        this.symbolsOpen = false;
        this.symbolsComplete = true;
      }
      else this.symbolLines.push(line);
      return;
    }
    const [marker, ...rest] = line.split(' ');
    switch (marker) {
      case 'FITBROKER-ROUND':
        this.rounds = Math.max(this.rounds, Number(rest[0]) || 0);
        return;
      case 'FITBROKER-READY':
        this.ready = true;
        return;
      case 'FITBROKER-SYMS-BEGIN':
        this.symbolsOpen = true;
        return;
      case 'FITBROKER-PS-BEGIN':
        this.psOpen = [];
        return;
      case 'FITBROKER-PS':
        if (this.psOpen && rest.length >= 3) this.psOpen.push({ pid: Number(rest[0]), ppid: Number(rest[1]), name: rest.slice(2).join(' ') });
        return;
      case 'FITBROKER-PS-END':
        if (this.psOpen) {
          this.ps.push({ n: Number(rest[0]), atNs: hrNs(), processes: this.psOpen });
          if (this.ps.length > 8) this.ps.shift();
        }
        this.psOpen = undefined;
        return;
      case 'FITBROKER-ERROR':
        this.workloadError = rest.join(' ');
        return;
      default:
        if (line.trim()) this.options.onLine?.(line);
    }
  }

  private wakeAll(): void {
    for (const w of [...this.waiters]) if (w.test()) w.resolve();
  }
}
