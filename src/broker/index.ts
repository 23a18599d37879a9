export { BrokerService } from './service.js';
export type { Channel, ChannelCounters, ChannelStats } from './service.js';
export { ClientQueue } from './queue.js';
export type { QueueEntry, QueueSession, QueueCounters } from './queue.js';
export { Dedupe } from './dedupe.js';
export { Deque } from './deque.js';
export { executeControl } from './control.js';
export type { ControlOutcome } from './control.js';
