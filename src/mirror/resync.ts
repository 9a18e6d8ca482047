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
 * Online safety: the LP is copied one LTG region at a time under the region's exclusive lock,
 * so no application write to that region runs between reading the source and writing the
 * targets. Stale targets are registered as write-through targets for the whole run: writes to
 * regions already copied reach them too, so a copied region never goes back to older data.
 *
 * Durability and resume: stale bits are cleared only after the targets are synced. Every
 * `checkpointEveryRegions` regions the targets are synced and a cursor (LP, targets, offset) is
 * written to the MWC log of every active PV; after a crash, vary-on reloads the cursors, keeps
 * their targets write-through, and the next resync of that LP starts at the cursor. So a resumed
 * run re-copies at most the remaining bytes plus one checkpoint interval.
 */
import type { LvDescriptor } from '../lvm/index.js'
import type { ResyncCursor } from '../format/mwc-log.js'
import { LvmfsError, errnoOf } from '../errors/index.js'
import { assert } from '../util/assert.js'
import { copyMask, isCopyFresh, sourceCopy } from './layout.js'
import type { LpRange, MirrorVg } from './mirror-vg.js'
import { copyAddress, syncCopies } from './region-copy.js'

/** Default checkpoint interval: bytes a resumed resync may copy again after a crash. Each
 * checkpoint costs a sync of the targets, a VGSA commit and an MWC record. */
export const DEFAULT_CHECKPOINT_BYTES = 256 * 1024 * 1024

export interface ResyncProgress {
  /** LP bytes finished (each LP region counts once, whatever the number of targets). */
  readonly doneBytes: number
  readonly totalBytes: number
  /** Bytes written to target copies (regions × targets): what T7 counts. */
  readonly copiedBytes: number
  readonly lv: string | undefined
  readonly lp: number | undefined
}

export interface ResyncOptions {
  /** Upper bound of the copy rate; unlimited when absent. */
  readonly rateBytesPerSecond?: number
  /** Regions (LTGs) copied between two durable checkpoints; default 256 MiB worth. */
  readonly checkpointEveryRegions?: number
  readonly onProgress?: (progress: ResyncProgress) => void
  readonly signal?: AbortSignal
  /** Narrows a range about to be copied to the sub-ranges that must be written (checksum resync:
   * `ChecksumNarrower`, checksum-diff.ts); called under the region's exclusive lock before the
   * source is read. Default: the range itself. */
  readonly narrowRanges?: (lv: LvDescriptor, lp: number, source: number, targets: readonly number[],
    range: LpRange) => Promise<readonly LpRange[]>
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

/** Token bucket over regions: `take(bytes)` waits until the copy rate stays under the bound.
 * Clock and sleep are injectable so tests check the arithmetic without timing. */
export class RateLimiter {
  #nextAtMs = 0
  constructor(readonly bytesPerSecond: number | undefined,
    readonly clock: { now(): number, sleep(ms: number): Promise<void> } = {
      now: () => performance.now(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    }) {}

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.bytesPerSecond === undefined) return
    const now = this.clock.now()
    const waitMs = Math.max(0, this.#nextAtMs - now)
    this.#nextAtMs = Math.max(now, this.#nextAtMs) + (bytes / this.bytesPerSecond) * 1000
    if (waitMs > 0) await this.clock.sleep(waitMs)
    signal?.throwIfAborted()
  }
}

export class Resyncer {
  readonly #mirror: MirrorVg
  readonly #options: ResyncOptions
  readonly #rate: RateLimiter
  #buffers: Buffer[] | undefined
  #progress = { doneBytes: 0, totalBytes: 0, copiedBytes: 0, lv: undefined as string | undefined,
    lp: undefined as number | undefined }

  constructor(mirror: MirrorVg, options: ResyncOptions = {}) {
    this.#mirror = mirror
    this.#options = options
    this.#rate = new RateLimiter(options.rateBytesPerSecond)
    assert(options.rateBytesPerSecond === undefined || options.rateBytesPerSecond > 0, 'rate must be positive')
  }

  /** Regions between durable checkpoints: the option, else DEFAULT_CHECKPOINT_BYTES worth. */
  #checkpointRegions(): number {
    return this.#options.checkpointEveryRegions ??
      Math.max(1, Math.floor(DEFAULT_CHECKPOINT_BYTES / this.#mirror.ltgBytes))
  }

  progress(): ResyncProgress {
    return { ...this.#progress }
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

  /** Bytes a resync of this LP would copy now (for progress totals). */
  #pendingBytes(lv: LvDescriptor, lp: number, force: boolean): number {
    const vg = this.#mirror.vg
    const copies = lv.lps[lp]!
    if (copies.length < 2) return 0
    const needs = force || copies.some((copy) => vg.pvState(copy.pvIndex) === 'active' && vg.isStale(copy.pvIndex, copy.pp))
    if (!needs) return 0
    const cursor = this.#mirror.mwc.cursor(lv.lvId, lp)
    return vg.ppSizeBytes - (cursor?.force === force ? cursor.offsetInLpBytes : 0)
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

  async #resyncLp(lv: LvDescriptor, lp: number, force: boolean, batch?: PendingFinish[]): Promise<LpResyncResult> {
    const key = `${lv.lvId}:${lp}`
    if (this.#mirror.resyncing.has(key)) {
      throw new LvmfsError('LVM_INRESYNC', `LP ${lp} of LV "${lv.name}" is already being resynced`)
    }
    this.#mirror.resyncing.add(key)
    try {
      return await this.#copyLp(lv, lp, force, batch)
    } finally {
      this.#mirror.resyncing.delete(key)
    }
  }

  /** Copies one LP. With `batch`, the LP's finish (sync, stale bits cleared, cursor dropped,
   * write-through ended) is deferred to the caller's next #finishBatch. */
  async #copyLp(lv: LvDescriptor, lp: number, force: boolean, batch?: PendingFinish[]): Promise<LpResyncResult> {
    const mirror = this.#mirror
    const vg = mirror.vg
    const source = sourceCopy(vg, lv, lp)
    if (source === undefined) {
      throw new LvmfsError('LVM_NOTSYNCED', `LP ${lp} of LV "${lv.name}" has no good copy to resync from`,
        { detail: 'Every copy is stale or on a PV that is not active.', context: { lv: lv.name, lp },
          hint: 'Bring back the PV holding the last good copy and vary the VG on again.' })
    }
    let targets = await this.#targets(lv, lp, source, force)
    const cursor = this.#mirror.mwc.cursor(lv.lvId, lp)
    const resume = cursor !== undefined && cursor.force === force && cursor.targetMask === copyMask(targets)
    const startBytes = resume ? cursor.offsetInLpBytes : 0
    if (targets.length === 0) {
      await this.#dropCursor(lv, lp)
      return { lv: lv.name, lp, source: undefined, targets: [], copiedBytes: 0, resumedFromBytes: 0 }
    }
    const staleTargets = targets.filter((index) => !isCopyFresh(vg, lv.lps[lp]![index]!))
    mirror.addWriteThrough(lv.lvId, lp, staleTargets)
    let copiedBytes = 0
    let deferred = false
    // Read-ahead: region k+1 is read from the source (under its lock) while region k is
    // written to the targets, as two buffers alternate.
    let ahead: Promise<ReadRegion> | undefined
    try {
      let sinceCheckpoint = 0
      ahead = this.#readRegion(lv, lp, startBytes, source, targets, 0)
      for (let offset = startBytes, turn = 0; offset < vg.ppSizeBytes; offset += mirror.ltgBytes, turn++) {
        this.#options.signal?.throwIfAborted()
        assert(ahead !== undefined, 'resync read-ahead missing')
        const current = await ahead
        ahead = undefined
        const nextOffset = offset + mirror.ltgBytes
        if (nextOffset < vg.ppSizeBytes) {
          ahead = this.#readRegion(lv, lp, nextOffset, source, targets, (turn + 1) % 2)
          ahead.catch(() => {})
        }
        const outcome = await this.#writeRegion(lv, lp, current, targets)
        copiedBytes += outcome.copiedBytes
        targets = targets.filter((index) => !outcome.failedTargets.includes(index))
        if (targets.length === 0) {
          throw new LvmfsError('LVM_NOTSYNCED', `every target copy of LP ${lp} of LV "${lv.name}" failed`)
        }
        this.#progress.doneBytes += mirror.ltgBytes
        this.#progress.copiedBytes += outcome.copiedBytes
        this.#emit(lv.name, lp)
        sinceCheckpoint += 1
        if (sinceCheckpoint >= this.#checkpointRegions() && nextOffset < vg.ppSizeBytes) {
          sinceCheckpoint = 0
          await this.#checkpoint(lv, lp, force, targets, nextOffset)
        }
      }
      const pending: PendingFinish = { lv, lp, targets, staleTargets }
      if (batch === undefined) {
        deferred = true
        await this.#finishBatch([pending])
      } else {
        batch.push(pending)
        deferred = true
      }
      return { lv: lv.name, lp, source, targets, copiedBytes, resumedFromBytes: startBytes }
    } finally {
      // A read-ahead still holding its region lock (the run stopped early) lets it go.
      if (ahead !== undefined) await ahead.then((read) => read.release(), () => {})
      if (!deferred) mirror.removeWriteThrough(lv.lvId, lp, staleTargets)
    }
  }

  /** Locks region `offset` of the LP exclusive and reads it from the source (the lock is kept
   * until #writeRegion); a source read error marks the source stale and fails the LP. */
  async #readRegion(lv: LvDescriptor, lp: number, offset: number, source: number, targets: readonly number[],
    bufferIndex: number): Promise<ReadRegion> {
    const mirror = this.#mirror
    this.#options.signal?.throwIfAborted()
    await this.#rate.take(mirror.ltgBytes, this.#options.signal)
    const buffers = this.#buffers ??= [Buffer.alloc(mirror.ltgBytes), Buffer.alloc(mirror.ltgBytes)]
    const data = buffers[bufferIndex]!
    const region = lp * mirror.regionsPerLp() + offset / mirror.ltgBytes
    const release = await mirror.lockRegionExclusive(lv.lvId, region)
    const whole = { offsetInLpBytes: offset, lengthBytes: mirror.ltgBytes }
    const narrow = this.#options.narrowRanges
    let ranges: readonly LpRange[] = [whole]
    try {
      if (narrow !== undefined) ranges = await narrow(lv, lp, source, targets, whole)
      assert(ranges.every((range) => range.offsetInLpBytes >= offset &&
        range.offsetInLpBytes + range.lengthBytes <= offset + mirror.ltgBytes), 'narrowRanges left the region')
    } catch (error) {
      release()
      throw error
    }
    try {
      const from = copyAddress(mirror.vg, lv, lp, source, offset)
      for (const range of ranges) {
        const at = range.offsetInLpBytes - offset
        await from.device.read(data.subarray(at, at + range.lengthBytes), from.offsetBytes + at)
      }
    } catch (error) {
      release()
      await mirror.onCopyError(lv, lp, source, errnoOf(error), false)
      throw new LvmfsError('LVM_NOTSYNCED', `reading the source copy ${source} of LP ${lp} of LV "${lv.name}" failed`,
        { cause: error, hint: 'The source was marked stale; run the resync again to use another copy.' })
    }
    return { region, offset, data, ranges, release }
  }

  /** Writes a region read by #readRegion to every target, then releases its lock. */
  async #writeRegion(lv: LvDescriptor, lp: number, read: ReadRegion, targets: readonly number[]):
    Promise<{ copiedBytes: number, failedTargets: number[] }> {
    const mirror = this.#mirror
    const failedTargets: number[] = []
    let copiedBytes = 0
    try {
      await Promise.all(targets.map(async (target) => {
        try {
          const to = copyAddress(mirror.vg, lv, lp, target, read.offset)
          let written = 0
          for (const range of read.ranges) {
            const at = range.offsetInLpBytes - read.offset
            await to.device.write(read.data.subarray(at, at + range.lengthBytes), to.offsetBytes + at)
            written += range.lengthBytes
          }
          copiedBytes += written
        } catch {
          failedTargets.push(target)
        }
      }))
      mirror.noteRegionSynced(lv.lvId, read.region)
    } finally {
      read.release()
    }
    for (const target of failedTargets) await mirror.onCopyError(lv, lp, target, errnoOf(undefined), true)
    return { copiedBytes, failedTargets }
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
      const changes = items.flatMap((item) => item.targets.map((index) => item.lv.lps[item.lp]![index]!))
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
    for (let lp = 0; lp < lv.lps.length; lp++) if (this.#pendingBytes(lv, lp, force) > 0) lps.push(lp)
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
    const lps: LpResyncResult[] = []
    const failed: Array<{ lv: string, lp: number, code: string }> = []
    const batch: PendingFinish[] = []
    const interval = this.#checkpointRegions()
    let copiedBytes = 0
    let regionsSinceFinish = 0
    try {
      for (const { lv, lp } of work) {
        try {
          const result = await this.#resyncLp(this.#mirror.current(lv), lp, force, batch)
          lps.push(result)
          copiedBytes += result.copiedBytes
          regionsSinceFinish += (this.#mirror.vg.ppSizeBytes - result.resumedFromBytes) / this.#mirror.ltgBytes
        } catch (error) {
          if (!(error instanceof LvmfsError) || this.#options.signal?.aborted === true) throw error
          failed.push({ lv: lv.name, lp, code: error.code })
          this.#mirror.logger.warn({ lv: lv.name, lp, code: error.code }, 'LP not resynced')
        }
        if (regionsSinceFinish >= interval) {
          regionsSinceFinish = 0
          await this.#finishBatch(batch)
        }
      }
    } finally {
      // Copied LPs are finished even when the run stops early (abort), so their work counts.
      await this.#finishBatch(batch)
    }
    return { lps, copiedBytes, failed }
  }
}

interface ReadRegion {
  readonly region: number
  readonly offset: number
  readonly data: Buffer
  /** The parts of the region to write (narrowRanges), sorted; the whole region by default. */
  readonly ranges: readonly LpRange[]
  readonly release: () => void
}

interface PendingFinish {
  readonly lv: LvDescriptor
  readonly lp: number
  readonly targets: readonly number[]
  readonly staleTargets: readonly number[]
}
