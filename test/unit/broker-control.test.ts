// The control table in a snapshot (src/broker/control.ts): encoded canonically, so replicas
// that reached the same table by different paths sign the same digest; restored in place, so
// connections authenticated as a client see its rights at once, with queues opened and closed
// as the subscriptions say.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { limitsWith, type ChannelClass, type ClientInfo, type ControlTable } from '../../src/core/index.js';
import { BrokerService, controlSnapshot, restoreControl } from '../../src/broker/index.js';

const cls: ChannelClass = { fault: 'bft', order: 'none', priority: 0, capacityEvents: 100, ttlMs: 60_000, overflow: 'drop-oldest', persist: 'memory', protection: 'si' };
const client = (id: string, publish: string[], subscribe: string[]): ClientInfo => ({ id, publicKey: `key-${id}`, publish, subscribe, admin: false });

function service(clients: ClientInfo[]): BrokerService {
  const table: ControlTable = { channels: new Map([['alerts', cls], ['metrics', cls]]), clients: new Map(clients.map((c) => [c.id, c])) };
  return new BrokerService(table, limitsWith({}), () => 0);
}

const queues = (svc: BrokerService, tag: string): string[] => Object.keys(svc.stats().find((c) => c.tag === tag)!.queues).sort();

test('two tables with the same clients and rights encode the same, whatever order they were filled in', () => {
  const a = service([client('probe', ['metrics', 'alerts'], []), client('siem', [], ['alerts'])]);
  const b = service([client('siem', [], ['alerts']), client('probe', ['alerts', 'metrics'], [])]);
  assert.deepEqual(controlSnapshot(a.controlTable), controlSnapshot(b.controlTable));
  assert.deepEqual(controlSnapshot(a.controlTable)[0], ['probe', 'key-probe', false, ['alerts', 'metrics'], []]);
});

test('a restored table changes clients in place, opens and closes queues, and strips a client it no longer has of every right', () => {
  const siem = client('siem', [], ['alerts']);
  const gone = client('gone', ['alerts'], ['metrics']);
  const svc = service([siem, gone]);
  assert.deepEqual([queues(svc, 'alerts'), queues(svc, 'metrics')], [['siem'], ['gone']]);
  const other = service([client('siem', ['alerts'], ['metrics']), client('late', [], ['*'])]);
  restoreControl(svc, JSON.parse(JSON.stringify(controlSnapshot(other.controlTable))));
  assert.deepEqual(siem, client('siem', ['alerts'], ['metrics']), 'the object a connection holds sees the new rights');
  assert.deepEqual([gone.publish, gone.subscribe], [[], []], 'a connection of a client the table no longer has may do nothing');
  assert.deepEqual([...svc.controlTable.clients.keys()].sort(), ['late', 'siem']);
  assert.deepEqual([queues(svc, 'alerts'), queues(svc, 'metrics')], [['late'], ['late', 'siem']]);
  assert.deepEqual(controlSnapshot(svc.controlTable), controlSnapshot(other.controlTable));
});

test('on an ordered channel a restored table adds and removes readers of the log, a new one starting at its end', () => {
  const table: ControlTable = {
    channels: new Map([['orders', { ...cls, order: 'channel' }]]),
    clients: new Map([client('old', [], ['orders'])].map((c) => [c.id, c])),
  };
  const svc = new BrokerService(table, limitsWith({}), () => 0);
  for (let seq = 1; seq <= 3; seq++) svc.sequencer.log('orders')!.append(seq, Buffer.alloc(8), 0);
  restoreControl(svc, [['new', 'key-new', false, [], ['orders']]]);
  const positions = svc.stats().find((c) => c.tag === 'orders')!.log!.positions;
  assert.deepEqual(Object.keys(positions), ['new']);
  assert.equal(positions.new!.next, 4, 'a reader added by a snapshot starts after what the log holds, as one added by a change would');
});
