/**
 * VGDA (volume group descriptor area) copy codec, format v1.
 *
 * One copy occupies one slot: a 512-byte header, the body (UTF-8 JSON, see descriptor-body.ts)
 * padded with zeros to a multiple of 512, and a 512-byte trailer. Little-endian.
 *
 *   header                                  trailer (at 512 + pad512(bodyBytes))
 *   off size field                          off size field
 *     0   8  magic "LVMFSVDA"                 0   8  magic "LVMFSVDT"
 *     8   4  formatVersion (1)                8  16  vgId
 *    12   4  headerBytes (512)               24   8  seq
 *    16  16  vgId                            32   4  bodyCrc
 *    32   8  seq                             36  16  selfPvId
 *    40   8  timestampMs (display only)      52   1  area
 *    48   4  bodyBytes                       53   1  slot
 *    52   4  bodyCrc (crc32c of the body)    54   2  reserved (0)
 *    56  16  selfPvId                        56   4  crc32c of trailer bytes [0, 56)
 *    72   1  area (0|1)
 *    73   1  slot (0|1)
 *    74   2  reserved (0)
 *    76   4  crc32c of header bytes [0, 76)
 *
 * A copy is valid iff both crcs match, header and trailer agree on vgId, seq, bodyCrc and
 * self-location, the self-location equals where the slot was read (pvId, area, slot), and the
 * body's crc matches. A torn write (any subset of sectors new) breaks one of these, so the
 * reader falls back to the other slot, which the writer never touches in the same commit.
 */
import { crc32c } from './crc.js'
import { FORMAT_VERSION } from './layout.js'
import {
  alignUp, badVersion, corrupt, hasMagic, readId, readU64, viewOf, writeId, writeMagic, writeU64,
} from './bytes.js'
import { assert } from '../util/index.js'

export const VGDA_HEADER_MAGIC = 'LVMFSVDA'
export const VGDA_TRAILER_MAGIC = 'LVMFSVDT'
export const VGDA_HEADER_BYTES = 512
export const VGDA_TRAILER_BYTES = 512

export interface SlotLocation {
  readonly pvId: string
  readonly area: number
  readonly slot: number
}

export interface VgdaHeader {
  readonly vgId: string
  readonly seq: number
  readonly timestampMs: number
  readonly bodyBytes: number
  readonly bodyCrc: number
  readonly self: SlotLocation
}

/** Bytes a copy with a body of `bodyBytes` occupies. */
export function vgdaFrameBytes(bodyBytes: number): number {
  return VGDA_HEADER_BYTES + alignUp(bodyBytes, 512) + VGDA_TRAILER_BYTES
}

/** Frames an encoded body for one slot. `body` is shared by every copy of a commit; the crc
 * is passed in so a commit computes it once. */
export function encodeVgdaCopy(input: { vgId: string; seq: number; timestampMs: number;
  body: Uint8Array; bodyCrc: number; self: SlotLocation }): Uint8Array {
  const { body, self } = input
  assert(Number.isSafeInteger(input.seq) && input.seq >= 0, 'seq is a safe non-negative integer')
  assert(self.area === 0 || self.area === 1, 'area is 0 or 1')
  assert(self.slot === 0 || self.slot === 1, 'slot is 0 or 1')
  const bytes = new Uint8Array(vgdaFrameBytes(body.length))
  const view = viewOf(bytes)
  writeMagic(bytes, 0, VGDA_HEADER_MAGIC)
  view.setUint32(8, FORMAT_VERSION, true)
  view.setUint32(12, VGDA_HEADER_BYTES, true)
  writeId(view, 16, input.vgId)
  writeU64(view, 32, input.seq)
  writeU64(view, 40, input.timestampMs)
  view.setUint32(48, body.length, true)
  view.setUint32(52, input.bodyCrc, true)
  writeId(view, 56, self.pvId)
  view.setUint8(72, self.area)
  view.setUint8(73, self.slot)
  view.setUint32(76, crc32c(bytes, 0, 76), true)
  bytes.set(body, VGDA_HEADER_BYTES)
  const t = VGDA_HEADER_BYTES + alignUp(body.length, 512)
  writeMagic(bytes, t, VGDA_TRAILER_MAGIC)
  writeId(view, t + 8, input.vgId)
  writeU64(view, t + 24, input.seq)
  view.setUint32(t + 32, input.bodyCrc, true)
  writeId(view, t + 36, self.pvId)
  view.setUint8(t + 52, self.area)
  view.setUint8(t + 53, self.slot)
  view.setUint32(t + 56, crc32c(bytes, t, t + 56), true)
  return bytes
}

/** Decodes and checks a header read from `expected`; throws ENGINE_CORRUPT/LVM_BADVERSION. */
export function decodeVgdaHeader(bytes: Uint8Array, expected: SlotLocation): VgdaHeader {
  if (!hasMagic(bytes, 0, VGDA_HEADER_MAGIC)) {
    throw corrupt('VGDA header magic', VGDA_HEADER_MAGIC, 'other bytes', 'magic')
  }
  const view = viewOf(bytes)
  if (view.getUint32(76, true) !== crc32c(bytes, 0, 76)) {
    throw corrupt('VGDA header checksum', 'a matching crc32c', 'a mismatch', 'checksum')
  }
  const version = view.getUint32(8, true)
  if (version !== FORMAT_VERSION) throw badVersion('VGDA', version, FORMAT_VERSION)
  const header: VgdaHeader = {
    vgId: readId(view, 16),
    seq: readU64(view, 32, 'VGDA seq'),
    timestampMs: readU64(view, 40, 'VGDA timestampMs'),
    bodyBytes: view.getUint32(48, true),
    bodyCrc: view.getUint32(52, true),
    self: { pvId: readId(view, 56), area: view.getUint8(72), slot: view.getUint8(73) },
  }
  checkLocation('VGDA header', header.self, expected)
  return header
}

function checkLocation(what: string, got: SlotLocation, expected: SlotLocation): void {
  if (got.pvId !== expected.pvId || got.area !== expected.area || got.slot !== expected.slot) {
    throw corrupt(`${what} self-location`, `pv ${expected.pvId} area ${expected.area} slot ${expected.slot}`,
      `pv ${got.pvId} area ${got.area} slot ${got.slot}`, 'location')
  }
}

/** Checks a whole copy (`bytes` starts at the header and holds at least vgdaFrameBytes) and
 * returns its header and body. */
export function decodeVgdaCopy(bytes: Uint8Array, expected: SlotLocation): {
  header: VgdaHeader; body: Uint8Array } {
  const header = decodeVgdaHeader(bytes, expected)
  const frameBytes = vgdaFrameBytes(header.bodyBytes)
  if (bytes.length < frameBytes) {
    throw corrupt('VGDA bodyBytes', `at most ${bytes.length - 1024}`, String(header.bodyBytes))
  }
  const t = VGDA_HEADER_BYTES + alignUp(header.bodyBytes, 512)
  const view = viewOf(bytes)
  if (!hasMagic(bytes, t, VGDA_TRAILER_MAGIC)) {
    throw corrupt('VGDA trailer magic', VGDA_TRAILER_MAGIC, 'other bytes', 'torn')
  }
  if (view.getUint32(t + 56, true) !== crc32c(bytes, t, t + 56)) {
    throw corrupt('VGDA trailer checksum', 'a matching crc32c', 'a mismatch', 'torn')
  }
  const trailerSeq = readU64(view, t + 24, 'VGDA trailer seq')
  if (readId(view, t + 8) !== header.vgId || trailerSeq !== header.seq ||
      view.getUint32(t + 32, true) !== header.bodyCrc) {
    throw corrupt('VGDA trailer', `seq ${header.seq}`, `seq ${trailerSeq}`, 'torn')
  }
  checkLocation('VGDA trailer', { pvId: readId(view, t + 36), area: view.getUint8(t + 52),
    slot: view.getUint8(t + 53) }, expected)
  const body = bytes.subarray(VGDA_HEADER_BYTES, VGDA_HEADER_BYTES + header.bodyBytes)
  if (crc32c(body) !== header.bodyCrc) {
    throw corrupt('VGDA body checksum', 'a matching crc32c', 'a mismatch', 'torn')
  }
  return { header, body }
}
