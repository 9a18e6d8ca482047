/**
 * Clones: copy-on-write at partition granularity. A clone's chunk map (`ext.replica.chunks`) is
 * positional: chunks[i] lives in the clone's own LP i + 1; every other chunk is read from the
 * origin, under the origin chunk's lock, while shared. A chunk is copied into the clone, synced
 * and the map committed before the write that needed it (to the origin or the clone) proceeds.
 */
import { isLvmfsError } from '../errors/index.js'
import type { LvDescriptor } from '../lvm/index.js'
import type { ChildLocated, Located, ReplicationContext } from './context.js'
import { KeyedMutex } from '../util/index.js'
import { lsm } from './lsm-error.js'
import { replicaOf, withReplica } from './model.js'

/** Partitions a clone is extended by at a time (see copyChunkLocked). */
const CLONE_EXTEND_LPS = 8

type CopyCause = 'clone-write' | 'origin-write'

/** The clone's own LP holding `chunk`, or undefined while the chunk is shared. */
export function ownedLp(clone: LvDescriptor, chunk: number): number | undefined {
  const index = replicaOf(clone)?.chunks?.indexOf(chunk) ?? -1
  return index < 0 ? undefined : index + 1
}

function assertCloneValid(clone: LvDescriptor): void {
  const replica = replicaOf(clone)
  if (replica?.state === 'invalid') {
    throw lsm('LSM_ERR_INVALIDATED_CLONE', `clone "${clone.name}" was invalidated: ${replica.error ?? 'pool full'}`)
  }
}

export class CloneChunks {
  readonly #ctx: ReplicationContext
  readonly #cloneLocks = new KeyedMutex()

  constructor(ctx: ReplicationContext) {
    this.#ctx = ctx
  }

  async read(clone: Located, chunk: number, out: Uint8Array, inChunkBytes: number): Promise<void> {
    const ctx = this.#ctx
    const pp = clone.engine.vg.ppSizeBytes
    const owned = ownedLp(ctx.fresh(clone), chunk)
    if (owned !== undefined) return await ctx.io.read(clone.engine, ctx.fresh(clone), out, owned * pp + inChunkBytes)
    const replica = replicaOf(clone.lv)!
    const origin = ctx.sourceOfReplica(replica)
    const release = await ctx.lockChunk(replica.source.vg, origin.lv.lvId, chunk)
    try {
      const now = ctx.fresh(clone)
      const ownedNow = ownedLp(now, chunk)
      assertCloneValid(now)
      if (ownedNow !== undefined) await ctx.io.read(clone.engine, now, out, ownedNow * pp + inChunkBytes)
      else await ctx.io.read(origin.engine, origin.lv, out, chunk * pp + inChunkBytes)
    } finally {
      release()
    }
  }

  /** A write into the clone (empty `data`: only make the chunk the clone's own, for the gate hook). */
  async write(clone: Located, chunk: number, data: Uint8Array, inChunkBytes: number): Promise<void> {
    const ctx = this.#ctx
    const pp = clone.engine.vg.ppSizeBytes
    let owned = ownedLp(ctx.fresh(clone), chunk)
    if (owned === undefined) {
      const replica = replicaOf(clone.lv)!
      const origin = ctx.sourceOfReplica(replica)
      const release = await ctx.lockChunk(replica.source.vg, origin.lv.lvId, chunk)
      try {
        assertCloneValid(ctx.fresh(clone))
        owned = ownedLp(ctx.fresh(clone), chunk) ?? await this.#copyChunk(origin, clone, chunk, 'clone-write')
      } finally {
        release()
      }
      await ctx.gates?.remap(clone.engine.vg.name, [clone.lv.name])
    }
    await ctx.io.write(clone.engine, ctx.fresh(clone), data, owned * pp + inChunkBytes)
  }

  /**
   * Before the origin writes `chunks`: copies those the clone still shares (caller holds their
   * origin chunk locks). Resolves true when the clone's map changed.
   */
  async beforeOriginWrite(origin: Located, clone: ChildLocated, chunks: readonly number[]): Promise<boolean> {
    const { replica } = clone
    let copied = false
    for (const chunk of chunks) {
      if (chunk >= replica.dataLps || (replicaOf(this.#ctx.fresh(clone))?.chunks ?? []).includes(chunk)) continue
      if (replicaOf(this.#ctx.fresh(clone))?.state !== 'complete') break
      await this.#copyChunk(origin, clone, chunk, 'origin-write')
      copied = true
    }
    return copied
  }

  /**
   * Gives the clone its own partition for `chunk`, holding the origin's current data, and
   * commits the chunk map. Caller holds the origin chunk lock. A pool without a free partition
   * fails a clone write (NOT_ENOUGH_SPACE) but invalidates the clone for an origin write.
   */
  async #copyChunk(origin: Located, clone: Located, chunk: number, why: CopyCause): Promise<number> {
    // The chunk map is positional (chunks[i] lives in own LP i + 1): two copy-on-writes of one
    // clone running at once would pick the same LP and the later map commit would drop the
    // earlier chunk. One at a time per clone; different chunks of it wait for each other.
    const release = await this.#cloneLocks.lock(`${clone.engine.vg.vgId}:${clone.lv.lvId}`)
    try {
      return await this.#copyChunkLocked(origin, clone, chunk, why)
    } finally {
      release()
    }
  }

  async #copyChunkLocked(origin: Located, clone: Located, chunk: number, why: CopyCause): Promise<number> {
    const ctx = this.#ctx
    const pp = clone.engine.vg.ppSizeBytes
    let lv = ctx.fresh(clone)
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
    await ctx.io.read(origin.engine, ctx.fresh(origin), buffer, chunk * pp)
    await ctx.io.write(clone.engine, lv, buffer, ownLp * pp)
    await ctx.io.flush(clone.engine, lv)
    const now = ctx.fresh(clone)
    await clone.engine.vg.lvSetExt(now.name, withReplica(now, { ...replicaOf(now)!, chunks: [...chunks, chunk] }))
    return ownLp
  }
}
