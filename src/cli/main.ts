#!/usr/bin/env -S node --initial-old-space-size=128
// The one `fitbroker` command. Names and flags here are a contract with tools outside the
// project: extend them, never rename them.

import { Command, Option } from 'commander';
import { initCluster, makeClusterTls, parseClientsFlag, METRICS_PORT_OFFSET } from '../config/index.js';
import { FAULT_KINDS } from '../replica/index.js';
import { OVERFLOW_POLICIES } from '../core/index.js';
import { collect, fail, intFlag, secondsFlag, EXIT_USAGE } from './common.js';
import { up } from './up.js';
import { runReplica } from './replica.js';
import { status } from './status.js';
import { publish } from './publish.js';
import { subscribe } from './subscribe.js';
import { demo } from './demo.js';
import { aclChange, aclRegister } from './acl.js';
import { keysChannel, keysClient, keysExport, keysList, keysReplica, keysRetire, keysRotate } from './keys.js';
import { BACKENDS, monitor } from './monitor.js';
import { vmPrepare } from './vm.js';
import { DEMO_MONITORS } from './demo-monitor.js';
import { GUEST_WORKLOADS } from '../monitoring/vmi/index.js';
import { reconfigure } from './reconfigure.js';

// Per-node TLS files when a host keeps them elsewhere than cluster.yaml's tls: section says.
const TLS_CERT_HELP = "this node's TLS certificate (default: tls.cert of cluster.yaml, {name} replaced)";
const TLS_KEY_HELP = "this node's TLS private key (default: tls.key of cluster.yaml)";

const program = new Command();
program
  .name('fitbroker')
  .description('A fault- and intrusion-tolerant event broker for security monitoring: n replicas between probes and SIEMs, so f faulty ones cannot change what a console receives.')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride((err) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
    process.exit(EXIT_USAGE);
  });

program
  .command('init')
  .description('write DIR/cluster.yaml and one Ed25519 key pair per replica and client in DIR/keys')
  .requiredOption('--dir <dir>', 'directory for cluster.yaml and keys/')
  .option('--replicas <n>', 'number of replicas (at most 30 per group)', intFlag(1, 30), 4)
  .option('--faults <f>', 'faulty replicas to tolerate (bft needs replicas >= 3f+1, cft >= f+1)', intFlag(0, 21), 1)
  .option('--channels <list>', 'comma-separated channel names', 'alerts,metrics')
  .option('--base-port <port>', 'replica i listens on base-port + i', intFlag(1, 65535), 7400)
  .option('--host <host>', 'address the replicas listen on', '127.0.0.1')
  .option('--metrics-base-port <port>', `replica i serves /metrics, /healthz and /readyz over HTTP on this port + i (default: base-port + ${METRICS_PORT_OFFSET}; 0: none)`, intFlag(0, 65535))
  .addOption(new Option('--fault-model <model>', 'class of every channel created').choices(['cft', 'bft']).default('bft'))
  .option('--clients <list>', 'more clients as NAME:ROLE,... with ROLE pub, sub or pubsub (e.g. siem1:sub,siem2:sub)', '')
  .option('--ordered <channels>', 'comma-separated channels (also created if not in --channels) with total order inside each (order: channel); every subscriber delivers their events in the same order, each with a seq', '')
  .option('--ordered-global <channels>', 'comma-separated channels sharing one order across them (order: global)', '')
  .addOption(new Option('--protection <level>', 'quality of protection of every channel created: si (identification), ha (HMAC under a channel key), pks (publisher signatures), pke (signatures and encryption)').choices(['si', 'ha', 'pks', 'pke']).default('pks'))
  .addOption(new Option('--persist <where>', 'where every channel created keeps its events: memory, or disk (kept in each replica\'s data directory, acknowledged once written, back after a restart; unordered channels only in this build)').choices(['memory', 'disk']).default('memory'))
  .addOption(
    new Option('--overflow <policy>', 'what a full subscriber queue does on every unordered channel created (the monitor.* channels keep drop-oldest): drop-oldest (drop its oldest event), drop-newest (refuse the new one), block (hold the channel\'s publishers until the console reads; a stalled console blocks them)')
      .choices(OVERFLOW_POLICIES)
      .default('drop-oldest'),
  )
  .option('--tls', 'TLS on every connection: make a cluster CA and a certificate per replica and client in DIR/keys/tls, and a tls: section in cluster.yaml', false)
  .option('--no-monitoring', 'leave out the monitoring agent\'s channels (monitor.control, monitor.status, monitor.syscalls, monitor.proclist, monitor.files, monitor.perf) and its clients agent and analyst')
  .option('--force', 'overwrite an existing config and its keys', false)
  .action((o) =>
    run(async () => {
      const c = initCluster({
        monitoring: o.monitoring,
        protection: o.protection,
        persist: o.persist,
        overflow: o.overflow,
        dir: o.dir,
        replicas: o.replicas,
        faults: o.faults,
        channels: String(o.channels).split(',').map((s) => s.trim()).filter(Boolean),
        basePort: o.basePort,
        host: o.host,
        faultModel: o.faultModel,
        clients: parseClientsFlag(o.clients),
        force: o.force,
        ordered: String(o.ordered).split(',').map((s) => s.trim()).filter(Boolean),
        orderedGlobal: String(o.orderedGlobal).split(',').map((s) => s.trim()).filter(Boolean),
        tls: o.tls,
        metricsBasePort: o.metricsBasePort,
      });
      if (o.tls) await makeClusterTls(c);
      process.stdout.write(
        `wrote ${c.file}: ${c.replicas.length} replicas (f=${c.f}${c.replicas[0]?.metricsPort ? `, metrics on ports ${c.replicas[0].metricsPort}-${c.replicas[0].metricsPort + c.replicas.length - 1}` : ''}), channels ${[...c.table.channels.keys()].join(', ')}, clients ${[...c.table.clients.keys()].join(', ')}; keys in ${o.dir}/keys\n` +
          (o.tls ? `TLS on: cluster CA ${o.dir}/keys/tls/ca.crt (its key ca.key issues more certificates: keep it off the replica hosts), one certificate and key per replica and client beside it\n` : '') +
          `next: fitbroker up --dir ${o.dir}\n`,
      );
    }),
  );

program
  .command('up')
  .description('run every replica of the config as its own child process, in the foreground (Ctrl-C stops all)')
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .option('--fault <ID:KIND>', `TESTS ONLY, needs FITBROKER_ALLOW_FAULTS=1: make replica ID misbehave; KIND is ${FAULT_KINDS.join(', ')} (repeatable)`, collect, [])
  .option('--log-level <level>', 'replica log level (trace, debug, info, warn, error)')
  .action((o) => run(() => up(o)));

program
  .command('replica')
  .description('run one replica (how a multi-host deployment runs: one per host)')
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml and this replica\'s key')
  .requiredOption('--id <n>', 'replica id from cluster.yaml', intFlag(0, 29))
  .option('--fault <KIND>', `TESTS ONLY, needs FITBROKER_ALLOW_FAULTS=1: ${FAULT_KINDS.join(', ')} (repeatable)`, collect, [])
  .option('--log-level <level>', 'log level (trace, debug, info, warn, error)')
  .option('--data-dir <dir>', 'where this replica keeps its state: disk channels, the restart marker (default DIR/data/replica-N)')
  .option('--replaced', 'this replica id ran before on another host or disk whose state is gone: take part in ordering only where it cannot contradict a vote the old one gave (as after a restart without state)', false)
  .option('--metrics-port <port>', 'serve /metrics, /healthz and /readyz over HTTP on this port of the replica\'s host (default: replicas.N.metricsPort of cluster.yaml; 0: none)', intFlag(0, 65535))
  .option('--tls-cert <file>', TLS_CERT_HELP)
  .option('--tls-key <file>', TLS_KEY_HELP)
  .action((o) => run(() => runReplica(o)));

program
  .command('status')
  .description('show each replica: reachable, uptime, channels, queue depths, events in/out, dropped, evidence of faults')
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .option('--as <client>', 'client to authenticate as (default: the admin client from init)')
  .option('--json', 'print JSON', false)
  .option('--wait <seconds>', 'wait until a quorum (n-f) answers; exit non-zero if it does not in time', secondsFlag)
  .option('--tls-cert <file>', TLS_CERT_HELP)
  .option('--tls-key <file>', TLS_KEY_HELP)
  .action((o) => run(() => status(o)));

program
  .command('publish')
  .description('publish stdin, one event per line (JSON lines as JSON, others as text); exits 0 once all are acknowledged')
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .requiredOption('--as <client>', 'publishing client (its key is DIR/keys/CLIENT.pem)')
  .requiredOption('--channel <channel>', 'channel to publish on')
  .option('--priority <0-3>', 'priority; 3 is urgent and overtakes queued events', intFlag(0, 3))
  .option('--timeout <seconds>', 'give up if the quorum has not acknowledged everything in this time', secondsFlag, 30)
  .option('--tls-cert <file>', TLS_CERT_HELP)
  .option('--tls-key <file>', TLS_KEY_HELP)
  .action((o) => run(() => publish(o)));

program
  .command('subscribe')
  .description('print each voted event of one or more channels as one JSON line')
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .requiredOption('--as <client>', 'subscribing client (its key is DIR/keys/CLIENT.pem)')
  .requiredOption('--channel <channel>', 'channel to subscribe to, or several comma-separated (one connection per replica for all)')
  .option('--count <n>', 'exit 0 after N events', intFlag(1))
  .option('--timeout <seconds>', 'with --count: fail if N events have not arrived in time; without: stop after this long', secondsFlag)
  .option('--from <seq>', 'ordered channels: start at this seq, if the replicas still hold it (default: where this client left off)', intFlag(1))
  .option('--tls-cert <file>', TLS_CERT_HELP)
  .option('--tls-key <file>', TLS_KEY_HELP)
  .action((o) => run(() => subscribe(o)));

const acl = program
  .command('acl')
  .description('change who may publish and subscribe where while the cluster runs: signed by an admin, ordered by consensus, applied at the same point on every correct replica, then written to DIR/cluster.yaml');
const aclFlags = (c: Command): Command =>
  c
    .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
    .option('--as <admin>', 'admin client that signs the change (default: the admin client from init)')
    .option('--timeout <seconds>', 'fail if f+1 replicas have not confirmed the change in this time', secondsFlag, 10)
    .option('--tls-cert <file>', "the admin's TLS certificate (default: tls.cert of cluster.yaml, {name} replaced)")
    .option('--tls-key <file>', "the admin's TLS private key (default: tls.key of cluster.yaml)");
aclFlags(acl.command('register').argument('<client>', 'new client id').description('add a client (a new key pair goes to DIR/keys/CLIENT.pem unless --public-key is given)'))
  .option('--publish <channels>', 'comma-separated channels it may publish on')
  .option('--subscribe <channels>', 'comma-separated channels it may subscribe to')
  .option('--public-key <base64>', 'its Ed25519 public key (base64 SPKI DER) when it made its own key pair')
  .action((client, o) => run(() => aclRegister(client, o)));
for (const [kind, what] of [
  ['subscribe', 'let CLIENT subscribe to CHANNEL (its queue starts with the next event)'],
  ['unsubscribe', 'stop CLIENT subscribing to CHANNEL (its queue and open sessions end; queued events are dropped and counted)'],
  ['grant', 'let CLIENT publish on CHANNEL'],
  ['revoke', 'stop CLIENT publishing on CHANNEL (later publishes are refused)'],
] as const) {
  aclFlags(acl.command(kind).argument('<client>').argument('<channel>').description(what)).action((client, channel, o) => run(() => aclChange(kind, client, channel, o)));
}

const keys = program.command('keys').description('list, create and rotate replica, client and channel keys');
keys
  .command('list')
  .description('every key of the cluster: replica and client identities (fingerprints) and channel key rings')
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .option('--json', 'one JSON array of rows', false)
  .action((o) => run(() => keysList(o)));
keys
  .command('channel')
  .argument('<channel>', 'a channel with protection: ha or pke')
  .description("create the channel's key ring in DIR/keys/channels/CHANNEL.json (give it to its publishers and subscribers only)")
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .option('--force', 'replace an existing ring (events sealed with its keys become unreadable)', false)
  .action((channel, o) => run(() => keysChannel(channel, o)));
/** The flags of the commands that make an identity on the host that will use it. */
const identityFlags = (c: Command): Command =>
  c
    .requiredOption('--dir <dir>', 'directory for keys/ (and cluster.yaml, if this host has it)')
    .option('--force', 'replace an existing key file', false)
    .option('--json', 'print { kind, name, file, publicKey } as JSON', false);
identityFlags(
  keys
    .command('client')
    .argument('<client>', 'the client id it will have')
    .description("create a client's key pair on this host in DIR/keys/CLIENT.pem and print its public key (for acl register --public-key): the private key never leaves the host that uses it"),
).action((client, o) => run(() => keysClient(client, o)));
identityFlags(
  keys
    .command('replica')
    .argument('<id>', 'the replica id it will have', intFlag(0, 29))
    .description("create a replica's key pair on this host in DIR/keys/replica-ID.pem and print its public key (for replicas[ID].publicKey in cluster.yaml)"),
).action((id, o) => run(() => keysReplica(id, o)));
keys
  .command('rotate')
  .description('a new key for one channel (old keys kept for events in flight), client (applied by the replicas through consensus) or replica (needs a restart)')
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .option('--channel <channel>', 'add a key to this channel ring and make it current')
  .option('--client <client>', "replace this client's key pair, signed by an admin and ordered like acl")
  .option('--replica <id>', "replace this replica's key pair in cluster.yaml and keys/", intFlag(0, 29))
  .option('--as <admin>', 'admin client that signs a client rotation (default: the admin client from init)')
  .option('--timeout <seconds>', 'fail if f+1 replicas have not confirmed a client rotation in this time', secondsFlag, 10)
  .action((o) => run(() => keysRotate(o)));
keys
  .command('export')
  .description("write a copy of a channel's key ring for one of its clients; --public drops pke private keys, for publishers")
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .requiredOption('--channel <channel>', 'the channel')
  .requiredOption('--out <file>', 'where to write the copy (mode 0600)')
  .option('--public', 'pke only: public keys only (a publisher seals with them and cannot read)', false)
  .action((o) => run(() => keysExport(o)));
keys
  .command('retire')
  .description('remove an old key from a channel ring: events still sealed with it no longer verify')
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .requiredOption('--channel <channel>', 'the channel')
  .requiredOption('--key <id>', 'the key id, as `keys list` shows it')
  .action((o) => run(() => keysRetire(o)));

program
  .command('monitor')
  .description('run the monitoring agent: introspect a QEMU guest from outside (vmi), trace a process (ptrace), read /proc (proc) or a simulated VM (sim); publish each set on monitor.SET, take commands from monitor.control, report costs on monitor.perf every second')
  .usage('--dir DIR --as AGENT --backend vmi|ptrace|proc|sim [options] [-- CMD ARGS | --pid PID]')
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .requiredOption('--as <agent>', 'the agent\'s client (init creates "agent"); commands name it')
  .addOption(new Option('--backend <kind>', 'how the target is monitored').choices(BACKENDS).makeOptionMandatory())
  .option('--pid <pid>', 'monitor this running process (and its children) instead of starting CMD', intFlag(1))
  .option('--set <set>', 'a set active from the start, e.g. syscalls:openat,execve, proclist:500, files (repeatable)', collect, [])
  .option('--issuers <clients>', 'comma-separated clients whose commands it takes (default: any client the broker lets publish on monitor.control)')
  .option('--duration <seconds>', 'stop after this long (default: until the target exits, or Ctrl-C)', secondsFlag)
  .option('--vm-workload <name>', `vmi: what the guest runs (${Object.keys(GUEST_WORKLOADS).join(', ')})`, 'files')
  .option('--vm-cache <dir>', 'vmi: where `vm prepare` put the guest (default: FITBROKER_VM_CACHE or ~/.cache/fitbroker/vm); prepared there if missing')
  .option('--vm-console <file>', 'vmi: append the guest\'s serial console to this file')
  .option('--sim-workload <name>', 'sim: the simulated workload (web, build, phased)', 'web')
  .option('--sim-costs <profile>', 'sim: what a stop costs the simulated target (ptrace, vmi-tcg)', 'vmi-tcg')
  .option('--seed <n>', 'sim: the seed of the simulated VM', intFlag(0, 2 ** 31 - 1), 1)
  .option('--log-level <level>', 'log level (trace, debug, info, warn, error)')
  .option('--tls-cert <file>', TLS_CERT_HELP)
  .option('--tls-key <file>', TLS_KEY_HELP)
  .argument('[command...]', 'the command to start and monitor, after --')
  .action((command: string[], o) => run(() => monitor(o, command)));

const vm = program.command('vm').description('the virtual machine the vmi back end monitors');
vm.command('prepare')
  .description("build the guest (Debian's kernel, a busybox initramfs with workloads) and its introspection profile into a cache, from Debian's packages; nothing is installed on the host but the tools (qemu-system-x86, cpio, bpftool, xz-utils)")
  .option('--cache <dir>', 'the cache directory (default: FITBROKER_VM_CACHE or ~/.cache/fitbroker/vm)')
  .option('--kernel <package>', 'the kernel package, e.g. linux-image-6.1.0-50-amd64 (default: the one linux-image-amd64 depends on)')
  .option('--force', 'rebuild everything', false)
  .option('--json', 'print the result as one JSON line', false)
  .action((o) => run(() => vmPrepare(o)));

program
  .command('reconfigure')
  .description("change a running agent's monitoring sets: publish a command on monitor.control and print the agent's answer (resulting configuration and predicted overhead) from monitor.status")
  .requiredOption('--dir <dir>', 'directory holding cluster.yaml')
  .requiredOption('--as <analyst>', 'the issuing client (init creates "analyst")')
  .requiredOption('--agent <agent>', 'the agent to reconfigure')
  .option('--enable <set>', 'a set to enable or re-parameterize: syscalls:openat,execve, syscalls (all), proclist:500, files:2000 (repeatable)', collect, [])
  .option('--disable <set>', 'a set to disable: syscalls, proclist, files (repeatable)', collect, [])
  .option('--dry-run', "print the predicted impact from the agent's latest report on monitor.perf; publish nothing", false)
  .option('--json', 'print one JSON object: status, configuration, prediction', false)
  .option('--timeout <seconds>', 'fail if the agent has not answered in this time', secondsFlag, 30)
  .option('--tls-cert <file>', TLS_CERT_HELP)
  .option('--tls-key <file>', TLS_KEY_HELP)
  .action((o) => run(() => reconfigure(o)));

program
  .command('demo')
  .description('init a local 4-replica cluster, run it, publish real events of this host, and print what a console receives')
  .option('--dir <dir>', 'where to put the demo cluster', '.fitbroker-demo')
  .option('--duration <seconds>', 'stop after this long (default: run until Ctrl-C)', secondsFlag)
  .option('--base-port <port>', 'replica i listens on base-port + i', intFlag(1, 65535), 7400)
  .addOption(new Option('--monitor <backend>', 'what the monitoring agent watches: ptrace (a workload of this host) or vmi (a QEMU guest, from outside; prepared first if needed)').choices(DEMO_MONITORS).default('ptrace'))
  .action((o) => run(() => demo(o)));

function run(action: () => Promise<void> | void): Promise<void> {
  return Promise.resolve()
    .then(action)
    .catch((e: unknown) => fail(e));
}

await program.parseAsync(process.argv);
