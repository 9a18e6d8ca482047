/**
 * The file system a mounted VG serves: a root directory with one regular file per LV, nodeid =
 * lvId + 2 (stable across renames, so the kernel's caches stay valid). READ/WRITE/FSYNC/
 * FALLOCATE of a mapped LV never reach this class (native code serves them); they arrive here
 * only when the VG is forced off or an LV is being removed, and then fail with EIO.
 */
import {
  DT_DIR, DT_REG, FUSE_ROOT_ID, OpenFlag, S_IFDIR, S_IFREG, fuseError, type FileSystem, type RequestContext,
  type SetattrChanges, type Attr, type AttrReply, type DirEntry, type EntryReply, type OpenReply, type StatfsReply,
} from '../fuse/index.js'
import type { LvDescriptor } from '../lvm/index.js'

export const ATTR_VALID_MS = 1_000
const O_ACCMODE = 3
const O_RDONLY = 0

export interface VolumeHost {
  lvs(): readonly LvDescriptor[]
  lvSizeBytes(lv: LvDescriptor): number
  totalBytes(): number
  freeBytes(): number
  /** Throws (EBUSY, EROFS, ...) when the LV may not be opened with these flags. */
  checkOpen(lv: LvDescriptor, writable: boolean): void
  opened(lv: LvDescriptor, writable: boolean): void
  released(lv: LvDescriptor, writable: boolean): Promise<void>
  fsync(lv: LvDescriptor, dataOnly: boolean): Promise<void>
  /** Volumes TypeScript serves (thin LVs); undefined when native code serves the LV. */
  volumeIo(lv: LvDescriptor): VolumeIoHandler | undefined
}

/** READ, WRITE and hole-punching FALLOCATE of a volume TypeScript serves. */
export interface VolumeIoHandler {
  read(target: Uint8Array, offsetBytes: number): Promise<void>
  write(data: Uint8Array, offsetBytes: number): Promise<void>
  discard(offsetBytes: number, lengthBytes: number): Promise<void>
}

const FALLOC_FL_KEEP_SIZE = 0x01
const FALLOC_FL_PUNCH_HOLE = 0x02
const FALLOC_FL_ZERO_RANGE = 0x10

export function nodeidOf(lv: LvDescriptor): number {
  return lv.lvId + 2
}

export class VolumeFileSystem implements FileSystem {
  private readonly startedMs = Date.now()
  /** fh -> whether that open was writable. */
  private readonly handles = new Map<bigint, boolean>()
  private nextFh = 1n

  constructor(private readonly host: VolumeHost) {}

  private lvOf(nodeid: number): LvDescriptor {
    const lv = this.host.lvs().find((candidate) => nodeidOf(candidate) === nodeid)
    if (!lv) throw fuseError('ENOENT', `no logical volume with nodeid ${nodeid}`)
    return lv
  }

  private attr(nodeid: number): Attr {
    const times = { atimeMs: this.startedMs, mtimeMs: this.startedMs, ctimeMs: this.startedMs }
    if (nodeid === FUSE_ROOT_ID) {
      return { ino: nodeid, sizeBytes: 0, blocks: 0, ...times, mode: S_IFDIR | 0o755, nlink: 2, uid: 0,
        gid: 0, blksize: 4096 }
    }
    const lv = this.lvOf(nodeid)
    const sizeBytes = this.host.lvSizeBytes(lv)
    return { ino: nodeid, sizeBytes, blocks: Math.ceil(sizeBytes / 512), ...times,
      mode: S_IFREG | (lv.readOnly === true ? 0o444 : 0o600),
      nlink: 1, uid: 0, gid: 0, blksize: 1 << 20 }
  }

  lookup(_ctx: RequestContext, parent: number, name: string): EntryReply {
    if (parent !== FUSE_ROOT_ID) throw fuseError('ENOTDIR')
    const lv = this.host.lvs().find((candidate) => candidate.name === name)
    if (!lv) throw fuseError('ENOENT', `no logical volume "${name}"`)
    return { nodeid: nodeidOf(lv), generation: 0, entryValidMs: ATTR_VALID_MS, attrValidMs: ATTR_VALID_MS,
      attr: this.attr(nodeidOf(lv)) }
  }

  getattr(_ctx: RequestContext, nodeid: number): AttrReply {
    return { attrValidMs: ATTR_VALID_MS, attr: this.attr(nodeid) }
  }

  setattr(_ctx: RequestContext, nodeid: number, changes: SetattrChanges): AttrReply {
    const lv = this.lvOf(nodeid)
    // A volume's size changes with lvextend/lvreduce only; O_TRUNC opens of a volume are no-ops.
    if (changes.sizeBytes !== undefined && changes.sizeBytes !== 0 &&
        changes.sizeBytes !== this.host.lvSizeBytes(lv)) {
      throw fuseError('EPERM', 'resize a logical volume with lvextend or lvreduce')
    }
    return this.getattr(_ctx, nodeid)
  }

  open(_ctx: RequestContext, nodeid: number, flags: number): OpenReply {
    const lv = this.lvOf(nodeid)
    const writable = (flags & O_ACCMODE) !== O_RDONLY
    this.host.checkOpen(lv, writable)
    this.host.opened(lv, writable)
    const fh = this.nextFh++
    this.handles.set(fh, writable)
    return { fh, openFlags: OpenFlag.DIRECT_IO | OpenFlag.PARALLEL_DIRECT_WRITES }
  }

  async release(_ctx: RequestContext, nodeid: number, fh: bigint): Promise<void> {
    const writable = this.handles.get(fh) ?? false
    this.handles.delete(fh)
    const lv = this.host.lvs().find((candidate) => nodeidOf(candidate) === nodeid)
    if (lv) await this.host.released(lv, writable)
  }

  #io(nodeid: number): { io: VolumeIoHandler, sizeBytes: number } {
    const lv = this.lvOf(nodeid)
    const io = this.host.volumeIo(lv)
    if (io === undefined) throw fuseError('EIO', 'logical volume is not being served (volume group forced off?)')
    return { io, sizeBytes: this.host.lvSizeBytes(lv) }
  }

  async read(_ctx: RequestContext, nodeid: number, _fh: bigint, offset: number, target: Uint8Array): Promise<number> {
    const { io, sizeBytes } = this.#io(nodeid)
    const length = Math.max(0, Math.min(target.length, sizeBytes - offset))
    if (length > 0) await io.read(target.subarray(0, length), offset)
    return length
  }

  async write(_ctx: RequestContext, nodeid: number, _fh: bigint, offset: number, data: Uint8Array): Promise<number> {
    const { io, sizeBytes } = this.#io(nodeid)
    const lv = this.lvOf(nodeid)
    if (lv.readOnly === true) throw fuseError('EROFS', `logical volume "${lv.name}" is read-only`)
    if (offset >= sizeBytes && data.length > 0) throw fuseError('ENOSPC', 'write beyond the end of the logical volume')
    const length = Math.min(data.length, sizeBytes - offset)
    await io.write(data.subarray(0, length), offset)
    return length
  }

  async fallocate(_ctx: RequestContext, nodeid: number, _fh: bigint, offset: number, length: number,
    mode: number): Promise<void> {
    const { io, sizeBytes } = this.#io(nodeid)
    if ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) !== 0) throw fuseError('EOPNOTSUPP')
    // Plain allocation: a thin LV's blocks are allocated by its writes.
    if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) === 0 || offset >= sizeBytes) return
    await io.discard(offset, Math.min(length, sizeBytes - offset))
  }

  async fsync(_ctx: RequestContext, nodeid: number, _fh: bigint, dataOnly: boolean): Promise<void> {
    await this.host.fsync(this.lvOf(nodeid), dataOnly)
  }

  readdir(): DirEntry[] {
    const entries: DirEntry[] = [{ ino: FUSE_ROOT_ID, name: '.', type: DT_DIR },
      { ino: FUSE_ROOT_ID, name: '..', type: DT_DIR }]
    for (const lv of this.host.lvs()) entries.push({ ino: nodeidOf(lv), name: lv.name, type: DT_REG })
    return entries
  }

  statfs(): StatfsReply {
    const blockBytes = 4096
    const blocks = Math.floor(this.host.totalBytes() / blockBytes)
    const free = Math.floor(this.host.freeBytes() / blockBytes)
    return { blocks, bfree: free, bavail: free, files: this.host.lvs().length, ffree: 0, bsize: blockBytes,
      namelen: 127, frsize: blockBytes }
  }
}
