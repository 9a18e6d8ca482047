import type { ErrorSpec } from './spec.js'

/** Codes of the lwm domain; see docs/errors.md. */
export const LWM_CODES = {
} as const satisfies Record<string, ErrorSpec>
