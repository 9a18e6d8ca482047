/**
 * The content of the crash-torture writes (scripts/torture-mirror.ts): every 4 KiB sector a write
 * covers holds a pattern computed from (run tag, LV sector index, write generation) alone, so the
 * checker recomputes what any write put anywhere without storing data. The pattern is one 64-byte
 * unit repeated: a sector torn between two writes, or written at another offset, equals neither.
 * Generation 0 is the never-written sector: all zeros (a fresh LV on sparse PV files).
 */
export const SECTOR_BYTES = 4096
const UNIT_BYTES = 64
const MAGIC = 0x394b5354 // "TSK9" little-endian

function unit(tag: number, sector: number, gen: number): Buffer {
  const out = Buffer.alloc(UNIT_BYTES)
  out.writeUInt32LE(MAGIC, 0)
  out.writeUInt32LE(tag >>> 0, 4)
  out.writeUInt32LE(sector >>> 0, 8)
  out.writeUInt32LE(gen >>> 0, 12)
  let state = (Math.imul(tag ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(sector + 1, 0xc2b2ae35) ^ gen) >>> 0
  for (let at = 16; at < UNIT_BYTES; at += 4) {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
    out.writeUInt32LE(state, at)
  }
  return out
}

/** Writes the content of generation `gen` for LV sectors `firstSector`.. into `target`. */
export function fillSectors(target: Buffer, tag: number, firstSector: number, gen: number): void {
  for (let at = 0; at + SECTOR_BYTES <= target.length; at += SECTOR_BYTES) {
    target.subarray(at, at + SECTOR_BYTES).fill(unit(tag, firstSector + at / SECTOR_BYTES, gen))
  }
}

const scratch = Buffer.alloc(SECTOR_BYTES)
const ZERO = Buffer.alloc(SECTOR_BYTES)

/** What a read-back sector holds: a generation, 'torn' (no single write's content), or 'foreign'. */
export type SectorContent = { gen: number } | { torn: true; header: string }

/** Identifies the write generation a 4 KiB sector holds (0 = never written = all zeros). */
export function sectorContent(sector: Buffer, tag: number, sectorIndex: number): SectorContent {
  if (sector.readUInt32LE(0) === 0 && sector.equals(ZERO)) return { gen: 0 }
  const header = `magic=${sector.readUInt32LE(0).toString(16)} tag=${sector.readUInt32LE(4)} ` +
    `sector=${sector.readUInt32LE(8)} gen=${sector.readUInt32LE(12)}`
  if (sector.readUInt32LE(0) !== MAGIC || sector.readUInt32LE(4) !== (tag >>> 0) ||
      sector.readUInt32LE(8) !== (sectorIndex >>> 0)) return { torn: true, header }
  const gen = sector.readUInt32LE(12)
  fillSectors(scratch, tag, sectorIndex, gen)
  return scratch.equals(sector.subarray(0, SECTOR_BYTES)) ? { gen } : { torn: true, header }
}

/**
 * Whether a sector holds the first `prefixBytes` of generation `prefixGen` and the rest of
 * `suffixGen`: what a write acknowledged short of a sector boundary leaves when the rest of it
 * never landed. The kernel splits a FUSE write where its pages split, and an unaligned user buffer
 * puts that split inside a sector; the daemon may answer the first part and die before the second.
 */
export function isSplice(sector: Buffer, tag: number, sectorIndex: number, prefixGen: number, prefixBytes: number,
  suffixGen: number): boolean {
  const expected = Buffer.alloc(SECTOR_BYTES)
  if (suffixGen !== 0) fillSectors(expected, tag, sectorIndex, suffixGen)
  const prefix = Buffer.alloc(SECTOR_BYTES)
  fillSectors(prefix, tag, sectorIndex, prefixGen)
  prefix.copy(expected, 0, 0, prefixBytes)
  return expected.equals(sector.subarray(0, SECTOR_BYTES))
}

/** A seeded generator of numbers in [0, 1) (mulberry32): a torture run replays from its seed. */
export function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let value = state
    value = Math.imul(value ^ (value >>> 15), value | 1)
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61)
    return ((value ^ (value >>> 14)) >>> 0) / 2 ** 32
  }
}
