export { ERROR_CODES, FitError, isFitError, invariant } from './errors.js';
export type { ErrorCode, ErrorFields } from './errors.js';
export { DEFAULT_LIMITS, limitsWith, PUBLISH_WINDOW_ORDERED_EVENTS_MAX } from './limits.js';
export type { Limits } from './limits.js';
export { ContentType, NAME_PATTERN, OVERFLOW_POLICIES, PRIORITY_LEVELS, PRIORITY_URGENT, mayPublish, maySubscribe, voteQuorum, publishQuorum } from './types.js';
export type {
  BrokerEvent,
  ChannelClass,
  ClientInfo,
  ControlTable,
  FaultModel,
  OrderMode,
  OverflowPolicy,
  Persist,
  Priority,
  Protection,
  ReplicaInfo,
} from './types.js';
export { mulberry32 } from './prng.js';
export { APT_LOG, ensureDebianPackage, executable } from './packages.js';
export type { DebianBinary } from './packages.js';
export { median } from './stats.js';
export { HUGE_PAGES_OPT_OUT, HUGE_PAGES_TUNABLE, hugePagesState, withHugePages } from './huge-pages.js';
export { grown } from './columns.js';
export type { Column } from './columns.js';
export { HEAP_FLOOR_FLAG, HEAP_FLOOR_OPT_OUT, hasHeapFloor, withHeapFloor } from './heap-floor.js';
export type { HugePagesState } from './huge-pages.js';
