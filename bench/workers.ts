// The harness's handle on one worker process: fork, send a command, await its answer.

import { fork, type ChildProcess } from 'node:child_process';
import type { FromWorker, ToWorker } from './protocol.js';
import { withHeapFloor, withHugePages } from '../src/core/index.js';

const WORKER = new URL('./worker.js', import.meta.url).pathname;

export class Worker {
  private readonly proc: ChildProcess;
  private readonly waiting: { type: FromWorker['type']; resolve(m: FromWorker): void; reject(e: Error): void }[] = [];
  private exited: Error | undefined;

  constructor(readonly label: string) {
    // e.g. FIT_BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (docs/performance.md)
    // Every system's clients alike, as our own processes start (src/core/heap-floor.ts).
    const execArgv = withHeapFloor((process.env.FIT_BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean));
    this.proc = fork(WORKER, [], { execArgv, env: withHugePages(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    this.proc.on('message', (m: FromWorker) => {
      if (m.type === 'error') return this.failAll(new Error(`${label}: ${m.message}`));
      const i = this.waiting.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(m);
    });
    this.proc.on('exit', (code, signal) => {
      this.exited = new Error(`${label} exited (${signal ?? code}) while the harness waited on it`);
      this.failAll(this.exited);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  send(m: ToWorker): void {
    if (!this.exited) this.proc.send(m);
  }

  ask<T extends FromWorker['type']>(m: ToWorker, answer: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.label}: no "${answer}" within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({
        type: answer,
        resolve: (x) => {
          clearTimeout(timer);
          resolve(x as Extract<FromWorker, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.send(m);
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    this.send({ type: 'exit' });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  }

  private failAll(e: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(e);
  }
}
