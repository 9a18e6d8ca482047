/**
 * A volume group varied on and served through FUSE: owns the VolumeGroup, the MirrorEngine,
 * the FUSE session, the native data path's backing fds and the write gates, and keeps the
 * native volume maps in step with the descriptor and status areas.
 *
 * Invariants:
 *  - every LV of the descriptor is mapped natively (unless the VG is forced off), with every
 *    stale copy or copy on a non-active PV excluded; the map is rebuilt after each VG commit;
 *  - a write that failed on a copy is acknowledged only after that copy is stale in a majority
 *    of status areas (MirrorEngine.onCopyError) or is failed with EIO when no copy holds it;
 *  - a forced-off VG serves no data: maps are removed and every READ/WRITE answers EIO.
 */
import { promisify } from 'node:util'
import { fdatasync as fdatasyncCb } from 'node:fs'
import { LvmfsError, isLvmfsError } from '../errors/index.js'
import {
  FUSE_ROOT_ID, FuseSession, type FuseTransport, type Logger, type ReadErrorEvent, type ThinMiss, type TransportState,
  type VolumePolicy, type WriteErrorEvent,
} from '../fuse/index.js'
import { absoluteDevicePath, FaultyDevice, openDevice, type BlockDevice, type OpenOptions } from '../io/index.js'
import {
  OnlineVgRegistry, varyOnVg, FileDescriptorBackup, isThinLv, isThinPool, resolveBackupDir, thinOf, thinPoolOf,
  type LvDescriptor, type MwcPolicy,
  type VaryOnFlags, type VaryOnResult, type VolumeGroup, type VvgIn,
} from '../lvm/index.js'
import { MirrorEngine, setDirectCopyFds } from '../mirror/index.js'
import { THIN_ENTRY_UNMAPPED, thinEntry } from '../native/index.js'
import { gateControlFrom, ReplicationEngine, type StepEvent } from '../replication/index.js'
import { dataStartBytes, type ThinPoolObserver } from '../thin/index.js'
import { BackingFds, type ByteRange, type FaultMode } from './backing-fds.js'
import { BlockDevices, isPlainMap, removeDeadLinks } from './block-devices.js'
import { GateKeeper } from './gate-keeper.js'
import { ActivityMap } from './events.js'
import { ReplicaVgs, replicaRetryMs } from './replica-vgs.js'
import { thinPoolsOf, type ThinPools } from './thin-pools.js'
import { snapshotForReplication } from './thin-verbs.js'
import { nodeidOf, VolumeFileSystem, type VolumeHost, type VolumeIoHandler } from './volume-fs.js'

const syncFd = promisify(fdatasyncCb)
/** Open gates of a volume whose writes replication tracks (its catch-ups were built and
 * measured with this bound; see beforeWriteRegion). */
const REPLICATION_GATE_BOUND = 64

export interface MountedVgOptions {
  readonly vgName: string
  readonly mountpoint: string
  readonly devices: readonly string[]
  readonly vvgIn?: readonly VvgIn[]
  readonly flags: VaryOnFlags
  readonly log: Logger & { info(object: object, message: string): void }
  readonly threads?: number
  /** A write held by the gate or write-error policy that long fails with EIO (default 30 s). */
  readonly policyTimeoutMs?: number
  /** O_DIRECT backing I/O for volume data (default true). */
  readonly directBacking?: boolean
  /** Open write gates kept at most per volume (default: the LV's al-extents). */
  readonly maxOpenGates?: number
  /** Active extents of every LV, overriding the descriptors (tests, benchmarks). */
  readonly alExtents?: number
  /** Shared VG (shared-mount.ts): vary on without the exclusive claim and serve some LVs only. */
  readonly shared?: SharedVgHooks
  /** A loop device per linear LV, its I/O off the daemon (block-devices.ts); not in shared VGs. */
  readonly blockDevices?: boolean
  /** The FUSE transport asked for (default /dev/fuse; 'uring' falls back to it when refused). */
  readonly transport?: FuseTransport
  /** How often a replica VG that is not online is varied on again (default LVMFS_REPLICA_RETRY_MS, else 5 s). */
  readonly replicaRetryMs?: number
}

export interface SharedVgHooks {
  /** After the shared vary-on, before mirror recovery: takes the DLM locks (throws to abort). */
  afterVaryOn(vg: VolumeGroup): Promise<void>
  /** Whether this process serves `lv` (holds its LV lock). */
  serves(lv: LvDescriptor): boolean
  /** Throws when `lv` may not be opened so (e.g. served read-only). */
  checkOpen(lv: LvDescriptor, writable: boolean): void
  /** Registers what to do when an LV lock is lost (lease lapsed, broker lost it): stop writing. */
  onFence(handler: (error: Error) => void): void
  /** Whether this process serves `lv` read-write: it then runs the replication of `lv`. */
  servesWritable(lv: LvDescriptor): boolean
  /** replicate made `lv` for a source served here: take its LV lock (it is then served here). */
  claimCreated(vg: VolumeGroup, lv: LvDescriptor): Promise<void>
  /** Where the value block of a replica lock comes from at release: its last superblock. */
  setMarkSource(markOf: (lv: LvDescriptor) => { seq: number, lwm: number } | undefined): void
}

/** Where a fault applies: a PV byte range (`lengthBytes` default: to the end of the PV), or the
 * PPs on the PV of some LPs of an LV (default: every LP of it with a copy there). */
export type FaultTarget =
  | { readonly offsetBytes: number; readonly lengthBytes?: number }
  | { readonly lv: string; readonly lps?: readonly number[] }

export interface FaultReport {
  readonly path: string
  readonly mode: FaultMode
  /** The PV byte ranges faulted by this call (the whole PV without a target; none for 'clear'). */
  readonly ranges: readonly ByteRange[]
}

interface Served {
  name: string
  sizeBytes: number
  gateBytes: number
  /** The MWC policy the LV's open gates were opened under. */
  mwc: MwcPolicy
  readOnly: boolean
  /** The native path does plain I/O for it (isPlainMap): a block device may serve it too. */
  plain: boolean
}

export class MountedVg implements VolumeHost {
  readonly faulty = new Map<string, FaultyDevice>()
  readonly openCounts = new Map<number, { readers: number; writers: number }>()
  /** Resyncs, syncvg and scrubs running against this mount, for lvmfs status (and events.ts). */
  readonly activities = new ActivityMap()
  /** Failed copy I/Os of the native data path by PV id, since the mount (metrics.ts). */
  readonly pvIoErrors = new Map<string, number>()
  private readonly backing: BackingFds
  private readonly gates: GateKeeper
  private readonly served = new Map<number, Served>()
  /** Thin LVs with a native map, by nodeid: the pool LV and thin device their table follows. */
  private readonly thinServed = new Map<number, { poolLvId: number, thinId: number }>()
  private session: FuseSession | undefined

  /** The transport serving the mount (undefined before it is mounted). */
  get transport(): TransportState | undefined {
    return this.session?.transport
  }
  /** Loop devices of linear LVs (mount --block-devices), undefined when off. */
  readonly blockDevices: BlockDevices | undefined
  private forcedOff = false
  private pvStates: string[] = []
  private refreshing: Promise<void> = Promise.resolve()

  readonly replication: ReplicationEngine
  /** Other VGs held online for replication: pools of the replicas of this VG's sources. */
  readonly replicaVgs: ReplicaVgs | undefined
  /** Thin pools of this VG; their thin LVs are served in TypeScript (volumeIo). */
  readonly thin: ThinPools
  /** The VGs this daemon has online: its own, so a forwarded varyonvg is a second vary-on. */
  readonly registry: OnlineVgRegistry

  private constructor(readonly vg: VolumeGroup, readonly engine: MirrorEngine,
    readonly varyOn: VaryOnResult, private readonly options: MountedVgOptions, registry: OnlineVgRegistry) {
    this.registry = registry
    this.thin = thinPoolsOf(engine, (error, pool) => options.log.error({ err: error, pool }, 'thin pool operation failed'),
      (event, pool, detail) => options.log.warn({ ...detail, pool }, `thin pool ${event}`))
    this.thin.setObserverFactory((poolLv) => this.thinObserver(poolLv))
    this.backing = new BackingFds(options.directBacking ?? true)
    if (options.blockDevices === true && options.shared === undefined && vg.addCommitGuard !== undefined) {
      const devices = new BlockDevices({ vg, log: options.log, pvPath: (pvIndex) => vg.device(pvIndex)?.path })
      vg.addCommitGuard((next) => devices.commitGuard(next))
      this.blockDevices = devices
    }
    // Replication drives the mount through the same two mechanisms as mirroring: the maps it
    // builds (clones point shared partitions at their origin) and the write gates it closes.
    const shared = options.shared
    this.replication = new ReplicationEngine([engine], { thinClone: snapshotForReplication, ...testStepDelay(),
      ...(shared === undefined ? {} : {
        servesSource: (vgName: string, source: LvDescriptor) => vgName === vg.name && shared.servesWritable(source),
        afterCreate: async (vgName: string, target: LvDescriptor) => {
          if (vgName !== vg.name) return
          await shared.claimCreated(vg, target)
          await this.refresh()
        },
      }),
      gates: gateControlFrom({
      // Only this VG's volumes are served: a replica VG's have no nodeid and no gates.
      nodeidOf: (vgName, lvName) => {
        const lv = vgName === this.vg.name ? this.vg.lvByName(lvName) : undefined
        return lv === undefined ? undefined : nodeidOf(lv)
      },
      gateBytesOf: (vgName, lvName) => {
        const lv = vgName === this.vg.name ? this.vg.lvByName(lvName) : undefined
        return lv === undefined ? 0 : this.served.get(nodeidOf(lv))?.gateBytes ?? 0
      },
      ppSizeBytesOf: () => this.vg.ppSizeBytes,
      closeGate: async (nodeid, region) => {
        await this.revokeBlockDevice(nodeid, 'replication')
        await this.gates.closeGate(nodeid, region)
      },
      closeVolume: async (nodeid) => {
        await this.revokeBlockDevice(nodeid, 'replication')
        await this.gates.closeVolume(nodeid)
      },
      quiesce: async (nodeid, step) => {
        await this.revokeBlockDevice(nodeid, 'replication')
        await this.gates.quiesce(nodeid, step)
      },
      refresh: () => this.refresh(),
    }) })
    shared?.setMarkSource((lv) => this.replication.lastSuperblock(vg.name, lv.name))
    this.replicaVgs = options.shared !== undefined ? undefined : new ReplicaVgs({ vg, replication: this.replication,
      devices: options.devices, log: options.log, onChange: () => { void this.refresh() },
      retryMs: options.replicaRetryMs ?? replicaRetryMs() })
    this.gates = new GateKeeper({
      setGate: (nodeid, region, open) => this.session?.setGate(nodeid, region, open),
      drainWrites: async (nodeid) => { await this.session?.drainWrites(nodeid) },
      pin: (nodeid, region) => this.beforeWriteRegion(nodeid, region),
      unpin: (nodeid, region) => {
        const lv = this.vg.descriptor.lvs.find((candidate) => nodeidOf(candidate) === nodeid)
        if (lv && this.mirrorGated(lv)) this.engine.afterWriteRegion(lv.name, region)
      },
    }, options.maxOpenGates)
  }

  /** Varies the VG on, runs mirror recovery and mounts every LV. */
  static async start(options: MountedVgOptions): Promise<MountedVg> {
    const faulty = new Map<string, FaultyDevice>()
    const opener = async (path: string, openOptions: OpenOptions): Promise<BlockDevice> => {
      const device = new FaultyDevice(await openDevice(path, openOptions))
      if (openOptions.readOnly !== true) faulty.set(path, device)
      return device
    }
    const registry = new OnlineVgRegistry()
    const result = await varyOnVg({ vgName: options.vgName, devices: [...options.devices],
      ...(options.vvgIn ? { vvgIn: options.vvgIn } : {}), flags: options.flags, opener, registry,
      backup: new FileDescriptorBackup(resolveBackupDir(), (message) => options.log.warn({}, message)),
      ...(options.shared ? { shared: true } : {}) })
    if (result.vg === undefined) {
      throw result.error ?? new LvmfsError('LVM_NOQUORUM', `cannot vary on "${options.vgName}"`)
    }
    const vg = result.vg
    try {
      await options.shared?.afterVaryOn(vg)
      // Each LV's activity log holds its al-extents (1237 by default, DRBD's figure), so a random
      // writer over a few GiB stops logging once every extent it uses is in the log.
      const engine = await MirrorEngine.start(vg, { logger: options.log,
        ...(options.alExtents === undefined ? {} : { mwcCacheLtgs: options.alExtents }) })
      const mounted = new MountedVg(vg, engine, result, options, registry)
      options.shared?.onFence((error) => mounted.selfFence(error))
      for (const [path, device] of faulty) mounted.faulty.set(path, device)
      await mounted.mount()
      return mounted
    } catch (error) {
      await vg.varyOff().catch(() => undefined)
      throw error
    }
  }

  private async mount(): Promise<void> {
    const policy: VolumePolicy = {
      onGate: (nodeid, region) => this.gates.openGate(nodeid, region),
      onThinMiss: (nodeid, miss) => this.onThinMiss(nodeid, miss),
      onWriteError: (event) => this.onWriteError(event),
      onReadError: (event) => { void this.onReadError(event) },
      describe: (nodeid) => this.served.get(nodeid)?.name,
    }
    this.session = await FuseSession.mount(new VolumeFileSystem(this), {
      mountpoint: this.options.mountpoint, fsname: `lvmfs:${this.vg.name}`, subtype: 'lvmfs',
      threads: this.options.threads ?? 32, log: this.options.log, policy,
      ...(this.options.transport === undefined ? {} : { transport: this.options.transport }),
      ...(this.options.policyTimeoutMs === undefined ? {} : { policyTimeoutMs: this.options.policyTimeoutMs }) })
    this.pvStates = this.vg.descriptor.pvs.map((_pv, index) => this.vg.pvState(index))
    this.mapAll()
    if (this.blockDevices) {
      removeDeadLinks(this.vg.name)
      await this.reconcileBlockDevices()
    }
    this.vg.onChange(() => { void this.refresh() })
    // Aligned native copies (resync, MWC recovery, scrub repair) use the O_DIRECT backing fds.
    setDirectCopyFds(this.vg, (pvIndex) => this.forcedOff ? undefined : this.fdOf(pvIndex))
    // The resync controller's load signal: every request the native data path served.
    this.engine.appIo.addSource(() => {
      const stats = this.session?.stats()
      return stats === undefined ? 0 : stats.readOps + stats.writeOps + stats.fsyncOps + stats.fallocateOps
    })
    // Resync and scrub take a region exclusive: close its native gate and drain the writes
    // already admitted, so a copy never races a native write.
    this.engine.mirror.setExclusiveHook(async (lvId, region) => {
      const lv = this.vg.lvById(lvId)
      if (!lv) return
      await this.blockDevices?.revoke(lvId, 'taking the LV\'s partitions exclusive (pvmove, resync, scrub)')
      await this.gates.closeGate(nodeidOf(lv), region)
    })
    this.engine.mirror.setDirtyCollector(() => this.collectDirtyChunks())
    // A resync target becomes (or stops being) written through: remap that LV at once, before
    // the resync copies its first region.
    this.engine.mirror.onWriteThroughChange((lvId) => {
      const lv = this.vg.lvById(lvId)
      if (lv && !this.forcedOff) this.mapLv(lv)
    })
    this.vg.onForceOff((error) => this.onForceOff(error))
    await this.replication.startBackground()
    this.replicaVgs?.start()
    void this.engine.startBackground().then((report) => {
      this.options.log.info({ forced: report.forced.length, autoResync: report.autoResync !== undefined },
        'background resync finished')
    }, (error: unknown) => this.options.log.error({ err: error }, 'background resync failed'))
  }

  get openGates(): number {
    return this.gates.openCount
  }

  get mountpoint(): string {
    return this.options.mountpoint
  }

  get closed(): Promise<number> {
    return this.session?.closed ?? Promise.resolve(0)
  }

  stats(): ReturnType<FuseSession['stats']> | undefined {
    return this.session?.stats()
  }

  /** The native data path's counters and latency buckets of `lv` (metrics.ts). */
  volumeStats(lv: LvDescriptor): ReturnType<FuseSession['volumeStats']> {
    return this.session?.volumeStats(nodeidOf(lv))
  }

  // --- VolumeHost -----------------------------------------------------------------------------

  lvs(): readonly LvDescriptor[] {
    if (this.vg.state !== 'online' && !this.forcedOff) return []
    const shared = this.options.shared
    // A deactivated LV (lvchange --activate n) is not served: no file, no map. A thin pool is
    // not served either: its bytes are its thin LVs' metadata and data.
    return this.vg.descriptor.lvs.filter((lv) => lv.inactive !== true && !isThinPool(lv) &&
      (shared === undefined || shared.serves(lv)))
  }

  lvSizeBytes(lv: LvDescriptor): number {
    const thin = thinOf(lv)
    if (thin !== undefined) return thin.virtualBytes
    return this.replication.volumeSizeBytes(this.vg.name, lv.name)
  }

  volumeIo(lv: LvDescriptor): VolumeIoHandler | undefined {
    if (this.forcedOff || !isThinLv(lv)) return undefined
    const pools = this.thin
    return {
      read: async (target, offsetBytes) => {
        const { pool, thinId } = await pools.poolOfThin(lv)
        await pool.read(thinId, target, offsetBytes)
      },
      write: async (data, offsetBytes) => {
        const { pool, thinId } = await pools.poolOfThin(lv)
        await pool.write(thinId, data, offsetBytes)
      },
      discard: async (offsetBytes, lengthBytes) => {
        const { pool, thinId } = await pools.poolOfThin(lv)
        await pool.discard(thinId, offsetBytes, lengthBytes)
      },
    }
  }

  totalBytes(): number {
    return this.vg.descriptor.pvs.reduce((sum, pv) => sum + pv.ppCount, 0) * this.vg.ppSizeBytes
  }

  freeBytes(): number {
    const used = this.vg.descriptor.lvs.reduce((sum, lv) => sum + lv.lps.length * lv.copies, 0)
    return Math.max(0, this.totalBytes() - used * this.vg.ppSizeBytes)
  }

  checkOpen(lv: LvDescriptor, writable: boolean): void {
    this.options.shared?.checkOpen(lv, writable)
    this.replication.assertOpenable(this.vg.name, lv.name, writable)
    if (this.forcedOff) throw new LvmfsError('LVM_FORCEOFF', `volume group "${this.vg.name}" was forced off`)
    if (writable && lv.readOnly === true) {
      throw new LvmfsError('LVM_LVREADONLY', `logical volume "${lv.name}" is read-only (lvchange --permission r)`)
    }
    if (this.vg.noOpenLvs) {
      throw new LvmfsError('ENGINE_BUSY', `"${lv.name}": volume group "${this.vg.name}" was varied on with --no-open`)
    }
  }

  opened(lv: LvDescriptor, writable: boolean): void {
    const counts = this.openCounts.get(lv.lvId) ?? { readers: 0, writers: 0 }
    if (writable) counts.writers++
    else counts.readers++
    this.openCounts.set(lv.lvId, counts)
  }

  async released(lv: LvDescriptor, writable: boolean): Promise<void> {
    const counts = this.openCounts.get(lv.lvId)
    if (!counts) return
    if (writable) counts.writers--
    else counts.readers--
    if (counts.readers + counts.writers === 0) this.openCounts.delete(lv.lvId)
    // Passive MWC: the last writer's clean close clears the LV's dirty flag, once every write it
    // made is durable and no gate lets a new write in unannounced.
    if (writable && counts.writers === 0 && lv.mwc === 'passive' && lv.copies > 1 &&
        this.vg.status.dirtyLvs.includes(lv.lvId)) {
      await this.gates.closeVolume(nodeidOf(lv))
      await this.syncAll()
      await this.vg.setLvDirty(lv.lvId, false)
    }
  }

  async fsync(lv: LvDescriptor, _dataOnly: boolean): Promise<void> {
    // A thin LV's fsync is its pool's commit: data, then the mappings that point at it.
    if (isThinLv(lv)) return (await this.thin.poolOfThin(lv)).pool.commit()
    await this.syncAll()
  }

  private async syncAll(): Promise<void> {
    // A remote PV has no fd among the backing fds: its sync is the device's (NBD FLUSH).
    const remote = this.vg.descriptor.pvs.map((_pv, index) => this.vg.device(index))
      .filter((device): device is BlockDevice => device?.kind === 'remote')
    await Promise.all([...this.backing.allFds().map((fd) => syncFd(fd)), ...remote.map((device) => device.sync())])
  }

  /** The mirror engine's gate units are its LTGs; a map gated otherwise is replication's alone. */
  private mirrorGated(lv: LvDescriptor): boolean {
    return lv.copies > 1 && this.served.get(nodeidOf(lv))?.gateBytes === this.engine.mirror.ltgBytes
  }

  /** Gate policy: MWC logging (mirrored LVs), then replication (copy-on-write, change tracking).
   * Answers the bound of the volume's open gates: its activity log's size when the gate pins an
   * entry there (every open gate holds one), replication's when replication tracks the
   * volume's writes (its catch-ups were built and measured with bounded gates), the smaller of
   * the two when both; undefined (unbounded) for a mirror with MWC off or passive and no
   * replication. */
  private async beforeWriteRegion(nodeid: number, region: number): Promise<number | undefined> {
    const lv = this.lvByNode(nodeid)
    const mirrored = this.mirrorGated(lv)
    if (mirrored) await this.engine.beforeWriteRegion(lv.name, region)
    try {
      await this.replication.beforeWriteRegion(this.vg.name, lv.name, region, this.served.get(nodeid)?.gateBytes ?? 0)
    } catch (error) {
      if (mirrored) this.engine.afterWriteRegion(lv.name, region)
      throw error
    }
    const bounds: number[] = []
    if (mirrored && lv.mwc === 'active') bounds.push(this.engine.mirror.mwc.alExtentsOf(lv))
    if (this.replication.gatesWrites(this.vg.name, lv.name)) bounds.push(REPLICATION_GATE_BOUND)
    return bounds.length === 0 ? undefined : Math.min(...bounds)
  }

  // --- native maps ----------------------------------------------------------------------------

  /** Moves the write-intent marks native writes made into the mirror engine's bitmaps. */
  private collectDirtyChunks(): void {
    if (!this.session) return
    for (const nodeid of this.served.keys()) {
      const taken = this.session.takeDirtyChunks(nodeid)
      if (taken === undefined || taken.chunks.length === 0) continue
      const lv = this.vg.descriptor.lvs.find((candidate) => nodeidOf(candidate) === nodeid)
      if (lv !== undefined) this.engine.mirror.bitmaps.markChunks(lv, taken.chunkBytes, taken.chunks)
    }
  }

  private lvByNode(nodeid: number): LvDescriptor {
    const lv = this.vg.descriptor.lvs.find((candidate) => nodeidOf(candidate) === nodeid)
    if (!lv) throw new LvmfsError('ENGINE_NOT_FOUND', `no logical volume with nodeid ${nodeid}`)
    return lv
  }

  private fdOf(pvIndex: number): number {
    return this.fdOfVg(this.vg.name, pvIndex)
  }

  /** The backing fd of PV `pvIndex` of this VG or of a replica VG (a synchronous mirror target's
   * copies in another VG are written natively beside the source's). */
  private fdOfVg(vgName: string, pvIndex: number): number {
    const vg = vgName === this.vg.name ? this.vg : this.replicaVgs?.vg(vgName)
    const device = vg?.device(pvIndex)
    if (device?.dataToken !== undefined) this.backing.registerRemote(device.path, device.dataToken)
    return device === undefined ? -1 : this.backing.fdFor(device.path)
  }

  private mapAll(): void {
    if (!this.session || this.forcedOff) return
    for (const lv of this.lvs()) this.mapLv(lv)
  }

  private mapLv(lv: LvDescriptor): void {
    if (isThinPool(lv)) return
    if (isThinLv(lv)) return this.mapThinLv(lv)
    const built = this.replication.volumeMapOf(this.vg.name, lv.name, (vgName, pvIndex) => this.fdOfVg(vgName, pvIndex))
    // lvchange --permission r: native code answers writes to files already open with EROFS.
    const map = lv.readOnly === true ? { ...built, readOnly: true } : built
    this.session?.mapVolume(nodeidOf(lv), map)
    this.served.set(nodeidOf(lv), { name: lv.name, sizeBytes: map.sizeBytes, gateBytes: map.gateBytes, mwc: lv.mwc,
      // A remote PV's token fd cannot back a loop device: no block device for LVs on one.
      readOnly: map.readOnly, plain: isPlainMap(map) && !onRemotePv(this.vg, lv) })
  }

  /**
   * A thin LV's native map is its pool's extents plus a block table native code fills through
   * thin misses (onThinMiss); writes run natively only on an unmirrored, all-fresh pool (a
   * mirrored pool's writes need its activity log and bitmap, which TypeScript keeps).
   */
  private mapThinLv(lv: LvDescriptor): void {
    const thin = thinOf(lv)!
    const poolLv = this.vg.lvById(thin.poolLvId)
    const format = poolLv === undefined ? undefined : thinPoolOf(poolLv)
    if (poolLv === undefined || format === undefined) return
    const poolMap = this.replication.volumeMapOf(this.vg.name, poolLv.name,
      (vgName, pvIndex) => this.fdOfVg(vgName, pvIndex))
    const nativeWrites = poolLv.copies === 1 &&
      poolMap.extents.every((e) => e.copies.length === 1 && !e.copies[0]!.stale)
    const map = { ...poolMap, gateBytes: 0, readOnly: lv.readOnly === true || poolMap.readOnly,
      dirtyChunkBytes: 0, thin: { virtualBytes: thin.virtualBytes, chunkBytes: format.chunkBytes,
        dataStartBytes: dataStartBytes(format), nativeWrites } }
    this.session?.mapVolume(nodeidOf(lv), map)
    this.thinServed.set(nodeidOf(lv), { poolLvId: thin.poolLvId, thinId: thin.thinId })
    this.served.set(nodeidOf(lv), { name: lv.name, sizeBytes: thin.virtualBytes, gateBytes: 0, mwc: lv.mwc,
      readOnly: map.readOnly, plain: false })
  }

  private async onThinMiss(nodeid: number, miss: ThinMiss): Promise<void> {
    const lv = this.lvByNode(nodeid)
    const { pool, thinId } = await this.thin.poolOfThin(lv)
    if (!miss.write) return pool.publish(thinId, miss.block)
    const last = miss.block + miss.blocks - 1
    const poolLv = this.vg.lvById(thinOf(lv)!.poolLvId)
    const provision = (): Promise<void> => pool.provision(thinId, miss.block, miss.blocks,
      (block) => (block === miss.block ? miss.firstWhole : block === last ? miss.lastWhole : true))
    // A full pool holds the write for its queue time (--queue-when-full), for autoextend, an
    // lvextend or discards to make room; then, or at once by default, ENOSPC.
    const deadline = Date.now() + (poolLv === undefined ? 0 : thinPoolOf(poolLv)?.fullQueueSeconds ?? 0) * 1000
    for (;;) {
      try {
        await provision()
        break
      } catch (error) {
        if (!isLvmfsError(error, 'THIN_POOL_FULL') || Date.now() >= deadline) throw error
        if (poolLv !== undefined) void this.thin.autoextend(this.vg.lvById(poolLv.lvId) ?? poolLv)
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    }
    if (poolLv !== undefined) void this.thin.autoextend(poolLv)
  }

  /** The native tables a pool's mapping changes go to. */
  private thinObserver(poolLv: LvDescriptor): ThinPoolObserver {
    const nodeidsOf = (thinIds: readonly number[]): number[] => [...this.thinServed]
      .filter(([, t]) => t.poolLvId === poolLv.lvId && thinIds.includes(t.thinId)).map(([nodeid]) => nodeid)
    const all = (): number[] => [...this.thinServed].filter(([, t]) => t.poolLvId === poolLv.lvId)
      .map(([nodeid]) => nodeid)
    return {
      remapped: (thinId, block, mapping, writable) => {
        for (const nodeid of nodeidsOf([thinId])) {
          const entry = mapping === undefined ? THIN_ENTRY_UNMAPPED : thinEntry(mapping.dataBlock, writable)
          this.session?.thinSet(nodeid, block, entry)
        }
      },
      quiesce: async (thinIds, mode) => {
        for (const nodeid of nodeidsOf(thinIds)) {
          if (mode === 'share') this.session?.thinClearWritable(nodeid)
          else this.session?.thinReset(nodeid)
          await this.session?.drainWrites(nodeid)
        }
      },
      drain: async () => {
        for (const nodeid of all()) await this.session?.drainWrites(nodeid)
      },
    }
  }

  /** Attaches, grows, renames or releases the block devices of the served LVs after a remap. */
  private async reconcileBlockDevices(): Promise<void> {
    const devices = this.blockDevices
    if (!devices || this.forcedOff) return
    const lvs = this.lvs()
    await devices.forget(new Set(lvs.map((lv) => lv.lvId)))
    for (const lv of lvs) await devices.reconcile(lv, this.served.get(nodeidOf(lv))?.plain === true)
  }

  /** Before anything that must see the LV's writes: its block device goes, or the step is refused. */
  private async revokeBlockDevice(nodeid: number, operation: string): Promise<void> {
    const lv = this.vg.descriptor.lvs.find((candidate) => nodeidOf(candidate) === nodeid)
    if (lv !== undefined) await this.blockDevices?.revoke(lv.lvId, operation)
  }

  /** Re-maps every LV after a VG change and tells the kernel what vanished, moved or grew. */
  refresh(): Promise<void> {
    // A failed refresh keeps the previous maps (which only ever name fresh copies) and is logged;
    // it must never take the daemon down.
    this.refreshing = this.refreshing.then(() => this.refreshNow()).catch((error: unknown) => {
      this.options.log.error({ err: error }, 'refreshing the native volume maps failed')
    })
    return this.refreshing
  }

  private async refreshNow(): Promise<void> {
    const session = this.session
    if (!session || this.forcedOff || this.vg.state !== 'online') return
    // A PV that stopped being active drops its copies from the maps, and open gates would then
    // let writes skip those copies without marking them stale. Close every gate first: the next
    // write into each region goes through the gate policy, which marks the absent copies stale.
    const pvStates = this.vg.descriptor.pvs.map((_pv, index) => this.vg.pvState(index))
    const lostPv = pvStates.some((state, index) => state !== 'active' && this.pvStates[index] === 'active')
    this.pvStates = pvStates
    if (lostPv) for (const nodeid of this.served.keys()) await this.gates.closeVolume(nodeid)
    // Gates opened under another MWC policy hold what that policy took (an activity-log pin, or
    // nothing where the new policy needs one): close them so every write passes the new policy.
    for (const [nodeid, served] of this.served) {
      const lv = this.vg.descriptor.lvs.find((candidate) => nodeidOf(candidate) === nodeid)
      if (!lostPv && lv !== undefined && lv.mwc !== served.mwc) await this.gates.closeVolume(nodeid)
    }
    const previous = new Map(this.served)
    this.served.clear()
    this.mapAll()
    const invalidations: Array<Promise<void>> = []
    for (const [nodeid, before] of previous) {
      const now = this.served.get(nodeid)
      if (!now) {
        session.unmapVolume(nodeid)
        this.thinServed.delete(nodeid)
        this.gates.forgetVolume(nodeid)
        invalidations.push(session.invalidateEntry(FUSE_ROOT_ID, before.name))
      } else if (now.name !== before.name) {
        invalidations.push(session.invalidateEntry(FUSE_ROOT_ID, before.name))
      }
      if (now && (now.sizeBytes !== before.sizeBytes || now.readOnly !== before.readOnly)) {
        invalidations.push(session.invalidateInode(nodeid, -1, 0))
      }
    }
    for (const [nodeid, now] of this.served) {
      if (!previous.has(nodeid)) invalidations.push(session.invalidateEntry(FUSE_ROOT_ID, now.name))
    }
    await Promise.all(invalidations)
    await this.reconcileBlockDevices()
  }

  // --- failure policy -------------------------------------------------------------------------

  /** Every failed (extent, copy) of a write, fallocate or fsync goes stale before the request is
   * answered; the request fails when some extent is left on no fresh copy. */
  private async onWriteError(event: WriteErrorEvent): Promise<number> {
    const lv = this.lvByNode(event.nodeid)
    let lost = event.lostExtents.length > 0
    for (const failure of event.failures) {
      this.countPvError(lv, failure.extent, failure.copy)
      if (failure.copy >= lv.copies) {
        // A synchronous mirror target: the write was not acknowledged by both sides.
        lost = true
        continue
      }
      // A failed sync may have lost any write since the last one on that copy, not only the
      // chunks native code marked: the whole partition goes in the write-intent bitmap.
      if (event.op === 'FSYNC') {
        this.engine.mirror.bitmaps.mark(lv, failure.extent * this.vg.ppSizeBytes, this.vg.ppSizeBytes)
      }
      const decision = await this.engine.onCopyError(lv.name, failure.extent, failure.copy, failure.errno, true)
      if (decision === 'fail') lost = true
    }
    await this.refresh()
    if (lost) {
      this.options.log.error({ lv: lv.name, op: event.op, failures: event.failures, lostExtents: event.lostExtents },
        `${event.op} failed on every copy of a partition: EIO`)
    }
    return lost ? 5 /* EIO */ : 0
  }

  private async onReadError(event: ReadErrorEvent): Promise<void> {
    try {
      const lv = this.lvByNode(event.nodeid)
      this.countPvError(lv, event.extent, event.copy)
      await this.engine.onCopyError(lv.name, event.extent, event.copy, event.errno, false)
      await this.refresh()
    } catch (error) {
      this.options.log.error({ err: error, ...event }, 'read error policy failed')
    }
  }

  private countPvError(lv: LvDescriptor, extent: number, copy: number): void {
    const pvIndex = lv.lps[extent]?.[copy]?.pvIndex
    const pvId = pvIndex === undefined ? undefined : this.vg.descriptor.pvs[pvIndex]?.pvId
    if (pvId !== undefined) this.pvIoErrors.set(pvId, (this.pvIoErrors.get(pvId) ?? 0) + 1)
  }

  private onForceOff(error: Error): void {
    this.stopServing(error, 'volume group forced off: quorum lost; all I/O now fails with EIO')
  }

  /**
   * A lock this shared mount serves LVs under is lost: another host may be granted it from now
   * on, so this process stops writing at once (self-fencing). The volumes are unmapped: new
   * requests answer EIO, and native writes already under way end with their transfer.
   */
  selfFence(error: Error): void {
    this.stopServing(error, 'self-fenced: a DLM lock of this shared mount is lost; all I/O now fails with EIO')
  }

  private stopServing(error: Error, message: string): void {
    if (this.forcedOff) return
    this.forcedOff = true
    this.options.log.error({ err: error }, message)
    for (const nodeid of this.served.keys()) this.session?.unmapVolume(nodeid)
    void this.blockDevices?.releaseAll('the force-off')
  }

  // --- control --------------------------------------------------------------------------------

  /**
   * Drills: make a PV fail writes, reads, everything, or its data syncs, on the whole PV or on
   * `target` only: a PV byte range, or the PPs an LV's LPs have on this PV. The fault applies to
   * the PV's metadata I/O (FaultyDevice) and to the native data path alike, except 'fail-fsync',
   * which fails the native data path's fsync of the PV only. Faults add up; 'clear' removes every
   * fault of the PV.
   */
  async setFault(pvName: string, mode: FaultMode, target?: FaultTarget): Promise<FaultReport> {
    const wanted = absoluteDevicePath(pvName)
    const path = [...this.faulty.keys()].find((candidate) => absoluteDevicePath(candidate) === wanted) ??
      this.vg.descriptor.pvs.find((pv) => pv.pvId === pvName)?.lastPath ?? pvName
    const device = this.faulty.get(path)
    if (!device) {
      throw new LvmfsError('ENGINE_NOT_FOUND', `no physical volume "${pvName}" in "${this.vg.name}"`, {
        detail: `Known: ${[...this.faulty.keys()].join(', ')}.` })
    }
    if (target !== undefined && (mode === 'clear' || mode === 'fail-fsync')) {
      const option = 'lv' in target ? '--lv' : '--offset'
      throw new LvmfsError('ENGINE_USAGE', `${option} does not apply to --${mode}`, {
        detail: mode === 'clear' ? '--clear removes every fault of the PV.'
          : '--fail-fsync fails every fsync of the PV\'s data, whatever the range.' })
    }
    // Faults act in lvmfs's own I/O paths: a block device's I/O would never meet them.
    const pvIndex = this.vg.descriptor.pvs.findIndex((_pv, index) => this.vg.device(index)?.path === path)
    if (mode !== 'clear' && pvIndex >= 0) await this.blockDevices?.revokeOnPv(pvIndex, 'a fault drill on its PV')
    if (mode === 'clear') {
      device.readErrorRanges = []
      device.writeErrorRanges = []
      this.backing.setFault(path, mode)
      return { path, mode, ranges: [] }
    }
    const ranges = target === undefined ? undefined : this.faultRanges(path, device.sizeBytes, target)
    const spans = (ranges ?? [{ offsetBytes: 0, lengthBytes: Number.MAX_SAFE_INTEGER }])
      .map((range) => [range.offsetBytes, range.offsetBytes + range.lengthBytes] as const)
    if (mode === 'fail-reads' || mode === 'disappear') device.readErrorRanges = [...device.readErrorRanges, ...spans]
    if (mode === 'fail-writes' || mode === 'disappear') device.writeErrorRanges = [...device.writeErrorRanges, ...spans]
    this.backing.setFault(path, mode, ranges)
    return { path, mode, ranges: ranges ?? [{ offsetBytes: 0, lengthBytes: device.sizeBytes }] }
  }

  /** The PV byte ranges `target` names on the PV at `path`, checked against the PV, sorted and
   * merged where adjacent. */
  private faultRanges(path: string, pvBytes: number, target: FaultTarget): ByteRange[] {
    if (!('lv' in target)) {
      const { offsetBytes } = target
      if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || offsetBytes >= pvBytes) {
        throw new LvmfsError('ENGINE_USAGE', `--offset ${offsetBytes} is outside PV "${path}"`, {
          detail: `The PV has ${pvBytes} bytes; --offset is a byte offset on the PV, from 0 to ${pvBytes - 1}.` })
      }
      const lengthBytes = target.lengthBytes ?? pvBytes - offsetBytes
      if (!Number.isSafeInteger(lengthBytes) || lengthBytes <= 0 || offsetBytes + lengthBytes > pvBytes) {
        throw new LvmfsError('ENGINE_USAGE', `--length ${lengthBytes} from --offset ${offsetBytes} runs past the end of ` +
          `PV "${path}"`, { detail: `The PV has ${pvBytes} bytes.` })
      }
      return [{ offsetBytes, lengthBytes }]
    }
    const lv = this.vg.lvByName(target.lv)
    if (lv === undefined) {
      throw new LvmfsError('ENGINE_NOT_FOUND', `--lv: no logical volume "${target.lv}" in "${this.vg.name}"`)
    }
    const pvIndex = this.vg.descriptor.pvs.findIndex((pv, index) =>
      this.vg.device(index)?.path === path || absoluteDevicePath(pv.lastPath) === absoluteDevicePath(path))
    const lps = target.lps ?? lv.lps.map((_copies, lp) => lp)
    const ranges: ByteRange[] = []
    for (const lp of lps) {
      const copies = lv.lps[lp]
      if (!Number.isSafeInteger(lp) || copies === undefined) {
        throw new LvmfsError('ENGINE_USAGE', `--lp ${lp} is outside logical volume "${lv.name}"`, {
          detail: `"${lv.name}" has LPs 0 to ${lv.lps.length - 1}.` })
      }
      const here = copies.filter((copy) => copy.pvIndex === pvIndex)
      if (here.length === 0) {
        throw new LvmfsError('ENGINE_USAGE', `--lp ${lp}: logical volume "${lv.name}" has no copy of LP ${lp} on "${path}"`, {
          detail: `Its copies are on ${copies.map((copy) => this.vg.descriptor.pvs[copy.pvIndex]?.lastPath ?? `PV ${copy.pvIndex}`)
            .join(', ')}.` })
      }
      // The same offsets the volume maps give the native data path.
      for (const copy of here) {
        ranges.push({ offsetBytes: this.vg.ppOffsetBytes(copy.pvIndex, copy.pp), lengthBytes: this.vg.ppSizeBytes })
      }
    }
    if (ranges.length === 0) {
      throw new LvmfsError('ENGINE_USAGE', `--lv: logical volume "${lv.name}" has no copy on "${path}"`)
    }
    ranges.sort((a, b) => a.offsetBytes - b.offsetBytes)
    const merged: ByteRange[] = []
    for (const range of ranges) {
      const last = merged.at(-1)
      if (last !== undefined && last.offsetBytes + last.lengthBytes >= range.offsetBytes) {
        const end = Math.max(last.offsetBytes + last.lengthBytes, range.offsetBytes + range.lengthBytes)
        merged[merged.length - 1] = { offsetBytes: last.offsetBytes, lengthBytes: end - last.offsetBytes }
      } else {
        merged.push(range)
      }
    }
    return merged
  }

  /** Flushes, unmounts and varies off; refuses while an LV is open unless `force`. */
  async stop(options: { force?: boolean } = {}): Promise<void> {
    const open = [...this.openCounts.keys()].map((lvId) => this.vg.lvById(lvId)?.name ?? String(lvId))
    const held = this.blockDevices?.held() ?? []
    for (const device of held) if (!open.includes(device.lv)) open.push(device.lv)
    if (open.length > 0 && options.force !== true) {
      const devices = held.map((device) => `${device.device} (${device.lv}) is held by ${device.holders.join(', ')}`)
      throw new LvmfsError('LVM_LVOPEN', `logical volume "${open[0]}" is open`, {
        detail: `Open logical volumes: ${open.join(', ')}.${devices.length === 0 ? '' : ` Block devices: ${devices.join('; ')}.`}`,
        hint: 'Close them, or use --force.', context: { lvs: open } })
    }
    await this.syncAll().catch(() => undefined)
    await this.session?.unmount({ lazy: options.force === true })
    await this.thin.stop().catch((error: unknown) => this.options.log.error({ err: error }, 'thin pool stop failed'))
    await this.blockDevices?.releaseAll('the unmount')
    this.gates.forgetAll()
    await this.replication.stop().catch((error: unknown) => this.options.log.error({ err: error }, 'replication stop failed'))
    await this.replicaVgs?.stop()
    await this.engine.stop().catch((error: unknown) => this.options.log.error({ err: error }, 'mirror stop failed'))
    if (this.vg.state === 'online') await this.vg.varyOff()
    setDirectCopyFds(this.vg, undefined)
    this.backing.closeAll()
  }
}

/** Test hook (kill -9 mid-job tests): `LVMFS_TEST_REPLICATION_STEP_MS=N` makes every copied
 * partition of a job take N ms more, so a job of a few partitions outlasts the test's kill. */
function testStepDelay(): { onStep?: (event: StepEvent) => Promise<void> } {
  const ms = Number(process.env['LVMFS_TEST_REPLICATION_STEP_MS'] ?? 0)
  if (!(ms > 0)) return {}
  return { onStep: async (event) => {
    if (event.kind === 'copied') await new Promise((resolve) => setTimeout(resolve, ms))
  } }
}

function onRemotePv(vg: VolumeGroup, lv: LvDescriptor): boolean {
  return lv.lps.some((copies) => copies.some((copy) => vg.device(copy.pvIndex)?.kind === 'remote'))
}
