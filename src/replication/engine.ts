/**
 * ReplicationEngine: clones, copies, synchronous and asynchronous mirrors of LVs
 * (lsm_volume_replicate), low-water marks (chlwm, primrec), jobs and dependencies, over the
 * mirror engines of one or more varied-on VGs (a target may live in another VG: the pool).
 * This class owns the shared state (ReplicationContext) and delegates to one module per
 * mechanism; the invariants live with them:
 *  - clone.ts: a chunk a clone still shares is copied into the clone, and its map committed,
 *    before the origin write touching it proceeds; a full pool invalidates the clone, never
 *    fails the origin.
 *  - copy-jobs.ts: a copy is the source's image at creation, opened only once complete.
 *  - sync-mirror.ts: a source write resolves only after the target wrote it too.
 *  - async-mirror.ts, async-catch-up.ts: a chunk is persisted dirty before a write to it is
 *    acknowledged; the mark only rises, only after the target holds everything up to it, and
 *    the target on disk is always a prefix of the source's writes.
 *  - split.ts: after a split each side's first write starts a new generation; two sides that
 *    both moved are never merged (LWM_GENERATION_CONFLICT).
 */
import type { MirrorEngine } from '../mirror/index.js'
import type { VolumeMap } from '../native/index.js'
import { AsyncCatchUp } from './async-catch-up.js'
import { AsyncMirrors } from './async-mirror.js'
import { CloneChunks } from './clone.js'
import { ReplicationContext } from './context.js'
import { CopyJobs } from './copy-jobs.js'
import { LowWaterMarks, type PrimrecReport } from './lwm.js'
import { keyOf, replicaOf } from './model.js'
import { NativeMaps } from './native-map.js'
import { assertRemovable, childDependencies, removeVolume } from './removal.js'
import { ReplicaIo } from './replica-io.js'
import { replicaStatus, targetStatuses } from './replica-status.js'
import { Replicator } from './replicate.js'
import { SplitRejoin } from './split.js'
import { SyncMirrors } from './sync-mirror.js'
import type { JobStatus, Lag, ReplicaStatus, ReplicateRequest, ReplicateResult, ReplicationOptions } from './types.js'
import { VolumeIo } from './volume-io.js'

export class ReplicationEngine {
  readonly io = new VolumeIo()
  readonly #ctx: ReplicationContext
  readonly #jobs: CopyJobs
  readonly #async: AsyncMirrors
  readonly #split: SplitRejoin
  readonly #lwm: LowWaterMarks
  readonly #maps: NativeMaps
  readonly #replicaIo: ReplicaIo
  readonly #replicator: Replicator

  constructor(engines: readonly MirrorEngine[], options: ReplicationOptions = {}) {
    const ctx = this.#ctx = new ReplicationContext(engines, options, this.io)
    const catchUp = new AsyncCatchUp(ctx)
    const async = this.#async = new AsyncMirrors(ctx, catchUp)
    const jobs = this.#jobs = new CopyJobs(ctx, (vg, lv) => async.startPropagator(vg, lv))
    const sync = new SyncMirrors(ctx, jobs)
    const split = this.#split = new SplitRejoin(ctx, catchUp)
    const clones = new CloneChunks(ctx)
    this.#lwm = new LowWaterMarks(ctx, async, catchUp, split)
    this.#maps = new NativeMaps(ctx, sync)
    this.#replicaIo = new ReplicaIo(ctx, { clones, jobs, sync, async, split })
    this.#replicator = new Replicator(ctx, jobs)
  }

  /** Adds a VG (pool) varied on later. */
  addEngine(engine: MirrorEngine): void {
    this.#ctx.engines.set(engine.vg.name, engine)
    this.#ctx.unreachable.delete(engine.vg.name)
  }

  /**
   * Records a VG the caller could not vary on and why (not found, no quorum): operations that
   * need it then fail with the code the daemon reports for the same VG.
   */
  addUnreachable(vgName: string, cause: unknown): void {
    if (!this.#ctx.engines.has(vgName)) this.#ctx.unreachable.set(vgName, cause)
  }

  /** lsm_volume_replicate. Returns LSM_ERR_OK with the new volume, or LSM_ERR_JOB_STARTED. */
  replicate(request: ReplicateRequest): Promise<ReplicateResult> {
    return this.#replicator.replicate(request)
  }

  // --- I/O with replica semantics, and the native data path -----------------------------------

  /** Size in bytes of the volume file (a replica hides its metadata partition). */
  volumeSizeBytes(vgName: string, lvName: string): number {
    return this.#replicaIo.volumeSizeBytes(vgName, lvName)
  }

  /** Refuses opens the replica semantics forbid (copy not complete, write to a mirror target). */
  assertOpenable(vgName: string, lvName: string, writable: boolean): void {
    this.#replicaIo.assertOpenable(vgName, lvName, writable)
  }

  read(vgName: string, lvName: string, buffer: Uint8Array, offsetBytes: number): Promise<void> {
    return this.#replicaIo.read(vgName, lvName, buffer, offsetBytes)
  }

  write(vgName: string, lvName: string, data: Uint8Array, offsetBytes: number): Promise<void> {
    return this.#replicaIo.write(vgName, lvName, data, offsetBytes)
  }

  flush(vgName: string, lvName: string): Promise<void> {
    return this.#replicaIo.flush(vgName, lvName)
  }

  /** The daemon's gate hook for a write into a closed gate region (see ReplicaIo.beforeWriteRegion). */
  beforeWriteRegion(vgName: string, lvName: string, regionIndex: number, gateBytes: number): Promise<void> {
    return this.#replicaIo.beforeWriteRegion(vgName, lvName, regionIndex, gateBytes)
  }

  /** Whether the volume's gate hooks must keep running (see NativeMaps.gatesWrites). */
  gatesWrites(vgName: string, lvName: string): boolean {
    return this.#maps.gatesWrites(vgName, lvName)
  }

  /** The native plan for a volume (see NativeMaps.volumeMapOf). */
  volumeMapOf(vgName: string, lvName: string, fdOf: (vgName: string, pvIndex: number) => number): VolumeMap {
    return this.#maps.volumeMapOf(vgName, lvName, fdOf)
  }

  /** The synchronous mirror target copy `copyIndex` of extent `lp` belongs to, if any. */
  syncTargetOfCopy(vgName: string, lvName: string, lp: number,
    copyIndex: number): { vg: string, lv: string } | undefined {
    return this.#maps.syncTargetOfCopy(vgName, lvName, lp, copyIndex)
  }

  // --- jobs -----------------------------------------------------------------------------------

  /** lsm_job_status_volume_get: state and percent of a job (persisted in the target). */
  job(jobId: string): Promise<JobStatus> {
    return this.#jobs.status(jobId)
  }

  /** Every job recorded in the online VGs. */
  jobs(): Promise<JobStatus[]> {
    return this.#jobs.all()
  }

  /** Runs (or resumes) the job in this process and resolves when it is no longer in progress. */
  async waitJob(jobId: string, onProgress?: (status: JobStatus) => void): Promise<JobStatus> {
    const target = this.#jobs.target(jobId)
    this.#ctx.assertRunsHere(target.engine.vg.name, target.lv.name)
    return await this.#jobs.wait(jobId, onProgress)
  }

  // --- asynchronous mirrors, low-water marks, split -------------------------------------------

  /** One propagation cycle of an async mirror target; resolves with the new mark. */
  async propagate(targetVg: string, targetName: string): Promise<number> {
    this.#ctx.assertRunsHere(targetVg, targetName)
    return await this.#async.propagate(targetVg, targetName)
  }

  /** Lag of an async mirror target: commit counts, bytes and seconds behind its source. */
  lag(targetVg: string, targetName: string): Promise<Lag> {
    return this.#async.lag(targetVg, targetName)
  }

  /** chlwm(gfs, site, lwm): the previous mark of the local site, or another site's mark. */
  async chlwm(vgName: string, lvName: string, site: number, lwm: number): Promise<number> {
    this.#ctx.assertRunsHere(vgName, lvName)
    return await this.#lwm.chlwm(vgName, lvName, site, lwm)
  }

  /** primrec: reconcile an async target outside the propagator (reattaching a split one). */
  async primrec(vgName: string, lvName: string, options: { full?: boolean } = {}): Promise<PrimrecReport> {
    this.#ctx.assertRunsHere(vgName, lvName)
    return await this.#lwm.primrec(vgName, lvName, options)
  }

  /** replica split: a mirror target (or a complete copy) becomes an independent volume. */
  async split(vgName: string, lvName: string): Promise<void> {
    this.#ctx.assertRunsHere(vgName, lvName)
    await this.#split.split(vgName, lvName)
  }

  // --- dependencies, removal, status ----------------------------------------------------------

  /** Names of the replicas that keep `lvName` from being removed (lsm_volume_child_dependency). */
  childDependencies(vgName: string, lvName: string): string[] {
    return childDependencies(this.#ctx, vgName, lvName)
  }

  /** Throws LSM_ERR_HAS_CHILD_DEPENDENCY naming the replicas that depend on the volume. */
  assertRemovable(vgName: string, lvName: string): void {
    assertRemovable(this.#ctx, vgName, lvName)
  }

  /** lsm_volume_delete: removes a volume after the dependency check, unlinking it from its source. */
  async removeVolume(vgName: string, lvName: string): Promise<void> {
    this.#ctx.assertRunsHere(vgName, lvName)
    await removeVolume(this.#ctx, this.#jobs, vgName, lvName)
  }

  /** Origin, type, sync state, mark and lag of a replica (for lvs and status). */
  status(vgName: string, lvName: string): Promise<ReplicaStatus | undefined> {
    return replicaStatus(this.#ctx, this.#jobs, this.#async, vgName, lvName)
  }

  /** Status of every replica in a VG. */
  async statuses(vgName: string): Promise<ReplicaStatus[]> {
    const engine = this.#ctx.engineOf(vgName, 'LSM_ERR_NOT_FOUND_VOLUME')
    const out: ReplicaStatus[] = []
    for (const lv of engine.vg.descriptor.lvs) {
      const status = await this.status(vgName, lv.name)
      if (status !== undefined) out.push(status)
    }
    return out
  }

  /** Status of the replicas in other VGs of the sources in `vgName`, `disconnected` when their
   * VG is not online here (see targetStatuses). */
  targetStatuses(vgName: string): Promise<ReplicaStatus[]> {
    return targetStatuses(this.#ctx, this.#jobs, this.#async, vgName)
  }

  /** The superblock of `vg/lv` last read or written here, if any (no I/O). */
  lastSuperblock(vgName: string, lvName: string): { readonly seq: number, readonly lwm: number } | undefined {
    return this.#ctx.superblocks.cached(keyOf(vgName, lvName))
  }

  // --- lifecycle ------------------------------------------------------------------------------

  /** Resumes unfinished jobs and starts the propagators of attached async mirrors (of the
   * sources this process serves, in a shared VG). */
  async startBackground(): Promise<void> {
    for (const engine of this.#ctx.onlineEngines()) {
      for (const lv of engine.vg.descriptor.lvs) {
        const replica = replicaOf(lv)
        if (replica === undefined || !this.#ctx.runsReplicaHere(replica)) continue
        if (replica.kind !== 'clone') await this.#ctx.superblocks.of({ engine, lv }).catch(() => undefined)
        if (replica.state === 'in-progress' && replica.jobId !== undefined) this.#jobs.start(replica.jobId)
        else if (replica.kind === 'mirror-async' && replica.state === 'complete') this.#async.startPropagator(engine.vg.name, lv)
      }
    }
  }

  /** Stops jobs and propagators (they resume from their persisted state), closes handles. */
  async stop(): Promise<void> {
    this.#ctx.stopping = true
    await this.#ctx.asyncStates.stopAll()
    await this.#jobs.stopAll()
    await this.io.closeAll()
  }
}
