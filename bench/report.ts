// Tables and chart of a bench run.

import type { RunResult } from './run.js';

export function printTable(runs: RunResult[]): void {
  for (const r of runs) process.stdout.write(`${JSON.stringify({ label: r.label, ch: r.channels, pub: r.publishRate, del: r.deliverRates, lat: r.latencyMs })}\n`);
}

export function writeReport(_doc: { runs: RunResult[] }): string {
  return '(not yet)';
}
