/**
 * Reading and writing a replica's superblock (format/replica-superblock.ts) in LP 0 of the
 * replica LV, on every fresh copy of that LP. A write resolves only after every copy holding it
 * was synced; the slot alternates with seq so a torn write leaves the previous record readable.
 */
import { LvmfsError } from '../errors/index.js'
import type { LvDescriptor, VolumeGroup } from '../lvm/index.js'
import {
  decodeSuperblock, encodeSuperblock, newestSuperblock, superblockSlotBytes, type ReplicaSuperblock,
} from '../format/index.js'
import { assert } from '../util/index.js'

function freshMetaCopies(vg: VolumeGroup, lv: LvDescriptor): Array<{ pvIndex: number, offsetBytes: number }> {
  const copies = lv.lps[0]
  assert(copies !== undefined, `replica ${lv.name} has no metadata partition`)
  return copies.filter((copy) => vg.pvState(copy.pvIndex) === 'active' && !vg.isStale(copy.pvIndex, copy.pp))
    .map((copy) => ({ pvIndex: copy.pvIndex, offsetBytes: vg.ppOffsetBytes(copy.pvIndex, copy.pp) }))
}

export async function readSuperblock(vg: VolumeGroup, lv: LvDescriptor): Promise<ReplicaSuperblock> {
  const slotBytes = superblockSlotBytes(vg.ppSizeBytes)
  let lastError: unknown
  for (const copy of freshMetaCopies(vg, lv)) {
    try {
      const slots = [Buffer.alloc(slotBytes), Buffer.alloc(slotBytes)]
      const device = vg.device(copy.pvIndex)!
      await device.read(slots[0]!, copy.offsetBytes)
      await device.read(slots[1]!, copy.offsetBytes + slotBytes)
      const newest = newestSuperblock(slots)
      if (newest !== undefined) return newest
      // Neither slot valid on this copy: report the first slot's decode error.
      decodeSuperblock(slots[0]!)
    } catch (error) {
      lastError = error
    }
  }
  throw new LvmfsError('ENGINE_CORRUPT', `no valid superblock in replica "${lv.name}"`, {
    cause: lastError, detail: 'Both superblock slots of every fresh copy of LP 0 failed their checks.',
    context: { lv: lv.name } })
}

export async function writeSuperblock(vg: VolumeGroup, lv: LvDescriptor, sb: ReplicaSuperblock): Promise<void> {
  const bytes = encodeSuperblock(sb)
  const slotBytes = superblockSlotBytes(vg.ppSizeBytes)
  assert(bytes.length <= slotBytes, 'superblock record larger than its slot')
  const copies = freshMetaCopies(vg, lv)
  if (copies.length === 0) {
    throw new LvmfsError('LVM_PVSTATE', `no active copy of the metadata partition of "${lv.name}"`, { context: { lv: lv.name } })
  }
  await Promise.all(copies.map(async (copy) => {
    const device = vg.device(copy.pvIndex)!
    await device.write(bytes, copy.offsetBytes + (sb.seq % 2) * slotBytes)
    await device.sync()
  }))
}
