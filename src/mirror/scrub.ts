/**
 * Scrub: compare the fresh copies of every LP region by region and report the regions whose
 * copies differ; with `repair`, make them equal.
 *
 * Repair rule:
 *  - 3 fresh copies and two of them agree: the majority content is written to the third;
 *  - otherwise (2 copies, or 3 that all differ): the copy resync and MWC recovery would use
 *    as source wins, i.e. the first fresh copy in schedule order (the primary when it is
 *    fresh). Like MWC recovery this restores consistency, not necessarily the newest data.
 * Only copies whose content differs from the winner are written, so repairing a consistent LV
 * writes 0 bytes. Each region is compared under its exclusive lock, so concurrent application
 * writes never show up as false mismatches.
 */
import type { LvDescriptor } from '../lvm/index.js'
import { LvmfsError } from '../errors/index.js'
import { freshCopies, lvSizeBytes } from './layout.js'
import type { MirrorVg } from './mirror-vg.js'
import { copyAddress, copyRange, syncCopies } from './region-copy.js'

export interface ScrubMismatch {
  readonly lp: number
  readonly offsetInLpBytes: number
  readonly lvOffsetBytes: number
  readonly lengthBytes: number
  /** Fresh copies grouped by equal content, largest group first. */
  readonly groups: readonly (readonly number[])[]
  /** With repair: the copy whose content won, and the copies rewritten from it. */
  readonly repairedFrom?: number
  readonly repairedCopies?: readonly number[]
}

export interface ScrubReport {
  readonly lv: string
  readonly regionsChecked: number
  readonly bytesChecked: number
  readonly mismatches: readonly ScrubMismatch[]
  readonly repairedBytes: number
  /** LPs skipped because fewer than two fresh copies exist (nothing to compare). */
  readonly skippedLps: readonly number[]
}

export interface ScrubOptions {
  readonly repair?: boolean
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void
  readonly signal?: AbortSignal
}

function groupCopies(copies: readonly number[], buffers: readonly Buffer[]): number[][] {
  const groups: number[][] = []
  copies.forEach((copyIndex, position) => {
    const group = groups.find((members) => buffers[copies.indexOf(members[0]!)]!.equals(buffers[position]!))
    if (group === undefined) groups.push([copyIndex])
    else group.push(copyIndex)
  })
  return groups.sort((a, b) => b.length - a.length || a[0]! - b[0]!)
}

/** The winning group under the repair rule (see the file comment). */
export function repairWinner(groups: readonly (readonly number[])[], preferred: number): readonly number[] {
  const largest = groups[0]!
  if (largest.length >= 2 && groups.every((group) => group === largest || group.length < largest.length)) return largest
  return groups.find((group) => group.includes(preferred))!
}

async function scrubRegion(mirror: MirrorVg, lv: LvDescriptor, lp: number, offsetInLpBytes: number,
  copies: readonly number[], repair: boolean): Promise<ScrubMismatch | undefined> {
  const lengthBytes = mirror.ltgBytes
  const buffers = copies.map(() => Buffer.alloc(lengthBytes))
  await Promise.all(copies.map(async (copyIndex, position) => {
    const at = copyAddress(mirror.vg, lv, lp, copyIndex, offsetInLpBytes)
    await at.device.read(buffers[position]!, at.offsetBytes)
  }))
  const groups = groupCopies(copies, buffers)
  if (groups.length === 1) return undefined
  const lvOffsetBytes = lp * mirror.vg.ppSizeBytes + offsetInLpBytes
  const base = { lp, offsetInLpBytes, lvOffsetBytes, lengthBytes, groups }
  if (!repair) return base
  const winner = repairWinner(groups, copies[0]!)
  const source = winner[0]!
  const losers = copies.filter((copyIndex) => !winner.includes(copyIndex))
  // The region is still locked: the winner's bytes are those just compared. They move from the
  // winner copy to the losers natively where the devices allow (copyRange), else from `buffer`.
  const outcome = await copyRange(mirror.vg, lv, { lp, offsetInLpBytes, lengthBytes, source, targets: losers },
    buffers[copies.indexOf(source)]!)
  if (outcome.failedTargets.length > 0) {
    const copyIndex = outcome.failedTargets[0]!
    const at = copyAddress(mirror.vg, lv, lp, copyIndex, offsetInLpBytes)
    throw new LvmfsError('ENGINE_IO', `scrub repair: writing copy ${copyIndex} of LP ${lp} of LV "${lv.name}" failed`,
      { context: { path: at.device.path, op: 'write', offsetBytes: at.offsetBytes, lengthBytes, errno: 'EIO' } })
  }
  mirror.logger.warn({ lv: lv.name, lp, offsetInLpBytes, source, repaired: losers }, 'scrub repaired a region')
  return { ...base, repairedFrom: source, repairedCopies: losers }
}

export async function scrubLv(mirror: MirrorVg, lvName: string, options: ScrubOptions = {}): Promise<ScrubReport> {
  mirror.assertOnline()
  const lv = mirror.lv(lvName)
  const repair = options.repair ?? false
  const mismatches: ScrubMismatch[] = []
  const skippedLps: number[] = []
  const totalBytes = lvSizeBytes(lv, mirror.vg.ppSizeBytes)
  let regionsChecked = 0
  let repairedBytes = 0
  for (let lp = 0; lp < lv.lps.length; lp++) {
    const copies = freshCopies(mirror.vg, lv, lp)
    if (copies.length < 2) {
      if (lv.copies > 1) skippedLps.push(lp)
      continue
    }
    const written = new Set<number>()
    for (let offset = 0; offset < mirror.vg.ppSizeBytes; offset += mirror.ltgBytes) {
      options.signal?.throwIfAborted()
      const region = lp * mirror.regionsPerLp() + offset / mirror.ltgBytes
      const release = await mirror.lockRegionExclusive(lv.lvId, region)
      try {
        const mismatch = await scrubRegion(mirror, lv, lp, offset, copies, repair)
        regionsChecked += 1
        if (mismatch !== undefined) {
          mismatches.push(mismatch)
          for (const copyIndex of mismatch.repairedCopies ?? []) written.add(copyIndex)
          repairedBytes += (mismatch.repairedCopies?.length ?? 0) * mismatch.lengthBytes
        }
      } finally {
        release()
      }
      options.onProgress?.(lp * mirror.vg.ppSizeBytes + offset + mirror.ltgBytes, totalBytes)
    }
    if (written.size > 0) await syncCopies(mirror.vg, lv, lp, [...written])
  }
  return { lv: lv.name, regionsChecked, bytesChecked: regionsChecked * mirror.ltgBytes, mismatches,
    repairedBytes, skippedLps }
}
