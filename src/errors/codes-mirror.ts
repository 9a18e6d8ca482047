import type { ErrorSpec } from './spec.js'

/**
 * Codes of mirroring, MWC, resync and scrub (domain lvm); see docs/errors/mirror.md. `ref` is
 * the AIX liblvm number where shared/design/domain.md gives one. LVM_OFFLINE and LVM_FORCEOFF
 * (VG not online) are defined once, in codes-lvm.ts, and used here too.
 */
export const MIRROR_CODES = {
  LVM_NOTSYNCED: { domain: 'lvm', ref: -132, exit: 5, errno: 'EIO',
    meaning: 'A logical partition was not completely resynchronized: no copy is both fresh and on ' +
      'an active PV to copy from, or every target copy failed.' },
  LVM_INRESYNC: { domain: 'lvm', ref: -135, exit: 5, errno: 'EBUSY',
    meaning: 'A resync of the same logical partition (or LV) is already running.' },
  LVM_INVLPRED: { domain: 'lvm', ref: -136, exit: 5, errno: 'EIO',
    meaning: 'The operation would leave a logical partition with no good copy, so it was refused ' +
      '(the last fresh copy is never marked stale).' },
  MIRROR_NO_FRESH_COPY: { domain: 'lvm', exit: 5, errno: 'EIO',
    meaning: 'lvmfs: an I/O touched a logical partition with no fresh copy on an active PV (all ' +
      'copies stale, missing or failed); the request fails instead of reading stale data.' },
  MIRROR_BAD_RANGE: { domain: 'lvm', exit: 3, errno: 'EINVAL',
    meaning: 'lvmfs: an I/O, resync or scrub range lies outside the logical volume, or an LP ' +
      'number is out of range.' },
  MIRROR_READ_ONLY: { domain: 'lvm', exit: 5, errno: 'EROFS',
    meaning: 'lvmfs: a write reached a logical volume opened read-only.' },
} as const satisfies Record<string, ErrorSpec>
