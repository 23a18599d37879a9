// The SQLite candidate (npm better-sqlite3@12; 13 needs Node 22 and crashes on 20). WAL mode.
// better-sqlite3 is synchronous: a commit, fsync included, runs on the JS thread and blocks the
// event loop for its duration. Group commit is the application's (group-commit.ts): batches
// queued in one turn are written in one transaction.
//
// synchronous=FULL syncs the WAL at every commit: durable. synchronous=NORMAL syncs it only at
// checkpoints: a commit survives the process dying but not the machine losing power, so
// `sqlite-normal` is a reference for what the fsync costs, not a candidate for acknowledgements.

import type { EventStore, StoreKind } from './types.js';
import { GroupCommit } from './group-commit.js';
import { importOptional } from './optional.js';

/** The part of better-sqlite3 this bench uses (installed on demand: optional.ts). */
interface Statement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  raw(): Statement;
  iterate(...params: unknown[]): IterableIterator<unknown>;
}
interface Db {
  exec(sql: string): unknown;
  prepare(sql: string): Statement;
  transaction<A>(fn: (arg: A) => void): (arg: A) => void;
  pragma(sql: string, o?: { simple: boolean }): unknown;
  close(): unknown;
}
import { join } from 'node:path';

type Op =
  | { kind: 'put'; channel: string; index: number; value: Buffer }
  | { kind: 'trim'; channel: string; from: number; below: number }
  | { kind: 'position'; channel: string; client: string; index: number };

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS records (channel TEXT NOT NULL, idx INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (channel, idx)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS positions (channel TEXT NOT NULL, client TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (channel, client)) WITHOUT ROWID;
`;

class SqliteStore implements EventStore {
  private readonly group: GroupCommit<Op>;

  constructor(private readonly db: Db) {
    db.exec(SCHEMA);
    const put = db.prepare('INSERT INTO records (channel, idx, body) VALUES (?, ?, ?)');
    const trim = db.prepare('DELETE FROM records WHERE channel = ? AND idx >= ? AND idx < ?');
    const position = db.prepare('INSERT INTO positions (channel, client, idx) VALUES (?, ?, ?) ON CONFLICT (channel, client) DO UPDATE SET idx = excluded.idx');
    const commit = db.transaction((ops: Op[]) => {
      for (const op of ops) {
        if (op.kind === 'put') put.run(op.channel, op.index, op.value);
        else if (op.kind === 'trim') trim.run(op.channel, op.from, op.below);
        else position.run(op.channel, op.client, op.index);
      }
    });
    this.group = new GroupCommit<Op>((ops) => commit(ops));
  }

  append(channel: string, first: number, values: Buffer[]): Promise<void> {
    return this.group.submit(values.map((value, i) => ({ kind: 'put', channel, index: first + i, value })));
  }

  setPosition(channel: string, client: string, index: number): void {
    this.group.submitLazy(`${channel}\0${client}`, { kind: 'position', channel, client, index });
  }

  trim(channel: string, from: number, below: number): Promise<void> {
    return from < below ? this.group.submit([{ kind: 'trim', channel, from, below }]) : Promise.resolve();
  }

  async scan(channel: string, onRecord: (index: number, value: Uint8Array) => void): Promise<number> {
    let n = 0;
    const rows = this.db.prepare('SELECT idx, body FROM records WHERE channel = ? ORDER BY idx').raw().iterate(channel) as IterableIterator<[number, Buffer]>;
    for (const [index, body] of rows) {
      onRecord(index, body);
      n++;
    }
    return n;
  }

  async position(channel: string, client: string): Promise<number | undefined> {
    const row = this.db.prepare('SELECT idx FROM positions WHERE channel = ? AND client = ?').get(channel, client) as { idx: number } | undefined;
    return row?.idx;
  }

  async check(): Promise<string | undefined> {
    const r = this.db.pragma('integrity_check', { simple: true }) as string;
    return r === 'ok' ? undefined : `integrity_check: ${r}`;
  }

  async close(): Promise<void> {
    await this.group.drain();
    this.db.close();
  }
}

export function sqliteKind(full: boolean): StoreKind {
  return {
    name: full ? 'sqlite' : 'sqlite-normal',
    settings: full
      ? 'better-sqlite3: journal_mode=WAL, synchronous=FULL, one transaction per turn'
      : 'better-sqlite3: journal_mode=WAL, synchronous=NORMAL (not durable on power loss), one transaction per turn',
    durable: full,
    package: 'better-sqlite3',
    async open(dir: string): Promise<EventStore> {
      const { default: Database } = (await importOptional('better-sqlite3')) as { default: new (file: string) => Db };
      const db = new Database(join(dir, 'events.db'));
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${full ? 'FULL' : 'NORMAL'}`);
      return new SqliteStore(db);
    },
  };
}
