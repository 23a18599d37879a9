// Monitoring sets and control commands (docs/monitoring.md): a bad spec or command is a
// FIT_ERR_MONITOR_CONFIG that names what is wrong; a refused command changes nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FitError } from '../../src/core/index.js';
import { EMPTY_CONFIG, applyCommand, applySetChange, commandAckSchema, commandRefusalSchema, ackFor, formatConfig, parseCommand, parseSetChange, parseSetSpec, refusalFor, type MonitorConfig } from '../../src/monitoring/index.js';

function throwsMonitor(f: () => unknown, message: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_MONITOR_CONFIG' && message.test(e.message), String(message));
}

test('the CLI form parses into set specs with defaults', () => {
  assert.deepEqual(parseSetSpec('syscalls:openat,execve'), { set: 'syscalls', syscalls: ['openat', 'execve'] });
  assert.deepEqual(parseSetSpec('syscalls'), { set: 'syscalls', syscalls: 'all' });
  assert.deepEqual(parseSetSpec('syscalls:all'), { set: 'syscalls', syscalls: 'all' });
  assert.deepEqual(parseSetSpec('proclist:500'), { set: 'proclist', periodMs: 500 });
  assert.deepEqual(parseSetSpec('proclist'), { set: 'proclist', periodMs: 1000 });
  assert.deepEqual(parseSetSpec('files:2000'), { set: 'files', periodMs: 2000 });
});

test('a bad set spec is FIT_ERR_MONITOR_CONFIG saying what is wrong', () => {
  throwsMonitor(() => parseSetSpec('proclsit:500'), /unknown monitoring set "proclsit": the sets are proclist, syscalls, files/);
  throwsMonitor(() => parseSetSpec('proclist:5'), /periodMs must be at least 10 ms/);
  throwsMonitor(() => parseSetSpec('proclist:fast'), /period in whole milliseconds/);
  throwsMonitor(() => parseSetSpec('proclist:0.5'), /period in whole milliseconds/);
  throwsMonitor(() => parseSetSpec('syscalls:'), /nothing after ":"/);
  throwsMonitor(() => parseSetSpec('syscalls:Open'), /syscalls\.0: a syscall name is lower case/);
  throwsMonitor(() => parseSetSpec('syscalls:read,read'), /listed twice/);
  throwsMonitor(() => parseSetChange(['proclist:500'], ['proclist']), /names proclist more than once/);
});

test('a set change enables, updates and disables, and reports each effect', () => {
  const a = applySetChange(EMPTY_CONFIG, parseSetChange(['proclist:500', 'syscalls:openat'], []));
  assert.equal(formatConfig(a.config), 'proclist:500 syscalls:openat');
  assert.deepEqual(a.effects.map((e) => `${e.action} ${e.set}`), ['enable proclist', 'enable syscalls']);
  const b = applySetChange(a.config, parseSetChange(['syscalls:openat,execve', 'proclist:500'], []));
  assert.deepEqual(b.effects.map((e) => `${e.action} ${e.set}`), ['update syscalls'], 'same parameters: no effect');
  const c = applySetChange(b.config, parseSetChange([], ['proclist']));
  assert.equal(formatConfig(c.config), 'syscalls:openat,execve');
  assert.equal(formatConfig(a.config), 'proclist:500 syscalls:openat', 'the input configuration is not modified');
});

const command = (over: Record<string, unknown> = {}): unknown => ({ type: 'monitor.command', id: 'c1', agent: 'vm1', issuer: 'analyst', enable: [{ set: 'proclist', periodMs: 500 }], ...over });
const ctx = { agent: 'vm1', supports: ['proclist', 'syscalls', 'files'] as const };

test('a valid command parses with defaults; a bad one is FIT_ERR_MONITOR_CONFIG with its path', () => {
  const c = parseCommand(command());
  assert.equal(c.dryRun, false);
  assert.deepEqual(c.disable, []);
  throwsMonitor(() => parseCommand(command({ enable: [], disable: [] })), /enables or disables at least one set/);
  throwsMonitor(() => parseCommand(command({ enable: [{ set: 'proclist', periodMs: -1 }] })), /enable\.0\.periodMs: periodMs must be at least 10/);
  throwsMonitor(() => parseCommand(command({ agent: '' })), /agent: a name of letters/);
  throwsMonitor(() => parseCommand(command({ colour: 'red' })), /colour/);
  throwsMonitor(() => parseCommand(command({ disable: ['everything'] })), /disable\.0/);
  throwsMonitor(() => parseCommand('not an object'), /control command/);
});

test('a refused command changes nothing and says why', () => {
  const config: MonitorConfig = { proclist: { periodMs: 1000 } };
  const frozen = JSON.stringify(config);
  const cases: [unknown, string, RegExp][] = [
    [command({ agent: 'vm2' }), 'wrong-agent', /for agent vm2, not vm1/],
    [command({ enable: [{ set: 'proclist', periodMs: 100 }], disable: ['proclist'] }), 'invalid', /names proclist more than once/],
    [command({ enable: [], disable: ['syscalls'] }), 'not-active', /syscalls is not active.*active: proclist/],
  ];
  for (const [raw, reason, message] of cases) {
    const out = applyCommand(config, parseCommand(raw), ctx);
    assert.equal(out.ok, false);
    if (out.ok) continue;
    assert.equal(out.reason, reason);
    assert.match(out.message, message);
    assert.equal(JSON.stringify(config), frozen);
    const refusal = refusalFor(parseCommand(raw), 'vm1', out.reason, out.message, config, 3);
    assert.deepEqual(commandRefusalSchema.parse(refusal), refusal, 'a refusal is a valid message');
  }
  const unsupported = applyCommand(config, parseCommand(command({ enable: [{ set: 'syscalls', syscalls: 'all' }] })), { agent: 'vm1', supports: ['proclist', 'files'] });
  assert.equal(unsupported.ok ? 'applied' : unsupported.reason, 'unsupported');
});

test('an accepted command gives the new configuration and a valid ack', () => {
  const c = parseCommand(command({ enable: [{ set: 'syscalls', syscalls: ['openat'] }], disable: ['proclist'], dryRun: true }));
  const out = applyCommand({ proclist: { periodMs: 1000 } }, c, ctx);
  assert.ok(out.ok);
  assert.deepEqual(out.config, { syscalls: { syscalls: ['openat'] } });
  const ack = ackFor(c, out.config, 0, out.effects, null);
  assert.deepEqual(commandAckSchema.parse(ack), ack);
});
