/**
 * lvmfs mirror engine: mirrored LV I/O, stale tracking, mirror write consistency, resync and
 * scrub on top of a varied-on VolumeGroup (see docs/mirror.md).
 *
 *   const engine = await MirrorEngine.start(vg, options)   // MWC recovery, cursors, dirty LVs
 *   engine.recovery                                          // what vary-on recovery did
 *   engine.startBackground()                                 // passive forced resync, auto_resync
 *   const lv = engine.open('lv0'); await lv.write(buf, off); await lv.flush(); await lv.close()
 *   await engine.resyncer().resynclp('lv0', 3, false)        // lvm_resynclp
 *   await engine.scrub('lv0', { repair: true })
 *   engine.buildVolumeMap(lv), engine.beforeWriteRegion(...), engine.onCopyError(...)  // native
 */
import type { LvDescriptor, VolumeGroup } from '../lvm/index.js'
import type { VolumeMap } from '../native/index.js'
import { LvmfsError } from '../errors/index.js'
import { MirroredLv, type OpenLvOptions } from './lv-engine.js'
import { MirrorVg, type CopyErrorDecision, type MirrorVgOptions } from './mirror-vg.js'
import { recoverMirrors, type MirrorRecoveryReport } from './recovery.js'
import { copyRange } from './region-copy.js'
import { sourceCopy, freshCopies } from './layout.js'
import { Resyncer, type ResyncOptions, type ResyncReport } from './resync.js'
import { IoMeter } from './resync-rate.js'
import { scrubLv, type ScrubOptions, type ScrubReport } from './scrub.js'

export { MirroredLv, type OpenLvOptions } from './lv-engine.js'
export { MirrorVg, buildVolumeMap, type CopyErrorDecision, type LpRange, type MirrorVgOptions, type MirrorLogger } from './mirror-vg.js'
export { Resyncer, DEFAULT_FILL_TARGET_REGIONS, type ResyncOptions, type ResyncProgress, type ResyncReport,
  type LpResyncResult } from './resync.js'
export { ResyncRateController, IoMeter, DEFAULT_MIN_RATE_BYTES_PER_SECOND, type ResyncRateOptions, type RateClock,
  type RateSnapshot } from './resync-rate.js'
export { setDirectCopyFds, type CopyMethod } from './region-copy.js'
export { addLvCopies, dropLvCopies, movePvOff, type MoveOptions, type MoveProgress, type MoveReport } from './copy-changes.js'
export { scrubLv, repairWinner, type ScrubReport, type ScrubMismatch, type ScrubOptions } from './scrub.js'
export type { MirrorRecoveryReport, LtgRecovery } from './recovery.js'
export { ltgBytesOf, DEFAULT_LTG_BYTES_MAX, DEFAULT_AL_EXTENTS, AIX_MWC_CACHE_LTGS, alExtentsCapacity } from './mwc.js'

export interface MirrorEngineOptions extends MirrorVgOptions {
  /** Options of the resyncs the engine starts itself (forced passive resync, auto_resync). */
  readonly resync?: ResyncOptions
}

/** What the daemon wires to the VolumeMap gate and copy-error events. */
export interface MirrorPolicy {
  beforeWriteRegion(lvName: string, regionIndex: number): Promise<void>
  afterWriteRegion(lvName: string, regionIndex: number): void
  onCopyError(lvName: string, lp: number, copyIndex: number, errno: number,
    isWrite: boolean): Promise<CopyErrorDecision>
}

export interface BackgroundReport {
  readonly forced: readonly ResyncReport[]
  readonly autoResync: ResyncReport | undefined
}

export class MirrorEngine {
  readonly mirror: MirrorVg
  readonly recovery: MirrorRecoveryReport
  /** Application I/O of this VG (in-process LV reads and writes; a daemon adds its native
   * path's counters): the load signal of every resync this engine runs. */
  readonly appIo: IoMeter
  readonly #resyncer: Resyncer
  readonly #options: MirrorEngineOptions
  readonly #writers = new Map<number, number>()
  #background: Promise<BackgroundReport> | undefined

  private constructor(mirror: MirrorVg, resyncer: Resyncer, recovery: MirrorRecoveryReport,
    options: MirrorEngineOptions, appIo: IoMeter) {
    this.mirror = mirror
    this.appIo = appIo
    this.#resyncer = resyncer
    this.recovery = recovery
    this.#options = options
  }

  /** Runs mirror recovery for a freshly varied-on VG (MWC replay, cursors, dirty LVs). */
  static async start(vg: VolumeGroup, options: MirrorEngineOptions = {}): Promise<MirrorEngine> {
    const mirror = new MirrorVg(vg, options)
    const appIo = new IoMeter()
    const resyncer = new Resyncer(mirror, { appIo: () => appIo.count(), ...options.resync })
    const recovery = await recoverMirrors(mirror, resyncer)
    return new MirrorEngine(mirror, resyncer, recovery, options, appIo)
  }

  get vg(): VolumeGroup {
    return this.mirror.vg
  }

  /** The resyncer whose cursors came from vary-on; pass options for a rate or progress. */
  resyncer(options?: ResyncOptions): Resyncer {
    if (options === undefined) return this.#resyncer
    // Cursors, write-through targets and running LPs live in the MirrorVg: shared by resyncers.
    return new Resyncer(this.mirror, { appIo: () => this.appIo.count(), ...options })
  }

  /**
   * Background work after vary-on: a forced resync of every crashed passive-MWC LV, then (when
   * the VG was varied on with auto_resync) a resync of every stale partition. Resolves with
   * what was done; errors of single LPs are in the reports, not thrown.
   */
  startBackground(): Promise<BackgroundReport> {
    this.#background ??= (async () => {
      const forced: ResyncReport[] = []
      for (const name of this.recovery.forcedResync) {
        const lv = this.vg.lvByName(name)
        if (lv === undefined) continue
        forced.push(await this.#resyncer.resynclv(name, true))
        await this.#afterForced(lv)
      }
      const autoResync = this.vg.autoResync ? await this.#resyncer.syncvg() : undefined
      return { forced, autoResync }
    })()
    return this.#background
  }

  async #afterForced(lv: LvDescriptor): Promise<void> {
    if (this.mirror.forcedPending(lv.lvId)) return
    if ((this.#writers.get(lv.lvId) ?? 0) === 0) await this.mirror.clearLvDirty(lv)
  }

  /** Forced resync of a whole LV (resync --force): clears the crash dirty flag when complete. */
  async forcedResync(lvName: string, options?: ResyncOptions): Promise<ResyncReport> {
    const lv = this.mirror.lv(lvName)
    const report = await this.resyncer(options).resynclv(lvName, true)
    if (report.failed.length === 0) {
      this.mirror.clearForcedPending(lv.lvId)
      await this.#afterForced(lv)
    }
    return report
  }

  open(lvName: string, options: Omit<OpenLvOptions, 'syncRegionForRead'> = {}): MirroredLv {
    this.mirror.assertOnline()
    if (this.vg.noOpenLvs) {
      throw new LvmfsError('ENGINE_BUSY', `volume group "${this.vg.name}" was varied on with noopen_lvs`)
    }
    const lv = this.mirror.lv(lvName)
    const readOnly = options.readOnly ?? false
    if (!readOnly) this.#writers.set(lv.lvId, (this.#writers.get(lv.lvId) ?? 0) + 1)
    const handle = new MirroredLv(this.mirror, lv, {
      readOnly,
      onIo: () => this.appIo.note(),
      ...(lv.mwc === 'passive' ? { syncRegionForRead: (target: LvDescriptor, region: number) =>
        this.syncRegionForRead(target, region) } : {}),
      onClose: () => {
        if (!readOnly) this.#writers.set(lv.lvId, (this.#writers.get(lv.lvId) ?? 1) - 1)
        return (this.#writers.get(lv.lvId) ?? 0) === 0
      },
    })
    return handle
  }

  /** Passive MWC resync on read: copy one region from the source to every other fresh copy. */
  async syncRegionForRead(lv: LvDescriptor, region: number): Promise<void> {
    const release = await this.mirror.lockRegionExclusive(lv.lvId, region)
    try {
      if (!this.mirror.isRegionPending(lv.lvId, region)) return
      const lp = Math.floor(region / this.mirror.regionsPerLp())
      const source = sourceCopy(this.vg, lv, lp)
      if (source === undefined) return
      const targets = freshCopies(this.vg, lv, lp).filter((index) => index !== source)
      const offsetInLpBytes = (region % this.mirror.regionsPerLp()) * this.mirror.ltgBytes
      const outcome = await copyRange(this.vg, lv, { lp, offsetInLpBytes, lengthBytes: this.mirror.ltgBytes,
        source, targets }, Buffer.alloc(this.mirror.ltgBytes))
      for (const target of outcome.failedTargets) await this.mirror.onCopyError(lv, lp, target, 5, true)
      this.mirror.noteRegionSynced(lv.lvId, region)
    } finally {
      release()
    }
  }

  async scrub(lvName: string, options?: ScrubOptions): Promise<ScrubReport> {
    return await scrubLv(this.mirror, lvName, options)
  }

  buildVolumeMap(lvName: string): VolumeMap {
    return this.mirror.buildVolumeMap(this.mirror.lv(lvName))
  }

  /** Native gate callback (see MirrorVg.beforeWriteRegion). */
  async beforeWriteRegion(lvName: string, regionIndex: number): Promise<void> {
    await this.mirror.beforeWriteRegion(this.mirror.lv(lvName), regionIndex)
  }

  /** Native gate closed for `regionIndex`: the LTG may leave the MWC cache again. */
  afterWriteRegion(lvName: string, regionIndex: number): void {
    this.mirror.afterWriteRegion(this.mirror.lv(lvName), regionIndex)
  }

  /** The two callbacks of the native data path, bound to this engine (see docs/mirror.md). */
  get policy(): MirrorPolicy {
    return {
      beforeWriteRegion: (lvName, regionIndex) => this.beforeWriteRegion(lvName, regionIndex),
      afterWriteRegion: (lvName, regionIndex) => this.afterWriteRegion(lvName, regionIndex),
      onCopyError: (lvName, lp, copyIndex, errno, isWrite) => this.onCopyError(lvName, lp, copyIndex, errno, isWrite),
    }
  }

  /** Native copy-error callback (see MirrorVg.onCopyError). */
  async onCopyError(lvName: string, lp: number, copyIndex: number, errno: number,
    isWrite: boolean): Promise<CopyErrorDecision> {
    return await this.mirror.onCopyError(this.mirror.lv(lvName), lp, copyIndex, errno, isWrite)
  }

  /** Waits for background work, then writes a clean MWC record (no LTG in flight). */
  async stop(): Promise<void> {
    await this.#background?.catch(() => undefined)
    if (this.vg.state === 'online') await this.mirror.mwc.writeClean()
  }

  get options(): MirrorEngineOptions {
    return this.#options
  }
}
export { ChecksumNarrower, DEFAULT_CHECKSUM_BLOCK_BYTES } from './checksum-diff.js'
