/**
 * lsm_volume_replicate: validates the request, creates the target (a clone's one metadata
 * partition, or the full size plus one), writes its first superblock, links it to its source,
 * and starts the job of a copy or mirror.
 */
import { isLvmfsError } from '../errors/index.js'
import {
  FLAG_COMPLETE, FLAG_CONSISTENT, superblockMaxLps, NAME_PATTERN, type Generation, type ReplicaSuperblock,
} from '../format/index.js'
import { isThinLv, isThinPool, type JsonValue, type LvDescriptor } from '../lvm/index.js'
import type { MirrorEngine } from '../mirror/index.js'
import type { Located, ReplicationContext } from './context.js'
import type { CopyJobs } from './copy-jobs.js'
import { lsm } from './lsm-error.js'
import { REPLICATION_TYPES, jobIdOf, replicaOf, sourceOf, withReplica, type ReplicaExt, type ReplicationType } from './model.js'
import { writeSuperblock } from './superblock-io.js'
import { isAttachedSyncTarget } from './sync-mirror.js'
import type { ReplicateRequest, ReplicateResult } from './types.js'

/** Copies a native volume map carries at most (the source's own plus synchronous mirrors). */
const MAX_NATIVE_COPIES = 3

export class Replicator {
  readonly #ctx: ReplicationContext
  readonly #jobs: CopyJobs

  constructor(ctx: ReplicationContext, jobs: CopyJobs) {
    this.#ctx = ctx
    this.#jobs = jobs
  }

  /** lsm_volume_replicate. Returns LSM_ERR_OK with the new volume, or LSM_ERR_JOB_STARTED. */
  async replicate(request: ReplicateRequest): Promise<ReplicateResult> {
    const ctx = this.#ctx
    const type = validateRequest(request)
    const source = ctx.locate(request.vg, request.lv)
    ctx.assertServesSource(request.vg, source.lv)
    const poolName = request.pool ?? request.vg
    const pool = ctx.engineOf(poolName)
    if (pool.vg.lvByName(request.name) !== undefined) {
      throw lsm('LSM_ERR_INVALID_ARGUMENT', `"${request.name}" already exists in "${poolName}"`, {
        context: { vg: poolName, lv: request.name } })
    }
    if (isThinLv(source.lv) && type === 'clone') {
      const result = await this.#thinClone(request, source, pool)
      await this.#afterCreate(poolName, request.name)
      return result
    }
    this.#checkSupport(source, type, pool)
    await ctx.gates?.closeVolumeGates(request.vg, request.lv)
    const dataLps = source.lv.lps.length
    const replica: ReplicaExt = {
      kind: type, source: { vg: request.vg, lv: request.lv, lvId: source.lv.lvId }, dataLps,
      state: type === 'clone' ? 'complete' : 'in-progress', createdAtMs: ctx.now(),
      ...(type === 'clone' ? { chunks: [] } : {}),
      ...(type === 'mirror-async' ? { site: this.#nextSite(request.vg, source.lv),
        intervalMs: request.intervalMs ?? ctx.options.defaultIntervalMs ?? 1000 } : {}),
    }
    const generation = await ctx.sources.generation(source)
    const target = await createTarget(pool, request.name, type === 'clone' ? 1 : dataLps + 1, source.lv, replica)
    const jobId = type === 'clone' ? undefined : jobIdOf(poolName, target.lvId)
    await this.#writeFirstSuperblock(pool, target, type, generation, dataLps)
    if (jobId !== undefined) await pool.vg.lvSetExt(target.name, withReplica(target, { ...replica, jobId }))
    await ctx.sources.addChild(source, { vg: poolName, lv: request.name, kind: type, base: generation.current,
      ...(replica.site === undefined ? {} : { site: replica.site }) })
    const volume = { vg: poolName, lv: request.name }
    await this.#afterCreate(poolName, request.name)
    if (jobId === undefined) return { status: 'LSM_ERR_OK', volume }
    if (type === 'mirror-async') ctx.asyncStates.of(poolName, ctx.fresh({ engine: pool, lv: target }))
    this.#jobs.start(jobId)
    return { status: 'LSM_ERR_JOB_STARTED', jobId, volume }
  }

  /**
   * CLONE of a thin LV is a thin snapshot (docs/thin.md): O(1), in the origin's pool, sharing
   * every block; the child dependency is the snapshot's (the origin cannot be removed first).
   */
  async #thinClone(request: ReplicateRequest, source: Located, pool: MirrorEngine): Promise<ReplicateResult> {
    const hook = this.#ctx.options.thinClone
    if (hook === undefined || pool !== source.engine) {
      throw lsm('LSM_ERR_NO_SUPPORT', `a clone of thin LV "${source.lv.name}" lives in its own pool`, {
        detail: hook === undefined ? 'This replication engine has no thin pools.'
          : `Clone it into "${request.vg}", where its pool is.`, context: { vg: request.vg, lv: request.lv } })
    }
    try {
      await hook(source.engine, request.name, source.lv)
    } catch (error) {
      if (isLvmfsError(error, 'THIN_METADATA_FULL') || isLvmfsError(error, 'THIN_POOL_FULL')) {
        throw lsm('LSM_ERR_NOT_ENOUGH_SPACE', `the thin pool of "${source.lv.name}" cannot hold the clone's mapping`,
          { cause: error, context: { vg: request.vg, lv: request.lv } })
      }
      throw error
    }
    return { status: 'LSM_ERR_OK', volume: { vg: request.vg, lv: request.name } }
  }

  async #afterCreate(vgName: string, lvName: string): Promise<void> {
    const created = this.#ctx.engineOf(vgName).vg.lvByName(lvName)
    if (created !== undefined) await this.#ctx.options.afterCreate?.(vgName, created)
  }

  #checkSupport(source: Located, type: ReplicationType, pool: MirrorEngine): void {
    if (isThinLv(source.lv) || isThinPool(source.lv)) {
      throw lsm('LSM_ERR_NO_SUPPORT', `"${source.lv.name}" is a thin ${isThinLv(source.lv) ? 'LV' : 'pool'}`, {
        detail: 'Replication copies partitions; a thin LV has none, and a pool\'s are its thin LVs\' metadata and data.',
        hint: 'A clone of a thin LV is a thin snapshot: --type clone, or lvcreate VG NAME --snapshot THIN (docs/thin.md).' })
    }
    const replica = replicaOf(source.lv)
    if (replica !== undefined) {
      throw lsm('LSM_ERR_NO_SUPPORT', `"${source.lv.name}" is itself a ${replica.kind} replica`, {
        detail: 'lvmfs replicates plain logical volumes only (no clone of a clone, copy of a copy or mirror chains).' })
    }
    const shared = [source.engine.vg, pool.vg].find((vg) => vg.descriptor.shared === true)
    if (shared !== undefined && pool.vg !== source.engine.vg) {
      throw lsm('LSM_ERR_NO_SUPPORT', `volume group "${shared.name}" is shared: its replicas stay in the VG of their source`, {
        detail: 'In a shared VG the daemon serving a source takes the LV locks of its replicas, so no other process ' +
          'writes them; a replica in another VG would be outside those locks.',
        hint: `Replicate within "${source.engine.vg.name}" (no --pool / --target-vg), or between VGs that are not shared.` })
    }
    if (pool.vg.ppSizeBytes !== source.engine.vg.ppSizeBytes) {
      throw lsm('LSM_ERR_NO_SUPPORT', `pool "${pool.vg.name}" has another partition size`, {
        detail: `Source ${source.engine.vg.ppSizeBytes} bytes, pool ${pool.vg.ppSizeBytes} bytes.` })
    }
    if (source.lv.lps.length > superblockMaxLps(pool.vg.ppSizeBytes)) {
      throw lsm('LSM_ERR_NO_SUPPORT', `"${source.lv.name}" has more partitions than a superblock tracks`)
    }
    if (type === 'mirror-sync') {
      const targetCopies = 1
      const existing = this.#ctx.children(source.engine.vg.name, source.lv).filter(isAttachedSyncTarget).length
      if (source.lv.copies + existing + targetCopies > MAX_NATIVE_COPIES) {
        throw lsm('LSM_ERR_NO_SUPPORT', `a synchronous mirror of "${source.lv.name}" would need more than 3 copies`, {
          detail: `The source has ${source.lv.copies} copies and ${existing} synchronous mirror(s); a native volume map ` +
            'carries at most 3.' })
      }
    }
  }

  #nextSite(vgName: string, source: LvDescriptor): number {
    const sites = this.#ctx.children(vgName, source).map((c) => c.replica.site ?? 0)
    const recorded = (sourceOf(source)?.children ?? []).map((c) => c.site ?? 0)
    return Math.max(1, ...sites, ...recorded) + 1
  }

  async #writeFirstSuperblock(pool: MirrorEngine, target: LvDescriptor, type: ReplicationType,
    generation: Generation, dataLps: number): Promise<void> {
    const sb: ReplicaSuperblock = {
      role: type, seq: 1, lwm: 0, lwmAtMs: 0, updatedAtMs: this.#ctx.now(), generation, flags:
        type === 'clone' ? FLAG_COMPLETE | FLAG_CONSISTENT : 0,
      dataLps, copied: new Uint8Array(Math.ceil(dataLps / 8)),
    }
    await writeSuperblock(pool.vg, target, sb)
    this.#ctx.superblocks.remember(pool.vg.name, target.name, sb)
  }
}

function validateRequest(request: ReplicateRequest): ReplicationType {
  if (!(REPLICATION_TYPES as readonly string[]).includes(request.type)) {
    throw lsm('LSM_ERR_INVALID_ARGUMENT', `invalid replication type "${request.type}"`, {
      detail: `Expected one of ${REPLICATION_TYPES.join(', ')}.` })
  }
  for (const [what, name] of [['source volume group', request.vg], ['source volume', request.lv],
    ['target name', request.name], ['pool', request.pool ?? request.vg]] as const) {
    if (!NAME_PATTERN.test(name)) throw lsm('LSM_ERR_INVALID_ARGUMENT', `invalid ${what} "${name}"`)
  }
  if (request.intervalMs !== undefined && (!Number.isSafeInteger(request.intervalMs) || request.intervalMs < 10 ||
      request.intervalMs > 86_400_000)) {
    throw lsm('LSM_ERR_INVALID_ARGUMENT', `invalid interval ${request.intervalMs} ms`, { detail: 'Expected 10 ms to 1 day.' })
  }
  if (request.intervalMs !== undefined && request.type !== 'mirror-async') {
    throw lsm('LSM_ERR_INVALID_ARGUMENT', '--interval applies to mirror-async only')
  }
  return request.type as ReplicationType
}

async function createTarget(pool: MirrorEngine, name: string, lpCount: number, source: LvDescriptor,
  replica: ReplicaExt): Promise<LvDescriptor> {
  try {
    return await pool.vg.lvCreate({ name, lpCount, copies: 1, schedule: source.schedule,
      ext: { replica: replica as unknown as JsonValue } })
  } catch (error) {
    if (isLvmfsError(error, 'LVM_NOFREEPPS')) {
      throw lsm('LSM_ERR_NOT_ENOUGH_SPACE', `pool "${pool.vg.name}" has no room for "${name}"`, {
        detail: `The target needs ${lpCount} partition(s).`, cause: error, context: { vg: pool.vg.name, lpCount } })
    }
    throw error
  }
}
