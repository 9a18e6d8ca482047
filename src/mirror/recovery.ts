/**
 * Mirror recovery at vary-on (domain.md §6.6 step 7): replay the MWC log, then classify LVs
 * whose passive/off dirty flag survived a crash.
 *
 *  - Active MWC: every LTG listed in the newest record of any PV is copied from one good copy
 *    (the first fresh copy in schedule order: the primary of a sequential LV) to every other
 *    fresh copy and to write-through targets of interrupted resyncs. The outcome is
 *    consistency, not necessarily the latest write (as AIX promises); the source copy of each
 *    LTG is recorded in the report and the log.
 *  - Passive MWC, dirty: a forced resync of the whole LV is due; until a region is synced, a
 *    read of it syncs it first (resync on read).
 *  - MWC off, dirty: reported as needing a forced resync (`lvmfs resync VG/LV --force`).
 *  - Resync cursors are adopted so interrupted resyncs resume.
 */
import type { LvDescriptor } from '../lvm/index.js'
import { assert } from '../util/index.js'
import { freshCopies, sourceCopy } from './layout.js'
import type { MirrorVg } from './mirror-vg.js'
import { copyRange, syncCopies } from './region-copy.js'
import type { Resyncer } from './resync.js'

export interface LtgRecovery {
  readonly lv: string
  readonly ltgIndex: number
  /** The copy every other copy was made equal to; undefined when no good copy was left. */
  readonly source: number | undefined
  readonly targets: readonly number[]
}

export interface MirrorRecoveryReport {
  readonly ltgs: readonly LtgRecovery[]
  readonly recoveredBytes: number
  /** Passive-MWC LVs that crashed: forced background resync with resync on read. */
  readonly forcedResync: readonly string[]
  /** MWC-off LVs that crashed: an administrator must run a forced resync. */
  readonly needsForcedResync: readonly string[]
  readonly resumedCursors: number
  /** PVs whose activity log held bytes but no valid record, and the active-MWC LVs with a copy
   * there: those LVs get a forced resync (their active extents are unknown). */
  readonly unreadableLogs: ReadonlyArray<{ readonly pvIndex: number, readonly lvs: readonly string[] }>
}

async function recoverLtg(mirror: MirrorVg, lv: LvDescriptor, ltgIndex: number, buffer: Buffer):
  Promise<{ recovery: LtgRecovery, bytes: number } | undefined> {
  const lp = Math.floor(ltgIndex / mirror.regionsPerLp())
  if (lp >= lv.lps.length) return undefined
  const offsetInLpBytes = (ltgIndex % mirror.regionsPerLp()) * mirror.ltgBytes
  // A source that cannot be read is marked stale and the next fresh copy is tried.
  for (let attempt = 0; attempt < lv.lps[lp]!.length; attempt++) {
    const source = sourceCopy(mirror.vg, lv, lp)
    if (source === undefined) break
    const through = [...mirror.writeThroughOf(lv.lvId, lp)]
    const targets = [...new Set([...freshCopies(mirror.vg, lv, lp), ...through])].filter((index) => index !== source)
    let outcome: { failedTargets: number[], copiedBytes: number }
    try {
      outcome = await copyRange(mirror.vg, lv, { lp, offsetInLpBytes, lengthBytes: mirror.ltgBytes, source, targets },
        buffer)
    } catch (error) {
      mirror.logger.warn({ lv: lv.name, ltgIndex, source, error: String(error) }, 'MWC recovery: source unreadable')
      if (await mirror.onCopyError(lv, lp, source, 5, false) === 'fail') break
      continue
    }
    for (const target of outcome.failedTargets) await mirror.onCopyError(lv, lp, target, 5, true)
    const good = targets.filter((index) => !outcome.failedTargets.includes(index))
    const failedSync = await syncCopies(mirror.vg, lv, lp, good)
    for (const target of failedSync) await mirror.onCopyError(lv, lp, target, 5, true)
    mirror.logger.info({ lv: lv.name, ltgIndex, source, targets: good }, 'MWC recovery: LTG made consistent')
    return { recovery: { lv: lv.name, ltgIndex, source, targets: good }, bytes: outcome.copiedBytes }
  }
  mirror.logger.warn({ lv: lv.name, ltgIndex }, 'MWC recovery: no readable good copy')
  return { recovery: { lv: lv.name, ltgIndex, source: undefined, targets: [] }, bytes: 0 }
}

export async function recoverMirrors(mirror: MirrorVg, resyncer: Resyncer): Promise<MirrorRecoveryReport> {
  mirror.assertOnline()
  const vg = mirror.vg
  const input = await mirror.mwc.readRecovery()
  const unreadableLogs = input.unreadablePvs.map((pvIndex) => ({ pvIndex,
    lvs: vg.descriptor.lvs.filter((lv) => lv.copies > 1 && lv.lps.some((copies) =>
      copies.some((copy) => copy.pvIndex === pvIndex))).map((lv) => lv.name) }))
  // Bits of LVs that crashed without the log, or whose log is unreadable somewhere, may be
  // behind what was written: none of their partitions trusts a bitmap.
  const untrusted = new Set<number>(vg.status.dirtyLvs)
  for (const { lvs } of unreadableLogs) for (const name of lvs) untrusted.add(vg.lvByName(name)!.lvId)
  mirror.bitmaps.restore(input.records, mirror.ltgBytes, untrusted)
  for (const { pvIndex, lvs } of unreadableLogs) {
    mirror.logger.warn({ pvIndex, lvs }, 'activity log unreadable on this PV: its mirrored LVs get a full forced resync')
  }
  for (const cursor of input.cursors) {
    resyncer.adoptCursor(cursor)
    mirror.mwc.restoreCursor(cursor)
  }
  const ltgs: LtgRecovery[] = []
  let recoveredBytes = 0
  const buffer = Buffer.alloc(mirror.ltgBytes)
  for (const entry of input.entries) {
    const lv = vg.lvById(entry.lvId)
    if (lv === undefined || lv.copies < 2 || lv.mwc !== 'active') continue
    const done = await recoverLtg(mirror, lv, entry.ltgIndex, buffer)
    if (done === undefined) continue
    ltgs.push(done.recovery)
    recoveredBytes += done.bytes
  }
  await mirror.mwc.writeClean()
  const forcedResync: string[] = []
  const needsForcedResync: string[] = []
  for (const lvId of vg.status.dirtyLvs) {
    const lv = vg.lvById(lvId)
    if (lv === undefined) continue
    assert(lv.lvId === lvId, 'lvById returned another LV')
    mirror.markForcedPending(lv)
    if (lv.mwc === 'off') needsForcedResync.push(lv.name)
    else forcedResync.push(lv.name)
  }
  for (const { lvs } of unreadableLogs) {
    for (const name of lvs) {
      const lv = vg.lvByName(name)!
      if (lv.mwc !== 'active' || forcedResync.includes(name)) continue
      mirror.markForcedPending(lv)
      forcedResync.push(name)
    }
  }
  return { ltgs, recoveredBytes, forcedResync, needsForcedResync, resumedCursors: input.cursors.length, unreadableLogs }
}
