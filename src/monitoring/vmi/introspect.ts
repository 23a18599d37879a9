// Reading the guest kernel's state out of guest memory, the way VMI does: the process list by
// walking init_task.tasks, the current task from the per-CPU area, a task's pid and name, a
// syscall's arguments from its pt_regs and the strings they point to. Every read is an `m`
// packet through the gdbstub with the guest stopped; addresses and offsets come from the
// profile (profile.ts). Nothing here trusts the guest: a list that does not close, or a read
// the stub refuses, ends the walk with what was read and says so.

import { FitError } from '../../core/index.js';
import type { ProcessInfo } from '../backend.js';
import type { GdbClient } from './gdb-client.js';
import { parseMemory, readMemory } from './gdb-rsp.js';
import type { Profile } from './profile.js';

/** One `m` reply carries at most this much (QEMU's PacketSize is 0x1000 hex digits). */
const READ_CHUNK = 1024;
/** A guest with more tasks than this has a corrupted (or hostile) list: the walk stops. */
export const TASKS_MAX = 32_768;
const COMM_LEN = 16;
const PAGE = 4096;

/** Syscalls whose arguments include a path, and which argument (0-based) it is. */
const PATH_ARGS: Readonly<Record<string, number>> = {
  open: 0, openat: 1, openat2: 1, creat: 0, execve: 0, execveat: 1, stat: 0, lstat: 0, newfstatat: 1, statx: 1,
  access: 0, faccessat: 1, faccessat2: 1, readlink: 0, readlinkat: 1, unlink: 0, unlinkat: 1, mkdir: 0, mkdirat: 1,
  rmdir: 0, chdir: 0, rename: 0, renameat: 1, renameat2: 1, chmod: 0, fchmodat: 1, truncate: 0,
};

/**
 * A register as a syscall argument: small numbers in decimal, a 32-bit or 64-bit negative as
 * the int it is (a dirfd of -100 arrives as 0xffffff9c: the kernel zero-extends int
 * arguments), anything else (a pointer, flags) in hex.
 */
export function formatArg(v: bigint): string {
  if (v < 0x10000n) return v.toString();
  if (v >= 0xffff0000n && v <= 0xffffffffn) return (v - (1n << 32n)).toString();
  if (v >= 0xffffffffffff0000n) return (v - (1n << 64n)).toString();
  return `0x${v.toString(16)}`;
}

export class Introspector {
  private readonly taskSpan: { from: number; length: number };

  constructor(
    private readonly gdb: GdbClient,
    private readonly profile: Profile,
  ) {
    const t = profile.task;
    const from = Math.min(t.tasks, t.pid, t.tgid, t.comm, t.real_parent, t.mm);
    const to = Math.max(t.tasks + 8, t.pid + 4, t.tgid + 4, t.comm + COMM_LEN, t.real_parent + 8, t.mm + 8);
    this.taskSpan = { from, length: to - from };
  }

  async read(addr: bigint, length: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (let done = 0; done < length; done += READ_CHUNK) {
      const n = Math.min(READ_CHUNK, length - done);
      parts.push(parseMemory(await this.gdb.request(readMemory(addr + BigInt(done), n)), n));
    }
    return Buffer.concat(parts);
  }

  private async readTask(task: bigint): Promise<{ pid: number; tgid: number; comm: string; parent: bigint; next: bigint; kernelThread: boolean }> {
    const t = this.profile.task;
    const b = await this.read(task + BigInt(this.taskSpan.from), this.taskSpan.length);
    const at = (off: number): number => off - this.taskSpan.from;
    const comm = b.subarray(at(t.comm), at(t.comm) + COMM_LEN);
    const nul = comm.indexOf(0);
    return {
      pid: b.readInt32LE(at(t.pid)),
      tgid: b.readInt32LE(at(t.tgid)),
      comm: comm.subarray(0, nul < 0 ? COMM_LEN : nul).toString('latin1'),
      parent: b.readBigUInt64LE(at(t.real_parent)),
      next: b.readBigUInt64LE(at(t.tasks)),
      kernelThread: b.readBigUInt64LE(at(t.mm)) === 0n,
    };
  }

  /**
   * The process list: every thread group leader on init_task.tasks (as the guest's /proc lists
   * them), with its parent's pid. init_task itself (pid 0, the idle task) is not a process.
   */
  async processes(): Promise<ProcessInfo[]> {
    const head = BigInt(`0x${this.profile.symbols.init_task}`);
    const tasksOff = BigInt(this.profile.task.tasks);
    const seen: { task: bigint; pid: number; name: string; parent: bigint }[] = [];
    const pidOf = new Map<bigint, number>([[head, 0]]);
    let next = (await this.readTask(head)).next;
    while (next !== head + tasksOff) {
      if (seen.length >= TASKS_MAX) throw new FitError('FIT_ERR_VMI', `the guest's task list has more than ${TASKS_MAX} entries without closing: corrupt or tampered`);
      const task = next - tasksOff;
      const t = await this.readTask(task);
      pidOf.set(task, t.tgid);
      seen.push({ task, pid: t.tgid, name: t.comm, parent: t.parent });
      next = t.next;
    }
    return seen.map((s) => ({ pid: s.pid, ppid: pidOf.get(s.parent) ?? 0, name: s.name }));
  }

  /** The task running on the stopped CPU whose per-CPU area starts at perCpuBase. */
  async current(perCpuBase: bigint): Promise<{ pid: number; tid: number; comm: string }> {
    const ptr = (await this.read(perCpuBase + BigInt(`0x${this.profile.symbols.current_task}`), 8)).readBigUInt64LE();
    const t = await this.readTask(ptr);
    return { pid: t.tgid, tid: t.pid, comm: t.comm };
  }

  /**
   * A syscall's arguments from the pt_regs its handler was given, as strace would show them:
   * the path of a path argument in quotes (read from user memory), other arguments as numbers
   * (hex when large). A path that cannot be read shows as its address.
   */
  async syscallArgs(syscall: string, ptRegs: bigint): Promise<string[]> {
    const r = this.profile.ptRegs;
    const regs = await this.read(ptRegs, Math.max(r.di, r.si, r.dx, r.r10, r.r8, r.r9) + 8);
    const values = [r.di, r.si, r.dx, r.r10, r.r8, r.r9].map((off) => regs.readBigUInt64LE(off));
    const pathAt = PATH_ARGS[syscall];
    const args = values.map(formatArg);
    if (pathAt !== undefined) {
      args[pathAt] = await this.userString(values[pathAt]!).catch(() => args[pathAt]!);
      // The *at calls take the directory first: AT_FDCWD as strace names it.
      if (pathAt === 1 && args[0] === '-100') args[0] = 'AT_FDCWD';
    }
    return args.slice(0, pathAt !== undefined ? Math.max(pathAt + 2, 3) : 6);
  }

  /** A NUL-terminated string in the current process's memory, quoted, at most 256 bytes. */
  private async userString(addr: bigint): Promise<string> {
    let out = Buffer.alloc(0);
    let at = addr;
    while (out.length < 256) {
      const n = Math.min(256 - out.length, PAGE - Number(at % BigInt(PAGE)));
      const chunk = await this.read(at, n);
      const nul = chunk.indexOf(0);
      out = Buffer.concat([out, nul < 0 ? chunk : chunk.subarray(0, nul)]);
      if (nul >= 0) return JSON.stringify(out.toString('latin1'));
      at += BigInt(n);
    }
    return `${JSON.stringify(out.toString('latin1'))}...`;
  }
}
