// The command-line contract from the issue, run as a user runs it: real `fitbroker` processes
// against a real cluster on loopback. Names, flags and output fields here are what tools
// outside the project depend on.

import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, runCliAsync, sleep, startCluster, type TestCluster } from '../helpers/cluster.js';

describe('fitbroker CLI against a running 4-replica cluster', { timeout: 120_000 }, () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster({ channels: ['alerts', 'metrics', 'ids', 'red', 'blue'], clients: [{ name: 'siem1', role: 'sub' }, { name: 'siem2', role: 'sub' }] });
  });
  after(() => c.stop());

  it('status --wait exits 0 once a quorum answers and shows every replica', () => {
    const r = runCli(['status', '--dir', c.dir, '--wait', '20']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /4 of 4 replicas reachable/);
    for (let i = 0; i < 4; i++) assert.match(r.stdout, new RegExp(`replica ${i} 127\\.0\\.0\\.1:\\d+\\s+up`));
    const j = runCli(['status', '--dir', c.dir, '--json']);
    const parsed = JSON.parse(j.stdout) as { reachable: number; replicas: { status: { channels: { tag: string }[] } }[] };
    assert.equal(parsed.reachable, 4);
    assert.deepEqual(parsed.replicas[0]!.status.channels.map((ch) => ch.tag), ['alerts', 'metrics', 'ids', 'red', 'blue']);
  });

  it('subscribes to several channels at once with --channel A,B', () => {
    assert.equal(runCli(['publish', '--dir', c.dir, '--as', 'probe', '--channel', 'red'], 'a1\na2\n').code, 0);
    assert.equal(runCli(['publish', '--dir', c.dir, '--as', 'probe', '--channel', 'blue'], 'm1\n').code, 0);
    const s = runCli(['subscribe', '--dir', c.dir, '--as', 'siem2', '--channel', 'red,blue', '--count', '3', '--timeout', '20']);
    assert.equal(s.code, 0, s.stderr);
    const got = s.stdout.trim().split('\n').map((l) => JSON.parse(l) as { channel: string; content: string });
    assert.deepEqual(got.map((e) => `${e.channel}:${e.content}`).sort(), ['blue:m1', 'red:a1', 'red:a2']);
    assert.match(s.stderr, /delivered 3 events from red,blue as siem2/);
    const bad = runCli(['subscribe', '--dir', c.dir, '--as', 'siem2', '--channel', 'red,nope', '--count', '1', '--timeout', '5']);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /FIT_ERR_UNKNOWN_CHANNEL: channel "nope" is not in/);
  });

  it('delivers events published before the console connects, as JSON lines with the documented fields', () => {
    const p = runCli(['publish', '--dir', c.dir, '--as', 'probe', '--channel', 'alerts'], 'disk full\nlogin failed\n{"user":"root","ok":false}\n');
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stderr, /published 3 events to alerts as probe .* acknowledged by 3 of 4 replicas \(bft\)/);
    const s = runCli(['subscribe', '--dir', c.dir, '--as', 'console', '--channel', 'alerts', '--count', '3', '--timeout', '20']);
    assert.equal(s.code, 0, s.stderr);
    const lines = s.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => l.content), ['disk full', 'login failed', { user: 'root', ok: false }]);
    for (const l of lines) {
      assert.deepEqual(Object.keys(l), ['channel', 'publisher', 'id', 'timestamp', 'priority', 'content']);
      assert.equal(l.channel, 'alerts');
      assert.equal(l.publisher, 'probe');
      assert.match(String(l.id), /^[0-9a-f]{16}-\d+$/);
      assert.ok(!Number.isNaN(Date.parse(String(l.timestamp))));
      assert.equal(l.priority, 0);
    }
    assert.match(s.stderr, /delivered 3 events from alerts as console; all replica copies agreed/);
  });

  it('gives two subscribe processes of the same client every event each', async () => {
    const a = runCliAsync(['subscribe', '--dir', c.dir, '--as', 'siem1', '--channel', 'metrics', '--count', '5', '--timeout', '20']);
    const b = runCliAsync(['subscribe', '--dir', c.dir, '--as', 'siem1', '--channel', 'metrics', '--count', '5', '--timeout', '20']);
    await sleep(1500);
    const p = runCli(['publish', '--dir', c.dir, '--as', 'probe', '--channel', 'metrics'], 'm1\nm2\nm3\nm4\nm5\n');
    assert.equal(p.code, 0, p.stderr);
    for (const r of await Promise.all([a, b])) {
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { content: string }).content), ['m1', 'm2', 'm3', 'm4', 'm5']);
    }
  });

  it('never reuses an event id across publish runs, sequential or concurrent', async () => {
    const args = ['publish', '--dir', c.dir, '--as', 'probe', '--channel', 'ids'];
    assert.equal(runCli(args, 'seq-a1\nseq-a2\n').code, 0);
    assert.equal(runCli(args, 'seq-b1\nseq-b2\n').code, 0);
    const both = await Promise.all([runCliAsync(args, 'con-c1\ncon-c2\n'), runCliAsync(args, 'con-d1\ncon-d2\n')]);
    for (const r of both) assert.equal(r.code, 0, r.stderr);
    const s = runCli(['subscribe', '--dir', c.dir, '--as', 'console', '--channel', 'ids', '--count', '8', '--timeout', '20']);
    assert.equal(s.code, 0, s.stderr);
    const events = s.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; content: string });
    assert.equal(new Set(events.map((e) => e.id)).size, 8, `ids repeat: ${events.map((e) => e.id).join(' ')}`);
    assert.deepEqual(events.map((e) => e.content).sort(), ['con-c1', 'con-c2', 'con-d1', 'con-d2', 'seq-a1', 'seq-a2', 'seq-b1', 'seq-b2']);
  });

  it('lets an urgent event overtake queued ones', () => {
    const normal = Array.from({ length: 200 }, (_, i) => `routine ${i}`).join('\n');
    assert.equal(runCli(['publish', '--dir', c.dir, '--as', 'probe', '--channel', 'alerts'], `${normal}\n`).code, 0);
    assert.equal(runCli(['publish', '--dir', c.dir, '--as', 'probe', '--channel', 'alerts', '--priority', '3'], 'intrusion detected\n').code, 0);
    const s = runCli(['subscribe', '--dir', c.dir, '--as', 'console', '--channel', 'alerts', '--count', '1', '--timeout', '20']);
    assert.equal(s.code, 0, s.stderr);
    const first = JSON.parse(s.stdout.trim().split('\n')[0]!) as { content: string; priority: number };
    assert.deepEqual([first.content, first.priority], ['intrusion detected', 3]);
    // Drain the rest so later tests start from an empty queue.
    assert.equal(runCli(['subscribe', '--dir', c.dir, '--as', 'console', '--channel', 'alerts', '--count', '200', '--timeout', '20']).code, 0);
  });

  it('fails subscribe with --count on timeout, naming what was missing', () => {
    const s = runCli(['subscribe', '--dir', c.dir, '--as', 'console', '--channel', 'alerts', '--count', '1', '--timeout', '1']);
    assert.notEqual(s.code, 0);
    assert.match(s.stderr, /FIT_ERR_QUORUM_TIMEOUT: timed out after 1 s with 0 of 1 events delivered from alerts/);
  });

  it('refuses a client that may not publish, naming channel and client', () => {
    const r = runCli(['publish', '--dir', c.dir, '--as', 'console', '--channel', 'alerts'], 'x\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FIT_ERR_NOT_AUTHORIZED: client "console" may not publish on channel "alerts"/);
    const u = runCli(['publish', '--dir', c.dir, '--as', 'probe', '--channel', 'nope'], 'x\n');
    assert.match(u.stderr, /FIT_ERR_UNKNOWN_CHANNEL: channel "nope"/);
  });
});

describe('fitbroker CLI errors without a cluster', { timeout: 60_000 }, () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster({ replicas: 4 });
    await Promise.all([0, 1, 2, 3].map((i) => c.kill(i)));
  });
  after(() => c.stop());

  it('status --wait exits non-zero with a clear message when no quorum answers', () => {
    const r = runCli(['status', '--dir', c.dir, '--wait', '1']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /FIT_ERR_QUORUM_TIMEOUT: only 0 of 4 replicas answered within 1 s, a quorum needs 3/);
  });

  it('publish exits non-zero when the quorum never acknowledges', () => {
    const r = runCli(['publish', '--dir', c.dir, '--as', 'probe', '--channel', 'alerts', '--timeout', '1'], 'x\n');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /FIT_ERR_QUORUM_TIMEOUT: 1 events were not acknowledged by 3 replicas/);
  });

  it('refuses fault injection unless FITBROKER_ALLOW_FAULTS=1', () => {
    const env = { FITBROKER_ALLOW_FAULTS: '' };
    const r = runCli(['replica', '--dir', c.dir, '--id', '0', '--fault', 'mute'], undefined, env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FIT_ERR_FAULTS_NOT_ALLOWED/);
    const u = runCli(['up', '--dir', c.dir, '--fault', '1:tamper'], undefined, env);
    assert.match(u.stderr, /FIT_ERR_FAULTS_NOT_ALLOWED/);
    const bad = runCli(['up', '--dir', c.dir, '--fault', '1:lie'], undefined, { FITBROKER_ALLOW_FAULTS: '1' });
    assert.match(bad.stderr, /FIT_ERR_USAGE: unknown fault "lie"/);
  });

  it('rejects a hand-edited config with the file, the key and what is expected', () => {
    const file = join(c.dir, 'cluster.yaml');
    const good = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, good.replace('capacityEvents:', 'capacty:'));
      const r = runCli(['status', '--dir', c.dir]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`FIT_ERR_CONFIG: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: channels\\.alerts: expected no unknown keys, found capacty`));
      writeFileSync(file, good.replace('f: 1', 'f: 2'));
      assert.match(runCli(['status', '--dir', c.dir]).stderr, /channels\.alerts\.fault: bft with f=2 needs at least 7 replicas \(3f\+1\), the config lists 4/);
    } finally {
      writeFileSync(file, good);
    }
  });

  it('init refuses to overwrite a cluster without --force, and validates --clients', () => {
    assert.match(runCli(['init', '--dir', c.dir]).stderr, /already exists; pass --force/);
    assert.match(runCli(['init', '--dir', `${c.dir}/x`, '--clients', 'siem1:reader']).stderr, /--clients: "siem1:reader" is not NAME:ROLE/);
  });

  it('init --overflow writes the policy of every unordered channel it creates, and refuses an unknown one', () => {
    const dir = `${c.dir}/overflow`;
    const r = runCli(['init', '--dir', dir, '--channels', 'alerts,audit', '--ordered', 'ledger', '--overflow', 'block']);
    assert.equal(r.code, 0, r.stderr);
    const yaml = readFileSync(`${dir}/cluster.yaml`, 'utf8');
    // The monitor.* channels init adds keep drop-oldest: an analyst reading part of them must not hold up the agent.
    assert.deepEqual([...yaml.matchAll(/overflow: (\S+)/g)].map((m) => m[1]), ['block', 'block', 'drop-oldest', ...Array(6).fill('drop-oldest')]);
    const bad = runCli(['init', '--dir', `${dir}2`, '--overflow', 'drop-all']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--overflow <policy>' argument 'drop-all' is invalid\. Allowed choices are drop-oldest, drop-newest, block/);
  });
});

test('init --protection and the keys commands on the command line: default pks, rings for ha/pke channels, rotation keeps the old key, clear refusals', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fitbroker-keys-'));
  try {
    assert.equal(runCli(['init', '--dir', join(dir, 'plain'), '--channels', 'x', '--no-monitoring']).code, 0);
    assert.match(readFileSync(join(dir, 'plain', 'cluster.yaml'), 'utf8'), /protection: pks/, 'pks by default');
    const noRing = runCli(['keys', 'channel', '--dir', join(dir, 'plain'), 'x']);
    assert.equal(noRing.code, 2);
    assert.match(noRing.stderr, /protection: pks, which needs no channel key; set protection: ha or pke/);
    const bogus = runCli(['init', '--dir', join(dir, 'bogus'), '--protection', 'bogus']);
    assert.notEqual(bogus.code, 0);
    assert.match(bogus.stderr, /Allowed choices are si, ha, pks, pke/);

    const d = join(dir, 'ha');
    assert.equal(runCli(['init', '--dir', d, '--channels', 'alerts', '--protection', 'ha', '--no-monitoring']).code, 0);
    assert.match(readFileSync(join(d, 'cluster.yaml'), 'utf8'), /protection: ha/);
    const again = runCli(['keys', 'channel', '--dir', d, 'alerts']);
    assert.equal(again.code, 2, 'init made the ring; creating it again is refused');
    assert.match(again.stderr, /already exists; use `fitbroker keys rotate --channel alerts`/);
    const rotate = runCli(['keys', 'rotate', '--dir', d, '--channel', 'alerts']);
    assert.equal(rotate.code, 0, rotate.stderr);
    const list = runCli(['keys', 'list', '--dir', d]);
    assert.equal(list.code, 0, list.stderr);
    const rows = list.stdout.split('\n').filter((l) => /^channel\s+alerts\s/.test(l));
    assert.equal(rows.length, 2, `the rotated ring keeps its old key beside the new one:\n${list.stdout}`);
    assert.equal(rows.filter((l) => / yes {6}yes /.test(l)).length, 1, 'one current key');
    for (const kind of ['replica  replica-0', 'client   probe', 'client   admin']) assert.ok(list.stdout.includes(kind), `keys list shows ${kind}`);

    // Identities made on the host that uses them: refused over an existing file or a name the cluster knows.
    const replicaKey = runCli(['keys', 'replica', '2', '--dir', join(dir, 'replica-host'), '--json']);
    assert.equal(replicaKey.code, 0, replicaKey.stderr);
    assert.match(JSON.parse(replicaKey.stdout).publicKey as string, /^MCowBQYDK2VwAyEA[A-Za-z0-9+/]{43}=$/, 'an Ed25519 SPKI key as cluster.yaml holds it');
    const twice = runCli(['keys', 'replica', '2', '--dir', join(dir, 'replica-host')]);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /keys\/replica-2\.pem already exists; pass --force to replace it/);
    assert.equal(runCli(['keys', 'replica', '2', '--dir', join(dir, 'replica-host'), '--force']).code, 0);
    const noSuch = runCli(['keys', 'replica', '7', '--dir', d]);
    assert.equal(noSuch.code, 2);
    assert.match(noSuch.stderr, /has no replica 7 \(replicas 0, 1, 2, 3\); the replica set is fixed in cluster.yaml/);
    const badName = runCli(['keys', 'client', 'no spaces', '--dir', d]);
    assert.equal(badName.code, 2);
    assert.match(badName.stderr, /"no spaces" is not a valid client name/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
