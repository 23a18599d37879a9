// The introspection profile of one guest kernel build: where things are in its memory. VMI
// reads raw guest memory, so it needs what a debugger gets from debug info, as LibVMI's
// profiles give it: symbol addresses (from the guest's /proc/kallsyms in one boot with nokaslr,
// which fixes them per build), struct member offsets (from the kernel's own BTF, dumped by
// bpftool from the vmlinux) and the syscall table (read from guest memory in that boot).
// Parsing here is pure; guest.ts gathers the inputs.

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FitError } from '../../core/index.js';

const hex = z.string().regex(/^[0-9a-f]+$/, 'a hex address');

export const profileSchema = z.strictObject({
  version: z.literal(1),
  kernel: z.string(),
  symbols: z.strictObject({
    init_task: hex,
    /** The per-CPU offset of the current task pointer (current_task, or pcpu_hot + its member on 6.2+). */
    current_task: hex,
  }),
  /** Struct offsets in bytes. */
  task: z.strictObject({ tasks: z.number(), pid: z.number(), tgid: z.number(), comm: z.number(), real_parent: z.number(), mm: z.number() }),
  ptRegs: z.strictObject({ di: z.number(), si: z.number(), dx: z.number(), r10: z.number(), r8: z.number(), r9: z.number(), orig_ax: z.number() }),
  /** Syscall name -> its handler's address (hex), from the syscall table: what a breakpoint goes on. */
  handlers: z.record(z.string(), hex),
  /** Syscall name -> number, for the events. */
  numbers: z.record(z.string(), z.number()),
});
export type Profile = z.infer<typeof profileSchema>;

/** `ADDR TYPE NAME [module]` lines of /proc/kallsyms -> name -> address (the first of a name wins). */
export function parseKallsyms(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{8,16}) [A-Za-z] (\S+)/.exec(line.trim());
    if (m && !out.has(m[2]!)) out.set(m[2]!, BigInt(`0x${m[1]}`));
  }
  return out;
}

/** A struct's members with their byte offsets, anonymous members flattened. */
export type StructLayout = Map<string, number>;

/**
 * Reads struct layouts out of `bpftool btf dump file VMLINUX` (raw format): a type line
 * `[id] STRUCT 'name' size=N vlen=M` followed by M member lines `'member' type_id=T
 * bits_offset=B`. Members of anonymous structs and unions are lifted into the parent at their
 * offset, as C does. Only the named structs are returned.
 */
export function parseBtfStructs(raw: string, wanted: readonly string[]): Map<string, StructLayout> {
  interface Member {
    name: string;
    type: number;
    bits: number;
  }
  const types = new Map<number, { kind: string; name: string; members: Member[] }>();
  let current: Member[] | undefined;
  for (const line of raw.split('\n')) {
    const t = /^\[(\d+)\] (\w+) '([^']*)'/.exec(line);
    if (t) {
      const entry = { kind: t[2]!, name: t[3]!, members: [] as Member[] };
      types.set(Number(t[1]), entry);
      current = entry.kind === 'STRUCT' || entry.kind === 'UNION' ? entry.members : undefined;
      continue;
    }
    const m = /^\s+'([^']*)' type_id=(\d+) bits_offset=(\d+)/.exec(line);
    if (m && current) current.push({ name: m[1]!, type: Number(m[2]), bits: Number(m[3]) });
  }
  const flatten = (members: Member[], baseBits: number, into: StructLayout): void => {
    for (const m of members) {
      const inner = types.get(m.type);
      if ((m.name === '' || m.name === '(anon)') && inner && inner.members.length > 0) flatten(inner.members, baseBits + m.bits, into);
      else if (!into.has(m.name)) into.set(m.name, (baseBits + m.bits) / 8);
    }
  };
  const out = new Map<string, StructLayout>();
  for (const entry of types.values()) {
    if (entry.kind !== 'STRUCT' || !wanted.includes(entry.name) || out.has(entry.name) || entry.members.length === 0) continue;
    const layout: StructLayout = new Map();
    flatten(entry.members, 0, layout);
    out.set(entry.name, layout);
  }
  return out;
}

/** The offsets of `members` in `layout`, or a FitError naming what the kernel lacks. */
export function offsets<K extends string>(layouts: Map<string, StructLayout>, struct: string, members: readonly K[]): Record<K, number> {
  const layout = layouts.get(struct);
  if (!layout) throw new FitError('FIT_ERR_VMI', `the kernel's BTF has no struct ${struct}: this kernel cannot be introspected by this back end`);
  const out = {} as Record<K, number>;
  for (const m of members) {
    const o = layout.get(m);
    if (o === undefined) throw new FitError('FIT_ERR_VMI', `the kernel's struct ${struct} has no member ${m}`);
    out[m] = o;
  }
  return out;
}

/**
 * The syscall table as read from guest memory (one handler address per number) -> name ->
 * handler and name -> number. Numbers the kernel does not implement (their handler is
 * `__x64_sys_ni_syscall`, which returns -ENOSYS), and addresses that are no `__x64_sys_`
 * symbol, are left out: there is no call to trace there.
 */
export function syscallTable(entries: readonly bigint[], symbols: Map<string, bigint>): { handlers: Record<string, string>; numbers: Record<string, number> } {
  const byAddress = new Map<bigint, string>();
  for (const [name, addr] of symbols) if (name.startsWith('__x64_sys_')) byAddress.set(addr, name.slice('__x64_sys_'.length));
  const handlers: Record<string, string> = {};
  const numbers: Record<string, number> = {};
  entries.forEach((addr, nr) => {
    const name = byAddress.get(addr);
    if (name === undefined || name === 'ni_syscall' || name in numbers) return;
    handlers[name] = addr.toString(16);
    numbers[name] = nr;
  });
  return { handlers, numbers };
}

export function loadProfile(path: string): Profile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new FitError('FIT_ERR_VMI', `no introspection profile at ${path}: run \`fitbroker vm prepare\` first`);
  }
  const parsed = profileSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new FitError('FIT_ERR_VMI', `the introspection profile ${path} is not one this version reads (${parsed.error.issues[0]?.message}); run \`fitbroker vm prepare --force\``);
  return parsed.data;
}
