/**
 * Jobs: the copy of a full copy, and the initial sync of a mirror. Partitions are copied in
 * order, a few in flight, each under its source chunk lock, and recorded in the target
 * superblock's bitmap at checkpoints. A source write to a partition not yet copied (or whose bit
 * is not durable yet) pushes it first, so the target is the source's image at creation. The
 * target's state becomes complete only after every partition was copied and synced.
 */
import { FLAG_COMPLETE, FLAG_CONSISTENT, countCopied, isCopied, setCopied } from '../format/index.js'
import type { LvDescriptor } from '../lvm/index.js'
import type { ChildLocated, Located, ReplicationContext } from './context.js'
import { lsm } from './lsm-error.js'
import { parseJobId, replicaOf, withReplica } from './model.js'
import type { JobStatus } from './types.js'

interface JobRun {
  readonly id: string
  copied: Uint8Array
  persisted: Uint8Array
  done: Promise<void>
  error?: unknown
}

/** target |= bits (bitmaps of copied partitions). */
function orInto(target: Uint8Array, bits: Uint8Array): void {
  for (let index = 0; index < bits.length; index++) target[index] = (target[index] ?? 0) | bits[index]!
}

/** Partitions copied at once by one job. */
const JOB_WORKERS = 4

export class CopyJobs {
  readonly #ctx: ReplicationContext
  readonly #runs = new Map<string, JobRun>()
  /** An async mirror's initial sync completed: its propagator takes over. */
  readonly #onAsyncSynced: (targetVg: string, target: LvDescriptor) => void

  constructor(ctx: ReplicationContext, onAsyncSynced: (targetVg: string, target: LvDescriptor) => void) {
    this.#ctx = ctx
    this.#onAsyncSynced = onAsyncSynced
  }

  /** The live bitmap of partitions a job running here copied (undefined: not running here). */
  copiedOf(jobId: string | undefined): Uint8Array | undefined {
    return jobId === undefined ? undefined : this.#runs.get(jobId)?.copied
  }

  isRunning(jobId: string | undefined): boolean {
    return jobId !== undefined && this.#runs.has(jobId)
  }

  /** Before a source write to `chunk`: the copy gets the partition's current data first. */
  async push(source: Located, child: ChildLocated, chunk: number): Promise<void> {
    const ctx = this.#ctx
    const run = this.#runs.get(child.replica.jobId ?? '')
    if (run === undefined) {
      // The job is not running in this process: copy and persist the partition right here.
      const sb = await ctx.superblocks.of(child)
      if (isCopied(sb.copied, chunk)) return
      await ctx.copyLp(source, child, chunk)
      const copied = sb.copied.slice()
      setCopied(copied, chunk)
      await ctx.superblocks.persistCopied(child, copied, 0)
      return
    }
    if (isCopied(run.persisted, chunk)) return
    if (!isCopied(run.copied, chunk)) {
      await ctx.copyLp(source, child, chunk)
      setCopied(run.copied, chunk)
    }
    const snapshot = run.copied.slice()
    await ctx.superblocks.persistCopied(child, snapshot, 0)
    orInto(run.persisted, snapshot)
  }

  start(jobId: string): void {
    // A run that failed without recording it (its VG went away mid-job) may run again.
    const previous = this.#runs.get(jobId)
    if ((previous !== undefined && previous.error === undefined) || this.#ctx.stopping) return
    const run: JobRun = { id: jobId, copied: new Uint8Array(), persisted: new Uint8Array(), done: Promise.resolve() }
    this.#runs.set(jobId, run)
    run.done = this.#run(run).catch(async (error: unknown) => {
      run.error = error
      if (this.#ctx.stopping) return
      await this.#setState(jobId, 'error', error instanceof Error ? error.message : String(error)).catch(() => undefined)
    })
  }

  target(jobId: string): ChildLocated {
    const parsed = parseJobId(jobId)
    const engine = parsed === undefined ? undefined : this.#ctx.engines.get(parsed.vg)
    const lv = parsed === undefined ? undefined : engine?.vg.lvById(parsed.lvId)
    const replica = lv === undefined ? undefined : replicaOf(lv)
    if (engine === undefined || lv === undefined || replica === undefined || replica.jobId !== jobId) {
      throw lsm('LSM_ERR_NOT_FOUND_JOB', `no job "${jobId}"`, { context: { job: jobId } })
    }
    return { engine, lv, replica }
  }

  async #run(run: JobRun): Promise<void> {
    const ctx = this.#ctx
    const target = this.target(run.id)
    const source = ctx.sourceOfReplica(target.replica)
    const sb = await ctx.superblocks.of(target)
    run.copied = sb.copied.slice()
    const async = target.replica.kind === 'mirror-async'
    let startCount = 0
    if (async) {
      const state = ctx.asyncStates.of(target.engine.vg.name, target.lv)
      // Chunks written after they were copied (before a restart) are copied again.
      for (const chunk of state.persistedDirty) {
        run.copied[chunk >> 3] = (run.copied[chunk >> 3] ?? 0) & ~(1 << (chunk & 7))
      }
      startCount = await ctx.counts.current(target.replica.source.vg, source.lv)
    }
    run.persisted = run.copied.slice()
    const total = target.replica.dataLps
    const pp = target.engine.vg.ppSizeBytes
    const every = ctx.options.checkpointLps ?? Math.max(1, Math.floor((256 * 1024 * 1024) / pp))
    let since = 0
    let next = 0
    // A few partitions in flight: each is copied under its own chunk lock, so source writes
    // (and synchronous mirror writes) to it wait; the checkpoint records completed ones only.
    const worker = async (): Promise<void> => {
      const buffer = Buffer.alloc(pp)
      for (;;) {
        const lp = next++
        if (lp >= total || ctx.stopping) return
        if (isCopied(run.copied, lp)) continue
        const release = await ctx.lockChunk(target.replica.source.vg, source.lv.lvId, lp)
        try {
          // Native writes into the partition wait in the gate hook (which takes this lock).
          await ctx.gates?.closeChunkGates(target.replica.source.vg, source.lv.name, lp)
          if (!isCopied(run.copied, lp)) {
            await ctx.copyLp(source, target, lp, buffer)
            setCopied(run.copied, lp)
            // A synchronous mirror's copy of this partition joins the source's native map now.
            if (target.replica.kind === 'mirror-sync') await ctx.gates?.remap(target.replica.source.vg, [source.lv.name])
          }
        } finally {
          release()
        }
        await ctx.options.onStep?.({ kind: 'copied', job: run.id, lp, doneLps: countCopied(run.copied), totalLps: total })
        if (++since >= every) {
          since = 0
          const snapshot = run.copied.slice()
          await ctx.superblocks.persistCopied(target, snapshot, 0)
          orInto(run.persisted, snapshot)
        }
      }
    }
    await Promise.all(Array.from({ length: JOB_WORKERS }, worker))
    if (ctx.stopping) return
    await this.#finish(run, target, startCount)
  }

  async #finish(run: JobRun, target: ChildLocated, startCount: number): Promise<void> {
    const ctx = this.#ctx
    const flags = FLAG_COMPLETE | (target.replica.kind === 'mirror-async' ? 0 : FLAG_CONSISTENT)
    await ctx.superblocks.persistCopied(target, run.copied, flags)
    run.persisted = run.copied.slice()
    if (target.replica.kind === 'mirror-async') {
      // Chunks were copied at different times: the copy equals a prefix of the source's writes
      // only if none happened during the job; otherwise the first propagation makes it one.
      const source = ctx.fresh(ctx.sourceOfReplica(target.replica))
      const quiet = await ctx.counts.current(target.replica.source.vg, source) === startCount
      await ctx.superblocks.update(target, (sb) => ({ ...sb, lwm: Math.max(sb.lwm, startCount),
        flags: quiet ? sb.flags | FLAG_CONSISTENT : sb.flags & ~FLAG_CONSISTENT, lwmAtMs: ctx.now() }))
    }
    await this.#setState(run.id, 'complete')
    await ctx.gates?.remap(target.replica.source.vg, [target.replica.source.lv])
    await ctx.gates?.remap(target.engine.vg.name, [target.lv.name])
    if (target.replica.kind === 'mirror-async') this.#onAsyncSynced(target.engine.vg.name, ctx.fresh(target))
  }

  async #setState(jobId: string, state: 'complete' | 'error', error?: string): Promise<void> {
    const target = this.target(jobId)
    const lv = this.#ctx.fresh(target)
    await target.engine.vg.lvSetExt(lv.name, withReplica(lv, { ...replicaOf(lv)!, state,
      ...(error === undefined ? {} : { error }) }))
  }

  /** lsm_job_status_volume_get: state and percent of a job (persisted in the target). */
  async status(jobId: string): Promise<JobStatus> {
    const target = this.target(jobId)
    const { replica } = target
    const volume = { vg: target.engine.vg.name, lv: target.lv.name }
    if (replica.state === 'error') {
      return { id: jobId, state: 'ERROR', percent: 0, kind: replica.kind, volume, ...(replica.error ? { error: replica.error } : {}) }
    }
    if (replica.state !== 'in-progress') return { id: jobId, state: 'COMPLETE', percent: 100, kind: replica.kind, volume }
    const run = this.#runs.get(jobId)
    const copied = run?.copied ?? (await this.#ctx.superblocks.of(target)).copied
    const percent = Math.min(99, Math.floor((countCopied(copied) * 100) / Math.max(1, replica.dataLps)))
    return { id: jobId, state: 'INPROGRESS', percent, kind: replica.kind, volume }
  }

  /** Every job recorded in the online VGs. */
  async all(): Promise<JobStatus[]> {
    const out: JobStatus[] = []
    for (const engine of this.#ctx.onlineEngines()) {
      for (const lv of engine.vg.descriptor.lvs) {
        const jobId = replicaOf(lv)?.jobId
        if (jobId !== undefined) out.push(await this.status(jobId))
      }
    }
    return out
  }

  /** Runs (or resumes) the job in this process and resolves when it is no longer in progress. */
  async wait(jobId: string, onProgress?: (status: JobStatus) => void): Promise<JobStatus> {
    this.target(jobId)
    this.start(jobId)
    for (;;) {
      const status = await this.status(jobId)
      onProgress?.(status)
      if (status.state !== 'INPROGRESS') return status
      const run = this.#runs.get(jobId)
      if (run === undefined) return status
      await Promise.race([run.done, new Promise((resolve) => setTimeout(resolve, 200).unref())])
      if (run.error !== undefined && this.#ctx.stopping) return await this.status(jobId)
    }
  }

  /** Waits until every job stopped (at a checkpoint, once the context is stopping). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#runs.values()].map((run) => run.done))
  }
}
