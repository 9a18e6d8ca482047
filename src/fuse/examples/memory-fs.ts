/**
 * Example: files held in memory, every byte handled in TypeScript. Used by tests of the
 * JavaScript request path (reads, writes, truncate, fallocate, lseek).
 */
import { fuseError, type FileSystem, type RequestContext, type SetattrChanges } from '../filesystem.js'
import type { AttrReply, DirEntry, EntryReply, OpenReply, StatfsReply } from '../replies.js'
import { FlatNamespace, type FlatFile } from './flat-namespace.js'

const FALLOC_FL_PUNCH_HOLE = 0x02
const FALLOC_FL_ZERO_RANGE = 0x10
const FALLOC_FL_KEEP_SIZE = 0x01
const SEEK_DATA = 3
const SEEK_HOLE = 4

interface MemoryFile extends FlatFile {
  data: Buffer
}

export class MemoryFileSystem implements FileSystem {
  readonly namespace = new FlatNamespace<MemoryFile>()

  addFile(name: string, sizeBytes = 0): number {
    return this.namespace.add({ name, sizeBytes, mode: 0o644, mtimeMs: Date.now(),
      data: Buffer.alloc(sizeBytes) })
  }

  lookup(_ctx: RequestContext, parent: number, name: string): EntryReply {
    return this.namespace.lookup(parent, name)
  }

  getattr(_ctx: RequestContext, nodeid: number): AttrReply {
    return this.namespace.attrReply(nodeid)
  }

  setattr(_ctx: RequestContext, nodeid: number, changes: SetattrChanges): AttrReply {
    const file = this.namespace.file(nodeid)
    if (changes.sizeBytes !== undefined) this.resize(file, changes.sizeBytes)
    if (changes.mode !== undefined) file.mode = changes.mode & 0o7777
    file.mtimeMs = Date.now()
    return this.namespace.attrReply(nodeid)
  }

  open(): OpenReply {
    return { fh: 0n, openFlags: 0 }
  }

  read(_ctx: RequestContext, nodeid: number, _fh: bigint, offset: number, target: Uint8Array): number {
    const file = this.namespace.file(nodeid)
    if (offset >= file.sizeBytes) return 0
    return file.data.copy(target, 0, offset, Math.min(file.sizeBytes, offset + target.length))
  }

  write(_ctx: RequestContext, nodeid: number, _fh: bigint, offset: number, data: Uint8Array): number {
    const file = this.namespace.file(nodeid)
    if (offset + data.length > file.sizeBytes) this.resize(file, offset + data.length)
    file.data.set(data, offset)
    file.mtimeMs = Date.now()
    return data.length
  }

  fsync(): void {}

  readdir(): DirEntry[] {
    return this.namespace.entries()
  }

  statfs(): StatfsReply {
    let used = 0
    for (const file of this.namespace.files.values()) used += file.sizeBytes
    const blocks = Math.max(1, Math.ceil(used / 4096)) + 1024
    return { blocks, bfree: 1024, bavail: 1024, files: this.namespace.files.size, ffree: 0,
      bsize: 4096, namelen: 255, frsize: 4096 }
  }

  fallocate(_ctx: RequestContext, nodeid: number, _fh: bigint, offset: number, length: number,
    mode: number): void {
    const file = this.namespace.file(nodeid)
    if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
      const end = Math.min(offset + length, file.sizeBytes)
      if (end > offset) file.data.fill(0, offset, end)
      if (!(mode & FALLOC_FL_KEEP_SIZE) && offset + length > file.sizeBytes) {
        this.resize(file, offset + length)
      }
      return
    }
    if (offset + length > file.sizeBytes && !(mode & FALLOC_FL_KEEP_SIZE)) this.resize(file, offset + length)
  }

  lseek(_ctx: RequestContext, nodeid: number, _fh: bigint, offset: number, whence: number): number {
    const file = this.namespace.file(nodeid)
    if (offset >= file.sizeBytes) throw fuseError('ENXIO')
    if (whence === SEEK_DATA) return offset
    if (whence === SEEK_HOLE) return file.sizeBytes
    throw fuseError('EINVAL')
  }

  private resize(file: MemoryFile, sizeBytes: number): void {
    if (sizeBytes > file.data.length) {
      const grown = Buffer.alloc(Math.max(sizeBytes, file.data.length * 2))
      file.data.copy(grown)
      file.data = grown
    } else if (sizeBytes < file.sizeBytes) {
      file.data.fill(0, sizeBytes, file.sizeBytes)
    }
    file.sizeBytes = sizeBytes
  }
}
