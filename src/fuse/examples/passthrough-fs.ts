/**
 * Example: one backing regular file or block device exposed as one file, served by the native
 * data path (a one-copy volume map), with O_DIRECT backing I/O by default so nothing is cached
 * twice. Metadata operations run in TypeScript.
 */
import { closeSync, constants, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, openSync } from 'node:fs'
import { basename } from 'node:path'
import { LvmfsError } from '../../errors/index.js'
import { nativeAddon, type VolumeMap } from '../../native/index.js'
import { OpenFlag } from '../abi.js'
import { fuseError, type FileSystem, type RequestContext, type SetattrChanges } from '../filesystem.js'
import type { AttrReply, DirEntry, EntryReply, OpenReply, StatfsReply } from '../replies.js'
import type { FuseSession } from '../session.js'
import { FlatNamespace, type FlatFile } from './flat-namespace.js'

const EXTENT_BYTES = 1 << 30

export interface PassthroughOptions {
  readonly backingPath: string
  readonly name?: string
  /** O_DIRECT backing I/O (default true); false uses the backing page cache. */
  readonly direct?: boolean
}

export class PassthroughFileSystem implements FileSystem {
  readonly namespace = new FlatNamespace<FlatFile>()
  readonly nodeid: number
  readonly fd: number
  private readonly isBlockDevice: boolean
  private session: FuseSession | undefined

  constructor(private readonly options: PassthroughOptions) {
    const flags = constants.O_RDWR
    try {
      this.fd = openSync(options.backingPath, flags | ((options.direct ?? true) ? constants.O_DIRECT : 0))
    } catch (error) {
      // Some file systems (tmpfs) refuse O_DIRECT: fall back to cached backing I/O.
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') {
        throw new LvmfsError('ENGINE_NOT_FOUND', `cannot open backing "${options.backingPath}"`,
          { detail: (error as Error).message, cause: error })
      }
      this.fd = openSync(options.backingPath, flags)
    }
    const stat = fstatSync(this.fd)
    this.isBlockDevice = stat.isBlockDevice()
    const sizeBytes = this.isBlockDevice ? Number(nativeAddon().blockDeviceSizeBytes(this.fd)) : stat.size
    this.nodeid = this.namespace.add({ name: options.name ?? basename(options.backingPath),
      sizeBytes, mode: 0o644, mtimeMs: Date.now() })
  }

  /** Hands the file's data path to native code; call once the session is mounted. */
  attach(session: FuseSession): void {
    this.session = session
    session.mapVolume(this.nodeid, this.volumeMap())
  }

  close(): void {
    closeSync(this.fd)
  }

  volumeMap(): VolumeMap {
    const sizeBytes = this.namespace.file(this.nodeid).sizeBytes
    const extents = Math.max(1, Math.ceil(sizeBytes / EXTENT_BYTES))
    return { sizeBytes, extentBytes: EXTENT_BYTES, readPolicy: 'primary', writeSchedule: 'parallel',
      gateBytes: 0, readOnly: false,
      extents: Array.from({ length: extents }, (_, i) => ({
        copies: [{ fd: this.fd, offsetBytes: i * EXTENT_BYTES, stale: false }] })) }
  }

  lookup(_ctx: RequestContext, parent: number, name: string): EntryReply {
    return this.namespace.lookup(parent, name)
  }

  getattr(_ctx: RequestContext, nodeid: number): AttrReply {
    return this.namespace.attrReply(nodeid)
  }

  setattr(_ctx: RequestContext, nodeid: number, changes: SetattrChanges): AttrReply {
    const file = this.namespace.file(nodeid)
    if (changes.sizeBytes !== undefined && changes.sizeBytes !== file.sizeBytes) {
      if (this.isBlockDevice) throw fuseError('EPERM', 'a block device cannot be resized')
      ftruncateSync(this.fd, changes.sizeBytes)
      file.sizeBytes = changes.sizeBytes
      this.session?.mapVolume(this.nodeid, this.volumeMap())
    }
    if (changes.mode !== undefined) file.mode = changes.mode & 0o7777
    file.mtimeMs = Date.now()
    return this.namespace.attrReply(nodeid)
  }

  open(): OpenReply {
    return { fh: 0n, openFlags: OpenFlag.DIRECT_IO | OpenFlag.PARALLEL_DIRECT_WRITES }
  }

  fsync(_ctx: RequestContext, _nodeid: number, _fh: bigint, dataOnly: boolean): void {
    if (dataOnly) fdatasyncSync(this.fd)
    else fsyncSync(this.fd)
  }

  readdir(): DirEntry[] {
    return this.namespace.entries()
  }

  statfs(): StatfsReply {
    const blocks = Math.ceil(this.namespace.file(this.nodeid).sizeBytes / 4096)
    return { blocks, bfree: 0, bavail: 0, files: 1, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 }
  }
}
