/**
 * Replica superblock (format v1): the state of one replica copy that changes too often for the
 * descriptor (low-water mark, copy progress), kept in the replica's metadata partition (its
 * LP 0, never part of the data the volume file shows).
 *
 * Two slots: slot s starts at s * slotBytes of the metadata partition, slotBytes = ppSize / 2.
 * A write goes to slot (seq % 2), so a crash while writing leaves the other slot, holding the
 * previous record, intact: a reader takes the valid slot with the higher seq (old or new, never
 * a mix).
 *
 *   offset size field
 *   0      8    magic "LVMFSRSB"
 *   8      4    format version (1)
 *   12     4    crc32c of bytes [16, recordBytes)
 *   16     4    recordBytes (128 + bitmap bytes, rounded up to 4096)
 *   20     4    role: 1 clone, 2 copy, 3 mirror-sync, 4 mirror-async
 *   24     8    seq (strictly increasing per write)
 *   32     8    lwm: every change with commit count <= lwm has reached this copy
 *   40     8    lwmAtMs: source wall clock when the change numbered lwm was made (lag seconds)
 *   48     8    updatedAtMs
 *   56     16   generation: current id
 *   72     16   generation: history[0] (the one before current; zero when none)
 *   88     16   generation: history[1]
 *   104    4    flags: bit 0 consistent (equals the source at some prefix of its writes),
 *                      bit 1 complete (initial copy done), bit 2 split (independent volume),
 *                      bit 3 written since split (took writes while apart)
 *   108    4    dataLps: data partitions (the bitmap's length in bits)
 *   112    4    copiedLps: number of set bits in the bitmap (redundant check)
 *   116    12   reserved (zero)
 *   128    ..   bitmap: bit i set = data partition i was copied (copy and initial mirror sync)
 *
 * Invariants: seq >= 1; copiedLps equals the bitmap's population; bits beyond dataLps are zero;
 * lwm never decreases from one seq to the next (enforced by the writer, checked by tests).
 */
import { alignUp, corrupt, badVersion, hasMagic, isId, readId, readU64, viewOf, writeId,
  writeMagic, writeU64, ZERO_ID } from './bytes.js'
import { crc32c } from './crc.js'

export const SUPERBLOCK_MAGIC = 'LVMFSRSB'
export const SUPERBLOCK_VERSION = 1
export const SUPERBLOCK_HEADER_BYTES = 128
const ROLES = ['clone', 'copy', 'mirror-sync', 'mirror-async'] as const
export type ReplicaRole = typeof ROLES[number]

export const FLAG_CONSISTENT = 1
export const FLAG_COMPLETE = 2
export const FLAG_SPLIT = 4
export const FLAG_WRITTEN_APART = 8

export interface Generation {
  readonly current: string
  /** Newest first; at most two kept. */
  readonly history: readonly string[]
}

export interface ReplicaSuperblock {
  readonly role: ReplicaRole
  readonly seq: number
  readonly lwm: number
  readonly lwmAtMs: number
  readonly updatedAtMs: number
  readonly generation: Generation
  readonly flags: number
  readonly dataLps: number
  /** Copied data partitions (bitmap); length dataLps. */
  readonly copied: Uint8Array
}

/** Bytes of one slot for a PP size. */
export function superblockSlotBytes(ppSizeBytes: number): number {
  return ppSizeBytes / 2
}

/** Most data partitions a superblock can track for a PP size. */
export function superblockMaxLps(ppSizeBytes: number): number {
  return (superblockSlotBytes(ppSizeBytes) - SUPERBLOCK_HEADER_BYTES) * 8
}

export function superblockRecordBytes(dataLps: number): number {
  return alignUp(SUPERBLOCK_HEADER_BYTES + Math.ceil(dataLps / 8), 4096)
}

export function countCopied(copied: Uint8Array): number {
  let count = 0
  for (const byte of copied) {
    let bits = byte
    while (bits !== 0) {
      count += bits & 1
      bits >>= 1
    }
  }
  return count
}

export function isCopied(copied: Uint8Array, lp: number): boolean {
  return ((copied[lp >> 3] ?? 0) & (1 << (lp & 7))) !== 0
}

export function setCopied(copied: Uint8Array, lp: number): void {
  copied[lp >> 3] = (copied[lp >> 3] ?? 0) | (1 << (lp & 7))
}

function assertEncodable(sb: ReplicaSuperblock): void {
  const ok = Number.isSafeInteger(sb.seq) && sb.seq >= 1 && Number.isSafeInteger(sb.lwm) && sb.lwm >= 0 &&
    Number.isSafeInteger(sb.dataLps) && sb.dataLps >= 0 && sb.copied.length === Math.ceil(sb.dataLps / 8) &&
    isId(sb.generation.current) && sb.generation.history.length <= 2 && sb.generation.history.every(isId)
  if (!ok) throw corrupt('replica superblock', 'a valid record to encode', JSON.stringify({ ...sb, copied: undefined }))
}

export function encodeSuperblock(sb: ReplicaSuperblock): Uint8Array {
  assertEncodable(sb)
  const recordBytes = superblockRecordBytes(sb.dataLps)
  const bytes = new Uint8Array(recordBytes)
  const view = viewOf(bytes)
  writeMagic(bytes, 0, SUPERBLOCK_MAGIC)
  view.setUint32(8, SUPERBLOCK_VERSION, true)
  view.setUint32(16, recordBytes, true)
  view.setUint32(20, ROLES.indexOf(sb.role) + 1, true)
  writeU64(view, 24, sb.seq)
  writeU64(view, 32, sb.lwm)
  writeU64(view, 40, sb.lwmAtMs)
  writeU64(view, 48, sb.updatedAtMs)
  writeId(view, 56, sb.generation.current)
  writeId(view, 72, sb.generation.history[0] ?? ZERO_ID)
  writeId(view, 88, sb.generation.history[1] ?? ZERO_ID)
  view.setUint32(104, sb.flags, true)
  view.setUint32(108, sb.dataLps, true)
  view.setUint32(112, countCopied(sb.copied), true)
  bytes.set(sb.copied, SUPERBLOCK_HEADER_BYTES)
  view.setUint32(12, crc32c(bytes, 16, recordBytes), true)
  return bytes
}

/** Decodes one slot; throws ENGINE_CORRUPT (or LVM_BADVERSION) naming the bad field. */
export function decodeSuperblock(slot: Uint8Array): ReplicaSuperblock {
  if (slot.length < SUPERBLOCK_HEADER_BYTES) throw corrupt('superblock.length', `>= ${SUPERBLOCK_HEADER_BYTES}`, String(slot.length))
  if (!hasMagic(slot, 0, SUPERBLOCK_MAGIC)) throw corrupt('superblock.magic', SUPERBLOCK_MAGIC, 'other bytes', 'magic')
  const view = viewOf(slot)
  const version = view.getUint32(8, true)
  if (version !== SUPERBLOCK_VERSION) throw badVersion('replica superblock', version, SUPERBLOCK_VERSION)
  const recordBytes = view.getUint32(16, true)
  if (recordBytes < SUPERBLOCK_HEADER_BYTES || recordBytes > slot.length || recordBytes % 4096 !== 0) {
    throw corrupt('superblock.recordBytes', `a multiple of 4096 up to ${slot.length}`, String(recordBytes), 'torn')
  }
  const crc = crc32c(slot, 16, recordBytes)
  if (crc !== view.getUint32(12, true)) throw corrupt('superblock.crc', String(view.getUint32(12, true)), String(crc), 'checksum')
  const role = ROLES[view.getUint32(20, true) - 1]
  if (role === undefined) throw corrupt('superblock.role', '1..4', String(view.getUint32(20, true)))
  const dataLps = view.getUint32(108, true)
  if (superblockRecordBytes(dataLps) !== recordBytes) {
    throw corrupt('superblock.dataLps', `a count fitting ${recordBytes} bytes`, String(dataLps))
  }
  const copied = slot.slice(SUPERBLOCK_HEADER_BYTES, SUPERBLOCK_HEADER_BYTES + Math.ceil(dataLps / 8))
  if (countCopied(copied) !== view.getUint32(112, true)) {
    throw corrupt('superblock.copiedLps', String(countCopied(copied)), String(view.getUint32(112, true)))
  }
  const history = [readId(view, 72), readId(view, 88)].filter((id) => id !== ZERO_ID)
  return {
    role, seq: readU64(view, 24, 'superblock.seq'), lwm: readU64(view, 32, 'superblock.lwm'),
    lwmAtMs: readU64(view, 40, 'superblock.lwmAtMs'), updatedAtMs: readU64(view, 48, 'superblock.updatedAtMs'),
    generation: { current: readId(view, 56), history }, flags: view.getUint32(104, true), dataLps, copied,
  }
}

/** The newest valid slot, or undefined when neither slot holds a valid record. */
export function newestSuperblock(slots: readonly Uint8Array[]): ReplicaSuperblock | undefined {
  let best: ReplicaSuperblock | undefined
  for (const slot of slots) {
    let decoded: ReplicaSuperblock
    try {
      decoded = decodeSuperblock(slot)
    } catch {
      continue
    }
    if (best === undefined || decoded.seq > best.seq) best = decoded
  }
  return best
}
