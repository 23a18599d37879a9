// Operating a cluster (docs/operations.md), on real replica processes: every replica's
// /metrics parses as strict Prometheus text during and after a run, and its counters match
// the events this test published and received; /healthz and /readyz say what an operator
// behind a load balancer needs (not ready with too few other replicas up); SIGTERM stops a
// replica cleanly within shutdownTimeoutMs, and `fitbroker up` sent SIGTERM exits 0.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientKeyPath, initCluster, loadConfig } from '../../src/config/index.js';
import { DEFAULT_LIMITS, withHugePages, type BrokerEvent } from '../../src/core/index.js';
import { loadPrivateKey } from '../../src/protection/index.js';
import { readHugePagesState } from '../../src/replica/index.js';
import { CLI, canConnect, freeBasePort, publishStream, runCli, sleep, startCluster, type TestCluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/rawclient.js';
import { Scrape } from '../helpers/prometheus.js';

const ALERTS = 400;
const ORDERS = 150;
/** Replica 2 alters what it forwards: the subscriber outvotes it and reports it as evidence. */
const TAMPERING = 2;

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, text: await r.text() };
}

async function scrape(port: number): Promise<Scrape> {
  const r = await get(port, '/metrics');
  assert.equal(r.status, 200, r.text);
  // Parsing is the first assertion: a page Prometheus would refuse fails here.
  return new Scrape(r.text);
}

/** Polls `check` (which throws while its condition does not hold) until it passes or time runs out. */
async function eventually<T>(what: string, check: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > until) throw new Error(`${what}: still failing after ${timeoutMs} ms: ${(e as Error).message}`);
      await sleep(100);
    }
  }
}

describe('operations: metrics, health, readiness and SIGTERM on a 4-replica cluster', { timeout: 180_000 }, () => {
  let c: TestCluster;
  let metricsPorts: number[];
  before(async () => {
    c = await startCluster({ channels: ['alerts'], ordered: ['orders'], protection: 'si', faults: { [TAMPERING]: ['tamper'] } });
    metricsPorts = c.config.replicas.map((r) => r.metricsPort!);
  });
  after(() => c.stop());

  it('serves /healthz and /readyz on every replica once the cluster is up', async () => {
    for (const [id, port] of metricsPorts.entries()) {
      const h = await get(port, '/healthz');
      assert.equal(h.status, 200, h.text);
      const health = JSON.parse(h.text) as { status: string; replica: number };
      assert.equal(health.status, 'ok');
      assert.equal(health.replica, id);
      const r = await eventually(`replica ${id} ready`, async () => {
        const x = await get(port, '/readyz');
        assert.equal(x.status, 200, x.text);
        return JSON.parse(x.text) as { ready: boolean; peers: { connected: number[]; needed: number } };
      });
      assert.equal(r.ready, true);
      assert.equal(r.peers.needed, 2);
    }
  });

  it('counts what the test published and received, on every replica, during and after the run', async () => {
    const delivered = new Map<string, number>([
      ['alerts', 0],
      ['orders', 0],
    ]);
    const sub = c.subscriber('console', { channels: ['alerts', 'orders'], onEvent: (e: BrokerEvent) => delivered.set(e.channel, delivered.get(e.channel)! + 1) });
    await sub.start();
    // Every replica is to count every event: linked to all four before the first one.
    const pub = await c.linkedPublisher('probe');
    // Alerts first, then orders: frames of unordered events only, then frames waiting for the order.
    for (let i = 0; i < ALERTS; i++) if (!pub.publish('alerts', `alert ${i}`)) await pub.drained();
    await pub.flush(30_000);
    // During the run: a valid page on every replica, with the clients connected, counting no
    // more than was published so far, and nothing of orders yet.
    for (const port of metricsPorts) {
      const s = await scrape(port);
      assert.ok(s.value('fitbroker_client_connections') >= 2, 'the publisher and the subscriber are connected');
      assert.ok(s.value('fitbroker_events_in_total', { channel: 'alerts' }) <= ALERTS);
      assert.equal(s.value('fitbroker_events_in_total', { channel: 'orders' }), 0);
      assert.equal(s.value('fitbroker_queue_sessions', { channel: 'alerts', client: 'console' }), 1);
    }
    for (let i = 0; i < ORDERS; i++) if (!pub.publish('orders', `order ${i}`)) await pub.drained();
    await pub.flush(30_000);
    const until = Date.now() + 30_000;
    while ((delivered.get('alerts')! < ALERTS || delivered.get('orders')! < ORDERS) && Date.now() < until) await sleep(50);
    assert.deepEqual(Object.fromEntries(delivered), { alerts: ALERTS, orders: ORDERS }, 'the subscriber delivered every event once');
    await sub.close();
    const mismatches = sub.summary().mismatches;
    assert.ok((mismatches[TAMPERING] ?? 0) > 0, `the subscriber caught replica ${TAMPERING} tampering`);

    // After the run: each replica received every event once. The publisher sends to all n and
    // keeps resending to a replica that was slow to connect, so it stays open until they all have.
    await Promise.all(
      metricsPorts.map((port, id) =>
        eventually(`replica ${id} counted every event`, async () => {
          const s = await scrape(port);
          assert.equal(s.value('fitbroker_events_in_total', { channel: 'alerts' }), ALERTS);
          assert.equal(s.value('fitbroker_events_in_total', { channel: 'orders' }), ORDERS);
        }),
      ),
    );
    pub.close();
    const pages = await Promise.all(
      metricsPorts.map((port, id) =>
        eventually(`replica ${id} saw every client go`, async () => {
          const s = await scrape(port);
          assert.equal(s.value('fitbroker_client_connections'), 0, 'every client closed');
          assert.equal(s.value('fitbroker_evidence_mismatches_total', { suspect: String(TAMPERING) }), mismatches[TAMPERING]);
          return s;
        }),
      ),
    );
    const fullySent = { alerts: 0, orders: 0 };
    for (const [id, s] of pages.entries()) {
      for (const f of s.families.values()) {
        assert.match(f.name, /^(fitbroker_|process_|nodejs_)/);
        for (const x of f.samples) assert.equal(x.labels.replica, String(id));
      }
      assert.ok(s.families.has('process_resident_memory_bytes'));
      // One session, no reconnect: each event was sent at most once, and the subscriber acknowledged them all.
      for (const ch of ['alerts', 'orders'] as const) {
        const out = s.value('fitbroker_events_out_total', { channel: ch, client: 'console' });
        const all = ch === 'alerts' ? ALERTS : ORDERS;
        assert.ok(out <= all, `replica ${id} sent ${out} ${ch} events`);
        if (out === all) fullySent[ch]++;
        // What waits for the console: at most what was published (acknowledgements on close are best effort).
        const depth = s.value('fitbroker_queue_depth_events', { channel: ch, client: 'console' });
        assert.ok(Number.isInteger(depth) && depth >= 0 && depth <= all, `replica ${id}: ${depth} ${ch} events wait for console`);
        assert.equal(s.sum('fitbroker_events_dropped_total', { channel: ch }), 0, `replica ${id} dropped nothing of ${ch}`);
        assert.equal(s.value('fitbroker_events_expired_on_arrival_total', { channel: ch }), 0);
      }
      assert.equal(s.value('fitbroker_queue_sessions', { channel: 'alerts', client: 'console' }), 0);
      for (const other of [0, 1, 3]) assert.equal(s.sum('fitbroker_evidence_mismatches_total', { suspect: String(other) }), 0, `no evidence against correct replica ${other}`);
      // The ordering protocol ordered every event of orders once on each replica.
      assert.equal(s.value('fitbroker_consensus_events_ordered_total'), ORDERS);
      assert.ok(s.value('fitbroker_consensus_last_executed_seq') >= 1);
      assert.equal(s.value('fitbroker_consensus_leader'), s.value('fitbroker_consensus_view') % 4);
      assert.equal(s.sum('fitbroker_replica_links', { direction: 'out' }), 3);
      assert.equal(s.value('fitbroker_ready'), 1);
      // Latency: every acknowledged frame was timed; ordered frames waited for the order.
      assert.ok(s.value('fitbroker_publish_ack_seconds_count', { ordered: 'false' }) >= 1);
      assert.ok(s.value('fitbroker_publish_ack_seconds_count', { ordered: 'true' }) >= 1);
      assert.ok(s.value('fitbroker_order_batch_seconds_count') >= 1);
      // A frame whose events the others had ordered before it arrived is acknowledged without waiting.
      assert.ok(s.value('fitbroker_order_batch_seconds_count') <= s.value('fitbroker_publish_ack_seconds_count', { ordered: 'true' }));
    }
    // f+1 copies of every event reached the subscriber: two correct replicas sent them all.
    assert.ok(fullySent.alerts >= 2 && fullySent.orders >= 2, `replicas that sent every event: ${JSON.stringify(fullySent)}`);
  });

  it('counts a refusal by its code', async () => {
    const port = metricsPorts[0]!;
    assert.equal((await scrape(port)).samples('fitbroker_refusals_total', { code: 'FIT_ERR_UNKNOWN_METHOD' }).length, 0);
    const raw = await RawClient.open(c.config.replicas[0]!);
    try {
      assert.ok((await raw.authenticate(c.config.replicas[0]!, 'console', loadPrivateKey(clientKeyPath(c.dir, 'console'))))?.welcome);
      const reply = await raw.request(1, 'no-such-method');
      assert.equal((reply?.error as { code?: string } | undefined)?.code, 'FIT_ERR_UNKNOWN_METHOD');
    } finally {
      raw.destroy();
    }
    assert.equal((await scrape(port)).value('fitbroker_refusals_total', { code: 'FIT_ERR_UNKNOWN_METHOD' }), 1);
  });

  it('refuses to start a replica whose metrics port is in use, with FIT_ERR_CONFIG naming it', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = runCli(['replica', '--dir', c.dir, '--id', '0', '--metrics-port', String(port)]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`FIT_ERR_CONFIG: replica 0 cannot serve metrics on 127\\.0\\.0\\.1:${port}: the port is in use .*--metrics-port`));
    } finally {
      blocker.close();
    }
  });

  it('stops a replica sent SIGTERM within shutdownTimeoutMs, exit code 0, closing its client connections', async () => {
    const sub = c.subscriber('console', { channel: 'alerts', onEvent: () => undefined });
    await sub.start();
    await eventually('the subscriber is connected to replica 3', async () => assert.equal((await scrape(metricsPorts[3]!)).value('fitbroker_client_connections'), 1));
    const p = c.procs[3]!;
    const startedMs = Date.now();
    const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
    p.kill('SIGTERM');
    const code = await exited;
    const tookMs = Date.now() - startedMs;
    await sub.close();
    assert.equal(code, 0, c.log(3).slice(-2000));
    assert.ok(tookMs < DEFAULT_LIMITS.shutdownTimeoutMs, `stopped in ${tookMs} ms`);
    const lines = c.log(3).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; signal?: string; clientConnections?: number; unanswered?: number });
    assert.ok(lines.some((l) => l.signal === 'SIGTERM' && l.msg.startsWith('shutting down')), 'it logs the signal');
    const stopped = lines.find((l) => l.msg.startsWith('stopped'));
    assert.ok(stopped, 'it logs that it stopped');
    assert.equal(stopped.unanswered, 0);
    assert.ok(stopped.clientConnections! >= 1, 'it closed the subscriber connection');
    assert.equal(await canConnect(c.config.replicas[3]!.port), false, 'the client port is closed');
    assert.equal(await canConnect(metricsPorts[3]!), false, 'the metrics port is closed');
  });

  it('is not ready while fewer than 2f other replicas are up, and ready again once they are', async () => {
    // Replica 3 is down (the test above); with 1 and 2 down too, replica 0 is alone.
    await c.kill(1);
    await c.kill(2);
    const port = metricsPorts[0]!;
    const alone = await eventually('replica 0 not ready', async () => {
      const r = await get(port, '/readyz');
      assert.equal(r.status, 503, r.text);
      return JSON.parse(r.text) as { status: string; missing: string[]; peers: { connected: number[] } };
    });
    assert.equal(alone.status, 'not ready');
    assert.deepEqual(alone.peers.connected, []);
    assert.match(alone.missing.join(' '), /linked to 0 other replica\(s\) \[\], needs 2 \(2f\)/);
    assert.equal((await scrape(port)).value('fitbroker_ready'), 0);
    assert.equal((await get(port, '/healthz')).status, 200, 'alive all the same');

    await c.start(1);
    const one = await eventually('replica 0 linked to replica 1', async () => {
      const r = await get(port, '/readyz');
      const body = JSON.parse(r.text) as { peers: { connected: number[] } };
      assert.deepEqual(body.peers.connected, [1]);
      return r;
    });
    assert.equal(one.status, 503, 'one other replica is not enough with f = 1');
    await c.start(2);
    await eventually('replica 0 ready again', async () => assert.equal((await get(port, '/readyz')).status, 200));
  });
});

describe('SIGTERM while publishes wait for the order', { timeout: 90_000 }, () => {
  let c: TestCluster;
  // A slow leader: ordered publishes wait a few hundred ms for their decision.
  before(async () => (c = await startCluster({ channels: [], ordered: ['orders'], protection: 'si', faults: { 0: ['slow-order:250'] } })));
  after(() => c.stop());

  it('answers the publishes it already read before it exits, and the publisher loses nothing', async () => {
    const port = c.config.replicas[3]!.metricsPort!;
    const pub = c.publisher('probe');
    // A steady stream: each frame waits at least a slow leader's delay for its order.
    const stream = publishStream(pub, 'orders', 2);
    await eventually('replica 3 holds publishes waiting for the order', async () => assert.ok((await scrape(port)).value('fitbroker_consensus_pending_requests') > 0), 10_000);
    const p = c.procs[3]!;
    const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
    p.kill('SIGTERM');
    const code = await exited;
    stream.stop();
    assert.equal(stream.refused(), undefined);
    assert.equal(code, 0, c.log(3).slice(-2000));
    const stopped = c.log(3).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; pending?: number; unanswered?: number }).find((l) => l.msg.startsWith('stopped'));
    assert.ok(stopped, 'it logs that it stopped');
    assert.ok(stopped.pending! >= 1, `a publish frame waited for the order when it began: ${JSON.stringify(stopped)}`);
    assert.equal(stopped.unanswered, 0, 'and it was answered before the connection closed');
    await pub.flush(30_000);
    pub.close();
  });
});

/** SIGKILLs a process group, if there is one left: cleanup must not hide the failure it follows. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

describe('fitbroker up sent SIGTERM', { timeout: 60_000 }, () => {
  let upPid: number | undefined;
  // Also after a timeout, which abandons the test without running its finally.
  after(() => killGroup(upPid));

  it('stops every replica and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fitbroker-up-'));
    try {
      const basePort = await freeBasePort(4);
      initCluster({ dir, replicas: 4, faults: 1, channels: ['alerts'], basePort, host: '127.0.0.1', faultModel: 'bft', clients: [], force: false });
      const config = loadConfig(dir);
      // Its own process group: a failing check kills `up` and its replicas together (killed
      // alone, its replicas would live on holding this test's pipes, and the run would hang).
      const up = spawn(process.execPath, [CLI, 'up', '--dir', dir, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      upPid = up.pid;
      let stderr = '';
      up.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      up.stdout.resume();
      const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
      try {
        for (const r of config.replicas) {
          await eventually(`replica ${r.id} ready`, async () => assert.equal((await get(r.metricsPort!, '/readyz')).status, 200), 20_000);
        }
        // `up` starts its replicas with malloc's huge-page tunable: they get huge pages
        // wherever this machine gives them (and the test's environment does not opt out).
        const expected = readHugePagesState(withHugePages(process.env)).effective ? 1 : 0;
        for (const r of config.replicas) assert.equal((await scrape(r.metricsPort!)).value('fitbroker_malloc_huge_pages'), expected, `replica ${r.id}`);
      } catch (e) {
        killGroup(upPid);
        throw e;
      }
      const startedMs = Date.now();
      up.kill('SIGTERM');
      const code = await exited;
      assert.equal(code, 0, stderr);
      assert.ok(Date.now() - startedMs < DEFAULT_LIMITS.shutdownTimeoutMs, 'within the replicas\' shutdown limit');
      assert.match(stderr, /SIGTERM: stopping 4 replica\(s\)/);
      assert.match(stderr, /every replica stopped/);
      for (const r of config.replicas) {
        assert.equal(await canConnect(r.port), false, `replica ${r.id} stopped listening`);
        assert.equal(await canConnect(r.metricsPort!), false, `replica ${r.id} stopped serving metrics`);
      }
    } finally {
      // Whatever failed, nothing of the group outlives the test (an empty group is no error).
      killGroup(upPid);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
