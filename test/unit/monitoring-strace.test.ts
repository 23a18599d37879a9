// The strace output parser (src/monitoring/strace-parse.ts) on lines recorded from strace 6.1
// (`strace -f -ttt -s 256 -e trace=all -qq -o FILE`): every call comes out once, complete,
// with its pid, entry time, arguments split where strace meant them split, and its result.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResult, parseStraceLine, splitArgs, straceAssembler, type StraceCall } from '../../src/monitoring/strace.js';

const T = 1796029125;
const at = (frac: string): number => T * 1e9 + Number(frac.padEnd(9, '0'));

function assemble(lines: string[], defaultPid: number | null = null): StraceCall[] {
  const a = straceAssembler(defaultPid);
  const out = lines.flatMap((l) => a.push(parseStraceLine(l)));
  return [...out, ...a.flush()];
}

test('a complete call: pid, epoch time in ns, name, arguments and result', () => {
  const l = parseStraceLine(`7639  ${T}.104498 openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3`);
  assert.deepEqual(l, { kind: 'call', pid: 7639, atEpochNs: at('104498'), syscall: 'openat', argsText: 'AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC', result: 3 });
  assert.deepEqual(assemble([`7639  ${T}.104498 openat(AT_FDCWD, "/etc/hostname", O_RDONLY|O_CLOEXEC) = 3`])[0]!.args, ['AT_FDCWD', '"/etc/hostname"', 'O_RDONLY|O_CLOEXEC']);
});

test('the pid prefix may be absent (one process) or in the [pid N] form strace uses on stderr', () => {
  const bare = parseStraceLine(`${T}.000001 getpid() = 42`);
  assert.equal(bare.kind, 'call');
  assert.equal(bare.pid, null);
  assert.equal(assemble([`${T}.000001 getpid() = 42`], 42)[0]!.pid, 42);
  const bracketed = parseStraceLine(`[pid  7640] ${T}.5 close(3) = 0`);
  assert.equal(bracketed.pid, 7640);
  assert.equal((bracketed as { atEpochNs: number }).atEpochNs, at('5'));
});

test('failures become -errno from os.constants.errno; restart codes, hex and annotated results are numbers', () => {
  assert.equal(parseResult('-1 ENOENT (No such file or directory)'), -2);
  assert.equal(parseResult('-1 EACCES (Permission denied)'), -13);
  assert.equal(parseResult('-1 EAGAIN (Resource temporarily unavailable)'), -11);
  assert.equal(parseResult('? ERESTARTSYS (To be restarted if SA_RESTART is set)'), -512);
  assert.equal(parseResult('? ERESTART_RESTARTBLOCK (Interrupted by signal)'), -516);
  assert.equal(parseResult('-1 ERESTARTNOHAND (To be restarted if no handler)'), -514);
  assert.equal(parseResult('0x55d1a4f3e000'), 0x55d1a4f3e000);
  assert.equal(parseResult('0 (Timeout)'), 0);
  assert.equal(parseResult('0x1 (flags FD_CLOEXEC)'), 1);
  assert.equal(parseResult('1 ([{fd=3, revents=POLLIN}])'), 1);
  assert.equal(parseResult('?'), null);
  const l = parseStraceLine(`7638  ${T}.092468 access("/etc/ld.so.preload", R_OK) = -1 ENOENT (No such file or directory)`);
  assert.equal(l.kind === 'call' && l.result, -2);
});

test('exit_group and a call interrupted by the exit return `?`: result null', () => {
  const calls = assemble([`7639  ${T}.115996 exit_group(0)                   = ?`]);
  assert.deepEqual(calls, [{ pid: 7639, atEpochNs: at('115996'), syscall: 'exit_group', args: ['0'], result: null }]);
});

test('arguments split at top-level commas only: quotes with escapes, brackets, braces, parentheses, comments', () => {
  assert.deepEqual(splitArgs('"a, \\"b\\", c", 3'), ['"a, \\"b\\", c"', '3']);
  assert.deepEqual(splitArgs('"/usr/bin/cat", ["cat", "/etc/hostname"], 0x560704917ae8 /* 35 vars */'), ['"/usr/bin/cat"', '["cat", "/etc/hostname"]', '0x560704917ae8 /* 35 vars */']);
  assert.deepEqual(splitArgs('SIGINT, {sa_handler=0x55, sa_mask=[INT QUIT], sa_flags=SA_RESTORER, sa_restorer=0x7f}, NULL, 8'), ['SIGINT', '{sa_handler=0x55, sa_mask=[INT QUIT], sa_flags=SA_RESTORER, sa_restorer=0x7f}', 'NULL', '8']);
  assert.deepEqual(splitArgs('-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL'), ['-1', '[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]', '0', 'NULL']);
  assert.deepEqual(splitArgs('3, 0x7ffd /* a, b) */, 5'), ['3', '0x7ffd /* a, b) */', '5']);
  assert.deepEqual(splitArgs('1, "aaaaaaaaaaaaaaaa"..., 41'), ['1', '"aaaaaaaaaaaaaaaa"...', '41']);
  assert.deepEqual(splitArgs('"\\\\", 1'), ['"\\\\"', '1']);
  assert.deepEqual(splitArgs(''), []);
});

test('a ")" inside a string, a comment or brackets does not end the argument list', () => {
  const l = parseStraceLine(`12  ${T}.1 write(1, "a) = 5 (b", 9) = 9`);
  assert.equal(l.kind, 'call');
  assert.equal(l.kind === 'call' && l.argsText, '1, "a) = 5 (b", 9');
  assert.equal(l.kind === 'call' && l.result, 9);
  const e = parseStraceLine(`12  ${T}.2 execve("/bin/x", ["x", ")"], 0x7ffd /* 3 vars) */) = 0`);
  assert.equal(e.kind === 'call' && e.result, 0);
  assert.deepEqual(assemble([`12  ${T}.2 execve("/bin/x", ["x", ")"], 0x7ffd /* 3 vars) */) = 0`])[0]!.args, ['"/bin/x"', '["x", ")"]', '0x7ffd /* 3 vars) */']);
});

test('<unfinished ...> and <... resumed> pair per pid, interleaved with other pids, at the entry time', () => {
  const calls = assemble([
    `7638  ${T}.099947 vfork( <unfinished ...>`,
    `7639  ${T}.100217 execve("/usr/bin/cat", ["cat", "/etc/hostname"], 0x560704917ae8 /* 35 vars */ <unfinished ...>`,
    `7638  ${T}.100333 <... vfork resumed>) = 7639`,
    `7638  ${T}.100402 wait4(-1,  <unfinished ...>`,
    `7639  ${T}.100412 <... execve resumed>) = 0`,
    `7639  ${T}.104498 openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = 3`,
    `7639  ${T}.115996 exit_group(0)                   = ?`,
    `7638  ${T}.116289 <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 7639`,
    `7638  ${T}.116310 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=7639, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---`,
  ]);
  assert.deepEqual(
    calls.map((c) => [c.pid, c.syscall, c.atEpochNs, c.args, c.result]),
    [
      [7638, 'vfork', at('099947'), [], 7639],
      [7639, 'execve', at('100217'), ['"/usr/bin/cat"', '["cat", "/etc/hostname"]', '0x560704917ae8 /* 35 vars */'], 0],
      [7639, 'openat', at('104498'), ['AT_FDCWD', '"/etc/hostname"', 'O_RDONLY'], 3],
      [7639, 'exit_group', at('115996'), ['0'], null],
      [7638, 'wait4', at('100402'), ['-1', '[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]', '0', 'NULL'], 7639],
    ],
  );
});

test('a call cut short by a detach or the end of the output is emitted once, result null', () => {
  assert.deepEqual(assemble([`7863  ${T}.267719 wait4(-1,  <detached ...>`]), [{ pid: 7863, atEpochNs: at('267719'), syscall: 'wait4', args: ['-1'], result: null }]);
  const split = assemble([`7863  ${T}.1 read(0,  <unfinished ...>`, `7863  ${T}.2 <... read resumed> <detached ...>`]);
  assert.deepEqual(split, [{ pid: 7863, atEpochNs: at('1'), syscall: 'read', args: ['0'], result: null }]);
  const flushed = assemble([`9  ${T}.1 nanosleep({tv_sec=30, tv_nsec=0},  <unfinished ...>`]);
  assert.deepEqual(flushed, [{ pid: 9, atEpochNs: at('1'), syscall: 'nanosleep', args: ['{tv_sec=30, tv_nsec=0}'], result: null }]);
});

test('exit and signal lines are recognized and end a pending call; other lines are ignored', () => {
  assert.deepEqual(parseStraceLine(`5  ${T}.3 +++ exited with 3 +++`), { kind: 'exit', pid: 5, atEpochNs: at('3'), code: 3, signal: null });
  assert.deepEqual(parseStraceLine(`5  ${T}.3 +++ killed by SIGKILL +++`), { kind: 'exit', pid: 5, atEpochNs: at('3'), code: null, signal: 'SIGKILL' });
  assert.deepEqual(parseStraceLine(`5  ${T}.3 +++ killed by SIGSEGV (core dumped) +++`), { kind: 'exit', pid: 5, atEpochNs: at('3'), code: null, signal: 'SIGSEGV' });
  const sig = parseStraceLine(`7846  ${T}.388047 --- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_USER, si_pid=7846, si_uid=0} ---`);
  assert.equal(sig.kind === 'signal' && sig.signal, 'SIGUSR1');
  const stopped = parseStraceLine(`7846  ${T}.4 --- stopped by SIGSTOP ---`);
  assert.equal(stopped.kind === 'signal' && stopped.signal, 'SIGSTOP');
  for (const text of [`7 ${T}.1 +++ superseded by execve in pid 8 +++`, 'strace: Process 7 attached', '', 'garbage (not a call'])
    assert.equal(parseStraceLine(text).kind, 'other', text);
  const calls = assemble([`9  ${T}.1 read(0,  <unfinished ...>`, `9  ${T}.2 +++ killed by SIGKILL +++`, `9  ${T}.3 --- SIGCHLD {si_signo=SIGCHLD} ---`]);
  assert.deepEqual(calls, [{ pid: 9, atEpochNs: at('1'), syscall: 'read', args: ['0'], result: null }]);
});

test('an execve resumed in a pid that did not start it (a thread exec) is emitted from its second half', () => {
  const calls = assemble([
    `20  ${T}.1 futex(0x7f, FUTEX_WAIT, 0, NULL <unfinished ...>`,
    `21  ${T}.2 execve("/bin/true", ["true"], 0x7ffd /* 1 var */ <unfinished ...>`,
    `20  ${T}.3 +++ superseded by execve in pid 21 +++`,
    `20  ${T}.4 <... execve resumed>) = 0`,
  ]);
  assert.deepEqual(
    calls.map((c) => [c.pid, c.syscall, c.result]),
    [
      [20, 'futex', null],
      [20, 'execve', 0],
      [21, 'execve', null],
    ],
  );
});

test('restart_syscall and calls strace cannot name parse as calls', () => {
  const r = parseStraceLine(`3  ${T}.1 restart_syscall(<... resuming interrupted nanosleep ...>) = 0`);
  assert.equal(r.kind === 'call' && r.syscall, 'restart_syscall');
  const u = parseStraceLine(`3  ${T}.2 syscall_0x1b6(0x1, 0x2) = -1 ENOSYS (Function not implemented)`);
  assert.equal(u.kind === 'call' && u.result, -38);
});
