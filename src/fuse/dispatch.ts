/**
 * Routes one decoded request to the FileSystem and encodes its reply into the slot's payload
 * area. Returns the errno (0 for success) and payload length, or `noReply` for requests the
 * kernel expects no answer to (FORGET, BATCH_FORGET, INTERRUPT).
 */
import { errnoNumber } from '../errors/index.js'
import { FSYNC_FDATASYNC, SetattrValid } from './abi.js'
import type { Request } from './codec.js'
import type { FileSystem, RequestContext, SetattrChanges } from './filesystem.js'
import { encodeAttrOut, encodeDirents, encodeEntry, encodeLseek, encodeOpen, encodeStatfs,
  encodeWrite } from './replies.js'

export interface Outcome {
  readonly errno: number
  readonly payloadBytes?: number
  readonly noReply?: boolean
}

const OK: Outcome = { errno: 0 }
const ENOSYS: Outcome = { errno: errnoNumber('ENOSYS') }
const NO_REPLY: Outcome = { errno: 0, noReply: true }

function setattrChanges(body: Extract<Request['body'], { op: 'SETATTR' }>): SetattrChanges {
  const changes: { -readonly [K in keyof SetattrChanges]: SetattrChanges[K] } = {}
  if (body.valid & SetattrValid.SIZE) changes.sizeBytes = body.sizeBytes
  if (body.valid & SetattrValid.MODE) changes.mode = body.mode
  if (body.valid & SetattrValid.UID) changes.uid = body.uid
  if (body.valid & SetattrValid.GID) changes.gid = body.gid
  if (body.valid & SetattrValid.ATIME) changes.atimeSeconds = body.atimeSeconds
  if (body.valid & SetattrValid.MTIME) changes.mtimeSeconds = body.mtimeSeconds
  return changes
}

// One switch arm per opcode keeps the routing readable; each arm is one call and one encode.
export async function dispatch(fs: FileSystem, request: Request, out: Uint8Array): Promise<Outcome> {
  const { header, body } = request
  const ctx: RequestContext = { unique: header.unique, nodeid: header.nodeid, uid: header.uid,
    gid: header.gid, pid: header.pid }
  const node = header.nodeid
  switch (body.op) {
    case 'LOOKUP':
      return { errno: 0, payloadBytes: encodeEntry(out, await fs.lookup(ctx, node, body.name)) }
    case 'FORGET':
      fs.forget?.(node, body.nlookup)
      return NO_REPLY
    case 'BATCH_FORGET':
      for (const forget of body.forgets) fs.forget?.(forget.nodeid, forget.nlookup)
      return NO_REPLY
    case 'INTERRUPT':
      // Backing I/O of at most one request size finishes promptly; interrupts are not needed.
      return NO_REPLY
    case 'GETATTR':
      return { errno: 0, payloadBytes: encodeAttrOut(out, await fs.getattr(ctx, node)) }
    case 'SETATTR':
      if (!fs.setattr) return ENOSYS
      return { errno: 0, payloadBytes: encodeAttrOut(out, await fs.setattr(ctx, node, setattrChanges(body))) }
    case 'OPEN':
      if (!fs.open) return ENOSYS
      return { errno: 0, payloadBytes: encodeOpen(out, await fs.open(ctx, node, body.flags)) }
    case 'OPENDIR':
      if (!fs.opendir) return { errno: 0, payloadBytes: encodeOpen(out, { fh: 0n, openFlags: 0 }) }
      return { errno: 0, payloadBytes: encodeOpen(out, await fs.opendir(ctx, node, body.flags)) }
    case 'READ': {
      if (!fs.read) return ENOSYS
      const target = out.subarray(0, Math.min(body.size, out.length))
      return { errno: 0, payloadBytes: await fs.read(ctx, node, body.fh, body.offset, target) }
    }
    case 'WRITE': {
      if (!fs.write) return ENOSYS
      const written = await fs.write(ctx, node, body.fh, body.offset, body.data)
      return { errno: 0, payloadBytes: encodeWrite(out, written) }
    }
    case 'READDIR': {
      if (!fs.readdir) return ENOSYS
      const entries = await fs.readdir(ctx, node, body.fh)
      return { errno: 0, payloadBytes: encodeDirents(out, entries, body.offset, body.size) }
    }
    case 'FLUSH':
      await fs.flush?.(ctx, node, body.fh)
      return OK
    case 'FSYNC':
      await fs.fsync(ctx, node, body.fh, (body.fsyncFlags & FSYNC_FDATASYNC) !== 0)
      return OK
    case 'FSYNCDIR':
      return OK
    case 'RELEASE':
      await fs.release?.(ctx, node, body.fh, body.flags)
      return OK
    case 'RELEASEDIR':
      await fs.releasedir?.(ctx, node, body.fh)
      return OK
    case 'STATFS':
      if (!fs.statfs) return ENOSYS
      return { errno: 0, payloadBytes: encodeStatfs(out, await fs.statfs(ctx)) }
    case 'ACCESS':
      if (!fs.access) return ENOSYS
      await fs.access(ctx, node, body.mask)
      return OK
    case 'FALLOCATE':
      if (!fs.fallocate) return { errno: errnoNumber('EOPNOTSUPP') }
      await fs.fallocate(ctx, node, body.fh, body.offset, body.length, body.mode)
      return OK
    case 'LSEEK':
      if (!fs.lseek) return ENOSYS
      return { errno: 0, payloadBytes: encodeLseek(out, await fs.lseek(ctx, node, body.fh, body.offset, body.whence)) }
    case 'INIT':
    case 'OTHER':
      return ENOSYS
  }
}
