import type { ErrorSpec } from './spec.js'

/**
 * Codes of lsm_volume_replicate and the job/dependency calls (libstoragemgmt, domain lsm); see
 * docs/errors/lsm.md. `ref` is libstoragemgmt's lsm_error_number (libstoragemgmt_error.h).
 *
 * LSM_ERR_OK (0) and LSM_ERR_JOB_STARTED (7) are successful statuses, not errors: they are
 * results of replicate() (see LSM_STATUSES), never thrown.
 */
export const LSM_STATUSES = {
  LSM_ERR_OK: 0,
  LSM_ERR_JOB_STARTED: 7,
} as const
export type LsmStatus = keyof typeof LSM_STATUSES

export const LSM_CODES = {
  LSM_ERR_INVALID_ARGUMENT: { domain: 'lsm', ref: 101, exit: 3, errno: 'EINVAL',
    meaning: 'An argument of replicate (or a job/replica call) is invalid: unknown replication ' +
      'type, malformed VG/LV or target name, an interval out of range, a target name already ' +
      'taken in the pool, or the source is not in a state that can be replicated (an ' +
      'unfinished copy, an invalidated clone).' },
  LSM_ERR_NOT_FOUND_VOLUME: { domain: 'lsm', ref: 205, exit: 5, errno: 'ENOENT',
    meaning: 'The source logical volume (or the replica named) does not exist in its VG.' },
  LSM_ERR_NOT_FOUND_POOL: { domain: 'lsm', ref: 203, exit: 5, errno: 'ENOENT',
    meaning: 'The pool (a volume group) named with --pool is not found on the scanned devices ' +
      'or not known to the replication engine.' },
  LSM_ERR_NOT_FOUND_JOB: { domain: 'lsm', ref: 202, exit: 5, errno: 'ENOENT',
    meaning: 'No replication job with that id is recorded in the volume group.' },
  LSM_ERR_NOT_ENOUGH_SPACE: { domain: 'lsm', ref: 350, exit: 5, errno: 'ENOSPC',
    meaning: 'The pool has too few free physical partitions: for a copy or mirror the whole ' +
      'target (plus one metadata partition) must fit at creation; a clone needs one partition ' +
      'at creation and one per chunk it comes to own. When a clone cannot get a partition for ' +
      'a copy-on-write the clone is invalidated and the origin write proceeds.' },
  LSM_ERR_POOL_NOT_READY: { domain: 'lsm', ref: 512, exit: 5, errno: 'EIO',
    meaning: 'The source or target volume group is not varied on, or was forced off (quorum ' +
      'lost), so nothing can be allocated or copied.' },
  LSM_ERR_NO_SUPPORT: { domain: 'lsm', ref: 153, exit: 5, errno: 'EOPNOTSUPP',
    meaning: 'The replication is not supported for this source: a clone of a clone or of a ' +
      'mirror target, any replica of a volume being copied, or a synchronous mirror whose ' +
      'source and target copies would exceed the 3 copies a native volume map carries, or a ' +
      'replica in another VG than its source when either VG is shared.' },
  LSM_ERR_HAS_CHILD_DEPENDENCY: { domain: 'lsm', ref: 161, exit: 5, errno: 'EBUSY',
    meaning: 'The volume is the source of a clone, of an unfinished copy or of a mirror; it ' +
      'cannot be removed until those replicas are removed or split (their names are listed).' },
  LSM_ERR_INVALIDATED_CLONE: { domain: 'lsm', exit: 5, errno: 'EIO',
    meaning: 'lvmfs: the clone was invalidated because the pool ran out of space for a ' +
      'copy-on-write of its origin; its data is no longer a point-in-time image and every ' +
      'read and write of it fails. Remove it.' },
  LSM_ERR_REPLICA_BUSY: { domain: 'lsm', exit: 5, errno: 'EBUSY',
    meaning: 'lvmfs: the replica refuses the access: a copy target before its job completed, ' +
      'or a write to a mirror target while it is mirrored (read-only); or, in a shared VG, the ' +
      'source (or the replica\'s source) is served read-write by another process, which runs its ' +
      'replication (send the command to that daemon).' },
} as const satisfies Record<string, ErrorSpec>
