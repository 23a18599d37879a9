// `fitbroker publish`: the command-line probe. One event per stdin line: a line that parses
// as JSON goes as JSON, any other as text. Exits 0 only once every event is acknowledged by
// the quorum its channel class needs.

import { createInterface } from 'node:readline';
import { ContentType, FitError, type Priority } from '../core/index.js';
import { clientKeyPath, loadConfig, withTlsFiles } from '../config/index.js';
import { loadPrivateKey } from '../protection/index.js';
import { Publisher, publisherStatusLine } from '../client/index.js';
import { publishQuorum } from '../core/index.js';

export interface PublishCommandOptions {
  dir: string;
  as: string;
  channel: string;
  priority?: number;
  timeout?: number;
  /** --tls-cert, --tls-key: this node's certificate and key, when not where cluster.yaml's tls: says. */
  tlsCert?: string;
  tlsKey?: string;
}

export function lineContentType(line: string): ContentType {
  const t = line.trimStart()[0];
  // Only objects, arrays and strings count as JSON: "42" or "true" are far more likely text.
  if (t !== '{' && t !== '[' && t !== '"') return ContentType.Text;
  try {
    JSON.parse(line);
    return ContentType.Json;
  } catch {
    return ContentType.Text;
  }
}

export async function publish(o: PublishCommandOptions): Promise<void> {
  const config = withTlsFiles(loadConfig(o.dir), o);
  const key = loadPrivateKey(clientKeyPath(o.dir, o.as));
  const started = Date.now();
  // A replica left behind, or holding this client back, is worth a line as it happens.
  const pub = new Publisher(config, o.as, key, { onStatus: (s) => process.stderr.write(`${publisherStatusLine(s)}\n`) });
  // Check the channel and permission before connecting, so a typo fails at once.
  const cls = config.table.channels.get(o.channel);
  if (!cls) throw new FitError('FIT_ERR_UNKNOWN_CHANNEL', `channel "${o.channel}" is not in ${config.file}; channels there: ${[...config.table.channels.keys()].join(', ')}`, { channel: o.channel });
  pub.connect();
  let lines = 0;
  let skipped = 0;
  try {
    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of rl) {
      if (line.trim() === '') {
        skipped++;
        continue;
      }
      const opts = { contentType: lineContentType(line), ...(o.priority === undefined ? {} : { priority: o.priority as Priority }) };
      if (!pub.publish(o.channel, line, opts)) await pub.drained((o.timeout ?? 30) * 1000);
      lines++;
    }
    await pub.flush((o.timeout ?? 30) * 1000);
  } finally {
    pub.close();
  }
  const ms = Date.now() - started;
  const missed = pub.replicaStats().filter((r) => r.missedEvents > 0);
  process.stderr.write(
    `published ${lines} events to ${o.channel} as ${o.as} in ${ms} ms; each acknowledged by ${publishQuorum(cls.fault, config.f)} of ${config.replicas.length} replicas (${cls.fault})` +
      `${skipped ? `; ${skipped} empty lines skipped` : ''}; ids ${pub.epochHex}-1..${lines}` +
      `${missed.length ? `; missed by replicas left behind: ${missed.map((r) => `${r.replica}=${r.missedEvents}`).join(' ')}` : ''}\n`,
  );
}
