/**
 * Online changes of where an LV's copies live: lvconvert (add or drop copies) and pvmove (move
 * copies off a PV, one LP at a time). All of them hold the affected regions exclusive, which
 * also closes the daemon's native gates there and drains writes admitted before, so no write
 * lands on a PP after it stopped belonging to the LV, and the daemon's map is rebuilt before
 * the regions are released.
 *
 * pvmove is checkpointed by the descriptor itself: each LP's move is one commit made after its
 * data is on the new PP and flushed. A crash before the commit leaves the new PP unreferenced
 * (free again), after it the move is done; running pvmove again resumes with the LPs still on
 * the source PV.
 */
import { LvmfsError } from '../errors/index.js'
import { moveTarget, type LvDescriptor, type PpRef } from '../lvm/index.js'
import { freshCopies } from './layout.js'
import type { MirrorVg } from './mirror-vg.js'
import { copyRange } from './region-copy.js'

export interface MoveProgress {
  readonly lv: string
  readonly lp: number
  readonly movedLps: number
  readonly totalLps: number
  readonly movedBytes: number
}

export interface MoveOptions {
  /** PVs the partitions may go to (default: every other active PV). */
  readonly to?: readonly number[]
  /** Stops after the LP being moved (pvmove --abort). */
  readonly signal?: AbortSignal
  readonly onProgress?: (progress: MoveProgress) => void
  /** Only this LV's partitions (pvmove -n). */
  readonly lv?: string
}

export interface MoveReport {
  readonly movedLps: number
  readonly movedBytes: number
  readonly remainingLps: number
  readonly aborted: boolean
}

function refuseWhileResyncing(mirror: MirrorVg, lv: LvDescriptor, what: string): void {
  const busy = lv.lps.some((_, lp) => mirror.resyncing.has(`${lv.lvId}:${lp}`))
  if (busy) {
    throw new LvmfsError('LVM_INRESYNC', `"${lv.name}" is being resynced; ${what} waits for it`, {
      hint: 'Let the resync finish (lvmfs status), then retry.', context: { lv: lv.name } })
  }
}

/** lvconvert --copies N with N below the current count. */
export async function dropLvCopies(mirror: MirrorVg, lvName: string, copies: number,
  dropFrom?: readonly number[]): Promise<LvDescriptor> {
  const lv = mirror.lv(lvName)
  refuseWhileResyncing(mirror, lv, 'dropping a copy')
  const release = await mirror.lockRegionsExclusive(lv.lvId, 0, lv.lps.length * mirror.regionsPerLp() - 1)
  try {
    const next = await mirror.vg.lvDropCopies(lvName, copies, dropFrom)
    mirror.announceRemap(lv.lvId)
    return next
  } finally {
    release()
  }
}

/** lvconvert --copies N with N above the current count: the new copies start stale; the caller
 * resyncs them (in the background on a mounted VG). */
export async function addLvCopies(mirror: MirrorVg, lvName: string, copies: number,
  onPvs?: readonly number[]): Promise<LvDescriptor> {
  const lv = mirror.lv(lvName)
  const next = await mirror.vg.lvAddCopies(lvName, copies, onPvs)
  mirror.announceRemap(lv.lvId)
  return next
}

/** The (LV, LP, copy) places on PV `from`, in LV then LP order. */
function placesOn(mirror: MirrorVg, from: number, only?: string): Array<{ lv: string; lp: number; copy: number }> {
  return mirror.vg.descriptor.lvs.filter((lv) => only === undefined || lv.name === only).flatMap((lv) =>
    lv.lps.flatMap((refs, lp) => refs.flatMap((ref, copy) =>
      (ref.pvIndex === from ? [{ lv: lv.name, lp, copy }] : []))))
}

/** pvmove: moves every partition on PV `from` to other PVs, LP by LP. */
export async function movePvOff(mirror: MirrorVg, from: number, options: MoveOptions = {}): Promise<MoveReport> {
  const vg = mirror.vg
  const active = vg.descriptor.pvs.flatMap((_, pvIndex) => (vg.pvState(pvIndex) === 'active' ? [pvIndex] : []))
  // Partitions go only to ACTIVE PVs: a named destination that is missing or removed takes none.
  const targets = (options.to ?? active).filter((pvIndex) => pvIndex !== from && active.includes(pvIndex))
  if (options.lv !== undefined) mirror.lv(options.lv)
  const total = placesOn(mirror, from, options.lv).length
  let movedLps = 0
  let movedBytes = 0
  const aborted = (): boolean => options.signal?.aborted === true
  const stillOn = (place: { lv: string; lp: number; copy: number }): boolean =>
    vg.lvByName(place.lv)?.lps[place.lp]?.[place.copy]?.pvIndex === from
  // One scan per pass, not per partition (a TiB LV has a quarter million); a pass ends with a
  // fresh scan, which also picks up partitions another command put on the PV meanwhile.
  for (let places = placesOn(mirror, from, options.lv); places.length > 0 && !aborted();
    places = placesOn(mirror, from, options.lv)) {
    for (const place of places) {
      if (aborted()) break
      if (!stillOn(place)) continue
      movedBytes += await moveOne(mirror, place, targets)
      movedLps++
      options.onProgress?.({ lv: place.lv, lp: place.lp, movedLps, totalLps: total, movedBytes })
    }
  }
  return { movedLps, movedBytes, remainingLps: placesOn(mirror, from, options.lv).length, aborted: aborted() }
}

/** Moves one copy of one LP: regions exclusive, data from a fresh copy to the new PP, flush,
 * commit, remap, release. Returns the bytes copied. */
async function moveOne(mirror: MirrorVg, place: { lv: string; lp: number; copy: number },
  targets: readonly number[]): Promise<number> {
  const vg = mirror.vg
  const first = place.lp * mirror.regionsPerLp()
  const lvId = mirror.lv(place.lv).lvId
  const release = await mirror.lockRegionsExclusive(lvId, first, first + mirror.regionsPerLp() - 1)
  try {
    const lv = mirror.lv(place.lv)
    if (mirror.resyncing.has(`${lv.lvId}:${place.lp}`)) refuseWhileResyncing(mirror, lv, 'moving its partition')
    // Any fresh copy holds the LP's data (the one being moved may be stale or failing).
    const fresh = freshCopies(vg, lv, place.lp)
    const source = fresh.includes(place.copy) ? place.copy : fresh[0]
    if (source === undefined) {
      throw new LvmfsError('LVM_INVLPRED', `LP ${place.lp} of "${lv.name}" has no fresh copy to move from`, {
        hint: 'Bring its PVs back or resync it first.', context: { lv: lv.name, lp: place.lp } })
    }
    const to = moveTarget(vg.descriptor, lv, place.lp, place.copy, targets)
    const staged = withExtraCopy(lv, place.lp, to)
    const outcome = await copyRange(vg, staged, { lp: place.lp, offsetInLpBytes: 0, lengthBytes: vg.ppSizeBytes,
      source, targets: [lv.lps[place.lp]!.length] })
    if (outcome.failedTargets.length > 0) {
      throw new LvmfsError('ENGINE_IO', `writing the new partition of LP ${place.lp} of "${lv.name}" failed`, {
        context: { lv: lv.name, lp: place.lp, pvIndex: to.pvIndex, pp: to.pp } })
    }
    await vg.device(to.pvIndex)!.sync()
    await vg.lvMoveCopy(lv.name, place.lp, place.copy, to)
    mirror.announceRemap(lv.lvId)
    return vg.ppSizeBytes
  } finally {
    release()
  }
}

/** The LV as if LP `lp` had one more copy at `to`: copyRange addresses copies by index. */
function withExtraCopy(lv: LvDescriptor, lp: number, to: PpRef): LvDescriptor {
  return { ...lv, lps: lv.lps.map((refs, i) => (i === lp ? [...refs, to] : refs)) }
}
