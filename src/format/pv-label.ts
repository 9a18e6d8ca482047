/**
 * PV label codec (format v1). Two copies, at bytes 0 and 4096, each a 4 KiB block whose first
 * 140 bytes are used (the rest zero). Little-endian.
 *
 *   off size field
 *     0   8  magic "LVMFS_PV"
 *     8   4  formatVersion (1)
 *    12   4  labelBytes (140: bytes covered, crc included)
 *    16   4  labelSeq: +1 on each rewrite (vgcreate, vgextend, vgreduce); highest valid wins
 *    20   4  copyIndex: 0 or 1, must equal where it was read (misdirected-write check)
 *    24  16  pvId
 *    40  16  vgId, all zero when the PV belongs to no VG
 *    56   8  deviceSizeBytes at pvcreate
 *    64   4  sectorBytes
 *    68   1  ppSizeLog2 (0 when in no VG)
 *    69   3  reserved (0)
 *    72   8  vgdaOffsetBytes
 *    80   4  vgdaSlotBytes
 *    84   4  vgsaSlotBytes
 *    88   8  vgsaOffsetBytes
 *    96   8  mwcOffsetBytes
 *   104   8  mwcSizeBytes
 *   112   8  dataOffsetBytes (PP 0)
 *   120   4  ppCount (0 when in no VG)
 *   124   4  reserved (0)
 *   128   8  createdAtMs
 *   136   4  crc32c of bytes [0, 136)
 *
 * The label is rewritten only when the PV joins or leaves a VG, never during normal I/O.
 */
import { crc32c } from './crc.js'
import { FORMAT_VERSION, LABEL_COPY_BYTES, type PvLayout } from './layout.js'
import {
  ZERO_ID, badVersion, corrupt, hasMagic, isId, readId, readU64, viewOf, writeId, writeMagic,
  writeU64,
} from './bytes.js'
import { assert } from '../util/index.js'

export const PV_LABEL_MAGIC = 'LVMFS_PV'
export const PV_LABEL_BYTES = 140

export interface PvLabel extends PvLayout {
  readonly labelSeq: number
  readonly pvId: string
  /** ZERO_ID when the PV is in no VG. */
  readonly vgId: string
  readonly deviceSizeBytes: number
  readonly sectorBytes: number
  readonly ppSizeLog2: number
  readonly ppCount: number
  readonly createdAtMs: number
}

export function labelInVg(label: PvLabel): boolean {
  return label.vgId !== ZERO_ID
}

export function assertValidLabel(label: PvLabel): void {
  assert(isId(label.pvId) && isId(label.vgId), 'label ids are 32 hex digits')
  assert(Number.isSafeInteger(label.labelSeq) && label.labelSeq >= 0 && label.labelSeq < 2 ** 32,
    'labelSeq is u32')
  assert(label.ppSizeLog2 >= 0 && label.ppSizeLog2 < 64, 'ppSizeLog2 fits')
  assert(label.ppCount >= 0 && label.ppCount < 2 ** 32, 'ppCount is u32')
  assert(label.vgdaSlotBytes % 512 === 0 && label.vgsaSlotBytes % 512 === 0, 'slots are sector sized')
  assert(label.vgdaSlotBytes < 2 ** 32 && label.vgsaSlotBytes < 2 ** 32, 'slot sizes are u32')
}

/** Encodes one 4 KiB label copy. */
export function encodePvLabel(label: PvLabel, copyIndex: number): Uint8Array {
  assertValidLabel(label)
  assert(copyIndex === 0 || copyIndex === 1, 'copyIndex is 0 or 1')
  const bytes = new Uint8Array(LABEL_COPY_BYTES)
  const view = viewOf(bytes)
  writeMagic(bytes, 0, PV_LABEL_MAGIC)
  view.setUint32(8, FORMAT_VERSION, true)
  view.setUint32(12, PV_LABEL_BYTES, true)
  view.setUint32(16, label.labelSeq, true)
  view.setUint32(20, copyIndex, true)
  writeId(view, 24, label.pvId)
  writeId(view, 40, label.vgId)
  writeU64(view, 56, label.deviceSizeBytes)
  view.setUint32(64, label.sectorBytes, true)
  view.setUint8(68, label.ppSizeLog2)
  writeU64(view, 72, label.vgdaOffsetBytes)
  view.setUint32(80, label.vgdaSlotBytes, true)
  view.setUint32(84, label.vgsaSlotBytes, true)
  writeU64(view, 88, label.vgsaOffsetBytes)
  writeU64(view, 96, label.mwcOffsetBytes)
  writeU64(view, 104, label.mwcSizeBytes)
  writeU64(view, 112, label.dataOffsetBytes)
  view.setUint32(120, label.ppCount, true)
  writeU64(view, 128, label.createdAtMs)
  view.setUint32(136, crc32c(bytes, 0, 136), true)
  return bytes
}

/** Decodes one label copy read from copy position `copyIndex`; throws ENGINE_CORRUPT (with
 * context.reason) or LVM_BADVERSION. */
export function decodePvLabel(bytes: Uint8Array, copyIndex: number): PvLabel {
  if (bytes.length < PV_LABEL_BYTES) throw corrupt('label length', `${PV_LABEL_BYTES}`, `${bytes.length}`)
  if (!hasMagic(bytes, 0, PV_LABEL_MAGIC)) throw corrupt('label magic', PV_LABEL_MAGIC, 'other bytes', 'magic')
  const view = viewOf(bytes)
  const version = view.getUint32(8, true)
  if (view.getUint32(136, true) !== crc32c(bytes, 0, 136)) {
    throw corrupt('label checksum', 'a matching crc32c', 'a mismatch', 'checksum')
  }
  if (version !== FORMAT_VERSION) throw badVersion('PV label', version, FORMAT_VERSION)
  const storedCopy = view.getUint32(20, true)
  if (storedCopy !== copyIndex) {
    throw corrupt('label copyIndex', String(copyIndex), String(storedCopy), 'location')
  }
  const label: PvLabel = {
    labelSeq: view.getUint32(16, true),
    pvId: readId(view, 24),
    vgId: readId(view, 40),
    deviceSizeBytes: readU64(view, 56, 'deviceSizeBytes'),
    sectorBytes: view.getUint32(64, true),
    ppSizeLog2: view.getUint8(68),
    vgdaOffsetBytes: readU64(view, 72, 'vgdaOffsetBytes'),
    vgdaSlotBytes: view.getUint32(80, true),
    vgsaSlotBytes: view.getUint32(84, true),
    vgsaOffsetBytes: readU64(view, 88, 'vgsaOffsetBytes'),
    mwcOffsetBytes: readU64(view, 96, 'mwcOffsetBytes'),
    mwcSizeBytes: readU64(view, 104, 'mwcSizeBytes'),
    dataOffsetBytes: readU64(view, 112, 'dataOffsetBytes'),
    ppCount: view.getUint32(120, true),
    createdAtMs: readU64(view, 128, 'createdAtMs'),
  }
  validateLabelFields(label)
  return label
}

function validateLabelFields(label: PvLabel): void {
  const check = (ok: boolean, field: string, expected: string, got: unknown): void => {
    if (!ok) throw corrupt(`label ${field}`, expected, String(got))
  }
  check(label.pvId !== ZERO_ID, 'pvId', 'a non-zero id', label.pvId)
  const inVg = label.vgId !== ZERO_ID
  check(!inVg || (label.ppSizeLog2 >= 16 && label.ppSizeLog2 <= 34), 'ppSizeLog2', '16..34',
    label.ppSizeLog2)
  check(label.vgdaSlotBytes >= 4096 && label.vgdaSlotBytes % 512 === 0, 'vgdaSlotBytes',
    'a multiple of 512 of at least 4096', label.vgdaSlotBytes)
  check(label.vgsaSlotBytes >= 4096 && label.vgsaSlotBytes % 512 === 0, 'vgsaSlotBytes',
    'a multiple of 512 of at least 4096', label.vgsaSlotBytes)
  check(label.vgdaOffsetBytes >= 2 * LABEL_COPY_BYTES, 'vgdaOffsetBytes', 'after the labels',
    label.vgdaOffsetBytes)
  check(label.vgsaOffsetBytes >= label.vgdaOffsetBytes + 4 * label.vgdaSlotBytes, 'vgsaOffsetBytes',
    'after the VGDA slots', label.vgsaOffsetBytes)
  check(label.mwcOffsetBytes >= label.vgsaOffsetBytes + 4 * label.vgsaSlotBytes, 'mwcOffsetBytes',
    'after the VGSA slots', label.mwcOffsetBytes)
  check(label.dataOffsetBytes >= label.mwcOffsetBytes + label.mwcSizeBytes, 'dataOffsetBytes',
    'after the MWC area', label.dataOffsetBytes)
  const ppBytes = inVg ? 2 ** label.ppSizeLog2 : 0
  check(label.dataOffsetBytes + label.ppCount * ppBytes <= label.deviceSizeBytes, 'ppCount',
    'PPs inside the device', label.ppCount)
}

/** Picks the label from the two copies: the valid one with the highest labelSeq. Returns the
 * error of copy 0 when neither is valid. */
export function pickPvLabel(copy0: Uint8Array, copy1: Uint8Array): PvLabel {
  let first: PvLabel | undefined
  let second: PvLabel | undefined
  let error: unknown
  try {
    first = decodePvLabel(copy0, 0)
  } catch (e) {
    error = e
  }
  try {
    second = decodePvLabel(copy1, 1)
  } catch (e) {
    error ??= e
  }
  if (first !== undefined && second !== undefined) return second.labelSeq > first.labelSeq ? second : first
  const label = first ?? second
  if (label === undefined) throw error
  return label
}
