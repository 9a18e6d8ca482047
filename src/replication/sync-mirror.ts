/**
 * Synchronous mirrors: a source write resolves only after the target's copy of every partition
 * the target holds (all of them once the initial job completed) was written too. Natively the
 * target's copies are extra copies in the source's volume map (see native-map.ts).
 */
import { isCopied } from '../format/index.js'
import type { LvDescriptor } from '../lvm/index.js'
import type { ChildLocated, ReplicationContext } from './context.js'
import type { CopyJobs } from './copy-jobs.js'

export class SyncMirrors {
  readonly #ctx: ReplicationContext
  readonly #jobs: CopyJobs

  constructor(ctx: ReplicationContext, jobs: CopyJobs) {
    this.#ctx = ctx
    this.#jobs = jobs
  }

  /** The attached synchronous mirror targets of a source. */
  attached(vgName: string, source: LvDescriptor): ChildLocated[] {
    return this.#ctx.children(vgName, source).filter(isAttachedSyncTarget)
  }

  /** Whether the target already holds partition `lp` (it receives the source's writes to it). */
  holds(child: ChildLocated, lp: number): boolean {
    return child.replica.state === 'complete' || isCopied(this.#jobs.copiedOf(child.replica.jobId) ?? new Uint8Array(), lp)
  }

  /** The target's part of a source write (caller holds the chunk locks). */
  async write(child: ChildLocated, chunks: readonly number[], data: Uint8Array, offsetBytes: number): Promise<void> {
    const pp = child.engine.vg.ppSizeBytes
    for (const chunk of chunks) {
      if (!this.holds(child, chunk)) continue
      const from = Math.max(offsetBytes, chunk * pp)
      const to = Math.min(offsetBytes + data.length, (chunk + 1) * pp)
      await this.#ctx.io.write(child.engine, child.lv, data.subarray(from - offsetBytes, to - offsetBytes), from + pp)
    }
  }

  async flush(vgName: string, source: LvDescriptor): Promise<void> {
    for (const child of this.attached(vgName, source)) await this.#ctx.io.flush(child.engine, child.lv)
  }
}

export function isAttachedSyncTarget(child: ChildLocated): boolean {
  return child.replica.kind === 'mirror-sync' && child.replica.state !== 'split'
}
