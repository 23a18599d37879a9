// Fuzz targets for the inputs that reach the broker from outside its wire protocol: the host
// probe's parsers (an auth log line carries whatever user name an attacker typed; a process
// names itself), and the monitoring agent's (a control command from monitor.control, strace's
// output about a monitored process that chooses its own paths and arguments, a gdbstub's
// stream and the guest memory it carries, an introspection profile read from disk). Each runs
// the production entry point and checks what it returns, not only that it returns.

import { readFileSync } from 'node:fs';
import { authFailure, parseLoadavg, parseMeminfo, parseProcStat, parseUptime } from '../../src/adapters/index.js';
import { parseCommand } from '../../src/monitoring/command.js';
import { parseStraceLine, straceAssembler } from '../../src/monitoring/strace.js';
import { PacketReader, parseGsBases, parseMemory, parseRegisters, parseStop } from '../../src/monitoring/vmi/gdb-rsp.js';
import { parseBtfStructs, parseKallsyms, profileSchema } from '../../src/monitoring/vmi/profile.js';
import { jsonMutator, type FuzzTarget, type Rng } from '../helpers/fuzz.js';

const fail = (what: string): never => {
  throw new Error(what);
};
const text = (input: Buffer): string => input.toString('utf8');

const hostprobeTarget: FuzzTarget = {
  name: 'hostprobe',
  what: 'the host probe\'s /proc and auth-log parsers (parseLoadavg, parseMeminfo, parseUptime, parseProcStat, authFailure)',
  allowed: [],
  sample: (rng) =>
    Buffer.from(
      rng.pick([
        `${rng.int(9)}.${rng.range(10, 99)} 0.44 0.22 3/105 ${rng.int(99999)}\n`,
        `MemTotal:       ${rng.int(1e8)} kB\nMemFree:        1000 kB\nMemAvailable:   ${rng.int(1e8)} kB\n`,
        `${rng.int(1e6)}.${rng.range(10, 99)} 1234.56\n`,
        `${rng.int(99999)} (${rng.pick(['bash', 'a) b (c', 'kworker/0:1', ''])}) S ${rng.int(99999)} 1 1 0 -1 4194560`,
        `Nov 30 10:00:00 host sshd[${rng.int(9999)}]: Failed password for ${rng.pick(['root', 'invalid user é', '\u0000'])} from 10.0.0.1 port 22 ssh2`,
      ]),
      'utf8',
    ),
  run(input) {
    const t = text(input);
    const load = parseLoadavg(t);
    if (load && ![load.load1, load.load5, load.load15].every((x) => Number.isFinite(x) && x >= 0)) fail(`load ${JSON.stringify(load)}`);
    const mem = parseMeminfo(t);
    if (mem && !(Number.isSafeInteger(mem.memTotalKb) && Number.isSafeInteger(mem.memAvailableKb))) fail(`meminfo ${JSON.stringify(mem)}`);
    const up = parseUptime(t);
    if (up !== undefined && !(Number.isSafeInteger(up) && up >= 0)) fail(`uptime ${up}`);
    const stat = parseProcStat(t);
    if (stat && !(Number.isSafeInteger(stat.ppid) && stat.ppid >= 0 && stat.comm.length <= t.length)) fail(`stat ${JSON.stringify(stat)}`);
    const auth = authFailure('auth.log', t, 512);
    if (auth && auth.line.length > 512) fail(`an auth line of ${auth.line.length} chars`);
  },
};

const COMMAND = { type: 'monitor.command', id: 'c-1', agent: 'agent', issuer: 'analyst', enable: [{ set: 'syscalls', syscalls: ['openat', 'execve'] }, { set: 'proclist', periodMs: 500 }], disable: ['files'], dryRun: false };

const commandTarget: FuzzTarget = {
  name: 'monitor-command',
  what: 'a control command from monitor.control: JSON.parse then parseCommand, as the agent takes one',
  allowed: ['FIT_ERR_MONITOR_CONFIG'],
  sample: (rng) => Buffer.from(JSON.stringify({ ...COMMAND, id: `c-${rng.int(1e6)}`, dryRun: rng.chance(0.5) }), 'utf8'),
  mutateInput: jsonMutator,
  run(input) {
    let value: unknown;
    try {
      value = JSON.parse(text(input));
    } catch {
      return; // the agent counts an event that is not JSON as invalid before it gets here
    }
    const c = parseCommand(value);
    if (c.enable.length + c.disable.length === 0 && !c.dryRun) return;
    for (const s of c.enable) if (s.set === 'syscalls' && s.syscalls !== 'all' && s.syscalls.length === 0) fail('an empty syscall list was accepted');
  },
};

const STRACE_LINES = [
  '1234 1700000000.123456 openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3',
  '[pid 1235] 1700000000.123457 read(3, "fitbroker\\n", 4096) = 10',
  '1234 1700000000.2 execve("/bin/cat", ["cat", "/etc/\\"x\\")\\n"], 0x7ffd /* 12 vars */ <unfinished ...>',
  '1234 1700000000.3 <... execve resumed>) = 0',
  '1236 1700000000.4 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=1235} ---',
  '1236 1700000000.5 +++ exited with 3 +++',
  '1234 1700000000.6 openat(AT_FDCWD, "/nonexistent", O_RDONLY) = -1 ENOENT (No such file or directory)',
];

const straceTarget: FuzzTarget = {
  name: 'strace',
  what: "strace's output about a monitored process (which picks its own paths): parseStraceLine and the assembler",
  allowed: [],
  sample: (rng) => Buffer.from(Array.from({ length: rng.range(1, 5) }, () => rng.pick(STRACE_LINES)).join('\n'), 'utf8'),
  run(input) {
    const assemble = straceAssembler(1234);
    let calls = 0;
    for (const line of text(input).split('\n')) {
      const parsed = parseStraceLine(line);
      for (const call of assemble.push(parsed)) {
        calls++;
        if (typeof call.syscall !== 'string' || !Array.isArray(call.args)) fail(`a call of ${JSON.stringify(call).slice(0, 80)}`);
        if (call.result !== null && !Number.isFinite(call.result)) fail(`result ${call.result}`);
      }
    }
    calls += assemble.flush().length;
    if (calls > input.length) fail(`${calls} calls out of ${input.length} bytes`);
  },
};

const recorded = JSON.parse(readFileSync(new URL('../../../test/fixtures/gdbstub-qemu.json', import.meta.url), 'utf8')) as { exchange: { from: string; bytes: string }[] };
const STUB_STREAM = Buffer.from(recorded.exchange.filter((c) => c.from === 'stub').map((c) => c.bytes).join(''), 'latin1');

const gdbTarget: FuzzTarget = {
  name: 'gdb-stub',
  what: "a gdbstub's byte stream (recorded from QEMU 7.2, mutated) cut into chunks: PacketReader, then each payload as a stop reply, registers, segment bases and memory",
  allowed: ['FIT_ERR_VMI'],
  sample: (rng: Rng) => {
    const from = rng.int(STUB_STREAM.length);
    return STUB_STREAM.subarray(from, Math.min(STUB_STREAM.length, from + rng.range(1, 2000)));
  },
  run(input, rng) {
    const reader = new PacketReader();
    for (let at = 0; at < input.length; ) {
      const n = rng.range(1, 64);
      for (const r of reader.push(input.subarray(at, at + n))) {
        if (r.kind !== 'packet') continue;
        if (r.payload.length > input.length * 64) fail(`a payload of ${r.payload.length} bytes from ${input.length}`);
        parseStop(r.payload);
        // Each of these refuses what is not its shape with FIT_ERR_VMI; the first refusal ends the case.
        parseRegisters(r.payload);
        parseGsBases(r.payload);
        parseMemory(r.payload, Math.floor(r.payload.length / 2));
      }
      at += n;
    }
  },
};

const PROFILE_SAMPLE = readFileSync(new URL('../../../test/fixtures/btf-pt_regs.txt', import.meta.url), 'utf8');
const KALLSYMS = 'ffffffff82a1aa40 D init_task\n000000000001fb80 A current_task\nffffffff813613e0 T __x64_sys_openat\n';

const profileTarget: FuzzTarget = {
  name: 'vmi-profile',
  what: 'the introspection profile\'s inputs: bpftool\'s BTF dump, /proc/kallsyms lines, profile.json',
  allowed: [],
  sample: (rng) => Buffer.from(rng.pick([PROFILE_SAMPLE, KALLSYMS, JSON.stringify({ version: 1, kernel: 'k', symbols: { init_task: 'ffff', current_task: '1fb80' } })]), 'utf8'),
  run(input) {
    const t = text(input);
    for (const [, layout] of parseBtfStructs(t, ['pt_regs', 'task_struct'])) for (const [m, off] of layout) if (!Number.isFinite(off) || off < 0) fail(`${m} at ${off}`);
    for (const [n, a] of parseKallsyms(t)) if (a < 0n || a >= 1n << 64n || n.length === 0) fail(`symbol ${n} at ${a}`);
    try {
      profileSchema.safeParse(JSON.parse(t));
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
    }
  },
};

export const MONITOR_TARGETS: readonly FuzzTarget[] = [hostprobeTarget, commandTarget, straceTarget, gdbTarget, profileTarget];
