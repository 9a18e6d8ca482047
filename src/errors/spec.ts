import { constants } from 'node:os'

export type Domain = 'lvm' | 'lsm' | 'dlm' | 'lwm' | 'fuse' | 'engine'

/** Errno names a FUSE reply may carry; converted to numbers only at the native boundary. */
export type ErrnoName = keyof typeof constants.errno

/**
 * One row of the shared error table.
 * - `ref`: the numeric value the reference document's system uses, where one is known.
 * - `exit`: CLI exit code, 3 for usage errors and 5 for failed operations (lvm2's convention).
 * - `errno`: what a FUSE request failing with this code answers.
 * - `meaning`: what the code means in lvmfs (documented in docs/errors.md).
 */
export interface ErrorSpec {
  readonly domain: Domain
  readonly ref?: number
  readonly exit: 3 | 5
  readonly errno: ErrnoName
  readonly meaning: string
}

export function errnoNumber(name: ErrnoName): number {
  return constants.errno[name]
}
