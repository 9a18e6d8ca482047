/**
 * Resync (lvm_resynclp, lvm_resynclv, lvm_resyncpv, syncvg), online and resumable.
 *
 * resynclp(lv, lp, force), as the reference:
 *  - the VG must be online (LVM_OFFLINE);
 *  - a good copy is chosen: the first copy in schedule order that is fresh (not stale, PV
 *    active); none → LVM_NOTSYNCED (never copy from a stale copy);
 *  - force false: it is propagated only to the stale copies; force true: to every other copy
 *    on an active PV (copies on absent PVs are marked stale so they resync when they return).
 *
 * What is copied: a list of byte ranges of the LP, `mirror.resyncRanges` (the write-intent
 * bitmap's chunks; undefined = the whole LP), the whole LP when forced. The ranges are cut at
 * region (LTG) boundaries; the pieces of one region are copied together under that region's
 * exclusive lock (with the native gate closed and drained), each first narrowed by the
 * `narrowRanges` hook (checksum resync) and then copied by `copyRange` (native, off the JS
 * thread, where the devices allow). Several regions are in flight at once, each under its own
 * lock, within an LP and across LPs (several LPs at once), up to the rate controller's fill
 * target (resync-rate.ts), which also throttles resync towards its minimum rate while
 * application I/O runs.
 *
 * Online safety: no application write to a region runs between reading the source and writing
 * the targets. Stale targets are registered as write-through targets for the whole run: writes
 * to regions already copied reach them too, so a copied region never goes back to older data.
 *
 * Durability and resume: stale bits are cleared only after the targets are synced. Every
 * `checkpointEveryRegions` regions the targets are synced and a cursor (LP, targets, offset) is
 * written to the MWC log of every active PV. The cursor's offset is the start of the first
 * region not yet finished: everything of the ranges before it is copied, even with regions
 * finishing out of order. After a crash, vary-on reloads the cursors, keeps their targets
 * write-through, and the next resync of that LP starts at the cursor. So a resumed run re-copies
 * at most the remaining bytes plus one checkpoint interval (plus the regions in flight).
 */
import type { LvDescriptor } from '../lvm/index.js'
import type { ResyncCursor } from '../format/index.js'
import { LvmfsError, errnoOf } from '../errors/index.js'
import { assert } from '../util/index.js'
import { copyMask, isCopyFresh, sourceCopy } from './layout.js'
import type { LpRange, MirrorVg } from './mirror-vg.js'
import { copyRange, syncCopies, type CopyMethod } from './region-copy.js'
import { ResyncRateController, type RateClock, type ResyncRateOptions } from './resync-rate.js'

/** Default checkpoint interval: bytes a resumed resync may copy again after a crash. Each
 * checkpoint costs a sync of the targets, a VGSA commit and an MWC record. */
export const DEFAULT_CHECKPOINT_BYTES = 256 * 1024 * 1024

/** Default fill target, in regions: copies in flight at once. */
export const DEFAULT_FILL_TARGET_REGIONS = 2

/** LPs copied at once at most (each holds its write-through registration and settle). */
const MAX_LP_LANES = 8

export interface ResyncProgress {
  /** LP bytes finished: every range of the LPs visited counts once, whatever the number of
   * targets and whatever narrowRanges left of it. */
  readonly doneBytes: number
  readonly totalBytes: number
  /** Bytes written to target copies (bytes × targets): what T7 counts. */
  readonly copiedBytes: number
  readonly lv: string | undefined
  readonly lp: number | undefined
  /** doneBytes per second over the controller's plan-ahead window (undefined at first). */
  readonly rateBytesPerSecond?: number | undefined
  /** (totalBytes − doneBytes) / rate; undefined without a rate. */
  readonly etaSeconds?: number | undefined
}

export interface ResyncOptions extends Omit<ResyncRateOptions, 'fillTargetBytes'> {
  /** The maximum rate under its old name (`maxRateBytesPerSecond` wins when both are given). */
  readonly rateBytesPerSecond?: number
  /** Copy bytes in flight at most; default DEFAULT_FILL_TARGET_REGIONS regions. */
  readonly fillTargetBytes?: number
  /** Regions (LTGs) copied between two durable checkpoints; default 256 MiB worth. */
  readonly checkpointEveryRegions?: number
  readonly onProgress?: (progress: ResyncProgress) => void
  readonly signal?: AbortSignal
  /** Narrows a range about to be copied to the sub-ranges that must be written (checksum resync:
   * `ChecksumNarrower`, checksum-diff.ts); called under the region's exclusive lock before the
   * source is read, with the range's region-sized pieces. Default: the range itself. Progress
   * counts the whole range as done and only what was written as copied. */
  readonly narrowRanges?: (lv: LvDescriptor, lp: number, source: number, targets: readonly number[],
    range: LpRange) => Promise<readonly LpRange[]>
  /** How bytes move (region-copy.ts): default 'auto' (native where the devices allow). */
  readonly copyMethod?: CopyMethod
  /** Native copies start the writeback of what they wrote at once, so checkpoint and finish
   * syncs find little left to write; default true. */
  readonly copyWriteback?: boolean
  /** The rate controller's clock (tests). */
  readonly clock?: RateClock
}

export interface LpResyncResult {
  readonly lv: string
  readonly lp: number
  /** Copy index the data came from; undefined when nothing needed copying. */
  readonly source: number | undefined
  readonly targets: readonly number[]
  readonly copiedBytes: number
  /** Offset in the LP the run started at (> 0 when resumed from a checkpoint). */
  readonly resumedFromBytes: number
}

export interface ResyncReport {
  readonly lps: readonly LpResyncResult[]
  readonly copiedBytes: number
  /** LPs that could not be synced (no good copy, or every target failed), with the reason. */
  readonly failed: ReadonlyArray<{ lv: string, lp: number, code: string }>
}

/** The pieces of one region to copy under its lock. */
interface RegionWork {
  readonly region: number
  /** Start of the region in the LP. */
  readonly offsetInLpBytes: number
  readonly pieces: readonly LpRange[]
  readonly bytes: number
  /** The pieces cover the whole region. */
  readonly whole: boolean
}

/** Shared by the regions of one LP in flight: the live targets, and the first failure. */
interface LpRun {
  readonly lv: LvDescriptor
  readonly lp: number
  readonly source: number
  targets: number[]
  failure: Error | undefined
  sourceFailed: boolean
  copiedBytes: number
}

export class Resyncer {
  readonly #mirror: MirrorVg
  readonly #options: ResyncOptions
  readonly #rate: ResyncRateController
  #progress = { doneBytes: 0, totalBytes: 0, copiedBytes: 0, lv: undefined as string | undefined,
    lp: undefined as number | undefined }

  constructor(mirror: MirrorVg, options: ResyncOptions = {}) {
    this.#mirror = mirror
    this.#options = options
    const max = options.maxRateBytesPerSecond ?? options.rateBytesPerSecond
    assert(max === undefined || max > 0, 'rate must be positive')
    this.#rate = new ResyncRateController({ ...options,
      ...(max === undefined ? {} : { maxRateBytesPerSecond: max }),
      fillTargetBytes: options.fillTargetBytes ?? DEFAULT_FILL_TARGET_REGIONS * mirror.ltgBytes }, options.clock)
  }

  /** Regions between durable checkpoints: the option, else DEFAULT_CHECKPOINT_BYTES worth. */
  #checkpointRegions(): number {
    return this.#options.checkpointEveryRegions ??
      Math.max(1, Math.floor(DEFAULT_CHECKPOINT_BYTES / this.#mirror.ltgBytes))
  }

  progress(): ResyncProgress {
    const rate = this.#rate.snapshot().rateBytesPerSecond
    const left = Math.max(0, this.#progress.totalBytes - this.#progress.doneBytes)
    return { ...this.#progress, rateBytesPerSecond: rate,
      etaSeconds: rate === undefined || rate <= 0 ? undefined : left / rate }
  }

  /** Cursors found in the MWC log at vary-on: their targets stay write-through until resumed. */
  adoptCursor(cursor: ResyncCursor): void {
    const lv = this.#mirror.vg.lvById(cursor.lvId)
    if (lv === undefined || cursor.lp >= lv.lps.length) return
    this.#mirror.addWriteThrough(cursor.lvId, cursor.lp, this.#staleTargets(lv, cursor.lp, cursor.targetMask))
  }

  #staleTargets(lv: LvDescriptor, lp: number, mask: number): number[] {
    const copies = lv.lps[lp]!
    const targets: number[] = []
    copies.forEach((copy, index) => {
      if ((mask & (1 << index)) !== 0 && this.#mirror.vg.isStale(copy.pvIndex, copy.pp)) targets.push(index)
    })
    return targets
  }

  #emit(lv: string, lp: number): void {
    this.#progress.lv = lv
    this.#progress.lp = lp
    this.#options.onProgress?.(this.progress())
  }

  /** Targets of one LP resync (see the file comment); marks absent copies stale when forced. */
  async #targets(lv: LvDescriptor, lp: number, source: number, force: boolean): Promise<number[]> {
    const vg = this.#mirror.vg
    const copies = lv.lps[lp]!
    if (force) await this.#mirror.markAbsentCopiesStale(lv, lp)
    const targets: number[] = []
    copies.forEach((copy, index) => {
      if (index === source || vg.pvState(copy.pvIndex) !== 'active') return
      if (force || vg.isStale(copy.pvIndex, copy.pp)) targets.push(index)
    })
    return targets
  }

  /** The ranges of an LP to copy from `startBytes` on: the whole LP when forced, else what
   * `resyncRanges` says for these targets; sorted, disjoint, inside the LP. */
  #ranges(lv: LvDescriptor, lp: number, force: boolean, targets: readonly number[], startBytes: number): LpRange[] {
    const ppBytes = this.#mirror.vg.ppSizeBytes
    const given = force ? undefined : this.#mirror.resyncRanges(lv, lp, targets)
    const ranges = given ?? [{ offsetInLpBytes: 0, lengthBytes: ppBytes }]
    const out: LpRange[] = []
    let end = 0
    for (const range of ranges) {
      assert(range.offsetInLpBytes >= end && range.lengthBytes >= 0 &&
        range.offsetInLpBytes + range.lengthBytes <= ppBytes, `resyncRanges of LP ${lp} of ${lv.name} are not sorted, disjoint ranges inside the LP`)
      end = range.offsetInLpBytes + range.lengthBytes
      const from = Math.max(range.offsetInLpBytes, startBytes)
      if (end > from) out.push({ offsetInLpBytes: from, lengthBytes: end - from })
    }
    return out
  }

  /** Cuts ranges at region boundaries and groups the pieces by region, in order. */
  #regionWork(lp: number, ranges: readonly LpRange[]): RegionWork[] {
    const ltg = this.#mirror.ltgBytes
    const work: Array<{ region: number, offsetInLpBytes: number, pieces: LpRange[], bytes: number }> = []
    for (const range of ranges) {
      for (let at = range.offsetInLpBytes, end = at + range.lengthBytes; at < end;) {
        const start = Math.floor(at / ltg) * ltg
        const piece = { offsetInLpBytes: at, lengthBytes: Math.min(end, start + ltg) - at }
        const region = lp * this.#mirror.regionsPerLp() + start / ltg
        const last = work[work.length - 1]
        if (last?.region === region) {
          last.pieces.push(piece)
          last.bytes += piece.lengthBytes
        } else {
          work.push({ region, offsetInLpBytes: start, pieces: [piece], bytes: piece.lengthBytes })
        }
        at += piece.lengthBytes
      }
    }
    return work.map((item) => ({ ...item, whole: item.bytes === ltg }))
  }

  /** Whether a resync would visit this LP: every mirrored LP when forced, else those with a
   * stale copy on an active PV (even when resyncRanges says nothing differs: the LP still
   * finishes, its stale bits cleared). */
  #needsResync(lv: LvDescriptor, lp: number, force: boolean): boolean {
    const vg = this.#mirror.vg
    const copies = lv.lps[lp]!
    if (copies.length < 2) return false
    return force || copies.some((copy) => vg.pvState(copy.pvIndex) === 'active' && vg.isStale(copy.pvIndex, copy.pp))
  }

  /** Bytes a resync of this LP would visit now (for progress totals). */
  #pendingBytes(lv: LvDescriptor, lp: number, force: boolean): number {
    const vg = this.#mirror.vg
    const copies = lv.lps[lp]!
    if (!this.#needsResync(lv, lp, force)) return 0
    const stale: number[] = []
    copies.forEach((copy, index) => {
      if (vg.pvState(copy.pvIndex) === 'active' && vg.isStale(copy.pvIndex, copy.pp)) stale.push(index)
    })
    const cursor = this.#mirror.mwc.cursor(lv.lvId, lp)
    const startBytes = cursor?.force === force ? cursor.offsetInLpBytes : 0
    return this.#ranges(lv, lp, force, stale, startBytes).reduce((sum, range) => sum + range.lengthBytes, 0)
  }

  async resynclp(lvName: string, lp: number, force: boolean): Promise<LpResyncResult> {
    this.#mirror.assertOnline()
    const lv = this.#mirror.lv(lvName)
    if (!Number.isInteger(lp) || lp < 0 || lp >= lv.lps.length) {
      throw new LvmfsError('MIRROR_BAD_RANGE', `LP ${lp} out of range for LV "${lvName}"`,
        { detail: `The LV has LPs 0 to ${lv.lps.length - 1}.`, context: { lp, lpCount: lv.lps.length } })
    }
    if (this.#progress.totalBytes === 0) this.#progress.totalBytes = this.#pendingBytes(lv, lp, force)
    return await this.#resyncLp(lv, lp, force)
  }

  async #resyncLp(lv: LvDescriptor, lp: number, force: boolean, batch?: PendingFinish[],
    visited?: { regions: number }): Promise<LpResyncResult> {
    const key = `${lv.lvId}:${lp}`
    if (this.#mirror.resyncing.has(key)) {
      throw new LvmfsError('LVM_INRESYNC', `LP ${lp} of LV "${lv.name}" is already being resynced`)
    }
    this.#mirror.resyncing.add(key)
    try {
      return await this.#copyLp(lv, lp, force, batch, visited)
    } finally {
      this.#mirror.resyncing.delete(key)
    }
  }

  /** Copies one LP. With `batch`, the LP's finish (sync, stale bits cleared, cursor dropped,
   * write-through ended) is deferred to the caller's next #finishBatch. */
  async #copyLp(lv: LvDescriptor, lp: number, force: boolean, batch?: PendingFinish[],
    visited?: { regions: number }): Promise<LpResyncResult> {
    const mirror = this.#mirror
    const vg = mirror.vg
    const source = sourceCopy(vg, lv, lp)
    if (source === undefined) {
      throw new LvmfsError('LVM_NOTSYNCED', `LP ${lp} of LV "${lv.name}" has no good copy to resync from`,
        { detail: 'Every copy is stale or on a PV that is not active.', context: { lv: lv.name, lp },
          hint: 'Bring back the PV holding the last good copy and vary the VG on again.' })
    }
    const targets = await this.#targets(lv, lp, source, force)
    const cursor = this.#mirror.mwc.cursor(lv.lvId, lp)
    const resume = cursor !== undefined && cursor.force === force && cursor.targetMask === copyMask(targets)
    const startBytes = resume ? cursor.offsetInLpBytes : 0
    if (targets.length === 0) {
      await this.#dropCursor(lv, lp)
      return { lv: lv.name, lp, source: undefined, targets: [], copiedBytes: 0, resumedFromBytes: 0 }
    }
    const staleTargets = targets.filter((index) => !isCopyFresh(vg, lv.lps[lp]![index]!))
    mirror.addWriteThrough(lv.lvId, lp, staleTargets)
    let work: RegionWork[]
    try {
      // A write admitted before the targets became write-through may still skip them and mark
      // its chunks: wait such writes out before the bitmap says what to copy.
      // (An untracked LP is copied whole, each region under its exclusive lock: nothing to wait.)
      if (!force && mirror.bitmaps.isTracked(lv.lvId, lp)) await mirror.settleWrites(lv, lp)
      work = this.#regionWork(lp, this.#ranges(lv, lp, force, staleTargets.length === targets.length ? targets
        : staleTargets, startBytes))
    } catch (error) {
      mirror.removeWriteThrough(lv.lvId, lp, staleTargets)
      throw error
    }
    const run: LpRun = { lv, lp, source, targets, failure: undefined, sourceFailed: false, copiedBytes: 0 }
    const finished = new Array<boolean>(work.length).fill(false)
    const running = new Set<Promise<void>>()
    let prefix = 0  // work[0, prefix) is finished
    let sinceCheckpoint = 0
    const checkpointDue = (): boolean => sinceCheckpoint >= this.#checkpointRegions() && prefix > 0 &&
      prefix < work.length
    const checkpoint = async (): Promise<void> => {
      // The regions in flight finish first, so the cursor claims every region finished: a
      // resumed run re-copies at most one interval (one pipeline bubble per interval).
      while (running.size > 0) await Promise.all([...running])
      sinceCheckpoint = 0
      if (run.failure === undefined && prefix < work.length) {
        await this.#checkpoint(lv, lp, force, run.targets, work[prefix]!.offsetInLpBytes)
      }
    }
    let stopped: Error | undefined
    try {
      for (let index = 0; index < work.length && run.failure === undefined; index++) {
        const item = work[index]!
        // Waits for room under the fill target (a region in flight finishing) and for budget.
        await this.#rate.acquire(item.bytes, this.#options.signal)
        try {
          if (checkpointDue()) await checkpoint()
          this.#options.signal?.throwIfAborted()
        } catch (error) {
          this.#rate.release(item.bytes)
          throw error
        }
        if (run.failure !== undefined) {
          this.#rate.release(item.bytes)
          break
        }
        const task: Promise<void> = (async () => {
          try {
            await this.#copyRegion(run, item)
            finished[index] = true
            while (prefix < work.length && finished[prefix]) prefix += 1
            sinceCheckpoint += 1
            if (visited !== undefined) visited.regions += 1
            this.#progress.doneBytes += item.bytes
            this.#emit(lv.name, lp)
          } catch (error) {
            run.failure ??= asError(error)
          } finally {
            this.#rate.release(item.bytes)
          }
        })().finally(() => running.delete(task))
        running.add(task)
      }
    } catch (error) {
      stopped = asError(error)
    }
    // Regions in flight finish (or fail) before the LP is left, whatever stopped the loop.
    while (running.size > 0) await Promise.all([...running])
    if (stopped !== undefined && stopped.name === 'AbortError' &&
        run.failure === undefined && checkpointDue()) {
      // Stopped between regions: keep what is finished, as the checkpoint due says.
      await checkpoint()
    }
    const failure = stopped ?? run.failure
    if (failure !== undefined) {
      mirror.removeWriteThrough(lv.lvId, lp, staleTargets)
      throw failure
    }
    const pending: PendingFinish = { lv, lp, targets: run.targets, staleTargets }
    // The finish ends write-through (in #finishBatch, after the stale bits are cleared).
    if (batch === undefined) await this.#finishBatch([pending])
    else batch.push(pending)
    return { lv: lv.name, lp, source, targets: run.targets, copiedBytes: run.copiedBytes, resumedFromBytes: startBytes }
  }

  /** Copies the pieces of one region under its exclusive lock (gate closed and drained); a
   * source read error marks the source stale and fails the LP, failed targets are marked (after
   * the lock is released) and dropped from the run. */
  async #copyRegion(run: LpRun, item: RegionWork): Promise<void> {
    const mirror = this.#mirror
    const { lv, lp, source } = run
    const release = await mirror.lockRegionExclusive(lv.lvId, item.region)
    const failed = new Set<number>()
    let copied = 0
    let sourceError: unknown
    try {
      for (const piece of item.pieces) {
        const targets = run.targets.filter((target) => !failed.has(target))
        if (targets.length === 0 || run.failure !== undefined) break
        const parts = this.#options.narrowRanges === undefined ? [piece]
          : await this.#options.narrowRanges(lv, lp, source, targets, piece)
        for (const part of parts) {
          assert(part.offsetInLpBytes >= piece.offsetInLpBytes && part.lengthBytes >= 0 &&
            part.offsetInLpBytes + part.lengthBytes <= piece.offsetInLpBytes + piece.lengthBytes,
          'narrowRanges left the range it was given')
          if (part.lengthBytes === 0) continue
          const live = targets.filter((target) => !failed.has(target))
          if (live.length === 0) break
          let outcome
          try {
            outcome = await copyRange(mirror.vg, lv, { lp, offsetInLpBytes: part.offsetInLpBytes,
              lengthBytes: part.lengthBytes, source, targets: live }, undefined, this.#options.copyMethod ?? 'auto',
            this.#options.copyWriteback ?? true)
          } catch (error) {
            sourceError = error
            break
          }
          copied += outcome.copiedBytes
          for (const target of outcome.failedTargets) failed.add(target)
        }
        if (sourceError !== undefined) break
      }
      if (sourceError === undefined && item.whole) mirror.noteRegionSynced(lv.lvId, item.region)
    } finally {
      release()
    }
    run.copiedBytes += copied
    this.#progress.copiedBytes += copied
    if (sourceError !== undefined) {
      if (!run.sourceFailed) {
        run.sourceFailed = true
        await mirror.onCopyError(lv, lp, source, errnoOf(sourceError), false)
      }
      throw new LvmfsError('LVM_NOTSYNCED', `reading the source copy ${source} of LP ${lp} of LV "${lv.name}" failed`,
        { cause: sourceError, hint: 'The source was marked stale; run the resync again to use another copy.' })
    }
    // Each failed target is marked once, however many regions in flight saw it fail.
    const newlyFailed = [...failed].filter((target) => run.targets.includes(target))
    run.targets = run.targets.filter((target) => !failed.has(target))
    for (const target of newlyFailed) await mirror.onCopyError(lv, lp, target, errnoOf(undefined), true)
    if (run.targets.length === 0) {
      throw new LvmfsError('LVM_NOTSYNCED', `every target copy of LP ${lp} of LV "${lv.name}" failed`)
    }
  }

  async #checkpoint(lv: LvDescriptor, lp: number, force: boolean, targets: readonly number[],
    offsetInLpBytes: number): Promise<void> {
    const failed = await syncCopies(this.#mirror.vg, lv, lp, targets)
    if (failed.length > 0) {
      throw new LvmfsError('LVM_NOTSYNCED', `syncing the targets of LP ${lp} of LV "${lv.name}" failed`)
    }
    const cursor: ResyncCursor = { lvId: lv.lvId, lp, force, targetMask: copyMask(targets), offsetInLpBytes }
    await this.#mirror.mwc.setCursor(lv.lvId, lp, cursor)
  }

  async #dropCursor(lv: LvDescriptor, lp: number): Promise<void> {
    if (this.#mirror.mwc.cursor(lv.lvId, lp) === undefined) return
    await this.#mirror.mwc.setCursor(lv.lvId, lp, undefined)
  }

  /**
   * Finishes copied LPs together: their target devices are synced once, then every stale bit
   * is cleared in one VGSA commit, then the cursors are dropped in one MWC record, and only then
   * does write-through end (until the bit is clear, a write must still reach the target).
   */
  async #finishBatch(batch: PendingFinish[]): Promise<void> {
    const vg = this.#mirror.vg
    const items = batch.splice(0)
    if (items.length === 0) return
    try {
      const pvs = new Set<number>()
      for (const item of items) for (const index of item.targets) pvs.add(item.lv.lps[item.lp]![index]!.pvIndex)
      const failedPvs = new Set<number>()
      await Promise.all([...pvs].map(async (pvIndex) => {
        try {
          await vg.device(pvIndex)!.sync()
        } catch {
          failedPvs.add(pvIndex)
        }
      }))
      // A target an application write failed on during the run missed that write: it stays
      // stale (its bitmap holds the chunk) rather than be declared in sync.
      const changes = items.flatMap((item) => item.targets
        .filter((index) => !this.#mirror.writeThroughFailed(item.lv.lvId, item.lp, index))
        .map((index) => item.lv.lps[item.lp]![index]!))
        .filter((copy) => !failedPvs.has(copy.pvIndex) && vg.isStale(copy.pvIndex, copy.pp))
      if (changes.length > 0) await vg.clearStale(changes)
      const keys = items.filter((item) => this.#mirror.mwc.cursor(item.lv.lvId, item.lp) !== undefined)
        .map((item) => `${item.lv.lvId}:${item.lp}`)
      if (keys.length > 0) await this.#mirror.mwc.dropCursors(keys)
      if (failedPvs.size > 0) {
        throw new LvmfsError('LVM_NOTSYNCED', `syncing resync targets failed on PV(s) ${[...failedPvs].join(', ')}`)
      }
    } finally {
      for (const item of items) this.#mirror.removeWriteThrough(item.lv.lvId, item.lp, item.staleTargets)
    }
  }

  /** LPs of an LV that a resync would touch: every LP when forced, else those with a stale
   * copy on an active PV (or a copy on an absent PV that is not yet marked stale: no). */
  #lpsToSync(lv: LvDescriptor, force: boolean): number[] {
    const lps: number[] = []
    for (let lp = 0; lp < lv.lps.length; lp++) if (this.#needsResync(lv, lp, force)) lps.push(lp)
    return lps
  }

  async resynclv(lvName: string, force: boolean): Promise<ResyncReport> {
    this.#mirror.assertOnline()
    const lv = this.#mirror.lv(lvName)
    const lps = this.#lpsToSync(lv, force)
    this.#progress.totalBytes += lps.reduce((sum, lp) => sum + this.#pendingBytes(lv, lp, force), 0)
    const report = await this.#runLps(lps.map((lp) => ({ lv, lp })), force)
    if (force && report.failed.length === 0 && this.#mirror.forcedPending(lv.lvId)) {
      this.#mirror.clearForcedPending(lv.lvId)
    }
    return report
  }

  /** Resyncs every LP with a stale copy on PV `pvIndex` (whole LPs, so other PVs may be written). */
  async resyncpv(pvIndex: number): Promise<ResyncReport> {
    this.#mirror.assertOnline()
    const vg = this.#mirror.vg
    if (!Number.isInteger(pvIndex) || pvIndex < 0 || pvIndex >= vg.descriptor.pvs.length) {
      throw new LvmfsError('MIRROR_BAD_RANGE', `PV index ${pvIndex} out of range`)
    }
    const work: Array<{ lv: LvDescriptor, lp: number }> = []
    for (const lv of vg.descriptor.lvs) {
      lv.lps.forEach((copies, lp) => {
        if (copies.some((copy) => copy.pvIndex === pvIndex && vg.isStale(copy.pvIndex, copy.pp))) work.push({ lv, lp })
      })
    }
    this.#progress.totalBytes += work.reduce((sum, item) => sum + this.#pendingBytes(item.lv, item.lp, false), 0)
    return await this.#runLps(work, false)
  }

  /** The LPs of one LV that have a stale copy on PV `pvIndex` (`resync VG/LV --pv PV`). */
  async resyncLvOnPv(lvName: string, pvIndex: number, force: boolean): Promise<ResyncReport> {
    this.#mirror.assertOnline()
    const vg = this.#mirror.vg
    const lv = this.#mirror.lv(lvName)
    const work: Array<{ lv: LvDescriptor, lp: number }> = []
    lv.lps.forEach((copies, lp) => {
      if (copies.some((copy) => copy.pvIndex === pvIndex && vg.isStale(copy.pvIndex, copy.pp))) work.push({ lv, lp })
    })
    this.#progress.totalBytes += work.reduce((sum, item) => sum + this.#pendingBytes(item.lv, item.lp, force), 0)
    return await this.#runLps(work, force)
  }

  /** syncvg: every LP of every LV with a stale copy on an active PV. */
  async syncvg(): Promise<ResyncReport> {
    this.#mirror.assertOnline()
    const work: Array<{ lv: LvDescriptor, lp: number }> = []
    for (const lv of this.#mirror.vg.descriptor.lvs) {
      for (const lp of this.#lpsToSync(lv, false)) work.push({ lv, lp })
    }
    this.#progress.totalBytes += work.reduce((sum, item) => sum + this.#pendingBytes(item.lv, item.lp, false), 0)
    return await this.#runLps(work, false)
  }

  async #runLps(work: ReadonlyArray<{ lv: LvDescriptor, lp: number }>, force: boolean): Promise<ResyncReport> {
    const results: Array<{ index: number, result: LpResyncResult }> = []
    const failures: Array<{ index: number, lv: string, lp: number, code: string }> = []
    const batch: PendingFinish[] = []
    const interval = this.#checkpointRegions()
    // Several LPs are copied at once (as many as the fill target holds regions, at most
    // MAX_LP_LANES), so LPs of one region (4 MiB partitions) still keep copies in flight.
    // Finished LPs are finished (synced, stale bits cleared) in batches of half an interval,
    // each while the next LPs are copied, so the copy does not stall on every sync. What a crash
    // would leave to copy again stays within one interval: an LP starts only when the batch
    // being finished, the LPs finished since, the LPs in flight and its own regions fit in one
    // interval (or nothing else is pending), else the others are waited for first.
    const half = Math.max(1, Math.floor(interval / 2))
    const lpRegions = this.#mirror.regionsPerLp()
    const lanes = Math.max(1, Math.min(MAX_LP_LANES, Math.floor(this.#rate.fillTargetBytes / this.#mirror.ltgBytes)))
    const running = new Set<Promise<void>>()
    let inFlightRegions = 0
    let fatal: Error | undefined
    let finishing: Promise<void> | undefined
    let finishingRegions = 0
    let regionsSinceFinish = 0
    const waitFinish = async (): Promise<void> => {
      const pending = finishing
      finishing = undefined
      finishingRegions = 0
      await pending
    }
    const maybeFinish = async (): Promise<void> => {
      if (regionsSinceFinish < half) return
      await waitFinish()  // one finish at a time; a failed one is thrown here
      finishingRegions = regionsSinceFinish
      regionsSinceFinish = 0
      finishing = this.#finishBatch(batch)
      finishing.catch(() => {})
    }
    const fits = (): boolean => (running.size === 0 && finishing === undefined) ||
      (running.size < lanes && finishingRegions + regionsSinceFinish + inFlightRegions + lpRegions <= interval)
    try {
      for (const [index, { lv, lp }] of work.entries()) {
        // Finished LPs go into a finish before the next LP starts even when nothing else runs:
        // otherwise they could wait in the batch past a whole LP, beyond the one interval a
        // crash may cost.
        await maybeFinish()
        while (!fits() && fatal === undefined) {
          if (running.size > 0) await Promise.race(running)
          else await waitFinish()
          await maybeFinish()
        }
        if (fatal !== undefined) break
        this.#options.signal?.throwIfAborted()
        inFlightRegions += lpRegions
        const visited = { regions: 0 }
        const task: Promise<void> = (async () => {
          try {
            const result = await this.#resyncLp(this.#mirror.current(lv), lp, force, batch, visited)
            results.push({ index, result })
          } catch (error) {
            if (!(error instanceof LvmfsError) || this.#options.signal?.aborted === true) {
              fatal ??= asError(error)
              return
            }
            failures.push({ index, lv: lv.name, lp, code: error.code })
            this.#mirror.logger.warn({ lv: lv.name, lp, code: error.code }, 'LP not resynced')
          } finally {
            inFlightRegions -= lpRegions
            regionsSinceFinish += visited.regions
          }
        })().finally(() => running.delete(task))
        running.add(task)
      }
    } catch (error) {
      fatal ??= asError(error)
    } finally {
      while (running.size > 0) await Promise.all([...running])
      // Copied LPs are finished even when the run stops early (abort), so their work counts.
      let finishError: unknown
      try {
        await waitFinish()
      } catch (error) {
        finishError = error
      }
      await this.#finishBatch(batch)
      if (fatal === undefined && finishError !== undefined) fatal = asError(finishError)
    }
    if (fatal !== undefined) throw fatal
    results.sort((a, b) => a.index - b.index)
    failures.sort((a, b) => a.index - b.index)
    return { lps: results.map((entry) => entry.result),
      copiedBytes: results.reduce((sum, entry) => sum + entry.result.copiedBytes, 0),
      failed: failures.map(({ lv, lp, code }) => ({ lv, lp, code })) }
  }
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value))
}

interface PendingFinish {
  readonly lv: LvDescriptor
  readonly lp: number
  readonly targets: readonly number[]
  readonly staleTargets: readonly number[]
}
