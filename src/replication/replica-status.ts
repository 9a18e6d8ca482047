/** What `replica list`, lvs and status show of a replica: origin, type, sync state, mark and lag. */
import { FLAG_CONSISTENT } from '../format/index.js'
import type { AsyncMirrors } from './async-mirror.js'
import type { ReplicationContext } from './context.js'
import type { CopyJobs } from './copy-jobs.js'
import { keyOf, replicaOf, sourceOf } from './model.js'
import type { ReplicaStatus } from './types.js'

export async function replicaStatus(ctx: ReplicationContext, jobs: CopyJobs, async: AsyncMirrors, vgName: string,
  lvName: string): Promise<ReplicaStatus | undefined> {
  const located = ctx.locate(vgName, lvName)
  const replica = replicaOf(located.lv)
  if (replica === undefined) return undefined
  const sb = await ctx.superblocks.of(located).catch(() => undefined)
  const job = replica.jobId === undefined ? undefined : await jobs.status(replica.jobId).catch(() => undefined)
  const base = { vg: vgName, lv: lvName, kind: replica.kind, origin: keyOf(replica.source.vg, replica.source.lv),
    state: replica.state, ...(replica.jobId === undefined ? {} : { jobId: replica.jobId }),
    ...(job === undefined ? {} : { percent: job.percent }) }
  const syncState = replica.state === 'invalid' ? 'invalid' : replica.state === 'split' ? 'independent' :
    replica.state === 'in-progress' ? `syncing ${job?.percent ?? 0}%` :
      replica.kind === 'mirror-async' && sb !== undefined && (sb.flags & FLAG_CONSISTENT) === 0 ? 'inconsistent' : 'in sync'
  if (replica.kind !== 'mirror-async' || replica.state !== 'complete') {
    return { ...base, syncState, ...(sb === undefined || replica.kind !== 'mirror-async' ? {} : { lwm: sb.lwm }) }
  }
  const lag = await async.lag(vgName, lvName).catch(() => undefined)
  return { ...base, syncState: lag !== undefined && lag.commits > 0 && syncState === 'in sync' ? 'behind' : syncState,
    ...(sb === undefined ? {} : { lwm: sb.lwm }), ...(lag === undefined ? {} : { lag }) }
}

/**
 * Replicas in other VGs of the sources in `vgName` (another site's VG, a pool): their status
 * when their VG is online here; when it is not, what the source side knows: `disconnected`,
 * the last mark seen and the commits and dirty chunks since (`chlwm` semantics are unchanged:
 * the mark is the target's, raised only by a cycle that reached it).
 */
export async function targetStatuses(ctx: ReplicationContext, jobs: CopyJobs, async: AsyncMirrors,
  vgName: string): Promise<ReplicaStatus[]> {
  const engine = ctx.engineOf(vgName, 'LSM_ERR_NOT_FOUND_VOLUME')
  const out: ReplicaStatus[] = []
  for (const lv of engine.vg.descriptor.lvs) {
    const detached = new Set(ctx.detachedAsyncTargets(vgName, lv))
    for (const child of sourceOf(lv)?.children ?? []) {
      if (child.vg === vgName) continue
      const key = keyOf(child.vg, child.lv)
      if (!detached.has(key)) {
        const online = ctx.engines.get(child.vg)?.vg.state === 'online'
        const status = online ? await replicaStatus(ctx, jobs, async, child.vg, child.lv).catch(() => undefined)
          : undefined
        if (status !== undefined) out.push(status)
        continue
      }
      const lwm = ctx.superblocks.cached(key)?.lwm
      const commitCount = await ctx.counts.current(vgName, lv)
      const state = ctx.asyncStates.get(key)
      const oldest = lwm === undefined ? undefined : state?.oldestAbove(lwm)
      const lag = lwm === undefined ? undefined : { commitCount, lwm, commits: Math.max(0, commitCount - lwm),
        bytes: (state?.persistedDirty.size ?? sourceOf(lv)?.dirty[key]?.length ?? 0) * engine.vg.ppSizeBytes,
        seconds: oldest === undefined ? 0 : Math.max(0, (ctx.now() - oldest) / 1000) }
      out.push({ vg: child.vg, lv: child.lv, kind: child.kind, origin: keyOf(vgName, lv.name), state: 'complete',
        syncState: 'disconnected', ...(lwm === undefined ? {} : { lwm }), ...(lag === undefined ? {} : { lag }) })
    }
  }
  return out
}
