/**
 * The replication layer's errors. Every failure the layer reports carries a libstoragemgmt
 * (LSM_ERR_*) or low-water mark (LWM_*) code, whether it runs in the daemon or in a CLI process,
 * so the two never disagree about the code of one failure. Local until src/errors has factories.
 */
import { LvmfsError, isLvmfsError, type ErrorCode } from '../errors/index.js'

export interface ErrorExtra {
  detail?: string
  hint?: string
  context?: Record<string, unknown>
  cause?: unknown
}

export function lsm(code: ErrorCode, message: string, extra: ErrorExtra = {}): LvmfsError {
  return new LvmfsError(code, message, extra)
}

/**
 * A VG the replication layer has no online mirror engine for. `cause` is why the caller could
 * not vary it on, when it tried: a VG without quorum exists but is not ready, which is the
 * daemon's answer for a VG it forced off; anything else means it was not found.
 */
export function vgUnreachable(vgName: string, notFound: ErrorCode, cause?: unknown): LvmfsError {
  const context = { vg: vgName }
  if (isLvmfsError(cause, 'LVM_NOQUORUM') || isLvmfsError(cause, 'LVM_FORCEOFF')) {
    return lsm('LSM_ERR_POOL_NOT_READY', `volume group "${vgName}" is not ready: ${cause.message}`, { cause, context })
  }
  if (cause !== undefined) {
    const detail = isLvmfsError(cause) ? cause.detail : undefined
    return lsm(notFound, `volume group "${vgName}" not found`, { cause, context, ...(detail === undefined ? {} : { detail }) })
  }
  return lsm(notFound, `volume group "${vgName}" is not known to the replication engine`, {
    hint: 'Name a VG on the scanned devices; --pool VGs must be reachable.', context })
}
