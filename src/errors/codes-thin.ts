import type { ErrorSpec } from './spec.js'

/**
 * Codes of thin pools, thin LVs and their snapshots (domain lvm); see docs/errors/thin.md.
 * LVM2 reports these conditions in messages only, so none has a reference number.
 */
export const THIN_CODES = {
  THIN_POOL_FULL: { domain: 'lvm', exit: 5, errno: 'ENOSPC',
    meaning: 'lvmfs: a write needed a new data block and the thin pool has none free; the write ' +
      'fails, the metadata stays consistent, and writes resume once the pool is extended or ' +
      'blocks are discarded.' },
  THIN_METADATA_FULL: { domain: 'lvm', exit: 5, errno: 'ENOSPC',
    meaning: 'lvmfs: a change needed metadata blocks the thin pool\'s metadata area does not have ' +
      'free (a reserve is kept so deletes and commits always fit); the change is refused before ' +
      'it starts.' },
  THIN_CORRUPT: { domain: 'lvm', exit: 5, errno: 'EIO',
    meaning: 'lvmfs: a thin pool metadata block failed its checksum or a structural check (wrong ' +
      'magic, kind, level or block number, a mapping outside the pool); it is never trusted. ' +
      '`lvmfs thin-check` reports every such block.' },
  THIN_NO_DEVICE: { domain: 'lvm', exit: 5, errno: 'ENOENT',
    meaning: 'lvmfs: the thin pool\'s metadata has no thin device with this id.' },
  THIN_HAS_SNAPSHOTS: { domain: 'lvm', exit: 5, errno: 'EBUSY',
    meaning: 'lvmfs: a thin LV that snapshots were taken of cannot be removed before them (child ' +
      'dependency), and a thin pool cannot be removed while thin LVs use it.' },
} as const satisfies Record<string, ErrorSpec>
