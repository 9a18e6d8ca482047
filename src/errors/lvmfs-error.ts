import { CODES, type ErrorCode } from './codes.js'
import { constants } from 'node:os'
import { errnoNumber, type Domain, type ErrnoName, type ErrorSpec } from './spec.js'

const BRAND = Symbol.for('lvmfs.error')

export interface ErrorOptions {
  /** A full sentence with specifics (which device, which field, expected and got). */
  readonly detail?: string
  /** A full sentence suggesting what to do. */
  readonly hint?: string
  readonly cause?: unknown
  /** Machine-readable specifics for --json output and tests. */
  readonly context?: Readonly<Record<string, unknown>>
}

/**
 * The one error class of lvmfs. Callers match on `code`, never on message text. The message
 * is prefixed with the code so logs and terminals always show it.
 */
export class LvmfsError extends Error {
  readonly code: ErrorCode
  readonly domain: Domain
  readonly ref: number | undefined
  readonly detail: string | undefined
  readonly hint: string | undefined
  readonly context: Readonly<Record<string, unknown>>

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(`${code}: ${message}`, { cause: options.cause })
    const spec = CODES[code]
    this.name = 'LvmfsError'
    this.code = code
    this.domain = spec.domain
    this.ref = (spec as ErrorSpec).ref
    this.detail = options.detail
    this.hint = options.hint
    this.context = options.context ?? {}
  }

  get [BRAND](): true {
    return true
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null &&
      (value as Record<symbol, unknown>)[BRAND] === true
  }

  get exitCode(): 3 | 5 {
    return CODES[this.code].exit
  }

  get errnoName(): ErrnoName {
    return CODES[this.code].errno
  }

  get errno(): number {
    return errnoNumber(this.errnoName)
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, ref: this.ref, message: this.message, detail: this.detail,
      hint: this.hint, context: this.context }
  }
}

export function isLvmfsError(value: unknown, code?: ErrorCode): value is LvmfsError {
  return value instanceof LvmfsError && (code === undefined || value.code === code)
}

/** Errno for any thrown value: typed errors map through the table, Node system errors keep
 * their own errno, anything else is EIO. */
export function errnoOf(value: unknown): number {
  if (value instanceof LvmfsError) return value.errno
  const code = (value as { code?: unknown } | null)?.code
  if (typeof code === 'string' && code in constants.errno) return errnoNumber(code as ErrnoName)
  return errnoNumber('EIO')
}
