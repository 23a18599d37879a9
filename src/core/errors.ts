// Every failure that reaches a user or a log is a FitError with a stable code. Codes are never
// reused or renamed: tools match on them. docs/errors.md lists each one, and
// test/unit/errors-doc.test.ts fails when the two disagree.

export const ERROR_CODES = {
  FIT_ERR_CONFIG: 'the cluster config is missing or invalid',
  FIT_ERR_KEY: 'a key file is missing, unreadable or does not match the config',
  FIT_ERR_USAGE: 'a command was called with a missing or invalid flag',
  FIT_ERR_UNKNOWN_CLIENT: 'the client is not in the control table',
  FIT_ERR_AUTH_FAILED: 'the peer could not prove it holds the key the config names',
  FIT_ERR_NOT_AUTHORIZED: 'the client may not publish or subscribe on that channel',
  FIT_ERR_UNKNOWN_CHANNEL: 'the channel is not in the control table',
  FIT_ERR_FRAME_TOO_LARGE: 'a frame is larger than frameBytesMax',
  FIT_ERR_MALFORMED: 'a frame or request could not be parsed',
  FIT_ERR_UNKNOWN_METHOD: 'the request names a method the replica does not know',
  FIT_ERR_EVENT_TOO_LARGE: 'an event is larger than eventBytesMax',
  FIT_ERR_NOT_SUPPORTED: 'the config asks for a feature this build does not provide yet',
  FIT_ERR_QUORUM_TIMEOUT: 'not enough replicas answered in time',
  FIT_ERR_CONNECTION: 'a connection to a replica failed or closed',
  FIT_ERR_FAULTS_NOT_ALLOWED: 'fault injection was asked for without FITBROKER_ALLOW_FAULTS=1',
  FIT_ERR_REFUSED: 'replicas refused a request',
  FIT_ERR_ORDER_EXPIRED: 'an event of an ordered channel reached too few replicas to be ordered within consensusAttestationSeqs, and was let go: publish it again',
  FIT_ERR_TOO_MANY_CONNECTIONS: 'the client already holds connectionsPerClientMax connections to that replica',
  FIT_ERR_RATE_LIMITED: 'a replica holds back a client that publishes faster than clientEventsPerSecondMax (a notice: nothing is dropped)',
  FIT_ERR_TOO_MANY_PENDING: 'a replica stopped reading a client with more than clientRequestsPendingMax requests waiting for an answer (a notice: nothing is dropped)',
  FIT_ERR_CLIENT_EXISTS: 'acl register names a client already in the control table with another key',
  FIT_ERR_FORGED: 'an event failed the protection check of its channel (MAC, signature or decryption)',
  FIT_ERR_TLS_CERT: 'a TLS certificate, key or CA file is missing, invalid, expired, not issued by the cluster CA, or does not name its node',
  FIT_ERR_TLS_HANDSHAKE: 'a TLS handshake with a replica failed, or the peer on the other side does not speak TLS',
  FIT_ERR_TLS_REQUIRED: 'a plain TCP connection reached a replica that accepts TLS connections only',
  FIT_ERR_STORE: 'a replica cannot write its data directory, or open or write the store of its persist: disk channels in it',
  FIT_ERR_JOURNAL: 'a replica cannot open, read or write its consensus journal, or the journal is damaged or not its own',
  FIT_ERR_MONITOR_CONFIG: 'a monitoring set, its parameters, or a monitoring control command is invalid',
  FIT_ERR_MONITOR_TARGET: 'the process to monitor does not exist, or its command could not be started',
  FIT_ERR_VMI: "the VM introspection back end could not talk to the virtual machine's gdbstub: refused, malformed or unexpected replies",
  FIT_ERR_INTERNAL: 'a bug: an invariant did not hold',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export type ErrorFields = Record<string, string | number | boolean | undefined>;

export class FitError extends Error {
  readonly code: ErrorCode;
  readonly fields: ErrorFields;

  constructor(code: ErrorCode, message: string, fields: ErrorFields = {}) {
    super(message);
    this.name = 'FitError';
    this.code = code;
    this.fields = fields;
  }

  toJSON(): { code: ErrorCode; message: string; fields: ErrorFields } {
    return { code: this.code, message: this.message, fields: this.fields };
  }

  static fromJSON(value: unknown): FitError {
    const v = value as { code?: unknown; message?: unknown; fields?: unknown } | null;
    const code = typeof v?.code === 'string' && v.code in ERROR_CODES ? (v.code as ErrorCode) : 'FIT_ERR_INTERNAL';
    const message = typeof v?.message === 'string' ? v.message : 'a replica sent an error without a message';
    const fields = typeof v?.fields === 'object' && v.fields !== null ? (v.fields as ErrorFields) : {};
    return new FitError(code, message, fields);
  }
}

export function isFitError(e: unknown): e is FitError {
  return e instanceof FitError;
}

/** A broken invariant is a bug: crash loudly rather than limp on with corrupt state. */
export function invariant(condition: unknown, what: string): asserts condition {
  if (!condition) throw new FitError('FIT_ERR_INTERNAL', `invariant broken: ${what}; this is a bug, please report it`);
}
