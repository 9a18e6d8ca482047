import type { ErrorSpec } from './spec.js'

/** Codes of the mounted volume group (daemon, control socket); see docs/errors/daemon.md. */
export const DAEMON_CODES = {
  LVM_LVOPEN: { domain: 'lvm', exit: 5, errno: 'EBUSY',
    meaning: 'Vary-off (lvmfs umount) refused: a logical volume file of the mount is open. The ' +
      'message names the LV; --force detaches the mount anyway.' },
  ENGINE_NOT_MOUNTED: { domain: 'engine', exit: 5, errno: 'ENOENT',
    meaning: 'No lvmfs daemon serves that volume group or mount point (no live control socket).' },
  ENGINE_ALREADY_MOUNTED: { domain: 'engine', exit: 5, errno: 'EBUSY',
    meaning: 'The volume group is already mounted by another lvmfs process (its control socket ' +
      'answers); the message names the mount point and pid.' },
} as const satisfies Record<string, ErrorSpec>
