import type { ErrorSpec } from './spec.js'

/** Codes of the dlm domain; see docs/errors.md. */
export const DLM_CODES = {
} as const satisfies Record<string, ErrorSpec>
