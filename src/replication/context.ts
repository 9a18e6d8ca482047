/**
 * What every replication mechanism shares, passed to each explicitly: the mirror engines of the
 * VGs at hand and how volumes are found in them, the chunk locks, raw I/O, the options, and the
 * persisted and in-memory stores (superblocks, source exts, async states, commit counts).
 */
import type { ErrorCode } from '../errors/index.js'
import type { LvDescriptor, VolumeGroup } from '../lvm/index.js'
import type { MirrorEngine } from '../mirror/index.js'
import type { GateControl } from './gate-control.js'
import { AsyncStates } from './async-state.js'
import { CommitCounts } from './commit-counts.js'
import { KeyedMutex } from '../util/index.js'
import { lsm, vgUnreachable } from './lsm-error.js'
import { keyOf, replicaOf, sourceOf, type ReplicaExt } from './model.js'
import { SourceExts } from './source-ext.js'
import { Superblocks } from './superblocks.js'
import type { ReplicationOptions } from './types.js'
import { VolumeIo } from './volume-io.js'

export interface Located {
  readonly engine: MirrorEngine
  readonly lv: LvDescriptor
}

export interface ChildLocated extends Located {
  readonly replica: ReplicaExt
}

export class ReplicationContext {
  readonly engines = new Map<string, MirrorEngine>()
  /** VGs a caller could not vary on, with the reason (what lookups of them then report). */
  readonly unreachable = new Map<string, unknown>()
  readonly io: VolumeIo
  readonly options: ReplicationOptions
  /** Per source chunk: writers, copiers and the gate hook of one chunk run one at a time. */
  readonly #chunkLocks = new KeyedMutex()
  readonly superblocks = new Superblocks(this)
  readonly sources = new SourceExts(this)
  readonly asyncStates = new AsyncStates(this)
  readonly counts = new CommitCounts(this)
  stopping = false

  constructor(engines: readonly MirrorEngine[], options: ReplicationOptions, io: VolumeIo) {
    for (const engine of engines) this.engines.set(engine.vg.name, engine)
    this.options = options
    this.io = io
  }

  get gates(): GateControl | undefined {
    return this.options.gates
  }

  now(): number {
    return this.options.now?.() ?? Date.now()
  }

  pp(vgName: string): number {
    return this.engineOf(vgName).vg.ppSizeBytes
  }

  onlineEngines(): MirrorEngine[] {
    return [...this.engines.values()].filter((engine) => engine.vg.state === 'online')
  }

  onlineVgs(): VolumeGroup[] {
    return this.onlineEngines().map((engine) => engine.vg)
  }

  engineOf(vgName: string, notFound: ErrorCode = 'LSM_ERR_NOT_FOUND_POOL'): MirrorEngine {
    const engine = this.engines.get(vgName)
    if (engine === undefined) throw vgUnreachable(vgName, notFound, this.unreachable.get(vgName))
    if (engine.vg.state !== 'online') {
      throw lsm('LSM_ERR_POOL_NOT_READY', `volume group "${vgName}" is ${engine.vg.state}`, { context: { vg: vgName } })
    }
    return engine
  }

  locate(vgName: string, lvName: string): Located {
    const engine = this.engineOf(vgName, 'LSM_ERR_NOT_FOUND_VOLUME')
    const lv = engine.vg.lvByName(lvName)
    if (lv === undefined) {
      throw lsm('LSM_ERR_NOT_FOUND_VOLUME', `logical volume "${lvName}" not found in "${vgName}"`, {
        context: { vg: vgName, lv: lvName } })
    }
    return { engine, lv }
  }

  /** The descriptor as committed now (a located one goes stale with every VG commit). */
  fresh(located: Located): LvDescriptor {
    const lv = located.engine.vg.lvById(located.lv.lvId)
    if (lv === undefined) throw lsm('LSM_ERR_NOT_FOUND_VOLUME', `logical volume "${located.lv.name}" was removed`)
    return lv
  }

  /** Replicas of a source, found by scanning every online VG (the data path's view). */
  children(vgName: string, source: LvDescriptor): ChildLocated[] {
    const out: ChildLocated[] = []
    for (const engine of this.onlineEngines()) {
      for (const lv of engine.vg.descriptor.lvs) {
        const replica = replicaOf(lv)
        if (replica !== undefined && replica.source.vg === vgName && replica.source.lvId === source.lvId) {
          out.push({ engine, lv, replica })
        }
      }
    }
    return out
  }

  /**
   * `vg/lv` keys of the attached async targets a source records whose VG is not online here
   * (another site cut off, a VG forced off, one this process never varied on). Their changes are
   * still counted and persisted dirty, so the first cycle after they return catches up.
   */
  detachedAsyncTargets(vgName: string, source: LvDescriptor): string[] {
    const recorded = sourceOf(source)?.children ?? []
    if (recorded.length === 0) return []
    const online = new Set(this.children(vgName, source).map((c) => keyOf(c.engine.vg.name, c.lv.name)))
    return recorded.filter((c) => c.kind === 'mirror-async' && c.split !== true && !online.has(keyOf(c.vg, c.lv)))
      .map((c) => keyOf(c.vg, c.lv))
  }

  /** Whether the replication of `source` runs in this process (ReplicationOptions.servesSource). */
  runsHere(vgName: string, source: LvDescriptor): boolean {
    return this.options.servesSource?.(vgName, source) ?? true
  }

  /** Whether the replication `replica` belongs to runs here (its source's; a source not at hand
   * runs nowhere, so not here). */
  runsReplicaHere(replica: ReplicaExt): boolean {
    if (this.options.servesSource === undefined) return true
    const source = this.engines.get(replica.source.vg)?.vg.lvById(replica.source.lvId)
    return source !== undefined && this.runsHere(replica.source.vg, source)
  }

  /**
   * Throws LSM_ERR_REPLICA_BUSY when `source` (a source, or a volume about to become one) is
   * served by another process of its shared VG: its replication runs there.
   */
  assertServesSource(vgName: string, source: LvDescriptor): void {
    if (this.runsHere(vgName, source)) return
    throw lsm('LSM_ERR_REPLICA_BUSY', `"${vgName}/${source.name}" is not served read-write by this process`, {
      detail: 'In a shared VG the daemon serving a source read-write runs its replication: its copy jobs, mirrors ' +
        'and copy-on-write, and the verbs that change its replicas.',
      hint: `Mount it with --lvs ${source.name}; commands naming it are then sent to that daemon.`,
      context: { vg: vgName, lv: source.name } })
  }

  /** assertServesSource for whatever replication `vg/lv` is part of: its source's if it is a
   * replica, its own if it has replicas; nothing for a volume outside replication. */
  assertRunsHere(vgName: string, lvName: string): void {
    if (this.options.servesSource === undefined) return
    const { lv } = this.locate(vgName, lvName)
    const replica = replicaOf(lv)
    if (replica !== undefined) {
      const source = this.engines.get(replica.source.vg)?.vg.lvById(replica.source.lvId)
      if (source !== undefined) this.assertServesSource(replica.source.vg, source)
    } else if ((sourceOf(lv)?.children.length ?? 0) > 0 || this.children(vgName, lv).length > 0) {
      this.assertServesSource(vgName, lv)
    }
  }

  sourceOfReplica(replica: ReplicaExt): Located {
    const engine = this.engines.get(replica.source.vg)
    if (engine === undefined || engine.vg.state !== 'online') {
      throw lsm('LWM_ESITEDN1', `the source volume group "${replica.source.vg}" is not online`, {
        context: { vg: replica.source.vg } })
    }
    const lv = engine.vg.lvById(replica.source.lvId)
    if (lv === undefined) throw lsm('LSM_ERR_NOT_FOUND_VOLUME', `source "${replica.source.lv}" no longer exists`)
    return { engine, lv }
  }

  lockChunk(vgName: string, lvId: number, chunk: number): Promise<() => void> {
    return this.#chunkLocks.lock(chunkKey(vgName, lvId, chunk))
  }

  lockChunks(vgName: string, lvId: number, chunks: readonly number[]): Promise<() => void> {
    return this.#chunkLocks.lockAll(chunks.map((chunk) => chunkKey(vgName, lvId, chunk)))
  }

  /** Copies source LP `lp` into the target's LP `targetLp` (by default its data LP for `lp`). */
  async copyLp(source: Located, target: Located, lp: number, buffer = Buffer.alloc(source.engine.vg.ppSizeBytes),
    targetLp = lp + 1): Promise<void> {
    const pp = source.engine.vg.ppSizeBytes
    await this.io.read(source.engine, this.fresh(source), buffer, lp * pp)
    await this.io.write(target.engine, this.fresh(target), buffer, targetLp * pp)
  }
}

function chunkKey(vgName: string, lvId: number, chunk: number): string {
  return `${vgName}:${lvId}:${chunk}`
}
