import type { ErrorSpec } from './spec.js'

/** Codes of lvmfs itself, for conditions the reference documents do not name. */
export const ENGINE_CODES = {
  ENGINE_USAGE: { domain: 'engine', exit: 3, errno: 'EINVAL',
    meaning: 'A command-line argument or option is missing or malformed.' },
  ENGINE_CORRUPT: { domain: 'engine', exit: 5, errno: 'EIO',
    meaning: 'On-disk data failed its checksum, magic, version or self-location check.' },
  ENGINE_IO: { domain: 'engine', exit: 5, errno: 'EIO',
    meaning: 'A read or write on a backing device failed.' },
  ENGINE_NOT_FOUND: { domain: 'engine', exit: 5, errno: 'ENOENT',
    meaning: 'A named device, volume group, logical volume or mount point does not exist.' },
  ENGINE_EXISTS: { domain: 'engine', exit: 5, errno: 'EEXIST',
    meaning: 'The name or label is already in use.' },
  ENGINE_BUSY: { domain: 'engine', exit: 5, errno: 'EBUSY',
    meaning: 'The device or volume is held by another process or is in use.' },
  ENGINE_BLOCKDEV_OPEN: { domain: 'engine', exit: 5, errno: 'EBUSY',
    meaning: 'An operation that needs every write of a linear LV to pass through lvmfs (a change ' +
      'that moves, shrinks, removes, deactivates, re-permissions or mirrors it, a clone or replica of ' +
      'it, a fault drill on its PV, umount) is refused: the LV\'s block device (mount --block-devices) ' +
      'is open. The message names the device and its holders.' },
  ENGINE_PERMISSION: { domain: 'engine', exit: 5, errno: 'EPERM',
    meaning: 'The operation needs root (or access the caller does not have).' },
  ENGINE_NOT_SUPPORTED: { domain: 'engine', exit: 5, errno: 'EOPNOTSUPP',
    meaning: 'The operation is not supported for this kind of device or volume.' },
  ENGINE_TIMEOUT: { domain: 'engine', exit: 5, errno: 'ETIMEDOUT',
    meaning: 'A peer (daemon, lock broker, etcd) did not answer in time.' },
  ENGINE_PROTOCOL: { domain: 'engine', exit: 5, errno: 'EPROTO',
    meaning: 'A message on a control or lock socket was malformed.' },
} as const satisfies Record<string, ErrorSpec>
