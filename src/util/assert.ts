/**
 * Assertions guard programmer invariants, never user or disk input (those get typed
 * LvmfsError values). An AssertionError is never mapped to an errno or retried: the process
 * stops rather than serve from a state it does not understand.
 */
export class AssertionError extends Error {
  readonly code = 'ERR_ASSERTION'
  constructor(message: string) {
    super(message)
    this.name = 'AssertionError'
  }
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message)
}

/** Documents a condition that is sometimes true and sometimes false (TigerBeetle's maybe). */
export function maybe(_condition: boolean): void {}

export function assertNever(value: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${String(value)}`)
}
