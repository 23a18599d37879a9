// `fitbroker init` (src/config/init.ts): writes a cluster.yaml that loads, and one Ed25519
// key per replica and client whose public half is the one in the config; refuses to
// overwrite without --force; --clients takes NAME:ROLE pairs.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FitError } from '../../src/core/index.js';
import { initCluster, loadConfig, makeClusterTls, parseClientsFlag, clientKeyPath, replicaKeyPath, configPath, withTlsFiles, tlsIdentityFor, type InitOptions } from '../../src/config/index.js';
import { loadPrivateKey, publicKeyOf, replicaTlsName } from '../../src/protection/index.js';

const root = mkdtempSync(join(tmpdir(), 'fitbroker-init-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

function options(over: Partial<InitOptions> = {}): InitOptions {
  return { dir: join(root, `c${dirs++}`), replicas: 4, faults: 1, channels: ['alerts', 'metrics'], basePort: 7100, host: '127.0.0.1', faultModel: 'bft', clients: [], force: false, ...over };
}

function usageError(fn: () => unknown, message: RegExp): FitError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FitError && e.code === 'FIT_ERR_USAGE', `expected FIT_ERR_USAGE, got ${String(e)}`);
    assert.match(e.message, message);
    return e;
  }
  assert.fail('expected FIT_ERR_USAGE');
}

test('init writes a config that loads back to the same cluster', () => {
  const o = options();
  const written = initCluster(o);
  const loaded = loadConfig(o.dir);
  assert.deepEqual(loaded, written);
  assert.equal(loaded.f, 1);
  assert.deepEqual(
    loaded.replicas.map((r) => `${r.id}@${r.host}:${r.port}`),
    ['0@127.0.0.1:7100', '1@127.0.0.1:7101', '2@127.0.0.1:7102', '3@127.0.0.1:7103'],
  );
  assert.deepEqual([...loaded.table.channels.keys()], ['alerts', 'metrics']);
  assert.equal(loaded.table.channels.get('alerts')!.fault, 'bft');
});

test('init writes one private key per replica and client, readable by the owner only, matching the config', () => {
  const o = options({ clients: [{ name: 'siem1', role: 'sub' }] });
  const c = initCluster(o);
  for (const r of c.replicas) {
    const path = replicaKeyPath(o.dir, r.id);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(publicKeyOf(loadPrivateKey(path)), r.publicKey);
  }
  for (const cl of c.table.clients.values()) {
    const path = clientKeyPath(o.dir, cl.id);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(publicKeyOf(loadPrivateKey(path)), cl.publicKey);
  }
});

test('roles map to publish and subscribe rights; default clients stay unless renamed', () => {
  const c = initCluster(options({ clients: parseClientsFlag('siem1:sub,relay:pubsub,probe:sub') }));
  const rights = Object.fromEntries([...c.table.clients.values()].map((x) => [x.id, { publish: x.publish, subscribe: x.subscribe, admin: x.admin }]));
  assert.deepEqual(rights, {
    console: { publish: [], subscribe: ['*'], admin: false },
    admin: { publish: [], subscribe: [], admin: true },
    siem1: { publish: [], subscribe: ['*'], admin: false },
    relay: { publish: ['*'], subscribe: ['*'], admin: false },
    probe: { publish: [], subscribe: ['*'], admin: false }, // --clients overrides the default role
  });
});

test('init refuses to overwrite an existing config without --force', () => {
  const o = options();
  initCluster(o);
  const e = usageError(() => initCluster(o), /already exists; pass --force/);
  assert.equal(e.fields.file, configPath(o.dir));
  const again = initCluster({ ...o, force: true });
  assert.deepEqual(loadConfig(o.dir), again, 'with --force the new config and keys replace the old');
});

test('init refuses no channels and invalid channel names', () => {
  usageError(() => initCluster(options({ channels: [] })), /--channels needs at least one channel/);
  const e = usageError(() => initCluster(options({ channels: ['ok', 'not ok'] })), /"not ok" is not a valid channel name/);
  assert.equal(e.fields.channel, 'not ok');
});

test('init of a bft cluster with too few replicas fails the config check and writes no config', () => {
  const o = options({ replicas: 3, faults: 1 });
  assert.throws(() => initCluster(o), (e: unknown) => e instanceof FitError && e.code === 'FIT_ERR_CONFIG' && /needs at least 4 replicas/.test(e.message));
  assert.equal(existsSync(configPath(o.dir)), false);
});

test('parseClientsFlag reads NAME:ROLE pairs, trimming blanks and skipping empty items', () => {
  assert.deepEqual(parseClientsFlag(' siem1:sub, probe2:pub ,,relay:pubsub,'), [
    { name: 'siem1', role: 'sub' },
    { name: 'probe2', role: 'pub' },
    { name: 'relay', role: 'pubsub' },
  ]);
  assert.deepEqual(parseClientsFlag(''), []);
});

test('parseClientsFlag refuses a missing or unknown role and an invalid name, quoting the item', () => {
  for (const bad of ['siem1', 'siem1:', ':sub', 'siem1:admin', 'siem1:SUB', 'bad name:sub', '-dash:pub']) {
    const e = usageError(() => parseClientsFlag(`ok:sub,${bad}`), /is not NAME:ROLE with ROLE pub, sub or pubsub/);
    assert.equal(e.fields.value, bad.trim());
  }
});

test('init --ordered and --ordered-global set each channel\'s order, adding channels not in --channels; the two lists cannot share one, and order needs bft with 3f+1', () => {
  const c = initCluster(options({ channels: ['alerts'], ordered: ['orders'], orderedGlobal: ['audit'] }));
  assert.deepEqual(
    [...c.table.channels].map(([tag, cls]) => [tag, cls.order]),
    [
      ['alerts', 'none'],
      ['orders', 'channel'],
      ['audit', 'global'],
    ],
  );
  usageError(() => initCluster(options({ ordered: ['x'], orderedGlobal: ['x'] })), /"x" is in both --ordered and --ordered-global/);
  usageError(() => initCluster(options({ ordered: ['x'], faultModel: 'cft' })), /ordered by consensus, which needs --fault-model bft and --replicas at least 3f\+1 = 4/);
});

test('init --overflow sets the policy of every unordered channel it creates, drop-oldest by default; ordered channels keep drop-oldest', () => {
  const policies = (c: ReturnType<typeof initCluster>) => [...c.table.channels].map(([tag, cls]) => [tag, cls.overflow]);
  assert.deepEqual(policies(initCluster(options())), [
    ['alerts', 'drop-oldest'],
    ['metrics', 'drop-oldest'],
  ]);
  const o = options({ overflow: 'block', ordered: ['orders'] });
  assert.deepEqual(policies(initCluster(o)), [
    ['alerts', 'block'],
    ['metrics', 'block'],
    ['orders', 'drop-oldest'],
  ]);
  assert.deepEqual(policies(loadConfig(o.dir)), policies(initCluster({ ...o, force: true })), 'written to cluster.yaml as it was given');
  assert.match(readFileSync(configPath(o.dir), 'utf8'), /overflow: block/);
});

test('init --tls writes the tls: section and a CA, and a certificate every replica and client loads as its own', async () => {
  const o = options({ tls: true, clients: [{ name: 'siem1', role: 'sub' }] });
  const config = initCluster(o);
  assert.deepEqual(config.tls, { ca: join(o.dir, 'keys/tls/ca.crt'), cert: join(o.dir, 'keys/tls/{name}.crt'), key: join(o.dir, 'keys/tls/{name}.key') });
  await makeClusterTls(config);
  const names = [...config.replicas.map((r) => replicaTlsName(r.id)), ...config.table.clients.keys()];
  assert.deepEqual(names, ['replica-0', 'replica-1', 'replica-2', 'replica-3', 'probe', 'console', 'admin', 'siem1']);
  for (const name of names) {
    assert.equal(tlsIdentityFor(config, name)!.name, name);
    assert.equal(statSync(join(o.dir, 'keys/tls', `${name}.key`)).mode & 0o777, 0o600, name);
  }
  assert.equal(statSync(join(o.dir, 'keys/tls/ca.key')).mode & 0o777, 0o600);
  assert.equal(tlsIdentityFor(initCluster(options()), 'probe'), undefined, 'without --tls, plain TCP');
});

test('--tls-cert and --tls-key replace one node\'s files, and need a tls: section', () => {
  const plain = initCluster(options());
  usageError(() => withTlsFiles(plain, { tlsCert: '/x.crt' }), /--tls-cert and --tls-key need TLS on: .*no tls: section/);
  assert.equal(withTlsFiles(plain, {}), plain);
  const tls = initCluster(options({ tls: true }));
  const moved = withTlsFiles(tls, { tlsCert: '/etc/pki/probe.crt', tlsKey: '/etc/pki/probe.key' });
  assert.deepEqual(moved.tls, { ca: tls.tls!.ca, cert: '/etc/pki/probe.crt', key: '/etc/pki/probe.key' });
});

test('init gives replica i a metrics port at its port + 1000 by default, or from --metrics-base-port, or none with 0', () => {
  assert.deepEqual(initCluster(options()).replicas.map((r) => r.metricsPort), [8100, 8101, 8102, 8103]);
  assert.deepEqual(initCluster(options({ metricsBasePort: 9000 })).replicas.map((r) => r.metricsPort), [9000, 9001, 9002, 9003]);
  const none = options({ metricsBasePort: 0 });
  initCluster(none);
  assert.deepEqual(loadConfig(none.dir).replicas.map((r) => r.metricsPort), [undefined, undefined, undefined, undefined]);
});

test('init refuses metrics ports over 65535 or on the replica ports, before writing anything', () => {
  const high = options({ basePort: 65000 });
  usageError(() => initCluster(high), /default --metrics-base-port \(--base-port \+ 1000 = 66000\): the metrics ports 66000-66003 are not all within 1-65535/);
  assert.equal(existsSync(configPath(high.dir)), false);
  usageError(() => initCluster(options({ metricsBasePort: 65533 })), /--metrics-base-port 65533: the metrics ports 65533-65536/);
  usageError(() => initCluster(options({ metricsBasePort: 7098 })), /the metrics ports 7098-7101 overlap the replica ports 7100-7103/);
});

test('init with monitoring adds the monitor.* channels (commands ordered when the cluster can order) and the agent and analyst clients; nobody else may publish on them', () => {
  const c = initCluster(options({ monitoring: true, clients: [{ name: 'siem1', role: 'sub' }, { name: 'sensor', role: 'pubsub' }] }));
  const channels = [...c.table.channels.keys()];
  assert.deepEqual(channels, ['alerts', 'metrics', 'monitor.control', 'monitor.status', 'monitor.syscalls', 'monitor.proclist', 'monitor.files', 'monitor.perf']);
  assert.equal(c.table.channels.get('monitor.control')!.order, 'channel');
  assert.equal(c.table.channels.get('monitor.perf')!.order, 'none');
  const agent = c.table.clients.get('agent')!;
  assert.deepEqual(agent.publish, ['monitor.status', 'monitor.syscalls', 'monitor.proclist', 'monitor.files', 'monitor.perf']);
  assert.deepEqual(agent.subscribe, ['monitor.control']);
  const analyst = c.table.clients.get('analyst')!;
  assert.deepEqual(analyst.publish, ['monitor.control']);
  assert.deepEqual(analyst.subscribe, ['*']);
  for (const id of ['probe', 'sensor']) assert.deepEqual(c.table.clients.get(id)!.publish, ['alerts', 'metrics'], `${id} publishes on the user's channels by name, not '*'`);
  assert.deepEqual(c.table.clients.get('siem1')!.subscribe, ['*']);
  assert.ok(existsSync(clientKeyPath(c.dir, 'agent')) && existsSync(clientKeyPath(c.dir, 'analyst')));

  const cft = initCluster(options({ monitoring: true, faultModel: 'cft', replicas: 2 }));
  assert.equal(cft.table.channels.get('monitor.control')!.order, 'none', 'a cft cluster cannot order: commands go unordered');
  usageError(() => initCluster(options({ monitoring: true, channels: ['alerts', 'monitor.perf'] })), /monitor\.perf.*--no-monitoring/);
  assert.equal(initCluster(options()).table.channels.has('monitor.control'), false, 'off unless asked (the CLI asks by default)');
});
