import { randomBytes } from 'node:crypto'

/** A new 128-bit id (PV or VG) as 32 lower-case hex digits. */
export function newId(): string {
  return randomBytes(16).toString('hex')
}
