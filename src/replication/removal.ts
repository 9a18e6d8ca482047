/**
 * lsm_volume_child_dependency and lsm_volume_delete over the VGs at hand: a volume that
 * replicas depend on is not removed; a removed replica is unlinked from its source.
 */
import type { ReplicationContext } from './context.js'
import type { CopyJobs } from './copy-jobs.js'
import { assertNoChildDependency, childDependenciesIn } from './dependencies.js'
import { keyOf, replicaOf } from './model.js'

/** Names of the replicas that keep `lvName` from being removed. */
export function childDependencies(ctx: ReplicationContext, vgName: string, lvName: string): string[] {
  ctx.locate(vgName, lvName)
  return childDependenciesIn(ctx.onlineVgs(), vgName, lvName)
}

/** Throws LSM_ERR_HAS_CHILD_DEPENDENCY naming the replicas that depend on the volume. */
export function assertRemovable(ctx: ReplicationContext, vgName: string, lvName: string): void {
  ctx.locate(vgName, lvName)
  assertNoChildDependency(ctx.onlineVgs(), vgName, lvName)
}

/** Removes a volume after the dependency check, unlinking it from its source. */
export async function removeVolume(ctx: ReplicationContext, jobs: CopyJobs, vgName: string,
  lvName: string): Promise<void> {
  assertRemovable(ctx, vgName, lvName)
  const located = ctx.locate(vgName, lvName)
  const replica = replicaOf(located.lv)
  await ctx.asyncStates.stopPropagator(keyOf(vgName, lvName))
  ctx.asyncStates.delete(keyOf(vgName, lvName))
  if (jobs.isRunning(replica?.jobId)) await ctx.io.flush(located.engine, located.lv).catch(() => undefined)
  if (replica !== undefined) {
    const sourceEngine = ctx.engines.get(replica.source.vg)
    const source = sourceEngine?.vg.lvById(replica.source.lvId)
    if (sourceEngine !== undefined && source !== undefined && sourceEngine.vg.state === 'online') {
      await ctx.sources.removeChild({ engine: sourceEngine, lv: source }, vgName, lvName)
    }
  }
  await ctx.io.closeOne(located.engine, located.lv.lvId)
  await located.engine.vg.lvRemove(lvName)
  ctx.superblocks.forget(vgName, lvName)
  if (replica !== undefined) await ctx.gates?.remap(replica.source.vg, [replica.source.lv])
}
