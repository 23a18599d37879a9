// LeaderWatch (src/replica/leader-watch.ts): a leader change is logged once, with the new
// leader, why this replica left the old view, and how long the change took.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LeaderWatch } from '../../src/replica/leader-watch.js';

function captured(): { logger: pino.Logger; lines: () => { level: number; msg: string; [k: string]: unknown }[] } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      out.push(String(chunk));
      done();
    },
  });
  const logger = pino({ level: 'info' }, stream);
  return { logger, lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

test('an idle-leader suspicion, then the new view: two warnings, with the reason and the time taken', () => {
  const { logger, lines } = captured();
  let now = 1000;
  const s = { view: 0, leader: 0, changingView: false, idleLeaderSuspicions: 0, pending: 40 };
  const w = new LeaderWatch(logger, () => s, () => now);
  w.check();
  w.check();
  assert.equal(lines().length, 0, 'nothing changed, nothing logged');
  // The STOP vote a look before the others agree to leave the view.
  Object.assign(s, { idleLeaderSuspicions: 1 });
  w.check();
  Object.assign(s, { changingView: true });
  w.check();
  now += 1200;
  Object.assign(s, { changingView: false, view: 1, leader: 1 });
  w.check();
  w.check();
  const [leaving, changed, ...rest] = lines();
  assert.equal(rest.length, 0, 'each change logged once');
  assert.equal(leaving!.level, 40);
  assert.equal(leaving!.reason, 'idle-leader');
  assert.match(leaving!.msg, /leaving view 0: leader 0 left this replica idle/);
  assert.match(changed!.msg, /leader changed: replica 1 leads view 1 \(was replica 0, view 0\)/);
  assert.equal(changed!.tookMs, 1200);
});

test('a view change this replica joined on a timeout, and one seen only once it was over', () => {
  const { logger, lines } = captured();
  const s = { view: 3, leader: 3, changingView: false, idleLeaderSuspicions: 2, pending: 0 };
  const w = new LeaderWatch(logger, () => s);
  w.check();
  Object.assign(s, { changingView: true });
  w.check();
  assert.equal(lines()[0]!.reason, 'timeout');
  Object.assign(s, { changingView: false, view: 4, leader: 0 });
  w.check();
  // Begun and ended between two looks: logged, not timed.
  Object.assign(s, { view: 5, leader: 1 });
  w.check();
  const last = lines().at(-1)!;
  assert.match(last.msg, /leader changed: replica 1 leads view 5 \(was replica 0, view 4\)/);
  assert.equal(last.tookMs, undefined);
});
