import type { ErrorSpec } from './spec.js'

/** Codes of the lvm domain; see docs/errors.md. */
export const LVM_CODES = {
} as const satisfies Record<string, ErrorSpec>
