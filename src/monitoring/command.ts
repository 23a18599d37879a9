// The control command an analyst (or the dashboard) publishes on monitor.control, and the two
// answers an agent publishes on monitor.status: an acknowledgement with the resulting
// configuration and the predicted overhead, or a refusal saying why. All three are zod-validated
// messages. applyCommand() is the pure decision: it either returns the new configuration and
// what changed, or a refusal, and on refusal the configuration is untouched (it never builds a
// partial one). The control module around it owns the back end, the predictor and the channel.

import { z } from 'zod';
import { FitError, NAME_PATTERN } from '../core/index.js';
import { predictionSchema, type Prediction } from './predict.js';
import { SET_NAMES, activeSets, applySetChange, describeZodIssue, monitorConfigSchema, setSpecSchema, type MonitorConfig, type SetEffect, type SetName } from './sets.js';

const name = z.string().regex(NAME_PATTERN, 'a name of letters, digits, ".", "_" or "-", starting with a letter or digit, at most 128 characters');

export const controlCommandSchema = z
  .strictObject({
    type: z.literal('monitor.command'),
    /** Chosen by the issuer, unique per issuer: an agent answers each id once. */
    id: name,
    /** The agent the command is for; other agents on the channel ignore it. */
    agent: name,
    /** Who asks: a client name from the control table (the broker authenticates the publisher). */
    issuer: name,
    enable: z.array(setSpecSchema).max(SET_NAMES.length).default([]),
    disable: z.array(z.enum(SET_NAMES)).max(SET_NAMES.length).default([]),
    /** Validate and predict only; change nothing. */
    dryRun: z.boolean().default(false),
  })
  .refine((c) => c.enable.length + c.disable.length > 0, { message: 'a command enables or disables at least one set', path: ['enable'] });

export type ControlCommand = z.infer<typeof controlCommandSchema>;

const setEffectSchema = z.union([
  z.strictObject({ set: z.enum(SET_NAMES), action: z.literal('enable'), params: setSpecSchema }),
  z.strictObject({ set: z.enum(SET_NAMES), action: z.literal('update'), params: setSpecSchema, previous: setSpecSchema }),
  z.strictObject({ set: z.enum(SET_NAMES), action: z.literal('disable'), previous: setSpecSchema }),
]);

export const commandAckSchema = z.strictObject({
  type: z.literal('monitor.ack'),
  commandId: name,
  agent: name,
  issuer: name,
  dryRun: z.boolean(),
  /** The configuration now (dry run: the one the command would give). */
  config: monitorConfigSchema,
  /** Counts changes applied by the agent; unchanged by a dry run or a command that changes nothing. */
  configVersion: z.number().int().min(0),
  effects: z.array(setEffectSchema),
  /** Predicted overhead of `config`; null when the agent has not observed the target long enough. */
  prediction: predictionSchema.nullable(),
});
export type CommandAck = z.infer<typeof commandAckSchema>;

/**
 * invalid: does not parse or names a set twice; wrong-agent; not-active: disables a set that is
 * not active; unsupported: a set the back end cannot run; not-allowed: the issuer is not the
 * authenticated publisher or not an allowed issuer; failed: the back end could not apply it
 * (nothing changed); stale: published before this agent started, for an earlier run of it.
 */
export const REFUSAL_REASONS = ['invalid', 'wrong-agent', 'not-active', 'unsupported', 'not-allowed', 'failed', 'stale'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export const commandRefusalSchema = z.strictObject({
  type: z.literal('monitor.refusal'),
  /** null when the command was too malformed to carry a usable id. */
  commandId: name.nullable(),
  agent: name,
  issuer: name.nullable(),
  reason: z.enum(REFUSAL_REASONS),
  message: z.string().min(1),
  /** The configuration, unchanged. */
  config: monitorConfigSchema,
  configVersion: z.number().int().min(0),
});
export type CommandRefusal = z.infer<typeof commandRefusalSchema>;

/** Parses a control command read from the channel; throws FIT_ERR_MONITOR_CONFIG saying what is wrong. */
export function parseCommand(value: unknown): ControlCommand {
  const r = controlCommandSchema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = issue.path.map(String).join('.');
  throw new FitError('FIT_ERR_MONITOR_CONFIG', `control command: ${describeZodIssue(issue)}`, { key });
}

export type CommandOutcome =
  | { readonly ok: true; readonly config: MonitorConfig; readonly effects: SetEffect[] }
  | { readonly ok: false; readonly reason: RefusalReason; readonly message: string };

export interface CommandContext {
  /** This agent's name. */
  readonly agent: string;
  /** The sets the back end in use can run. */
  readonly supports: readonly SetName[];
}

/**
 * Decides a parsed command against the current configuration. Pure: the input configuration is
 * never modified; a refusal carries no configuration at all. Refused, in this order: a command
 * for another agent; one that names a set twice; one for a set the back end cannot run; one that
 * disables a set that is not active (the issuer's view is stale; it should look again).
 */
export function applyCommand(config: MonitorConfig, command: ControlCommand, ctx: CommandContext): CommandOutcome {
  if (command.agent !== ctx.agent) return { ok: false, reason: 'wrong-agent', message: `command ${command.id} is for agent ${command.agent}, not ${ctx.agent}` };
  const named = [...command.enable.map((s) => s.set), ...command.disable];
  const twice = named.find((s, i) => named.indexOf(s) !== i);
  if (twice !== undefined) return { ok: false, reason: 'invalid', message: `command ${command.id} names ${twice} more than once (enable it with its parameters, or disable it, not both)` };
  const unsupported = command.enable.find((s) => !ctx.supports.includes(s.set));
  if (unsupported !== undefined) return { ok: false, reason: 'unsupported', message: `this agent's back end cannot run ${unsupported.set}; it runs ${ctx.supports.join(', ')}` };
  const active = new Set(activeSets(config).map((s) => s.set));
  const inactive = command.disable.find((s) => !active.has(s));
  if (inactive !== undefined) return { ok: false, reason: 'not-active', message: `${inactive} is not active, so it cannot be disabled; active: ${[...active].join(', ') || 'none'}` };
  const { config: next, effects } = applySetChange(config, { enable: command.enable, disable: command.disable });
  return { ok: true, config: next, effects };
}

export function ackFor(command: ControlCommand, config: MonitorConfig, configVersion: number, effects: SetEffect[], prediction: Prediction | null): CommandAck {
  return { type: 'monitor.ack', commandId: command.id, agent: command.agent, issuer: command.issuer, dryRun: command.dryRun, config, configVersion, effects, prediction };
}

export function refusalFor(
  command: Pick<ControlCommand, 'id' | 'issuer'> | null,
  agent: string,
  reason: RefusalReason,
  message: string,
  config: MonitorConfig,
  configVersion: number,
): CommandRefusal {
  return { type: 'monitor.refusal', commandId: command?.id ?? null, agent, issuer: command?.issuer ?? null, reason, message, config, configVersion };
}
