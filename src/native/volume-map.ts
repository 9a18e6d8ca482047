/**
 * The plan the native data path executes for one volume file, decided by TypeScript.
 *
 * A volume is a sequence of equal-sized extents (logical partitions). Each extent has 1..3
 * physical copies, each a byte offset on a backing fd. Native code serves READ and WRITE on a
 * mapped volume without entering JavaScript:
 *  - WRITE goes to every copy whose `stale` is false or that is `writeOnly` (in parallel or in order, per
 *    `writeSchedule`); READ goes to one fresh copy chosen by `readPolicy` and fails over to the
 *    next fresh copy on error. A stale copy is never read.
 *  - Before a WRITE touches a gate region (`gateBytes`-sized, e.g. an MWC logical track group)
 *    whose bit is not open, the request is handed to TypeScript (`gate` event); TypeScript does
 *    what the policy needs (record the region in the MWC log, wait for a resync region lock),
 *    opens the bit and resumes the request. gateBytes = 0 means no gating.
 *  - A failed backing write or read on one copy is reported to TypeScript (`copy-error` event)
 *    before the reply goes out; TypeScript decides (mark stale, fail the request) and resumes.
 *
 * Invariants: extents cover [0, sizeBytes) exactly; every extent has 1..3 copies; offsets and
 * sizes are byte counts below 2^53.
 */
export type ReadPolicy = 'primary' | 'first-fresh' | 'round-robin'
export type WriteSchedule = 'parallel' | 'sequential'

export interface CopyTarget {
  readonly fd: number
  /** Byte offset on the backing fd where this extent's copy starts. */
  readonly offsetBytes: number
  readonly stale: boolean
  /**
   * A stale copy being resynchronised: native writes go to it as to a fresh copy (so the part
   * already copied stays current), reads never do, and it does not count towards "some copy
   * holds the write".
   */
  readonly writeOnly?: boolean
}

export interface VolumeExtent {
  readonly copies: readonly CopyTarget[]
}

export interface VolumeMap {
  readonly sizeBytes: number
  readonly extentBytes: number
  readonly extents: readonly VolumeExtent[]
  readonly readPolicy: ReadPolicy
  readonly writeSchedule: WriteSchedule
  /** Size of a write-gate region in bytes (0: writes are never gated). */
  readonly gateBytes: number
  readonly readOnly: boolean
  /**
   * Write-intent chunk size (0 or absent: none). Native code marks every chunk a WRITE or
   * FALLOCATE touched where some copy did not take it (stale, absent, failed), before the
   * request completes; TypeScript takes the marks to keep the bitmap of what a resync must copy.
   */
  readonly dirtyChunkBytes?: number
  /**
   * A thin LV: the extents and copies above are its pool LV's, and native code translates the
   * LV's blocks through a table TypeScript fills (thinSet) on thin misses (native/thin-table.h).
   */
  readonly thin?: ThinVolumeSpec
}

export interface ThinVolumeSpec {
  readonly virtualBytes: number
  readonly chunkBytes: number
  /** Pool LV byte offset of data block 0. */
  readonly dataStartBytes: number
  /** Writes to writable blocks run natively (an unmirrored pool); otherwise TypeScript serves them. */
  readonly nativeWrites: boolean
}

/** Native thin table entries (native/thin-table.h). */
export const THIN_ENTRY_UNKNOWN = 0
export const THIN_ENTRY_UNMAPPED = 1
export function thinEntry(dataBlock: number, writable: boolean): number {
  return (dataBlock + 1) * 4 + (writable ? 3 : 2)
}

export const MAX_COPIES = 3
