// A progress bar on a terminal (cli-progress), plain lines otherwise (CI logs, pipes).

import { SingleBar, Presets } from 'cli-progress';

export class Progress {
  private readonly bar: SingleBar | undefined;
  private done = 0;

  constructor(private readonly total: number) {
    if (process.stderr.isTTY) {
      this.bar = new SingleBar({ format: '{bar} {value}/{total} | {what}', stream: process.stderr, hideCursor: true, clearOnComplete: true }, Presets.shades_classic);
      this.bar.start(total, 0, { what: '' });
    }
  }

  step(what: string): void {
    this.done = Math.min(this.total, this.done + 1);
    if (this.bar) this.bar.update(this.done, { what });
    else process.stderr.write(`[${this.done}/${this.total}] ${what}\n`);
  }

  log(line: string): void {
    if (this.bar) {
      this.bar.stop();
      process.stdout.write(`${line}\n`);
      this.bar.start(this.total, this.done, { what: '' });
    } else process.stdout.write(`${line}\n`);
  }

  stop(): void {
    this.bar?.stop();
  }
}
