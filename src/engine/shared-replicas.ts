/**
 * Replica locks of a shared mount (docs/shared-vg.md, "Replication"): the daemon serving a source
 * read-write also holds the LV lock of every replica linked to it (a clone, an unfinished copy, a
 * mirror target), EX with noQueue, so no other process writes a replica behind the copy-on-write,
 * the job or the propagator running here. The locks of one source's replicas sit in its
 * recovery domain `rd:<vgId>:repl:<sourceLvId>` (a takeover of one source never collects
 * another's), also once a replica is independent (a complete copy, a split mirror: served when
 * listed in --lvs, its lock stays in the domain its first lock chose). Each value block is the
 * replica superblock's (seq, low-water mark) written when the lock is released, 16 bytes,
 * big-endian u64s.
 *
 * Takeover: a daemon killed while holding a replica lock leaves its value block not valid. The
 * next daemon to serve the source takes the lock, runs dlm_rd_collect, re-reads each collected
 * replica's superblock from disk (its newest valid slot) and writes it again at seq + 1, so a
 * slot the dead daemon tore is superseded, then dlm_rd_validate; DLM_EALREADY (another
 * collector) is waited out and DLM_MORE_TO_RECOVER collects again. Only then does the mount
 * start, and its replication engine resumes the jobs and propagators from what is on disk.
 * A valid value block newer than the superblock on disk (a lost superblock write) is reported.
 */
import { LvmfsError, isLvmfsError } from '../errors/index.js'
import type { DlmLock, DlmSession } from '../dlm/index.js'
import { decodeU64PairBe, encodeU64PairBe } from '../format/index.js'
import type { LvDescriptor, VolumeGroup } from '../lvm/index.js'
import { readSuperblock, writeSuperblock } from '../replication/index.js'

export interface ReplicaMark {
  readonly seq: number
  readonly lwm: number
}

export function encodeReplicaMark(mark: ReplicaMark): Uint8Array {
  return encodeU64PairBe(mark.seq, mark.lwm)
}

/** undefined for anything but a written pair (empty, zero-filled by validate). */
export function decodeReplicaMark(bytes: Uint8Array | undefined): ReplicaMark | undefined {
  const pair = decodeU64PairBe(bytes)
  return pair === undefined ? undefined : { seq: pair[0], lwm: pair[1] }
}

type Log = { info(object: object, message: string): void; warn(object: object, message: string): void }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const COLLECT_ROUNDS = 50

export function replicaLockName(vgId: string, lvId: number): string {
  return `LV:${vgId}:${lvId}`
}

export class SharedReplicaLocks {
  /** Times this process ran collect → superblock repair → validate. */
  recoveries = 0
  /** Replicas whose superblock failed the takeover checks (named, with the reason). */
  readonly problems: string[] = []
  private readonly domains = new Map<number, number>()

  constructor(private readonly dlm: DlmSession, private readonly vgId: string, private readonly log: Log) {}

  /**
   * Takes the locks of `replicas` (EX, or PR for an independent one served read-only; noQueue:
   * one held elsewhere is ENGINE_BUSY) and, if any comes back with its value block not valid,
   * recovers before returning.
   */
  async claim(vg: VolumeGroup, sourceLvId: number, replicas: readonly LvDescriptor[],
    onLocked: (lv: LvDescriptor, lock: DlmLock) => void, mode: 'EX' | 'PR' = 'EX'): Promise<void> {
    if (replicas.length === 0) return
    let rd = this.domains.get(sourceLvId)
    if (rd === undefined) {
      rd = await this.dlm.attach(`rd:${this.vgId}:repl:${sourceLvId}`)
      this.domains.set(sourceLvId, rd)
    }
    let invalid = false
    for (const lv of replicas) {
      let lock: DlmLock
      try {
        lock = await this.dlm.lock(replicaLockName(this.vgId, lv.lvId), mode, { noQueue: true, rd })
      } catch (error) {
        if (isLvmfsError(error, 'DLM_NOTQUEUED')) {
          throw new LvmfsError('ENGINE_BUSY', `replica "${lv.name}" is served by another process`, {
            detail: 'A replica is served by the daemon serving its source, under the replica\'s LV lock.',
            hint: 'Unmount it there first.', context: { vg: vg.name, lv: lv.name } })
        }
        throw error
      }
      onLocked(lv, lock)
      if (!lock.valueBlockValid) invalid = true
      else await this.checkMark(vg, lv, decodeReplicaMark(lock.valueBlock))
    }
    if (invalid) await this.recover(vg, rd)
  }

  /** Releases a replica lock writing its mark (if known) as the value block. */
  async release(lock: DlmLock, mark: ReplicaMark | undefined): Promise<void> {
    await lock.unlock(mark === undefined ? {} : { valueBlock: encodeReplicaMark(mark) }).catch(() => undefined)
  }

  async close(): Promise<void> {
    await Promise.all([...this.domains.values()].map((rd) => this.dlm.detach(rd).catch(() => undefined)))
    this.domains.clear()
  }

  private async checkMark(vg: VolumeGroup, lv: LvDescriptor, mark: ReplicaMark | undefined): Promise<void> {
    if (mark === undefined) return
    try {
      const sb = await readSuperblock(vg, lv)
      if (sb.seq < mark.seq || sb.lwm < mark.lwm) {
        this.problem(lv, `its superblock on disk (seq ${sb.seq}, mark ${sb.lwm}) is older than its last server ` +
          `released it with (seq ${mark.seq}, mark ${mark.lwm}): a superblock write was lost`)
      }
    } catch (error) {
      this.problem(lv, (error as Error).message)
    }
  }

  /** collect → re-read and rewrite each collected replica's superblock → validate. */
  private async recover(vg: VolumeGroup, rd: number): Promise<void> {
    for (let round = 0; round < COLLECT_ROUNDS; round++) {
      let collected: { handle: number, resources: string[] }
      try {
        collected = await this.dlm.collect(rd)
      } catch (error) {
        // Another process's collection is open (given back if it dies): wait for it.
        if (isLvmfsError(error, 'DLM_EALREADY')) {
          await sleep(50)
          continue
        }
        throw error
      }
      for (const resource of collected.resources) await this.repairSuperblock(vg, resource)
      const { status } = await this.dlm.validate(rd, collected.handle)
      if (status === 'DLM_SUCCESS') {
        this.recoveries++
        this.log.info({ vg: vg.name, replicas: collected.resources }, 'replica locks recovered: collect, superblocks, validate')
        return
      }
    }
    throw new LvmfsError('DLM_EALREADY', `recovery of the replica locks of "${vg.name}" did not complete`, {
      detail: 'Another process kept its collection open, or new invalidations kept arriving.' })
  }

  private async repairSuperblock(vg: VolumeGroup, resource: string): Promise<void> {
    const lvId = Number(resource.split(':').at(-1))
    const lv = vg.lvById(lvId)
    if (lv === undefined) return
    try {
      const sb = await readSuperblock(vg, lv)
      await writeSuperblock(vg, lv, { ...sb, seq: sb.seq + 1 })
    } catch (error) {
      this.problem(lv, (error as Error).message)
    }
  }

  private problem(lv: LvDescriptor, reason: string): void {
    const text = `${lv.name}: ${reason}`
    this.problems.push(text)
    this.log.warn({ lv: lv.name, reason }, 'replica superblock check failed at takeover')
  }
}
