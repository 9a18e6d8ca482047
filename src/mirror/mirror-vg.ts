/**
 * The mirror engine of one varied-on VG: the state shared by the in-process LV engine, the
 * native data path policy, resync and scrub.
 *
 * Invariants:
 *  - a copy is read only when fresh (PV active, PP not stale);
 *  - a write to an LP is acknowledged only after every copy that missed it (failed, or on a
 *    missing PV) is marked stale in the VGSA, committed to a majority;
 *  - the last fresh copy of an LP is never marked stale (LVM_INVLPRED): the I/O fails instead;
 *  - write-through targets (copies being resynced) are written but never read, and their
 *    failures never fail an application write.
 */
import type { LvDescriptor, StaleChange, VolumeGroup } from '../lvm/index.js'
import type { CopyTarget, VolumeMap } from '../native/index.js'
import { LvmfsError } from '../errors/index.js'
import { assert } from '../util/index.js'
import { freshCopies, isCopyFresh, lvSizeBytes, readPolicyOf, writeScheduleOf } from './layout.js'
import { IntentBitmaps } from './intent-bitmap.js'
import { MwcLog, ltgBytesOf } from './mwc.js'
import { RegionLocks } from './region-locks.js'
import { Serial } from './serial.js'

/** A byte range inside one LP. */
export interface LpRange {
  readonly offsetInLpBytes: number
  readonly lengthBytes: number
}

export type CopyErrorDecision = 'stale-and-continue' | 'fail'

export interface MirrorLogger {
  info(object: Record<string, unknown>, message: string): void
  warn(object: Record<string, unknown>, message: string): void
}

export interface MirrorVgOptions {
  /** Upper bound of the LTG (MWC region, lock region, resync chunk) size; default 4 MiB. */
  readonly ltgBytesMax?: number
  readonly mwcCacheLtgs?: number
  /** I/O errors on one PV (this session) after which the PV is marked MISSING; default 3. */
  readonly errorsBeforeMissing?: number
  readonly logger?: MirrorLogger
}

export interface MirrorCounters {
  copyErrors: number
  staleMarked: number
  pvsMarkedMissing: number
}

const silentLogger: MirrorLogger = { info: () => {}, warn: () => {} }

export class MirrorVg {
  readonly vg: VolumeGroup
  readonly mwc: MwcLog
  readonly bitmaps: IntentBitmaps
  readonly ltgBytes: number
  readonly logger: MirrorLogger
  readonly counters: MirrorCounters = { copyErrors: 0, staleMarked: 0, pvsMarkedMissing: 0 }
  /** `lvId:lp` of every LP a resync is copying now (LVM_INRESYNC across resyncers). */
  readonly resyncing = new Set<string>()
  readonly #errorsBeforeMissing: number
  readonly #locks = new Map<number, RegionLocks>()
  readonly #writeThrough = new Map<string, Set<number>>()
  readonly #forcedPending = new Map<number, Uint8Array>()
  readonly #pvErrors = new Map<number, number>()
  readonly #failures = new Serial()
  readonly #flags = new Serial()
  #exclusiveHook: ((lvId: number, region: number) => Promise<void>) | undefined
  readonly #writeThroughListeners = new Set<(lvId: number) => void>()
  #dirtyCollector: (() => void) | undefined
  /** `lvId:lp:copy` of write-through targets an application write failed on (see resync). */
  readonly #throughFailures = new Set<string>()
  /** `lvId:region` of every gate region pinned in the activity log by beforeWriteRegion. */
  readonly #gatePins = new Set<string>()

  constructor(vg: VolumeGroup, options: MirrorVgOptions = {}) {
    this.vg = vg
    this.logger = options.logger ?? silentLogger
    this.ltgBytes = ltgBytesOf(vg.ppSizeBytes, options.ltgBytesMax)
    this.#errorsBeforeMissing = options.errorsBeforeMissing ?? 3
    this.bitmaps = new IntentBitmaps(vg)
    this.mwc = new MwcLog(vg, this.ltgBytes, {
      ...(options.mwcCacheLtgs === undefined ? {} : { cacheLtgs: options.mwcCacheLtgs }),
      onPvFailure: (pvIndex, error) => this.#pvFailed(pvIndex, error, 'MWC log write'),
      dirtyOf: (pvIndex) => {
        this.collectDirty()
        return this.bitmaps.dirtyOf(pvIndex)
      },
    })
    // Bits of an LP whose copies are all fresh again are no longer needed.
    vg.onChange((event) => { if (event.kind === 'status') this.bitmaps.settle() })
  }

  assertOnline(): void {
    if (this.vg.state !== 'online') {
      throw new LvmfsError(this.vg.state === 'forcedoff' ? 'LVM_FORCEOFF' : 'LVM_OFFLINE',
        `volume group "${this.vg.name}" is not online`, { context: { state: this.vg.state } })
    }
  }

  lv(name: string): LvDescriptor {
    const lv = this.vg.lvByName(name)
    if (lv === undefined) {
      throw new LvmfsError('ENGINE_NOT_FOUND', `logical volume "${name}" not found in "${this.vg.name}"`)
    }
    return lv
  }

  /** The current descriptor of an LV (it may have been extended since a handle was taken). */
  current(lv: LvDescriptor): LvDescriptor {
    const now = this.vg.lvById(lv.lvId)
    if (now === undefined) throw new LvmfsError('ENGINE_NOT_FOUND', `logical volume "${lv.name}" was removed`)
    return now
  }

  locksOf(lvId: number): RegionLocks {
    let locks = this.#locks.get(lvId)
    if (locks === undefined) {
      locks = new RegionLocks()
      this.#locks.set(lvId, locks)
    }
    return locks
  }

  /**
   * Takes a region exclusive for a copy (resync, scrub, resync on read). In-process writers are
   * excluded by the lock; the hook lets the daemon close the native gate of the region and drain
   * native writes admitted before, so they are excluded too.
   */
  async lockRegionExclusive(lvId: number, region: number): Promise<() => void> {
    const release = await this.locksOf(lvId).exclusive(region)
    try {
      await this.#exclusiveHook?.(lvId, region)
    } catch (error) {
      release()
      throw error
    }
    return release
  }

  /**
   * Takes regions `first`..`last` of an LV exclusive, in ascending order as every holder does
   * (so it cannot deadlock with writers), for a change of where the LV's copies live. Returns
   * one release for all of them.
   */
  async lockRegionsExclusive(lvId: number, first: number, last: number): Promise<() => void> {
    const releases: Array<() => void> = []
    const releaseAll = (): void => { for (const release of releases.splice(0).reverse()) release() }
    try {
      for (let region = first; region <= last; region++) releases.push(await this.lockRegionExclusive(lvId, region))
    } catch (error) {
      releaseAll()
      throw error
    }
    return releaseAll
  }

  /** Tells the host the LV's copies moved (pvmove, lvconvert): a daemon rebuilds its VolumeMap
   * now, before the caller releases the regions it holds. */
  announceRemap(lvId: number): void {
    for (const listener of this.#writeThroughListeners) listener(lvId)
  }

  /** Installs the daemon's "close gate and drain" step run under every exclusive region lock. */
  setExclusiveHook(hook: ((lvId: number, region: number) => Promise<void>) | undefined): void {
    this.#exclusiveHook = hook
  }

  regionsPerLp(): number {
    return this.vg.ppSizeBytes / this.ltgBytes
  }

  // --- write-through targets (online resync) -------------------------------------------------

  addWriteThrough(lvId: number, lp: number, copies: readonly number[]): void {
    if (copies.length === 0) return
    const key = `${lvId}:${lp}`
    for (const copy of copies) this.#throughFailures.delete(`${key}:${copy}`)
    const set = this.#writeThrough.get(key) ?? new Set<number>()
    for (const copy of copies) set.add(copy)
    this.#writeThrough.set(key, set)
    for (const listener of this.#writeThroughListeners) listener(lvId)
  }

  /** Called when an LV's write-through copies change or its copies move: a daemon rebuilds that
   * LV's VolumeMap (write-through copies are `writeOnly` there). Returns an unsubscribe function. */
  onWriteThroughChange(listener: (lvId: number) => void): () => void {
    this.#writeThroughListeners.add(listener)
    return () => this.#writeThroughListeners.delete(listener)
  }

  removeWriteThrough(lvId: number, lp: number, copies: readonly number[]): void {
    const key = `${lvId}:${lp}`
    const set = this.#writeThrough.get(key)
    if (set === undefined) return
    for (const copy of copies) set.delete(copy)
    if (set.size === 0) this.#writeThrough.delete(key)
    for (const listener of this.#writeThroughListeners) listener(lvId)
  }

  /** Whether an application write failed on this write-through target since it became one. */
  writeThroughFailed(lvId: number, lp: number, copyIndex: number): boolean {
    return this.#throughFailures.has(`${lvId}:${lp}:${copyIndex}`)
  }

  writeThroughOf(lvId: number, lp: number): ReadonlySet<number> {
    return this.#writeThrough.get(`${lvId}:${lp}`) ?? new Set()
  }

  // --- what a resync of a stale copy must copy ------------------------------------------------

  /**
   * The byte ranges of LP `lp` that may differ between its fresh copies and the given stale
   * target copies, sorted and disjoint; undefined means the whole LP (no trustworthy
   * write-intent bitmap covers those targets). A forced resync ignores this.
   */
  resyncRanges(lv: LvDescriptor, lp: number, _targets: readonly number[]): readonly LpRange[] | undefined {
    this.collectDirty()
    return this.bitmaps.ranges(lv, lp)
  }

  /**
   * Waits out every write into LP `lp` admitted before now: each region of the LP is taken
   * exclusive once (which also closes its native gate and drains the volume's native writes).
   * After it, a write that skipped a copy has marked its chunks.
   */
  async settleWrites(lv: LvDescriptor, lp: number): Promise<void> {
    const first = lp * this.regionsPerLp()
    for (let region = first; region < first + this.regionsPerLp(); region++) {
      const release = await this.lockRegionExclusive(lv.lvId, region)
      release()
    }
  }

  /** Installs the daemon's step that moves native write-intent marks into `bitmaps`. */
  setDirtyCollector(collector: (() => void) | undefined): void {
    this.#dirtyCollector = collector
  }

  /** Brings native write-intent marks into `bitmaps` (before a record, before a resync). */
  collectDirty(): void {
    this.#dirtyCollector?.()
  }

  // --- forced resync pending (passive MWC after a crash) --------------------------------------

  markForcedPending(lv: LvDescriptor): void {
    const regions = lv.lps.length * this.regionsPerLp()
    this.#forcedPending.set(lv.lvId, new Uint8Array(regions))
  }

  isRegionPending(lvId: number, region: number): boolean {
    const bits = this.#forcedPending.get(lvId)
    return bits !== undefined && region < bits.length && bits[region] === 0
  }

  noteRegionSynced(lvId: number, region: number): void {
    const bits = this.#forcedPending.get(lvId)
    if (bits !== undefined && region < bits.length) bits[region] = 1
  }

  forcedPending(lvId: number): boolean {
    return this.#forcedPending.has(lvId)
  }

  clearForcedPending(lvId: number): void {
    this.#forcedPending.delete(lvId)
  }

  // --- status changes ------------------------------------------------------------------------

  /** Sets the passive-MWC / off dirty flag before the first write of a session. */
  async ensureLvDirty(lv: LvDescriptor): Promise<void> {
    if (this.vg.status.dirtyLvs.includes(lv.lvId)) return
    await this.#flags.run(async () => {
      if (!this.vg.status.dirtyLvs.includes(lv.lvId)) await this.vg.setLvDirty(lv.lvId, true)
    })
  }

  async clearLvDirty(lv: LvDescriptor): Promise<void> {
    await this.#flags.run(async () => {
      if (this.vg.status.dirtyLvs.includes(lv.lvId)) await this.vg.setLvDirty(lv.lvId, false)
    })
  }

  /** Marks stale the copies of `lp` on PVs that are not active, unless that would leave the LP
   * with no fresh copy (then the write fails on its own). Needed before acknowledging a write,
   * so a PV that comes back resyncs exactly the LPs written while it was gone. */
  async markAbsentCopiesStale(lv: LvDescriptor, lp: number): Promise<void> {
    const copies = lv.lps[lp]
    assert(copies !== undefined, `LP ${lp} out of range`)
    const absent = copies.filter((copy) =>
      this.vg.pvState(copy.pvIndex) !== 'active' && !this.vg.isStale(copy.pvIndex, copy.pp))
    if (absent.length === 0 || freshCopies(this.vg, lv, lp).length === 0) return
    await this.#failures.run(async () => {
      const still = absent.filter((copy) => !this.vg.isStale(copy.pvIndex, copy.pp))
      if (still.length > 0) await this.#markStale(still)
    })
  }

  async #markStale(changes: readonly StaleChange[]): Promise<void> {
    const started = this.bitmaps.beforeMarkStale(changes)
    await this.vg.markStale(changes)
    // A record carrying the new bitmaps, so a crash from now on still finds them (without it
    // the LP would resync whole: correct, but the bitmap would be lost for it).
    const pvs = new Set<number>()
    for (const { lv, lp } of started) for (const copy of lv.lps[lp] ?? []) if (this.vg.pvState(copy.pvIndex) === 'active') pvs.add(copy.pvIndex)
    await Promise.all([...pvs].map((pvIndex) => this.mwc.commitPv(pvIndex)))
    this.counters.staleMarked += changes.length
    this.logger.warn({ changes }, 'marked partitions stale')
  }

  async #pvFailed(pvIndex: number, error: unknown, what: string): Promise<void> {
    if (this.vg.pvState(pvIndex) !== 'active') return
    this.logger.warn({ pvIndex, error: String(error) }, `${what} failed; marking PV missing`)
    await this.vg.setPvState(pvIndex, 'missing')
    this.counters.pvsMarkedMissing += 1
  }

  /**
   * Policy for a failed copy I/O (the native data path's copy-error event and the in-process
   * engine): counts the error against the PV (MISSING after `errorsBeforeMissing`), marks the
   * copy stale when another fresh copy remains, and otherwise answers 'fail' (EIO).
   * Write-through targets are already stale: their failures never fail the request.
   */
  async onCopyError(lv: LvDescriptor, lp: number, copyIndex: number, errno: number,
    isWrite: boolean): Promise<CopyErrorDecision> {
    return await this.#failures.run(async () => {
      const copy = lv.lps[lp]?.[copyIndex]
      assert(copy !== undefined, `copy ${copyIndex} of LP ${lp} does not exist`)
      this.counters.copyErrors += 1
      this.logger.warn({ lv: lv.name, lp, copyIndex, errno, isWrite }, 'copy I/O failed')
      if (isWrite && this.writeThroughOf(lv.lvId, lp).has(copyIndex)) this.#throughFailures.add(`${lv.lvId}:${lp}:${copyIndex}`)
      const others = freshCopies(this.vg, lv, lp).filter((index) => index !== copyIndex)
      const wasFresh = isCopyFresh(this.vg, copy)
      // A PV that stopped answering is gone whatever it held: MISSING now (a VG without it then
      // loses its quorum or runs degraded). Left active, a last copy on it would fail every
      // request forever and the VG would never be varied on again when it comes back.
      if (this.vg.device(copy.pvIndex)?.unreachable === true) {
        await this.#pvFailed(copy.pvIndex, errno, 'I/O on a device that stopped answering')
      }
      if (others.length === 0 && wasFresh) return 'fail'
      // Not only a fresh copy: once its PV went MISSING (an earlier copy of the same request), the
      // copy counts as absent but its stale bit is still clear, and a PV that comes back would
      // read as holding this write.
      if (others.length > 0 && !this.vg.isStale(copy.pvIndex, copy.pp)) await this.#markStale([copy])
      const errors = (this.#pvErrors.get(copy.pvIndex) ?? 0) + 1
      this.#pvErrors.set(copy.pvIndex, errors)
      if (errors >= this.#errorsBeforeMissing) await this.#pvFailed(copy.pvIndex, errno, 'repeated I/O')
      return others.length === 0 ? 'fail' : 'stale-and-continue'
    })
  }

  // --- native data path policy ------------------------------------------------------------------

  /**
   * Gate callback: before a native write enters region `regionIndex` (LTG-sized) of an LV, mark
   * absent copies stale, set the passive dirty flag, wait out resync/scrub of the region and
   * record the LTG in the MWC log. The LTG stays pinned (the daemon releases it with
   * `afterWriteRegion` when it closes the gate).
   */
  async beforeWriteRegion(lv: LvDescriptor, regionIndex: number): Promise<void> {
    this.assertOnline()
    const lp = Math.floor(regionIndex / this.regionsPerLp())
    if (lp >= lv.lps.length) throw new LvmfsError('MIRROR_BAD_RANGE', `region ${regionIndex} beyond LV ${lv.name}`)
    await this.markAbsentCopiesStale(lv, lp)
    if (lv.mwc !== 'active' && lv.copies > 1) await this.ensureLvDirty(lv)
    const release = await this.locksOf(lv.lvId).shared(regionIndex, regionIndex)
    release()
    if (lv.mwc === 'active' && lv.copies > 1) {
      await this.mwc.pin(lv, [regionIndex])
      this.#gatePins.add(`${lv.lvId}:${regionIndex}`)
    }
  }

  /** Releases what beforeWriteRegion took: the pin, when it pinned (the LV's MWC policy may
   * have changed while the gate was open). */
  afterWriteRegion(lv: LvDescriptor, regionIndex: number): void {
    if (this.#gatePins.delete(`${lv.lvId}:${regionIndex}`)) this.mwc.unpin(lv, [regionIndex])
  }

  /** The plan the native data path executes for `lv` (rebuild it on every VG change). */
  buildVolumeMap(lv: LvDescriptor, fdOf: (pvIndex: number) => number = (pvIndex) =>
    this.vg.device(pvIndex)?.fd ?? -1): VolumeMap {
    return { ...buildVolumeMap(this.vg, lv, { gateBytes: lv.copies > 1 ? this.ltgBytes : 0, fdOf,
      writeOnly: (lp, copyIndex) => this.writeThroughOf(lv.lvId, lp).has(copyIndex) }),
    dirtyChunkBytes: lv.copies > 1 ? this.bitmaps.chunkBytesOf(lv) : 0 }
  }
}

/** A copy of the map with the proposed additive field: `writeOnly` copies (stale targets of a
 * running resync) must be written like fresh ones and never read. Native code that does not know
 * the field sees them as stale (never touched), which is the pre-existing behaviour. */
export interface MirrorCopyTarget extends CopyTarget {
  readonly writeOnly: boolean
}

/** Builds the VolumeMap of an LV from the VG's current descriptor and status. A copy is stale in
 * the map when its PP is stale or its PV is not active (the native path never reads it). */
export function buildVolumeMap(vg: VolumeGroup, lv: LvDescriptor, options: {
  gateBytes?: number, readOnly?: boolean, fdOf?: (pvIndex: number) => number,
  writeOnly?: (lp: number, copyIndex: number) => boolean,
} = {}): VolumeMap {
  const fdOf = options.fdOf ?? ((pvIndex: number) => vg.device(pvIndex)?.fd ?? -1)
  const extents = lv.lps.map((copies, lp) => ({
    copies: copies.map((copy, copyIndex): MirrorCopyTarget => {
      const stale = !isCopyFresh(vg, copy)
      const writeOnly = stale && vg.pvState(copy.pvIndex) === 'active' && (options.writeOnly?.(lp, copyIndex) ?? false)
      // A stale copy may sit on an unreachable PV, whose PP offsets are unknown; it is never used.
      if (stale && !writeOnly) return { fd: -1, offsetBytes: 0, stale, writeOnly }
      return { fd: fdOf(copy.pvIndex), offsetBytes: vg.ppOffsetBytes(copy.pvIndex, copy.pp), stale, writeOnly }
    }),
  }))
  return {
    sizeBytes: lvSizeBytes(lv, vg.ppSizeBytes),
    extentBytes: vg.ppSizeBytes,
    extents,
    readPolicy: readPolicyOf(lv.schedule),
    writeSchedule: writeScheduleOf(lv.schedule),
    gateBytes: options.gateBytes ?? (lv.copies > 1 ? ltgBytesOf(vg.ppSizeBytes) : 0),
    readOnly: options.readOnly ?? false,
  }
}
