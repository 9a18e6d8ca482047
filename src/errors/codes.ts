import { DAEMON_CODES } from './codes-daemon.js'
import { DLM_CODES } from './codes-dlm.js'
import { ENGINE_CODES } from './codes-engine.js'
import { FUSE_CODES } from './codes-fuse.js'
import { LSM_CODES } from './codes-lsm.js'
import { LVM_CODES } from './codes-lvm.js'
import { LWM_CODES } from './codes-lwm.js'
import { MIRROR_CODES } from './codes-mirror.js'
import { THIN_CODES } from './codes-thin.js'
import type { ErrorSpec } from './spec.js'

/** The single error table: every code lvmfs reports, with its reference value and mappings. */
export const CODES = {
  ...LVM_CODES,
  ...MIRROR_CODES,
  ...THIN_CODES,
  ...DLM_CODES,
  ...LSM_CODES,
  ...LWM_CODES,
  ...FUSE_CODES,
  ...DAEMON_CODES,
  ...ENGINE_CODES,
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof CODES
