/** What `replica list`, lvs and status show of a replica: origin, type, sync state, mark and lag. */
import { FLAG_CONSISTENT } from '../format/index.js'
import type { AsyncMirrors } from './async-mirror.js'
import type { ReplicationContext } from './context.js'
import type { CopyJobs } from './copy-jobs.js'
import { keyOf, replicaOf } from './model.js'
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
