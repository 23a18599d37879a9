// `fitbroker subscribe`: the command-line console. Prints each voted event as one JSON line.

import { ContentType, FitError, type BrokerEvent } from '../core/index.js';
import { clientKeyPath, loadConfig, withTlsFiles } from '../config/index.js';
import { loadPrivateKey } from '../protection/index.js';
import { Subscriber } from '../client/index.js';

export interface SubscribeCommandOptions {
  dir: string;
  as: string;
  channel: string;
  count?: number;
  timeout?: number;
  from?: number;
  /** --tls-cert, --tls-key: this node's certificate and key, when not where cluster.yaml's tls: says. */
  tlsCert?: string;
  tlsKey?: string;
}

export function eventToJson(ev: BrokerEvent): Record<string, unknown> {
  let content: unknown;
  if (ev.contentType === ContentType.Json) {
    try {
      content = JSON.parse(ev.content.toString('utf8'));
    } catch {
      content = ev.content.toString('utf8');
    }
  } else if (ev.contentType === ContentType.Text) content = ev.content.toString('utf8');
  else content = ev.content.toString('base64');
  return {
    channel: ev.channel,
    ...(ev.seq !== undefined ? { seq: ev.seq } : {}),
    ...(ev.global !== undefined ? { global: ev.global } : {}),
    publisher: ev.publisher,
    id: ev.id,
    timestamp: new Date(ev.timestampMs).toISOString(),
    priority: ev.priority,
    content,
    ...(ev.contentType === ContentType.Binary ? { encoding: 'base64' } : {}),
  };
}

export async function subscribe(o: SubscribeCommandOptions): Promise<void> {
  const config = withTlsFiles(loadConfig(o.dir), o);
  const key = loadPrivateKey(clientKeyPath(o.dir, o.as));
  let delivered = 0;
  let finish: (err?: FitError) => void = () => undefined;
  const finished = new Promise<FitError | undefined>((resolve) => (finish = resolve));
  const sub = new Subscriber(config, o.as, key, {
    channels: o.channel.split(',').map((c) => c.trim()).filter(Boolean),
    ...(o.from !== undefined ? { from: o.from } : {}),
    ...(o.count !== undefined ? { limit: o.count, onLimit: () => finish() } : {}),
    onEvent: (ev) => {
      delivered++;
      process.stdout.write(`${JSON.stringify(eventToJson(ev))}\n`);
    },
    onError: (err) => finish(err),
    onNotice: (n) => process.stderr.write(`${n.code}: ${n.message}\n`),
  });
  const timer = o.timeout === undefined ? undefined : setTimeout(() => finish(timeoutError(o, delivered)), o.timeout * 1000);
  process.on('SIGINT', () => finish());
  process.on('SIGTERM', () => finish());
  sub.start().catch((err: FitError) => finish(err));
  const err = await finished;
  clearTimeout(timer);
  await sub.close();
  const s = sub.summary();
  const suspects = Object.entries(s.mismatches).filter(([, m]) => m > 0);
  process.stderr.write(
    `delivered ${delivered} events from ${o.channel} as ${o.as}` +
      (suspects.length ? `; mismatching copies by replica: ${suspects.map(([r, m]) => `${r}=${m}`).join(' ')}` : '; all replica copies agreed') +
      (s.expired || s.undecided ? `; dropped: ${s.expired} expired, ${s.undecided} undecided` : '') +
      (s.rejected ? `; ${s.rejected} events rejected: their publisher sealed them wrongly (FIT_ERR_FORGED above)` : '') +
      (s.equivocations ? `; ${s.equivocations} copies of a second version their publisher also signed: it equivocated (FIT_ERR_FORGED above)` : '') +
      (s.floorsForced ? `; ${s.floorsForced} times the voter stopped waiting for a replica far behind (an event only it still held would have been counted stale)` : '') +
      (s.undecryptable ? `; ${s.undecryptable} events not decryptable with this client's channel keys` : '') +
      (s.skipped ? `; ${s.skipped} seqs skipped (the replicas no longer held them: fitbroker status shows what each client missed)` : '') +
      '\n',
  );
  if (err && !(err.code === 'FIT_ERR_QUORUM_TIMEOUT' && o.count === undefined)) throw err;
}

function timeoutError(o: SubscribeCommandOptions, delivered: number): FitError {
  return new FitError(
    'FIT_ERR_QUORUM_TIMEOUT',
    `timed out after ${o.timeout} s with ${delivered}${o.count !== undefined ? ` of ${o.count}` : ''} events delivered from ${o.channel}; check that publishers are running and enough replicas are up (fitbroker status --dir ${o.dir})`,
    { channel: o.channel, delivered },
  );
}
