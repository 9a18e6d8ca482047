/**
 * MWC log record codec: one 4 KiB record per slot of the MWC area the VG reserves on every PV.
 *
 * A record is a complete snapshot (never a delta) of
 *  - the logical track groups (LTGs) of mirrored LVs that may have writes in flight and have a
 *    copy on this PV (the active MWC cache), and
 *  - the resync cursors of the VG (where an interrupted resync resumes).
 * so recovery needs only the newest valid record of each PV. Records rotate through the slots
 * of the area, so a torn write of the newest record leaves the previous one intact (the DRBD
 * activity-log idea).
 *
 * Layout (little-endian, offsets in bytes):
 *
 *   0   8  magic "LVMFSMWC"
 *   8   2  version (1)
 *  10   2  entryCount   (<= MWC_MAX_ENTRIES)
 *  12   2  cursorCount  (<= MWC_MAX_CURSORS)
 *  14   2  reserved, 0
 *  16   8  seq: u64, strictly increasing over every record the VG writes (all PVs)
 *  24   4  vgTag: crc32c of the VG id (misdirection check)
 *  28   4  pvTag: crc32c of the PV id (misdirection check)
 *  32   4  slotIndex: the slot this record was written to (misdirection check)
 *  36   4  crc32c of the whole record with these 4 bytes zero
 *  40  16 * MWC_MAX_ENTRIES   entries: lvId u32, reserved u32, ltgIndex u64
 *  40 + 16 * MWC_MAX_ENTRIES  32 * MWC_MAX_CURSORS  cursors:
 *      lvId u32, lp u32, flags u32 (bit 0: force), targetMask u32 (bit k: copy k),
 *      offsetInLpBytes u64, reserved u64
 *  rest: zero
 *
 * Invariants: unused entries and cursors are zero; entries are unique; a record decodes only if
 * magic, version, crc, vgTag, pvTag and slotIndex all match what the reader expects.
 */
import { crc32c } from '@node-rs/crc32'
import { LvmfsError } from '../errors/index.js'
import { assert } from '../util/assert.js'

export const MWC_RECORD_BYTES = 4096
export const MWC_MAX_ENTRIES = 128
export const MWC_MAX_CURSORS = 32
const MAGIC = Buffer.from('LVMFSMWC', 'latin1')
const VERSION = 1
const HEADER_BYTES = 40
const ENTRY_BYTES = 16
const CURSOR_BYTES = 32
const CRC_OFFSET = 36
const CURSORS_OFFSET = HEADER_BYTES + ENTRY_BYTES * MWC_MAX_ENTRIES
assert(CURSORS_OFFSET + CURSOR_BYTES * MWC_MAX_CURSORS <= MWC_RECORD_BYTES, 'MWC record overflow')

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

export interface MwcRecord {
  readonly seq: number
  readonly entries: readonly MwcEntry[]
  readonly cursors: readonly ResyncCursor[]
}

/** Who the record belongs to; a record read elsewhere (misdirected write) does not decode. */
export interface MwcPlace {
  readonly vgId: string
  readonly pvId: string
  readonly slotIndex: number
}

function tag(text: string): number {
  return crc32c(Buffer.from(text, 'utf8')) >>> 0
}

function assertRecordValid(record: MwcRecord): void {
  assert(Number.isSafeInteger(record.seq) && record.seq >= 0, 'MWC seq out of range')
  assert(record.entries.length <= MWC_MAX_ENTRIES, 'too many MWC entries')
  assert(record.cursors.length <= MWC_MAX_CURSORS, 'too many resync cursors')
  for (const entry of record.entries) {
    assert(entry.lvId >= 0 && entry.lvId <= 0xffffffff, 'MWC lvId out of range')
    assert(Number.isSafeInteger(entry.ltgIndex) && entry.ltgIndex >= 0, 'MWC ltg out of range')
  }
  for (const cursor of record.cursors) {
    assert(cursor.lvId >= 0 && cursor.lvId <= 0xffffffff, 'cursor lvId out of range')
    assert(cursor.lp >= 0 && cursor.lp <= 0xffffffff, 'cursor lp out of range')
    assert(cursor.targetMask > 0 && cursor.targetMask < 8, 'cursor target mask out of range')
    assert(Number.isSafeInteger(cursor.offsetInLpBytes) && cursor.offsetInLpBytes >= 0,
      'cursor offset out of range')
  }
}

export function encodeMwcRecord(record: MwcRecord, place: MwcPlace): Buffer {
  assertRecordValid(record)
  const out = Buffer.alloc(MWC_RECORD_BYTES)
  MAGIC.copy(out, 0)
  out.writeUInt16LE(VERSION, 8)
  out.writeUInt16LE(record.entries.length, 10)
  out.writeUInt16LE(record.cursors.length, 12)
  out.writeBigUInt64LE(BigInt(record.seq), 16)
  out.writeUInt32LE(tag(place.vgId), 24)
  out.writeUInt32LE(tag(place.pvId), 28)
  out.writeUInt32LE(place.slotIndex, 32)
  record.entries.forEach((entry, index) => {
    const at = HEADER_BYTES + index * ENTRY_BYTES
    out.writeUInt32LE(entry.lvId, at)
    out.writeBigUInt64LE(BigInt(entry.ltgIndex), at + 8)
  })
  record.cursors.forEach((cursor, index) => {
    const at = CURSORS_OFFSET + index * CURSOR_BYTES
    out.writeUInt32LE(cursor.lvId, at)
    out.writeUInt32LE(cursor.lp, at + 4)
    out.writeUInt32LE(cursor.force ? 1 : 0, at + 8)
    out.writeUInt32LE(cursor.targetMask, at + 12)
    out.writeBigUInt64LE(BigInt(cursor.offsetInLpBytes), at + 16)
  })
  out.writeUInt32LE(crc32c(out) >>> 0, CRC_OFFSET)
  return out
}

function corrupt(place: MwcPlace, field: string, expected: unknown, got: unknown): LvmfsError {
  return new LvmfsError('ENGINE_CORRUPT', `MWC record in slot ${place.slotIndex} of PV ${place.pvId} ` +
    `has a bad ${field}`, { detail: `Expected ${String(expected)}, got ${String(got)}.`,
    context: { field, expected, got, slotIndex: place.slotIndex, pvId: place.pvId } })
}

/** Decodes one slot. An all-zero slot (never written) returns null; anything else that fails a
 * check throws ENGINE_CORRUPT naming the field (callers treat it as "no record in this slot"). */
export function decodeMwcRecord(bytes: Uint8Array, place: MwcPlace): MwcRecord | null {
  assert(bytes.length >= MWC_RECORD_BYTES, 'MWC slot buffer too small')
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, MWC_RECORD_BYTES)
  if (buffer.every((byte) => byte === 0)) return null
  if (!buffer.subarray(0, 8).equals(MAGIC)) {
    throw corrupt(place, 'magic', 'LVMFSMWC', buffer.subarray(0, 8).toString('hex'))
  }
  const version = buffer.readUInt16LE(8)
  if (version !== VERSION) throw corrupt(place, 'version', VERSION, version)
  const storedCrc = buffer.readUInt32LE(CRC_OFFSET)
  const copy = Buffer.from(buffer)
  copy.writeUInt32LE(0, CRC_OFFSET)
  const actualCrc = crc32c(copy) >>> 0
  if (storedCrc !== actualCrc) throw corrupt(place, 'crc32c', actualCrc, storedCrc)
  if (buffer.readUInt32LE(24) !== tag(place.vgId)) throw corrupt(place, 'vgTag', tag(place.vgId), buffer.readUInt32LE(24))
  if (buffer.readUInt32LE(28) !== tag(place.pvId)) throw corrupt(place, 'pvTag', tag(place.pvId), buffer.readUInt32LE(28))
  const slotIndex = buffer.readUInt32LE(32)
  if (slotIndex !== place.slotIndex) throw corrupt(place, 'slotIndex', place.slotIndex, slotIndex)
  const entryCount = buffer.readUInt16LE(10)
  const cursorCount = buffer.readUInt16LE(12)
  if (entryCount > MWC_MAX_ENTRIES) throw corrupt(place, 'entryCount', `<= ${MWC_MAX_ENTRIES}`, entryCount)
  if (cursorCount > MWC_MAX_CURSORS) throw corrupt(place, 'cursorCount', `<= ${MWC_MAX_CURSORS}`, cursorCount)
  const entries: MwcEntry[] = []
  for (let index = 0; index < entryCount; index++) {
    const at = HEADER_BYTES + index * ENTRY_BYTES
    entries.push({ lvId: buffer.readUInt32LE(at), ltgIndex: Number(buffer.readBigUInt64LE(at + 8)) })
  }
  const cursors: ResyncCursor[] = []
  for (let index = 0; index < cursorCount; index++) {
    const at = CURSORS_OFFSET + index * CURSOR_BYTES
    cursors.push({ lvId: buffer.readUInt32LE(at), lp: buffer.readUInt32LE(at + 4),
      force: (buffer.readUInt32LE(at + 8) & 1) === 1, targetMask: buffer.readUInt32LE(at + 12),
      offsetInLpBytes: Number(buffer.readBigUInt64LE(at + 16)) })
  }
  const record: MwcRecord = { seq: Number(buffer.readBigUInt64LE(16)), entries, cursors }
  assertRecordValid(record)
  return record
}

/** The newest record among the slots of one PV's area (by seq), with its slot index; slots that
 * do not decode are skipped (a torn newest record falls back to the previous one). */
export function newestMwcRecord(slots: readonly Uint8Array[], place: Omit<MwcPlace, 'slotIndex'>):
  { record: MwcRecord, slotIndex: number } | null {
  let best: { record: MwcRecord, slotIndex: number } | null = null
  slots.forEach((bytes, slotIndex) => {
    let record: MwcRecord | null
    try {
      record = decodeMwcRecord(bytes, { ...place, slotIndex })
    } catch (error) {
      if (error instanceof LvmfsError && error.code === 'ENGINE_CORRUPT') return
      throw error
    }
    if (record !== null && (best === null || record.seq > best.record.seq)) best = { record, slotIndex }
  })
  return best
}
