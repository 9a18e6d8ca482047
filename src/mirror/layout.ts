/**
 * Pure mapping helpers: LV byte ranges onto logical partitions, copy order per scheduling
 * policy, and which copies of an LP may be read or must be written.
 *
 * Invariants:
 *  - pieces returned by `splitRange` are non-empty, ordered, never cross an LP boundary and
 *    cover the requested range exactly;
 *  - a copy is readable only when its PV is active and its PP is not stale (never read stale).
 */
import type { LvDescriptor, PpRef, Schedule } from '../lvm/index.js'
import type { ReadPolicy, WriteSchedule } from '../native/index.js'
import { assert } from '../util/index.js'

export interface Piece {
  readonly lp: number
  readonly offsetInLpBytes: number
  readonly lengthBytes: number
  /** Offset of this piece inside the caller's buffer. */
  readonly bufferOffsetBytes: number
}

export function lvSizeBytes(lv: LvDescriptor, ppSizeBytes: number): number {
  return lv.lps.length * ppSizeBytes
}

export function splitRange(offsetBytes: number, lengthBytes: number, ppSizeBytes: number): Piece[] {
  assert(Number.isSafeInteger(offsetBytes) && offsetBytes >= 0, 'offset must be a byte count')
  assert(Number.isSafeInteger(lengthBytes) && lengthBytes >= 0, 'length must be a byte count')
  const pieces: Piece[] = []
  let done = 0
  while (done < lengthBytes) {
    const at = offsetBytes + done
    const lp = Math.floor(at / ppSizeBytes)
    const offsetInLpBytes = at - lp * ppSizeBytes
    const length = Math.min(lengthBytes - done, ppSizeBytes - offsetInLpBytes)
    pieces.push({ lp, offsetInLpBytes, lengthBytes: length, bufferOffsetBytes: done })
    done += length
  }
  return pieces
}

/** What the native data path and the in-process engine do for each `mklv -d` schedule. */
export function readPolicyOf(schedule: Schedule): ReadPolicy {
  switch (schedule) {
    case 's': return 'primary'
    case 'ps': return 'first-fresh'
    case 'pr': return 'round-robin'
    case 'p': return 'first-fresh'
  }
}

export function writeScheduleOf(schedule: Schedule): WriteSchedule {
  return schedule === 's' ? 'sequential' : 'parallel'
}

/**
 * Copy indexes in the order reads try them. 'primary' and 'first-fresh' both start at copy 0
 * (the primary) and fail over in copy order; 'round-robin' starts at `turn % copies`.
 */
export function readOrder(policy: ReadPolicy, copyCount: number, turn: number): number[] {
  assert(copyCount >= 1 && copyCount <= 3, 'an LP has 1..3 copies')
  const start = policy === 'round-robin' ? turn % copyCount : 0
  const order: number[] = []
  for (let index = 0; index < copyCount; index++) order.push((start + index) % copyCount)
  return order
}

export interface CopyStateSource {
  pvState(pvIndex: number): 'active' | 'missing' | 'removed'
  isStale(pvIndex: number, pp: number): boolean
}

export function isCopyFresh(vg: CopyStateSource, copy: PpRef): boolean {
  return vg.pvState(copy.pvIndex) === 'active' && !vg.isStale(copy.pvIndex, copy.pp)
}

/** Copy indexes of `lp` that hold good data (PV active, PP not stale). */
export function freshCopies(vg: CopyStateSource, lv: LvDescriptor, lp: number): number[] {
  const copies = lv.lps[lp]
  assert(copies !== undefined, `LP ${lp} out of range for LV ${lv.name}`)
  const fresh: number[] = []
  copies.forEach((copy, index) => {
    if (isCopyFresh(vg, copy)) fresh.push(index)
  })
  return fresh
}

/** The copy a resync or MWC recovery copies from: the first fresh copy in schedule order
 * (the primary for sequential LVs), or undefined when no good copy remains. */
export function sourceCopy(vg: CopyStateSource, lv: LvDescriptor, lp: number): number | undefined {
  return freshCopies(vg, lv, lp)[0]
}

export function copyMask(indexes: readonly number[]): number {
  let mask = 0
  for (const index of indexes) mask |= 1 << index
  return mask
}

export function maskIndexes(mask: number): number[] {
  const indexes: number[] = []
  for (let index = 0; index < 3; index++) if ((mask & (1 << index)) !== 0) indexes.push(index)
  return indexes
}
