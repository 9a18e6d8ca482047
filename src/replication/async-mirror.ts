/**
 * Asynchronous mirrors. Every source write gets a commit count and marks its chunks dirty for
 * each target (persisted before the write is acknowledged); in-process writes are journaled
 * with their data. The propagator replays the journal in count order while it covers every
 * count above the target's mark, else catches up by copies (async-catch-up.ts), then raises the
 * mark (only ever up, only after the target holds and synced everything up to it).
 */
import { FLAG_COMPLETE, FLAG_CONSISTENT, type ReplicaSuperblock } from '../format/index.js'
import type { LvDescriptor } from '../lvm/index.js'
import type { AsyncCatchUp } from './async-catch-up.js'
import type { AsyncState } from './async-state.js'
import type { ChildLocated, Located, ReplicationContext } from './context.js'
import { compareGenerations } from './generations.js'
import { lsm } from './lsm-error.js'
import { keyOf, replicaOf, sourceOf } from './model.js'
import type { Lag } from './types.js'

export class AsyncMirrors {
  readonly #ctx: ReplicationContext
  readonly #catchUp: AsyncCatchUp

  constructor(ctx: ReplicationContext, catchUp: AsyncCatchUp) {
    this.#ctx = ctx
    this.#catchUp = catchUp
  }

  /** Before a source write to `chunks` counted `count` (caller holds the chunk locks). */
  async beforeWrite(vgName: string, source: Located, child: ChildLocated, chunks: readonly number[],
    count: number): Promise<void> {
    await this.#catchUp.beforeWrite(source, child, chunks)
    await this.#markDirty(vgName, source, this.#ctx.asyncStates.of(child.engine.vg.name, child.lv), chunks, count)
  }

  /** The same for a target whose VG is not online: counted and persisted dirty, not journaled. */
  async beforeDetachedWrite(vgName: string, source: Located, key: string, chunks: readonly number[],
    count: number): Promise<void> {
    await this.#markDirty(vgName, source, this.#ctx.asyncStates.ofDetached(key, this.#ctx.fresh(source)), chunks, count)
  }

  async #markDirty(vgName: string, source: Located, state: AsyncState, chunks: readonly number[],
    count: number): Promise<void> {
    state.note(count, this.#ctx.now())
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
    const ctx = this.#ctx
    await ctx.sources.update(source, (ext) => {
      const lv = ctx.fresh(source)
      const keys = ctx.children(vgName, lv)
        .filter((child) => child.replica.kind === 'mirror-async' && child.replica.state !== 'split')
        .map((child) => keyOf(child.engine.vg.name, child.lv.name))
      const dirty: Record<string, number[]> = {}
      for (const key of [...keys, ...ctx.detachedAsyncTargets(vgName, lv)]) {
        const state = ctx.asyncStates.get(key)
        dirty[key] = state === undefined ? [...(ext.dirty[key] ?? [])] : [...state.persistedDirty].sort((a, b) => a - b)
      }
      return { ...ext, dirty }
    })
  }

  /** Appends an in-process source write to the journal of each attached target. */
  journal(vgName: string, source: LvDescriptor, count: number, data: Uint8Array, offsetBytes: number): void {
    const ctx = this.#ctx
    if (ctx.asyncStates.nativeSources.has(keyOf(vgName, source.name))) return
    const atMs = ctx.now()
    for (const child of ctx.children(vgName, source)) {
      if (child.replica.kind !== 'mirror-async' || child.replica.state === 'split') continue
      const state = ctx.asyncStates.of(child.engine.vg.name, child.lv)
      const bound = ctx.options.journalBytesMax ?? 64 * 1024 * 1024
      state.append({ count, offsetBytes, data: Buffer.from(data), atMs }, bound)
    }
  }

  startPropagator(targetVg: string, target: LvDescriptor): void {
    const replica = replicaOf(target)
    if (replica === undefined || this.#ctx.stopping) return
    const state = this.#ctx.asyncStates.of(targetVg, target)
    if (state.timer !== undefined) return
    state.timer = setInterval(() => {
      // A cycle that cannot start (its VG away) is retried at the next tick.
      void Promise.resolve().then(() => this.propagate(targetVg, target.name)).catch(() => undefined)
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
    const target = this.#ctx.locate(targetVg, targetName)
    const state = this.#ctx.asyncStates.of(targetVg, target.lv)
    const run = state.running.then(() => this.#propagateNow(target, state))
    state.running = run.then(() => undefined, () => undefined)
    return run
  }

  async #propagateNow(target: Located, state: AsyncState): Promise<number> {
    const ctx = this.#ctx
    const replica = replicaOf(ctx.fresh(target))
    if (replica?.kind !== 'mirror-async') throw lsm('LWM_ENOSTORE', `"${target.lv.name}" is not an asynchronous mirror`)
    const sb = await ctx.superblocks.of(target)
    if (replica.state !== 'complete' || (sb.flags & FLAG_COMPLETE) === 0) return sb.lwm
    const source = ctx.sourceOfReplica(replica)
    this.checkGenerations(source, target, sb)
    const count = await ctx.counts.current(replica.source.vg, source.lv)
    if (count <= sb.lwm && state.lastCount.size === 0) return sb.lwm
    const targetKey = keyOf(target.engine.vg.name, target.lv.name)
    // Writes numbered up to `count` may still be between their count and their journal entry.
    await ctx.counts.settled(replica.source.vg, source.lv, count)
    const native = ctx.asyncStates.nativeSources.has(keyOf(replica.source.vg, source.lv.name))
    if (state.journalFrom <= sb.lwm + 1 && !native) {
      for (const entry of state.journal) {
        if (entry.count <= sb.lwm || entry.count > count) continue
        const at = entry.offsetBytes + target.engine.vg.ppSizeBytes
        await ctx.io.write(target.engine, ctx.fresh(target), entry.data, at)
        await ctx.options.onStep?.({ kind: 'applied', target: targetKey, count: entry.count })
      }
    } else {
      await this.#catchUp.catchUp(source, target, state, [...state.lastCount.keys()])
    }
    return await this.raiseMark(source, target, state, count)
  }

  /** Raises the target's mark to `count` and drops the chunks whose newest write is at or below it. */
  async raiseMark(source: Located, target: Located, state: AsyncState, count: number): Promise<number> {
    const ctx = this.#ctx
    const atMs = state.times.filter((sample) => sample.count <= count).at(-1)?.atMs ?? ctx.now()
    const next = await ctx.superblocks.update(target, (sb) => ({ ...sb, lwm: Math.max(sb.lwm, count),
      lwmAtMs: Math.max(sb.lwmAtMs, atMs), flags: sb.flags | FLAG_CONSISTENT }))
    await ctx.options.onStep?.({ kind: 'lwm', target: keyOf(target.engine.vg.name, target.lv.name), lwm: next.lwm })
    state.trim(next.lwm)
    const replica = replicaOf(ctx.fresh(target))!
    let cleared = false
    for (const [chunk, last] of [...state.lastCount]) {
      if (last > next.lwm) continue
      const release = await ctx.lockChunk(replica.source.vg, source.lv.lvId, chunk)
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

  /** An attached target whose generation left its source's is never propagated into. */
  checkGenerations(source: Located, target: Located, sb: ReplicaSuperblock): void {
    const generation = sourceOf(this.#ctx.fresh(source))?.generation
    if (generation === undefined || generation.current === sb.generation.current) return
    const child = sourceOf(this.#ctx.fresh(source))?.children
      .find((c) => c.vg === target.engine.vg.name && c.lv === target.lv.name)
    const verdict = compareGenerations(generation, sb.generation, child?.base ?? sb.generation.current)
    throw lsm('LWM_GENERATION_CONFLICT', `"${source.lv.name}" and "${target.lv.name}" diverged (${verdict})`, {
      detail: `Source generation ${generation.current}, replica generation ${sb.generation.current}.`,
      hint: 'Choose the copy to keep; remove the other and replicate again.', context: { verdict } })
  }

  /** Lag of an async mirror target: commit counts, bytes and seconds behind its source. */
  async lag(targetVg: string, targetName: string): Promise<Lag> {
    const ctx = this.#ctx
    const target = ctx.locate(targetVg, targetName)
    const replica = replicaOf(target.lv)
    if (replica?.kind !== 'mirror-async') throw lsm('LWM_ENOSTORE', `"${targetName}" is not an asynchronous mirror`)
    const source = ctx.sourceOfReplica(replica)
    const sb = await ctx.superblocks.of(target)
    const commitCount = await ctx.counts.current(replica.source.vg, source.lv)
    const state = ctx.asyncStates.of(targetVg, target.lv)
    const pending = [...state.lastCount.values()].filter((count) => count > sb.lwm).length
    const journalBytes = state.journal.filter((e) => e.count > sb.lwm).reduce((sum, e) => sum + e.data.length, 0)
    const bytes = state.journalFrom <= sb.lwm + 1 ? journalBytes : pending * target.engine.vg.ppSizeBytes
    const oldest = commitCount > sb.lwm ? state.oldestAbove(sb.lwm) : undefined
    return { commitCount, lwm: sb.lwm, commits: Math.max(0, commitCount - sb.lwm), bytes,
      seconds: oldest === undefined ? 0 : Math.max(0, (ctx.now() - oldest) / 1000) }
  }
}
