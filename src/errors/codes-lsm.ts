import type { ErrorSpec } from './spec.js'

/** Codes of the lsm domain; see docs/errors.md. */
export const LSM_CODES = {
} as const satisfies Record<string, ErrorSpec>
