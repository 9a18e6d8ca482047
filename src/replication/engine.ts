/**
 * The replication engine: clones, copies, synchronous and asynchronous mirrors of LVs
 * (lsm_volume_replicate), low-water marks (chlwm, primrec), jobs and dependencies, over the
 * mirror engines of one or more varied-on VGs (a target may live in another VG: the pool).
 *
 * Invariants:
 *  - Clone (copy-on-write at partition granularity): a chunk of the origin that a clone still
 *    shares is copied into a partition the clone owns, and the clone's chunk map (ext) is
 *    committed, BEFORE the origin write touching it proceeds. A clone chunk is read from the
 *    origin only while shared, under the origin chunk's lock. When the pool has no free
 *    partition for a copy-on-write the clone is invalidated (state 'invalid', every later
 *    access fails LSM_ERR_INVALIDATED_CLONE) and the origin write proceeds: a full pool never
 *    fails the origin.
 *  - Copy: the target is a point-in-time image of the source at creation. A source write to a
 *    partition the job has not copied first pushes it, and a copied partition's bit is durable
 *    in the target superblock before the source may change it. Opening the target is refused
 *    until the superblock says complete, which is written only after every partition was
 *    copied and synced.
 *  - Synchronous mirror: a source write resolves only after the target's copy of every copied
 *    partition was written too (all of them once the initial job completed).
 *  - Asynchronous mirror: every write gets a commit count from a rising counter; a chunk is in
 *    the persisted dirty set before a write to it is acknowledged; a chunk leaves the dirty set
 *    only when its newest write is at or below the target's low-water mark; the mark (target
 *    superblock) only rises (max), and only after every change up to it was written and synced
 *    on the target.
 *  - Generations: a mirror and its source share one generation while attached; after a split,
 *    each side's first write starts a new generation, and reattaching two sides that both moved
 *    fails LWM_GENERATION_CONFLICT (never merged).
 */
import { LvmfsError, isLvmfsError, type ErrorCode } from '../errors/index.js'
import type { JsonValue, LvDescriptor } from '../lvm/index.js'
import type { MirrorEngine } from '../mirror/index.js'
import {
  FLAG_COMPLETE, FLAG_CONSISTENT, FLAG_SPLIT, FLAG_WRITTEN_APART, isCopied, setCopied, countCopied,
  superblockMaxLps, type ReplicaSuperblock, type Generation,
} from '../format/replica-superblock.js'
import { NAME_PATTERN } from '../format/descriptor-body.js'
import { assert } from '../util/assert.js'
import type { VolumeExtent, VolumeMap } from '../native/volume-map.js'
import { AsyncState, type StagingCycle } from './async-state.js'
import { compareGenerations, freshGeneration, nextGeneration } from './generations.js'
import { KeyedMutex } from './keyed-mutex.js'
import { childDependenciesIn } from './dependencies.js'
import {
  REPLICATION_TYPES, jobIdOf, keyOf, parseJobId, replicaOf, sourceOf, withReplica, withSource,
  type ChildRef, type ReplicaExt, type ReplicationType, type SourceExt,
} from './model.js'
import { readSuperblock, writeSuperblock } from './superblock-io.js'
import { VolumeIo } from './volume-io.js'

/** What the FUSE daemon lends the engine so native writes obey the same rules. */
export interface GateControl {
  /** Close every native write gate of the LV and wait until writes admitted before finished. */
  closeVolumeGates(vgName: string, lvName: string): Promise<void>
  /** Close the gates of every gate region inside chunk (partition) `chunk`, then drain. */
  closeChunkGates(vgName: string, lvName: string, chunk: number): Promise<void>
  /** Rebuild the native maps of these volumes now (a chunk changed owner, a mirror attached). */
  remap(vgName: string, lvNames: readonly string[]): Promise<void>
  /**
   * One instant for a set of chunks of a volume: close (at least) every gate inside them with
   * no gate of the volume being opened meanwhile, drain, and call `atInstant` before any of them
   * can open again (the next write into each passes the hook, which then sees what it set).
   */
  freezeChunks(vgName: string, lvName: string, chunks: readonly number[], atInstant: () => void): Promise<void>
  /**
   * Close every gate of the volume, drain, and run `step` while none can open again, so every
   * write after `step` passes the hook and sees what it changed.
   */
  withVolumeClosed(vgName: string, lvName: string, step: () => Promise<void>): Promise<void>
}

export type StepEvent =
  | { readonly kind: 'copied', readonly job: string, readonly lp: number, readonly doneLps: number, readonly totalLps: number }
  | { readonly kind: 'applied', readonly target: string, readonly count: number }
  | { readonly kind: 'chunk', readonly target: string, readonly chunk: number }
  | { readonly kind: 'published', readonly target: string }
  | { readonly kind: 'lwm', readonly target: string, readonly lwm: number }

export interface ReplicationOptions {
  readonly gates?: GateControl
  /** Effective uid of the caller of chlwm (default: process.getuid()). */
  readonly uid?: () => number
  readonly now?: () => number
  /** Bound of the in-memory async journal per target (default 64 MiB). */
  readonly journalBytesMax?: number
  /** Copy jobs persist their progress every this many partitions (default: 256 MiB worth). */
  readonly checkpointLps?: number
  /** Async propagation interval when replicate gives none (default 1000 ms). */
  readonly defaultIntervalMs?: number
  /** Test and progress hook, awaited after every copied partition / applied change. */
  readonly onStep?: (event: StepEvent) => void | Promise<void>
}

export interface ReplicateRequest {
  readonly vg: string
  readonly lv: string
  readonly name: string
  readonly type: string
  readonly pool?: string
  readonly intervalMs?: number
}

export type ReplicateResult =
  | { readonly status: 'LSM_ERR_OK', readonly volume: { vg: string, lv: string } }
  | { readonly status: 'LSM_ERR_JOB_STARTED', readonly jobId: string, readonly volume: { vg: string, lv: string } }

export type JobState = 'INPROGRESS' | 'COMPLETE' | 'ERROR'

export interface JobStatus {
  readonly id: string
  readonly state: JobState
  readonly percent: number
  readonly kind: ReplicationType
  readonly volume: { vg: string, lv: string }
  readonly error?: string
}

export interface Lag {
  readonly commitCount: number
  readonly lwm: number
  readonly commits: number
  readonly bytes: number
  readonly seconds: number
}

export interface ReplicaStatus {
  readonly vg: string
  readonly lv: string
  readonly kind: ReplicationType
  readonly origin: string
  readonly state: string
  readonly syncState: string
  readonly jobId?: string
  readonly percent?: number
  readonly lwm?: number
  readonly lag?: Lag
}

interface JobRun {
  readonly id: string
  copied: Uint8Array
  persisted: Uint8Array
  done: Promise<void>
  error?: unknown
}

interface Located {
  readonly engine: MirrorEngine
  readonly lv: LvDescriptor
}

interface ChildLocated extends Located {
  readonly replica: ReplicaExt
}

interface ErrorExtra {
  detail?: string
  hint?: string
  context?: Record<string, unknown>
  cause?: unknown
}

/** target |= bits (bitmaps of copied partitions). */
function orInto(target: Uint8Array, bits: Uint8Array): void {
  for (let index = 0; index < bits.length; index++) target[index] = (target[index] ?? 0) | bits[index]!
}

function lsm(code: ErrorCode, message: string, extra: ErrorExtra = {}): LvmfsError {
  return new LvmfsError(code, message, extra)
}

/** Commit counts reserved per descriptor commit (see #nextCount). */
const COUNT_RESERVE = 1024
/** Partitions a clone is extended by at a time (see #copyChunkToClone). */
const CLONE_EXTEND_LPS = 8

export class ReplicationEngine {
  readonly io = new VolumeIo()
  readonly #engines = new Map<string, MirrorEngine>()
  readonly #options: ReplicationOptions
  readonly #locks = new KeyedMutex()
  readonly #sbLocks = new KeyedMutex()
  readonly #extLocks = new KeyedMutex()
  readonly #cloneLocks = new KeyedMutex()
  readonly #sb = new Map<string, ReplicaSuperblock>()
  readonly #jobs = new Map<string, JobRun>()
  readonly #async = new Map<string, AsyncState>()
  readonly #counts = new Map<string, number>()
  /** Source key -> commit counts handed out whose write has not settled yet. */
  readonly #pending = new Map<string, Set<number>>()
  /** Sources written through the native gate hook: their writes are not journaled. */
  readonly #native = new Set<string>()
  #stopping = false

  constructor(engines: readonly MirrorEngine[], options: ReplicationOptions = {}) {
    for (const engine of engines) this.#engines.set(engine.vg.name, engine)
    this.#options = options
  }

  /** Adds a VG (pool) varied on later. */
  addEngine(engine: MirrorEngine): void {
    this.#engines.set(engine.vg.name, engine)
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now()
  }

  #pp(vgName: string): number {
    return this.#engineOf(vgName).vg.ppSizeBytes
  }

  // --- lookup ----------------------------------------------------------------------------------

  #engineOf(vgName: string, notFound: ErrorCode = 'LSM_ERR_NOT_FOUND_POOL'): MirrorEngine {
    const engine = this.#engines.get(vgName)
    if (engine === undefined) {
      throw lsm(notFound, `volume group "${vgName}" is not known to the replication engine`, {
        hint: 'Name a VG on the scanned devices; --pool VGs must be reachable.', context: { vg: vgName } })
    }
    if (engine.vg.state !== 'online') {
      throw lsm('LSM_ERR_POOL_NOT_READY', `volume group "${vgName}" is ${engine.vg.state}`, { context: { vg: vgName } })
    }
    return engine
  }

  #locate(vgName: string, lvName: string): Located {
    const engine = this.#engineOf(vgName, 'LSM_ERR_NOT_FOUND_VOLUME')
    const lv = engine.vg.lvByName(lvName)
    if (lv === undefined) {
      throw lsm('LSM_ERR_NOT_FOUND_VOLUME', `logical volume "${lvName}" not found in "${vgName}"`, {
        context: { vg: vgName, lv: lvName } })
    }
    return { engine, lv }
  }

  #fresh(located: Located): LvDescriptor {
    const lv = located.engine.vg.lvById(located.lv.lvId)
    if (lv === undefined) throw lsm('LSM_ERR_NOT_FOUND_VOLUME', `logical volume "${located.lv.name}" was removed`)
    return lv
  }

  /** Replicas of a source, found by scanning every online VG (the data path's view). */
  #children(vgName: string, source: LvDescriptor): ChildLocated[] {
    const out: ChildLocated[] = []
    for (const engine of this.#engines.values()) {
      if (engine.vg.state !== 'online') continue
      for (const lv of engine.vg.descriptor.lvs) {
        const replica = replicaOf(lv)
        if (replica !== undefined && replica.source.vg === vgName && replica.source.lvId === source.lvId) {
          out.push({ engine, lv, replica })
        }
      }
    }
    return out
  }

  #sourceOfReplica(replica: ReplicaExt): Located {
    const engine = this.#engines.get(replica.source.vg)
    if (engine === undefined || engine.vg.state !== 'online') {
      throw lsm('LWM_ESITEDN1', `the source volume group "${replica.source.vg}" is not online`, {
        context: { vg: replica.source.vg } })
    }
    const lv = engine.vg.lvById(replica.source.lvId)
    if (lv === undefined) throw lsm('LSM_ERR_NOT_FOUND_VOLUME', `source "${replica.source.lv}" no longer exists`)
    return { engine, lv }
  }

  #chunkKey(vgName: string, lvId: number, chunk: number): string {
    return `${vgName}:${lvId}:${chunk}`
  }

  // --- replicate -------------------------------------------------------------------------------

  /** lsm_volume_replicate. Returns LSM_ERR_OK with the new volume, or LSM_ERR_JOB_STARTED. */
  async replicate(request: ReplicateRequest): Promise<ReplicateResult> {
    const type = this.#validateRequest(request)
    const source = this.#locate(request.vg, request.lv)
    const poolName = request.pool ?? request.vg
    const pool = this.#engineOf(poolName)
    if (pool.vg.lvByName(request.name) !== undefined) {
      throw lsm('LSM_ERR_INVALID_ARGUMENT', `"${request.name}" already exists in "${poolName}"`, {
        context: { vg: poolName, lv: request.name } })
    }
    this.#checkSupport(source, type, pool)
    await this.#options.gates?.closeVolumeGates(request.vg, request.lv)
    const dataLps = source.lv.lps.length
    const replica: ReplicaExt = {
      kind: type, source: { vg: request.vg, lv: request.lv, lvId: source.lv.lvId }, dataLps,
      state: type === 'clone' ? 'complete' : 'in-progress', createdAtMs: this.#now(),
      ...(type === 'clone' ? { chunks: [] } : {}),
      ...(type === 'mirror-async' ? { site: this.#nextSite(request.vg, source.lv),
        intervalMs: request.intervalMs ?? this.#options.defaultIntervalMs ?? 1000 } : {}),
    }
    const generation = await this.#sourceGeneration(source)
    const target = await this.#createTarget(pool, request.name, type === 'clone' ? 1 : dataLps + 1, source.lv, replica)
    const jobId = type === 'clone' ? undefined : jobIdOf(poolName, target.lvId)
    await this.#writeFirstSuperblock(pool, target, type, generation, dataLps)
    if (jobId !== undefined) await pool.vg.lvSetExt(target.name, withReplica(target, { ...replica, jobId }))
    await this.#addChild(source, { vg: poolName, lv: request.name, kind: type, base: generation.current,
      ...(replica.site === undefined ? {} : { site: replica.site }) })
    const volume = { vg: poolName, lv: request.name }
    if (jobId === undefined) return { status: 'LSM_ERR_OK', volume }
    if (type === 'mirror-async') this.#asyncStateOf(poolName, this.#fresh({ engine: pool, lv: target }))
    this.#startJob(jobId)
    return { status: 'LSM_ERR_JOB_STARTED', jobId, volume }
  }

  #validateRequest(request: ReplicateRequest): ReplicationType {
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

  #checkSupport(source: Located, type: ReplicationType, pool: MirrorEngine): void {
    const replica = replicaOf(source.lv)
    if (replica !== undefined) {
      throw lsm('LSM_ERR_NO_SUPPORT', `"${source.lv.name}" is itself a ${replica.kind} replica`, {
        detail: 'lvmfs replicates plain logical volumes only (no clone of a clone, copy of a copy or mirror chains).' })
    }
    for (const vg of new Set([source.engine.vg, pool.vg])) {
      if (vg.descriptor.shared === true) {
        throw lsm('LSM_ERR_NO_SUPPORT', `volume group "${vg.name}" is shared; lvmfs does not replicate in shared VGs`, {
          detail: 'Copy-on-write maps, dirty sets, commit counts and jobs are kept by the one daemon serving the ' +
            'source; another host serving the same VG would write around them.',
          hint: 'Replicate into or out of a VG that is not shared.' })
      }
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
      const existing = this.#children(source.engine.vg.name, source.lv).filter((c) => c.replica.kind === 'mirror-sync' &&
        c.replica.state !== 'split').length
      if (source.lv.copies + existing + targetCopies > 3) {
        throw lsm('LSM_ERR_NO_SUPPORT', `a synchronous mirror of "${source.lv.name}" would need more than 3 copies`, {
          detail: `The source has ${source.lv.copies} copies and ${existing} synchronous mirror(s); a native volume map ` +
            'carries at most 3.' })
      }
    }
  }

  #nextSite(vgName: string, source: LvDescriptor): number {
    const sites = this.#children(vgName, source).map((c) => c.replica.site ?? 0)
    const recorded = (sourceOf(source)?.children ?? []).map((c) => c.site ?? 0)
    return Math.max(1, ...sites, ...recorded) + 1
  }

  async #createTarget(pool: MirrorEngine, name: string, lpCount: number, source: LvDescriptor,
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

  async #writeFirstSuperblock(pool: MirrorEngine, target: LvDescriptor, type: ReplicationType,
    generation: Generation, dataLps: number): Promise<void> {
    const sb: ReplicaSuperblock = {
      role: type, seq: 1, lwm: 0, lwmAtMs: 0, updatedAtMs: this.#now(), generation, flags:
        type === 'clone' ? FLAG_COMPLETE | FLAG_CONSISTENT : 0,
      dataLps, copied: new Uint8Array(Math.ceil(dataLps / 8)),
    }
    await writeSuperblock(pool.vg, target, sb)
    this.#sb.set(keyOf(pool.vg.name, target.name), sb)
  }

  // --- source ext (children, generation, commit count, dirty chunks) -----------------------------

  async #updateSource(source: Located, change: (ext: SourceExt) => SourceExt): Promise<SourceExt> {
    const release = await this.#extLocks.lock(`${source.engine.vg.name}:${source.lv.lvId}`)
    try {
      const lv = this.#fresh(source)
      const current = sourceOf(lv) ?? { children: [], generation: freshGeneration(), commitCount: 0, dirty: {} }
      const next = change(current)
      await source.engine.vg.lvSetExt(lv.name, withSource(lv, next))
      return next
    } finally {
      release()
    }
  }

  async #sourceGeneration(source: Located): Promise<Generation> {
    const existing = sourceOf(this.#fresh(source))
    if (existing !== undefined) return existing.generation
    return (await this.#updateSource(source, (ext) => ext)).generation
  }

  async #addChild(source: Located, child: ChildRef): Promise<void> {
    await this.#updateSource(source, (ext) => ({ ...ext,
      children: [...ext.children.filter((c) => !(c.vg === child.vg && c.lv === child.lv)), child] }))
  }

  // --- I/O -------------------------------------------------------------------------------------

  /** Size in bytes of the volume file (a replica hides its metadata partition). */
  volumeSizeBytes(vgName: string, lvName: string): number {
    const { engine, lv } = this.#locate(vgName, lvName)
    const replica = replicaOf(lv)
    return (replica?.dataLps ?? lv.lps.length) * engine.vg.ppSizeBytes
  }

  /** Refuses opens the replica semantics forbid (copy not complete, write to a mirror target). */
  assertOpenable(vgName: string, lvName: string, writable: boolean): void {
    const { lv } = this.#locate(vgName, lvName)
    const replica = replicaOf(lv)
    if (replica === undefined) return
    if (replica.kind === 'clone' && replica.state === 'invalid') {
      throw lsm('LSM_ERR_INVALIDATED_CLONE', `clone "${lvName}" was invalidated: ${replica.error ?? 'pool full'}`, {
        hint: `Remove it with lvmfs lvremove ${vgName} ${lvName}.` })
    }
    if (replica.kind === 'copy' && replica.state !== 'complete' && replica.state !== 'split') {
      throw lsm('LSM_ERR_REPLICA_BUSY', `copy "${lvName}" is not complete (job ${replica.jobId ?? '?'})`, {
        hint: `Wait with lvmfs job ${replica.jobId ?? ''} --wait.` })
    }
    if (writable && replica.kind.startsWith('mirror') && replica.state !== 'split') {
      throw lsm('LSM_ERR_REPLICA_BUSY', `mirror target "${lvName}" is read-only while mirrored`, {
        hint: `Make it independent with lvmfs replica split ${vgName}/${lvName}.` })
    }
  }

  #checkRange(vgName: string, lvName: string, offsetBytes: number, lengthBytes: number): void {
    const size = this.volumeSizeBytes(vgName, lvName)
    if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0 || offsetBytes + lengthBytes > size) {
      throw lsm('MIRROR_BAD_RANGE', `range [${offsetBytes}, +${lengthBytes}) outside "${lvName}"`, {
        detail: `The volume holds ${size} bytes.` })
    }
  }

  async read(vgName: string, lvName: string, buffer: Uint8Array, offsetBytes: number): Promise<void> {
    this.assertOpenable(vgName, lvName, false)
    this.#checkRange(vgName, lvName, offsetBytes, buffer.length)
    const located = this.#locate(vgName, lvName)
    const replica = replicaOf(located.lv)
    if (replica === undefined) return await this.io.read(located.engine, located.lv, buffer, offsetBytes)
    if (replica.kind !== 'clone') {
      return await this.io.read(located.engine, located.lv, buffer, offsetBytes + located.engine.vg.ppSizeBytes)
    }
    await this.#forChunks(vgName, offsetBytes, buffer.length, async (chunk, at, length, bufferAt) => {
      await this.#readCloneChunk(located, chunk, buffer.subarray(bufferAt, bufferAt + length), at)
    })
  }

  async #forChunks(vgName: string, offsetBytes: number, lengthBytes: number,
    fn: (chunk: number, inChunkBytes: number, length: number, bufferAt: number) => Promise<void>): Promise<void> {
    const pp = this.#pp(vgName)
    let done = 0
    while (done < lengthBytes) {
      const at = offsetBytes + done
      const chunk = Math.floor(at / pp)
      const length = Math.min(lengthBytes - done, (chunk + 1) * pp - at)
      await fn(chunk, at - chunk * pp, length, done)
      done += length
    }
  }

  async #readCloneChunk(clone: Located, chunk: number, out: Uint8Array, inChunkBytes: number): Promise<void> {
    const pp = clone.engine.vg.ppSizeBytes
    const owned = this.#ownedLp(this.#fresh(clone), chunk)
    if (owned !== undefined) return await this.io.read(clone.engine, this.#fresh(clone), out, owned * pp + inChunkBytes)
    const replica = replicaOf(clone.lv)!
    const origin = this.#sourceOfReplica(replica)
    const release = await this.#locks.lock(this.#chunkKey(replica.source.vg, origin.lv.lvId, chunk))
    try {
      const now = this.#fresh(clone)
      const ownedNow = this.#ownedLp(now, chunk)
      this.#assertCloneValid(now)
      if (ownedNow !== undefined) await this.io.read(clone.engine, now, out, ownedNow * pp + inChunkBytes)
      else await this.io.read(origin.engine, origin.lv, out, chunk * pp + inChunkBytes)
    } finally {
      release()
    }
  }

  #ownedLp(clone: LvDescriptor, chunk: number): number | undefined {
    const index = replicaOf(clone)?.chunks?.indexOf(chunk) ?? -1
    return index < 0 ? undefined : index + 1
  }

  #assertCloneValid(clone: LvDescriptor): void {
    const replica = replicaOf(clone)
    if (replica?.state === 'invalid') {
      throw lsm('LSM_ERR_INVALIDATED_CLONE', `clone "${clone.name}" was invalidated: ${replica.error ?? 'pool full'}`)
    }
  }

  async write(vgName: string, lvName: string, data: Uint8Array, offsetBytes: number): Promise<void> {
    this.assertOpenable(vgName, lvName, true)
    this.#checkRange(vgName, lvName, offsetBytes, data.length)
    if (data.length === 0) return
    const located = this.#locate(vgName, lvName)
    const replica = replicaOf(located.lv)
    if (replica === undefined) return await this.#writeSource(vgName, located, data, offsetBytes)
    if (replica.kind === 'clone') {
      await this.#forChunks(vgName, offsetBytes, data.length, async (chunk, at, length, bufferAt) => {
        await this.#writeCloneChunk(located, chunk, data.subarray(bufferAt, bufferAt + length), at)
      })
      return
    }
    if (replica.state === 'split') await this.#noteReplicaWrittenApart(vgName, located)
    await this.io.write(located.engine, located.lv, data, offsetBytes + located.engine.vg.ppSizeBytes)
  }

  async #writeCloneChunk(clone: Located, chunk: number, data: Uint8Array, inChunkBytes: number): Promise<void> {
    const pp = clone.engine.vg.ppSizeBytes
    let owned = this.#ownedLp(this.#fresh(clone), chunk)
    if (owned === undefined) {
      const replica = replicaOf(clone.lv)!
      const origin = this.#sourceOfReplica(replica)
      const release = await this.#locks.lock(this.#chunkKey(replica.source.vg, origin.lv.lvId, chunk))
      try {
        this.#assertCloneValid(this.#fresh(clone))
        owned = this.#ownedLp(this.#fresh(clone), chunk) ?? await this.#copyChunkToClone(origin, clone, chunk, 'clone-write')
      } finally {
        release()
      }
      await this.#options.gates?.remap(clone.engine.vg.name, [clone.lv.name])
    }
    await this.io.write(clone.engine, this.#fresh(clone), data, owned * pp + inChunkBytes)
  }

  /**
   * Gives the clone its own partition for `chunk`, holding the origin's current data, and
   * commits the chunk map. Caller holds the origin chunk lock. A pool without a free partition
   * fails a clone write (NOT_ENOUGH_SPACE) but invalidates the clone for an origin write.
   */
  async #copyChunkToClone(origin: Located, clone: Located, chunk: number, why: 'clone-write' | 'origin-write'): Promise<number> {
    // The chunk map is positional (chunks[i] lives in own LP i + 1): two copy-on-writes of one
    // clone running at once would pick the same LP and the later map commit would drop the
    // earlier chunk. One at a time per clone; different chunks of it wait for each other.
    const release = await this.#cloneLocks.lock(`${clone.engine.vg.vgId}:${clone.lv.lvId}`)
    try {
      return await this.#copyChunkToCloneLocked(origin, clone, chunk, why)
    } finally {
      release()
    }
  }

  async #copyChunkToCloneLocked(origin: Located, clone: Located, chunk: number,
    why: 'clone-write' | 'origin-write'): Promise<number> {
    const pp = clone.engine.vg.ppSizeBytes
    let lv = this.#fresh(clone)
    const replica = replicaOf(lv)!
    const chunks = replica.chunks ?? []
    const ownLp = chunks.length + 1
    // Partitions beyond the map (allocated ahead, or left by a crash between the extend and the
    // map commit) are used first. Extending CLONE_EXTEND_LPS at a time saves a descriptor commit
    // on most copy-on-writes; a nearly full pool gets exactly one.
    if (lv.lps.length <= ownLp) {
      const ahead = Math.min(CLONE_EXTEND_LPS, replica.dataLps - chunks.length)
      try {
        lv = await clone.engine.vg.lvExtend(lv.name, ownLp + ahead - lv.lps.length).catch(async (error: unknown) => {
          if (ahead <= 1 || !isLvmfsError(error, 'LVM_NOFREEPPS')) throw error
          return await clone.engine.vg.lvExtend(lv.name, ownLp + 1 - lv.lps.length)
        })
      } catch (error) {
        if (!isLvmfsError(error, 'LVM_NOFREEPPS')) throw error
        if (why === 'clone-write') {
          throw lsm('LSM_ERR_NOT_ENOUGH_SPACE', `pool "${clone.engine.vg.name}" has no free partition for clone "${lv.name}"`,
            { cause: error, hint: 'Extend the pool (vgextend) or remove other volumes.' })
        }
        await clone.engine.vg.lvSetExt(lv.name, withReplica(lv, { ...replica, state: 'invalid',
          error: `no free partition for a copy-on-write of chunk ${chunk}` }))
        return -1
      }
    }
    const buffer = Buffer.alloc(pp)
    await this.io.read(origin.engine, this.#fresh(origin), buffer, chunk * pp)
    await this.io.write(clone.engine, lv, buffer, ownLp * pp)
    await this.io.flush(clone.engine, lv)
    const now = this.#fresh(clone)
    await clone.engine.vg.lvSetExt(now.name, withReplica(now, { ...replicaOf(now)!, chunks: [...chunks, chunk] }))
    return ownLp
  }

  async #writeSource(vgName: string, source: Located, data: Uint8Array, offsetBytes: number): Promise<void> {
    const pp = source.engine.vg.ppSizeBytes
    const first = Math.floor(offsetBytes / pp)
    const last = Math.floor((offsetBytes + data.length - 1) / pp)
    const chunks: number[] = []
    for (let chunk = first; chunk <= last; chunk++) chunks.push(chunk)
    if (this.#children(vgName, source.lv).length === 0 && sourceOf(source.lv) === undefined) {
      return await this.io.write(source.engine, source.lv, data, offsetBytes)
    }
    const release = await this.#locks.lockAll(chunks.map((chunk) => this.#chunkKey(vgName, source.lv.lvId, chunk)))
    let count: number | undefined
    let journaled = false
    try {
      count = await this.#beforeSourceWrite(vgName, source, chunks, false)
      const lv = this.#fresh(source)
      const writes = [this.io.write(source.engine, lv, data, offsetBytes)]
      for (const child of this.#children(vgName, lv)) {
        if (child.replica.kind !== 'mirror-sync' || child.replica.state === 'split') continue
        writes.push(this.#writeSyncTarget(child, chunks, data, offsetBytes))
      }
      await Promise.all(writes)
      if (count !== undefined) this.#journal(vgName, lv, count, data, offsetBytes)
      journaled = true
    } finally {
      release()
      if (count !== undefined) this.#settleCount(vgName, source.lv, count, journaled)
    }
  }

  async #writeSyncTarget(child: ChildLocated, chunks: readonly number[], data: Uint8Array,
    offsetBytes: number): Promise<void> {
    const pp = child.engine.vg.ppSizeBytes
    const run = child.replica.jobId === undefined ? undefined : this.#jobs.get(child.replica.jobId)
    const complete = child.replica.state === 'complete'
    for (const chunk of chunks) {
      if (!complete && (run === undefined || !isCopied(run.copied, chunk))) continue
      const from = Math.max(offsetBytes, chunk * pp)
      const to = Math.min(offsetBytes + data.length, (chunk + 1) * pp)
      await this.io.write(child.engine, child.lv, data.subarray(from - offsetBytes, to - offsetBytes), from + pp)
    }
  }

  async flush(vgName: string, lvName: string): Promise<void> {
    const located = this.#locate(vgName, lvName)
    await this.io.flush(located.engine, located.lv)
    for (const child of this.#children(vgName, located.lv)) {
      if (child.replica.kind === 'mirror-sync' && child.replica.state !== 'split') await this.io.flush(child.engine, child.lv)
    }
  }

  /**
   * Everything that must happen before a source's chunks change: copy-on-write into clones,
   * pushing uncopied partitions of running copies, dirty marking (with a new commit count) for
   * asynchronous mirrors, and a new source generation after a split. Caller holds the chunk
   * locks. Returns the commit count given to this write when the source has async mirrors.
   */
  async #beforeSourceWrite(vgName: string, source: Located, chunks: readonly number[],
    native: boolean): Promise<number | undefined> {
    const children = this.#children(vgName, source.lv)
    const remap = new Set<string>()
    let count: number | undefined
    for (const child of children) {
      const { replica } = child
      if (replica.state === 'split') continue
      if (replica.kind === 'clone' && replica.state === 'complete') {
        for (const chunk of chunks) {
          if (chunk >= replica.dataLps || (replicaOf(this.#fresh(child))?.chunks ?? []).includes(chunk)) continue
          if (replicaOf(this.#fresh(child))?.state !== 'complete') break
          await this.#copyChunkToClone(source, child, chunk, 'origin-write')
          remap.add(child.lv.name)
        }
      } else if (replica.kind === 'copy' && replica.state === 'in-progress') {
        for (const chunk of chunks) await this.#pushCopy(source, child, chunk)
      } else if (replica.kind === 'mirror-async') {
        if (count === undefined) {
          count = await this.#nextCount(vgName, source)
          // From here on the count must be settled, whatever happens.
          if (native) this.#native.add(keyOf(vgName, source.lv.name))
        }
        try {
          await this.#stageBeforeWrite(source, child, chunks)
          await this.#markDirty(vgName, source, child, chunks, count)
        } catch (error) {
          this.#settleCount(vgName, source.lv, count, false)
          throw error
        }
      }
    }
    try {
      await this.#noteSourceWrittenApart(source, children)
    } catch (error) {
      if (count !== undefined) this.#settleCount(vgName, source.lv, count, false)
      throw error
    }
    // The native path journals nothing: its count is settled at once.
    if (native && count !== undefined) this.#settleCount(vgName, source.lv, count, true)
    try {
      for (const name of remap) {
        const child = children.find((c) => c.lv.name === name)!
        await this.#options.gates?.remap(child.engine.vg.name, [name])
      }
    } catch (error) {
      if (count !== undefined) this.#settleCount(vgName, source.lv, count, false)
      throw error
    }
    return count
  }

  // --- native hooks ----------------------------------------------------------------------------

  /**
   * The daemon's "before first write" gate hook. Call it for a write into a closed gate region
   * (`regionIndex` in units of the map's `gateBytes`) of ANY volume the engine returned a map
   * for, before opening the gate; open the gate only after it resolves. It copies chunks
   * (copy-on-write for clones, first write to a clone's shared chunk, pushes for copies),
   * records async changes with a new commit count, and awaits GateControl.remap for volumes
   * whose map changed. A rejection means: fail the write with the error's errno.
   */
  async beforeWriteRegion(vgName: string, lvName: string, regionIndex: number, gateBytes: number): Promise<void> {
    const located = this.#locate(vgName, lvName)
    const pp = located.engine.vg.ppSizeBytes
    const chunk = Math.floor((regionIndex * gateBytes) / pp)
    const replica = replicaOf(located.lv)
    if (replica !== undefined) {
      this.assertOpenable(vgName, lvName, true)
      if (replica.kind === 'clone') {
        if (this.#ownedLp(located.lv, chunk) === undefined) {
          await this.#writeCloneChunk(located, chunk, new Uint8Array(0), 0)
        }
      } else if (replica.state === 'split') {
        await this.#noteReplicaWrittenApart(vgName, located)
      }
      return
    }
    const release = await this.#locks.lock(this.#chunkKey(vgName, located.lv.lvId, chunk))
    try {
      await this.#beforeSourceWrite(vgName, located, [chunk], true)
    } finally {
      release()
    }
  }

  /**
   * The native plan for a volume (rebuild it after every VG change and whenever GateControl.remap
   * is called). `fdOf(vgName, pvIndex)` gives the daemon's backing fd of a PV.
   *  - plain/source LV: the mirror map, plus the copies of synchronous mirror targets for the
   *    partitions they hold (writes reach both natively), gated at partition size or smaller
   *    when the source has clones, copies or async mirrors;
   *  - clone: owned chunks on its own partitions, shared chunks on the origin's (gates closed
   *    until the chunk is owned: the hook copies it);
   *  - copy/mirror target: its data partitions (LP 1..), read-only while mirrored.
   */
  /** Whether this engine gates the volume's writes itself (copy-on-write of a clone, change
   * tracking of a source, a split replica's first write): its gate hooks must keep running. */
  gatesWrites(vgName: string, lvName: string): boolean {
    const { lv } = this.#locate(vgName, lvName)
    const replica = replicaOf(lv)
    if (replica !== undefined) return replica.kind === 'clone' || replica.state === 'split'
    return this.#children(vgName, lv).some((c) => c.replica.state !== 'split') || splitUnwritten(lv)
  }

  volumeMapOf(vgName: string, lvName: string, fdOf: (vgName: string, pvIndex: number) => number): VolumeMap {
    const located = this.#locate(vgName, lvName)
    const { engine, lv } = located
    const pp = engine.vg.ppSizeBytes
    const replica = replicaOf(lv)
    const base = engine.mirror.buildVolumeMap(lv, (pvIndex) => fdOf(vgName, pvIndex))
    if (replica === undefined) {
      const children = this.#children(vgName, lv).filter((c) => c.replica.state !== 'split')
      if (children.length === 0 && !splitUnwritten(lv)) return base
      const extents = base.extents.map((extent, lp) => {
        const extra = children.filter((c) => c.replica.kind === 'mirror-sync' && (c.replica.state === 'complete' ||
          isCopied(this.#jobs.get(c.replica.jobId ?? '')?.copied ?? new Uint8Array(), lp)))
          .flatMap((c) => this.#extentOf(c, lp + 1, fdOf).copies)
        return { copies: [...extent.copies, ...extra].slice(0, 3) }
      })
      const gateBytes = base.gateBytes === 0 ? pp : Math.min(base.gateBytes, pp)
      return { ...base, extents, gateBytes }
    }
    const own = (index: number): VolumeExtent => this.#extentOf(located, index, fdOf)
    if (replica.kind === 'clone') {
      const origin = this.#sourceOfReplica(replica)
      const extents = Array.from({ length: replica.dataLps }, (_, chunk) => {
        const owned = this.#ownedLp(lv, chunk)
        return owned !== undefined ? own(owned) : this.#extentOf(origin, chunk, fdOf)
      })
      return { ...base, sizeBytes: replica.dataLps * pp, extents, gateBytes: pp, readOnly: false }
    }
    const extents = Array.from({ length: replica.dataLps }, (_, lp) => own(lp + 1))
    return { ...base, sizeBytes: replica.dataLps * pp, extents, gateBytes: replica.state === 'split' ? pp : 0,
      readOnly: replica.kind.startsWith('mirror') && replica.state !== 'split' }
  }

  /**
   * For the daemon's copy-error path: which synchronous mirror target (if any) copy `copyIndex`
   * of extent `lp` in volumeMapOf(vg, lv) belongs to. Copies below the LV's own copy count are
   * the mirror engine's business; a failed write on a target copy must fail the application
   * write (EIO: it was not acknowledged by both), never mark anything stale.
   */
  syncTargetOfCopy(vgName: string, lvName: string, lp: number,
    copyIndex: number): { vg: string, lv: string } | undefined {
    const { lv } = this.#locate(vgName, lvName)
    if (replicaOf(lv) !== undefined || copyIndex < lv.copies) return undefined
    let index = lv.copies
    for (const child of this.#children(vgName, lv)) {
      if (child.replica.kind !== 'mirror-sync' || child.replica.state === 'split') continue
      const included = child.replica.state === 'complete' ||
        isCopied(this.#jobs.get(child.replica.jobId ?? '')?.copied ?? new Uint8Array(), lp)
      if (!included) continue
      const copies = this.#fresh(child).lps[lp + 1]?.length ?? 0
      if (copyIndex < index + copies) return { vg: child.engine.vg.name, lv: child.lv.name }
      index += copies
    }
    return undefined
  }

  #extentOf(located: Located, lp: number, fdOf: (vgName: string, pvIndex: number) => number): VolumeExtent {
    const vg = located.engine.vg
    const lv = this.#fresh(located)
    const copies = lv.lps[lp]
    assert(copies !== undefined, `LP ${lp} of ${lv.name} does not exist`)
    return { copies: copies.map((copy) => {
      const stale = vg.pvState(copy.pvIndex) !== 'active' || vg.isStale(copy.pvIndex, copy.pp)
      return stale ? { fd: -1, offsetBytes: 0, stale } :
        { fd: fdOf(vg.name, copy.pvIndex), offsetBytes: vg.ppOffsetBytes(copy.pvIndex, copy.pp), stale }
    }) }
  }

  // --- copies and initial mirror syncs (jobs) -------------------------------------------------

  async #pushCopy(source: Located, child: ChildLocated, chunk: number): Promise<void> {
    const run = this.#jobs.get(child.replica.jobId ?? '')
    if (run === undefined) {
      // The job is not running in this process: copy and persist the partition right here.
      const sb = await this.#superblock(child)
      if (isCopied(sb.copied, chunk)) return
      await this.#copyLp(source, child, chunk)
      const copied = sb.copied.slice()
      setCopied(copied, chunk)
      await this.#persistCopied(child, copied, 0)
      return
    }
    if (isCopied(run.persisted, chunk)) return
    if (!isCopied(run.copied, chunk)) {
      await this.#copyLp(source, child, chunk)
      setCopied(run.copied, chunk)
    }
    const snapshot = run.copied.slice()
    await this.#persistCopied(child, snapshot, 0)
    orInto(run.persisted, snapshot)
  }

  /** Copies source LP `lp` into the target's LP `targetLp` (by default its data LP for `lp`). */
  async #copyLp(source: Located, target: Located, lp: number, buffer = Buffer.alloc(source.engine.vg.ppSizeBytes),
    targetLp = lp + 1): Promise<void> {
    const pp = source.engine.vg.ppSizeBytes
    await this.io.read(source.engine, this.#fresh(source), buffer, lp * pp)
    await this.io.write(target.engine, this.#fresh(target), buffer, targetLp * pp)
  }

  async #superblock(target: Located): Promise<ReplicaSuperblock> {
    const key = keyOf(target.engine.vg.name, target.lv.name)
    const cached = this.#sb.get(key)
    if (cached !== undefined) return cached
    const sb = await readSuperblock(target.engine.vg, this.#fresh(target))
    this.#sb.set(key, sb)
    return sb
  }

  /** Serialised superblock update: flush the target's data first, then write seq + 1. */
  async #updateSuperblock(target: Located, change: (sb: ReplicaSuperblock) => ReplicaSuperblock,
    flushData = true): Promise<ReplicaSuperblock> {
    const key = keyOf(target.engine.vg.name, target.lv.name)
    const release = await this.#sbLocks.lock(key)
    try {
      if (flushData) await this.io.flush(target.engine, this.#fresh(target))
      const current = await this.#superblock(target)
      const next = { ...change(current), seq: current.seq + 1, updatedAtMs: this.#now() }
      assert(next.lwm >= current.lwm, 'a low-water mark never decreases')
      try {
        await writeSuperblock(target.engine.vg, this.#fresh(target), next)
      } catch (error) {
        throw lsm('LWM_ESITEDN2', `writing the superblock of "${target.lv.name}" failed`, { cause: error })
      }
      this.#sb.set(key, next)
      return next
    } finally {
      release()
    }
  }

  async #persistCopied(target: Located, copied: Uint8Array, addFlags: number): Promise<ReplicaSuperblock> {
    return await this.#updateSuperblock(target, (sb) => ({ ...sb, copied: copied.slice(), flags: sb.flags | addFlags }))
  }

  #startJob(jobId: string): void {
    if (this.#jobs.has(jobId) || this.#stopping) return
    const run: JobRun = { id: jobId, copied: new Uint8Array(), persisted: new Uint8Array(), done: Promise.resolve() }
    this.#jobs.set(jobId, run)
    run.done = this.#runJob(run).catch(async (error: unknown) => {
      run.error = error
      if (this.#stopping) return
      await this.#setJobState(jobId, 'error', error instanceof Error ? error.message : String(error)).catch(() => undefined)
    })
  }

  #jobTarget(jobId: string): ChildLocated {
    const parsed = parseJobId(jobId)
    const engine = parsed === undefined ? undefined : this.#engines.get(parsed.vg)
    const lv = parsed === undefined ? undefined : engine?.vg.lvById(parsed.lvId)
    const replica = lv === undefined ? undefined : replicaOf(lv)
    if (engine === undefined || lv === undefined || replica === undefined || replica.jobId !== jobId) {
      throw lsm('LSM_ERR_NOT_FOUND_JOB', `no job "${jobId}"`, { context: { job: jobId } })
    }
    return { engine, lv, replica }
  }

  async #runJob(run: JobRun): Promise<void> {
    const target = this.#jobTarget(run.id)
    const source = this.#sourceOfReplica(target.replica)
    const sb = await this.#superblock(target)
    run.copied = sb.copied.slice()
    const async = target.replica.kind === 'mirror-async'
    let startCount = 0
    if (async) {
      const state = this.#asyncStateOf(target.engine.vg.name, target.lv)
      // Chunks written after they were copied (before a restart) are copied again.
      for (const chunk of state.persistedDirty) {
        run.copied[chunk >> 3] = (run.copied[chunk >> 3] ?? 0) & ~(1 << (chunk & 7))
      }
      startCount = await this.#currentCount(target.replica.source.vg, source.lv)
    }
    run.persisted = run.copied.slice()
    const total = target.replica.dataLps
    const pp = target.engine.vg.ppSizeBytes
    const every = this.#options.checkpointLps ?? Math.max(1, Math.floor((256 * 1024 * 1024) / pp))
    let since = 0
    let next = 0
    // A few partitions in flight: each is copied under its own chunk lock, so source writes
    // (and synchronous mirror writes) to it wait; the checkpoint records completed ones only.
    const worker = async (): Promise<void> => {
      const buffer = Buffer.alloc(pp)
      for (;;) {
        const lp = next++
        if (lp >= total || this.#stopping) return
        if (isCopied(run.copied, lp)) continue
        const release = await this.#locks.lock(this.#chunkKey(target.replica.source.vg, source.lv.lvId, lp))
        try {
          // Native writes into the partition wait in the gate hook (which takes this lock).
          await this.#options.gates?.closeChunkGates(target.replica.source.vg, source.lv.name, lp)
          if (!isCopied(run.copied, lp)) {
            await this.#copyLp(source, target, lp, buffer)
            setCopied(run.copied, lp)
            // A synchronous mirror's copy of this partition joins the source's native map now.
            if (target.replica.kind === 'mirror-sync') await this.#options.gates?.remap(target.replica.source.vg, [source.lv.name])
          }
        } finally {
          release()
        }
        await this.#options.onStep?.({ kind: 'copied', job: run.id, lp, doneLps: countCopied(run.copied), totalLps: total })
        if (++since >= every) {
          since = 0
          const snapshot = run.copied.slice()
          await this.#persistCopied(target, snapshot, 0)
          orInto(run.persisted, snapshot)
        }
      }
    }
    await Promise.all(Array.from({ length: 4 }, worker))
    if (this.#stopping) return
    await this.#finishJob(run, target, startCount)
  }

  async #finishJob(run: JobRun, target: ChildLocated, startCount: number): Promise<void> {
    const flags = FLAG_COMPLETE | (target.replica.kind === 'mirror-async' ? 0 : FLAG_CONSISTENT)
    await this.#persistCopied(target, run.copied, flags)
    run.persisted = run.copied.slice()
    if (target.replica.kind === 'mirror-async') {
      // Chunks were copied at different times: the copy equals a prefix of the source's writes
      // only if none happened during the job; otherwise the first propagation makes it one.
      const source = this.#fresh(this.#sourceOfReplica(target.replica))
      const quiet = await this.#currentCount(target.replica.source.vg, source) === startCount
      await this.#updateSuperblock(target, (sb) => ({ ...sb, lwm: Math.max(sb.lwm, startCount),
        flags: quiet ? sb.flags | FLAG_CONSISTENT : sb.flags & ~FLAG_CONSISTENT, lwmAtMs: this.#now() }))
    }
    await this.#setJobState(run.id, 'complete')
    await this.#options.gates?.remap(target.replica.source.vg, [target.replica.source.lv])
    await this.#options.gates?.remap(target.engine.vg.name, [target.lv.name])
    if (target.replica.kind === 'mirror-async') this.#startPropagator(target.engine.vg.name, this.#fresh(target))
  }

  async #setJobState(jobId: string, state: 'complete' | 'error', error?: string): Promise<void> {
    const target = this.#jobTarget(jobId)
    const lv = this.#fresh(target)
    await target.engine.vg.lvSetExt(lv.name, withReplica(lv, { ...replicaOf(lv)!, state,
      ...(error === undefined ? {} : { error }) }))
  }

  /** lsm_job_status_volume_get: state and percent of a job (persisted in the target). */
  async job(jobId: string): Promise<JobStatus> {
    const target = this.#jobTarget(jobId)
    const { replica } = target
    const volume = { vg: target.engine.vg.name, lv: target.lv.name }
    if (replica.state === 'error') {
      return { id: jobId, state: 'ERROR', percent: 0, kind: replica.kind, volume, ...(replica.error ? { error: replica.error } : {}) }
    }
    if (replica.state !== 'in-progress') return { id: jobId, state: 'COMPLETE', percent: 100, kind: replica.kind, volume }
    const run = this.#jobs.get(jobId)
    const copied = run?.copied ?? (await this.#superblock(target)).copied
    const percent = Math.min(99, Math.floor((countCopied(copied) * 100) / Math.max(1, replica.dataLps)))
    return { id: jobId, state: 'INPROGRESS', percent, kind: replica.kind, volume }
  }

  /** Every job recorded in the online VGs. */
  async jobs(): Promise<JobStatus[]> {
    const out: JobStatus[] = []
    for (const engine of this.#engines.values()) {
      if (engine.vg.state !== 'online') continue
      for (const lv of engine.vg.descriptor.lvs) {
        const jobId = replicaOf(lv)?.jobId
        if (jobId !== undefined) out.push(await this.job(jobId))
      }
    }
    return out
  }

  /** Runs (or resumes) the job in this process and resolves when it is no longer in progress. */
  async waitJob(jobId: string, onProgress?: (status: JobStatus) => void): Promise<JobStatus> {
    this.#jobTarget(jobId)
    this.#startJob(jobId)
    for (;;) {
      const status = await this.job(jobId)
      onProgress?.(status)
      if (status.state !== 'INPROGRESS') return status
      const run = this.#jobs.get(jobId)
      if (run === undefined) return status
      await Promise.race([run.done, new Promise((resolve) => setTimeout(resolve, 200).unref())])
      if (run.error !== undefined && this.#stopping) return await this.job(jobId)
    }
  }

  // --- asynchronous mirrors ------------------------------------------------------------------

  #sourceKey(vgName: string, source: LvDescriptor): string {
    return `${vgName}:${source.lvId}`
  }

  /**
   * The live commit count of a source. After a restart it starts at the persisted floor, or at
   * the highest mark of its targets if that is higher (chlwm may have raised one), so counts
   * only ever rise.
   */
  async #currentCount(vgName: string, source: LvDescriptor): Promise<number> {
    const key = this.#sourceKey(vgName, source)
    const cached = this.#counts.get(key)
    if (cached !== undefined) return cached
    const lwms: number[] = []
    for (const child of this.#children(vgName, source)) {
      if (child.replica.kind !== 'mirror-async') continue
      lwms.push((await this.#superblock(child).catch(() => undefined))?.lwm ?? 0)
    }
    const count = Math.max(this.#counts.get(key) ?? 0, sourceOf(source)?.commitCount ?? 0, ...lwms)
    this.#counts.set(key, count)
    return count
  }

  /**
   * The next commit count. Counts are reserved in blocks: the persisted floor (source ext) is
   * raised to count + COUNT_RESERVE before a count beyond the previous reservation is handed
   * out, so after a crash counting restarts above every count given before it (one descriptor
   * commit per COUNT_RESERVE writes).
   */
  async #nextCount(vgName: string, source: Located): Promise<number> {
    const key = this.#sourceKey(vgName, source.lv)
    await this.#currentCount(vgName, source.lv)
    // Read and bump with no await in between: concurrent writers get distinct counts.
    const count = this.#counts.get(key)! + 1
    this.#counts.set(key, count)
    let pending = this.#pending.get(key)
    if (pending === undefined) this.#pending.set(key, pending = new Set())
    pending.add(count)
    const floor = sourceOf(this.#fresh(source))?.commitCount ?? 0
    if (count > floor) {
      await this.#updateSource(source, (ext) => ({ ...ext,
        commitCount: Math.max(ext.commitCount, count + COUNT_RESERVE) }))
    }
    return count
  }

  /**
   * A write's count is settled once it is journaled, or once it failed (then the journals of
   * the source's async targets are dropped: the next cycle copies the changed chunks, so a
   * partially applied failed write is never left out of the target).
   */
  #settleCount(vgName: string, source: LvDescriptor, count: number, journaled: boolean): void {
    this.#pending.get(this.#sourceKey(vgName, source))?.delete(count)
    if (journaled) return
    for (const child of this.#children(vgName, source)) {
      if (child.replica.kind === 'mirror-async') this.#async.get(keyOf(child.engine.vg.name, child.lv.name))?.dropJournal(Infinity)
    }
  }

  /** Waits until every write with a count at or below `count` is settled (journal complete). */
  async #settled(vgName: string, source: LvDescriptor, count: number): Promise<void> {
    const pending = this.#pending.get(this.#sourceKey(vgName, source))
    while (pending !== undefined && [...pending].some((value) => value <= count)) {
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
  }

  #asyncStateOf(targetVg: string, target: LvDescriptor): AsyncState {
    const key = keyOf(targetVg, target.name)
    let state = this.#async.get(key)
    if (state === undefined) {
      const replica = replicaOf(target)!
      const sourceLv = this.#engines.get(replica.source.vg)?.vg.lvById(replica.source.lvId)
      const dirty = sourceLv === undefined ? [] : sourceOf(sourceLv)?.dirty[key] ?? []
      // A new mirror journals from its first write; after a restart the journal is gone.
      const fresh = replica.state === 'in-progress' && dirty.length === 0
      state = new AsyncState(fresh ? 1 : Infinity)
      for (const chunk of dirty) {
        state.persistedDirty.add(chunk)
        state.lastCount.set(chunk, 0)
      }
      this.#async.set(key, state)
    }
    return state
  }

  async #markDirty(vgName: string, source: Located, child: ChildLocated, chunks: readonly number[],
    count: number): Promise<void> {
    const state = this.#asyncStateOf(child.engine.vg.name, child.lv)
    state.note(count, this.#now())
    const fresh: number[] = []
    for (const chunk of chunks) {
      state.lastCount.set(chunk, count)
      if (!state.persistedDirty.has(chunk)) fresh.push(chunk)
    }
    if (fresh.length === 0) return
    for (const chunk of fresh) state.persistedDirty.add(chunk)
    await this.#persistDirty(vgName, source)
  }

  /** Commits the live dirty sets of every async target of `source` and the commit count floor. */
  async #persistDirty(vgName: string, source: Located): Promise<void> {
    await this.#updateSource(source, (ext) => {
      const dirty: Record<string, number[]> = {}
      for (const child of this.#children(vgName, this.#fresh(source))) {
        if (child.replica.kind !== 'mirror-async' || child.replica.state === 'split') continue
        const key = keyOf(child.engine.vg.name, child.lv.name)
        const state = this.#async.get(key)
        dirty[key] = state === undefined ? [...(ext.dirty[key] ?? [])] : [...state.persistedDirty].sort((a, b) => a - b)
      }
      return { ...ext, dirty }
    })
  }

  #journal(vgName: string, source: LvDescriptor, count: number, data: Uint8Array, offsetBytes: number): void {
    if (this.#native.has(keyOf(vgName, source.name))) return
    const atMs = this.#now()
    for (const child of this.#children(vgName, source)) {
      if (child.replica.kind !== 'mirror-async' || child.replica.state === 'split') continue
      const state = this.#asyncStateOf(child.engine.vg.name, child.lv)
      const bound = this.#options.journalBytesMax ?? 64 * 1024 * 1024
      state.append({ count, offsetBytes, data: Buffer.from(data), atMs }, bound)
    }
  }

  #startPropagator(targetVg: string, target: LvDescriptor): void {
    const replica = replicaOf(target)
    if (replica === undefined || this.#stopping) return
    const state = this.#asyncStateOf(targetVg, target)
    if (state.timer !== undefined) return
    state.timer = setInterval(() => {
      void this.propagate(targetVg, target.name).catch(() => undefined)
    }, replica.intervalMs ?? 1000)
    state.timer.unref()
  }

  /**
   * One propagation cycle of an async mirror target: everything the source committed up to the
   * count C taken at the start reaches the target, in commit-count order when the journal covers
   * it (else by copying changed chunks, target flagged inconsistent meanwhile), then the mark is
   * raised to C. Cycles of one target never overlap. Resolves with the new mark.
   */
  propagate(targetVg: string, targetName: string): Promise<number> {
    const target = this.#locate(targetVg, targetName)
    const state = this.#asyncStateOf(targetVg, target.lv)
    const run = state.running.then(() => this.#propagateNow(target, state))
    state.running = run.then(() => undefined, () => undefined)
    return run
  }

  async #propagateNow(target: Located, state: AsyncState): Promise<number> {
    const replica = replicaOf(this.#fresh(target))
    if (replica?.kind !== 'mirror-async') throw lsm('LWM_ENOSTORE', `"${target.lv.name}" is not an asynchronous mirror`)
    const sb = await this.#superblock(target)
    if (replica.state !== 'complete' || (sb.flags & FLAG_COMPLETE) === 0) return sb.lwm
    const source = this.#sourceOfReplica(replica)
    this.#checkGenerations(source, target, sb)
    const count = await this.#currentCount(replica.source.vg, source.lv)
    if (count <= sb.lwm && state.lastCount.size === 0) return sb.lwm
    const targetKey = keyOf(target.engine.vg.name, target.lv.name)
    // Writes numbered up to `count` may still be between their count and their journal entry.
    await this.#settled(replica.source.vg, source.lv, count)
    if (state.journalFrom <= sb.lwm + 1 && !this.#native.has(keyOf(replica.source.vg, source.lv.name))) {
      for (const entry of state.journal) {
        if (entry.count <= sb.lwm || entry.count > count) continue
        const at = entry.offsetBytes + target.engine.vg.ppSizeBytes
        await this.io.write(target.engine, this.#fresh(target), entry.data, at)
        await this.#options.onStep?.({ kind: 'applied', target: targetKey, count: entry.count })
      }
    } else {
      await this.#catchUp(source, target, state, [...state.lastCount.keys()])
    }
    return await this.#raiseMark(source, target, state, count)
  }

  /**
   * Brings the target to the source's image at one instant, atomically: the changed chunks are
   * frozen together (every later write into one of them first copies it, see #stageBeforeWrite),
   * copied into staging partitions of the target beside its live ones, synced, and published by
   * one descriptor commit exchanging them with the live partitions. Before that commit the target
   * is its previous prefix, after it the prefix at the freeze; a crash leaves one or the other.
   * Without room in the pool for the staging partitions it falls back to copying in place.
   */
  async #catchUp(source: Located, target: Located, state: AsyncState, chunks: readonly number[]): Promise<void> {
    const sorted = [...new Set(chunks)].sort((a, b) => a - b)
    if (sorted.length === 0) return
    // Either way the target ends holding the source as copied, which may include writes counted
    // above `count`; replaying those from a journal later could step it back through a state
    // that is no prefix. From here on this target catches up by copies only.
    state.dropJournal(Infinity)
    const replica = replicaOf(this.#fresh(target))!
    let cycle: StagingCycle
    try {
      // The instant must freeze every chunk changed by then, not only those listed before the
      // staging allocation: a chunk first written meanwhile, followed by a write into a listed
      // chunk, would publish the later write without the earlier one. A chunk missing at the
      // instant aborts that freeze (nothing was staged) and the cycle retries with it; the set
      // only grows, so this ends within dataLps rounds.
      for (;;) {
        const staging = await this.#allocateStaging(target, sorted.length)
        if (staging === undefined) {
          state.staging = undefined
          return await this.#copyChangedChunks(source, target, sorted)
        }
        const attempt: StagingCycle = { slots: new Map(sorted.map((chunk, index) => [chunk, staging[index]!])),
          staged: new Set(), frozen: false }
        state.staging = attempt
        let missed: number[] = []
        await this.#freeze(replica.source.vg, source, sorted, () => {
          missed = [...state.lastCount.keys()].filter((chunk) => !attempt.slots.has(chunk))
          if (missed.length === 0) attempt.frozen = true
        })
        if (missed.length === 0) {
          cycle = attempt
          break
        }
        sorted.push(...missed)
        sorted.sort((a, b) => a - b)
      }
    } catch (error) {
      state.staging = undefined
      throw error
    }
    try {
      const targetKey = keyOf(target.engine.vg.name, target.lv.name)
      for (const chunk of sorted) {
        const release = await this.#locks.lock(this.#chunkKey(replica.source.vg, source.lv.lvId, chunk))
        try {
          await this.#stageChunk(source, target, cycle, chunk)
        } finally {
          release()
        }
        await this.#options.onStep?.({ kind: 'chunk', target: targetKey, chunk })
      }
    } finally {
      state.staging = undefined
    }
    await this.io.flush(target.engine, this.#fresh(target))
    const exchanges = sorted.map((chunk) => [chunk + 1, cycle.slots.get(chunk)!] as const)
    await target.engine.vg.lvSwapLps(target.lv.name, exchanges)
    await this.#options.gates?.remap(target.engine.vg.name, [target.lv.name])
    await this.#options.onStep?.({ kind: 'published', target: keyOf(target.engine.vg.name, target.lv.name) })
    await this.#trimStaging(target)
  }

  /** Target LPs past its data to stage `count` chunks in (reusing spares a crash left), or
   * undefined when the pool has no room for them. */
  async #allocateStaging(target: Located, count: number): Promise<number[] | undefined> {
    let lv = this.#fresh(target)
    const first = 1 + replicaOf(lv)!.dataLps
    const missing = first + count - lv.lps.length
    if (missing > 0) {
      try {
        lv = await target.engine.vg.lvExtend(lv.name, missing)
      } catch (error) {
        if (isLvmfsError(error, 'LVM_NOFREEPPS')) return undefined
        throw error
      }
    }
    return Array.from({ length: count }, (_, index) => first + index)
  }

  /** Frees the staging partitions after a cycle (they hold the previous image). */
  async #trimStaging(target: Located): Promise<void> {
    const lv = this.#fresh(target)
    const spare = lv.lps.length - 1 - replicaOf(lv)!.dataLps
    if (spare > 0) await target.engine.vg.lvReduce(lv.name, spare)
  }

  /**
   * The freeze instant. Natively: gates closed and drained with no opening in flight. In
   * process: at once; a writer that checked before holds its chunk lock across the write, and
   * the copier takes that lock, so the copy includes it.
   */
  async #freeze(sourceVg: string, source: Located, chunks: readonly number[], atInstant: () => void): Promise<void> {
    const gates = this.#options.gates
    if (gates === undefined) atInstant()
    else await gates.freezeChunks(sourceVg, source.lv.name, chunks, atInstant)
  }

  /** A write into a frozen chunk not yet staged copies it first (caller holds the chunk lock). */
  async #stageBeforeWrite(source: Located, child: ChildLocated, chunks: readonly number[]): Promise<void> {
    const cycle = this.#async.get(keyOf(child.engine.vg.name, child.lv.name))?.staging
    if (cycle === undefined || !cycle.frozen) return
    for (const chunk of chunks) await this.#stageChunk(source, child, cycle, chunk)
  }

  async #stageChunk(source: Located, target: Located, cycle: StagingCycle, chunk: number): Promise<void> {
    const lp = cycle.slots.get(chunk)
    if (lp === undefined || cycle.staged.has(chunk)) return
    await this.#copyLp(source, target, chunk, undefined, lp)
    cycle.staged.add(chunk)
  }

  /** The fallback without room for staging: copies in place, target flagged inconsistent. */
  async #copyChangedChunks(source: Located, target: Located, chunks: readonly number[]): Promise<void> {
    const replica = replicaOf(this.#fresh(target))!
    await this.#updateSuperblock(target, (sb) => ({ ...sb, flags: sb.flags & ~FLAG_CONSISTENT }), false)
    const targetKey = keyOf(target.engine.vg.name, target.lv.name)
    for (const chunk of [...chunks].sort((a, b) => a - b)) {
      await this.#options.gates?.closeChunkGates(replica.source.vg, source.lv.name, chunk)
      const release = await this.#locks.lock(this.#chunkKey(replica.source.vg, source.lv.lvId, chunk))
      try {
        await this.#copyLp(source, target, chunk)
      } finally {
        release()
      }
      await this.#options.onStep?.({ kind: 'chunk', target: targetKey, chunk })
    }
  }

  async #raiseMark(source: Located, target: Located, state: AsyncState, count: number): Promise<number> {
    const atMs = state.times.filter((sample) => sample.count <= count).at(-1)?.atMs ?? this.#now()
    const next = await this.#updateSuperblock(target, (sb) => ({ ...sb, lwm: Math.max(sb.lwm, count),
      lwmAtMs: Math.max(sb.lwmAtMs, atMs), flags: sb.flags | FLAG_CONSISTENT }))
    await this.#options.onStep?.({ kind: 'lwm', target: keyOf(target.engine.vg.name, target.lv.name), lwm: next.lwm })
    state.trim(next.lwm)
    const replica = replicaOf(this.#fresh(target))!
    let cleared = false
    for (const [chunk, last] of [...state.lastCount]) {
      if (last > next.lwm) continue
      const release = await this.#locks.lock(this.#chunkKey(replica.source.vg, source.lv.lvId, chunk))
      try {
        if ((state.lastCount.get(chunk) ?? Infinity) <= next.lwm) {
          state.lastCount.delete(chunk)
          cleared = state.persistedDirty.delete(chunk) || cleared
        }
      } finally {
        release()
      }
    }
    if (cleared) await this.#persistDirty(replica.source.vg, source)
    return next.lwm
  }

  #checkGenerations(source: Located, target: Located, sb: ReplicaSuperblock): void {
    const generation = sourceOf(this.#fresh(source))?.generation
    if (generation === undefined || generation.current === sb.generation.current) return
    const child = sourceOf(this.#fresh(source))?.children
      .find((c) => c.vg === target.engine.vg.name && c.lv === target.lv.name)
    const verdict = compareGenerations(generation, sb.generation, child?.base ?? sb.generation.current)
    throw lsm('LWM_GENERATION_CONFLICT', `"${source.lv.name}" and "${target.lv.name}" diverged (${verdict})`, {
      detail: `Source generation ${generation.current}, replica generation ${sb.generation.current}.`,
      hint: 'Choose the copy to keep; remove the other and replicate again.', context: { verdict } })
  }

  /** Lag of an async mirror target: commit counts, bytes and seconds behind its source. */
  async lag(targetVg: string, targetName: string): Promise<Lag> {
    const target = this.#locate(targetVg, targetName)
    const replica = replicaOf(target.lv)
    if (replica?.kind !== 'mirror-async') throw lsm('LWM_ENOSTORE', `"${targetName}" is not an asynchronous mirror`)
    const source = this.#sourceOfReplica(replica)
    const sb = await this.#superblock(target)
    const commitCount = await this.#currentCount(replica.source.vg, source.lv)
    const state = this.#asyncStateOf(targetVg, target.lv)
    const pending = [...state.lastCount.values()].filter((count) => count > sb.lwm).length
    const journalBytes = state.journal.filter((e) => e.count > sb.lwm).reduce((sum, e) => sum + e.data.length, 0)
    const bytes = state.journalFrom <= sb.lwm + 1 ? journalBytes : pending * target.engine.vg.ppSizeBytes
    const oldest = commitCount > sb.lwm ? state.oldestAbove(sb.lwm) : undefined
    return { commitCount, lwm: sb.lwm, commits: Math.max(0, commitCount - sb.lwm), bytes,
      seconds: oldest === undefined ? 0 : Math.max(0, (this.#now() - oldest) / 1000) }
  }

  // --- chlwm / primrec -----------------------------------------------------------------------

  /**
   * chlwm(gfs, site, lwm) on the replicated volume VG/LV. On the local site (the copy VG/LV
   * names) it sets the mark to max(lwm, current) and returns the previous mark; for another
   * site it returns that copy's mark and changes nothing. Site 1 is the source, whose mark is
   * its commit count.
   */
  async chlwm(vgName: string, lvName: string, site: number, lwm: number): Promise<number> {
    const uid = this.#options.uid?.() ?? process.getuid?.() ?? 0
    if (uid !== 0) throw lsm('LWM_EPERM', 'chlwm needs superuser authority', { context: { uid } })
    if (site === 0) throw lsm('LWM_EBADST', 'site 0 is not a site', { detail: 'Sites are numbered from 1 (the source).' })
    if (!Number.isSafeInteger(site) || site < 0 || !Number.isSafeInteger(lwm) || lwm < 0) {
      throw lsm('LWM_EINVAL', `invalid site ${site} or mark ${lwm}`, { detail: 'Both are non-negative integers.' })
    }
    const located = this.#locateReplicated(vgName, lvName)
    const copies = this.#sitesOf(located)
    const localSite = replicaOf(located.lv)?.site ?? 1
    const at = copies.find((copy) => copy.site === site)
    if (at === undefined) {
      throw lsm('LWM_EINVAL', `"${vgName}/${lvName}" has no copy at site ${site}`, {
        detail: `Sites: ${copies.map((copy) => copy.site).join(', ')}.` })
    }
    if (at.located === undefined) {
      throw lsm('LWM_ESITEDN1', `site ${site} (${at.vg}/${at.lv}) is down: its volume group is not online`)
    }
    if (site !== localSite) return await this.#markOf(site, at.located)
    if (site === 1) {
      const key = this.#sourceKey(vgName, located.lv)
      const previous = await this.#currentCount(vgName, located.lv)
      this.#counts.set(key, Math.max(previous, lwm))
      return previous
    }
    const previous = (await this.#superblock(located)).lwm
    if (lwm > previous) await this.#updateSuperblock(located, (sb) => ({ ...sb, lwm: Math.max(sb.lwm, lwm) }), false)
    return previous
  }

  #locateReplicated(vgName: string, lvName: string): Located {
    const engine = this.#engines.get(vgName)
    if (engine === undefined || engine.vg.state !== 'online') {
      throw lsm('LWM_ENOSTORE', `volume group "${vgName}" is not mounted (not online)`, { context: { vg: vgName } })
    }
    const lv = engine.vg.lvByName(lvName)
    const replicated = lv !== undefined && ((replicaOf(lv)?.kind === 'mirror-async' && replicaOf(lv)?.state !== 'split') ||
      (sourceOf(lv)?.children ?? []).some((c) => c.kind === 'mirror-async' && c.split !== true))
    if (lv === undefined || !replicated) {
      throw lsm('LWM_ENOSTORE', `"${vgName}/${lvName}" is not a replicated volume`, {
        detail: 'Low-water marks exist for asynchronous mirrors (source and targets).' })
    }
    return { engine, lv }
  }

  /** The copies of a replicated volume by site; `located` is undefined for a site that is down. */
  #sitesOf(located: Located): Array<{ site: number, vg: string, lv: string, located?: Located }> {
    const replica = replicaOf(located.lv)
    let source: Located | undefined = replica === undefined ? located : undefined
    if (replica !== undefined) {
      try {
        source = this.#sourceOfReplica(replica)
      } catch {
        source = undefined
      }
    }
    const sourceVg = replica?.source.vg ?? located.engine.vg.name
    const sourceLv = replica?.source.lv ?? located.lv.name
    const sites: Array<{ site: number, vg: string, lv: string, located?: Located }> = [
      { site: 1, vg: sourceVg, lv: sourceLv, ...(source === undefined ? {} : { located: source }) }]
    const recorded = source === undefined ? [] : sourceOf(this.#fresh(source))?.children ?? []
    for (const child of recorded) {
      if (child.kind !== 'mirror-async' || child.split === true) continue
      const engine = this.#engines.get(child.vg)
      const lv = engine?.vg.state === 'online' ? engine.vg.lvByName(child.lv) : undefined
      sites.push({ site: child.site ?? 2, vg: child.vg, lv: child.lv,
        ...(engine === undefined || lv === undefined ? {} : { located: { engine, lv } }) })
    }
    if (replica?.site !== undefined && !sites.some((entry) => entry.site === replica.site)) {
      sites.push({ site: replica.site, vg: located.engine.vg.name, lv: located.lv.name, located })
    }
    return sites
  }

  async #markOf(site: number, located: Located): Promise<number> {
    if (site === 1) return await this.#currentCount(located.engine.vg.name, located.lv)
    return (await this.#superblock(located)).lwm
  }

  /**
   * primrec: reconcile an async target outside the propagator. Copies the chunks changed since
   * its mark (every chunk with `full`) from the source, then raises the mark with chlwm to the
   * source's commit count at the start. On a split target it reattaches the pair when the
   * generations allow it (never when both sides took writes).
   */
  async primrec(vgName: string, lvName: string, options: { full?: boolean } = {}):
    Promise<{ previousLwm: number, lwm: number, copiedChunks: number }> {
    const engine = this.#engines.get(vgName)
    const lv = engine?.vg.lvByName(lvName)
    const replica = lv === undefined ? undefined : replicaOf(lv)
    if (engine === undefined || engine.vg.state !== 'online') throw lsm('LWM_ENOSTORE', `volume group "${vgName}" is not mounted`)
    if (lv === undefined || replica?.kind !== 'mirror-async') {
      throw lsm('LWM_ENOSTORE', `"${vgName}/${lvName}" is not a copy of an asynchronous mirror`)
    }
    const target: Located = { engine, lv }
    const source = this.#sourceOfReplica(replica)
    let full = options.full === true
    if (replica.state === 'split') {
      await this.#rejoin(source, target)
      full = true
    }
    const state = this.#asyncStateOf(vgName, this.#fresh(target))
    const work = state.running.then(async () => {
      const sb = await this.#superblock(target)
      this.#checkGenerations(source, target, sb)
      const count = await this.#currentCount(replica.source.vg, source.lv)
      const chunks = full ? Array.from({ length: replica.dataLps }, (_, chunk) => chunk) : [...state.lastCount.keys()]
      await this.#catchUp(source, target, state, chunks)
      await this.io.flush(target.engine, this.#fresh(target))
      const previous = await this.chlwm(vgName, lvName, replica.site ?? 2, count)
      const lwm = await this.#raiseMark(source, target, state, count)
      await this.#updateSuperblock(target, (s) => ({ ...s, flags: s.flags | FLAG_COMPLETE | FLAG_CONSISTENT }), false)
      return { previousLwm: previous, lwm, copiedChunks: chunks.length }
    })
    state.running = work.then(() => undefined, () => undefined)
    return await work
  }

  async #rejoin(source: Located, target: Located): Promise<void> {
    const sb = await this.#superblock(target)
    const sourceExt = sourceOf(this.#fresh(source))
    const child = sourceExt?.children.find((c) => c.vg === target.engine.vg.name && c.lv === target.lv.name)
    const generation = sourceExt?.generation ?? freshGeneration()
    const verdict = compareGenerations(generation, sb.generation, child?.base ?? '')
    if (verdict !== 'same' && verdict !== 'source-ahead') {
      throw lsm('LWM_GENERATION_CONFLICT', `cannot reattach "${target.lv.name}" to "${source.lv.name}": ${verdict}`, {
        detail: verdict === 'conflict' ? 'Both copies took writes while apart (split brain).' :
          verdict === 'replica-ahead' ? 'The replica took writes while apart; reattaching would discard them.' :
            'The copies share no generation.',
        hint: 'Choose the copy to keep; remove the other and replicate again.', context: { verdict } })
    }
    await this.#updateSuperblock(target, (s) => ({ ...s, generation,
      flags: s.flags & ~(FLAG_SPLIT | FLAG_WRITTEN_APART) }), false)
    const lv = this.#fresh(target)
    await target.engine.vg.lvSetExt(lv.name, withReplica(lv, { ...replicaOf(lv)!, state: 'complete' }))
    await this.#updateSource(source, (ext) => ({ ...ext, children: ext.children.map((c) =>
      c.vg === target.engine.vg.name && c.lv === target.lv.name
        ? { ...c, split: false, base: generation.current } : c) }))
  }

  // --- split, generations ----------------------------------------------------------------------

  /** replica split: a mirror target (or a complete copy) becomes an independent volume. */
  async split(vgName: string, lvName: string): Promise<void> {
    const located = this.#locate(vgName, lvName)
    const replica = replicaOf(located.lv)
    if (replica === undefined) throw lsm('LSM_ERR_INVALID_ARGUMENT', `"${vgName}/${lvName}" is not a replica`)
    if (replica.kind === 'clone') {
      throw lsm('LSM_ERR_NO_SUPPORT', `clone "${lvName}" shares partitions with its origin and cannot be split`, {
        hint: `Make an independent copy with lvmfs replicate ${replica.source.vg}/${replica.source.lv} NAME --type copy.` })
    }
    if (replica.state !== 'complete') {
      throw lsm('LSM_ERR_INVALID_ARGUMENT', `replica "${lvName}" is ${replica.state}, not complete`, {
        hint: replica.jobId === undefined ? undefined : `Wait with lvmfs job ${replica.jobId} --wait.` })
    }
    const state = this.#async.get(keyOf(vgName, lvName))
    if (state !== undefined) {
      if (state.timer !== undefined) clearInterval(state.timer)
      state.timer = undefined
      await state.running
    }
    if (replica.kind !== 'copy') await this.#updateSuperblock(located, (sb) => ({ ...sb, flags: sb.flags | FLAG_SPLIT }))
    // Staging partitions a crash left behind a catch-up belong to no one once the pair is apart.
    if (replica.kind === 'mirror-async') await this.#trimStaging(located)
    const lv = this.#fresh(located)
    await located.engine.vg.lvSetExt(lv.name, withReplica(lv, { ...replica, state: 'split' }))
    const source = this.#engines.get(replica.source.vg)?.vg.lvById(replica.source.lvId)
    if (source !== undefined) {
      const sourceLocated = { engine: this.#engines.get(replica.source.vg)!, lv: source }
      const markSplit = async (): Promise<void> => {
        await this.#updateSource(sourceLocated, (ext) => {
          const dirty = { ...ext.dirty }
          delete dirty[keyOf(vgName, lvName)]
          return { ...ext, dirty, children: ext.children.map((c) => c.vg === vgName && c.lv === lvName ?
            { ...c, split: true, base: ext.generation.current } : c) }
        })
      }
      // A source write after the split must pass the hook, which starts its new generation: a
      // write through a gate left open would go unseen and hide a split brain from primrec.
      const gates = this.#options.gates
      if (gates === undefined) await markSplit()
      else await gates.withVolumeClosed(replica.source.vg, source.name, markSplit)
      await gates?.remap(replica.source.vg, [source.name])
    }
    this.#async.delete(keyOf(vgName, lvName))
    await this.#options.gates?.remap(vgName, [lvName])
  }

  async #noteReplicaWrittenApart(_vgName: string, located: Located): Promise<void> {
    const sb = await this.#superblock(located)
    if ((sb.flags & FLAG_WRITTEN_APART) !== 0 || (sb.flags & FLAG_SPLIT) === 0) return
    await this.#updateSuperblock(located, (s) => (s.flags & FLAG_WRITTEN_APART) !== 0 ? s :
      { ...s, generation: nextGeneration(s.generation), flags: s.flags | FLAG_WRITTEN_APART }, false)
  }

  async #noteSourceWrittenApart(source: Located, _children: readonly ChildLocated[]): Promise<void> {
    const ext = sourceOf(this.#fresh(source))
    if (ext === undefined) return
    const apart = ext.children.some((c) => c.split === true && c.base === ext.generation.current)
    if (!apart) return
    await this.#updateSource(source, (now) =>
      now.children.some((c) => c.split === true && c.base === now.generation.current)
      ? { ...now, generation: nextGeneration(now.generation) } : now)
  }

  // --- dependencies, removal, status ----------------------------------------------------------

  /** Names of the replicas that keep `lvName` from being removed (lsm_volume_child_dependency). */
  childDependencies(vgName: string, lvName: string): string[] {
    this.#locate(vgName, lvName)
    const vgs = [...this.#engines.values()].filter((engine) => engine.vg.state === 'online').map((engine) => engine.vg)
    return childDependenciesIn(vgs, vgName, lvName)
  }

  /** Throws LSM_ERR_HAS_CHILD_DEPENDENCY naming the replicas that depend on the volume. */
  assertRemovable(vgName: string, lvName: string): void {
    const names = this.childDependencies(vgName, lvName)
    if (names.length === 0) return
    throw lsm('LSM_ERR_HAS_CHILD_DEPENDENCY', `"${vgName}/${lvName}" is the source of ${names.join(', ')}`, {
      detail: 'Clones, unfinished copies and mirrors depend on their source.',
      hint: 'Remove those replicas first, or split the mirrors.', context: { children: names } })
  }

  /** lsm_volume_delete: removes a volume after the dependency check, unlinking it from its source. */
  async removeVolume(vgName: string, lvName: string): Promise<void> {
    this.assertRemovable(vgName, lvName)
    const located = this.#locate(vgName, lvName)
    const replica = replicaOf(located.lv)
    const state = this.#async.get(keyOf(vgName, lvName))
    if (state?.timer !== undefined) clearInterval(state.timer)
    if (state !== undefined) await state.running
    this.#async.delete(keyOf(vgName, lvName))
    const run = replica?.jobId === undefined ? undefined : this.#jobs.get(replica.jobId)
    if (run !== undefined) {
      await this.io.flush(located.engine, located.lv).catch(() => undefined)
    }
    if (replica !== undefined) {
      const sourceEngine = this.#engines.get(replica.source.vg)
      const source = sourceEngine?.vg.lvById(replica.source.lvId)
      if (sourceEngine !== undefined && source !== undefined && sourceEngine.vg.state === 'online') {
        await this.#updateSource({ engine: sourceEngine, lv: source }, (ext) => {
          const dirty = { ...ext.dirty }
          delete dirty[keyOf(vgName, lvName)]
          return { ...ext, dirty, children: ext.children.filter((c) => !(c.vg === vgName && c.lv === lvName)) }
        })
      }
    }
    await this.io.closeOne(located.engine, located.lv.lvId)
    await located.engine.vg.lvRemove(lvName)
    this.#sb.delete(keyOf(vgName, lvName))
    if (replica !== undefined) await this.#options.gates?.remap(replica.source.vg, [replica.source.lv])
  }

  /** Origin, type, sync state, mark and lag of a replica (for lvs and status). */
  async status(vgName: string, lvName: string): Promise<ReplicaStatus | undefined> {
    const located = this.#locate(vgName, lvName)
    const replica = replicaOf(located.lv)
    if (replica === undefined) return undefined
    const sb = await this.#superblock(located).catch(() => undefined)
    const job = replica.jobId === undefined ? undefined : await this.job(replica.jobId).catch(() => undefined)
    const base = { vg: vgName, lv: lvName, kind: replica.kind, origin: keyOf(replica.source.vg, replica.source.lv),
      state: replica.state, ...(replica.jobId === undefined ? {} : { jobId: replica.jobId }),
      ...(job === undefined ? {} : { percent: job.percent }) }
    const syncState = replica.state === 'invalid' ? 'invalid' : replica.state === 'split' ? 'independent' :
      replica.state === 'in-progress' ? `syncing ${job?.percent ?? 0}%` :
        replica.kind === 'mirror-async' && sb !== undefined && (sb.flags & FLAG_CONSISTENT) === 0 ? 'inconsistent' : 'in sync'
    if (replica.kind !== 'mirror-async' || replica.state !== 'complete') {
      return { ...base, syncState, ...(sb === undefined || replica.kind !== 'mirror-async' ? {} : { lwm: sb.lwm }) }
    }
    const lag = await this.lag(vgName, lvName).catch(() => undefined)
    return { ...base, syncState: lag !== undefined && lag.commits > 0 && syncState === 'in sync' ? 'behind' : syncState,
      ...(sb === undefined ? {} : { lwm: sb.lwm }), ...(lag === undefined ? {} : { lag }) }
  }

  /** Status of every replica in a VG. */
  async statuses(vgName: string): Promise<ReplicaStatus[]> {
    const engine = this.#engineOf(vgName)
    const out: ReplicaStatus[] = []
    for (const lv of engine.vg.descriptor.lvs) {
      const status = await this.status(vgName, lv.name)
      if (status !== undefined) out.push(status)
    }
    return out
  }

  // --- lifecycle -------------------------------------------------------------------------------

  /** Resumes unfinished jobs and starts the propagators of attached async mirrors. */
  async startBackground(): Promise<void> {
    for (const engine of this.#engines.values()) {
      if (engine.vg.state !== 'online') continue
      for (const lv of engine.vg.descriptor.lvs) {
        const replica = replicaOf(lv)
        if (replica === undefined) continue
        if (replica.kind !== 'clone') await this.#superblock({ engine, lv }).catch(() => undefined)
        if (replica.state === 'in-progress' && replica.jobId !== undefined) this.#startJob(replica.jobId)
        else if (replica.kind === 'mirror-async' && replica.state === 'complete') this.#startPropagator(engine.vg.name, lv)
      }
    }
  }

  /** Stops jobs and propagators (they resume from their persisted state), closes handles. */
  async stop(): Promise<void> {
    this.#stopping = true
    for (const state of this.#async.values()) {
      if (state.timer !== undefined) clearInterval(state.timer)
      state.timer = undefined
      await state.running
    }
    await Promise.all([...this.#jobs.values()].map((run) => run.done))
    await this.io.closeAll()
  }
}

/** Until its first write after a split the source stays gated: that write must pass the hook to
 * start the source's new generation (#noteSourceWrittenApart). */
function splitUnwritten(lv: LvDescriptor): boolean {
  const ext = sourceOf(lv)
  return ext?.children.some((c) => c.split === true && c.base === ext.generation.current) ?? false
}
