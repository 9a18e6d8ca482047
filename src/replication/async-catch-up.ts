/**
 * How an async target catches up without a journal: it is brought to the source's image at one
 * instant, atomically. The changed chunks are frozen together (every later write into one of
 * them first captures its frozen image, see beforeWrite), copied into staging partitions of the
 * target beside its live ones, synced, and published by one descriptor commit exchanging them
 * with the live partitions. Before that commit the target is its previous prefix, after it the
 * prefix at the freeze; a crash leaves one or the other. Without room in the pool for the staging
 * partitions it falls back to copying in place, the target flagged inconsistent meanwhile.
 *
 * The target may be another site (a VG on NBD PVs): a source chunk lock is held only while the
 * source is read, never across a target write, so a slow, stalled or lost target never holds a
 * source write. Frozen images captured for writers wait in memory up to `captureBytesMax`; an
 * attempt that would need more is abandoned (nothing published, the dirty set intact) and
 * retried once with a new freeze, then the cycle copies in place, which always finishes.
 */
import { isLvmfsError } from '../errors/index.js'
import { FLAG_CONSISTENT } from '../format/index.js'
import type { AsyncState, StagingCycle } from './async-state.js'
import type { ChildLocated, Located, ReplicationContext } from './context.js'
import { keyOf, replicaOf } from './model.js'

/** Staged attempts per cycle before it copies in place (see the file comment). */
const STAGED_ATTEMPTS = 2

export class AsyncCatchUp {
  readonly #ctx: ReplicationContext

  constructor(ctx: ReplicationContext) {
    this.#ctx = ctx
  }

  async catchUp(source: Located, target: Located, state: AsyncState, chunks: readonly number[]): Promise<void> {
    const sorted = [...new Set(chunks)].sort((a, b) => a - b)
    if (sorted.length === 0) return
    // Either way the target ends holding the source as copied, which may include writes counted
    // above `count`; replaying those from a journal later could step it back through a state
    // that is no prefix. From here on this target catches up by copies only.
    state.dropJournal(Infinity)
    for (let attempt = 0; attempt < STAGED_ATTEMPTS; attempt++) {
      const outcome = await this.#stagedAttempt(source, target, state, sorted)
      if (outcome !== 'aborted') return
    }
    await this.#copyInPlace(source, target, sorted)
    await this.trimStaging(target)
  }

  /** One freeze, stage and publish; 'aborted' when captures outgrew their bound. */
  async #stagedAttempt(source: Located, target: Located, state: AsyncState,
    sorted: number[]): Promise<'published' | 'aborted' | 'in-place'> {
    const ctx = this.#ctx
    const replica = replicaOf(ctx.fresh(target))!
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
          await this.#copyInPlace(source, target, sorted)
          return 'in-place'
        }
        const attempt: StagingCycle = { slots: new Map(sorted.map((chunk, index) => [chunk, staging[index]!])),
          staged: new Set(), captured: new Map(), frozen: false, aborted: false }
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
      const buffer = Buffer.alloc(source.engine.vg.ppSizeBytes)
      for (const chunk of sorted) {
        if (cycle.aborted) return 'aborted'
        const lp = cycle.slots.get(chunk)!
        const release = await ctx.lockChunk(replica.source.vg, source.lv.lvId, chunk)
        let image: Buffer
        try {
          // Recorded before the lock is released: a writer arriving meanwhile finds it captured.
          image = cycle.captured.get(chunk) ?? await this.#readChunk(source, chunk, buffer)
          cycle.captured.set(chunk, image)
        } finally {
          release()
        }
        await ctx.io.write(target.engine, ctx.fresh(target), image, lp * source.engine.vg.ppSizeBytes)
        cycle.staged.add(chunk)
        cycle.captured.delete(chunk)
        await ctx.options.onStep?.({ kind: 'chunk', target: targetKey, chunk })
      }
    } finally {
      state.staging = undefined
    }
    if (cycle.aborted) return 'aborted'
    await ctx.io.flush(target.engine, ctx.fresh(target))
    const exchanges = sorted.map((chunk) => [chunk + 1, cycle.slots.get(chunk)!] as const)
    await target.engine.vg.lvSwapLps(target.lv.name, exchanges)
    await ctx.gates?.remap(target.engine.vg.name, [target.lv.name])
    await ctx.options.onStep?.({ kind: 'published', target: keyOf(target.engine.vg.name, target.lv.name) })
    await this.trimStaging(target)
    return 'published'
  }

  async #readChunk(source: Located, chunk: number, buffer: Buffer): Promise<Buffer> {
    const pp = source.engine.vg.ppSizeBytes
    await this.#ctx.io.read(source.engine, this.#ctx.fresh(source), buffer, chunk * pp)
    return buffer
  }

  /** Target LPs past its data to stage `count` chunks in (reusing spares a crash left), or
   * undefined when the pool has no room for them. */
  async #allocateStaging(target: Located, count: number): Promise<number[] | undefined> {
    let lv = this.#ctx.fresh(target)
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
  async trimStaging(target: Located): Promise<void> {
    const lv = this.#ctx.fresh(target)
    const spare = lv.lps.length - 1 - replicaOf(lv)!.dataLps
    if (spare > 0) await target.engine.vg.lvReduce(lv.name, spare)
  }

  /**
   * The freeze instant. Natively: gates closed and drained with no opening in flight. In
   * process: at once; a writer that checked before holds its chunk lock across the write, and
   * the copier takes that lock, so the copy includes it.
   */
  async #freeze(sourceVg: string, source: Located, chunks: readonly number[], atInstant: () => void): Promise<void> {
    const gates = this.#ctx.gates
    if (gates === undefined) atInstant()
    else await gates.freezeChunks(sourceVg, source.lv.name, chunks, atInstant)
  }

  /**
   * A write into a frozen chunk not yet staged captures its frozen image first (caller holds the
   * chunk lock): a local read into memory, never a target write. Past the capture bound the
   * attempt is abandoned instead, so the write never waits for the target.
   */
  async beforeWrite(source: Located, child: ChildLocated, chunks: readonly number[]): Promise<void> {
    const cycle = this.#ctx.asyncStates.get(keyOf(child.engine.vg.name, child.lv.name))?.staging
    if (cycle === undefined || !cycle.frozen) return
    const pp = source.engine.vg.ppSizeBytes
    const bound = this.#ctx.options.captureBytesMax ?? 64 * 1024 * 1024
    for (const chunk of chunks) {
      if (cycle.aborted || !cycle.slots.has(chunk) || cycle.staged.has(chunk) || cycle.captured.has(chunk)) continue
      if ((cycle.captured.size + 1) * pp > bound) {
        cycle.aborted = true
        cycle.captured.clear()
        return
      }
      cycle.captured.set(chunk, await this.#readChunk(source, chunk, Buffer.alloc(pp)))
    }
  }

  /** The fallback without room for staging: copies in place, target flagged inconsistent. */
  async #copyInPlace(source: Located, target: Located, chunks: readonly number[]): Promise<void> {
    const ctx = this.#ctx
    const replica = replicaOf(ctx.fresh(target))!
    await ctx.superblocks.update(target, (sb) => ({ ...sb, flags: sb.flags & ~FLAG_CONSISTENT }), false)
    const targetKey = keyOf(target.engine.vg.name, target.lv.name)
    const pp = source.engine.vg.ppSizeBytes
    const buffer = Buffer.alloc(pp)
    for (const chunk of [...chunks].sort((a, b) => a - b)) {
      await ctx.gates?.closeChunkGates(replica.source.vg, source.lv.name, chunk)
      const release = await ctx.lockChunk(replica.source.vg, source.lv.lvId, chunk)
      try {
        await this.#readChunk(source, chunk, buffer)
      } finally {
        release()
      }
      // A write after the read leaves the chunk's newest count above this cycle's: still dirty.
      await ctx.io.write(target.engine, ctx.fresh(target), buffer, (chunk + 1) * pp)
      await ctx.options.onStep?.({ kind: 'chunk', target: targetKey, chunk })
    }
  }
}
