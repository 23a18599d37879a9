// Runs a fast-check property so that any failure can be replayed exactly: the error names the
// seed, the counterexample path and the command that reruns that one test with them.
// Environment: FC_SEED (and optionally FC_PATH) replay a reported failure; FC_RUNS raises the
// number of generated cases for a longer soak. Without FC_SEED every run draws a new seed.

import fc from 'fast-check';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

/** Compiled to dist/test/helpers/property.js: three levels up is the repo root. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function fromEnv(): { seed?: number; path?: string; numRuns?: number } {
  const out: { seed?: number; path?: string; numRuns?: number } = {};
  if (process.env.FC_SEED !== undefined && process.env.FC_SEED !== '') out.seed = Number(process.env.FC_SEED);
  if (process.env.FC_PATH) out.path = process.env.FC_PATH;
  if (process.env.FC_RUNS) out.numRuns = Number(process.env.FC_RUNS);
  return out;
}

const regexEscape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Checks `property`; on failure throws fast-check's report (seed, path, shrunk counterexample,
 * the assertion that failed) followed by the replay command. Pass the test's context and the
 * test file's import.meta.url so the command names the right file and test.
 */
export function assertProperty<Ts extends [unknown, ...unknown[]]>(t: TestContext, testFileUrl: string, property: fc.IProperty<Ts>, params: fc.Parameters<Ts> = {}): void {
  const details = fc.check(property, { ...params, ...fromEnv() });
  if (details.failed) throw replayable(t, testFileUrl, details);
}

/** assertProperty() for an fc.asyncProperty: cases that run real timers and I/O. */
export async function assertAsyncProperty<Ts extends [unknown, ...unknown[]]>(t: TestContext, testFileUrl: string, property: fc.IAsyncProperty<Ts>, params: fc.Parameters<Ts> = {}): Promise<void> {
  const details = await fc.check(property, { ...params, ...fromEnv() });
  if (details.failed) throw replayable(t, testFileUrl, details);
}

function replayable<Ts>(t: TestContext, testFileUrl: string, details: fc.RunDetails<Ts>): Error {
  const file = relative(ROOT, fileURLToPath(testFileUrl));
  const pattern = shellQuote(`^${regexEscape(t.name)}$`);
  const replay = `FC_SEED=${details.seed} FC_PATH=${details.counterexamplePath ?? ''} node --test --test-name-pattern=${pattern} ${file}`;
  const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  return new Error(
    `${fc.defaultReportMessage(details) ?? 'property failed'}\nfailed with: ${cause}\n\n` +
      `replay this case (after npx tsc -p .):\n  ${replay}\n` +
      `or rerun the whole search from its seed: FC_SEED=${details.seed} node --test ${file}`,
  );
}
