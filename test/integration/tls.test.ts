// TLS on every connection (docs/security.md, "TLS"), on real replica processes and sockets:
// a cluster made by `init --tls` carries events end to end over mutual TLS, replica links
// included; a certificate from another CA, an expired one, or one naming another client is
// refused at the TLS layer or the handshake with an error that says why, while the replica
// keeps serving everyone else; a valid certificate does not stand in for the control table;
// and a plain TCP client is told the cluster needs TLS.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCluster, type TestCluster } from '../helpers/cluster.js';
import { clientKeyPath, withTlsFiles, type ClusterConfig } from '../../src/config/index.js';
import { FitError, type ClientInfo } from '../../src/core/index.js';
import { generateIdentity, issueCertificate, issueTlsFiles, loadPrivateKey, makeCertificateAuthority, writeClusterTls, type TlsIdentity } from '../../src/protection/index.js';
import { Publisher, ReplicaLink, queryStatus } from '../../src/client/index.js';

const DAY_MS = 24 * 60 * 60 * 1000;

function withClient(config: ClusterConfig, client: ClientInfo): ClusterConfig {
  const clients = new Map(config.table.clients);
  clients.set(client.id, client);
  return { ...config, table: { ...config.table, clients } };
}

function expectRefusal(code: string, pattern: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof FitError, `expected a FitError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

/** Replica logs are files another process writes: give the line a moment to land. */
async function logsMatch(read: () => string, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !pattern.test(read()); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(read(), pattern);
}

/** Publishes `count` events as probe and waits for the quorum: the cluster still serves. */
async function stillServes(c: TestCluster, tag: string): Promise<void> {
  const pub = c.publisher('probe');
  for (let i = 0; i < 5; i++) pub.publish('alerts', `${tag}-${i}`);
  await pub.flush(10_000);
}

/**
 * One link to replica 0 with TLS material made by hand, past the client's own checks of its
 * files (which would stop a correct client earlier): what an attacker's client would send.
 * Resolves with the reason the link went down.
 */
function dialOnce(c: TestCluster, clientId: string, key: ReturnType<typeof loadPrivateKey>, tls: TlsIdentity): Promise<FitError | undefined> {
  return new Promise((resolve) => {
    const link: ReplicaLink = new ReplicaLink(
      c.config.replicas[0]!,
      clientId,
      key,
      c.config.limits,
      {
        onReady: () => {
          link.stop();
          resolve(undefined);
        },
        onFrame: () => undefined,
        onDown: (_l, reason) => {
          link.stop();
          resolve(reason);
        },
      },
      undefined,
      tls,
    );
    link.start();
  });
}

describe('TLS on every connection', () => {
  let c: TestCluster;
  const closers: { close(): unknown }[] = [];
  const track = <T extends { close(): unknown }>(x: T): T => (closers.push(x), x);

  before(async () => {
    c = await startCluster({ tls: true, channels: ['alerts'], ordered: ['orders'], clients: [{ name: 'siem', role: 'sub' }] });
  });
  after(async () => {
    await Promise.all(closers.map((x) => Promise.resolve(x.close()).catch(() => undefined)));
    await c?.stop();
  });

  it('publishes and subscribes end to end over mutual TLS, ordered channels (replica links over TLS) included', async () => {
    const got: string[] = [];
    const ordered: number[] = [];
    const sub = c.subscriber('console', { channels: ['alerts', 'orders'], onEvent: (ev) => (ev.channel === 'orders' ? ordered.push(ev.seq!) : got.push(ev.content.toString())) });
    await sub.start();
    const pub = c.publisher('probe');
    for (let i = 0; i < 20; i++) {
      pub.publish('alerts', `a${i}`);
      pub.publish('orders', `o${i}`);
    }
    await pub.flush(15_000);
    const until = Date.now() + 10_000;
    while ((got.length < 20 || ordered.length < 20) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `a${i}`));
    assert.deepEqual(ordered, Array.from({ length: 20 }, (_, i) => i + 1));
    // Ordering needs 2f+1 replicas talking to each other: their links ran over TLS too. Asked
    // until every replica has 2 links, for up to 10 s: the order needs only 2f+1 of them, and on
    // a loaded machine one replica's link may still be reconnecting when the events are in.
    const key = loadPrivateKey(clientKeyPath(c.dir, 'admin'));
    const linked = (r: Awaited<ReturnType<typeof queryStatus>>[number]): boolean => ((r.status?.consensus as { peersConnected: number[] } | undefined)?.peersConnected.length ?? 0) >= 2;
    let status = await queryStatus(c.config, 'admin', key, 5_000);
    for (const linksBy = Date.now() + 10_000; !status.every(linked) && Date.now() < linksBy; status = await queryStatus(c.config, 'admin', key, 5_000)) await new Promise((r) => setTimeout(r, 200));
    for (const r of status) {
      assert.ok(r.reachable, `replica ${r.replica}: ${r.error}`);
      assert.equal(r.status!.tls, true);
      assert.ok(linked(r), `replica ${r.replica} has too few replica links: ${JSON.stringify(r.status?.consensus)}`);
    }
  });

  it('refuses a client whose certificate comes from another CA at the TLS layer, saying so, and keeps serving the others', async () => {
    const other = await makeCertificateAuthority('not the cluster CA');
    const pair = await issueCertificate(other, 'probe');
    // The client trusts both CAs, so its own files pass its checks and it trusts the replicas:
    // only the replicas' check of its certificate stands in the way.
    const bundle = join(c.dir, 'both-cas.crt');
    writeFileSync(bundle, readFileSync(c.config.tls!.ca, 'utf8') + other.certPem);
    writeFileSync(join(c.dir, 'foreign.crt'), pair.certPem);
    writeFileSync(join(c.dir, 'foreign.key'), pair.keyPem, { mode: 0o600 });
    const cfg = withTlsFiles({ ...c.config, tls: { ...c.config.tls!, ca: bundle } }, { tlsCert: join(c.dir, 'foreign.crt'), tlsKey: join(c.dir, 'foreign.key') });
    const pub = track(new Publisher(cfg, 'probe', loadPrivateKey(clientKeyPath(c.dir, 'probe'))).connect());
    pub.publish('alerts', 'from outside');
    await assert.rejects(pub.flush(10_000), expectRefusal('FIT_ERR_TLS_HANDSHAKE', /refused the TLS certificate of "probe": it does not chain to the cluster CA/));
    pub.close();
    await logsMatch(() => c.log(0) + c.log(1) + c.log(2) + c.log(3), /FIT_ERR_TLS_HANDSHAKE.*does not chain to the cluster CA/);

    // The other way round: a client that trusts only the other CA refuses the replicas.
    const cfg2 = withTlsFiles({ ...c.config, tls: { ...c.config.tls!, ca: join(c.dir, 'other-ca.crt') } }, { tlsCert: join(c.dir, 'foreign.crt'), tlsKey: join(c.dir, 'foreign.key') });
    writeFileSync(join(c.dir, 'other-ca.crt'), other.certPem);
    const pub2 = track(new Publisher(cfg2, 'probe', loadPrivateKey(clientKeyPath(c.dir, 'probe'))).connect());
    pub2.publish('alerts', 'from outside');
    await assert.rejects(pub2.flush(10_000), expectRefusal('FIT_ERR_TLS_HANDSHAKE', /presented a TLS certificate not issued by the cluster CA/));
    pub2.close();
    await stillServes(c, 'after-foreign');
  });

  it('refuses an expired certificate and one naming another client, each with its reason', async () => {
    const now = Date.now();
    await issueTlsFiles(c.config.tls!, 'expired', { notBeforeMs: now - 10 * DAY_MS, notAfterMs: now - DAY_MS });
    const tlsOf = (name: string, as: string): TlsIdentity => ({
      name: as,
      ca: [readFileSync(c.config.tls!.ca, 'utf8')],
      cert: readFileSync(join(c.dir, 'keys/tls', `${name}.crt`)),
      key: readFileSync(join(c.dir, 'keys/tls', `${name}.key`)),
      certFile: `${name}.crt`,
      caFile: c.config.tls!.ca,
    });
    const expired = await dialOnce(c, 'probe', loadPrivateKey(clientKeyPath(c.dir, 'probe')), tlsOf('expired', 'probe'));
    expectRefusal('FIT_ERR_TLS_HANDSHAKE', /refused the TLS certificate of "expired": it expired on/)(expired);
    // console's certificate with probe's key: the certificate must name the id claimed.
    const stolen = await dialOnce(c, 'probe', loadPrivateKey(clientKeyPath(c.dir, 'probe')), tlsOf('console', 'probe'));
    expectRefusal('FIT_ERR_AUTH_FAILED', /claiming to be "probe" presented the TLS certificate of "console"/)(stolen);
    await stillServes(c, 'after-expired');
  });

  it('refuses a client with a valid certificate from the cluster CA but no entry in the control table: FIT_ERR_UNKNOWN_CLIENT', async () => {
    await issueTlsFiles(c.config.tls!, 'intruder');
    const id = generateIdentity();
    const cfg = withClient(c.config, { id: 'intruder', publicKey: id.publicKey, publish: ['*'], subscribe: [], admin: false });
    const pub = track(new Publisher(cfg, 'intruder', createPrivateKey(id.privatePem)).connect());
    pub.publish('alerts', 'certified but unknown');
    await assert.rejects(pub.flush(10_000), expectRefusal('FIT_ERR_UNKNOWN_CLIENT', /client "intruder" is not in the control table/));
    pub.close();
    assert.ok(new X509Certificate(readFileSync(join(c.dir, 'keys/tls/intruder.crt'))).checkIssued(new X509Certificate(readFileSync(c.config.tls!.ca))));
  });

  it('tells a plain TCP client that the replicas need TLS: FIT_ERR_TLS_REQUIRED', async () => {
    const { tls: _tls, ...plain } = c.config;
    const started = Date.now();
    const pub = track(new Publisher(plain, 'probe', loadPrivateKey(clientKeyPath(c.dir, 'probe'))).connect());
    pub.publish('alerts', 'in the clear');
    await assert.rejects(pub.flush(10_000), expectRefusal('FIT_ERR_TLS_REQUIRED', /accepts TLS connections only and this one is plain TCP/));
    pub.close();
    assert.ok(Date.now() - started < c.config.limits.tlsFirstByteMs + 3_000, 'the plain client hears it within about tlsFirstByteMs');
    await stillServes(c, 'after-plain');
  });
});

describe('TLS on one side only', () => {
  it('a TLS client dialing a replica without TLS hears that it does not speak TLS, and the replica logs why', async () => {
    // The cluster runs plain; the client's copy of the config has the tls: section.
    const c = await startCluster({ replicas: 1, f: 0, faultModel: 'cft', channels: ['alerts'] });
    try {
      const files = { ca: join(c.dir, 'keys/tls/ca.crt'), cert: join(c.dir, 'keys/tls/{name}.crt'), key: join(c.dir, 'keys/tls/{name}.key') };
      await writeClusterTls(files, ['probe']);
      const pub = new Publisher({ ...c.config, tls: files }, 'probe', loadPrivateKey(clientKeyPath(c.dir, 'probe'))).connect();
      pub.publish('alerts', 'over TLS');
      await assert.rejects(pub.flush(10_000), expectRefusal('FIT_ERR_TLS_HANDSHAKE', /does not speak TLS: it runs with a cluster.yaml without a tls: section/));
      pub.close();
      // The client may hear first: it reads the replica's challenge as a bad TLS record before
      // the replica has read (and logged) the ClientHello.
      await logsMatch(() => c.log(0), /FIT_ERR_TLS_HANDSHAKE.*started a TLS handshake, but replica 0 runs without TLS/);
    } finally {
      await c.stop();
    }
  });
});

describe('TLS on the command line', () => {
  it('init --tls writes the tls: section and the files; a node pointed at a missing certificate stops with FIT_ERR_TLS_CERT, exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fitbroker-tls-cli-'));
    try {
      const init = runCli(['init', '--dir', dir, '--tls', '--replicas', '1', '--faults', '0', '--fault-model', 'cft']);
      assert.equal(init.code, 0, init.stderr);
      assert.match(init.stdout, /TLS on: cluster CA .*ca\.crt/);
      assert.match(readFileSync(join(dir, 'cluster.yaml'), 'utf8'), /tls:\n  ca: keys\/tls\/ca.crt\n  cert: keys\/tls\/\{name\}.crt\n  key: keys\/tls\/\{name\}.key/);
      for (const f of ['ca.crt', 'ca.key', 'replica-0.crt', 'replica-0.key', 'probe.crt', 'probe.key', 'console.crt', 'admin.key']) assert.ok(statSync(join(dir, 'keys/tls', f)).isFile(), f);
      const r = runCli(['publish', '--dir', dir, '--as', 'probe', '--channel', 'alerts', '--tls-cert', join(dir, 'nowhere.crt')], 'x\n');
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^fitbroker: FIT_ERR_TLS_CERT: .*nowhere\.crt: cannot read this TLS certificate of probe \(ENOENT\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
