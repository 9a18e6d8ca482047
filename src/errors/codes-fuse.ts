import type { ErrorSpec } from './spec.js'

/** Codes of the FUSE transport: kernel protocol decoding and session lifecycle. */
export const FUSE_CODES = {
  FUSE_SHORT_HEADER: { domain: 'fuse', exit: 5, errno: 'EIO',
    meaning: 'A request is shorter than the 40-byte fuse_in_header.' },
  FUSE_SHORT_REQUEST: { domain: 'fuse', exit: 5, errno: 'EIO',
    meaning: 'A request is shorter than its opcode\'s fixed struct, or than its header says.' },
  FUSE_BAD_LENGTH: { domain: 'fuse', exit: 5, errno: 'EIO',
    meaning: 'The header length disagrees with the bytes received.' },
  FUSE_BAD_STRING: { domain: 'fuse', exit: 5, errno: 'EIO',
    meaning: 'A name in a request is not NUL-terminated within the request.' },
  FUSE_MOUNT_FAILED: { domain: 'fuse', exit: 5, errno: 'EIO',
    meaning: 'Opening /dev/fuse or mounting the file system failed.' },
  FUSE_NOT_CONNECTED: { domain: 'fuse', exit: 5, errno: 'ENOTCONN',
    meaning: 'The mount point holds a FUSE mount whose daemon is gone.' },
} as const satisfies Record<string, ErrorSpec>
