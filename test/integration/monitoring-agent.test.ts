// The monitoring agent on a real cluster: `fitbroker monitor` (sim back end, real time) as a
// process, commands through `fitbroker reconfigure` and raw publishes on monitor.control,
// answers read from monitor.status, data from monitor.syscalls and monitor.proclist, reports
// from monitor.perf. Reconfiguration takes effect and loses or duplicates nothing; invalid,
// spoofed and unauthorized commands change nothing.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Publisher } from '../../src/client/index.js';
import { clientKeyPath, type ClusterConfig } from '../../src/config/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import type { BrokerEvent, ClientInfo } from '../../src/core/index.js';
import { CLI, runCliAsync, sleep, startCluster, type TestCluster } from '../helpers/cluster.js';

interface Seen {
  set: string;
  seq: number;
  syscall?: string;
  configVersion: number;
}

function withClient(config: ClusterConfig, client: Partial<ClientInfo> & { id: string }): ClusterConfig {
  const clients = new Map(config.table.clients);
  clients.set(client.id, { ...clients.get(client.id)!, ...client });
  return { ...config, table: { ...config.table, clients } };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('monitoring agent (sim back end) on a 4-replica cluster', { timeout: 180_000 }, () => {
  let c: TestCluster;
  let agent: ChildProcess;
  let agentLog = '';
  const data: Seen[] = [];
  const status: Record<string, unknown>[] = [];
  const perf: Record<string, unknown>[] = [];

  const reconfigure = async (...args: string[]): Promise<Record<string, unknown> & { code: number | null }> => {
    const t0 = Date.now();
    const r = await runCliAsync(['reconfigure', '--dir', c.dir, '--as', 'analyst', '--agent', 'agent', '--json', '--timeout', '20', ...args]);
    if (process.env.FIT_TEST_KEEP) process.stderr.write(`reconfigure ${args.join(' ')}: ${Date.now() - t0} ms, exit ${r.code}\n`);
    assert.ok(r.stdout.trim() !== '', `reconfigure printed nothing (exit ${r.code}); stderr: ${r.stderr}`);
    return { ...(JSON.parse(r.stdout) as Record<string, unknown>), code: r.code };
  };

  before(async () => {
    c = await startCluster({ monitoring: true, channels: ['alerts'] });
    agent = spawn(process.execPath, [CLI, 'monitor', '--dir', c.dir, '--as', 'agent', '--backend', 'sim', '--sim-costs', 'ptrace', '--seed', '7', '--duration', '170'], { stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stderr!.on('data', (d: Buffer) => (agentLog += d.toString()));
    const json = (ev: BrokerEvent): Record<string, unknown> => JSON.parse(ev.content.toString('utf8')) as Record<string, unknown>;
    // Watched as console, the client an operator would watch with; reconfigure reads as analyst.
    const sub = c.subscriber('console', {
      channels: ['monitor.syscalls', 'monitor.proclist', 'monitor.status', 'monitor.perf'],
      onEvent: (ev) => {
        const m = json(ev);
        if (ev.channel === 'monitor.status') status.push(m);
        else if (ev.channel === 'monitor.perf') perf.push(m);
        else data.push({ set: String(m.set), seq: Number(m.seq), configVersion: Number(m.configVersion), ...(typeof m.syscall === 'string' ? { syscall: m.syscall } : {}) });
      },
    });
    await sub.start();
    await until('the first performance report', () => perf.length > 0);
  });

  after(async () => {
    agent.kill('SIGTERM');
    await new Promise((r) => (agent.exitCode !== null ? r(null) : agent.once('exit', r)));
    writeFileSync(join(c.dir, 'agent.log'), agentLog);
    await c.stop();
  });

  it('reports its cost on monitor.perf every second', async () => {
    const n = perf.length;
    await until('two more reports', () => perf.length >= n + 2, 5_000);
    const r = perf[perf.length - 1] as { agent: string; backend: string; supports: string[]; now: { slowdown: number | null }; target: { pid: number } };
    assert.equal(r.agent, 'agent');
    assert.equal(r.backend, 'sim');
    assert.deepEqual(r.supports, ['proclist', 'syscalls', 'files']);
    assert.equal(r.now.slowdown, 1, 'nothing active: no slowdown');
  });

  it('a command takes effect, is acknowledged with its prediction, and sets switch without loss or duplication', async () => {
    const on = await reconfigure('--enable', 'syscalls:openat,close');
    assert.equal(on.status, 'applied', JSON.stringify(on));
    assert.equal(on.code, 0);
    assert.deepEqual(on.config, { syscalls: { syscalls: ['openat', 'close'] } });
    const p = on.prediction as { slowdown: number; traps: { perComputeSec: number } };
    // The ptrace cost profile stops at every call (about 9,000/s in the web workload) at 28.4 µs.
    assert.ok(p.slowdown > 1.15 && p.slowdown < 1.4, `predicted slowdown ${p.slowdown}`);
    const v1 = Number(on.configVersion);
    await until('openat and close events', () => data.filter((d) => d.set === 'syscalls').length >= 50);
    assert.ok(data.filter((d) => d.set === 'syscalls').every((d) => d.syscall === 'openat' || d.syscall === 'close'), 'only the listed syscalls are reported');

    const swap = await reconfigure('--enable', 'proclist:100', '--disable', 'syscalls');
    assert.equal(swap.status, 'applied', JSON.stringify(swap));
    const v2 = Number(swap.configVersion);
    assert.equal(v2, v1 + 1);
    assert.deepEqual(swap.effects, [
      { set: 'syscalls', action: 'disable', previous: { set: 'syscalls', syscalls: ['openat', 'close'] } },
      { set: 'proclist', action: 'enable', params: { set: 'proclist', periodMs: 100 } },
    ]);
    await until('process lists under the new configuration', () => data.filter((d) => d.set === 'proclist').length >= 10);
    const syscallsCount = data.filter((d) => d.set === 'syscalls').length;
    await sleep(1500);
    assert.equal(data.filter((d) => d.set === 'syscalls').length, syscallsCount, 'no syscall event after the disable was acknowledged');
    for (const set of ['syscalls', 'proclist']) {
      const seqs = data.filter((d) => d.set === set).map((d) => d.seq);
      assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `${set} seqs run 1, 2, 3 … with no gap or repeat`);
    }
    assert.ok(data.filter((d) => d.set === 'syscalls').every((d) => d.configVersion === v1));
    assert.ok(data.filter((d) => d.set === 'proclist').every((d) => d.configVersion === v2));
    await until('a report measuring no trap cost any more', () => (perf[perf.length - 1] as { config: object }).config !== undefined && JSON.stringify((perf[perf.length - 1] as { config: object }).config) === '{"proclist":{"periodMs":100}}');
  });

  it('an invalid command is refused with a reason and changes nothing', async () => {
    const before = await reconfigure('--enable', 'files', '--dry-run');
    assert.equal(before.status, 'dry-run', JSON.stringify(before));
    assert.ok(before.prediction !== null, 'a dry run predicts from the latest report');
    const r = await reconfigure('--disable', 'syscalls');
    assert.equal(r.status, 'refused', JSON.stringify(r));
    assert.equal(r.reason, 'not-active');
    assert.equal(r.code, 1);
    assert.deepEqual(r.config, { proclist: { periodMs: 100 } }, 'the dry run applied nothing, the refusal changed nothing');

    const analyst = c.publisher('analyst');
    const n = status.length;
    analyst.publish('monitor.control', 'this is not a command');
    analyst.publish('monitor.control', { type: 'monitor.command', id: 'spoof-1', agent: 'agent', issuer: 'admin', enable: [{ set: 'files', periodMs: 500 }] });
    // As a restarted agent gets what its last run left unread: a command from before it started.
    analyst.publish('monitor.control', { type: 'monitor.command', id: 'old-1', agent: 'agent', issuer: 'analyst', enable: [{ set: 'files', periodMs: 500 }] }, { timestampMs: Date.now() - 600_000 });
    await analyst.flush(10_000);
    await until('three refusals', () => status.length >= n + 3);
    const [bad, spoofed, old] = status.slice(n) as { type: string; reason: string; commandId: string | null; message: string; config: object }[];
    assert.equal(old!.reason, 'stale');
    assert.match(old!.message, /before this agent started/);
    assert.equal(bad!.type, 'monitor.refusal');
    assert.equal(bad!.reason, 'invalid');
    assert.equal(bad!.commandId, null);
    assert.equal(spoofed!.reason, 'not-allowed');
    assert.match(spoofed!.message, /says it is from admin but was published by analyst/);
    assert.deepEqual(spoofed!.config, { proclist: { periodMs: 100 } });
  });

  it('a client without the grant on monitor.control is refused by the broker, and the agent never sees its command', async () => {
    // The client-side check would stop it first: give it the grant locally, as a malicious client would.
    const cfg = withClient(c.config, { id: 'console', publish: ['monitor.control'] });
    const pub = new Publisher(cfg, 'console', loadPrivateKey(clientKeyPath(c.dir, 'console'))).connect();
    const n = status.length;
    pub.publish('monitor.control', { type: 'monitor.command', id: 'intruder-1', agent: 'agent', issuer: 'console', enable: [{ set: 'syscalls', syscalls: 'all' }] });
    await assert.rejects(pub.flush(10_000), (e: { code?: string; message: string }) => e.code === 'FIT_ERR_NOT_AUTHORIZED' && /monitor\.control/.test(e.message));
    pub.close();
    await sleep(1500);
    assert.equal(status.length, n, 'no answer: the command never reached the agent');
    assert.deepEqual((perf[perf.length - 1] as { config: object }).config, { proclist: { periodMs: 100 } });
    assert.doesNotMatch(agentLog, /intruder-1/);
  });
});
