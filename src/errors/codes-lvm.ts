import type { ErrorSpec } from './spec.js'

/**
 * Codes of the lvm domain; see docs/errors/lvm.md. `ref` is the AIX liblvm number where
 * shared/design/domain.md gives one; codes without `ref` either have no number there or are
 * lvmfs-specific (marked "lvmfs" in their meaning).
 */
export const LVM_CODES = {
  // lvm_varyonvg return codes (errors). LVM_SUCCESS (0) and LVM_CHKVVGOUT (51) are successes.
  LVM_ALLOCERR: { domain: 'lvm', exit: 5, errno: 'ENOMEM',
    meaning: 'Memory for the descriptor or its buffers could not be allocated.' },
  LVM_INVALID_PARAM: { domain: 'lvm', ref: -107, exit: 3, errno: 'EINVAL',
    meaning: 'A vary-on parameter is invalid: no VG name or id, a flag that is not boolean, ' +
      'override without misspv_von, an empty device name or a malformed PV id.' },
  LVM_INVCONFIG: { domain: 'lvm', exit: 5, errno: 'EBUSY',
    meaning: 'The VG could not be taken online: a PV is claimed by another process (lock held) ' +
      'or the adopted descriptor is internally inconsistent (overlapping or out-of-range PPs).' },
  LVM_INV_DEVENT: { domain: 'lvm', exit: 5, errno: 'ENODEV',
    meaning: 'A device name could not be examined (stat failed other than ENOENT, or the name ' +
      'is not a valid path).' },
  LVM_MAPFOPN: { domain: 'lvm', exit: 5, errno: 'EACCES',
    meaning: 'The lock directory (LVMFS_LOCK_DIR, default /run/lvmfs/locks) that records which ' +
      'process holds each PV could not be created or opened.' },
  LVM_MAPFRDWR: { domain: 'lvm', exit: 5, errno: 'EIO',
    meaning: 'A lock file in the lock directory could not be read or written.' },
  LVM_MISSINGPV: { domain: 'lvm', ref: -124, exit: 5, errno: 'ENXIO',
    meaning: 'Not varied on: a member PV is MISSING (REMOVED ones do not count, per the reference) and ' +
      'misspv_von (--missing-ok) was not given.' },
  LVM_MISSPVNAME: { domain: 'lvm', ref: -123, exit: 5, errno: 'ENXIO',
    meaning: 'Not varied on: a member PV was not named in vvg_in (not found among the devices) ' +
      'and missname_von (--noname-ok) was not given.' },
  LVM_NOQUORUM: { domain: 'lvm', ref: -122, exit: 5, errno: 'EIO',
    meaning: 'Not varied on: a majority of the descriptor (VGDA) or status (VGSA) copies could ' +
      'not be read; exactly half is not a majority.' },
  LVM_NOTCHARDEV: { domain: 'lvm', exit: 5, errno: 'ENODEV',
    meaning: 'A device name is neither a block device nor a regular file (directory, ' +
      'character device, FIFO, socket).' },
  LVM_NOVGDAS: { domain: 'lvm', ref: -146, exit: 5, errno: 'EIO',
    meaning: 'Not varied on even with override: no valid descriptor or status copy exists.' },
  // Online and management codes.
  LVM_OFFLINE: { domain: 'lvm', ref: -100, exit: 5, errno: 'EIO',
    meaning: 'The VG is not varied on (varied off).' },
  LVM_FORCEOFF: { domain: 'lvm', ref: -145, exit: 5, errno: 'EIO',
    meaning: 'Quorum was lost while online: the VG was forced off and every I/O fails with EIO.' },
  LVM_BADVERSION: { domain: 'lvm', ref: -157, exit: 5, errno: 'EIO',
    meaning: 'An on-disk structure has a format version this lvmfs cannot read.' },
  LVM_VGDASPACE: { domain: 'lvm', ref: -121, exit: 5, errno: 'ENOSPC',
    meaning: 'The descriptor no longer fits the VGDA slot of some PV (too many LVs or segments).' },
  LVM_NOALLOCLP: { domain: 'lvm', exit: 3, errno: 'EINVAL',
    meaning: 'An LV cannot have more than three copies per logical partition.' },
  LVM_VGFORK: { domain: 'lvm', exit: 5, errno: 'EIO',
    meaning: 'lvmfs: two different descriptors carry the same newest seq and neither holds a ' +
      'majority of its copies (split brain); an administrator must choose.' },
  LVM_NOFREEPPS: { domain: 'lvm', exit: 5, errno: 'ENOSPC',
    meaning: 'lvmfs: not enough free PPs on active PVs satisfy the size, copies and strictness.' },
  LVM_PVHASPPS: { domain: 'lvm', exit: 5, errno: 'EBUSY',
    meaning: 'lvmfs: the PV still holds allocated PPs, so it cannot leave the VG.' },
  LVM_PVINUSE: { domain: 'lvm', exit: 5, errno: 'EEXIST',
    meaning: 'lvmfs: the device already carries an lvmfs PV label (pvcreate without --force, or ' +
      'a PV of another VG given to vgcreate/vgextend).' },
  LVM_NOTPV: { domain: 'lvm', exit: 5, errno: 'EINVAL',
    meaning: 'lvmfs: the device carries no valid lvmfs PV label.' },
  LVM_DEVTOOSMALL: { domain: 'lvm', exit: 5, errno: 'ENOSPC',
    meaning: 'lvmfs: the device is too small for the metadata areas and at least one PP.' },
  LVM_DUPPVID: { domain: 'lvm', exit: 5, errno: 'EEXIST',
    meaning: 'lvmfs: two devices carry the same PV id (a copied PV image); lvmfs never picks ' +
      'one silently.' },
  LVM_LVREADONLY: { domain: 'lvm', exit: 5, errno: 'EROFS',
    meaning: 'lvmfs: the logical volume is read-only (lvchange --permission r); it cannot be opened ' +
      'for write.' },
  LVM_PVSTATE: { domain: 'lvm', exit: 5, errno: 'ENXIO',
    meaning: 'lvmfs: the PV is not in a state that allows the operation (missing, removed, or ' +
      'its device cannot be reached).' },
} as const satisfies Record<string, ErrorSpec>
