/**
 * Copying one range of an LP from a source copy to target copies: the step shared by resync,
 * MWC recovery, passive resync-on-read and scrub repair. The caller holds the region lock.
 */
import type { LvDescriptor, VolumeGroup } from '../lvm/index.js'
import { LvmfsError } from '../errors/index.js'
import { assert } from '../util/assert.js'

export interface CopyOutcome {
  /** Targets whose write failed (the caller decides what to mark). */
  readonly failedTargets: number[]
  /** Bytes written, summed over targets that succeeded. */
  readonly copiedBytes: number
}

export function copyAddress(vg: VolumeGroup, lv: LvDescriptor, lp: number, copyIndex: number,
  offsetInLpBytes: number): { device: NonNullable<ReturnType<VolumeGroup['device']>>, offsetBytes: number } {
  const copy = lv.lps[lp]?.[copyIndex]
  assert(copy !== undefined, `copy ${copyIndex} of LP ${lp} of LV ${lv.name} does not exist`)
  const device = vg.device(copy.pvIndex)
  if (device === undefined) {
    throw new LvmfsError('LVM_PVSTATE', `PV ${copy.pvIndex} holding copy ${copyIndex} of LP ${lp} is not active`,
      { context: { lv: lv.name, lp, copyIndex, pvIndex: copy.pvIndex } })
  }
  return { device, offsetBytes: vg.ppOffsetBytes(copy.pvIndex, copy.pp) + offsetInLpBytes }
}

/** Reads [offset, offset+length) of `source` (throws on a source error) and writes it to every
 * target (collecting target failures). `buffer` is scratch space of at least `lengthBytes`. */
export async function copyRange(vg: VolumeGroup, lv: LvDescriptor, range: {
  lp: number, offsetInLpBytes: number, lengthBytes: number, source: number, targets: readonly number[],
}, buffer: Buffer): Promise<CopyOutcome> {
  assert(buffer.length >= range.lengthBytes, 'copy buffer too small')
  assert(!range.targets.includes(range.source), 'a copy is never its own target')
  const data = buffer.subarray(0, range.lengthBytes)
  const from = copyAddress(vg, lv, range.lp, range.source, range.offsetInLpBytes)
  await from.device.read(data, from.offsetBytes)
  const failedTargets: number[] = []
  let copiedBytes = 0
  await Promise.all(range.targets.map(async (target) => {
    try {
      const to = copyAddress(vg, lv, range.lp, target, range.offsetInLpBytes)
      await to.device.write(data, to.offsetBytes)
      copiedBytes += range.lengthBytes
    } catch {
      failedTargets.push(target)
    }
  }))
  return { failedTargets, copiedBytes }
}

/** Syncs the devices holding the given copies of an LP; returns the copies whose sync failed. */
export async function syncCopies(vg: VolumeGroup, lv: LvDescriptor, lp: number,
  copies: readonly number[]): Promise<number[]> {
  const failed: number[] = []
  const byPv = new Map<number, number[]>()
  for (const copyIndex of copies) {
    const copy = lv.lps[lp]?.[copyIndex]
    assert(copy !== undefined, `copy ${copyIndex} of LP ${lp} does not exist`)
    byPv.set(copy.pvIndex, [...(byPv.get(copy.pvIndex) ?? []), copyIndex])
  }
  await Promise.all([...byPv.entries()].map(async ([pvIndex, indexes]) => {
    try {
      const device = vg.device(pvIndex)
      if (device === undefined) throw new Error(`PV ${pvIndex} not active`)
      await device.sync()
    } catch {
      failed.push(...indexes)
    }
  }))
  return failed
}
