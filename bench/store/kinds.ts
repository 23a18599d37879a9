// Every candidate configuration the store-choice bench measures, by name.

import type { StoreKind } from './types.js';
import { lmdbKind } from './lmdb.js';
import { levelKind } from './level.js';
import { sqliteKind } from './sqlite.js';

export const KINDS: readonly StoreKind[] = [lmdbKind(true), lmdbKind(false), levelKind(false), levelKind(true), sqliteKind(true), sqliteKind(false)];

export function kindNamed(name: string): StoreKind {
  const k = KINDS.find((x) => x.name === name);
  if (!k) throw new Error(`no store kind "${name}"; one of ${KINDS.map((x) => x.name).join(', ')}`);
  return k;
}
