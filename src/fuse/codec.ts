/**
 * Decoders for kernel requests and encoders for replies. Pure: bytes in, records out.
 * A malformed or truncated request gives a typed LvmfsError (FUSE_SHORT_HEADER,
 * FUSE_SHORT_REQUEST, FUSE_BAD_LENGTH, FUSE_BAD_STRING), never a crash or an out-of-range read.
 * 64-bit offsets and sizes decode to numbers; values above 2^53 are rejected as FUSE_BAD_LENGTH.
 */
import { LvmfsError } from '../errors/index.js'
import { OPCODE_NAMES, Opcode, Size, type OpcodeName } from './abi.js'

export interface RequestHeader {
  readonly length: number
  readonly opcode: number
  readonly unique: bigint
  readonly nodeid: number
  readonly uid: number
  readonly gid: number
  readonly pid: number
}

export type RequestBody =
  | { op: 'INIT'; major: number; minor: number; maxReadahead: number; flags: number; flags2: number }
  | { op: 'LOOKUP'; name: string }
  | { op: 'FORGET'; nlookup: number }
  | { op: 'BATCH_FORGET'; forgets: Array<{ nodeid: number; nlookup: number }> }
  | { op: 'GETATTR'; flags: number; fh: bigint }
  | { op: 'SETATTR'; valid: number; fh: bigint; sizeBytes: number; mode: number; uid: number;
      gid: number; atimeSeconds: number; mtimeSeconds: number }
  | { op: 'OPEN' | 'OPENDIR'; flags: number }
  | { op: 'READ' | 'READDIR'; fh: bigint; offset: number; size: number; flags: number }
  | { op: 'WRITE'; fh: bigint; offset: number; size: number; writeFlags: number; data: Uint8Array }
  | { op: 'RELEASE' | 'RELEASEDIR'; fh: bigint; flags: number; releaseFlags: number }
  | { op: 'FLUSH'; fh: bigint; lockOwner: bigint }
  | { op: 'FSYNC' | 'FSYNCDIR'; fh: bigint; fsyncFlags: number }
  | { op: 'STATFS' }
  | { op: 'INTERRUPT'; targetUnique: bigint }
  | { op: 'ACCESS'; mask: number }
  | { op: 'FALLOCATE'; fh: bigint; offset: number; length: number; mode: number }
  | { op: 'LSEEK'; fh: bigint; offset: number; whence: number }
  | { op: 'OTHER'; name: OpcodeName | 'UNKNOWN' }

export interface Request {
  readonly header: RequestHeader
  readonly body: RequestBody
}

function u64(view: DataView, offset: number, field: string): number {
  const value = view.getBigUint64(offset, true)
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new LvmfsError('FUSE_BAD_LENGTH', `${field} is above 2^53: ${value}`, {
      context: { field, value: value.toString() },
    })
  }
  return Number(value)
}

export function decodeHeader(bytes: Uint8Array): RequestHeader {
  if (bytes.length < Size.IN_HEADER) {
    throw new LvmfsError('FUSE_SHORT_HEADER',
      `request of ${bytes.length} bytes is shorter than fuse_in_header (${Size.IN_HEADER})`,
      { context: { got: bytes.length, expected: Size.IN_HEADER } })
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const length = view.getUint32(0, true)
  if (length !== bytes.length) {
    throw new LvmfsError('FUSE_BAD_LENGTH',
      `header says ${length} bytes but ${bytes.length} were received`,
      { context: { got: bytes.length, expected: length } })
  }
  return {
    length,
    opcode: view.getUint32(4, true),
    unique: view.getBigUint64(8, true),
    nodeid: u64(view, 16, 'nodeid'),
    uid: view.getUint32(24, true),
    gid: view.getUint32(28, true),
    pid: view.getUint32(32, true),
  }
}

function need(bytes: Uint8Array, size: number, op: string): DataView {
  if (bytes.length < Size.IN_HEADER + size) {
    throw new LvmfsError('FUSE_SHORT_REQUEST',
      `${op} request of ${bytes.length} bytes is shorter than header + ${size}`,
      { context: { op, got: bytes.length, expected: Size.IN_HEADER + size } })
  }
  return new DataView(bytes.buffer, bytes.byteOffset + Size.IN_HEADER, bytes.length - Size.IN_HEADER)
}

const textDecoder = new TextDecoder('utf-8', { fatal: false })

function cString(bytes: Uint8Array, start: number, op: string): string {
  const end = bytes.indexOf(0, start)
  if (end < 0) {
    throw new LvmfsError('FUSE_BAD_STRING', `${op} name is not NUL-terminated`, { context: { op } })
  }
  return textDecoder.decode(bytes.subarray(start, end))
}

type Decoder = (bytes: Uint8Array) => RequestBody

const decoders = new Map<number, Decoder>([
  [Opcode.INIT, (b) => {
    const v = need(b, 16, 'INIT')
    const flags = v.getUint32(12, true)
    // flags2 exists only in the 64-byte form announced by INIT_EXT.
    const flags2 = b.length >= Size.IN_HEADER + 20 ? v.getUint32(16, true) : 0
    return { op: 'INIT', major: v.getUint32(0, true), minor: v.getUint32(4, true),
      maxReadahead: v.getUint32(8, true), flags, flags2 }
  }],
  [Opcode.LOOKUP, (b) => ({ op: 'LOOKUP', name: cString(b, Size.IN_HEADER, 'LOOKUP') })],
  [Opcode.FORGET, (b) => ({ op: 'FORGET', nlookup: u64(need(b, Size.FORGET_IN, 'FORGET'), 0, 'nlookup') })],
  [Opcode.BATCH_FORGET, decodeBatchForget],
  [Opcode.GETATTR, (b) => {
    const v = need(b, Size.GETATTR_IN, 'GETATTR')
    return { op: 'GETATTR', flags: v.getUint32(0, true), fh: v.getBigUint64(8, true) }
  }],
  [Opcode.SETATTR, (b) => {
    const v = need(b, Size.SETATTR_IN, 'SETATTR')
    return { op: 'SETATTR', valid: v.getUint32(0, true), fh: v.getBigUint64(8, true),
      sizeBytes: u64(v, 16, 'size'), atimeSeconds: u64(v, 32, 'atime'),
      mtimeSeconds: u64(v, 40, 'mtime'), mode: v.getUint32(68, true), uid: v.getUint32(76, true),
      gid: v.getUint32(80, true) }
  }],
  [Opcode.OPEN, (b) => ({ op: 'OPEN', flags: need(b, Size.OPEN_IN, 'OPEN').getUint32(0, true) })],
  [Opcode.OPENDIR, (b) => ({ op: 'OPENDIR', flags: need(b, Size.OPEN_IN, 'OPENDIR').getUint32(0, true) })],
  [Opcode.READ, (b) => decodeRead(b, 'READ')],
  [Opcode.READDIR, (b) => decodeRead(b, 'READDIR')],
  [Opcode.WRITE, decodeWrite],
  [Opcode.RELEASE, (b) => decodeRelease(b, 'RELEASE')],
  [Opcode.RELEASEDIR, (b) => decodeRelease(b, 'RELEASEDIR')],
  [Opcode.FLUSH, (b) => {
    const v = need(b, Size.FLUSH_IN, 'FLUSH')
    return { op: 'FLUSH', fh: v.getBigUint64(0, true), lockOwner: v.getBigUint64(16, true) }
  }],
  [Opcode.FSYNC, (b) => decodeFsync(b, 'FSYNC')],
  [Opcode.FSYNCDIR, (b) => decodeFsync(b, 'FSYNCDIR')],
  [Opcode.STATFS, () => ({ op: 'STATFS' })],
  [Opcode.INTERRUPT, (b) => ({ op: 'INTERRUPT',
    targetUnique: need(b, Size.INTERRUPT_IN, 'INTERRUPT').getBigUint64(0, true) })],
  [Opcode.ACCESS, (b) => ({ op: 'ACCESS', mask: need(b, Size.ACCESS_IN, 'ACCESS').getUint32(0, true) })],
  [Opcode.FALLOCATE, (b) => {
    const v = need(b, Size.FALLOCATE_IN, 'FALLOCATE')
    return { op: 'FALLOCATE', fh: v.getBigUint64(0, true), offset: u64(v, 8, 'offset'),
      length: u64(v, 16, 'length'), mode: v.getUint32(24, true) }
  }],
  [Opcode.LSEEK, (b) => {
    const v = need(b, Size.LSEEK_IN, 'LSEEK')
    return { op: 'LSEEK', fh: v.getBigUint64(0, true), offset: u64(v, 8, 'offset'),
      whence: v.getUint32(16, true) }
  }],
])

function decodeRead(b: Uint8Array, op: 'READ' | 'READDIR'): RequestBody {
  const v = need(b, Size.READ_IN, op)
  return { op, fh: v.getBigUint64(0, true), offset: u64(v, 8, 'offset'), size: v.getUint32(16, true),
    flags: v.getUint32(32, true) }
}

function decodeWrite(b: Uint8Array): RequestBody {
  const v = need(b, Size.WRITE_IN, 'WRITE')
  const size = v.getUint32(16, true)
  const start = Size.IN_HEADER + Size.WRITE_IN
  if (b.length < start + size) {
    throw new LvmfsError('FUSE_SHORT_REQUEST',
      `WRITE of ${size} bytes carries only ${b.length - start}`,
      { context: { op: 'WRITE', got: b.length - start, expected: size } })
  }
  return { op: 'WRITE', fh: v.getBigUint64(0, true), offset: u64(v, 8, 'offset'), size,
    writeFlags: v.getUint32(20, true), data: b.subarray(start, start + size) }
}

function decodeRelease(b: Uint8Array, op: 'RELEASE' | 'RELEASEDIR'): RequestBody {
  const v = need(b, Size.RELEASE_IN, op)
  return { op, fh: v.getBigUint64(0, true), flags: v.getUint32(8, true),
    releaseFlags: v.getUint32(12, true) }
}

function decodeFsync(b: Uint8Array, op: 'FSYNC' | 'FSYNCDIR'): RequestBody {
  const v = need(b, Size.FSYNC_IN, op)
  return { op, fh: v.getBigUint64(0, true), fsyncFlags: v.getUint32(8, true) }
}

function decodeBatchForget(b: Uint8Array): RequestBody {
  const v = need(b, Size.BATCH_FORGET_IN, 'BATCH_FORGET')
  const count = v.getUint32(0, true)
  if (b.length < Size.IN_HEADER + Size.BATCH_FORGET_IN + count * Size.FORGET_ONE) {
    throw new LvmfsError('FUSE_SHORT_REQUEST', `BATCH_FORGET announces ${count} entries but is short`,
      { context: { op: 'BATCH_FORGET', count, got: b.length } })
  }
  const forgets: Array<{ nodeid: number; nlookup: number }> = []
  for (let i = 0; i < count; i++) {
    const at = Size.BATCH_FORGET_IN + i * Size.FORGET_ONE
    forgets.push({ nodeid: u64(v, at, 'nodeid'), nlookup: u64(v, at + 8, 'nlookup') })
  }
  return { op: 'BATCH_FORGET', forgets }
}

/** Decodes one request; `bytes` must be exactly the bytes the kernel delivered. */
export function decodeRequest(bytes: Uint8Array): Request {
  const header = decodeHeader(bytes)
  const decoder = decoders.get(header.opcode)
  const body = decoder ? decoder(bytes) : { op: 'OTHER' as const, name: OPCODE_NAMES.get(header.opcode) ?? 'UNKNOWN' as const }
  return { header, body }
}
