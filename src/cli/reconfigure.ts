// `fitbroker reconfigure`: the analyst's side of the control module. It publishes one command
// on monitor.control and prints the agent's answer from monitor.status; with --dry-run it
// publishes nothing and predicts the change itself, from the agent's latest report on
// monitor.perf (which carries the rates, the calibration and the sets the agent runs).

import { randomBytes } from 'node:crypto';
import { FitError, type BrokerEvent } from '../core/index.js';
import { MONITORING_CONTROL_CHANNEL, clientKeyPath, loadConfig, withTlsFiles, type ClusterConfig } from '../config/index.js';
import { loadPrivateKey } from '../protection/index.js';
import { Publisher, Subscriber } from '../client/index.js';
import {
  PERF_CHANNEL,
  STATUS_CHANNEL,
  applyCommand,
  commandAckSchema,
  commandRefusalSchema,
  formatConfig,
  parseSetChange,
  perfReportSchema,
  predictFrom,
  type CommandAck,
  type CommandRefusal,
  type ControlCommand,
  type MonitorConfig,
  type PerfReport,
  type Prediction,
  type SetEffect,
} from '../monitoring/index.js';

export interface ReconfigureOptions {
  dir: string;
  as: string;
  agent: string;
  enable: string[];
  disable: string[];
  dryRun: boolean;
  json: boolean;
  timeout: number;
  tlsCert?: string;
  tlsKey?: string;
}

/** What sending a command needs: who sends, to which agent, how long to wait. */
export type CommandSender = Pick<ReconfigureOptions, 'dir' | 'as' | 'agent' | 'timeout'>;

/** What the command prints with --json: one object, whatever the outcome. */
export interface ReconfigureResult {
  status: 'applied' | 'refused' | 'dry-run';
  agent: string;
  commandId: string | null;
  config: MonitorConfig;
  configVersion: number;
  effects: SetEffect[];
  prediction: Prediction | null;
  reason?: string;
  message?: string;
}

/** Unique per issuer in practice: time and randomness, short enough to read in a log. */
export function commandId(): string {
  return `c-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export async function reconfigure(o: ReconfigureOptions): Promise<void> {
  const config = withTlsFiles(loadConfig(o.dir), o);
  const key = loadPrivateKey(clientKeyPath(o.dir, o.as));
  const change = parseSetChange(o.enable, o.disable);
  if (change.enable.length + change.disable.length === 0) throw new FitError('FIT_ERR_USAGE', 'give at least one --enable SET[:PARAMS] or --disable SET (e.g. --enable syscalls:openat,execve --disable proclist)');
  const command: ControlCommand = { type: 'monitor.command', id: commandId(), agent: o.agent, issuer: o.as, enable: [...change.enable], disable: [...change.disable], dryRun: o.dryRun };
  const result = o.dryRun ? await dryRun(config, key, o, command) : await sendCommand(config, key, o, command);
  process.stdout.write(o.json ? `${JSON.stringify(result)}\n` : describe(result));
  if (result.status === 'refused') process.exitCode = 1;
}

/** Subscribes to `channel` and resolves with the first event `pick` maps to a value. */
async function await1<T>(
  config: ClusterConfig,
  key: ReturnType<typeof loadPrivateKey>,
  o: CommandSender,
  channel: string,
  pick: (ev: BrokerEvent) => T | undefined,
  then: (fail: (err: FitError) => void) => void,
  what: string,
): Promise<T> {
  let done: (v: T | FitError) => void = () => undefined;
  const answer = new Promise<T | FitError>((resolve) => (done = resolve));
  const sub = new Subscriber(config, o.as, key, {
    channel,
    onEvent: (ev) => {
      const v = pick(ev);
      if (v !== undefined) done(v);
    },
    onError: (err) => done(err),
  });
  const timer = setTimeout(() => done(new FitError('FIT_ERR_QUORUM_TIMEOUT', `no ${what} from agent ${o.agent} in ${o.timeout} s: is \`fitbroker monitor --dir ${o.dir} --as ${o.agent}\` running?`, { agent: o.agent })), o.timeout * 1000);
  try {
    await Promise.race([sub.start(), answer]);
    then((err) => done(err));
    const v = await answer;
    if (v instanceof FitError) throw v;
    return v;
  } finally {
    clearTimeout(timer);
    await sub.close(0);
  }
}

function parseJson(ev: BrokerEvent): unknown {
  try {
    return JSON.parse(ev.content.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Publishes `command` on monitor.control and resolves with the agent's answer from monitor.status. */
export async function sendCommand(config: ClusterConfig, key: ReturnType<typeof loadPrivateKey>, o: CommandSender, command: ControlCommand): Promise<ReconfigureResult> {
  const pub = new Publisher(config, o.as, key);
  let sent: Promise<void> = Promise.resolve();
  try {
    const answer = await await1<CommandAck | CommandRefusal>(
      config,
      key,
      o,
      STATUS_CHANNEL,
      (ev) => {
        const v = parseJson(ev);
        const ack = commandAckSchema.safeParse(v);
        if (ack.success && ack.data.commandId === command.id && ack.data.agent === o.agent) return ack.data;
        const refusal = commandRefusalSchema.safeParse(v);
        if (refusal.success && refusal.data.commandId === command.id && refusal.data.agent === o.agent) return refusal.data;
        return undefined;
      },
      (fail) => {
        pub.connect();
        pub.publish(MONITORING_CONTROL_CHANNEL, command);
        // A refusal by the broker (no grant on monitor.control) ends the wait for an answer.
        sent = pub.flush(o.timeout * 1000);
        sent.catch((err: FitError) => fail(err));
      },
      'answer',
    );
    // The agent answered, so a quorum holds the command: the acknowledgement is on its way.
    await sent.catch(() => undefined);
    if (answer.type === 'monitor.refusal') return { status: 'refused', agent: o.agent, commandId: command.id, config: answer.config, configVersion: answer.configVersion, effects: [], prediction: null, reason: answer.reason, message: answer.message };
    return { status: 'applied', agent: o.agent, commandId: command.id, config: answer.config, configVersion: answer.configVersion, effects: answer.effects, prediction: answer.prediction };
  } finally {
    pub.close();
  }
}

async function dryRun(config: ClusterConfig, key: ReturnType<typeof loadPrivateKey>, o: CommandSender, command: ControlCommand): Promise<ReconfigureResult> {
  const since = Date.now();
  // The analyst's queue may hold old reports: only one made after this command started counts.
  const report = await await1<PerfReport>(
    config,
    key,
    o,
    PERF_CHANNEL,
    (ev) => {
      if (ev.timestampMs < since || ev.publisher !== o.agent) return undefined;
      const r = perfReportSchema.safeParse(parseJson(ev));
      return r.success && r.data.agent === o.agent ? r.data : undefined;
    },
    () => undefined,
    'performance report',
  );
  const decided = applyCommand(report.config, command, { agent: o.agent, supports: report.supports });
  if (!decided.ok) return { status: 'refused', agent: o.agent, commandId: null, config: report.config, configVersion: report.configVersion, effects: [], prediction: null, reason: decided.reason, message: decided.message };
  return { status: 'dry-run', agent: o.agent, commandId: null, config: decided.config, configVersion: report.configVersion, effects: decided.effects, prediction: predictFrom(decided.config, report.basis, report.calibration) };
}

const pct = (x: number): string => `${(x * 100).toFixed(x < 0.1 ? 2 : 1)} %`;

/** The prediction as a person reads it. */
export function describePrediction(p: Prediction | null): string {
  if (p === null) return 'predicted overhead: not yet known (the agent has observed the target for too short a time)';
  if (p.saturated || p.slowdown === null) return 'predicted overhead: the periodic extractions alone would keep the target paused all the time (saturated); choose longer periods';
  const parts = [`traps ${pct(p.traps.share)} (${Math.round(p.traps.perComputeSec)} stops/s × ${(p.traps.costNs / 1000).toFixed(1)} µs, ${p.traps.costBasis})`];
  for (const e of p.extractions) parts.push(`${e.set} ${pct(e.wallShare)} of wall time (${(e.pauseNs / 1e6).toFixed(2)} ms every ${e.periodMs} ms)`);
  const unseen = p.traps.unseen.length ? `\n  not yet seen by name in the basis window, so not in the events/s figure: ${p.traps.unseen.join(', ')}` : '';
  return `predicted slowdown ${p.slowdown.toFixed(3)}× (overhead ${pct(p.overheadFraction ?? 0)}; summing each set alone would say ${pct(p.naiveOverheadFraction)})\n  ${parts.join('; ')}\n  about ${Math.round(p.eventsPerWallSec ?? 0)} events/s published${unseen}`;
}

function describeEffects(effects: SetEffect[]): string {
  if (effects.length === 0) return 'nothing changed';
  return effects
    .map((e) => (e.action === 'disable' ? `${e.set} disabled` : `${e.set} ${e.action === 'enable' ? 'enabled' : 'updated'} (${formatConfig({ [e.set]: e.params })})`))
    .join('; ');
}

export function describe(r: ReconfigureResult): string {
  if (r.status === 'refused') return `agent ${r.agent} refused${r.commandId ? ` ${r.commandId}` : ''} (${r.reason}): ${r.message}\nconfiguration unchanged: ${formatConfig(r.config)} (version ${r.configVersion})\n`;
  const head = r.status === 'dry-run' ? `dry run, nothing published: agent ${r.agent} would apply: ${describeEffects(r.effects)}` : `agent ${r.agent} applied ${r.commandId}: ${describeEffects(r.effects)}`;
  return `${head}\nconfiguration ${r.status === 'dry-run' ? 'would be' : 'now'}: ${formatConfig(r.config)}${r.status === 'dry-run' ? '' : ` (version ${r.configVersion})`}\n${describePrediction(r.prediction)}\n`;
}
