/**
 * The namespace shared by the example file systems (and, in shape, by the volume mount): a root
 * directory holding a flat set of regular files, nodeid = file index + 2.
 */
import { fuseError } from '../filesystem.js'
import { DT_DIR, DT_REG, FUSE_ROOT_ID, S_IFDIR, S_IFREG } from '../abi.js'
import type { Attr, AttrReply, DirEntry, EntryReply } from '../replies.js'

export interface FlatFile {
  readonly name: string
  sizeBytes: number
  mode: number
  mtimeMs: number
}

export const ATTR_VALID_MS = 1_000

export class FlatNamespace<F extends FlatFile> {
  readonly files = new Map<number, F>()
  private nextNodeid = FUSE_ROOT_ID + 1
  private readonly startedMs = Date.now()

  add(file: F): number {
    const nodeid = this.nextNodeid++
    this.files.set(nodeid, file)
    return nodeid
  }

  file(nodeid: number): F {
    const file = this.files.get(nodeid)
    if (!file) throw fuseError('ENOENT', `no file with nodeid ${nodeid}`)
    return file
  }

  attr(nodeid: number): Attr {
    if (nodeid === FUSE_ROOT_ID) {
      return { ino: nodeid, sizeBytes: 0, blocks: 0, atimeMs: this.startedMs, mtimeMs: this.startedMs,
        ctimeMs: this.startedMs, mode: S_IFDIR | 0o755, nlink: 2, uid: 0, gid: 0, blksize: 4096 }
    }
    const file = this.file(nodeid)
    return { ino: nodeid, sizeBytes: file.sizeBytes, blocks: Math.ceil(file.sizeBytes / 512),
      atimeMs: file.mtimeMs, mtimeMs: file.mtimeMs, ctimeMs: file.mtimeMs, mode: S_IFREG | file.mode,
      nlink: 1, uid: 0, gid: 0, blksize: 1 << 20 }
  }

  attrReply(nodeid: number): AttrReply {
    return { attrValidMs: ATTR_VALID_MS, attr: this.attr(nodeid) }
  }

  lookup(parent: number, name: string): EntryReply {
    if (parent !== FUSE_ROOT_ID) throw fuseError('ENOTDIR')
    for (const [nodeid, file] of this.files) {
      if (file.name === name) {
        return { nodeid, entryValidMs: ATTR_VALID_MS, attrValidMs: ATTR_VALID_MS, attr: this.attr(nodeid) }
      }
    }
    throw fuseError('ENOENT', `no file named "${name}"`)
  }

  entries(): DirEntry[] {
    const list: DirEntry[] = [{ ino: FUSE_ROOT_ID, name: '.', type: DT_DIR },
      { ino: FUSE_ROOT_ID, name: '..', type: DT_DIR }]
    for (const [nodeid, file] of this.files) list.push({ ino: nodeid, name: file.name, type: DT_REG })
    return list
  }
}
