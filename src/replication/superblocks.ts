/**
 * The superblocks of the replicas at hand, cached after the first read. Updates of one replica
 * are serialised and write seq + 1 after flushing its data, so a superblock never claims data
 * (copied partitions, a mark) that is not on disk yet.
 */
import type { ReplicaSuperblock } from '../format/index.js'
import { assert } from '../util/index.js'
import type { Located, ReplicationContext } from './context.js'
import { KeyedMutex } from '../util/index.js'
import { lsm } from './lsm-error.js'
import { keyOf, replicaOf } from './model.js'
import { readSuperblock, writeSuperblock } from './superblock-io.js'

export class Superblocks {
  readonly #ctx: ReplicationContext
  readonly #cache = new Map<string, ReplicaSuperblock>()
  readonly #locks = new KeyedMutex()

  constructor(ctx: ReplicationContext) {
    this.#ctx = ctx
  }

  async of(target: Located): Promise<ReplicaSuperblock> {
    const key = keyOf(target.engine.vg.name, target.lv.name)
    const cached = this.#cache.get(key)
    if (cached !== undefined) return cached
    const lv = this.#ctx.fresh(target)
    const sb = await readSuperblock(target.engine.vg, lv)
    // Another process (shared VG) writes the superblock of a replica whose source it serves.
    const replica = replicaOf(lv)
    if (replica === undefined || this.#ctx.runsReplicaHere(replica)) this.#cache.set(key, sb)
    return sb
  }

  /** The superblock last read or written for `vg/lv`, if any (no I/O: the VG may be away). */
  cached(key: string): ReplicaSuperblock | undefined {
    return this.#cache.get(key)
  }

  /** Records a superblock just written by its creator. */
  remember(vgName: string, lvName: string, sb: ReplicaSuperblock): void {
    this.#cache.set(keyOf(vgName, lvName), sb)
  }

  forget(vgName: string, lvName: string): void {
    this.#cache.delete(keyOf(vgName, lvName))
  }

  /** Serialised superblock update: flush the target's data first, then write seq + 1. */
  async update(target: Located, change: (sb: ReplicaSuperblock) => ReplicaSuperblock,
    flushData = true): Promise<ReplicaSuperblock> {
    const key = keyOf(target.engine.vg.name, target.lv.name)
    const release = await this.#locks.lock(key)
    try {
      if (flushData) await this.#ctx.io.flush(target.engine, this.#ctx.fresh(target))
      const current = await this.of(target)
      const next = { ...change(current), seq: current.seq + 1, updatedAtMs: this.#ctx.now() }
      assert(next.lwm >= current.lwm, 'a low-water mark never decreases')
      try {
        await writeSuperblock(target.engine.vg, this.#ctx.fresh(target), next)
      } catch (error) {
        throw lsm('LWM_ESITEDN2', `writing the superblock of "${target.lv.name}" failed`, { cause: error })
      }
      this.#cache.set(key, next)
      return next
    } finally {
      release()
    }
  }

  async persistCopied(target: Located, copied: Uint8Array, addFlags: number): Promise<ReplicaSuperblock> {
    return await this.update(target, (sb) => ({ ...sb, copied: copied.slice(), flags: sb.flags | addFlags }))
  }
}
