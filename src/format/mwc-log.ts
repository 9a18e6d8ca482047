/**
 * Activity-log record codec (the MWC log of docs/format.md): the records a VG keeps in the MWC
 * area it reserves on every PV.
 *
 * A record is a complete snapshot (never a delta) of
 *  - the active extents: logical track groups (LTGs) of mirrored LVs with a copy on this PV that
 *    may have writes in flight (the activity log),
 *  - the resync cursors of the VG (where an interrupted resync resumes),
 *  - the write-intent bitmaps: for LPs with a copy on this PV that have a stale copy, which
 *    chunks may differ between their copies (bits are set before the LTG holding the write
 *    leaves the activity log).
 * so recovery needs only the newest valid record of each PV.
 *
 * The area is a ring of 4 KiB blocks. A v2 record takes `blockCount` consecutive blocks and
 * starts where the previous one ended, wrapping to block 0 when it does not fit; a record is at
 * most a third of the area, so the next record never overwrites the newest one and a torn write
 * leaves the previous record intact. v1 records (one 4 KiB record per slot, slot = block) are
 * still read, so a VG written by an older lvmfs recovers.
 *
 * v2 layout (little-endian, offsets in bytes from the record's first block):
 *
 *   0   8  magic "LVMFSMWC"
 *   8   2  version (2)
 *  10   2  blockCount (record length in 4 KiB blocks)
 *  12   4  blockIndex (first block of the record in the area: misdirection check)
 *  16   8  seq: u64, strictly increasing over every record the VG writes (all PVs)
 *  24   4  vgTag: crc32c of the VG id
 *  28   4  pvTag: crc32c of the PV id
 *  32   4  reserved, 0
 *  36   4  crc32c of the blockCount * 4096 bytes with these 4 bytes zero
 *  40   4  entryCount
 *  44   2  cursorCount (<= MWC_MAX_CURSORS)
 *  46   2  reserved, 0
 *  48   4  dirtyCount
 *  52   4  dirtyBytes (bytes of the dirty section)
 *  56   8  reserved, 0
 *  64      entries, 8 bytes each: lvId u32, ltgIndex u32
 *          cursors, 32 bytes each: lvId u32, lp u32, flags u32 (bit 0: force),
 *            targetMask u32 (bit k: copy k), offsetInLpBytes u64, reserved u64
 *          dirty, each: lvId u32, lp u32 (0xffffffff: every LP of the LV), chunkBytesLog2 u8,
 *            reserved u8, bitBytes u16, bitBytes bytes of bits (bit c of byte c>>3, LSB first:
 *            chunk c), zero padding to a multiple of 8
 *  rest: zero
 */
import { crc32c } from '@node-rs/crc32'
import { LvmfsError } from '../errors/index.js'
import { assert } from '../util/index.js'

export const MWC_BLOCK_BYTES = 4096
export const MWC_MAX_CURSORS = 32
/** Active extents per LV unless its descriptor says otherwise (DRBD's al-extents default). */
export const DEFAULT_AL_EXTENTS = 1237
/** LTGs an LV may hold beyond its al-extents while every entry is pinned (writes in flight in
 * every extent); past it, new pins wait. */
export const PINNED_OVERSHOOT_LTGS = 64
/** `lp` of a dirty entry that covers every LP of the LV (its bitmaps did not fit a record). */
export const WHOLE_LV = 0xffffffff
const MAGIC = Buffer.from('LVMFSMWC', 'latin1')
const CRC_OFFSET = 36

const V1 = { version: 1, headerBytes: 40, entryBytes: 16, maxEntries: 128, cursorsOffset: 40 + 16 * 128 }
const V2 = { version: 2, headerBytes: 64, entryBytes: 8 }
const CURSOR_BYTES = 32
const DIRTY_HEADER_BYTES = 12

/** One LTG that may hold an in-flight mirrored write. */
export interface MwcEntry {
  readonly lvId: number
  readonly ltgIndex: number
}

/** Where an interrupted resync of one LP resumes: bytes [0, offsetInLpBytes) of every target
 * copy are already copied and have been kept current by write-through since. */
export interface ResyncCursor {
  readonly lvId: number
  readonly lp: number
  readonly force: boolean
  /** Bit k set: copy k is a target of this resync. */
  readonly targetMask: number
  readonly offsetInLpBytes: number
}

/** Write-intent bits of one LP (or, with lp WHOLE_LV and no bits, of every LP of an LV). */
export interface DirtyChunks {
  readonly lvId: number
  readonly lp: number
  readonly chunkBytesLog2: number
  readonly bits: Uint8Array
}

export interface MwcRecord {
  readonly seq: number
  readonly entries: readonly MwcEntry[]
  readonly cursors: readonly ResyncCursor[]
  readonly dirty: readonly DirtyChunks[]
}

/** Who the record belongs to and where it sits; a record read elsewhere does not decode. */
export interface MwcPlace {
  readonly vgId: string
  readonly pvId: string
  readonly blockIndex: number
}

function tag(text: string): number {
  return crc32c(Buffer.from(text, 'utf8')) >>> 0
}

function dirtyBytesOf(dirty: DirtyChunks): number {
  return DIRTY_HEADER_BYTES + Math.ceil(dirty.bits.length / 8) * 8
}

/** Bytes a record needs before block rounding. */
export function mwcRecordBytes(counts: { entries: number, cursors: number, dirty: readonly DirtyChunks[] }): number {
  return V2.headerBytes + counts.entries * V2.entryBytes + counts.cursors * CURSOR_BYTES +
    counts.dirty.reduce((sum, dirty) => sum + dirtyBytesOf(dirty), 0)
}

/** Largest record an area of `areaBlocks` blocks holds, in blocks (see the ring rule above). */
export function maxRecordBlocks(areaBlocks: number): number {
  assert(areaBlocks >= 2, 'an MWC area holds at least two blocks')
  return Math.max(1, Math.floor(areaBlocks / 3))
}

/** Active extents one record in an MWC area of `areaBytes` can list, beside every cursor and
 * no bitmap (bitmaps that do not fit degrade to whole-LV markers). */
export function alExtentsCapacity(areaBytes: number): number {
  const maxBytes = maxRecordBlocks(Math.floor(areaBytes / MWC_BLOCK_BYTES)) * MWC_BLOCK_BYTES
  return Math.floor((maxBytes - mwcRecordBytes({ entries: 0, cursors: MWC_MAX_CURSORS, dirty: [] })) / V2.entryBytes)
}

function assertRecordValid(record: MwcRecord): void {
  assert(Number.isSafeInteger(record.seq) && record.seq >= 0, 'MWC seq out of range')
  assert(record.cursors.length <= MWC_MAX_CURSORS, 'too many resync cursors')
  for (const entry of record.entries) {
    assert(entry.lvId >= 0 && entry.lvId <= 0xffffffff, 'MWC lvId out of range')
    assert(Number.isInteger(entry.ltgIndex) && entry.ltgIndex >= 0 && entry.ltgIndex <= 0xffffffff, 'MWC ltg out of range')
  }
  for (const cursor of record.cursors) {
    assert(cursor.lvId >= 0 && cursor.lvId <= 0xffffffff, 'cursor lvId out of range')
    assert(cursor.lp >= 0 && cursor.lp <= 0xffffffff, 'cursor lp out of range')
    assert(cursor.targetMask > 0 && cursor.targetMask < 8, 'cursor target mask out of range')
    assert(Number.isSafeInteger(cursor.offsetInLpBytes) && cursor.offsetInLpBytes >= 0,
      'cursor offset out of range')
  }
  for (const dirty of record.dirty) {
    assert(dirty.lvId >= 0 && dirty.lvId <= 0xffffffff && dirty.lp >= 0 && dirty.lp <= 0xffffffff, 'dirty entry out of range')
    assert(dirty.chunkBytesLog2 >= 9 && dirty.chunkBytesLog2 <= 40, 'dirty chunk size out of range')
    assert(dirty.bits.length <= 0xffff, 'dirty bitmap too long')
  }
}

/** Encodes a v2 record; its length is the smallest whole number of blocks that holds it. */
export function encodeMwcRecord(record: MwcRecord, place: MwcPlace): Buffer {
  assertRecordValid(record)
  const bytes = mwcRecordBytes({ entries: record.entries.length, cursors: record.cursors.length, dirty: record.dirty })
  const blockCount = Math.ceil(bytes / MWC_BLOCK_BYTES)
  assert(blockCount <= 0xffff, 'MWC record too long')
  const out = Buffer.alloc(blockCount * MWC_BLOCK_BYTES)
  MAGIC.copy(out, 0)
  out.writeUInt16LE(V2.version, 8)
  out.writeUInt16LE(blockCount, 10)
  out.writeUInt32LE(place.blockIndex, 12)
  out.writeBigUInt64LE(BigInt(record.seq), 16)
  out.writeUInt32LE(tag(place.vgId), 24)
  out.writeUInt32LE(tag(place.pvId), 28)
  out.writeUInt32LE(record.entries.length, 40)
  out.writeUInt16LE(record.cursors.length, 44)
  out.writeUInt32LE(record.dirty.length, 48)
  let at = V2.headerBytes
  for (const entry of record.entries) {
    out.writeUInt32LE(entry.lvId, at)
    out.writeUInt32LE(entry.ltgIndex, at + 4)
    at += V2.entryBytes
  }
  for (const cursor of record.cursors) at = writeCursor(out, at, cursor)
  const dirtyStart = at
  for (const dirty of record.dirty) {
    out.writeUInt32LE(dirty.lvId, at)
    out.writeUInt32LE(dirty.lp, at + 4)
    out.writeUInt8(dirty.chunkBytesLog2, at + 8)
    out.writeUInt16LE(dirty.bits.length, at + 10)
    out.set(dirty.bits, at + DIRTY_HEADER_BYTES)
    at += dirtyBytesOf(dirty)
  }
  out.writeUInt32LE(at - dirtyStart, 52)
  out.writeUInt32LE(crc32c(out) >>> 0, CRC_OFFSET)
  return out
}

function writeCursor(out: Buffer, at: number, cursor: ResyncCursor): number {
  out.writeUInt32LE(cursor.lvId, at)
  out.writeUInt32LE(cursor.lp, at + 4)
  out.writeUInt32LE(cursor.force ? 1 : 0, at + 8)
  out.writeUInt32LE(cursor.targetMask, at + 12)
  out.writeBigUInt64LE(BigInt(cursor.offsetInLpBytes), at + 16)
  return at + CURSOR_BYTES
}

function readCursor(buffer: Buffer, at: number): ResyncCursor {
  return { lvId: buffer.readUInt32LE(at), lp: buffer.readUInt32LE(at + 4),
    force: (buffer.readUInt32LE(at + 8) & 1) === 1, targetMask: buffer.readUInt32LE(at + 12),
    offsetInLpBytes: Number(buffer.readBigUInt64LE(at + 16)) }
}

function corrupt(place: MwcPlace, field: string, expected: unknown, got: unknown): LvmfsError {
  return new LvmfsError('ENGINE_CORRUPT', `MWC record at block ${place.blockIndex} of PV ${place.pvId} ` +
    `has a bad ${field}`, { detail: `Expected ${String(expected)}, got ${String(got)}.`,
    context: { field, expected, got, blockIndex: place.blockIndex, pvId: place.pvId } })
}

function checkCrc(buffer: Buffer, place: MwcPlace): void {
  const storedCrc = buffer.readUInt32LE(CRC_OFFSET)
  const copy = Buffer.from(buffer)
  copy.writeUInt32LE(0, CRC_OFFSET)
  const actualCrc = crc32c(copy) >>> 0
  if (storedCrc !== actualCrc) throw corrupt(place, 'crc32c', actualCrc, storedCrc)
}

function checkTags(buffer: Buffer, place: MwcPlace): void {
  if (buffer.readUInt32LE(24) !== tag(place.vgId)) throw corrupt(place, 'vgTag', tag(place.vgId), buffer.readUInt32LE(24))
  if (buffer.readUInt32LE(28) !== tag(place.pvId)) throw corrupt(place, 'pvTag', tag(place.pvId), buffer.readUInt32LE(28))
}

/**
 * Decodes the record starting at `place.blockIndex` of `area` (the whole MWC area of a PV). An
 * all-zero block returns null; anything else that fails a check throws ENGINE_CORRUPT naming
 * the field (callers treat it as "no record here").
 */
export function decodeMwcRecord(area: Uint8Array, place: MwcPlace): { record: MwcRecord, blockCount: number } | null {
  const start = place.blockIndex * MWC_BLOCK_BYTES
  assert(start + MWC_BLOCK_BYTES <= area.length, 'MWC block outside the area')
  const first = Buffer.from(area.buffer, area.byteOffset + start, MWC_BLOCK_BYTES)
  if (first.every((byte) => byte === 0)) return null
  if (!first.subarray(0, 8).equals(MAGIC)) throw corrupt(place, 'magic', 'LVMFSMWC', first.subarray(0, 8).toString('hex'))
  const version = first.readUInt16LE(8)
  if (version === V1.version) return { record: decodeV1(first, place), blockCount: 1 }
  if (version !== V2.version) throw corrupt(place, 'version', '1 or 2', version)
  const blockCount = first.readUInt16LE(10)
  if (blockCount < 1 || start + blockCount * MWC_BLOCK_BYTES > area.length) {
    throw corrupt(place, 'blockCount', `1..${(area.length - start) / MWC_BLOCK_BYTES}`, blockCount)
  }
  const buffer = Buffer.from(area.buffer, area.byteOffset + start, blockCount * MWC_BLOCK_BYTES)
  checkCrc(buffer, place)
  checkTags(buffer, place)
  if (buffer.readUInt32LE(12) !== place.blockIndex) throw corrupt(place, 'blockIndex', place.blockIndex, buffer.readUInt32LE(12))
  const entryCount = buffer.readUInt32LE(40)
  const cursorCount = buffer.readUInt16LE(44)
  const dirtyCount = buffer.readUInt32LE(48)
  const dirtyBytes = buffer.readUInt32LE(52)
  if (cursorCount > MWC_MAX_CURSORS) throw corrupt(place, 'cursorCount', `<= ${MWC_MAX_CURSORS}`, cursorCount)
  const dirtyStart = V2.headerBytes + entryCount * V2.entryBytes + cursorCount * CURSOR_BYTES
  if (dirtyStart + dirtyBytes > buffer.length) throw corrupt(place, 'section lengths', `<= ${buffer.length}`, dirtyStart + dirtyBytes)
  const entries: MwcEntry[] = []
  let at = V2.headerBytes
  for (let index = 0; index < entryCount; index++, at += V2.entryBytes) {
    entries.push({ lvId: buffer.readUInt32LE(at), ltgIndex: buffer.readUInt32LE(at + 4) })
  }
  const cursors: ResyncCursor[] = []
  for (let index = 0; index < cursorCount; index++, at += CURSOR_BYTES) cursors.push(readCursor(buffer, at))
  const dirty: DirtyChunks[] = []
  for (let index = 0; index < dirtyCount; index++) {
    if (at + DIRTY_HEADER_BYTES > dirtyStart + dirtyBytes) throw corrupt(place, `dirty[${index}]`, 'inside the section', at)
    const bitBytes = buffer.readUInt16LE(at + 10)
    const entry: DirtyChunks = { lvId: buffer.readUInt32LE(at), lp: buffer.readUInt32LE(at + 4),
      chunkBytesLog2: buffer.readUInt8(at + 8),
      bits: Uint8Array.from(buffer.subarray(at + DIRTY_HEADER_BYTES, at + DIRTY_HEADER_BYTES + bitBytes)) }
    at += dirtyBytesOf(entry)
    if (at > dirtyStart + dirtyBytes) throw corrupt(place, `dirty[${index}]`, 'inside the section', at)
    dirty.push(entry)
  }
  const record: MwcRecord = { seq: Number(buffer.readBigUInt64LE(16)), entries, cursors, dirty }
  assertRecordValid(record)
  return { record, blockCount }
}

/** A v1 record (lvmfs before the activity log): one 4 KiB record per slot, slot = block. */
function decodeV1(buffer: Buffer, place: MwcPlace): MwcRecord {
  checkCrc(buffer, place)
  checkTags(buffer, place)
  if (buffer.readUInt32LE(32) !== place.blockIndex) throw corrupt(place, 'slotIndex', place.blockIndex, buffer.readUInt32LE(32))
  const entryCount = buffer.readUInt16LE(10)
  const cursorCount = buffer.readUInt16LE(12)
  if (entryCount > V1.maxEntries) throw corrupt(place, 'entryCount', `<= ${V1.maxEntries}`, entryCount)
  if (cursorCount > MWC_MAX_CURSORS) throw corrupt(place, 'cursorCount', `<= ${MWC_MAX_CURSORS}`, cursorCount)
  const entries: MwcEntry[] = []
  for (let index = 0; index < entryCount; index++) {
    const at = V1.headerBytes + index * V1.entryBytes
    entries.push({ lvId: buffer.readUInt32LE(at), ltgIndex: Number(buffer.readBigUInt64LE(at + 8)) })
  }
  const cursors: ResyncCursor[] = []
  for (let index = 0; index < cursorCount; index++) {
    cursors.push(readCursor(buffer, V1.cursorsOffset + index * CURSOR_BYTES))
  }
  return { seq: Number(buffer.readBigUInt64LE(16)), entries, cursors, dirty: [] }
}

/** What one PV's area holds: its newest valid record, and whether the area held bytes but no
 * valid record at all (unreadable log: the caller must assume every region is dirty). */
export interface AreaScan {
  readonly newest: { record: MwcRecord, blockIndex: number, blockCount: number } | null
  readonly unreadable: boolean
}

/** Scans every block of an area for records and keeps the newest by seq; blocks that do not
 * decode are skipped (a torn newest record falls back to the previous one). */
export function scanMwcArea(area: Uint8Array, place: Omit<MwcPlace, 'blockIndex'>): AreaScan {
  assert(area.length % MWC_BLOCK_BYTES === 0, 'MWC area is not whole blocks')
  let newest: AreaScan['newest'] = null
  let written = false
  for (let blockIndex = 0; blockIndex < area.length / MWC_BLOCK_BYTES; blockIndex++) {
    let found: { record: MwcRecord, blockCount: number } | null
    try {
      found = decodeMwcRecord(area, { ...place, blockIndex })
    } catch (error) {
      if (error instanceof LvmfsError && error.code === 'ENGINE_CORRUPT') {
        written = true
        continue
      }
      throw error
    }
    if (found === null) continue
    written = true
    if (newest === null || found.record.seq > newest.record.seq) newest = { ...found, blockIndex }
  }
  return { newest, unreadable: written && newest === null }
}

/** Where the next record of `blockCount` blocks goes after `newest` in an area of `areaBlocks`. */
export function nextRecordBlock(newest: { blockIndex: number, blockCount: number } | null,
  blockCount: number, areaBlocks: number): number {
  assert(blockCount <= maxRecordBlocks(areaBlocks), 'MWC record larger than a third of the area')
  if (newest === null) return 0
  const after = newest.blockIndex + newest.blockCount
  return after + blockCount <= areaBlocks ? after : 0
}
