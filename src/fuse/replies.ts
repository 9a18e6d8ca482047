/**
 * Reply encoders. Each writes one reply payload (without fuse_out_header, which native code
 * adds) at the start of `out` and returns its length. Output bytes are zeroed first so no stale
 * arena content can leak to the kernel.
 */
import { assert } from '../util/index.js'
import { Size } from './abi.js'

export interface Attr {
  readonly ino: number
  readonly sizeBytes: number
  readonly blocks: number
  readonly atimeMs: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  readonly mode: number
  readonly nlink: number
  readonly uid: number
  readonly gid: number
  readonly blksize: number
}

export interface EntryReply {
  readonly nodeid: number
  readonly generation?: number
  readonly entryValidMs: number
  readonly attrValidMs: number
  readonly attr: Attr
}

export interface AttrReply {
  readonly attrValidMs: number
  readonly attr: Attr
}

export interface OpenReply {
  readonly fh: bigint
  readonly openFlags: number
}

export interface StatfsReply {
  readonly blocks: number
  readonly bfree: number
  readonly bavail: number
  readonly files: number
  readonly ffree: number
  readonly bsize: number
  readonly namelen: number
  readonly frsize: number
}

export interface DirEntry {
  readonly ino: number
  readonly name: string
  readonly type: number
}

export interface InitReply {
  readonly major: number
  readonly minor: number
  readonly maxReadahead: number
  readonly flags: number
  readonly flags2: number
  readonly maxBackground: number
  readonly congestionThreshold: number
  readonly maxWrite: number
  readonly timeGranNs: number
  readonly maxPages: number
}

function view(out: Uint8Array, size: number): DataView {
  assert(out.length >= size, `reply buffer of ${out.length} bytes is shorter than ${size}`)
  out.fill(0, 0, size)
  return new DataView(out.buffer, out.byteOffset, size)
}

function splitTime(ms: number): [bigint, number] {
  const seconds = Math.floor(ms / 1000)
  return [BigInt(seconds), Math.round((ms - seconds * 1000) * 1e6)]
}

function writeAttr(v: DataView, at: number, attr: Attr): void {
  v.setBigUint64(at + 0, BigInt(attr.ino), true)
  v.setBigUint64(at + 8, BigInt(attr.sizeBytes), true)
  v.setBigUint64(at + 16, BigInt(attr.blocks), true)
  const times = [attr.atimeMs, attr.mtimeMs, attr.ctimeMs]
  times.forEach((ms, i) => {
    const [seconds, nanos] = splitTime(ms)
    v.setBigUint64(at + 24 + i * 8, seconds, true)
    v.setUint32(at + 48 + i * 4, nanos, true)
  })
  v.setUint32(at + 60, attr.mode, true)
  v.setUint32(at + 64, attr.nlink, true)
  v.setUint32(at + 68, attr.uid, true)
  v.setUint32(at + 72, attr.gid, true)
  v.setUint32(at + 80, attr.blksize, true)
}

function writeValid(v: DataView, at: number, nsecAt: number, ms: number): void {
  const [seconds, nanos] = splitTime(ms)
  v.setBigUint64(at, seconds, true)
  v.setUint32(nsecAt, nanos, true)
}

export function encodeEntry(out: Uint8Array, entry: EntryReply): number {
  const v = view(out, Size.ENTRY_OUT)
  v.setBigUint64(0, BigInt(entry.nodeid), true)
  v.setBigUint64(8, BigInt(entry.generation ?? 0), true)
  writeValid(v, 16, 32, entry.entryValidMs)
  writeValid(v, 24, 36, entry.attrValidMs)
  writeAttr(v, 40, entry.attr)
  return Size.ENTRY_OUT
}

export function encodeAttrOut(out: Uint8Array, reply: AttrReply): number {
  const v = view(out, Size.ATTR_OUT)
  writeValid(v, 0, 8, reply.attrValidMs)
  writeAttr(v, 16, reply.attr)
  return Size.ATTR_OUT
}

export function encodeOpen(out: Uint8Array, reply: OpenReply): number {
  const v = view(out, Size.OPEN_OUT)
  v.setBigUint64(0, reply.fh, true)
  v.setUint32(8, reply.openFlags, true)
  return Size.OPEN_OUT
}

export function encodeWrite(out: Uint8Array, sizeBytes: number): number {
  view(out, Size.WRITE_OUT).setUint32(0, sizeBytes, true)
  return Size.WRITE_OUT
}

export function encodeLseek(out: Uint8Array, offset: number): number {
  view(out, Size.LSEEK_OUT).setBigUint64(0, BigInt(offset), true)
  return Size.LSEEK_OUT
}

export function encodeStatfs(out: Uint8Array, s: StatfsReply): number {
  const v = view(out, Size.STATFS_OUT)
  const big = [s.blocks, s.bfree, s.bavail, s.files, s.ffree]
  big.forEach((value, i) => v.setBigUint64(i * 8, BigInt(value), true))
  v.setUint32(40, s.bsize, true)
  v.setUint32(44, s.namelen, true)
  v.setUint32(48, s.frsize, true)
  return Size.STATFS_OUT
}

export function encodeInit(out: Uint8Array, r: InitReply): number {
  const v = view(out, Size.INIT_OUT)
  v.setUint32(0, r.major, true)
  v.setUint32(4, r.minor, true)
  v.setUint32(8, r.maxReadahead, true)
  v.setUint32(12, r.flags >>> 0, true)
  v.setUint16(16, r.maxBackground, true)
  v.setUint16(18, r.congestionThreshold, true)
  v.setUint32(20, r.maxWrite, true)
  v.setUint32(24, r.timeGranNs, true)
  v.setUint16(28, r.maxPages, true)
  v.setUint32(32, r.flags2 >>> 0, true)
  return Size.INIT_OUT
}

const textEncoder = new TextEncoder()

/**
 * Packs directory entries starting at index `first` until `maxBytes` would be exceeded. Each
 * entry's `off` cookie is its index + 1, which the kernel sends back to continue.
 */
export function encodeDirents(out: Uint8Array, entries: readonly DirEntry[], first: number,
  maxBytes: number): number {
  let used = 0
  for (let index = first; index < entries.length; index++) {
    const entry = entries[index]!
    const name = textEncoder.encode(entry.name)
    const record = (Size.DIRENT + name.length + 7) & ~7
    if (used + record > maxBytes || used + record > out.length) break
    const v = view(out.subarray(used), record)
    v.setBigUint64(0, BigInt(entry.ino), true)
    v.setBigUint64(8, BigInt(index + 1), true)
    v.setUint32(16, name.length, true)
    v.setUint32(20, entry.type, true)
    out.set(name, used + Size.DIRENT)
    used += record
  }
  return used
}
