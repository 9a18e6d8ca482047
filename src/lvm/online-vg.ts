/**
 * OnlineVg: a varied-on volume group (implements VolumeGroup). It serialises mutations, runs
 * the pure LV transforms (lv-transforms.ts) and commits their results through the commit
 * protocol (commit.ts), and turns a lost quorum into LVM_FORCEOFF. Its open PVs live in a
 * PvSet; nothing outside changes them except through the methods here and in pv-ops.ts.
 */
import { LvmfsError, usageError } from '../errors/index.js'
import type { BlockDevice } from '../io/index.js'
import type { PvLabel } from '../format/index.js'
import { assert } from '../util/index.js'
import type { DescriptorBackup } from './backup.js'
import { CopySlots, MetadataCommitter, majorityShortfall, requiredSets, type CommitVerdict } from './commit.js'
import {
  addCopies, dropCopies, moveCopy, unsyncedRefs, withoutUnsyncedMarker,
} from './copies-changes.js'
import { allocatedCount } from './descriptor.js'
import {
  changeLv, createLv, extendLv, reduceLv, removeLv, renameLv, setLvExt, swapLps, type LvTransform,
  type PvContext,
} from './lv-transforms.js'
import type {
  JsonValue, LvDescriptor, PpRef, PvState, StaleChange, VaryOnFlags, VgDescriptor, VgStatus,
} from './model.js'
import { standardPlacement } from './placement.js'
import { addPvsToVg, attachPv, releasePvFromVg, validateVgName } from './pv-ops.js'
import type { DeviceOpener, PvSet } from './pv-set.js'
import { isStaleBit, normalizeStatus, statusEquals, withStaleBits } from './status.js'
import type { LvChangeOptions, LvCreateOptions, VgChangeEvent, VgState, VolumeGroup } from './volume-group.js'

export type { DeviceOpener, PvRuntime } from './pv-set.js'
export { commitStats } from './commit.js'

/** Runs one serialised mutation (shared VGs: under the DLM's VG lock EX, see shared-vg.ts). */
export type CommitGuard = <T>(mutation: () => Promise<T>) => Promise<T>

export interface OnlineVgInit {
  readonly descriptor: VgDescriptor
  readonly status: VgStatus
  readonly pvs: PvSet
  readonly slots: CopySlots
  readonly flags: VaryOnFlags
  readonly opener: DeviceOpener
  /** Receives every committed descriptor (vgcfgbackup's files; backup.ts). */
  readonly backup?: DescriptorBackup
}

export class OnlineVg implements VolumeGroup {
  state: VgState = 'online'
  #descriptor: VgDescriptor
  #status: VgStatus
  readonly pvs: PvSet
  readonly slots: CopySlots
  readonly noOpenLvs: boolean
  readonly autoResync: boolean
  readonly opener: DeviceOpener
  readonly #committer: MetadataCommitter
  #chain: Promise<unknown> = Promise.resolve()
  #commitGuard: CommitGuard | undefined
  readonly #changeListeners = new Set<(event: VgChangeEvent) => void>()
  readonly #forceOffListeners = new Set<(error: Error) => void>()
  readonly #commitGuards = new Set<(next: VgDescriptor) => Promise<void>>()
  readonly #closeListeners = new Set<() => void>()
  #closed: Promise<void> | undefined
  readonly #backup: DescriptorBackup | undefined
  /** Backups run after their commit, in commit order, without holding up the next commit. */
  #backups: Promise<void> = Promise.resolve()

  constructor(init: OnlineVgInit) {
    this.#descriptor = init.descriptor
    this.#status = init.status
    this.pvs = init.pvs
    this.slots = init.slots
    this.noOpenLvs = init.flags.noopenLvs === true
    this.autoResync = init.flags.autoResync !== false
    this.opener = init.opener
    this.#backup = init.backup
    this.#committer = new MetadataCommitter(this.pvs, this.slots, () => this.name)
  }

  get descriptor(): VgDescriptor { return this.#descriptor }
  get status(): VgStatus { return this.#status }
  get vgId(): string { return this.#descriptor.vgId }
  get name(): string { return this.#descriptor.name }
  get ppSizeBytes(): number { return this.#descriptor.ppSizeBytes }

  pvState(pvIndex: number): PvState {
    const pv = this.descriptor.pvs[pvIndex]
    if (pv === undefined) throw usageError(`no PV with index ${pvIndex}`)
    if (pv.removed) return 'removed'
    return this.status.missing[pvIndex] === true || !this.pvs.has(pv.pvId) ? 'missing' : 'active'
  }

  device(pvIndex: number): BlockDevice | undefined {
    const pv = this.descriptor.pvs[pvIndex]
    return pv === undefined || this.pvState(pvIndex) !== 'active' ? undefined : this.pvs.get(pv.pvId)?.device
  }

  private labelOf(pvIndex: number): PvLabel {
    const pv = this.descriptor.pvs[pvIndex]
    const label = pv === undefined ? undefined : this.pvs.get(pv.pvId)?.label
    if (label === undefined) {
      throw new LvmfsError('LVM_PVSTATE', `PV ${pvIndex} of "${this.name}" is not reachable`, {
        context: { pvIndex } })
    }
    return label
  }

  ppOffsetBytes(pvIndex: number, pp: number): number {
    const label = this.labelOf(pvIndex)
    assert(pp >= 0 && pp < label.ppCount, `pp ${pp} inside PV ${pvIndex}`)
    return label.dataOffsetBytes + pp * this.ppSizeBytes
  }

  mwcArea(pvIndex: number): { offsetBytes: number; sizeBytes: number } {
    const label = this.labelOf(pvIndex)
    return { offsetBytes: label.mwcOffsetBytes, sizeBytes: label.mwcSizeBytes }
  }

  isStale(pvIndex: number, pp: number): boolean {
    return isStaleBit(this.status, pvIndex, pp)
  }

  lvByName(name: string): LvDescriptor | undefined {
    return this.descriptor.lvs.find((lv) => lv.name === name)
  }

  lvById(lvId: number): LvDescriptor | undefined {
    return this.descriptor.lvs.find((lv) => lv.lvId === lvId)
  }

  lpCountForBytes(bytes: number): number {
    return Math.ceil(bytes / this.ppSizeBytes)
  }

  activePvIndexes(): number[] {
    return this.descriptor.pvs.flatMap((_, i) => (this.pvState(i) === 'active' ? [i] : []))
  }

  onChange(listener: (event: VgChangeEvent) => void): () => void {
    this.#changeListeners.add(listener)
    return () => this.#changeListeners.delete(listener)
  }

  addCommitGuard(guard: (next: VgDescriptor) => Promise<void>): () => void {
    this.#commitGuards.add(guard)
    return () => this.#commitGuards.delete(guard)
  }

  onForceOff(listener: (error: Error) => void): () => void {
    this.#forceOffListeners.add(listener)
    return () => this.#forceOffListeners.delete(listener)
  }

  /** Called once when the VG leaves the online state (varied off or forced off). */
  onClose(listener: () => void): () => void {
    this.#closeListeners.add(listener)
    return () => this.#closeListeners.delete(listener)
  }

  /** Runs mutations one at a time, in call order, each inside the commit guard if one is set. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const guarded = (): Promise<T> => {
      this.assertOnline()
      return fn()
    }
    const run = this.#chain.then(() => (this.#commitGuard === undefined ? guarded() : this.#commitGuard(guarded)))
    this.#chain = run.catch(() => undefined)
    return run
  }

  /** Shared VGs: every later mutation runs inside `guard` (which takes the VG lock EX and
   * reloads the descriptor when another process moved it). */
  setCommitGuard(guard: CommitGuard | undefined): void {
    this.#commitGuard = guard
  }

  /** Runs `fn` in the mutation order but outside the commit guard (shared-vg.ts reloads). */
  unguarded<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(() => {
      this.assertOnline()
      return fn()
    })
    this.#chain = run.catch(() => undefined)
    return run
  }

  assertOnline(): void {
    if (this.state === 'forcedoff') {
      throw new LvmfsError('LVM_FORCEOFF', `volume group "${this.name}" was forced off after losing quorum`)
    }
    if (this.state === 'offline') throw new LvmfsError('LVM_OFFLINE', `volume group "${this.name}" is varied off`)
  }

  /** Adopts a descriptor and status another process committed (shared-vg.ts, inside the chain). */
  adoptCommitted(descriptor: VgDescriptor, status: VgStatus): void {
    this.#descriptor = descriptor
    this.#status = status
  }

  // ---- LV mutations ----

  private pvContext(): PvContext {
    return { activePvIndexes: this.activePvIndexes(), mwcAreaBytes: (pvIndex) => this.mwcArea(pvIndex).sizeBytes }
  }

  private transformLv(transform: (d: VgDescriptor) => LvTransform): Promise<LvDescriptor> {
    return this.serial(async () => {
      const { descriptor, lv } = transform(this.descriptor)
      await this.commitDescriptor(descriptor)
      return lv
    })
  }

  lvCreate(options: LvCreateOptions): Promise<LvDescriptor> {
    return this.transformLv((d) => createLv(d, options, this.pvContext()))
  }

  lvExtend(lvName: string, addLps: number): Promise<LvDescriptor> {
    return this.transformLv((d) => extendLv(d, lvName, addLps, this.pvContext()))
  }

  lvReduce(lvName: string, removeLps: number): Promise<LvDescriptor> {
    return this.transformLv((d) => reduceLv(d, lvName, removeLps))
  }

  /**
   * Exchanges the physical partitions of LP pairs of one LV in a single descriptor commit, so a
   * crash leaves either every pair exchanged or none. Replication uses it to publish partitions
   * staged beside the live ones at once.
   */
  lvSwapLps(lvName: string, pairs: ReadonlyArray<readonly [number, number]>): Promise<LvDescriptor> {
    return this.serial(async () => {
      const { descriptor, lv } = swapLps(this.descriptor, lvName, pairs)
      if (pairs.length > 0) await this.commitDescriptor(descriptor)
      return lv
    })
  }

  lvRemove(lvName: string): Promise<void> {
    return this.serial(() => this.commitDescriptor(removeLv(this.descriptor, lvName)))
  }

  lvRename(lvName: string, newName: string): Promise<LvDescriptor> {
    return this.transformLv((d) => renameLv(d, lvName, newName))
  }

  lvChange(lvName: string, change: LvChangeOptions): Promise<LvDescriptor> {
    return this.transformLv((d) => changeLv(d, lvName, change, this.pvContext()))
  }

  /** Three commits: the descriptor with the new copies marked unsynced (and their stale bits
   * in memory at once, so no map ever names them fresh), the status with those bits, and the
   * descriptor without the marker (copies-changes.ts says why). */
  lvAddCopies(lvName: string, copies: number, pvIndexes?: readonly number[]): Promise<LvDescriptor> {
    return this.serial(async () => {
      const { descriptor, added } = addCopies(this.descriptor, lvName, copies, this.pvContext(), pvIndexes)
      const stale = added.map((ref) => ({ pvIndex: ref.pvIndex, pp: ref.pp }))
      await this.commitDescriptor(descriptor, { status: withStaleBits(this.status, stale, true) })
      await this.settleUnsyncedCopies()
      return this.lvByName(lvName)!
    })
  }

  lvDropCopies(lvName: string, copies: number, dropFrom?: readonly number[]): Promise<LvDescriptor> {
    return this.transformLv((d) => dropCopies(d, lvName, copies,
      (ref) => this.pvState(ref.pvIndex) === 'active' && !this.isStale(ref.pvIndex, ref.pp), dropFrom))
  }

  lvMoveCopy(lvName: string, lp: number, copy: number, to: PpRef): Promise<LvDescriptor> {
    return this.transformLv((d) => moveCopy(d, lvName, lp, copy, to))
  }

  /** Makes the copies an lvconvert marked unsynced stale on disk, then drops the marker (also
   * run by vary-on, which finishes an lvconvert a crash interrupted). Inside the serial chain. */
  async settleUnsyncedCopies(): Promise<void> {
    const refs = this.descriptor.lvs.flatMap(unsyncedRefs)
    if (refs.length === 0) return
    await this.commitStatus(withStaleBits(this.status, refs, true), true)
    await this.commitDescriptor(withoutUnsyncedMarker(this.descriptor))
  }

  lvSetExt(lvName: string, ext: { readonly [key: string]: JsonValue }): Promise<LvDescriptor> {
    return this.transformLv((d) => setLvExt(d, lvName, ext))
  }

  // ---- status mutations ----

  markStale(changes: readonly StaleChange[]): Promise<void> {
    return this.serial(() => this.changeStale(changes, true))
  }

  clearStale(changes: readonly StaleChange[]): Promise<void> {
    return this.serial(() => this.changeStale(changes, false))
  }

  private async changeStale(changes: readonly StaleChange[], value: boolean): Promise<void> {
    for (const c of changes) {
      const pv = this.descriptor.pvs[c.pvIndex]
      if (pv === undefined || !Number.isSafeInteger(c.pp) || c.pp < 0 || c.pp >= pv.ppCount) {
        throw usageError(`no PP ${c.pp} on PV ${c.pvIndex}`)
      }
    }
    const next = withStaleBits(this.status, changes, value)
    if (!statusEquals(next, this.status)) await this.commitStatus(next)
  }

  setLvDirty(lvId: number, dirty: boolean): Promise<void> {
    return this.serial(async () => {
      if (this.lvById(lvId) === undefined) throw usageError(`no LV with id ${lvId}`)
      const set = new Set(this.status.dirtyLvs)
      if (dirty) set.add(lvId)
      else set.delete(lvId)
      if (set.size === this.status.dirtyLvs.length) return
      await this.commitStatus({ ...this.status, dirtyLvs: [...set].sort((a, b) => a - b) })
    })
  }

  // ---- PV lifecycle ----

  setPvState(pvIndex: number, state: PvState): Promise<void> {
    return this.serial(async () => {
      const current = this.pvState(pvIndex)
      if (current === state) return
      const pv = this.descriptor.pvs[pvIndex]!
      if (state === 'missing') {
        await this.pvs.drop(pv.pvId)
        await this.commitStatus(withMissing(this.status, [pvIndex], true))
      } else if (state === 'removed') {
        this.assertRemovable(pvIndex)
        await this.pvs.drop(pv.pvId)
        await this.commitPvRemoval([pvIndex], false)
      } else {
        await this.returnPv(pvIndex, pv.lastPath)
      }
    })
  }

  /** lvm_changepv remove: the VG keeps its quorum without the PV, under the joint majority of
   * the old and the new placement (a removal that would force the VG off is refused). */
  private assertRemovable(pvIndex: number): void {
    const pv = this.descriptor.pvs[pvIndex]!
    const pvs = this.descriptor.pvs.map((p, i) => (i === pvIndex ? { ...p, removed: true } : p))
    if (pvs.every((p) => p.removed)) throw usageError(`cannot remove the last PV of "${this.name}"`)
    const next = { ...this.descriptor, pvs, descriptorCopies: standardPlacement(pvs) }
    const reachable = new Set(this.pvs.entries().map(([pvId]) => pvId).filter((pvId) => pvId !== pv.pvId))
    const shortfall = majorityShortfall(requiredSets(this.descriptor, next, false),
      (key) => reachable.has(key.slice(0, key.indexOf(':'))),
      (count, total) => `${count} of ${total} descriptor copies would remain`)
    if (shortfall !== undefined) {
      throw new LvmfsError('LVM_NOQUORUM', `removing PV "${pv.lastPath}" would lose the quorum of "${this.name}"`, {
        detail: `${shortfall}; a majority is needed.`, hint: 'Return or add PVs first.', context: { pvId: pv.pvId } })
    }
  }

  /** Brings a MISSING or REMOVED PV back: its device must open and carry the right label. */
  async returnPv(pvIndex: number, path: string, device?: BlockDevice): Promise<void> {
    const pv = this.descriptor.pvs[pvIndex]!
    if (!this.pvs.has(pv.pvId)) this.pvs.add(await attachPv(this, pv.pvId, path, device))
    // Rewrite its copies from the current descriptor and status (they are stale).
    const pvs = this.descriptor.pvs.map((p, i) => (i === pvIndex ? { ...p, removed: false, lastPath: path } : p))
    await this.commitDescriptor({ ...this.descriptor, pvs, descriptorCopies: standardPlacement(pvs) },
      { status: withMissing(this.status, [pvIndex], false) })
    await this.commitStatus(this.status, true)
  }

  /** Marks PVs removed and drops their descriptor copies (forced vary-on, setPvState). */
  async commitPvRemoval(pvIndexes: readonly number[], force: boolean): Promise<void> {
    const pvs = this.descriptor.pvs.map((p, i) => (pvIndexes.includes(i) ? { ...p, removed: true } : p))
    await this.commitDescriptor({ ...this.descriptor, pvs, descriptorCopies: standardPlacement(pvs) }, { force })
    await this.commitStatus(withMissing(this.status, pvIndexes, false), true)
  }

  vgExtend(paths: readonly string[]): Promise<void> {
    return this.serial(() => addPvsToVg(this, paths))
  }

  vgReduce(pvIndex: number): Promise<void> {
    return this.serial(async () => {
      const pv = this.descriptor.pvs[pvIndex]
      if (pv === undefined) throw usageError(`no PV with index ${pvIndex} in "${this.name}"`)
      const { descriptor, status } = withoutPv(this.descriptor, this.status, pvIndex)
      await this.commitDescriptor(descriptor, { status })
      await this.commitStatus(this.status, true)
      const runtime = this.pvs.detach(pv.pvId)
      if (runtime !== undefined) await releasePvFromVg(runtime)
    })
  }

  /** vgrename: one descriptor commit; the name rule and uniqueness among scanned VGs are the
   * caller's (it sees the other VGs). */
  vgRename(newName: string): Promise<VgDescriptor> {
    return this.serial(async () => {
      validateVgName(newName)
      if (newName !== this.name) await this.commitDescriptor({ ...this.descriptor, name: newName })
      return this.descriptor
    })
  }

  /** vgremove: gives every PV's label back to no VG and takes the VG offline. Refuses while LVs
   * exist (unless `force`) and while a PV is not ACTIVE (its label could not be released). */
  vgRemove(force: boolean): Promise<void> {
    return this.serial(async () => {
      const lvs = this.descriptor.lvs
      if (lvs.length > 0 && !force) {
        throw new LvmfsError('ENGINE_BUSY', `volume group "${this.name}" still holds ${lvs.length} logical volume(s)`, {
          detail: `Logical volumes: ${lvs.map((lv) => lv.name).join(', ')}.`,
          hint: 'Remove them with lvremove, or use vgremove --force.', context: { vg: this.name } })
      }
      const absent = this.descriptor.pvs.findIndex((_, i) => this.pvState(i) !== 'active')
      if (absent >= 0) {
        const pv = this.descriptor.pvs[absent]!
        throw new LvmfsError('LVM_PVSTATE', `PV "${pv.lastPath}" of "${this.name}" is ${this.pvState(absent)}`, {
          detail: 'Its label cannot be released while it is not active.',
          hint: 'Return it (pvchange --return) or vgreduce it first.', context: { pvId: pv.pvId } })
      }
      for (const [pvId, runtime] of this.pvs.entries()) {
        this.pvs.detach(pvId)
        await releasePvFromVg(runtime)
      }
      this.state = 'offline'
      await this.closeAll()
    })
  }

  async varyOff(): Promise<void> {
    await this.#chain
    await this.#backups
    if (this.state === 'online') this.state = 'offline'
    await this.closeAll()
  }

  // ---- commits ----

  /** Commits a descriptor (commit.ts). `force`: only the new placement counts. `status`: the
   * status re-indexed for `next` when PVs join or leave. */
  async commitDescriptor(next: VgDescriptor, options: { force?: boolean; status?: VgStatus } = {}): Promise<void> {
    for (const guard of this.#commitGuards) await guard(next)
    const verdict = await this.#committer.commitDescriptor(this.descriptor, next, options.force === true)
    const committed = await this.committedOrForceOff(verdict)
    this.#descriptor = committed.value
    this.#status = normalizeStatus(options.status ?? this.status, committed.value)
    const backup = this.#backup
    if (backup !== undefined) {
      this.#backups = this.#backups.then(() => backup.save(committed.value)).catch(() => undefined)
    }
    this.emit('descriptor')
    await this.handleFailedWrites(committed.failedPvIds)
  }

  /** Commits a status record to the current placement. `always`: write even if unchanged. */
  async commitStatus(next: VgStatus, always = false): Promise<void> {
    if (!always && statusEquals(normalizeStatus(next, this.descriptor), this.status)) return
    const verdict = await this.#committer.commitStatus(this.descriptor, next)
    const committed = await this.committedOrForceOff(verdict)
    this.#status = committed.value
    this.emit('status')
    await this.handleFailedWrites(committed.failedPvIds)
  }

  private async committedOrForceOff<T>(verdict: CommitVerdict<T>): Promise<Extract<CommitVerdict<T>,
    { kind: 'committed' }>> {
    if (verdict.kind === 'committed') return verdict
    // `refused`: nothing was written, we knew the commit could not reach a majority.
    const error = this.forceOffNow(verdict.why)
    if (verdict.kind === 'lost') await this.closeAll()
    throw error
  }

  /** PVs whose copy write failed are dropped and marked MISSING (AIX: the VGSAs on the other
   * PVs record the failed PV). Bounded: each round removes at least one device. */
  private async handleFailedWrites(pvIds: ReadonlySet<string>): Promise<void> {
    if (pvIds.size === 0) return
    const indexes: number[] = []
    for (const pvId of pvIds) {
      await this.pvs.drop(pvId)
      const i = this.descriptor.pvs.findIndex((p) => p.pvId === pvId)
      if (i >= 0) indexes.push(i)
    }
    if (indexes.length > 0) await this.commitStatus(withMissing(this.status, indexes, true))
  }

  private forceOffNow(why: string): LvmfsError {
    const error = new LvmfsError('LVM_FORCEOFF', `quorum lost: volume group "${this.name}" forced off`, {
      detail: `${why}; a majority is needed.`,
      hint: 'Restore the PVs, then vary the volume group on again.', context: { vg: this.name } })
    if (this.state !== 'online') return error
    this.state = 'forcedoff'
    for (const listener of this.#forceOffListeners) listener(error)
    void this.closeAll()
    return error
  }

  /** Closes every PV once; later calls wait for the same closes. */
  private closeAll(): Promise<void> {
    if (this.#closed === undefined) {
      for (const listener of this.#closeListeners) listener()
      this.#closeListeners.clear()
      this.#closed = this.pvs.closeAll()
    }
    return this.#closed
  }

  /** Tells listeners about a new descriptor or status (commits, and reloads in shared-vg.ts). */
  emit(kind: VgChangeEvent['kind']): void {
    const event = { kind, descriptor: this.descriptor, status: this.status }
    for (const listener of this.#changeListeners) listener(event)
  }
}

export function withMissing(status: VgStatus, pvIndexes: readonly number[], value: boolean): VgStatus {
  return { ...status, missing: status.missing.map((m, i) => (pvIndexes.includes(i) ? value : m)) }
}

/** vgreduce: the descriptor and status without the PV at `pvIndex` (later PVs shift down). */
function withoutPv(d: VgDescriptor, status: VgStatus, pvIndex: number): { descriptor: VgDescriptor; status: VgStatus } {
  const pv = d.pvs[pvIndex]!
  const allocated = allocatedCount(d, pvIndex)
  if (allocated > 0) {
    throw new LvmfsError('LVM_PVHASPPS', `PV "${pv.lastPath}" still holds ${allocated} allocated PPs`, {
      hint: 'Move or remove the LVs on it first.', context: { pvId: pv.pvId, allocated } })
  }
  if (d.pvs.filter((p, i) => i !== pvIndex && !p.removed).length === 0) {
    throw usageError(`cannot remove the last PV of "${d.name}"`)
  }
  const pvs = d.pvs.filter((_, i) => i !== pvIndex)
  const shift = (ref: PpRef): PpRef => (ref.pvIndex > pvIndex ? { pvIndex: ref.pvIndex - 1, pp: ref.pp } : ref)
  const lvs = d.lvs.map((lv) => ({ ...lv, lps: lv.lps.map((copies) => copies.map(shift)) }))
  return { descriptor: { ...d, pvs, lvs, descriptorCopies: standardPlacement(pvs) },
    status: { ...status, missing: status.missing.filter((_, i) => i !== pvIndex),
      stale: status.stale.filter((_, i) => i !== pvIndex) } }
}
