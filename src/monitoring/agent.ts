// The monitoring agent on the broker: it publishes what the back end collects (each set on its
// own channel), runs the control module (commands from monitor.control, answers on
// monitor.status) and the performance module (a report on monitor.perf every second). The
// back end does the monitoring; this file decides what is said about it, and to whom.
//
// Who may command the agent is decided twice: the broker refuses a publish on monitor.control
// from a client without the grant (init gives it to `analyst` only), and the agent refuses a
// command whose `issuer` is not the publisher the broker authenticated, or not in --issuers.

import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { FitError, type BrokerEvent } from '../core/index.js';
import { MONITORING_CONTROL_CHANNEL, type ClusterConfig } from '../config/index.js';
import { Publisher, Subscriber, publisherStatusLine } from '../client/index.js';
import type { EventSink, MonitorBackend, MonitorEvent } from './backend.js';
import { ackFor, applyCommand, parseCommand, refusalFor, type ControlCommand, type RefusalReason } from './command.js';
import { PerfWindow, calibrationSchema, type PerfReport } from './perf.js';
import type { SetChange, SetName } from './sets.js';

export const STATUS_CHANNEL = 'monitor.status';
export const PERF_CHANNEL = 'monitor.perf';
export const setChannel = (set: SetName): string => `monitor.${set}`;

/**
 * Collected events waiting for the replicas' acknowledgement, at most. A tracer cannot be told
 * to wait, so past this the agent drops new events, counts them (monitor.perf `events.dropped`)
 * and logs it once a second; a gap in a set's seqs shows the reader where.
 */
export const AGENT_BACKLOG_EVENTS_MAX = 200_000;

/**
 * A command published this long before the agent started was for an earlier run of it (the
 * ordered channel hands a restarted agent what its last run had not acknowledged): refused as
 * stale rather than applied to a target it was not meant for. The margin allows for the
 * issuer's clock and a command sent just before a restart.
 */
export const STALE_COMMAND_MS = 10_000;

export interface AgentOptions {
  config: ClusterConfig;
  /** The agent's client id; commands name it in `agent`. */
  name: string;
  key: KeyObject;
  /** Builds the back end with the sink the agent gives it. */
  backend(sink: EventSink): MonitorBackend;
  log: Logger;
  /** Allowed issuers; default: whoever the broker lets publish on monitor.control. */
  issuers?: readonly string[];
  perfIntervalMs?: number;
  predictionWindowMs?: number;
  /** The monitored process, for the perf report. */
  target?: { pid: number | null; alive(): boolean };
}

export class MonitorAgent {
  readonly backend: MonitorBackend;
  private readonly pub: Publisher;
  private sub: Subscriber | undefined;
  private readonly perf: PerfWindow;
  private timer: NodeJS.Timeout | undefined;
  private readonly collected: Record<string, number> = {};
  private published = 0;
  private dropped = 0;
  private lastDropLogMs = 0;
  /** Commands are applied one at a time, in the channel's order. */
  private queue: Promise<void> = Promise.resolve();
  private readonly answered = new Set<string>();
  private failure: FitError | undefined;
  private readonly startedMs = Date.now();
  /** The back end's configVersion after the last change it applied. */
  private version = 0;

  constructor(private readonly o: AgentOptions) {
    this.pub = new Publisher(o.config, o.name, o.key, { onStatus: (s) => o.log.warn({ status: s.type, replica: s.replica }, publisherStatusLine(s)) });
    this.backend = o.backend((e) => this.collect(e));
    this.perf = new PerfWindow(this.backend, o.predictionWindowMs);
  }

  /** Backlog of published events not yet acknowledged by the quorum. */
  get backlog(): number {
    return this.pub.counters.events - this.pub.counters.acknowledged - this.pub.counters.duplicates;
  }

  /** Connects, starts the back end (nothing active) and listens for commands. */
  async start(onError: (err: FitError) => void): Promise<void> {
    this.pub.connect();
    await this.backend.start();
    this.sub = new Subscriber(this.o.config, this.o.name, this.o.key, {
      channel: MONITORING_CONTROL_CHANNEL,
      onEvent: (ev) => this.onCommand(ev),
      onError: (err) => {
        this.failure = err;
        onError(err);
      },
    });
    this.sub.start().catch((err: FitError) => onError(err));
    this.perf.sample();
    this.timer = setInterval(() => this.report(), this.o.perfIntervalMs ?? 1000);
    this.timer.unref();
  }

  /** Applies sets given on the command line, before the target runs. */
  async applyInitial(change: SetChange): Promise<void> {
    const r = await this.backend.apply(change);
    this.version = r.configVersion;
    this.o.log.info({ config: r.config, configVersion: r.configVersion }, 'initial monitoring sets applied');
  }

  /** Stops monitoring, publishes a last report, and waits (bounded) for the quorum to hold everything. */
  async stop(flushTimeoutMs = 10_000): Promise<void> {
    clearInterval(this.timer);
    await this.queue;
    await this.backend.stop();
    this.report();
    // The linger lets the replicas learn which commands this run consumed.
    await this.sub?.close();
    try {
      await this.pub.flush(flushTimeoutMs);
    } catch (err) {
      this.o.log.warn({ err, backlog: this.backlog }, 'stopping with events the replicas have not acknowledged');
    } finally {
      this.pub.close();
    }
  }

  private collect(e: MonitorEvent): void {
    this.collected[e.set] = (this.collected[e.set] ?? 0) + 1;
    if (this.backlog >= AGENT_BACKLOG_EVENTS_MAX) {
      this.dropped++;
      const now = Date.now();
      if (now - this.lastDropLogMs >= 1000) {
        this.lastDropLogMs = now;
        this.o.log.warn({ dropped: this.dropped, backlog: this.backlog }, `the replicas are not taking the agent's events fast enough: dropping new ones (counted in monitor.perf events.dropped)`);
      }
      return;
    }
    this.pub.publish(setChannel(e.set), e);
    this.published++;
  }

  private say(message: object): void {
    this.pub.publish(STATUS_CHANNEL, message);
  }

  private onCommand(ev: BrokerEvent): void {
    let command: ControlCommand;
    try {
      command = parseCommand(JSON.parse(ev.content.toString('utf8')));
    } catch (err) {
      const message = err instanceof FitError ? err.message : `control command is not JSON: ${(err as Error).message}`;
      this.refuse(null, 'invalid', `${message} (event ${ev.id} from ${ev.publisher})`);
      return;
    }
    // Commands for other agents share the channel: not ours to answer.
    if (command.agent !== this.o.name) return;
    const key = `${ev.publisher}/${command.id}`;
    if (this.answered.has(key)) {
      this.o.log.info({ command: command.id, issuer: ev.publisher }, 'a command id already answered: ignored');
      return;
    }
    this.answered.add(key);
    if (ev.timestampMs < this.startedMs - STALE_COMMAND_MS) {
      this.refuse(command, 'stale', `command ${command.id} was published ${Math.round((this.startedMs - ev.timestampMs) / 1000)} s before this agent started, for an earlier run of it; send it again`);
      return;
    }
    if (command.issuer !== ev.publisher) {
      this.refuse(command, 'not-allowed', `command ${command.id} says it is from ${command.issuer} but was published by ${ev.publisher}`);
      return;
    }
    if (this.o.issuers && !this.o.issuers.includes(command.issuer)) {
      this.refuse(command, 'not-allowed', `${command.issuer} may not command agent ${this.o.name}; allowed: ${this.o.issuers.join(', ')}`);
      return;
    }
    this.queue = this.queue.then(() => this.execute(command)).catch((err: unknown) => this.o.log.error({ err }, 'a command failed unexpectedly'));
  }

  private async execute(command: ControlCommand): Promise<void> {
    const decided = applyCommand(this.backend.config(), command, { agent: this.o.name, supports: this.backend.supports });
    if (!decided.ok) return this.refuse(command, decided.reason, decided.message);
    if (command.dryRun) {
      this.say(ackFor(command, decided.config, this.version, decided.effects, this.perf.prediction(decided.config)));
      return;
    }
    try {
      const r = await this.backend.apply({ enable: command.enable, disable: command.disable });
      this.version = r.configVersion;
      this.o.log.info({ command: command.id, issuer: command.issuer, effects: r.effects, configVersion: r.configVersion }, 'monitoring reconfigured');
      this.say(ackFor(command, r.config, r.configVersion, r.effects, this.perf.prediction(r.config)));
    } catch (err) {
      const message = err instanceof FitError ? err.message : String(err);
      this.o.log.warn({ command: command.id, err }, 'a command could not be applied; nothing changed');
      this.refuse(command, 'failed', `the back end could not apply it: ${message}`);
    }
  }

  private refuse(command: ControlCommand | null, reason: RefusalReason, message: string): void {
    this.o.log.info({ command: command?.id ?? null, reason }, `command refused: ${message}`);
    this.say(refusalFor(command, this.o.name, reason, message, this.backend.config(), this.version));
  }

  /** Builds and publishes this second's report. */
  private report(): PerfReport {
    const now = this.perf.sample();
    const basis = this.perf.basis();
    const config = this.backend.config();
    const r: PerfReport = {
      type: 'monitor.perf',
      agent: this.o.name,
      backend: this.backend.kind,
      supports: [...this.backend.supports],
      config,
      configVersion: this.version,
      now,
      basis,
      // Only the model's terms: a back end's calibration may carry how it was measured too.
      calibration: calibrationSchema.parse(pickKeys(this.backend.calibration(), Object.keys(calibrationSchema.shape))),
      prediction: this.perf.prediction(config),
      events: { collected: { ...this.collected }, published: this.published, dropped: this.dropped, backlog: this.backlog },
      target: { pid: this.o.target?.pid ?? null, alive: this.o.target?.alive() ?? true },
    };
    if (!this.failure) this.pub.publish(PERF_CHANNEL, r);
    return r;
  }
}

function pickKeys(o: object, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => keys.includes(k)));
}
