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

  /**
   * Revives an error sent as `toJSON()` (control socket, lock broker, daemon start-up), so a
   * code raised in another process reaches the caller unchanged. A frame whose code this build
   * does not know becomes ENGINE_PROTOCOL with the original kept in the context.
   */
  static fromJSON(value: unknown): LvmfsError {
    const frame = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
    const code = frame['code']
    const text = typeof frame['message'] === 'string' ? frame['message'] : 'an error without a message'
    const options: ErrorOptions = {
      ...(typeof frame['detail'] === 'string' ? { detail: frame['detail'] } : {}),
      ...(typeof frame['hint'] === 'string' ? { hint: frame['hint'] } : {}),
      ...(isRecord(frame['context']) ? { context: frame['context'] } : {}),
    }
    if (typeof code !== 'string' || !Object.hasOwn(CODES, code)) {
      return new LvmfsError('ENGINE_PROTOCOL', `unknown error code ${JSON.stringify(code)} from a peer: ${text}`, {
        ...options, context: { ...options.context, peerCode: code } })
    }
    const message = text.startsWith(`${code}: `) ? text.slice(code.length + 2) : text
    return new LvmfsError(code as ErrorCode, message, options)
  }
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
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
