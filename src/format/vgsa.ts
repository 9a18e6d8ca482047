/**
 * VGSA (volume group status area) copy codec, format v1. One record per slot; small, and of a
 * shape fixed by the VG's PVs, because it is rewritten on I/O failure paths (a PP went stale,
 * a PV went missing, an LV was opened dirty). Little-endian.
 *
 *   off size field
 *     0   8  magic "LVMFSVSA"
 *     8   4  formatVersion (1)
 *    12   4  recordBytes (whole record, crc included)
 *    16  16  vgId
 *    32   8  seq (status sequence number; highest valid copy wins)
 *    40  16  selfPvId
 *    56   1  area (0|1)
 *    57   1  slot (0|1)
 *    58   2  pvCount
 *    60   4  dirtyCount
 *    64      per PV: pvId (16), missing (1), reserved (3), ppCount (4),
 *            stale bitmap ceil(ppCount / 8) bytes zero-padded to a multiple of 4
 *            (bit pp % 8 of byte pp / 8 set = PP pp is stale)
 *     ..     dirtyCount x u32 lvId (passive-MWC dirty LVs), ascending
 *     ..  4  crc32c of every preceding byte of the record
 *
 * Entries are keyed by pvId, not by descriptor index, so a status record stays meaningful if
 * a crash separates a descriptor commit from the status commit that follows it.
 */
import { crc32c } from './crc.js'
import { FORMAT_VERSION } from './layout.js'
import {
  alignUp, badVersion, corrupt, hasMagic, readId, readU64, viewOf, writeId, writeMagic, writeU64,
} from './bytes.js'
import type { SlotLocation } from './vgda.js'
import { assert } from '../util/index.js'

export const VGSA_MAGIC = 'LVMFSVSA'
const HEADER_BYTES = 64

export interface VgsaPvEntry {
  readonly pvId: string
  readonly missing: boolean
  readonly ppCount: number
  readonly stale: Uint8Array
}

export interface VgsaRecord {
  readonly vgId: string
  readonly seq: number
  readonly pvs: readonly VgsaPvEntry[]
  readonly dirtyLvs: readonly number[]
}

export function bitmapBytes(ppCount: number): number {
  return alignUp(Math.ceil(ppCount / 8), 4)
}

export function vgsaRecordBytes(pvs: ReadonlyArray<{ ppCount: number }>, dirtyCount: number): number {
  return HEADER_BYTES + pvs.reduce((sum, p) => sum + 24 + bitmapBytes(p.ppCount), 0) + 4 * dirtyCount + 4
}

export function encodeVgsaCopy(record: VgsaRecord, self: SlotLocation): Uint8Array {
  assert(record.pvs.length < 65536, 'pvCount fits u16')
  const size = vgsaRecordBytes(record.pvs, record.dirtyLvs.length)
  const bytes = new Uint8Array(size)
  const view = viewOf(bytes)
  writeMagic(bytes, 0, VGSA_MAGIC)
  view.setUint32(8, FORMAT_VERSION, true)
  view.setUint32(12, size, true)
  writeId(view, 16, record.vgId)
  writeU64(view, 32, record.seq)
  writeId(view, 40, self.pvId)
  view.setUint8(56, self.area)
  view.setUint8(57, self.slot)
  view.setUint16(58, record.pvs.length, true)
  view.setUint32(60, record.dirtyLvs.length, true)
  let at = HEADER_BYTES
  for (const pv of record.pvs) {
    assert(pv.stale.length >= Math.ceil(pv.ppCount / 8), 'stale bitmap covers ppCount')
    writeId(view, at, pv.pvId)
    view.setUint8(at + 16, pv.missing ? 1 : 0)
    view.setUint32(at + 20, pv.ppCount, true)
    bytes.set(pv.stale.subarray(0, Math.ceil(pv.ppCount / 8)), at + 24)
    at += 24 + bitmapBytes(pv.ppCount)
  }
  for (const lvId of [...record.dirtyLvs].sort((a, b) => a - b)) {
    view.setUint32(at, lvId, true)
    at += 4
  }
  view.setUint32(at, crc32c(bytes, 0, at), true)
  return bytes
}

/** Decodes a record read from `expected`; `bytes` may extend past the record. */
export function decodeVgsaCopy(bytes: Uint8Array, expected: SlotLocation): VgsaRecord {
  if (!hasMagic(bytes, 0, VGSA_MAGIC)) throw corrupt('VGSA magic', VGSA_MAGIC, 'other bytes', 'magic')
  const view = viewOf(bytes)
  const size = view.getUint32(12, true)
  if (size < HEADER_BYTES + 4 || size > bytes.length || size % 4 !== 0) {
    throw corrupt('VGSA recordBytes', `4-aligned in [68, ${bytes.length}]`, String(size), 'torn')
  }
  if (view.getUint32(size - 4, true) !== crc32c(bytes, 0, size - 4)) {
    throw corrupt('VGSA checksum', 'a matching crc32c', 'a mismatch', 'checksum')
  }
  const version = view.getUint32(8, true)
  if (version !== FORMAT_VERSION) throw badVersion('VGSA', version, FORMAT_VERSION)
  const self = { pvId: readId(view, 40), area: view.getUint8(56), slot: view.getUint8(57) }
  if (self.pvId !== expected.pvId || self.area !== expected.area || self.slot !== expected.slot) {
    throw corrupt('VGSA self-location', `pv ${expected.pvId} area ${expected.area} slot ${expected.slot}`,
      `pv ${self.pvId} area ${self.area} slot ${self.slot}`, 'location')
  }
  const pvCount = view.getUint16(58, true)
  const dirtyCount = view.getUint32(60, true)
  const pvs: VgsaPvEntry[] = []
  let at = HEADER_BYTES
  for (let i = 0; i < pvCount; i++) {
    if (at + 24 > size - 4) throw corrupt('VGSA pv entries', `${pvCount} entries`, `${i}`)
    const ppCount = view.getUint32(at + 20, true)
    const n = bitmapBytes(ppCount)
    if (at + 24 + n > size - 4) throw corrupt('VGSA stale bitmap', `${n} bytes`, 'fewer')
    pvs.push({ pvId: readId(view, at), missing: view.getUint8(at + 16) !== 0, ppCount,
      stale: bytes.slice(at + 24, at + 24 + n) })
    at += 24 + n
  }
  if (at + 4 * dirtyCount + 4 !== size) {
    throw corrupt('VGSA dirtyCount', `${(size - 4 - at) / 4}`, String(dirtyCount))
  }
  const dirtyLvs: number[] = []
  for (let i = 0; i < dirtyCount; i++) dirtyLvs.push(view.getUint32(at + 4 * i, true))
  return { vgId: readId(view, 16), seq: readU64(view, 32, 'VGSA seq'), pvs, dirtyLvs }
}
