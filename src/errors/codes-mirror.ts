import type { ErrorSpec } from './spec.js'

/** Codes of mirroring, MWC, resync and scrub (domain lvm); see docs/errors/. */
export const MIRROR_CODES = {
} as const satisfies Record<string, ErrorSpec>
