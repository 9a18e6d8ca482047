/**
 * Kernel FUSE ABI constants (include/uapi/linux/fuse.h, protocol 7.x). Struct offsets and
 * sizes are documented in docs/fuse-protocol.md; codecs in codec.ts use them.
 */
export const FUSE_KERNEL_VERSION = 7
/** Highest minor whose request layouts this codec knows. */
export const FUSE_KERNEL_MINOR_VERSION = 40
export const FUSE_ROOT_ID = 1

export const Opcode = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, SYMLINK: 6, MKNOD: 8, MKDIR: 9,
  UNLINK: 10, RMDIR: 11, RENAME: 12, LINK: 13, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17,
  RELEASE: 18, FSYNC: 20, SETXATTR: 21, GETXATTR: 22, LISTXATTR: 23, REMOVEXATTR: 24, FLUSH: 25,
  INIT: 26, OPENDIR: 27, READDIR: 28, RELEASEDIR: 29, FSYNCDIR: 30, GETLK: 31, SETLK: 32,
  SETLKW: 33, ACCESS: 34, CREATE: 35, INTERRUPT: 36, BMAP: 37, DESTROY: 38, IOCTL: 39, POLL: 40,
  NOTIFY_REPLY: 41, BATCH_FORGET: 42, FALLOCATE: 43, READDIRPLUS: 44, RENAME2: 45, LSEEK: 46,
  COPY_FILE_RANGE: 47, SETUPMAPPING: 48, REMOVEMAPPING: 49, SYNCFS: 50, TMPFILE: 51, STATX: 52,
} as const
export type OpcodeName = keyof typeof Opcode
export const OPCODE_NAMES: ReadonlyMap<number, OpcodeName> = new Map(
  Object.entries(Opcode).map(([name, value]) => [value, name as OpcodeName]),
)

/** INIT flags (fuse_init_in/out.flags; bits 32.. are flags2). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  BIG_WRITES: 1 << 5,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  PARALLEL_DIROPS: 1 << 18,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  EXPLICIT_INVAL_DATA: 1 << 25,
  HANDLE_KILLPRIV_V2: 1 << 28,
  INIT_EXT: 1 << 30,
} as const
export const InitFlag2 = {
  DIRECT_IO_ALLOW_MMAP: 1 << (36 - 32),
  OVER_IO_URING: 1 << (41 - 32),
} as const

export const OpenFlag = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
  NOFLUSH: 1 << 5,
  PARALLEL_DIRECT_WRITES: 1 << 6,
} as const

/** fuse_setattr_in.valid bits. */
export const SetattrValid = {
  MODE: 1 << 0, UID: 1 << 1, GID: 1 << 2, SIZE: 1 << 3, ATIME: 1 << 4, MTIME: 1 << 5,
  FH: 1 << 6, ATIME_NOW: 1 << 7, MTIME_NOW: 1 << 8, LOCKOWNER: 1 << 9, CTIME: 1 << 10,
} as const

export const FSYNC_FDATASYNC = 1
export const GETATTR_FH = 1

export const NotifyCode = { POLL: 1, INVAL_INODE: 2, INVAL_ENTRY: 3 } as const

/** Struct sizes in bytes. */
export const Size = {
  IN_HEADER: 40, OUT_HEADER: 16, INIT_IN: 64, INIT_OUT: 64, ATTR: 88, ATTR_OUT: 104,
  ENTRY_OUT: 128, OPEN_OUT: 16, WRITE_OUT: 8, STATFS_OUT: 80, LSEEK_OUT: 8, DIRENT: 24,
  GETATTR_IN: 16, SETATTR_IN: 88, OPEN_IN: 8, READ_IN: 40, WRITE_IN: 40, RELEASE_IN: 24,
  FLUSH_IN: 24, FSYNC_IN: 16, FORGET_IN: 8, BATCH_FORGET_IN: 8, FORGET_ONE: 16, INTERRUPT_IN: 8,
  ACCESS_IN: 8, FALLOCATE_IN: 32, LSEEK_IN: 24,
} as const

export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const DT_DIR = 4
export const DT_REG = 8
