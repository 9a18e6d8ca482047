/**
 * Shared volume groups (`vgcreate --shared`): several processes vary one VG on at once, each
 * serving some of its LVs, and take turns to change the descriptor under the DLM (src/dlm).
 *
 * Locks (namespace of the DLM session; docs/shared-vg.md):
 *  - `VG:<vgId>` in recovery domain `rd:<vgId>`. Held EX during vary-on and during every commit
 *    (the OnlineVg commit guard), PR the rest of the time. Its value block is the 16-byte pair
 *    (descriptor seq, status seq), big-endian u64s, written on every down-conversion from EX.
 *  - A holder that sees a valid value block different from what it has in memory (or empty or
 *    zero: nobody wrote it since a validate) reloads the descriptor and status from disk.
 *  - A PR holder that blocks a waiter (blocking notification) converts down to NL and back up
 *    to PR: the waiter commits in between, and the regrant carries the new seqs.
 *  - A value block marked not valid (a holder died in EX, perhaps halfway through a commit):
 *    the process that sees it takes EX, runs collect, reloads from disk and rewrites stale or
 *    torn copies (the vary-on recovery step, so a minority write of the dead process is either
 *    completed or superseded), validates, and only then proceeds. DLM_EALREADY (someone else is
 *    collecting) is waited out; DLM_MORE_TO_RECOVER collects again.
 *
 * Every EX request is a conversion from NL (also the first one, at vary-on): conversions are
 * granted before new requests, so a new EX request would starve behind PR holders that yield.
 *
 * Ordering: every lock conversion after vary-on runs in the OnlineVg's serial chain (the commit
 * guard is inside it; blocking notifications enter it through `unguarded`), so a commit and a
 * yield never interleave. Up-conversions go through NL first, so two processes never both
 * convert PR → EX (the classic conversion deadlock).
 */
import { LvmfsError, isLvmfsError } from '../errors/index.js'
import { decodeU64PairBe, encodeU64PairBe } from '../format/index.js'
import type { DlmLock, DlmSession } from '../dlm/index.js'
import { descriptorProblems } from './descriptor.js'
import type { OnlineVg } from './online-vg.js'
import type { Probe } from './probe.js'
import { readVgCopies } from './read-vg.js'
import { normalizeStatus, statusEquals, statusFromRecords } from './status.js'
import { recover } from './varyon.js'

export interface SharedSeqs {
  readonly descriptorSeq: number
  readonly statusSeq: number
}

export const VALUE_BLOCK_BYTES = 16

export function encodeSeqs(seqs: SharedSeqs): Uint8Array {
  return encodeU64PairBe(seqs.descriptorSeq, seqs.statusSeq)
}

/** undefined for anything that is not a written pair (empty, zero-filled by validate, foreign). */
export function decodeSeqs(bytes: Uint8Array): SharedSeqs | undefined {
  const pair = decodeU64PairBe(bytes)
  return pair === undefined ? undefined : { descriptorSeq: pair[0], statusSeq: pair[1] }
}

export function seqsOf(vg: OnlineVg): SharedSeqs {
  return { descriptorSeq: vg.descriptor.seq, statusSeq: vg.status.seq }
}

/**
 * Re-reads the newest committed descriptor and status from the VG's open PVs with the vary-on
 * quorum rules and adopts them (emitting change events). `repair`: also rewrite stale or torn
 * copies, as vary-on does (the caller holds the VG lock EX). Must run inside the VG's serial
 * chain (a commit guard, or `vg.unguarded`). Returns true when something changed.
 */
export async function reloadOnlineVg(vg: OnlineVg, options: { repair?: boolean } = {}): Promise<boolean> {
  const members: Probe[] = vg.pvs.runtimes().map((rt) => ({ entry: { name: rt.device.path },
    pvId: rt.label.pvId, status: 'LVM_PVINVG', device: rt.device, label: rt.label }))
  const read = await readVgCopies(vg.vgId, members)
  if (read.kind !== 'chosen' || !read.vgdaQuorum || !read.vgsaQuorum || read.records.length === 0) {
    throw new LvmfsError('LVM_NOQUORUM', `cannot reload the descriptor of shared volume group "${vg.name}"`, {
      detail: read.kind === 'chosen' ? `${read.present} of ${read.total} descriptor copies are readable.`
        : read.error.message, context: { vg: vg.name } })
  }
  const d = read.descriptor
  const problems = descriptorProblems(d)
  if (problems.length > 0) {
    throw new LvmfsError('LVM_INVCONFIG', `reloaded descriptor of "${d.name}" is inconsistent`, {
      detail: problems.slice(0, 5).join('; ') + '.' })
  }
  vg.slots.learnAll(read.areas)
  vg.slots.raiseFloors(read.maxSeq, read.maxStatusSeq)
  const status = normalizeStatus(statusFromRecords(read.records, d), d)
  const descriptorChanged = d.seq !== vg.descriptor.seq || d.timestampMs !== vg.descriptor.timestampMs
  const statusChanged = descriptorChanged || status.seq !== vg.status.seq || !statusEquals(status, vg.status)
  vg.adoptCommitted(d, status)
  if (options.repair === true) await recover(vg, read, status)
  if (descriptorChanged) vg.emit('descriptor')
  else if (statusChanged) vg.emit('status')
  return descriptorChanged || statusChanged
}

export interface SharedVgLockOptions {
  readonly dlm: DlmSession
  readonly vgId: string
  readonly log?: { info(object: object, message: string): void; warn(object: object, message: string): void }
  /** Test hook: runs after a commit, while EX is still held (a kill -9 lands here). */
  readonly afterCommit?: () => Promise<void>
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The VG lock of one process on one shared VG (see the module comment). */
export class SharedVgLock {
  /** Times this process ran collect → reload → validate, and reloads caused by the value block. */
  recoveries = 0
  reloads = 0
  private vg: OnlineVg | undefined
  private yieldQueued = false

  private constructor(private readonly options: SharedVgLockOptions, private readonly rd: number,
    private readonly lock: DlmLock) {}

  /** Before vary-on: attach the recovery domain and take the VG lock EX (vary-on may write). */
  static async acquire(options: SharedVgLockOptions): Promise<SharedVgLock> {
    const rd = await options.dlm.attach(`rd:${options.vgId}`)
    try {
      // NL, then a conversion to EX: conversions are granted before new requests, so a new EX
      // request would starve behind PR holders that yield and convert back up.
      const lock = await options.dlm.lock(`VG:${options.vgId}`, 'NL', { rd })
      await lock.convert('EX').catch(async (error: unknown) => {
        await lock.unlock().catch(() => undefined)
        throw error
      })
      return new SharedVgLock(options, rd, lock)
    } catch (error) {
      await options.dlm.detach(rd).catch(() => undefined)
      throw error
    }
  }

  /** Whether the value block was found not valid: the vary-on that follows reads from disk, and
   * `attach` runs the recovery (collect, repair, validate) before anything else. */
  get needsRecovery(): boolean {
    return !this.lock.valueBlockValid
  }

  get mode(): string {
    return this.lock.mode
  }

  /** After a shared vary-on (still EX): recover if needed, install the commit guard, go to PR. */
  async attach(vg: OnlineVg): Promise<void> {
    this.vg = vg
    if (!this.lock.valueBlockValid) await this.recover(vg)
    vg.setCommitGuard((mutation) => this.underExclusive(vg, mutation))
    this.lock.onBlocking(() => this.queueYield(vg))
    this.options.dlm.onRecoveryNeeded(() => this.queueYield(vg))
    await this.lock.convert('PR', { valueBlock: encodeSeqs(seqsOf(vg)) })
  }

  /** Unlocks (writing the value block if EX) and detaches the recovery domain. */
  async release(): Promise<void> {
    this.vg?.setCommitGuard(undefined)
    if (!this.lock.released) {
      await this.lock.unlock(this.lock.mode === 'EX' && this.vg ? { valueBlock: encodeSeqs(seqsOf(this.vg)) } : {})
        .catch(() => undefined)
    }
    await this.options.dlm.detach(this.rd).catch(() => undefined)
  }

  private async toExclusive(): Promise<void> {
    if (this.lock.mode === 'EX') return
    if (this.lock.mode !== 'NL') await this.lock.convert('NL')
    await this.lock.convert('EX')
  }

  /** The commit guard: EX, bring the descriptor up to date, commit, PR with the new seqs. */
  private async underExclusive<T>(vg: OnlineVg, mutation: () => Promise<T>): Promise<T> {
    await this.toExclusive()
    try {
      await this.catchUp(vg)
      const result = await mutation()
      await this.options.afterCommit?.()
      return result
    } finally {
      await this.lock.convert('PR', { valueBlock: encodeSeqs(seqsOf(vg)) })
    }
  }

  /** Holding PR or EX: reload when the value block says the disk moved; recover when invalid. */
  private async catchUp(vg: OnlineVg): Promise<void> {
    if (!this.lock.valueBlockValid) {
      await this.recover(vg)
      return
    }
    const seen = decodeSeqs(this.lock.valueBlock)
    const mine = seqsOf(vg)
    if (seen === undefined || seen.descriptorSeq !== mine.descriptorSeq || seen.statusSeq !== mine.statusSeq) {
      if (await reloadOnlineVg(vg)) this.reloads++
    }
  }

  /** collect → reload from disk (repairing copies) → validate, under EX. */
  private async recover(vg: OnlineVg): Promise<void> {
    await this.toExclusive()
    for (let round = 0; round < 50; round++) {
      let handle: number
      try {
        handle = (await this.options.dlm.collect(this.rd)).handle
      } catch (error) {
        // Someone else's collection is open (it gives it back if it dies): wait for it.
        if (isLvmfsError(error) && error.code === 'DLM_EALREADY') {
          await sleep(50)
          continue
        }
        throw error
      }
      await reloadOnlineVg(vg, { repair: true })
      const { status } = await this.options.dlm.validate(this.rd, handle)
      if (status === 'DLM_SUCCESS') {
        this.recoveries++
        this.options.log?.info({ vg: vg.name, seq: vg.descriptor.seq }, 'shared VG recovered: collect, reload, validate')
        return
      }
    }
    throw new LvmfsError('DLM_EALREADY', `recovery of shared volume group "${vg.name}" did not complete`, {
      detail: 'Another process kept its collection open, or new invalidations kept arriving.' })
  }

  /** Someone waits for EX (or a holder died): let it in, then catch up, in the VG's order. */
  private queueYield(vg: OnlineVg): void {
    if (this.yieldQueued) return
    this.yieldQueued = true
    void vg.unguarded(async () => {
      this.yieldQueued = false
      if (this.lock.released) return
      if (this.lock.mode === 'PR') {
        await this.lock.convert('NL')
        await this.lock.convert('PR')
      }
      if (!this.lock.valueBlockValid) {
        await this.recover(vg)
        await this.lock.convert('PR', { valueBlock: encodeSeqs(seqsOf(vg)) })
      } else {
        await this.catchUp(vg)
      }
    }).catch((error: unknown) => {
      this.options.log?.warn({ err: error, vg: vg.name }, 'shared VG: yielding the VG lock failed')
    })
  }
}
