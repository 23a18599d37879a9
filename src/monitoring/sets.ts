// The monitoring sets an agent can run against its target, their parameters, the configuration
// (which sets are active with what parameters) and a set change (sets to enable with their
// parameters, sets to disable). Everything here is pure data and validation: no back end, no
// clock. A bad set spec is a FitError FIT_ERR_MONITOR_CONFIG whose message names the set and the
// parameter; this module never returns a half-valid configuration.
//
// Sets (docs/monitoring.md, "Monitoring sets"):
//   proclist     the target's process list, extracted every periodMs
//   syscalls     each call of the listed syscalls (or all) with pid, arguments, result, time
//   files        the target's open files (fd -> path), extracted every periodMs
//
// The CLI form of a set (the future `monitor --set` and `reconfigure --enable/--disable`):
//   proclist | proclist:500          period in ms (default 1000)
//   syscalls | syscalls:all          every syscall
//   syscalls:openat,execve           those syscalls only
//   files | files:2000               period in ms (default 1000)

import { z } from 'zod';
import { FitError } from '../core/index.js';

export const SET_NAMES = ['proclist', 'syscalls', 'files'] as const;
export type SetName = (typeof SET_NAMES)[number];

/** Limits on set parameters; the unit is in each name. */
export const SET_LIMITS = {
  /** A periodic extraction more often than this would keep a VM paused most of the time. */
  periodMsMin: 10,
  periodMsMax: 3_600_000,
  periodMsDefault: 1000,
  /** Linux x86-64 has about 360 syscalls; a longer list is a mistake. */
  syscallsMax: 512,
} as const;

/** Linux syscall names: lower case letters, digits and underscores (`openat`, `rt_sigaction`). */
export const SYSCALL_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,63}$/;

const periodMs = z
  .number()
  .int('periodMs must be a whole number of milliseconds')
  .min(SET_LIMITS.periodMsMin, `periodMs must be at least ${SET_LIMITS.periodMsMin} ms`)
  .max(SET_LIMITS.periodMsMax, `periodMs must be at most ${SET_LIMITS.periodMsMax} ms (one hour)`);

const syscallName = z.string().regex(SYSCALL_NAME_PATTERN, 'a syscall name is lower case letters, digits and "_" (such as openat or rt_sigaction)');

export const proclistParamsSchema = z.strictObject({ periodMs });
export const filesParamsSchema = z.strictObject({ periodMs });
export const syscallsParamsSchema = z.strictObject({
  /** 'all', or the names to trace: at least one, no repeats. */
  syscalls: z.union([
    z.literal('all'),
    z
      .array(syscallName)
      .min(1, 'list at least one syscall, or say all')
      .max(SET_LIMITS.syscallsMax, `at most ${SET_LIMITS.syscallsMax} syscalls`)
      .refine((xs) => new Set(xs).size === xs.length, 'a syscall is listed twice'),
  ]),
});

export type ProclistParams = z.infer<typeof proclistParamsSchema>;
export type FilesParams = z.infer<typeof filesParamsSchema>;
export type SyscallsParams = z.infer<typeof syscallsParamsSchema>;

/** One set with its parameters: what `--enable` names. */
export const setSpecSchema = z.discriminatedUnion('set', [
  z.strictObject({ set: z.literal('proclist'), ...proclistParamsSchema.shape }),
  z.strictObject({ set: z.literal('syscalls'), ...syscallsParamsSchema.shape }),
  z.strictObject({ set: z.literal('files'), ...filesParamsSchema.shape }),
]);
export type SetSpec = z.infer<typeof setSpecSchema>;

/** The active sets: a set is active when its key is present. */
export interface MonitorConfig {
  readonly proclist?: ProclistParams;
  readonly syscalls?: SyscallsParams;
  readonly files?: FilesParams;
}

export const monitorConfigSchema = z.strictObject({
  proclist: proclistParamsSchema.optional(),
  syscalls: syscallsParamsSchema.optional(),
  files: filesParamsSchema.optional(),
});

/** Sets to enable (or re-parameterize) and sets to disable, applied together or not at all. */
export interface SetChange {
  readonly enable: readonly SetSpec[];
  readonly disable: readonly SetName[];
}

export const setChangeSchema = z.strictObject({
  enable: z.array(setSpecSchema).max(SET_NAMES.length).default([]),
  disable: z.array(z.enum(SET_NAMES)).max(SET_NAMES.length).default([]),
});

/** What one change did to one set, for acknowledgements and logs. */
export type SetEffect =
  | { readonly set: SetName; readonly action: 'enable'; readonly params: SetSpec }
  | { readonly set: SetName; readonly action: 'update'; readonly params: SetSpec; readonly previous: SetSpec }
  | { readonly set: SetName; readonly action: 'disable'; readonly previous: SetSpec };

export const EMPTY_CONFIG: MonitorConfig = Object.freeze({});

/** The zod issue as one sentence a user can act on, with the path it is at. */
export function describeZodIssue(issue: { path: PropertyKey[]; message: string }): string {
  const where = issue.path.map(String).join('.');
  // zod's type messages ("Invalid input: expected string, received undefined") say what the
  // schema wanted, not what to do: a missing field is named as missing.
  const type = /expected (\w+), received (\w+)/.exec(issue.message);
  if (type && where !== '') return type[2] === 'undefined' ? `${where} is missing (a ${type[1]} is required)` : `${where} must be a ${type[1]}, not a ${type[2]}`;
  return where === '' ? issue.message : `${where}: ${issue.message}`;
}

function invalid(message: string, fields: Record<string, string> = {}): FitError {
  return new FitError('FIT_ERR_MONITOR_CONFIG', message, fields);
}

/** Validates a set spec given as data (from a command or a file); throws FIT_ERR_MONITOR_CONFIG. */
export function parseSetSpecValue(value: unknown): SetSpec {
  const r = setSpecSchema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const set = typeof (value as { set?: unknown } | null)?.set === 'string' ? String((value as { set: string }).set) : '';
  const known = SET_NAMES.join(', ');
  const message = issue.path[0] === 'set' ? `unknown monitoring set ${JSON.stringify(set)}: the sets are ${known}` : `monitoring set ${set}: ${describeZodIssue(issue)}`;
  return throwing(invalid(message, { set, key: issue.path.map(String).join('.') }));
}

function throwing(e: FitError): never {
  throw e;
}

function setName(text: string): SetName {
  if ((SET_NAMES as readonly string[]).includes(text)) return text as SetName;
  throw invalid(`unknown monitoring set ${JSON.stringify(text)}: the sets are ${SET_NAMES.join(', ')}`, { set: text });
}

function periodFrom(set: SetName, arg: string | undefined): number {
  if (arg === undefined) return SET_LIMITS.periodMsDefault;
  if (!/^[0-9]+$/.test(arg)) throw invalid(`${set}:${arg}: the parameter of ${set} is its period in whole milliseconds, such as ${set}:500`, { set });
  return Number(arg);
}

/**
 * Parses the CLI form of one set (`syscalls:openat,execve`, `proclist:500`, `files`) into a
 * validated SetSpec. Throws FIT_ERR_MONITOR_CONFIG naming what is wrong.
 */
export function parseSetSpec(text: string): SetSpec {
  const colon = text.indexOf(':');
  const set = setName(colon === -1 ? text : text.slice(0, colon));
  const arg = colon === -1 ? undefined : text.slice(colon + 1);
  if (arg === '') throw invalid(`${text}: nothing after ":"; leave the ":" off for the default`, { set });
  switch (set) {
    case 'proclist':
    case 'files':
      return parseSetSpecValue({ set, periodMs: periodFrom(set, arg) });
    case 'syscalls':
      return parseSetSpecValue({ set, syscalls: arg === undefined || arg === 'all' ? 'all' : arg.split(',').map((s) => s.trim()) });
  }
}

/** Parses the CLI form of a change: `--enable` specs and `--disable` set names. */
export function parseSetChange(enable: readonly string[], disable: readonly string[]): SetChange {
  const change = { enable: enable.map(parseSetSpec), disable: disable.map((d) => setName(d.trim())) };
  checkChange(change);
  return change;
}

/** Validates a change given as data; throws FIT_ERR_MONITOR_CONFIG. */
export function parseSetChangeValue(value: unknown): SetChange {
  const r = setChangeSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw invalid(`set change: ${describeZodIssue(issue)}`, { key: issue.path.map(String).join('.') });
  }
  checkChange(r.data);
  return r.data;
}

/** A change must not name one set twice (enable twice, disable twice, or both). */
function checkChange(change: SetChange): void {
  const named = [...change.enable.map((s) => s.set), ...change.disable];
  const twice = named.find((s, i) => named.indexOf(s) !== i);
  if (twice !== undefined) throw invalid(`set change names ${twice} more than once (enable it with its parameters, or disable it, not both)`, { set: twice });
}

/** The active sets of a configuration as specs, in SET_NAMES order. */
export function activeSets(config: MonitorConfig): SetSpec[] {
  const out: SetSpec[] = [];
  if (config.proclist) out.push({ set: 'proclist', ...config.proclist });
  if (config.syscalls) out.push({ set: 'syscalls', ...config.syscalls });
  if (config.files) out.push({ set: 'files', ...config.files });
  return out;
}

function specOf(config: MonitorConfig, set: SetName): SetSpec | undefined {
  return activeSets(config).find((s) => s.set === set);
}

function withSet(config: MonitorConfig, spec: SetSpec): MonitorConfig {
  switch (spec.set) {
    case 'proclist':
      return { ...config, proclist: { periodMs: spec.periodMs } };
    case 'files':
      return { ...config, files: { periodMs: spec.periodMs } };
    case 'syscalls':
      return { ...config, syscalls: { syscalls: spec.syscalls === 'all' ? 'all' : [...spec.syscalls] } };
  }
}

function withoutSet(config: MonitorConfig, set: SetName): MonitorConfig {
  const copy: { -readonly [K in keyof MonitorConfig]: MonitorConfig[K] } = { ...config };
  delete copy[set];
  return copy;
}

export function sameSpec(a: SetSpec, b: SetSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Applies a (validated) change to a configuration. Pure: returns the new configuration and what
 * changed; enabling an active set with the same parameters changes nothing. Disabling a set
 * that is not active is not an error here (the control module decides whether to refuse it).
 */
export function applySetChange(config: MonitorConfig, change: SetChange): { config: MonitorConfig; effects: SetEffect[] } {
  let next = config;
  const effects: SetEffect[] = [];
  for (const set of change.disable) {
    const previous = specOf(next, set);
    if (previous === undefined) continue;
    next = withoutSet(next, set);
    effects.push({ set, action: 'disable', previous });
  }
  for (const spec of change.enable) {
    const previous = specOf(next, spec.set);
    if (previous !== undefined && sameSpec(previous, spec)) continue;
    next = withSet(next, spec);
    effects.push(previous === undefined ? { set: spec.set, action: 'enable', params: spec } : { set: spec.set, action: 'update', params: spec, previous });
  }
  return { config: next, effects };
}

/** Does this configuration trace that syscall? */
export function tracesSyscall(config: MonitorConfig, name: string): boolean {
  const s = config.syscalls?.syscalls;
  return s === 'all' || (s !== undefined && s.includes(name));
}

/** The configuration in the CLI form, e.g. `proclist:500 syscalls:openat,execve`; `(none)` when empty. */
export function formatConfig(config: MonitorConfig): string {
  const parts = activeSets(config).map((s) => (s.set === 'syscalls' ? `syscalls:${s.syscalls === 'all' ? 'all' : s.syscalls.join(',')}` : `${s.set}:${s.periodMs}`));
  return parts.length === 0 ? '(none)' : parts.join(' ');
}
