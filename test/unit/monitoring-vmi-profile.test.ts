// The vmi back end's profile parsing (src/monitoring/vmi/profile.ts) and the guest's /init
// (guest-init.ts), without a VM: struct offsets from bpftool's raw BTF dump (a real excerpt of
// Debian 6.1's pt_regs in test/fixtures/btf-pt_regs.txt, and a made-up struct with anonymous
// members), symbols from /proc/kallsyms lines, the syscall table's numbers and handlers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { GUEST_WORKLOADS, formatArg, initScript, offsets, parseBtfStructs, parseKallsyms, syscallTable } from '../../src/monitoring/vmi/index.js';
import { parseGsBases, writeRegister } from '../../src/monitoring/vmi/gdb-rsp.js';

const ptRegsDump = readFileSync(new URL('../../../test/fixtures/btf-pt_regs.txt', import.meta.url), 'utf8');

test('pt_regs offsets from a real BTF dump are the x86-64 layout', () => {
  const layouts = parseBtfStructs(ptRegsDump, ['pt_regs']);
  assert.deepEqual(offsets(layouts, 'pt_regs', ['di', 'si', 'dx', 'r10', 'r8', 'r9', 'orig_ax'] as const), { di: 112, si: 104, dx: 96, r10: 56, r8: 72, r9: 64, orig_ax: 120 });
});

test('members of anonymous structs and unions are lifted to their offset in the parent', () => {
  const raw = [
    "[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED",
    "[2] STRUCT 'task_struct' size=64 vlen=3",
    "\t'state' type_id=1 bits_offset=0",
    "\t'(anon)' type_id=3 bits_offset=128",
    "\t'comm' type_id=1 bits_offset=384",
    "[3] UNION '(anon)' size=16 vlen=2",
    "\t'pid' type_id=1 bits_offset=0",
    "\t'(anon)' type_id=4 bits_offset=0",
    "[4] STRUCT '(anon)' size=8 vlen=2",
    "\t'a' type_id=1 bits_offset=0",
    "\t'tgid' type_id=1 bits_offset=32",
  ].join('\n');
  const layouts = parseBtfStructs(raw, ['task_struct']);
  assert.deepEqual(offsets(layouts, 'task_struct', ['state', 'pid', 'tgid', 'comm'] as const), { state: 0, pid: 16, tgid: 20, comm: 48 });
  assert.throws(() => offsets(layouts, 'task_struct', ['mm'] as const), /no member mm/);
  assert.throws(() => offsets(layouts, 'mm_struct', ['mmap'] as const), /no struct mm_struct/);
});

test('kallsyms lines give addresses; the syscall table gives numbers and handlers, not the stub', () => {
  const symbols = parseKallsyms(['ffffffff82a1aa40 D init_task', '000000000001fb80 A current_task', 'ffffffff810045c0 T __x64_sys_ni_syscall', 'ffffffff813613e0 T __x64_sys_openat', 'ffffffff81361000 T __x64_sys_read', 'garbage', 'ffffffff81000000 t foo [module]'].join('\n'));
  assert.equal(symbols.get('init_task'), 0xffffffff82a1aa40n);
  assert.equal(symbols.get('current_task'), 0x1fb80n);
  assert.equal(symbols.get('foo'), 0xffffffff81000000n);
  const table = [0xffffffff81361000n, 0xffffffff810045c0n, 0xffffffff813613e0n, 0xffffffff813613e0n];
  assert.deepEqual(syscallTable(table, symbols), { handlers: { read: 'ffffffff81361000', openat: 'ffffffff813613e0' }, numbers: { read: 0, openat: 2 } });
});

test('the guest /init runs every workload and prints the markers the host reads', () => {
  const init = initScript();
  assert.match(init, /^#!\/bin\/busybox sh/);
  for (const w of Object.keys(GUEST_WORKLOADS)) assert.match(init, new RegExp(`\\n  ${w}\\) while :; do`));
  for (const marker of ['FITBROKER-READY', 'FITBROKER-ROUND', 'FITBROKER-PS-BEGIN', 'FITBROKER-SYMS-END']) assert.ok(init.includes(marker), marker);
});

test('segment bases sit after eflags and the selectors in a g reply; P writes one register', () => {
  const regs = Buffer.alloc(608);
  regs.writeBigUInt64LE(0xffff88800f800000n, 172);
  regs.writeBigUInt64LE(0x1234n, 180);
  assert.deepEqual(parseGsBases(Buffer.from(regs.toString('hex'))), { gsBase: 0xffff88800f800000n, kernelGsBase: 0x1234n });
  assert.throws(() => parseGsBases(Buffer.from('00'.repeat(136))), /no segment bases/);
  assert.equal(writeRegister(16, 0xffffffff813613e5n), 'P10=e5133681ffffffff');
});

test('syscall arguments read as registers print as the ints and pointers they are', () => {
  assert.equal(formatArg(0n), '0');
  assert.equal(formatArg(577n), '577');
  assert.equal(formatArg(0xffffff9cn), '-100', 'an int argument arrives zero-extended');
  assert.equal(formatArg(0xffffffffffffff9cn), '-100');
  assert.equal(formatArg(0x7ffd1234n), '0x7ffd1234');
});
