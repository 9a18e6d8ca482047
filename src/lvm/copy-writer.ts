/**
 * Writes one structure (descriptor or status copy) to many PV slots at once: every write is
 * issued in parallel and each device is fdatasync'd after its write, so a commit costs one
 * write plus one flush of latency, not one per PV. Returns which writes failed; the caller
 * decides whether the survivors are a majority.
 */
import type { BlockDevice } from '../io/index.js'

export interface SlotWrite {
  /** pvId:area, the copy position. */
  readonly key: string
  readonly device: BlockDevice
  readonly offsetBytes: number
  readonly bytes: Uint8Array
}

export interface WriteOutcome {
  readonly ok: ReadonlySet<string>
  readonly failed: ReadonlyMap<string, unknown>
  readonly bytesWritten: number
}

export async function writeSlots(jobs: readonly SlotWrite[]): Promise<WriteOutcome> {
  const results = await Promise.allSettled(jobs.map(async (job) => {
    await job.device.write(job.bytes, job.offsetBytes)
    await job.device.sync()
  }))
  const ok = new Set<string>()
  const failed = new Map<string, unknown>()
  let bytesWritten = 0
  results.forEach((result, i) => {
    const job = jobs[i]!
    if (result.status === 'fulfilled') {
      ok.add(job.key)
      bytesWritten += job.bytes.length
    } else {
      failed.set(job.key, result.reason)
    }
  })
  return { ok, failed, bytesWritten }
}
