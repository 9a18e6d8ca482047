/**
 * I/O with replica semantics, in process (read, write, flush) and through the native gate hook
 * (beforeWriteRegion): what must happen before a source's chunks change, for each kind of
 * replica it has, and how a replica's bytes are found.
 */
import type { AsyncMirrors } from './async-mirror.js'
import type { CloneChunks } from './clone.js'
import { ownedLp } from './clone.js'
import type { Located, ReplicationContext } from './context.js'
import type { CopyJobs } from './copy-jobs.js'
import { lsm } from './lsm-error.js'
import { keyOf, replicaOf, sourceOf } from './model.js'
import type { SplitRejoin } from './split.js'
import type { SyncMirrors } from './sync-mirror.js'

export interface ReplicaMechanisms {
  readonly clones: CloneChunks
  readonly jobs: CopyJobs
  readonly sync: SyncMirrors
  readonly async: AsyncMirrors
  readonly split: SplitRejoin
}

export class ReplicaIo {
  readonly #ctx: ReplicationContext
  readonly #m: ReplicaMechanisms

  constructor(ctx: ReplicationContext, mechanisms: ReplicaMechanisms) {
    this.#ctx = ctx
    this.#m = mechanisms
  }

  /** Size in bytes of the volume file (a replica hides its metadata partition). */
  volumeSizeBytes(vgName: string, lvName: string): number {
    const { engine, lv } = this.#ctx.locate(vgName, lvName)
    const replica = replicaOf(lv)
    return (replica?.dataLps ?? lv.lps.length) * engine.vg.ppSizeBytes
  }

  /** Refuses opens the replica semantics forbid (copy not complete, write to a mirror target). */
  assertOpenable(vgName: string, lvName: string, writable: boolean): void {
    const { lv } = this.#ctx.locate(vgName, lvName)
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
    const ctx = this.#ctx
    this.assertOpenable(vgName, lvName, false)
    this.#checkRange(vgName, lvName, offsetBytes, buffer.length)
    const located = ctx.locate(vgName, lvName)
    const replica = replicaOf(located.lv)
    if (replica === undefined) return await ctx.io.read(located.engine, located.lv, buffer, offsetBytes)
    if (replica.kind !== 'clone') {
      return await ctx.io.read(located.engine, located.lv, buffer, offsetBytes + located.engine.vg.ppSizeBytes)
    }
    await this.#forChunks(vgName, offsetBytes, buffer.length, async (chunk, at, length, bufferAt) => {
      await this.#m.clones.read(located, chunk, buffer.subarray(bufferAt, bufferAt + length), at)
    })
  }

  async #forChunks(vgName: string, offsetBytes: number, lengthBytes: number,
    fn: (chunk: number, inChunkBytes: number, length: number, bufferAt: number) => Promise<void>): Promise<void> {
    const pp = this.#ctx.pp(vgName)
    let done = 0
    while (done < lengthBytes) {
      const at = offsetBytes + done
      const chunk = Math.floor(at / pp)
      const length = Math.min(lengthBytes - done, (chunk + 1) * pp - at)
      await fn(chunk, at - chunk * pp, length, done)
      done += length
    }
  }

  async write(vgName: string, lvName: string, data: Uint8Array, offsetBytes: number): Promise<void> {
    const ctx = this.#ctx
    this.assertOpenable(vgName, lvName, true)
    this.#checkRange(vgName, lvName, offsetBytes, data.length)
    if (data.length === 0) return
    const located = ctx.locate(vgName, lvName)
    const replica = replicaOf(located.lv)
    if (replica === undefined) return await this.#writeSource(vgName, located, data, offsetBytes)
    if (replica.kind === 'clone') {
      await this.#forChunks(vgName, offsetBytes, data.length, async (chunk, at, length, bufferAt) => {
        await this.#m.clones.write(located, chunk, data.subarray(bufferAt, bufferAt + length), at)
      })
      return
    }
    if (replica.state === 'split') await this.#m.split.noteReplicaWrite(located)
    await ctx.io.write(located.engine, located.lv, data, offsetBytes + located.engine.vg.ppSizeBytes)
  }

  async #writeSource(vgName: string, source: Located, data: Uint8Array, offsetBytes: number): Promise<void> {
    const ctx = this.#ctx
    const pp = source.engine.vg.ppSizeBytes
    const first = Math.floor(offsetBytes / pp)
    const last = Math.floor((offsetBytes + data.length - 1) / pp)
    const chunks: number[] = []
    for (let chunk = first; chunk <= last; chunk++) chunks.push(chunk)
    if (ctx.children(vgName, source.lv).length === 0 && sourceOf(source.lv) === undefined) {
      return await ctx.io.write(source.engine, source.lv, data, offsetBytes)
    }
    const release = await ctx.lockChunks(vgName, source.lv.lvId, chunks)
    let count: number | undefined
    let journaled = false
    try {
      count = await this.#beforeSourceWrite(vgName, source, chunks, false)
      const lv = ctx.fresh(source)
      const writes = [ctx.io.write(source.engine, lv, data, offsetBytes)]
      for (const child of this.#m.sync.attached(vgName, lv)) {
        writes.push(this.#m.sync.write(child, chunks, data, offsetBytes))
      }
      await Promise.all(writes)
      if (count !== undefined) this.#m.async.journal(vgName, lv, count, data, offsetBytes)
      journaled = true
    } finally {
      release()
      if (count !== undefined) ctx.counts.settle(vgName, source.lv, count, journaled)
    }
  }

  async flush(vgName: string, lvName: string): Promise<void> {
    const located = this.#ctx.locate(vgName, lvName)
    await this.#ctx.io.flush(located.engine, located.lv)
    await this.#m.sync.flush(vgName, located.lv)
  }

  /**
   * Everything that must happen before a source's chunks change: copy-on-write into clones,
   * pushing uncopied partitions of running copies, dirty marking (with a new commit count) for
   * asynchronous mirrors, and a new source generation after a split. Caller holds the chunk
   * locks. Returns the commit count given to this write when the source has async mirrors.
   */
  async #beforeSourceWrite(vgName: string, source: Located, chunks: readonly number[],
    native: boolean): Promise<number | undefined> {
    const ctx = this.#ctx
    const children = ctx.children(vgName, source.lv)
    const remap = new Set<string>()
    let count: number | undefined
    // Once a count is taken it must be settled whatever happens, or every later propagation of
    // this source waits for it forever: any failure below settles it as not journaled.
    let settledAt = false
    const settle = (journaled: boolean): void => {
      if (count === undefined || settledAt) return
      settledAt = true
      ctx.counts.settle(vgName, source.lv, count, journaled)
    }
    try {
      for (const child of children) {
        const { replica } = child
        if (replica.state === 'split') continue
        if (replica.kind === 'clone' && replica.state === 'complete') {
          if (await this.#m.clones.beforeOriginWrite(source, child, chunks)) remap.add(child.lv.name)
        } else if (replica.kind === 'copy' && replica.state === 'in-progress') {
          for (const chunk of chunks) await this.#m.jobs.push(source, child, chunk)
        } else if (replica.kind === 'mirror-async') {
          if (count === undefined) {
            count = await ctx.counts.next(vgName, source)
            if (native) ctx.asyncStates.nativeSources.add(keyOf(vgName, source.lv.name))
          }
          await this.#m.async.beforeWrite(vgName, source, child, chunks, count)
        }
      }
      for (const key of ctx.detachedAsyncTargets(vgName, ctx.fresh(source))) {
        if (count === undefined) {
          count = await ctx.counts.next(vgName, source)
          if (native) ctx.asyncStates.nativeSources.add(keyOf(vgName, source.lv.name))
        }
        await this.#m.async.beforeDetachedWrite(vgName, source, key, chunks, count)
      }
      await this.#m.split.noteSourceWrite(source)
      // The native path journals nothing: its count is settled at once.
      if (native) settle(true)
      for (const name of remap) {
        const child = children.find((c) => c.lv.name === name)!
        await ctx.gates?.remap(child.engine.vg.name, [name])
      }
    } catch (error) {
      settle(false)
      throw error
    }
    return count
  }

  /**
   * The daemon's "before first write" gate hook. Call it for a write into a closed gate region
   * (`regionIndex` in units of the map's `gateBytes`) of ANY volume a map was returned for,
   * before opening the gate; open the gate only after it resolves. It copies chunks
   * (copy-on-write for clones, first write to a clone's shared chunk, pushes for copies),
   * records async changes with a new commit count, and awaits GateControl.remap for volumes
   * whose map changed. A rejection means: fail the write with the error's errno.
   */
  async beforeWriteRegion(vgName: string, lvName: string, regionIndex: number, gateBytes: number): Promise<void> {
    const ctx = this.#ctx
    const located = ctx.locate(vgName, lvName)
    const pp = located.engine.vg.ppSizeBytes
    const chunk = Math.floor((regionIndex * gateBytes) / pp)
    const replica = replicaOf(located.lv)
    if (replica !== undefined) {
      this.assertOpenable(vgName, lvName, true)
      if (replica.kind === 'clone') {
        if (ownedLp(located.lv, chunk) === undefined) await this.#m.clones.write(located, chunk, new Uint8Array(0), 0)
      } else if (replica.state === 'split') {
        await this.#m.split.noteReplicaWrite(located)
      }
      return
    }
    const release = await ctx.lockChunk(vgName, located.lv.lvId, chunk)
    try {
      await this.#beforeSourceWrite(vgName, located, [chunk], true)
    } finally {
      release()
    }
  }
}
