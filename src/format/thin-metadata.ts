/**
 * Thin pool metadata blocks (docs/format.md § "Thin pool metadata"). The metadata area is the
 * first `metadataBlocks` 4 KiB blocks of the pool LV: blocks 0 and 1 are the two superblock
 * slots, every other block is a node of a copy-on-write radix tree or a device table block.
 * Every block carries a crc32c and its own block number, so a torn, stale or misdirected block
 * is detected, never trusted.
 */
import { LvmfsError } from '../errors/index.js'
import { badVersion, hasMagic, readU64, viewOf, writeMagic, writeU64 } from './bytes.js'
import { crc32c } from './crc.js'

export const THIN_BLOCK_BYTES = 4096
export const THIN_SUPERBLOCK_SLOTS = 2
export const THIN_FORMAT_VERSION = 1
const SUPER_MAGIC = 'LVMFSTHN'
const NODE_MAGIC = 'TNOD'
const HEADER_BYTES = 32
/** Entries per tree node: (4096 - 32) / 8. */
export const THIN_FANOUT = (THIN_BLOCK_BYTES - HEADER_BYTES) / 8
const DEVICE_BYTES = 32
/** Device entries per device table block. */
export const THIN_DEVICES_PER_BLOCK = Math.floor((THIN_BLOCK_BYTES - HEADER_BYTES) / DEVICE_BYTES)

export type ThinNodeKind = 'interior' | 'leaf' | 'devices'
const KIND_CODES: Record<ThinNodeKind, number> = { interior: 1, leaf: 2, devices: 3 }

export interface ThinSuperblock {
  /** Commit number; the valid slot with the highest one is the pool's state. */
  readonly transaction: number
  readonly chunkBytes: number
  /** Bumped by every snapshot; a mapping older than its device's snapshot time may be shared. */
  readonly poolTime: number
  readonly dataBlocks: number
  readonly metadataBlocks: number
  /** First device table block, 0 when the pool has no thin devices. */
  readonly deviceTable: number
  readonly nextThinId: number
}

/**
 * One tree node. Interior: `lo[i]` is the child block (0: none). Leaf: `hi[i]` is the data block
 * + 1 (0: unmapped) and `lo[i]` the pool time it was mapped at.
 */
export interface ThinNode {
  readonly kind: 'interior' | 'leaf'
  readonly level: number
  readonly hi: Uint32Array
  readonly lo: Uint32Array
}

export interface ThinDevice {
  readonly thinId: number
  /** Tree height (levels of nodes, the leaf level included). */
  readonly levels: number
  readonly virtualBlocks: number
  /** Root node block, 0 when nothing is mapped. */
  readonly root: number
  readonly snapshottedTime: number
  readonly mappedBlocks: number
}

export function thinCorrupt(block: number, what: string, detail: string): LvmfsError {
  return new LvmfsError('THIN_CORRUPT', `thin metadata block ${block}: ${what}`, {
    detail, hint: 'Run `lvmfs thin-check VG/POOL` to list every damaged block.',
    context: { block, what },
  })
}

function sealed(bytes: Uint8Array): Uint8Array {
  viewOf(bytes).setUint32(8, crc32c(bytes, 12), true)
  return bytes
}

function sealedNode(bytes: Uint8Array): Uint8Array {
  viewOf(bytes).setUint32(4, crc32c(bytes, 8), true)
  return bytes
}

export function encodeThinSuperblock(sb: ThinSuperblock, slot: number): Uint8Array {
  const bytes = new Uint8Array(THIN_BLOCK_BYTES)
  const view = viewOf(bytes)
  writeMagic(bytes, 0, SUPER_MAGIC)
  view.setUint32(12, THIN_FORMAT_VERSION, true)
  writeU64(view, 16, sb.transaction)
  view.setUint32(24, sb.chunkBytes, true)
  view.setUint32(28, sb.poolTime, true)
  writeU64(view, 32, sb.dataBlocks)
  writeU64(view, 40, sb.metadataBlocks)
  writeU64(view, 48, sb.deviceTable)
  view.setUint32(56, sb.nextThinId, true)
  view.setUint32(60, slot, true)
  return sealed(bytes)
}

/** The superblock in `slot`, or the reason it is not valid (never throws on bad bytes). */
export function decodeThinSuperblock(bytes: Uint8Array, slot: number): ThinSuperblock | LvmfsError {
  const view = viewOf(bytes)
  if (!hasMagic(bytes, 0, SUPER_MAGIC)) return thinCorrupt(slot, 'superblock magic', 'Expected "LVMFSTHN".')
  if (view.getUint32(8, true) !== crc32c(bytes, 12)) {
    return thinCorrupt(slot, 'superblock checksum', 'The crc32c of bytes 12..4095 does not match.')
  }
  const version = view.getUint32(12, true)
  if (version !== THIN_FORMAT_VERSION) return badVersion('thin metadata', version, THIN_FORMAT_VERSION)
  if (view.getUint32(60, true) !== slot) {
    return thinCorrupt(slot, 'superblock slot', `It says slot ${view.getUint32(60, true)}.`)
  }
  return {
    transaction: readU64(view, 16, 'thin.transaction'), chunkBytes: view.getUint32(24, true),
    poolTime: view.getUint32(28, true), dataBlocks: readU64(view, 32, 'thin.dataBlocks'),
    metadataBlocks: readU64(view, 40, 'thin.metadataBlocks'), deviceTable: readU64(view, 48, 'thin.deviceTable'),
    nextThinId: view.getUint32(56, true),
  }
}

function encodeHeader(bytes: Uint8Array, block: number, transaction: number, kind: ThinNodeKind, level: number,
  count: number, next: number): DataView {
  const view = viewOf(bytes)
  writeMagic(bytes, 0, NODE_MAGIC)
  writeU64(view, 12, block)
  writeU64(view, 20, transaction)
  view.setUint8(28, KIND_CODES[kind])
  view.setUint8(29, level)
  view.setUint16(30, count, true)
  view.setUint32(8, next, true)
  return view
}

/**
 * Header layout: magic (0..3), crc32c of 8..4095 (4..7), next device table block (8..11),
 * own block number (12..19), transaction (20..27), kind (28), level (29), entry count (30..31).
 * The crc covers the block number, so a block written to the wrong place fails it too.
 */
function checkHeader(bytes: Uint8Array, block: number, kind: ThinNodeKind): DataView {
  const view = viewOf(bytes)
  if (!hasMagic(bytes, 0, NODE_MAGIC)) throw thinCorrupt(block, 'magic', 'Expected "TNOD" (never written, or overwritten).')
  if (view.getUint32(4, true) !== crc32c(bytes, 8)) {
    throw thinCorrupt(block, 'checksum', 'The crc32c of bytes 8..4095 does not match (torn or damaged write).')
  }
  const own = readU64(view, 12, 'thin.node.block')
  if (own !== block) throw thinCorrupt(block, 'block number', `The block says it is block ${own} (misdirected write).`)
  const code = view.getUint8(28)
  if (code !== KIND_CODES[kind]) throw thinCorrupt(block, 'kind', `Expected a ${kind} block, found kind ${code}.`)
  return view
}

export function encodeThinNode(node: ThinNode, block: number, transaction: number): Uint8Array {
  const bytes = new Uint8Array(THIN_BLOCK_BYTES)
  let count = 0
  for (let i = 0; i < THIN_FANOUT; i++) if (node.hi[i] !== 0 || node.lo[i] !== 0) count++
  const view = encodeHeader(bytes, block, transaction, node.kind, node.level, count, 0)
  for (let i = 0; i < THIN_FANOUT; i++) {
    view.setUint32(HEADER_BYTES + i * 8, node.hi[i]!, true)
    view.setUint32(HEADER_BYTES + i * 8 + 4, node.lo[i]!, true)
  }
  return sealedNode(bytes)
}

export function decodeThinNode(bytes: Uint8Array, block: number, kind: 'interior' | 'leaf', level: number): ThinNode {
  const view = checkHeader(bytes, block, kind)
  const found = view.getUint8(29)
  if (found !== level) throw thinCorrupt(block, 'level', `Expected tree level ${level}, found ${found}.`)
  const hi = new Uint32Array(THIN_FANOUT)
  const lo = new Uint32Array(THIN_FANOUT)
  let count = 0
  for (let i = 0; i < THIN_FANOUT; i++) {
    hi[i] = view.getUint32(HEADER_BYTES + i * 8, true)
    lo[i] = view.getUint32(HEADER_BYTES + i * 8 + 4, true)
    if (hi[i] !== 0 || lo[i] !== 0) count++
  }
  if (count !== view.getUint16(30, true)) {
    throw thinCorrupt(block, 'entry count', `The header says ${view.getUint16(30, true)} entries, ${count} are set.`)
  }
  if (kind === 'interior' && hi.some((value) => value !== 0)) {
    throw thinCorrupt(block, 'interior entry', 'An interior entry has its high word set.')
  }
  return { kind, level, hi, lo }
}

export function emptyThinNode(kind: 'interior' | 'leaf', level: number): ThinNode {
  return { kind, level, hi: new Uint32Array(THIN_FANOUT), lo: new Uint32Array(THIN_FANOUT) }
}

/** Device entry layout (32 bytes): thin id, levels, virtual blocks, root, snapshot time, mapped. */
export function encodeThinDevices(devices: readonly ThinDevice[], block: number, transaction: number,
  next: number): Uint8Array {
  if (devices.length > THIN_DEVICES_PER_BLOCK) throw new RangeError('too many devices for one block')
  const bytes = new Uint8Array(THIN_BLOCK_BYTES)
  const view = encodeHeader(bytes, block, transaction, 'devices', 0, devices.length, next)
  devices.forEach((device, i) => {
    const at = HEADER_BYTES + i * DEVICE_BYTES
    view.setUint32(at, device.thinId, true)
    view.setUint8(at + 4, device.levels)
    writeU64(view, at + 8, device.virtualBlocks)
    view.setUint32(at + 16, device.root, true)
    view.setUint32(at + 20, device.snapshottedTime, true)
    writeU64(view, at + 24, device.mappedBlocks)
  })
  return sealedNode(bytes)
}

export function decodeThinDevices(bytes: Uint8Array, block: number): { devices: ThinDevice[], next: number } {
  const view = checkHeader(bytes, block, 'devices')
  const count = view.getUint16(30, true)
  if (count > THIN_DEVICES_PER_BLOCK) throw thinCorrupt(block, 'device count', `${count} devices cannot fit a block.`)
  const devices: ThinDevice[] = []
  for (let i = 0; i < count; i++) {
    const at = HEADER_BYTES + i * DEVICE_BYTES
    devices.push({ thinId: view.getUint32(at, true), levels: view.getUint8(at + 4),
      virtualBlocks: readU64(view, at + 8, 'thin.device.virtualBlocks'), root: view.getUint32(at + 16, true),
      snapshottedTime: view.getUint32(at + 20, true), mappedBlocks: readU64(view, at + 24, 'thin.device.mappedBlocks') })
  }
  return { devices, next: view.getUint32(8, true) }
}

/** Tree height that addresses `virtualBlocks` keys (at least one level). */
export function thinLevelsFor(virtualBlocks: number): number {
  let levels = 1
  let span = THIN_FANOUT
  while (span < virtualBlocks) {
    span *= THIN_FANOUT
    levels++
  }
  return levels
}
