// The GDB protocol client (src/monitoring/gdb-client.ts) against a real QEMU gdbstub, the way
// the VMI back end will drive it (issue 9): QEMU starts paused at the CPU's reset vector with no
// guest at all, so the test needs neither a kernel nor a disk, only qemu-system-x86 (installed
// with apt-get when missing, or the test says why it cannot run). One step from the reset vector
// must land where the BIOS's first instruction jumps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { ensureDebianPackage } from '../../src/core/index.js';
import { GdbClient } from '../../src/monitoring/vmi/gdb-client.js';
import { insertBreakpoint, parseMemory, parseRegisters, parseStop, readMemory, removeBreakpoint } from '../../src/monitoring/vmi/gdb-rsp.js';
import { freeBasePort, sleep } from '../helpers/cluster.js';

const QEMU = { pkg: 'qemu-system-x86', path: '/usr/bin/qemu-system-x86_64' } as const;

test('the client drives a real QEMU gdbstub: stop reason, registers, memory, breakpoints, a single step, detach', { timeout: 240_000 }, async (t) => {
  const missing = await ensureDebianPackage(QEMU);
  if (missing !== undefined) return t.skip(`qemu-system-x86_64 is not available: ${missing}`);
  const port = await freeBasePort(1);
  const qemu = spawn(QEMU.path, ['-S', '-display', 'none', '-m', '32', '-no-reboot', '-accel', 'tcg', '-serial', 'none', '-monitor', 'none', '-gdb', `tcp:127.0.0.1:${port}`], { stdio: 'ignore' });
  try {
    let c: GdbClient | undefined;
    for (let i = 0; i < 100 && c === undefined; i++) c = await GdbClient.connect('127.0.0.1', port).catch(async () => (await sleep(50), undefined));
    assert.ok(c, 'QEMU opened its gdbstub');
    const stop = parseStop(await c.request('?'));
    assert.equal(stop?.signal, 5, 'the CPU is stopped (SIGTRAP)');
    assert.equal(parseRegisters(await c.request('g')).rip, 0xfff0n, 'at the reset vector');
    const vector = parseMemory(await c.request(readMemory(0xfffffff0n, 5)), 5);
    assert.deepEqual([...vector], [0xea, 0x5b, 0xe0, 0x00, 0xf0], 'jmp f000:e05b');
    assert.equal((await c.request(insertBreakpoint(0xfe05bn))).toString(), 'OK');
    assert.equal((await c.request(removeBreakpoint(0xfe05bn))).toString(), 'OK');
    assert.equal(parseStop(await c.request('s'))?.signal, 5, 'a single step stops again');
    assert.equal(parseRegisters(await c.request('g')).rip, 0xe05bn, 'one step from the reset vector lands where its jump goes');
    await c.detach();
  } finally {
    qemu.kill('SIGKILL');
  }
});
