// What publishLingerMs and pushLingerMs buy for a probe that publishes one event per callback
// (a syslog or agent probe reading datagrams), the shape `npm run bench`'s paced phase does
// not have (it publishes a tick's events in one go, 2 ms apart). A 4-replica cluster, one such
// publisher over 50 channels and one subscriber of all of them, each linger setting in turn on
// the same machine; CPU per event of each process from /proc.
//
//   node dist/bench/linger.js [--rate 10000] [--seconds 5] [--lingers 0,2] [--rounds 2]

import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { startCluster } from '../test/helpers/cluster.js';

const { values } = parseArgs({
  options: { rate: { type: 'string', default: '10000' }, seconds: { type: 'string', default: '5' }, lingers: { type: 'string', default: '0,2' }, rounds: { type: 'string', default: '2' } },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const LINGERS = values.lingers.split(',').map(Number);
const CHANNELS = Array.from({ length: 50 }, (_, i) => `ch${i}`);
const PAYLOAD = Buffer.alloc(200, 0x61);

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function run(lingerMs: number): Promise<string> {
  const cluster = await startCluster({
    channels: CHANNELS,
    clients: [
      { name: 'probe', role: 'pub' },
      { name: 'siem', role: 'sub' },
    ],
    defaultClients: false,
    limits: { publishLingerMs: lingerMs, pushLingerMs: lingerMs },
  });
  try {
    let delivered = 0;
    const sub = cluster.subscriber('siem', { channels: CHANNELS, onEvent: () => delivered++ });
    await sub.start();
    const pub = cluster.publisher('probe');
    while (pub.readyReplicas < 4) await new Promise((r) => setTimeout(r, 20));
    const pids = cluster.procs.map((p) => p!.pid!);
    const replicas0 = pids.map(cpuSeconds);
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    let sent = 0;
    // One event per turn of the event loop, at RATE on average: no batching by the caller.
    while (performance.now() - t0 < SECONDS * 1000) {
      if (sent < ((performance.now() - t0) * RATE) / 1000 && !pub.publish(CHANNELS[sent++ % CHANNELS.length]!, PAYLOAD)) await pub.drained();
      await nextTurn();
    }
    await pub.flush(60_000);
    while (delivered < sent) await new Promise((r) => setTimeout(r, 20));
    const self = process.cpuUsage(self0);
    const replicaUs = (pids.map(cpuSeconds).reduce((a, b) => a + b) - replicas0.reduce((a, b) => a + b)) * 1e6;
    pub.close();
    await sub.close(100);
    return `linger ${lingerMs} ms: ${sent} events at ${RATE}/s; replicas ${(replicaUs / sent / 4).toFixed(1)} µs each per event; this process (publisher, its spinning caller, subscriber) ${((self.user + self.system) / sent).toFixed(1)} µs per event`;
  } finally {
    await cluster.stop();
  }
}

for (let r = 0; r < Number(values.rounds); r++) for (const l of LINGERS) console.log(await run(l));
