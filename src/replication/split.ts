/**
 * Split and rejoin, and the generations that tell a split brain. A split makes a mirror target
 * (or a complete copy) independent; afterwards the first write to either side starts a new
 * generation on that side, so primrec reattaches only when the replica did not move.
 */
import { FLAG_SPLIT, FLAG_WRITTEN_APART } from '../format/index.js'
import type { LvDescriptor } from '../lvm/index.js'
import type { AsyncCatchUp } from './async-catch-up.js'
import type { Located, ReplicationContext } from './context.js'
import { compareGenerations, freshGeneration, nextGeneration } from './generations.js'
import { lsm } from './lsm-error.js'
import { keyOf, replicaOf, sourceOf, withReplica } from './model.js'

/** Until its first write after a split the source stays gated: that write must pass the hook to
 * start the source's new generation (SplitRejoin.noteSourceWrite). */
export function splitUnwritten(lv: LvDescriptor): boolean {
  const ext = sourceOf(lv)
  return ext?.children.some((c) => c.split === true && c.base === ext.generation.current) ?? false
}

export class SplitRejoin {
  readonly #ctx: ReplicationContext
  readonly #catchUp: AsyncCatchUp

  constructor(ctx: ReplicationContext, catchUp: AsyncCatchUp) {
    this.#ctx = ctx
    this.#catchUp = catchUp
  }

  /** replica split: a mirror target (or a complete copy) becomes an independent volume. */
  async split(vgName: string, lvName: string): Promise<void> {
    const ctx = this.#ctx
    const located = ctx.locate(vgName, lvName)
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
    await ctx.asyncStates.stopPropagator(keyOf(vgName, lvName))
    if (replica.kind !== 'copy') await ctx.superblocks.update(located, (sb) => ({ ...sb, flags: sb.flags | FLAG_SPLIT }))
    // Staging partitions a crash left behind a catch-up belong to no one once the pair is apart.
    if (replica.kind === 'mirror-async') await this.#catchUp.trimStaging(located)
    const lv = ctx.fresh(located)
    await located.engine.vg.lvSetExt(lv.name, withReplica(lv, { ...replica, state: 'split' }))
    const source = ctx.engines.get(replica.source.vg)?.vg.lvById(replica.source.lvId)
    if (source !== undefined) {
      const sourceLocated = { engine: ctx.engines.get(replica.source.vg)!, lv: source }
      const markSplit = async (): Promise<void> => {
        await ctx.sources.update(sourceLocated, (ext) => {
          const dirty = { ...ext.dirty }
          delete dirty[keyOf(vgName, lvName)]
          return { ...ext, dirty, children: ext.children.map((c) => c.vg === vgName && c.lv === lvName ?
            { ...c, split: true, base: ext.generation.current } : c) }
        })
      }
      // A source write after the split must pass the hook, which starts its new generation: a
      // write through a gate left open would go unseen and hide a split brain from primrec.
      const gates = ctx.gates
      if (gates === undefined) await markSplit()
      else await gates.withVolumeClosed(replica.source.vg, source.name, markSplit)
      await gates?.remap(replica.source.vg, [source.name])
    }
    ctx.asyncStates.delete(keyOf(vgName, lvName))
    await ctx.gates?.remap(vgName, [lvName])
  }

  /** Reattaches a split target when the generations allow it (never when both sides moved). */
  async rejoin(source: Located, target: Located): Promise<void> {
    const ctx = this.#ctx
    const sb = await ctx.superblocks.of(target)
    const sourceExt = sourceOf(ctx.fresh(source))
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
    await ctx.superblocks.update(target, (s) => ({ ...s, generation,
      flags: s.flags & ~(FLAG_SPLIT | FLAG_WRITTEN_APART) }), false)
    const lv = ctx.fresh(target)
    await target.engine.vg.lvSetExt(lv.name, withReplica(lv, { ...replicaOf(lv)!, state: 'complete' }))
    await ctx.sources.update(source, (ext) => ({ ...ext, children: ext.children.map((c) =>
      c.vg === target.engine.vg.name && c.lv === target.lv.name
        ? { ...c, split: false, base: generation.current } : c) }))
  }

  /** The first write to a split replica starts its new generation. */
  async noteReplicaWrite(located: Located): Promise<void> {
    const ctx = this.#ctx
    const sb = await ctx.superblocks.of(located)
    if ((sb.flags & FLAG_WRITTEN_APART) !== 0 || (sb.flags & FLAG_SPLIT) === 0) return
    await ctx.superblocks.update(located, (s) => (s.flags & FLAG_WRITTEN_APART) !== 0 ? s :
      { ...s, generation: nextGeneration(s.generation), flags: s.flags | FLAG_WRITTEN_APART }, false)
  }

  /** The first write to a source after a split of one of its replicas starts its new generation. */
  async noteSourceWrite(source: Located): Promise<void> {
    const ext = sourceOf(this.#ctx.fresh(source))
    if (ext === undefined) return
    const apart = ext.children.some((c) => c.split === true && c.base === ext.generation.current)
    if (!apart) return
    await this.#ctx.sources.update(source, (now) =>
      now.children.some((c) => c.split === true && c.base === now.generation.current)
      ? { ...now, generation: nextGeneration(now.generation) } : now)
  }
}
