/**
 * Lock modes and the compatibility matrix, the same as the VMS DLM and Linux fs/dlm/lock.c
 * `__dlm_compat_matrix` (domain.md §3). Row = granted mode, column = requested mode.
 *
 * Invariants:
 *  - the matrix is symmetric;
 *  - NL is compatible with everything, EX only with NL;
 *  - "down-conversion" is derived from the matrix, never listed by hand: old → new is down when
 *    every mode compatible with old is also compatible with new (so PR → CW is *not* down).
 */
export const LOCK_MODES = ['NL', 'CR', 'CW', 'PR', 'PW', 'EX'] as const
export type LockMode = typeof LOCK_MODES[number]

const MATRIX: Record<LockMode, Record<LockMode, boolean>> = {
  NL: { NL: true, CR: true, CW: true, PR: true, PW: true, EX: true },
  CR: { NL: true, CR: true, CW: true, PR: true, PW: true, EX: false },
  CW: { NL: true, CR: true, CW: true, PR: false, PW: false, EX: false },
  PR: { NL: true, CR: true, CW: false, PR: true, PW: false, EX: false },
  PW: { NL: true, CR: true, CW: false, PR: false, PW: false, EX: false },
  EX: { NL: true, CR: false, CW: false, PR: false, PW: false, EX: false },
}

export function isLockMode(value: unknown): value is LockMode {
  return typeof value === 'string' && (LOCK_MODES as readonly string[]).includes(value)
}

export function modesCompatible(granted: LockMode, requested: LockMode): boolean {
  return MATRIX[granted][requested]
}

/** True when converting from `from` to `to` can never block anyone new (see file invariants). */
export function isDownConversion(from: LockMode, to: LockMode): boolean {
  return LOCK_MODES.every((other) => !MATRIX[from][other] || MATRIX[to][other])
}

/** PW and EX are the modes that may write the lock value block. */
export function writesValueBlock(mode: LockMode): boolean {
  return mode === 'PW' || mode === 'EX'
}

/** Rank in NL < CR < CW < PR < PW < EX, used only to order blocking notifications. */
export function modeRank(mode: LockMode): number {
  return LOCK_MODES.indexOf(mode)
}
