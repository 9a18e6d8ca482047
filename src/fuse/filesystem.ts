/**
 * The typed file-system interface a FUSE session serves. Handlers may return values or
 * promises; they report failures by throwing an LvmfsError (mapped through the error table) or
 * a `fuseError('ENOENT')`. An operation a file system does not implement answers ENOSYS, except
 * FSYNC, whose ENOSYS would make the kernel skip every later fsync: it is required.
 */
import type { ErrnoName } from '../errors/index.js'
import type { AttrReply, DirEntry, EntryReply, OpenReply, StatfsReply } from './replies.js'

export type MaybePromise<T> = T | Promise<T>

export interface RequestContext {
  readonly unique: bigint
  readonly nodeid: number
  readonly uid: number
  readonly gid: number
  readonly pid: number
}

export interface SetattrChanges {
  readonly sizeBytes?: number
  readonly mode?: number
  readonly uid?: number
  readonly gid?: number
  readonly atimeSeconds?: number
  readonly mtimeSeconds?: number
}

export interface FileSystem {
  lookup(ctx: RequestContext, parent: number, name: string): MaybePromise<EntryReply>
  forget?(nodeid: number, nlookup: number): void
  getattr(ctx: RequestContext, nodeid: number): MaybePromise<AttrReply>
  setattr?(ctx: RequestContext, nodeid: number, changes: SetattrChanges): MaybePromise<AttrReply>
  open?(ctx: RequestContext, nodeid: number, flags: number): MaybePromise<OpenReply>
  /** Fills `target` (its length is the requested size) and returns the byte count. */
  read?(ctx: RequestContext, nodeid: number, fh: bigint, offset: number, target: Uint8Array): MaybePromise<number>
  /** `data` is borrowed from the request buffer: copy what must outlive the call. */
  write?(ctx: RequestContext, nodeid: number, fh: bigint, offset: number, data: Uint8Array): MaybePromise<number>
  flush?(ctx: RequestContext, nodeid: number, fh: bigint): MaybePromise<void>
  fsync(ctx: RequestContext, nodeid: number, fh: bigint, dataOnly: boolean): MaybePromise<void>
  release?(ctx: RequestContext, nodeid: number, fh: bigint, flags: number): MaybePromise<void>
  opendir?(ctx: RequestContext, nodeid: number, flags: number): MaybePromise<OpenReply>
  readdir?(ctx: RequestContext, nodeid: number, fh: bigint): MaybePromise<readonly DirEntry[]>
  releasedir?(ctx: RequestContext, nodeid: number, fh: bigint): MaybePromise<void>
  statfs?(ctx: RequestContext): MaybePromise<StatfsReply>
  fallocate?(ctx: RequestContext, nodeid: number, fh: bigint, offset: number, length: number,
    mode: number): MaybePromise<void>
  lseek?(ctx: RequestContext, nodeid: number, fh: bigint, offset: number, whence: number): MaybePromise<number>
  access?(ctx: RequestContext, nodeid: number, mask: number): MaybePromise<void>
}

/** An error carrying an errno name, for handlers that answer with a plain errno. */
export function fuseError(name: ErrnoName, message: string = name): Error & { code: ErrnoName } {
  return Object.assign(new Error(message), { code: name })
}
